"""One training run, end to end: what ``kzoo train`` and the benchmarks call.

dataset -> class-balanced labeled subset + unlabeled pool -> regularized
``fit`` -> test error / NLL -> optional SavedModel export and metrics JSON.
Every argument is checked before any data is loaded or any step is taken, and
outputs are written atomically at the end.
"""

import dataclasses
import json
import math
import os
import tempfile
import time

import numpy as np

from kzoo.methods import METHODS, get as get_method  # noqa: F401  (METHODS: public)


class ConfigError(ValueError):
    """A run's configuration is invalid; raised before any work starts."""


def resolve_hyperparameters(method, hyperparameters=None):
    """``(Method, resolved hyperparameters)``; ConfigError for an unknown method or a bad value."""
    try:
        spec = get_method(method)
        return spec, spec.resolve(hyperparameters)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from e


def build_regularizer(method, **hyperparameters):
    """The regularizer of ``method`` with its hyperparameters (missing or None -> default)."""
    spec, hp = resolve_hyperparameters(method, hyperparameters)
    if spec.build is None:
        raise ConfigError(f"{method} trains with its own loop (a GAN); it has no regularizer to build")
    try:
        return spec.build(hp)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from e


def _check_writable_target(path, what):
    if path is None:
        return None
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    probe = parent
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK):
        raise ConfigError(f"{what} {path} cannot be written: {probe} is not a writable folder")
    if os.path.isfile(path) and what == "export folder":
        raise ConfigError(f"{what} {path} is an existing file, not a folder")
    return path


def write_json_atomic(path, payload):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _epochs_for(steps, max_per_epoch=1000):
    """Split ``steps`` into equal epochs of at most ``max_per_epoch`` when possible."""
    if steps <= max_per_epoch:
        return 1
    for epochs in range(math.ceil(steps / max_per_epoch), 21):
        if steps % epochs == 0:
            return epochs
    return 1


def _step_timer():
    """Keras callback: wall time of the run and of the steady state after the first step."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()
            self.first_step_end = None
            self.steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.first_step_end is None:
                self.first_step_end = time.perf_counter()

        def on_train_end(self, logs=None):
            self.end = time.perf_counter()

    return StepTimer()


def evaluate_classifier(classifier, x, y, batch_size=512):
    """Test error and mean negative log-likelihood (nats) of a logits classifier."""
    logits = classifier.predict(x, batch_size=batch_size, verbose=0)
    logits = np.asarray(logits, dtype=np.float64)
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    nll = float(-log_p[np.arange(len(y)), y].mean())
    error = float((logits.argmax(axis=1) != y).mean())
    return {"test_error": error, "test_nll": nll}


@dataclasses.dataclass
class RunContext:
    """Everything a method's training loop gets: data, settings, hyperparameters.

    ``train(ctx)`` of a :class:`kzoo.methods.Method` returns the trained plain
    classifier (a Keras model from inputs to logits); ``ctx.callbacks`` (the step
    timer, and whatever the caller adds) must be passed to every ``fit`` it calls.
    The default loop, :func:`train_regularized`, is the one VAT and every other
    regularizer-on-a-classifier method use.
    """

    method: object
    hyperparameters: dict
    dataset: object
    x_l: object
    y_l: object
    x_u: object
    model: str
    width: float
    steps: int
    batch_labeled: int
    batch_unlabeled: int
    seed: int
    learning_rate: float
    decay_fraction: float
    augment: object
    jit_compile: object
    verbose: int
    callbacks: list = dataclasses.field(default_factory=list)
    # filled in by the training loop for the result JSON
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def semi_supervised(self):
        return self.method.is_semi_supervised(self.hyperparameters)

    def make_classifier(self, **kwargs):
        """A fresh classifier of the run's model on the dataset's shapes (kzoo.models)."""
        from kzoo import models as kmodels

        kw = {"input_shape": self.dataset.input_shape, "num_classes": self.dataset.num_classes}
        if self.model != "mlp":
            kw["width"] = self.width
        kw.update(kwargs)
        return kmodels.get(self.model, **kw)

    def stream(self, semi_supervised=None):
        """The run's endless batch stream (labeled + unlabeled, or labeled only)."""
        from kzoo import data as kdata

        semi = self.semi_supervised if semi_supervised is None else semi_supervised
        nc = self.dataset.num_classes
        if semi:
            return kdata.semi_supervised(self.x_l, self.y_l, self.x_u, batch_labeled=self.batch_labeled,
                                         batch_unlabeled=self.batch_unlabeled, num_classes=nc,
                                         seed=self.seed, augment=self.augment)
        return kdata.supervised(self.x_l, self.y_l, batch_size=self.batch_labeled, num_classes=nc,
                                seed=self.seed, augment=self.augment)

    def optimizer(self, learning_rate=None, **kwargs):
        """Adam with the run's learning rate and linear decay over the last ``decay_fraction``."""
        import keras

        from kzoo.ops import LinearDecay

        lr = self.learning_rate if learning_rate is None else learning_rate
        schedule = LinearDecay(lr, self.steps, int(round(self.decay_fraction * self.steps)))
        return keras.optimizers.Adam(schedule, **kwargs)

    def fit(self, model, stream=None):
        """``model.fit`` for ``steps`` optimizer steps in equal epochs, with the run's callbacks."""
        epochs = _epochs_for(self.steps)
        return model.fit(self.stream() if stream is None else stream, steps_per_epoch=self.steps // epochs,
                         epochs=epochs, verbose=self.verbose, callbacks=list(self.callbacks),
                         shuffle=False)


