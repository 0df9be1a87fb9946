"""The one place where kzoo's code depends on the Keras backend.

Everything else in kzoo is written in ``keras.ops``. This package holds what
cannot be: the custom train step (``tf.GradientTape`` versus a stateless
``jax.value_and_grad``), the gradient of a scalar function with respect to an
input or latent perturbation, and the Jacobian-vector product.
"""

import importlib

import keras

SUPPORTED_BACKENDS = ("tensorflow", "jax")


class UnsupportedBackendError(ImportError):
    pass


def name():
    return keras.backend.backend()


def check_backend(backend=None):
    """Raise a clear error when the active Keras backend is not supported."""
    backend = backend or name()
    if backend not in SUPPORTED_BACKENDS:
        raise UnsupportedBackendError(
            f"kzoo supports the Keras backends {', '.join(SUPPORTED_BACKENDS)}; the active one is "
            f"{backend!r}. Set KERAS_BACKEND=tensorflow (default) or KERAS_BACKEND=jax before "
            f"importing keras."
        )
    return backend


def _impl():
    return importlib.import_module(f"kzoo.backend.{check_backend()}")


def grad_wrt(fn, r):
    """Gradient of the scalar ``fn(r)`` with respect to the tensor ``r``.

    The result is a constant for the outer training gradient (stop-gradient), as
    the power iteration of VAT and the sign of FGSM require.
    """
    return _impl().grad_wrt(fn, r)


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


def train_step_function():
    """The backend's ``train_step`` for :class:`kzoo.RegularizerMixin` models."""
    return _impl().train_step
