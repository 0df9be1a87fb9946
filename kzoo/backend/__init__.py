"""The one place where kzoo's code depends on the Keras backend.

Everything else in kzoo is written in ``keras.ops``. This package holds what
cannot be: the custom train step (``tf.GradientTape``, a stateless
``jax.value_and_grad``, or PyTorch's eager autograd), the gradient of a scalar function with respect to an
input or latent perturbation, the Jacobian-vector product, and random draws
that compile to a fast generator.
"""

from kzoo.errors import InvalidArgumentError
import functools
import importlib

import keras

from kzoo.errors import UnsupportedBackendError  # noqa: F401  (kzoo.backend.UnsupportedBackendError, as before)

SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")


def name():
    return keras.backend.backend()


def check_backend(backend=None):
    """Raise a clear error when the active Keras backend is not supported."""
    backend = backend or name()
    if backend not in SUPPORTED_BACKENDS:
        raise UnsupportedBackendError(
            f"kzoo supports the Keras backends {', '.join(SUPPORTED_BACKENDS)}; the active one is "
            f"{backend!r}. Set KERAS_BACKEND=tensorflow (default), jax or torch before "
            f"importing keras."
        )
    return backend


def _impl():
    return importlib.import_module(f"kzoo.backend.{check_backend()}")


def compilation_cache_dir():
    """The persistent compilation cache kzoo set up (JAX), or None (TensorFlow, or turned off)."""
    if name() != "jax":
        return None
    return _impl().configure_compilation_cache()


# Set up when kzoo's backend layer is first imported (kzoo.models, kzoo.core, ... import it),
# before the first model is built: see kzoo.backend.jax.configure_compilation_cache.
compilation_cache_dir()


def grad_wrt(fn, r):
    """Gradient of the scalar ``fn(r)`` with respect to the tensor ``r``.

    The result is a constant for the outer training gradient (stop-gradient), as
    the power iteration of VAT and the sign of FGSM require.
    """
    return _impl().grad_wrt(fn, r)


def uniform(shape, seed, minval=0.0, maxval=1.0, dtype=None):
    """``keras.random.uniform(shape, minval, maxval, dtype, seed)``: the same numbers (Philox), but on
    TensorFlow with the algorithm named, which XLA compiles to a generator about 4× cheaper on CPU than
    the one Keras' automatic choice gets (about 20 µs against 90 µs per draw on this CPU; a mixup step
    draws twice per batch)."""
    return _impl().uniform(shape, seed, minval, maxval, dtype or keras.backend.floatx())


def normal(shape, seed, mean=0.0, stddev=1.0, dtype=None):
    """``keras.random.normal(shape, mean, stddev, dtype, seed)``, as :func:`uniform` on TensorFlow."""
    return _impl().normal(shape, seed, mean, stddev, dtype or keras.backend.floatx())


def jvp(fn, x, v):
    """Jacobian-vector product ``J_fn(x) @ v`` (forward mode)."""
    return _impl().jvp(fn, x, v)


def tfp(what="this"):
    """``tensorflow_probability`` for the active backend, or a clear error naming what is missing.

    Only the TensorFlow backend is supported: TFP 0.25's JAX substrate
    (``tensorflow_probability.substrates.jax``) does not import with the pinned
    jax 0.10 (it uses the removed ``jax.interpreters.xla.pytype_aval_mappings``).
    """
    backend = name()
    if backend == "torch":
        raise UnsupportedBackendError(
            f"TensorFlow Probability is needed for {what}, and it has no PyTorch substrate (only TensorFlow "
            "and JAX ones), so this cannot run on the torch backend: run it with KERAS_BACKEND=tensorflow "
            "(or --backend tensorflow)."
        )
    if backend != "tensorflow":
        raise UnsupportedBackendError(
            f"TensorFlow Probability on the TensorFlow backend is needed for {what}; the active Keras "
            f"backend is {backend!r}, and TFP's JAX substrate does not work with the installed jax. Run with "
            "KERAS_BACKEND=tensorflow (or --backend tensorflow)."
        )
    try:
        import tensorflow_probability
    except ImportError as e:
        raise UnsupportedBackendError(
            f"tensorflow-probability (and tf-keras) is needed for {what}: pip install tensorflow-probability "
            f"tf-keras ({e})"
        ) from e
    return tensorflow_probability


