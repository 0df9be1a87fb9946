"""kzoo: regularizers for semi-supervised and supervised learning in Keras 3.

    import kzoo
    clf = kzoo.models.mlp(input_shape=(64,), num_classes=10)
    model = kzoo.Regularized(clf, kzoo.regularizers.VAT(epsilon=2.0))
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(kzoo.data.semi_supervised(x_l, y_l, x_u), steps_per_epoch=100, epochs=10)
    model.export("saved_models/vat_digits")

Attributes load on first use, so ``import kzoo`` (and ``kzoo.data``) does not
import Keras: the command line chooses the backend first. Unless ``KERAS_BACKEND``
(or Keras' config file) names one, kzoo runs on the installed backend (TensorFlow
when both are), and TensorFlow's C++ log lines stay hidden unless
``TF_CPP_MIN_LOG_LEVEL`` is set (see :mod:`kzoo.extras`).
"""

import importlib
import sys

from kzoo import extras as _extras
from kzoo import serialization as _serialization

__version__ = "0.1.0"

_SUBMODULES = ("ali", "backend", "baselines", "bench", "callbacks", "checks", "compare", "compare_report", "core",
               "data", "errors", "evaluate", "experiment", "export", "extras", "gan", "io", "lvat", "methods", "mixup",
               "models", "networks", "ops", "regularizers", "serialization", "tuning", "vat")
_FROM_CORE = ("Regularized", "RegularizerMixin", "Regularizer", "StepContext", "MultiOptimizer",
              "call_without_updates")

__all__ = list(_FROM_CORE) + ["data", "models", "ops", "regularizers", "SUPPORTED_BACKENDS"]


_WITHOUT_KERAS = ("data", "errors", "io", "checks", "serialization", "extras")

# keras.models.load_model finds kzoo's classes whichever kzoo module was imported (without importing Keras now)
_serialization.install()

if "keras" not in sys.modules:
    try:  # Keras alone would pick TensorFlow, and fail to import on a JAX-only install
        _extras.choose_backend()
    except _extras.MissingExtraError:
        pass  # no backend: kzoo.data still works; the first use of Keras says which extra to install
    _extras.quiet_tensorflow()
    _extras.quiet_tensorflow_import()


def _keras_ready():
    if "keras" not in sys.modules:
        _extras.choose_backend()  # MissingExtraError (one line) when no backend is installed
        _extras.import_keras()


def __getattr__(name):
    if name in _SUBMODULES:
        if name not in _WITHOUT_KERAS:
            _keras_ready()
        return importlib.import_module(f"kzoo.{name}")
    if name in _FROM_CORE:
        _keras_ready()
        return getattr(importlib.import_module("kzoo.core"), name)
    if name == "SUPPORTED_BACKENDS":
        return importlib.import_module("kzoo.backend").SUPPORTED_BACKENDS
    raise AttributeError(f"module 'kzoo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
