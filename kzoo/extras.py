"""What is installed: the Keras backend to use and the optional extras a command needs, checked before any work.

Standard library only (the bottom layer of kzoo): nothing here imports Keras, TensorFlow or JAX, so the
backend can be chosen, and a missing extra named in one line, before any of them is imported. Each extra of
``pip install "kzoo[EXTRA]"`` (pyproject.toml) is checked by the modules it brings:

* ``tensorflow`` or ``jax``: a Keras backend (at least one);
* ``tune``: keras-tuner (``kzoo tune``, :mod:`kzoo.hypermodel`);
* ``plots``: matplotlib (``kzoo compare``'s figure, ``kzoo pretrain``'s samples);
* ``onnx``: onnx, onnxruntime and the backend's converter (``--export-format onnx``);
* ``lvat``: TensorFlow Probability (latent VAT, ``kzoo pretrain vae|glow``).
"""

import contextlib
import importlib.util
import json
import os
import re
import sys
import tempfile

from kzoo.errors import UnsupportedBackendError

BACKENDS = ("tensorflow", "jax", "torch")  # in order of preference: TensorFlow, then JAX, then PyTorch


class MissingExtraError(UnsupportedBackendError):
    """An optional dependency is not installed; the message names the extra (``pip install "kzoo[EXTRA]"``)."""


def installed(module):
    """Whether ``module`` can be imported (looked up, not imported)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_hint(extra):
    return f'pip install "kzoo[{extra}]"'


def require(modules, extra, what, otherwise=""):
    """MissingExtraError (one line naming the extra, then ``otherwise``) unless every module of ``modules`` is
    installed."""
    modules = (modules,) if isinstance(modules, str) else tuple(modules)
    missing = [m for m in modules if not installed(m)]
    if missing:
        raise MissingExtraError(f"{what} needs {', '.join(missing)}, which is not installed: {install_hint(extra)}"
                                + (f"; {otherwise}" if otherwise else ""))


def installed_backends():
    """The Keras backends kzoo runs on that are installed, TensorFlow first."""
    return tuple(b for b in BACKENDS if installed(b))


def _keras_config_backend():
    """The backend named in Keras' own config file (``$KERAS_HOME/keras.json``, else ``~/.keras/keras.json``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) else None


def no_backend_message():
    return (f"kzoo needs a Keras backend and none is installed: {install_hint('jax')} or "
            f"{install_hint('tensorflow')}")


def choose_backend(backend=None):
    """Set ``KERAS_BACKEND`` before Keras is imported and return the backend Keras will use.

    ``backend`` (``--backend``) wins; else ``$KERAS_BACKEND``, else the one in Keras' config file when it is
    installed, else the installed one (TensorFlow when both are). Keras alone would default to TensorFlow
    and fail to import on a JAX-only install. MissingExtraError when the chosen backend (or any) is not
    installed; once Keras is imported its backend stays, and a different ``backend`` is an
    UnsupportedBackendError.
    """
    if "keras" in sys.modules:
        current = os.environ.get("KERAS_BACKEND") or _keras_config_backend() or "tensorflow"
        try:
            current = sys.modules["keras"].backend.backend()
        except AttributeError:  # keras still importing
            pass
        if backend and backend != current:
            raise UnsupportedBackendError(f"the backend must be chosen before keras is imported; keras runs on "
                                          f"{current}, not {backend}")
        return current
    chosen = backend or os.environ.get("KERAS_BACKEND")
    if chosen is None and _keras_config_backend() in installed_backends():
        chosen = _keras_config_backend()  # Keras writes its own default there on first import: not when missing
    if chosen is None:
        available = installed_backends()
        if not available:
            raise MissingExtraError(no_backend_message())
        chosen = available[0]
    if chosen in BACKENDS and not installed(chosen):
        others = [b for b in installed_backends() if b != chosen]
        alternative = f", or use --backend {others[0]} (installed)" if others else ""
        raise MissingExtraError(f"the {chosen} backend is not installed: {install_hint(chosen)}{alternative}")
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


