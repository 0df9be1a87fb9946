"""One training run, end to end: what ``kzoo train`` and the benchmarks call.

dataset -> class-balanced labeled subset + unlabeled pool -> regularized
``fit`` -> test error / NLL -> optional SavedModel export and metrics JSON.
:func:`run` is four steps: :func:`_validate` checks every argument before any
data is loaded or any step is taken, :func:`_prepare` sets up the devices, the
data and the method's :class:`~kzoo.methods.context.RunContext`, :func:`_train`
runs the method's loop, and :func:`_report` measures the result; outputs are
written atomically at the end (:func:`_write_outputs`).
"""

import math
import os
import time
import types

import numpy as np

from kzoo import extras, locks
from kzoo.checks import check_dataset, check_int
from kzoo.errors import ConfigError
from kzoo.io import atomic_file, write_json_atomic, write_text_atomic  # noqa: F401  (kzoo.experiment.X, as before)
from kzoo.io import check_writable_target as _check_writable_target
from kzoo.methods import METHODS, PRESET_RUN_SETTINGS, get as get_method  # noqa: F401  (METHODS: public)
from kzoo.methods.context import (OPTIMIZERS, PretrainContext, RunContext, _epochs_for, warn,  # noqa: F401
                                  _guarded_fit, _skip_batches, drop_steps)
from kzoo.methods.registry import train_regularized
# claim_folder and data_settings: kzoo.compare imports them from here
from kzoo.run_folders import check_checkpoint_dir, claim_folder, data_settings  # noqa: F401

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