def portable_config(config):
    """``config`` (a serialized compile config) with every optimizer named by its public Keras module.

    On PyTorch, ``keras.optimizers.Adam()`` is an instance of Keras' torch subclass, which serializes
    with its own module (``keras.src.backend.torch.optimizers.torch_adam``); a ``.keras`` file trained
    on torch would rebuild that torch optimizer on JAX or TensorFlow. ``keras.optimizers`` and the same
    class name give each backend its own optimizer. Also applied when loading (files saved before).
    """
    if isinstance(config, dict):
        module = config.get("module")
        if isinstance(module, str) and module.startswith("keras.src.backend.") and ".optimizers." in module:
            config = {**config, "module": "keras.optimizers"}
        return {k: portable_config(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return type(config)(portable_config(v) for v in config)
    return config


def compile_function(fn):
    """``fn`` compiled for repeated calls on same-shaped inputs (``jax.jit`` / ``tf.function``).

    For evaluation loops such as iterative attacks, which call a gradient many times.
    """
    return _impl().compile_function(fn)


def train_step_function():
    """The backend's ``train_step`` for kzoo's models (:class:`kzoo.train_step.TrainStep`), taking ``(model, data)``
    on TensorFlow and ``(model, state, data)`` on JAX; the batch's inputs pass through :func:`float_inputs`."""
    impl = _impl().train_step

    @functools.wraps(impl)  # (its __wrapped__: the backend's own)
    def step(model, *args):
        return impl(model, *args[:-1], float_inputs(args[-1]))

    return step


def float_inputs(data):
    """A train batch whose integer or boolean inputs (uint8 images, int64 arrays; a semi-supervised batch's
    ``labeled`` and ``unlabeled`` parts) are cast to ``keras.backend.floatx()``, as float inputs would be;
    labels and sample weights are left as they are. Decided from dtypes while the step is traced: no cost per
    step."""
    if isinstance(data, (tuple, list)) and data:
        return (_float_inputs(data[0]), *data[1:])
    return _float_inputs(data)


def _float_inputs(x):
    if isinstance(x, dict):
        return {k: _float_inputs(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_float_inputs(v) for v in x)
    dtype = getattr(x, "dtype", None)
    if dtype is not None and keras.backend.standardize_dtype(dtype).startswith(("int", "uint", "bool")):
        return keras.ops.cast(x, keras.backend.floatx())
    return x


# --------------------------------------------------------------------------
# Several devices: replica-aware loss scaling and distribution scopes
# --------------------------------------------------------------------------

# kind -> the backend that implements it
DISTRIBUTIONS = {
    "mirrored": "tensorflow",      # tf.distribute.MirroredStrategy, one machine, several devices
    "multi-worker": "tensorflow",  # tf.distribute.MultiWorkerMirroredStrategy, TF_CONFIG
    "data-parallel": "jax",        # keras.distribution.DataParallel
}


def check_distribution(kind, devices=None, backend=None):
    """ValueError when ``kind`` is unknown or not available on the backend (before any work)."""
    if kind is None:
        if devices not in (None, 1):
            raise InvalidArgumentError("--devices needs --distribution (mirrored on TensorFlow, data-parallel on JAX)")
        return None
    backend = backend or name()
    if kind not in DISTRIBUTIONS:
        raise InvalidArgumentError(f"unknown distribution {kind!r}; valid: {', '.join(DISTRIBUTIONS)}")
    if DISTRIBUTIONS[kind] != backend:
        other = [k for k, b in DISTRIBUTIONS.items() if b == backend]
        if not other:
            raise InvalidArgumentError(f"distribution {kind!r} needs the {DISTRIBUTIONS[kind]} backend; the "
                                       f"{backend} backend trains on one device (--backend {DISTRIBUTIONS[kind]})")
        raise InvalidArgumentError(f"distribution {kind!r} needs the {DISTRIBUTIONS[kind]} backend; on {backend} "
                         f"use {' or '.join(other)} (or --backend {DISTRIBUTIONS[kind]})")
    if devices is not None and (not isinstance(devices, int) or devices < 1):
        raise InvalidArgumentError(f"devices must be an integer >= 1, got {devices!r}")
    return kind


def setup_devices(kind, devices=None):
    """Make ``devices`` devices available for ``kind`` (logical CPU devices on a CPU-only host).

    Must run before the backend's runtime starts (TensorFlow: before the first
    operation; JAX: ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` before
    importing jax, which ``kzoo train --devices N`` sets). Returns the number of devices.
    """
    return _impl().setup_devices(kind, devices)


def distribution_scope(kind, devices=None):
    """Context manager: models, optimizers and ``fit`` inside it train on several devices."""
    import contextlib

    if kind is None:
        return contextlib.nullcontext()
    return _impl().distribution_scope(kind, devices)


def num_replicas():
    """How many replicas the current train step's batch is split over (1 outside a distribution)."""
    return _impl().num_replicas()


def scale_loss_for_distribution(value):
    """A per-replica loss scaled so that summing gradients over replicas gives the global-batch gradient.

    ``compile``'s loss (``compute_loss``) is already scaled by Keras; every other
    term added to it in a train step (the regularizers' ``weighted_loss``, a GAN's
    own losses) must go through this function. Identity where the backend
    computes on the global batch (JAX, one device).
    """
    return _impl().scale_loss_for_distribution(value)


def unscale_loss_for_distribution(value):
    """Inverse of :func:`scale_loss_for_distribution` (for logging a per-replica loss)."""
    return _impl().unscale_loss_for_distribution(value)


def is_chief():
    """Whether this process writes outputs (checkpoints, exports) in multi-worker training."""
    return _impl().is_chief()


def sync_model_state(model):
    """Write the trainer's current state back into ``model``'s variables.

    During ``fit`` the JAX trainer keeps the state outside the variables; a
    callback that reads or sets weights mid-training calls this first (no-op
    on TensorFlow).
    """
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()