# a C++ log line of TensorFlow/XLA/absl ("I0000 00:00:17966.. 6691 cudart_stub.cc:31] ...") or absl's notice
_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                       r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s:]+:\d+\] )")


# kzoo's own TF_CPP_MIN_LOG_LEVEL is marked, so that it is not taken for the user's (in subprocesses too)
_MARK = "KZOO_SET_TF_CPP_MIN_LOG_LEVEL"


def _user_wants_logs(verbose):
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    return bool(verbose) or (level is not None and os.environ.get(_MARK) != level)


def quiet_tensorflow(verbose=False):
    """Silence TensorFlow's C++ and absl log lines unless the user asked for them (``verbose``, or
    ``TF_CPP_MIN_LOG_LEVEL`` set): must run before TensorFlow is imported. Level 3: on a machine without a
    GPU, level 2 still lets through an ``E... failed call to cuInit`` line."""
    kzoo_set = "TF_CPP_MIN_LOG_LEVEL" in os.environ and os.environ.get(_MARK) == os.environ["TF_CPP_MIN_LOG_LEVEL"]
    if verbose:
        if kzoo_set:  # kzoo's own level, set at import: --verbose shows the lines again
            del os.environ["TF_CPP_MIN_LOG_LEVEL"]
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_QuietTensorFlowImport"]
        return
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ and not kzoo_set:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = os.environ[_MARK] = "3"
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


@contextlib.contextmanager
def _stderr_without_log_lines():
    """Run the block with file descriptor 2 captured; afterwards write back what it printed there except
    C++ log lines (those absl prints before its logging is initialized ignore TF_CPP_MIN_LOG_LEVEL)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if not _LOG_LINE.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietTensorFlowImport:
    """An import hook, gone once TensorFlow is imported: TensorFlow's own import, whoever triggers it
    (``import keras`` after ``import kzoo``), runs with its C++ start-up log lines filtered out of stderr."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module") and not _user_wants_logs(False):
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowImport)]  # once
        with _stderr_without_log_lines():
            self.loader.exec_module(module)

    def __getattr__(self, name):  # get_resource_reader, is_package... of the real loader
        return getattr(self.loader, name)


def quiet_tensorflow_import():
    """Hide TensorFlow's start-up log lines however it gets imported (:func:`quiet_tensorflow` first)."""
    if "tensorflow" in sys.modules or _user_wants_logs(False) or \
            any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowImport())


def import_keras(verbose=False, with_tensorflow=False):
    """``import keras`` (and its backend), without TensorFlow's start-up log lines unless asked for
    (``verbose`` or ``TF_CPP_MIN_LOG_LEVEL`` set); call :func:`choose_backend` first.

    ``with_tensorflow``: also import TensorFlow when it is installed, whatever the backend (the command line:
    ``keras.utils.set_random_seed`` imports it to seed it, on JAX too).
    """
    quiet_tensorflow(verbose)
    quiet = contextlib.nullcontext() if _user_wants_logs(verbose) else _stderr_without_log_lines()
    with quiet:
        import keras

        if with_tensorflow and "tensorflow" not in sys.modules and installed("tensorflow"):
            import tensorflow  # noqa: F401
    return keras


def require_export_format(export_format, backend):
    """The extras an export format needs, checked before training (``backend``: the one chosen)."""
    if export_format in ("saved_model", "tf_saved_model", "savedmodel"):
        require("tensorflow", "tensorflow", "a SavedModel export (--export-format saved_model, the default)",
                "or export a .keras file on any backend: --export-format keras --export model.keras")
    elif export_format == "onnx":
        converter = {"tensorflow": "tf2onnx", "jax": "jax2onnx"}.get(backend)
        require(("onnx", "onnxruntime") + ((converter,) if converter else ()), "onnx",
                f"--export-format onnx on the {backend} backend")