def train_regularized(ctx):
    """The default loop: ``kzoo.Regularized(classifier, regularizer).fit``; returns the classifier."""
    from kzoo.core import Regularized

    clf = ctx.make_classifier()
    regularizer = ctx.method.build(ctx.hyperparameters)
    ctx.info["regularizer"] = repr(regularizer) if regularizer is not None else None
    try:
        net = Regularized(clf, regularizer, seed=ctx.seed)
    except ValueError as e:  # the regularizer does not fit the classifier (e.g. LVAT's input shape)
        raise ConfigError(str(e)) from e
    net.compile(optimizer=ctx.optimizer(), metrics=["accuracy"], jit_compile=ctx.jit_compile)
    ctx.fit(net)
    return clf


def run(
    method="vat",
    dataset="digits",
    labels=100,
    model="mlp",
    steps=1000,
    batch_labeled=32,
    batch_unlabeled=128,
    seed=0,
    hyperparameters=None,
    learning_rate=1e-3,
    decay_fraction=1 / 3,
    width=1.0,
    augment=None,
    data_dir=None,
    jit_compile="auto",
    export=None,
    metrics_json=None,
    verbose=1,
    **hyperparameter_kwargs,
):
    """Train ``method`` on ``dataset`` with ``labels`` labeled examples; returns the metrics dict.

    The method's hyperparameters come as ``hyperparameters={...}`` or as keyword
    arguments (``epsilon=2.0``); None means the method's default.
    """
    from kzoo import data as kdata
    from kzoo import models as kmodels

    # ---- validate everything before any work -------------------------------
    spec, hp = resolve_hyperparameters(method, {**(hyperparameters or {}), **hyperparameter_kwargs})
    if dataset not in kdata.DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(kdata.DATASETS)}")
    if model not in kmodels.MODELS:
        raise ConfigError(f"unknown model {model!r}; valid models: {', '.join(kmodels.MODELS)}")
    for name, value in (("steps", steps), ("batch_labeled", batch_labeled),
                        ("batch_unlabeled", batch_unlabeled), ("labels", labels)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    if not 0 <= decay_fraction <= 1:
        raise ConfigError(f"decay_fraction must be in [0, 1], got {decay_fraction!r}")
    if spec.build is not None:
        build_regularizer(method, **hp)  # the regularizer's own checks, before any data is loaded
    export = _check_writable_target(export, "export folder")
    metrics_json = _check_writable_target(metrics_json, "metrics file")

    import keras

    ds = kdata.load(dataset, data_dir=data_dir, seed=seed)
    try:
        x_l, y_l, x_u = kdata.labeled_split(ds.x_train, ds.y_train, labels,
                                           num_classes=ds.num_classes, seed=seed)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    timer = _step_timer()
    ctx = RunContext(spec, hp, ds, x_l, y_l, x_u, model, width, int(steps), int(batch_labeled),
                     int(batch_unlabeled), int(seed), learning_rate, decay_fraction, augment, jit_compile,
                     verbose, callbacks=[timer])
    try:
        ctx.make_classifier()  # the model's own checks (input shape, width) before training
    except ValueError as e:
        raise ConfigError(str(e)) from e

    # ---- train ---------------------------------------------------------------
    keras.utils.set_random_seed(seed)
    clf = (spec.train or train_regularized)(ctx)
    train_seconds = timer.end - timer.start
    steady = timer.end - timer.first_step_end
    semi = ctx.semi_supervised
    result = {
        "method": method,
        "dataset": dataset,
        "labels": int(labels),
        "seed": int(seed),
        "backend": keras.backend.backend(),
        "model": model,
        "hyperparameters": {
            **hp,
            **ctx.info,
            "learning_rate": learning_rate,
            "decay_fraction": decay_fraction,
            "batch_labeled": batch_labeled,
            "batch_unlabeled": batch_unlabeled if semi else 0,
            "augment": augment,
            "jit_compile": jit_compile,
        },
        "train_steps": int(timer.steps),
        "train_seconds": round(train_seconds, 3),
        "steps_per_second": round((timer.steps - 1) / steady, 2) if timer.steps > 1 and steady > 0 else None,
    }
    result.update(evaluate_classifier(clf, ds.x_test, ds.y_test))

    # ---- outputs (atomic) ------------------------------------------------------
    if export:
        from kzoo.export import export_classifier

        result["export"] = export_classifier(clf, export)  # the plain classifier, no regularizer
    if metrics_json:
        write_json_atomic(metrics_json, result)
    return result


# ----------------------------------------------------------------------------
# Pretraining (kzoo pretrain NAME): generative models reused across runs
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class PretrainContext:
    """What a :class:`kzoo.methods.Pretrainer` gets: unlabeled training inputs and settings.

    ``export`` is the checked destination; save with :func:`kzoo.export.save_keras_atomic`.
    """

    pretrainer: object
    hyperparameters: dict
    dataset: object
    steps: int
    batch_size: int
    learning_rate: object
    seed: int
    export: str
    verbose: int
    callbacks: list = dataclasses.field(default_factory=list)

    def fit(self, model, stream):
        """``model.fit`` for ``steps`` steps in equal epochs, with the run's callbacks."""
        epochs = _epochs_for(self.steps)
        return model.fit(stream, steps_per_epoch=self.steps // epochs, epochs=epochs, verbose=self.verbose,
                         callbacks=list(self.callbacks), shuffle=False)


def pretrain(name, dataset="digits", steps=2000, batch_size=128, learning_rate=None, seed=0, data_dir=None,
             export=None, metrics_json=None, hyperparameters=None, verbose=1):
    """Train the registered pretrainer ``name`` on ``dataset``'s inputs and save it to ``export``."""
    from kzoo import data as kdata
    from kzoo.methods import get_pretrainer

    try:
        spec = get_pretrainer(name)
        hp = spec.resolve(hyperparameters)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from e
    if dataset not in kdata.DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(kdata.DATASETS)}")
    for label, value in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{label} must be an integer >= 1, got {value!r}")
    if learning_rate is not None and not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ConfigError(f"learning_rate must be > 0, got {learning_rate!r}")
    if export is None:
        raise ConfigError("pretrain needs --export: where to save the trained model")
    export = _check_writable_target(export, "export file")
    metrics_json = _check_writable_target(metrics_json, "metrics file")

    import keras

    ds = kdata.load(dataset, data_dir=data_dir, seed=seed)
    timer = _step_timer()
    ctx = PretrainContext(spec, hp, ds, int(steps), int(batch_size), learning_rate, int(seed), export,
                          verbose, callbacks=[timer])
    keras.utils.set_random_seed(seed)
    metrics = spec.run(ctx) or {}
    result = {"model": name, "dataset": dataset, "seed": int(seed), "backend": keras.backend.backend(),
              "hyperparameters": hp, "steps": int(timer.steps) if hasattr(timer, "steps") else None,
              "train_seconds": round(timer.end - timer.start, 3) if hasattr(timer, "end") else None,
              "export": export, **metrics}
    if metrics_json:
        write_json_atomic(metrics_json, result)
    return result
