"""JAX implementations of kzoo's backend-specific pieces.

The train step is stateless, as Keras' JAX trainer requires: every model and
optimizer variable is mapped to the value passed in ``state`` through a
``StatelessScope``, so the backend-agnostic loss code in ``kzoo.core`` can read
and assign variables (batch-norm statistics of the clean pass, the seed
generator) exactly as it does on TensorFlow, and the updates come back out.
"""

from kzoo.errors import InvalidArgumentError, UnsafePathError
import os
import stat
import warnings

import jax
import keras

# --------------------------------------------------------------------------
# Persistent compilation cache (startup)
# --------------------------------------------------------------------------

CACHE_ENV = "KZOO_JAX_CACHE_DIR"
CACHE_MAX_BYTES = 2 * 1024 ** 3
_OFF = ("", "0", "off", "false", "no", "none")


def default_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kzoo", "jax")


def unsafe_cache_dir(path):
    """Why the folder ``path`` cannot hold a compilation cache (not the user's own, or writable by group or
    others), or None when it can."""
    st = os.stat(path)
    if st.st_uid != os.getuid():
        return f"the folder belongs to another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"the folder is writable by {'others' if st.st_mode & stat.S_IWOTH else 'its group'} " \
               f"(mode {stat.S_IMODE(st.st_mode):o})"
    return None


def configure_compilation_cache():
    """Turn on JAX's persistent compilation cache in a per-user directory; the directory or None.

    Keras on JAX compiles one random initializer per new variable shape, so the
    first model built in a process spends seconds in XLA; the persistent cache
    keeps those executables (and compiled train steps) across processes.
    ``KZOO_JAX_CACHE_DIR`` chooses the directory (default
    ``$XDG_CACHE_HOME/kzoo/jax`` or ``~/.cache/kzoo/jax``); ``off`` (or empty,
    ``0``) turns it off. A cache the user configured for JAX (``jax.config`` or
    ``JAX_COMPILATION_CACHE_DIR``) is left as it is, and so is an unwritable
    directory (no cache, no error). JAX loads compiled programs from the cache,
    so the folder must be the user's own and not writable by group or others
    (:func:`unsafe_cache_dir`): else a folder set in ``KZOO_JAX_CACHE_DIR`` is
    refused (:class:`~kzoo.errors.UnsafePathError`), the default one skipped
    with a warning. Every entry is kept, whatever its compile
    time; the cache is bounded (least recently used entries go past 2 GiB),
    which also makes JAX lock it, so concurrent processes share it safely.
    """
    if jax.config.jax_compilation_cache_dir:  # the user's own setting wins
        return jax.config.jax_compilation_cache_dir
    path = os.environ.get(CACHE_ENV)
    explicit = path is not None
    if path is None:
        path = default_cache_dir()
    elif path.strip().lower() in _OFF:
        return None
    path = os.path.abspath(os.path.expanduser(path))
    try:
        import filelock  # noqa: F401  (a bounded cache needs it; without it: no cache)

        os.makedirs(path, mode=0o700, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            return None
        problem = unsafe_cache_dir(path)
    except (ImportError, OSError):
        return None
    if problem:  # JAX loads compiled programs from there: another user could plant one
        if explicit:
            raise UnsafePathError(f"{CACHE_ENV}={path}: {problem}; JAX would load compiled programs from it. "
                                  f"Use a folder of your own (chmod go-w {path}), or {CACHE_ENV}=off")
        warnings.warn(f"kzoo: the JAX compilation cache {path} is not used: {problem}", stacklevel=2)
        return None
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    jax.config.update("jax_compilation_cache_dir", path)
    return path


def grad_wrt(fn, r):
    return jax.lax.stop_gradient(jax.grad(fn)(r))


def jvp(fn, x, v):
    _, tangent = jax.jvp(fn, (x,), (v,))
    return jax.lax.stop_gradient(tangent)


def uniform(shape, seed, minval, maxval, dtype):
    return keras.random.uniform(shape, minval, maxval, dtype=dtype, seed=seed)


def normal(shape, seed, mean, stddev, dtype):
    return keras.random.normal(shape, mean, stddev, dtype=dtype, seed=seed)


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
            out = model.train_step_loss(data)  # compute_loss may update loss trackers
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

    # after the step (e.g. the EMA teacher's update, from the new weights): it may assign non-trainable variables
    mapping = list(zip(model.trainable_variables, trainable)) + list(zip(optimizer.variables, optimizer_vars))
    with keras.StatelessScope(state_mapping=mapping + list(zip(model.non_trainable_variables, non_trainable))) as scope:
        model.train_step_after_apply()
    non_trainable = _new_values(scope, model.non_trainable_variables, non_trainable)

    with keras.StatelessScope(
        state_mapping=list(zip(model.metrics_variables, metrics_vars))
    ) as scope:
        logs = model.train_step_metrics(out)
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
        raise InvalidArgumentError(
            f"{n} devices were asked for but JAX sees {len(available)}; on a CPU-only host set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n} before jax is imported "
            "(kzoo train --devices N does)")
    return available[:n]


def setup_devices(kind, devices=None):
    if kind != "data-parallel":
        raise InvalidArgumentError(f"distribution {kind!r} is not available on JAX")
    return len(_devices(devices))


def distribution_scope(kind, devices=None):
    if kind != "data-parallel":
        raise InvalidArgumentError(f"distribution {kind!r} is not available on JAX")
    return keras.distribution.DataParallel(devices=_devices(devices)).scope()


def is_chief():
    return jax.process_index() == 0
