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


def compile_function(fn):
    """``fn`` compiled for repeated calls on same-shaped inputs (``jax.jit`` / ``tf.function``).

    For evaluation loops such as iterative attacks, which call a gradient many times.
    """
    return _impl().compile_function(fn)


def train_step_function():
    """The backend's ``train_step`` for :class:`kzoo.RegularizerMixin` models."""
    return _impl().train_step
