"""JAX implementations of kzoo's backend-specific pieces.

The train step is stateless, as Keras' JAX trainer requires: every model and
optimizer variable is mapped to the value passed in ``state`` through a
``StatelessScope``, so the backend-agnostic loss code in ``kzoo.core`` can read
and assign variables (batch-norm statistics of the clean pass, the seed
generator) exactly as it does on TensorFlow, and the updates come back out.
"""

import jax
import keras


def grad_wrt(fn, r):
    return jax.lax.stop_gradient(jax.grad(fn)(r))


def jvp(fn, x, v):
    _, tangent = jax.jvp(fn, (x,), (v,))
    return jax.lax.stop_gradient(tangent)


def concrete_int(x):
    return None if isinstance(x, jax.core.Tracer) else int(x)


def compile_function(fn):
    return jax.jit(fn)


def _new_values(scope, variables, old_values):
    values = []
    for ref, old in zip(variables, old_values):
        new = scope.get_current_value(ref)
        values.append(old if new is None else new)
    return values


def train_step(model, state, data):
    trainable, non_trainable, optimizer_vars, metrics_vars = state
    optimizer = model.optimizer

    def loss_fn(trainable, non_trainable, metrics_vars):
        mapping = list(zip(model.trainable_variables, trainable))
        mapping += list(zip(model.non_trainable_variables, non_trainable))
        mapping += list(zip(model.metrics_variables, metrics_vars))
        mapping += list(zip(optimizer.variables, optimizer_vars))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            out = model._kzoo_compute(data)  # compute_loss may update loss trackers
            scaled = optimizer.scale_loss(out.loss)
        new_state = (
            _new_values(scope, model.non_trainable_variables, non_trainable),
            _new_values(scope, model.metrics_variables, metrics_vars),
        )
        return scaled, (out, new_state)

    (_, (out, (non_trainable, metrics_vars))), grads = jax.value_and_grad(
        loss_fn, has_aux=True
    )(trainable, non_trainable, metrics_vars)
    trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)

    with keras.StatelessScope(
        state_mapping=list(zip(model.metrics_variables, metrics_vars))
    ) as scope:
        logs = model._kzoo_update_metrics(out)
    metrics_vars = _new_values(scope, model.metrics_variables, metrics_vars)
    return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)


# --------------------------------------------------------------------------
# Several devices: keras.distribution on JAX (the train step sees the global
# batch, sharded by XLA, so no loss needs rescaling)
# --------------------------------------------------------------------------


def num_replicas():
    return 1


def scale_loss_for_distribution(value):
    return value


def unscale_loss_for_distribution(value):
    return value


def _devices(devices):
    available = keras.distribution.list_devices()
    n = devices or len(available)
    if n > len(available):
        raise ValueError(
            f"{n} devices were asked for but JAX sees {len(available)}; on a CPU-only host set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n} before jax is imported "
            "(kzoo train --devices N does)")
    return available[:n]


def setup_devices(kind, devices=None):
    if kind != "data-parallel":
        raise ValueError(f"distribution {kind!r} is not available on JAX")
    return len(_devices(devices))


def distribution_scope(kind, devices=None):
    if kind != "data-parallel":
        raise ValueError(f"distribution {kind!r} is not available on JAX")
    return keras.distribution.DataParallel(devices=_devices(devices)).scope()


def is_chief():
    return jax.process_index() == 0
