"""TensorFlow implementations of kzoo's backend-specific pieces."""

from kzoo.errors import InvalidArgumentError
import keras
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


def _philox_seed(seed):
    """The int32 seed pair Keras' TensorFlow backend draws from a SeedGenerator for a stateless op."""
    return tf.cast(tf.math.floormod(seed.next(), tf.int32.max - 1), "int32")


def uniform(shape, seed, minval, maxval, dtype):
    if not isinstance(seed, keras.random.SeedGenerator):  # an int or None: Keras' own handling
        return keras.random.uniform(shape, minval, maxval, dtype=dtype, seed=seed)
    return tf.random.stateless_uniform(shape, seed=_philox_seed(seed), minval=tf.cast(minval, dtype),
                                       maxval=tf.cast(maxval, dtype), dtype=dtype, alg="philox")


def normal(shape, seed, mean, stddev, dtype):
    if not isinstance(seed, keras.random.SeedGenerator):
        return keras.random.normal(shape, mean, stddev, dtype=dtype, seed=seed)
    return tf.random.stateless_normal(shape, seed=_philox_seed(seed), mean=mean, stddev=stddev, dtype=dtype,
                                      alg="philox")


def compile_function(fn):
    return tf.function(fn, reduce_retracing=True)


def train_step(model, data):
    """One regularized optimizer step; ``model`` is a RegularizerMixin model."""
    with tf.GradientTape() as tape:
        out = model.train_step_loss(data)
        loss = out.loss
        if model.optimizer is not None:
            loss = model.optimizer.scale_loss(loss)
    variables = model.trainable_weights
    gradients = tape.gradient(loss, variables)
    model.optimizer.apply_gradients(zip(gradients, variables))
    model.train_step_after_apply()  # e.g. the EMA teacher's update, from the new weights
    logs = model.train_step_metrics(out)
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3.15 averages the logs over workers with reduce(axis=0), which needs a batch axis
        logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
    return logs


# --------------------------------------------------------------------------
# Several devices: tf.distribute
# --------------------------------------------------------------------------


def num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def scale_loss_for_distribution(value):
    n = num_replicas()
    return value if n == 1 else value * (1.0 / n)


def unscale_loss_for_distribution(value):
    n = num_replicas()
    return value if n == 1 else value * float(n)


def _logical_cpus(n):
    """At least ``n`` logical CPU devices; splits the first physical CPU if the runtime is not started."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        if n > 1 and len(tf.config.get_logical_device_configuration(cpu) or [None]) < n:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:  # the runtime has started: the devices are what they are
        pass
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < n:
        raise InvalidArgumentError(
            f"{n} CPU devices were asked for but TensorFlow has already started with {len(logical)}; "
            "call kzoo.backend.setup_devices('mirrored', N) before any TensorFlow operation "
            "(kzoo train --distribution mirrored --devices N does)")
    return logical[:n]


def _devices(devices):
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        logical = tf.config.list_logical_devices("GPU")
        if devices is not None and devices > len(logical):
            raise InvalidArgumentError(f"{devices} devices were asked for but only {len(logical)} GPUs exist")
        return logical[: devices or len(logical)]
    return _logical_cpus(devices or 2)


def setup_devices(kind, devices=None):
    if kind == "mirrored":
        return len(_devices(devices))
    if kind == "multi-worker":  # its collectives must be configured before the runtime starts
        distribution_scope(kind)
        return 1
    raise InvalidArgumentError(f"distribution {kind!r} is not available on TensorFlow")


_STRATEGIES = {}


def distribution_scope(kind, devices=None):
    # One strategy per device set and process: a second MirroredStrategy over the
    # same devices would reuse the first one's collective instance keys.
    if kind == "mirrored":
        names = tuple(d.name for d in _devices(devices))
        key = (kind, names)
        if key not in _STRATEGIES:
            _STRATEGIES[key] = tf.distribute.MirroredStrategy(list(names))
    elif kind == "multi-worker":
        if "TF_CONFIG" not in __import__("os").environ:
            raise InvalidArgumentError("multi-worker training reads the cluster from $TF_CONFIG, which is not set "
                             "(see README: Several devices and machines)")
        key = (kind,)
        if key not in _STRATEGIES:
            _STRATEGIES[key] = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        raise InvalidArgumentError(f"distribution {kind!r} is not available on TensorFlow")
    return _STRATEGIES[key].scope()


def is_chief():
    strategy = tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0
                                                         and "chief" not in resolver.cluster_spec().as_dict())


def symbolic_build(model, iterator=None, data_batch=None):
    """Keras' build-before-fit under MultiWorkerMirroredStrategy for nested (semi-supervised) batches.

    Keras 3.15 averages the first distributed batch over replicas with one
    ``strategy.reduce`` on the whole structure, which MultiWorkerMirroredStrategy
    cannot do for a dict of per-replica tensors; reducing leaf by leaf can.
    Returns False where Keras' own build applies.
    """
    strategy = getattr(model, "_distribute_strategy", None)
    if iterator is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    from keras import tree as _tree

    for _, _, it in iterator:
        batch = next(it)
        break
    batch = _tree.map_structure(
        lambda v: strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues) else v,
        batch)
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    return True
