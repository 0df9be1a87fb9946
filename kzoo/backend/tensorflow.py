"""TensorFlow implementations of kzoo's backend-specific pieces."""

import tensorflow as tf


def grad_wrt(fn, r):
    r = tf.convert_to_tensor(r)
    with tf.GradientTape() as tape:
        tape.watch(r)
        value = fn(r)
    return tf.stop_gradient(tape.gradient(value, r))


def jvp(fn, x, v):
    x = tf.convert_to_tensor(x)
    with tf.autodiff.ForwardAccumulator(primals=x, tangents=tf.convert_to_tensor(v)) as acc:
        out = fn(x)
    return tf.stop_gradient(acc.jvp(out))


def compile_function(fn):
    return tf.function(fn, reduce_retracing=True)


def train_step(model, data):
    """One regularized optimizer step; ``model`` is a RegularizerMixin model."""
    with tf.GradientTape() as tape:
        out = model._kzoo_compute(data)
        loss = out.loss
        if model.optimizer is not None:
            loss = model.optimizer.scale_loss(loss)
    variables = model.trainable_weights
    gradients = tape.gradient(loss, variables)
    model.optimizer.apply_gradients(zip(gradients, variables))
    return model._kzoo_update_metrics(out)