def _step_timer():
    """Keras callback: wall time of the run and of the steady state after the first step."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        start = end = first_step_end = None
        steps = 0

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


def evaluate_classifier(classifier, x, y, batch_size=512, prefix="test"):
    """Error and mean negative log-likelihood (nats) of a logits classifier (``{prefix}_error``...)."""
    from kzoo.ops import log_softmax_numpy

    logits = classifier.predict(x, batch_size=batch_size, verbose=0)
    logits = np.asarray(logits, dtype=np.float64)
    log_p = log_softmax_numpy(logits)
    nll = float(-log_p[np.arange(len(y)), y].mean())
    error = float((logits.argmax(axis=1) != y).mean())
    return {f"{prefix}_error": error, f"{prefix}_nll": nll}


def _check_learning_rate(learning_rate):
    """ConfigError unless ``learning_rate`` is a finite number > 0; a warning above 1 (legal, rarely meant)."""
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ConfigError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if learning_rate > 1:
        warn(f"learning_rate={learning_rate:g} is above 1; Adam and SGD usually diverge there (typical: 1e-4..0.1)")


def _lock_export(path):
    """Lock the export target ``path`` for this run (released when it ends); ConfigError if another holds it."""
    if path is None:
        return
    try:
        locks.lock_beside(path, f"export target {path}", "wait for it to end, or export elsewhere")
    except locks.LockedError as e:
        raise ConfigError(str(e)) from None
    except OSError:
        pass  # its folder does not exist yet: the export creates it and locks then


def check_export(export, export_format="tf_saved_model", export_version=None):
    """``(export, keras format, version)`` checked before any work: a known format, a version >= 1
    and a writable destination (``export/N`` with a version)."""
    from kzoo.export import check_format, check_version, export_path

    try:
        export_format, export_version = check_format(export_format), check_version(export_version)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if export is None:
        if export_version is not None:
            raise ConfigError("--export-version needs --export DIR (the model repository folder)")
        return None, export_format, None
    if export_format == "keras" and (export_version is not None or not str(export).endswith(".keras")):
        raise ConfigError("--export-format keras writes one .keras file: give --export NAME.keras (no "
                          "--export-version)" if export_version is None else
                          "--export-version is for saved_model and onnx exports; a Keras export is one .keras file")
    import keras

    extras.require_export_format(export_format, keras.backend.backend())
    onnx_file = export_format in ("onnx", "keras") and export_version is None
    if onnx_file and os.path.isdir(export):
        raise ConfigError(f"export file {os.path.abspath(export)} is an existing folder (an ONNX export is one "
                          "file, e.g. model.onnx; or add --export-version N for DIR/N/model.onnx)")
    _check_writable_target(export_path(export, export_format, export_version),
                           "export file" if onnx_file else "export folder")
    return os.path.abspath(export), export_format, export_version


def _check_optimizer(optimizer, momentum, nesterov, weight_decay, lr_drops):
    """``lr_drops`` as a tuple of floats; ConfigError for any invalid optimizer setting."""
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {optimizer!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
    if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
        raise ConfigError(f"momentum must be a number in [0, 1), got {momentum!r}")
    if not isinstance(nesterov, bool):
        raise ConfigError(f"nesterov must be True or False, got {nesterov!r}")
    if not (isinstance(weight_decay, (int, float)) and math.isfinite(weight_decay) and weight_decay >= 0):
        raise ConfigError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if optimizer != "sgd" and (weight_decay or nesterov or momentum):
        raise ConfigError("momentum, nesterov and weight_decay apply to optimizer='sgd' (SGD with momentum and "
                          f"coupled L2); got optimizer={optimizer!r}")
    drops = tuple(lr_drops or ())
    try:
        drops = tuple(float(f) for f in drops)
    except (TypeError, ValueError):
        raise ConfigError(f"lr_drops must be fractions of training in (0, 1), got {lr_drops!r}") from None
    if any(not 0 < f < 1 for f in drops) or list(drops) != sorted(set(drops)):
        raise ConfigError(f"lr_drops must be increasing fractions of training in (0, 1), got {lr_drops!r}")
    return drops


@locks.scoped  # the checkpoint folder and export target stay locked while the run lasts
def run(
    method="vat", dataset="digits", labels=100, model=None, steps=None, batch_labeled=32, batch_unlabeled=128,
    seed=0, hyperparameters=None, learning_rate=None, decay_fraction=1 / 3, width=None, augment=None, data_dir=None,
    jit_compile="auto", export=None, metrics_json=None, verbose=1, validation_labels=0, test=True,
    checkpoint_dir=None, checkpoint_every=None, distribution=None, devices=None, tensorboard=None,
    optimizer="adam", momentum=0.0, nesterov=False, weight_decay=0.0, lr_drops=None, preset=True,
    export_format="tf_saved_model", export_version=None, download=False, splits=None, on_trained=None,
    **hyperparameter_kwargs):
    """Train ``method`` on ``dataset`` with ``labels`` labeled examples; returns the metrics dict.

    ``model``: a classifier of :mod:`kzoo.models`; None: the dataset's default (``mnist1d_cnn`` on
    mnist1d, else ``mlp``).

    The method's hyperparameters come as ``hyperparameters={...}`` or as keyword
    arguments (``epsilon=2.0``); None means the method's default.

    ``validation_labels=V``: V of the ``labels`` labeled examples (class-balanced)
    are held out, neither trained on nor in the unlabeled pool; the result has
    ``val_error``/``val_nll``. ``test=False``: the test set is not evaluated
    (tuning trials). ``checkpoint_dir``: checkpoint every ``checkpoint_every``
    steps (default steps/20) and resume from it when the same run is started
    again (see :mod:`kzoo.callbacks`). ``distribution``: "mirrored" (TensorFlow),
    "data-parallel" (JAX) on ``devices`` devices, or "multi-worker" (TensorFlow,
    $TF_CONFIG). ``tensorboard``: a log folder for every loss term and metric.

    ``optimizer``: "adam" (default) or "sgd" (with ``momentum``, ``nesterov`` and
    ``weight_decay``, a coupled L2 coefficient as in PyTorch's SGD). The learning
    rate decays linearly over the last ``decay_fraction`` of the steps, or with
    ``lr_drops=(f1, f2, ...)`` is multiplied by 0.1 after each fraction f of
    the steps (then ``decay_fraction`` is unused and recorded as 0).

    ``preset=True``: settings the method's registry entry chose on validation
    data for this dataset, model and label count (:class:`kzoo.methods.Preset`)
    fill in every hyperparameter and ``steps``/``learning_rate`` not given
    (None); without a preset, the method's defaults, 1000 steps and 1e-3.
    The result's ``preset`` lists what the preset set.

    ``export_format``: "tf_saved_model" (or "saved_model", needs TensorFlow), "onnx" or "keras" (a .keras
    file); ``export_version=N`` writes
    ``export/N`` (TF Serving's layout; see :mod:`kzoo.export`). ``download``/``splits``: TFDS sets only
    (see :func:`kzoo.data.load`); a ``validation`` split is reported as ``val_error``/``val_nll``.
    ``on_trained``: called with the trained plain classifier (a Keras model) before it is evaluated.
    """
    a = types.SimpleNamespace(**{k: v for k, v in locals().items()
                                 if k not in ("hyperparameter_kwargs", "on_trained")})
    a.hyperparameters = {**(hyperparameters or {}), **hyperparameter_kwargs}
    spec, hp, opt_info = _validate(a)
    ds, ctx, timer = _prepare(a, spec, hp)
    clf = _train(a, spec, ctx)
    if on_trained is not None:
        on_trained(clf)
    result = _report(a, hp, opt_info, ds, ctx, timer, clf)
    _write_outputs(a, ctx, clf, result)
    return result


def _validate(a):
    """Check every argument of :func:`run` (``a``) before any work; ConfigError naming the bad one.

    Normalizes ``a`` in place (absolute output paths, ``lr_drops`` as floats,
    the default ``checkpoint_every``) and returns ``(method, hyperparameters, optimizer info)``.
    """
    from kzoo import data as kdata
    from kzoo.networks import CLASSIFIERS, default_model  # the names only: Keras is imported after every check

    if a.model is None:
        a.model = default_model(a.dataset)
    given = {k: v for k, v in a.hyperparameters.items() if v is not None}
    resolve_hyperparameters(a.method, given)  # an unknown method or hyperparameter, before the preset
    explicit = {**{k: getattr(a, k) for k in PRESET_RUN_SETTINGS}, **given}
    if a.width is not None:
        check_width(a.width, a.model, get_method(a.method))
    a.applied = get_method(a.method).preset_for_run(a.dataset, a.labels, a.model, explicit) if a.preset else {}
    for k, default in PRESET_RUN_SETTINGS.items():  # the preset's, else the argument, else run()'s default
        given_value = getattr(a, k)
        setattr(a, k, a.applied.get(k, default if given_value is None else given_value))
    preset_hp = {k: v for k, v in a.applied.items() if k not in PRESET_RUN_SETTINGS}
    spec, hp = resolve_hyperparameters(a.method, {**preset_hp, **given})
    check_dataset(a.dataset, kdata.DATASETS, error=ConfigError)
    if a.model not in CLASSIFIERS:
        raise ConfigError(f"unknown model {a.model!r}; valid models: {', '.join(CLASSIFIERS)}")
    for name in ("steps", "batch_labeled", "batch_unlabeled", "labels"):
        check_int(name, getattr(a, name), 1, error=ConfigError)
    if not 0 <= a.decay_fraction <= 1:
        raise ConfigError(f"decay_fraction must be in [0, 1], got {a.decay_fraction!r}")
    _check_learning_rate(a.learning_rate)
    a.lr_drops = _check_optimizer(a.optimizer, a.momentum, a.nesterov, a.weight_decay, a.lr_drops)
    if a.lr_drops:
        a.decay_fraction = 0.0
    if spec.build is not None:
        build_regularizer(a.method, **hp)  # the regularizer's own checks, before any data is loaded
    if not isinstance(a.validation_labels, (int, np.integer)) or not 0 <= a.validation_labels < a.labels:
        raise ConfigError(f"validation_labels must be an integer in [0, labels={a.labels}), "
                          f"got {a.validation_labels!r}")
    a.checkpoint_every = _checkpoint_every(a.checkpoint_every, a.steps)
    a.export, a.export_format, a.export_version = check_export(a.export, a.export_format, a.export_version)
    a.metrics_json = _check_writable_target(a.metrics_json, "metrics file")
    a.tensorboard = _check_writable_target(a.tensorboard, "TensorBoard folder")
    try:
        a.splits = kdata.check_splits(a.splits)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    _lock_export(a.export)
    config = {"method": a.method, "dataset": a.dataset, "labels": int(a.labels), "model": a.model,
              "steps": int(a.steps), "batch_labeled": int(a.batch_labeled), "batch_unlabeled": int(a.batch_unlabeled),
              "seed": int(a.seed), "hyperparameters": hp, "learning_rate": a.learning_rate,
              "decay_fraction": a.decay_fraction, "width": a.width, "augment": a.augment,
              "validation_labels": int(a.validation_labels), **data_settings(a.data_dir, a.splits)}
    opt_info = {"optimizer": a.optimizer, "weight_decay": float(a.weight_decay), "lr_drops": list(a.lr_drops)}
    if a.optimizer == "sgd":
        opt_info.update(momentum=float(a.momentum), nesterov=bool(a.nesterov))
    if a.optimizer != "adam" or a.lr_drops:  # Adam with linear decay: the config of earlier checkpoints
        config.update(opt_info)
    if a.checkpoint_dir is not None:
        a.checkpoint_dir = check_checkpoint_dir(a.checkpoint_dir, config)
    return spec, hp, opt_info


def check_width(width, model, spec):
    """ConfigError unless ``width`` (given explicitly) is a finite number > 0 that ``model`` (or the method's
    own networks) uses: the plain ``mlp`` has no width (1, the default, is what it is)."""
    if isinstance(width, bool) or not isinstance(width, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(width) and width > 0):
        raise ConfigError(f"width must be a finite number > 0 (a channel multiplier, e.g. 0.5 or 2), got {width!r}")
    if model == "mlp" and spec.train is None and width != 1:  # 1: the default, what the mlp is
        raise ConfigError(f"--width {width:g} applies to the conv and ResNet models (e.g. --model conv_small); "
                          "the mlp has no width: drop --width or choose one of those models")


def _checkpoint_every(every, steps):
    """``every`` checked (default: steps/20)."""
    if every is None:
        every = max(1, int(steps) // 20)
    return check_int("checkpoint_every", every, 1, error=ConfigError)


def _prepare(a, spec, hp):
    """Devices, data, split and the method's :class:`RunContext` (the model's own checks run here too)."""
    from kzoo import backend as kb
    from kzoo import data as kdata

    try:
        kb.check_distribution(a.distribution, a.devices)
        a.n_devices = kb.setup_devices(a.distribution, a.devices) if a.distribution else 1
    except ValueError as e:
        raise ConfigError(str(e)) from e
    for name in ("batch_labeled", "batch_unlabeled"):
        if getattr(a, name) % a.n_devices:
            raise ConfigError(f"{name}={getattr(a, name)} must be a multiple of the {a.n_devices} devices "
                              "(each replica gets an equal share of the global batch)")

    try:
        ds = kdata.load(a.dataset, data_dir=a.data_dir, seed=a.seed, download=a.download, splits=a.splits)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    try:
        x_l, y_l, x_u, x_val, y_val = _split(ds, a.labels, a.validation_labels, a.seed)
    except ValueError as e:
        where = f" (validation split of {a.validation_labels} of the {a.labels} labels)" if a.validation_labels else ""
        # run() always splits class-balanced: labeled_split's hint balanced=False is not an option here
        reason = str(e).replace(" or pass balanced=False", "").replace("n_labels", "labels")
        raise ConfigError(f"{reason}{where}") from None
    if x_val is None and ds.x_val is not None:  # the dataset's own validation split (TFDS splits)
        x_val, y_val = ds.x_val, ds.y_val
    timer = _step_timer()
    callbacks = [timer]
    if a.tensorboard and x_val is not None:
        from kzoo.callbacks import EpochMetrics

        # the classifier's validation error and NLL at each epoch's end, written beside the loss terms
        callbacks.append(EpochMetrics(lambda m: _validation_metrics(m, x_val, y_val)))
    ctx = RunContext(spec, hp, ds, x_l, y_l, x_u, a.model, a.width, int(a.steps), int(a.batch_labeled),
                     int(a.batch_unlabeled), int(a.seed), a.learning_rate, a.decay_fraction, a.augment, a.jit_compile,
                     a.verbose, callbacks=callbacks, x_val=x_val, y_val=y_val, checkpoint_dir=a.checkpoint_dir,
                     checkpoint_every=int(a.checkpoint_every), tensorboard=a.tensorboard,
                     optimizer_name=a.optimizer, momentum=float(a.momentum), nesterov=bool(a.nesterov),
                     weight_decay=float(a.weight_decay), lr_drops=a.lr_drops)
    try:
        ctx.make_classifier()  # the model's own checks (input shape, width) before training
    except ValueError as e:
        raise ConfigError(str(e)) from e
    return ds, ctx, timer


def _train(a, spec, ctx):
    """The method's training loop (``spec.train``, or :func:`train_regularized`) in the distribution scope."""
    import keras

    from kzoo import backend as kb

    keras.utils.set_random_seed(a.seed)
    with kb.distribution_scope(a.distribution, a.devices):
        ctx.is_chief = kb.is_chief()
        return (spec.train or train_regularized)(ctx)


def _report(a, hp, opt_info, ds, ctx, timer, clf):
    """The result dict of :func:`run`: settings, steps, speed, validation and test metrics."""
    import keras

    ran = getattr(timer, "end", None) is not None
    train_seconds = timer.end - timer.start if ran else 0.0
    steady = timer.end - timer.first_step_end if ran and timer.first_step_end else 0.0
    result = {
        "method": a.method,
        "dataset": a.dataset,
        "labels": int(a.labels),
        "seed": int(a.seed),
        "backend": keras.backend.backend(),
        "model": a.model,
        "hyperparameters": {
            **hp,
            **ctx.info,
            "learning_rate": a.learning_rate,
            "decay_fraction": a.decay_fraction,
            **opt_info,
            "batch_labeled": a.batch_labeled,
            "batch_unlabeled": a.batch_unlabeled if ctx.semi_supervised else 0,
            "augment": a.augment,
            "jit_compile": a.jit_compile,
        },
        # optimizer steps of the whole run (a resumed run counts those before the interruption)
        "train_steps": int(ctx.guards[-1].step if ctx.guards else timer.steps),
        "train_seconds": round(train_seconds, 3),
        "steps_per_second": round((timer.steps - 1) / steady, 2) if timer.steps > 1 and steady > 0 else None,
    }
    if a.applied:
        result["preset"] = a.applied
    if a.validation_labels:
        result["validation_labels"] = int(a.validation_labels)
    if ctx.x_val is not None:
        result.update(evaluate_classifier(clf, ctx.x_val, ctx.y_val, prefix="val"))
    if a.distribution:
        result["distribution"] = {"kind": a.distribution, "devices": a.n_devices}
    if a.test:
        result.update(evaluate_classifier(clf, ds.x_test, ds.y_test))
    return result


def _write_outputs(a, ctx, clf, result):
    """Export, metrics JSON, then the checkpoints removed (atomic; only the chief writes in multi-worker)."""
    if not ctx.is_chief:
        return
    if a.export:
        from kzoo.export import export_classifier

        # the plain classifier, no regularizer
        result["export"] = export_classifier(clf, a.export, format=a.export_format, version=a.export_version)
    if a.metrics_json:
        write_json_atomic(a.metrics_json, result)
    if a.checkpoint_dir:
        from kzoo.checkpoints import clear_checkpoints

        clear_checkpoints(a.checkpoint_dir)  # the run is complete; its outputs are written


def _validation_metrics(model, x, y):
    """``{"val_error", "val_nll"}`` of the classifier that ``model`` trains (its ``network`` or ``classifier``)."""
    import keras

    for attr in ("network", "classifier"):
        net = getattr(model, attr, None)
        if isinstance(net, keras.Model):
            return evaluate_classifier(net, x, y, prefix="val")
    return {}


def _split(ds, labels, validation_labels, seed):
    """``(x_l, y_l, x_u, x_val, y_val)``: the labeled subset, minus a class-balanced validation split.

    Without a validation split this is ``kzoo.data.labeled_split`` (the unlabeled
    pool is every training input); with one, the validation examples are also
    removed from the unlabeled pool, so nothing of them is trained on.
    """
    from kzoo import data as kdata

    nc = ds.num_classes
    idx_l, y_l, _ = kdata.labeled_split(np.arange(len(ds.x_train)), ds.y_train, labels, num_classes=nc, seed=seed)
    if not validation_labels:
        return ds.x_train[idx_l], y_l, ds.x_train, None, None
    if labels - validation_labels < nc:
        raise ConfigError(f"validation_labels={validation_labels} leaves {labels - validation_labels} of the {labels} "
                         f"labels to train on, fewer than the {nc} classes (each class needs a training label); "
                         "lower --validation-labels or raise --labels")
    idx_val, y_val, idx_l = kdata.labeled_split(idx_l, y_l, validation_labels, num_classes=nc, seed=seed + 1,
                                                unlabeled_includes_labeled=False)
    keep = np.ones(len(ds.x_train), dtype=bool)
    keep[idx_val] = False
    y_train = np.asarray(ds.y_train)
    if y_train.ndim > 1:
        y_train = y_train.argmax(axis=-1)
    return ds.x_train[idx_l], y_train[idx_l].astype(np.int32), ds.x_train[keep], ds.x_train[idx_val], y_val


# ----------------------------------------------------------------------------
# Pretraining (kzoo pretrain NAME): generative models reused across runs
# ----------------------------------------------------------------------------


@locks.scoped
def pretrain(name, dataset="digits", steps=2000, batch_size=128, learning_rate=None, seed=0, data_dir=None,
             export=None, metrics_json=None, hyperparameters=None, verbose=1, checkpoint_dir=None,
             checkpoint_every=None):
    """Train the registered pretrainer ``name`` on ``dataset``'s inputs and save it to ``export``.

    ``checkpoint_dir``: checkpoint every ``checkpoint_every`` steps (default
    steps/20); the same call after a crash or kill resumes from the latest
    checkpoint, and the checkpoints are removed once the model is saved.
    """
    from kzoo import data as kdata
    from kzoo.methods import get_pretrainer

    try:
        spec = get_pretrainer(name)
        hp = spec.resolve(hyperparameters)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from e
    check_dataset(dataset, kdata.DATASETS, error=ConfigError)
    check_int("steps", steps, 1, error=ConfigError)
    check_int("batch_size", batch_size, 1, error=ConfigError)
    if learning_rate is not None:
        _check_learning_rate(learning_rate)
    if export is None:
        raise ConfigError("pretrain needs --export: where to save the trained model")
    export = os.fspath(export)
    if os.path.splitext(export)[1] not in ("", ".keras"):
        raise ConfigError(f"pretrain saves a Keras model: --export must name a .keras file (or a name without a "
                          f"suffix, saved as NAME.keras), got {export}")
    export = _check_writable_target(export if export.endswith(".keras") else export + ".keras", "export file")
    metrics_json = _check_writable_target(metrics_json, "metrics file")
    checkpoint_every = _checkpoint_every(checkpoint_every, steps)
    if checkpoint_dir is not None:
        config = {"pretrain": name, "dataset": dataset, "steps": int(steps), "batch_size": int(batch_size),
                  "learning_rate": learning_rate, "seed": int(seed), "hyperparameters": hp,
                  **data_settings(data_dir, None)}
        checkpoint_dir = check_checkpoint_dir(checkpoint_dir, config)

    import keras

    ds = kdata.load(dataset, data_dir=data_dir, seed=seed)
    timer = _step_timer()
    ctx = PretrainContext(spec, hp, ds, int(steps), int(batch_size), learning_rate, int(seed), export,
                          verbose, callbacks=[timer], checkpoint_dir=checkpoint_dir,
                          checkpoint_every=int(checkpoint_every))
    keras.utils.set_random_seed(seed)
    metrics = spec.run(ctx) or {}
    result = {"model": name, "dataset": dataset, "seed": int(seed), "backend": keras.backend.backend(),
              "hyperparameters": hp, "steps": int(timer.steps) if hasattr(timer, "steps") else None,
              "train_seconds": round(timer.end - timer.start, 3) if hasattr(timer, "end") else None,
              "export": export, **ctx.info, **metrics}
    if metrics_json:
        write_json_atomic(metrics_json, result)
    if checkpoint_dir:
        from kzoo.checkpoints import clear_checkpoints

        clear_checkpoints(checkpoint_dir)  # the model is saved: its checkpoints are no longer needed
    return result
