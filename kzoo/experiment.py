"""One training run, end to end: what ``kzoo train`` and the benchmarks call.

dataset -> class-balanced labeled subset + unlabeled pool -> regularized
``fit`` -> test error / NLL -> optional SavedModel export and metrics JSON.
Every argument is checked before any data is loaded or any step is taken, and
outputs are written atomically at the end.
"""

import contextlib
import dataclasses
import itertools
import json
import math
import os
import tempfile
import time

import numpy as np

from kzoo import locks
from kzoo.methods import METHODS, PRESET_RUN_SETTINGS, get as get_method  # noqa: F401  (METHODS: public)


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
    if os.path.isdir(path) and what != "export folder":
        raise ConfigError(f"{what} {path} is an existing folder; give a file path, e.g. "
                          f"{os.path.join(path, 'metrics.json' if 'metrics' in what else 'model.keras')}")
    return path


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


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """``with atomic_file(path) as tmp:`` write ``tmp``; it replaces ``path`` only if the block succeeds.

    An interrupted write never leaves a half-written file at ``path``, and what
    was there survives until the new file is complete.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text_atomic(path, text, suffix=""):
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    with atomic_file(path, suffix) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def write_json_atomic(path, payload):
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n", suffix=".json")


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
    logits = classifier.predict(x, batch_size=batch_size, verbose=0)
    logits = np.asarray(logits, dtype=np.float64)
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    nll = float(-log_p[np.arange(len(y)), y].mean())
    error = float((logits.argmax(axis=1) != y).mean())
    return {f"{prefix}_error": error, f"{prefix}_nll": nll}


def _skip_batches(stream, n):
    """``stream`` without its first ``n`` batches (a resumed run continues where the killed one stopped)."""
    if hasattr(stream, "skip") and hasattr(stream, "element_spec"):  # tf.data.Dataset
        return stream.skip(n)

    def rest():
        yield from itertools.islice(iter(stream), n, None)

    return rest()


@dataclasses.dataclass
class RunContext:
    """Everything a method's training loop gets: data, settings, hyperparameters.

    ``train(ctx)`` of a :class:`kzoo.methods.Method` returns the trained plain
    classifier (a Keras model from inputs to logits); ``ctx.callbacks`` (the step
    timer, and whatever the caller adds) must be passed to every ``fit`` it calls.
    The default loop, :func:`train_regularized`, is the one VAT and every other
    regularizer-on-a-classifier method use.

    ``x_val``/``y_val``: the validation split carved out of the labeled set
    (None without ``validation_labels``); the run evaluates the returned
    classifier on it. :meth:`fit` adds the fault-tolerance callback (checkpoints
    in ``checkpoint_dir``, resume, divergence guard) and TensorBoard logging; a
    method's loop gets them by calling ``ctx.fit`` once for its ``steps`` steps.
    The run builds everything inside its distribution scope (several devices).
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
    x_val: object = None
    y_val: object = None
    checkpoint_dir: object = None
    checkpoint_every: int = 100
    tensorboard: object = None
    is_chief: bool = True
    guards: list = dataclasses.field(default_factory=list)
    # the optimizer (see run(): optimizer, momentum, nesterov, weight_decay, lr_drops)
    optimizer_name: str = "adam"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_drops: tuple = ()

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
        """The run's optimizer: Adam (``kwargs`` go to it, e.g. ``beta_1``) or, with ``optimizer="sgd"``,
        SGD with ``momentum``/``nesterov`` and coupled L2 ``weight_decay`` (kzoo.ops.SGDWithL2).

        The learning rate decays linearly to 0 over the last ``decay_fraction`` of
        the steps or, with ``lr_drops``, is multiplied by 0.1 at each of those
        fractions of the steps (kzoo.ops.StepDecay).
        """
        import keras

        from kzoo.ops import LinearDecay, SGDWithL2, StepDecay

        lr = self.learning_rate if learning_rate is None else learning_rate
        if self.lr_drops:
            schedule = StepDecay(lr, drop_steps(self.lr_drops, self.steps))
        else:
            schedule = LinearDecay(lr, self.steps, int(round(self.decay_fraction * self.steps)))
        if self.optimizer_name == "sgd":
            return SGDWithL2(schedule, momentum=float(self.momentum), nesterov=bool(self.nesterov),
                             l2=float(self.weight_decay), **kwargs)
        return keras.optimizers.Adam(schedule, **kwargs)

    def fit(self, model, stream=None):
        """``model.fit`` (compiled, built) for ``steps`` optimizer steps in equal epochs, with the run's callbacks.

        With ``checkpoint_dir``: resumes from its latest checkpoint (weights,
        optimizer, seed state; the stream skips the batches already consumed)
        and checkpoints every ``checkpoint_every`` steps. Raises
        :class:`kzoo.callbacks.TrainingDiverged` when a loss became NaN/inf.
        """
        return _guarded_fit(self, model, self.stream() if stream is None else stream, is_chief=self.is_chief,
                            tensorboard=self.tensorboard)


def _guarded_fit(ctx, model, stream, is_chief=True, tensorboard=None):
    """The fit of :class:`RunContext` and :class:`PretrainContext`: ``ctx.steps`` steps, resume, checkpoints."""
    from kzoo import callbacks as kcb

    epochs = _epochs_for(ctx.steps)
    per_epoch = ctx.steps // epochs
    start = 0
    if ctx.checkpoint_dir:
        start, path = kcb._restore_or_fall_back(model, ctx.checkpoint_dir, say=_warn)
        if path is not None:
            ctx.info["resumed_from_step"] = start
            if ctx.verbose:
                print(f"kzoo: resuming from the checkpoint at step {start} in {ctx.checkpoint_dir}")
    guard = kcb.TrainingGuard(ctx.steps, ctx.checkpoint_dir, ctx.checkpoint_every, start, write=is_chief)
    ctx.guards.append(guard)
    if start >= ctx.steps:
        return None
    if start:
        stream = _skip_batches(stream, start)
    callbacks = list(ctx.callbacks) + [guard]
    if tensorboard:
        callbacks.append(kcb.tensorboard(tensorboard, ctx.steps))
    history = model.fit(stream, steps_per_epoch=per_epoch, epochs=epochs, initial_epoch=start // per_epoch,
                        verbose=ctx.verbose, callbacks=callbacks, shuffle=False)
    guard.check()
    return history


def _warn(message):
    """A warning the user must see even with --quiet (one line on stderr)."""
    import sys

    print(f"kzoo: warning: {message}", file=sys.stderr, flush=True)


def _check_learning_rate(learning_rate):
    """ConfigError unless ``learning_rate`` is a finite number > 0; a warning above 1 (legal, rarely meant)."""
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ConfigError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if learning_rate > 1:
        _warn(f"learning_rate={learning_rate:g} is above 1; Adam and SGD usually diverge there (typical: 1e-4..0.1)")


OPTIMIZERS = ("adam", "sgd")


def drop_steps(lr_drops, steps):
    """The optimizer steps at which ``lr_drops`` (fractions of ``steps``) multiply the learning rate by 0.1
    (in a very short run two drops may fall on the same step: it then multiplies by 0.01)."""
    return [max(1, int(round(float(f) * steps))) for f in lr_drops]


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


@locks.scoped  # the checkpoint folder and export target stay locked while the run lasts
def run(
    method="vat",
    dataset="digits",
    labels=100,
    model="mlp",
    steps=None,
    batch_labeled=32,
    batch_unlabeled=128,
    seed=0,
    hyperparameters=None,
    learning_rate=None,
    decay_fraction=1 / 3,
    width=1.0,
    augment=None,
    data_dir=None,
    jit_compile="auto",
    export=None,
    metrics_json=None,
    verbose=1,
    validation_labels=0,
    test=True,
    checkpoint_dir=None,
    checkpoint_every=None,
    distribution=None,
    devices=None,
    tensorboard=None,
    optimizer="adam",
    momentum=0.0,
    nesterov=False,
    weight_decay=0.0,
    lr_drops=None,
    preset=True,
    **hyperparameter_kwargs,
):
    """Train ``method`` on ``dataset`` with ``labels`` labeled examples; returns the metrics dict.

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
    """
    from kzoo import data as kdata
    from kzoo import models as kmodels

    # ---- validate everything before any work -------------------------------
    given = {k: v for k, v in {**(hyperparameters or {}), **hyperparameter_kwargs}.items() if v is not None}
    resolve_hyperparameters(method, given)  # an unknown method or hyperparameter, before the preset
    explicit = {"steps": steps, "learning_rate": learning_rate, **given}
    applied = get_method(method).preset_for_run(dataset, labels, model, explicit) if preset else {}
    steps = applied.get("steps", 1000 if steps is None else steps)
    learning_rate = applied.get("learning_rate", 1e-3 if learning_rate is None else learning_rate)
    preset_hp = {k: v for k, v in applied.items() if k not in PRESET_RUN_SETTINGS}
    spec, hp = resolve_hyperparameters(method, {**preset_hp, **given})
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
    _check_learning_rate(learning_rate)
    lr_drops = _check_optimizer(optimizer, momentum, nesterov, weight_decay, lr_drops)
    if lr_drops:
        decay_fraction = 0.0
    if spec.build is not None:
        build_regularizer(method, **hp)  # the regularizer's own checks, before any data is loaded
    if not isinstance(validation_labels, (int, np.integer)) or not 0 <= validation_labels < labels:
        raise ConfigError(f"validation_labels must be an integer in [0, labels={labels}), got {validation_labels!r}")
    if checkpoint_every is None:
        checkpoint_every = max(1, int(steps) // 20)
    if not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every!r}")
    export = _check_writable_target(export, "export folder")
    metrics_json = _check_writable_target(metrics_json, "metrics file")
    _lock_export(export)
    config = {"method": method, "dataset": dataset, "labels": int(labels), "model": model, "steps": int(steps),
              "batch_labeled": int(batch_labeled), "batch_unlabeled": int(batch_unlabeled), "seed": int(seed),
              "hyperparameters": hp, "learning_rate": learning_rate, "decay_fraction": decay_fraction,
              "width": width, "augment": augment, "validation_labels": int(validation_labels)}
    opt_info = {"optimizer": optimizer, "weight_decay": float(weight_decay), "lr_drops": list(lr_drops)}
    if optimizer == "sgd":
        opt_info.update(momentum=float(momentum), nesterov=bool(nesterov))
    if optimizer != "adam" or lr_drops:  # Adam with linear decay: the config of earlier checkpoints
        config.update(opt_info)
    if checkpoint_dir is not None:
        checkpoint_dir = _check_checkpoint_dir(checkpoint_dir, config)

    import keras

    from kzoo import backend as kb

    try:
        kb.check_distribution(distribution, devices)
        n_devices = kb.setup_devices(distribution, devices) if distribution else 1
    except ValueError as e:
        raise ConfigError(str(e)) from e
    for name, value in (("batch_labeled", batch_labeled), ("batch_unlabeled", batch_unlabeled)):
        if value % n_devices:
            raise ConfigError(f"{name}={value} must be a multiple of the {n_devices} devices "
                              "(each replica gets an equal share of the global batch)")

    ds = kdata.load(dataset, data_dir=data_dir, seed=seed)
    try:
        x_l, y_l, x_u, x_val, y_val = _split(ds, labels, validation_labels, seed)
    except ValueError as e:
        where = f" (validation split of {validation_labels} of the {labels} labels)" if validation_labels else ""
        # run() always splits class-balanced: labeled_split's hint balanced=False is not an option here
        reason = str(e).replace(" or pass balanced=False", "").replace("n_labels", "labels")
        raise ConfigError(f"{reason}{where}") from None
    timer = _step_timer()
    ctx = RunContext(spec, hp, ds, x_l, y_l, x_u, model, width, int(steps), int(batch_labeled),
                     int(batch_unlabeled), int(seed), learning_rate, decay_fraction, augment, jit_compile,
                     verbose, callbacks=[timer], x_val=x_val, y_val=y_val, checkpoint_dir=checkpoint_dir,
                     checkpoint_every=int(checkpoint_every), tensorboard=tensorboard,
                     optimizer_name=optimizer, momentum=float(momentum), nesterov=bool(nesterov),
                     weight_decay=float(weight_decay), lr_drops=lr_drops)
    try:
        ctx.make_classifier()  # the model's own checks (input shape, width) before training
    except ValueError as e:
        raise ConfigError(str(e)) from e

    # ---- train ---------------------------------------------------------------
    keras.utils.set_random_seed(seed)
    with kb.distribution_scope(distribution, devices):
        ctx.is_chief = kb.is_chief()
        clf = (spec.train or train_regularized)(ctx)
    ran = getattr(timer, "end", None) is not None
    train_seconds = timer.end - timer.start if ran else 0.0
    steady = timer.end - timer.first_step_end if ran and timer.first_step_end else 0.0
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
            **opt_info,
            "batch_labeled": batch_labeled,
            "batch_unlabeled": batch_unlabeled if semi else 0,
            "augment": augment,
            "jit_compile": jit_compile,
        },
        # optimizer steps of the whole run (a resumed run counts those before the interruption)
        "train_steps": int(ctx.guards[-1].step if ctx.guards else timer.steps),
        "train_seconds": round(train_seconds, 3),
        "steps_per_second": round((timer.steps - 1) / steady, 2) if timer.steps > 1 and steady > 0 else None,
    }
    if applied:
        result["preset"] = applied
    if validation_labels:
        result["validation_labels"] = int(validation_labels)
        result.update(evaluate_classifier(clf, x_val, y_val, prefix="val"))
    if distribution:
        result["distribution"] = {"kind": distribution, "devices": n_devices}
    if test:
        result.update(evaluate_classifier(clf, ds.x_test, ds.y_test))

    # ---- outputs (atomic; only the chief writes in multi-worker training) -----
    if ctx.is_chief:
        if export:
            from kzoo.export import export_classifier

            result["export"] = export_classifier(clf, export)  # the plain classifier, no regularizer
        if metrics_json:
            write_json_atomic(metrics_json, result)
        if checkpoint_dir:
            from kzoo.checkpoints import clear_checkpoints

            clear_checkpoints(checkpoint_dir)  # the run is complete; its outputs are written
    return result


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
    idx_val, y_val, idx_l = kdata.labeled_split(idx_l, y_l, validation_labels, num_classes=nc, seed=seed + 1,
                                                unlabeled_includes_labeled=False)
    keep = np.ones(len(ds.x_train), dtype=bool)
    keep[idx_val] = False
    y_train = np.asarray(ds.y_train)
    if y_train.ndim > 1:
        y_train = y_train.argmax(axis=-1)
    return ds.x_train[idx_l], y_train[idx_l].astype(np.int32), ds.x_train[keep], ds.x_train[idx_val], y_val


def _check_checkpoint_dir(path, config):
    """The checkpoint folder, checked writable and locked for this process; ConfigError if it holds another
    run's checkpoints or another process holds it."""
    from kzoo import checkpoints, locks

    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"checkpoint folder {path} is an existing file, not a folder")
    _check_writable_target(os.path.join(path, "run.json"), "checkpoint folder")
    try:
        os.makedirs(path, exist_ok=True)
        checkpoints.lock_checkpoint_dir(path)
        checkpoints.remove_stale(path)  # what saves killed midway left (no other run can be writing: locked)
    except locks.LockedError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"checkpoint folder {path} cannot be written: {e.strerror}") from None
    stamp = os.path.join(path, "run.json")
    current = json.loads(json.dumps(config, default=str))
    if checkpoints.latest_checkpoint(path)[1] is not None and os.path.isfile(stamp):
        try:
            with open(stamp) as f:
                previous = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{stamp} (the settings of the run checkpointed there) is unreadable "
                              f"({type(e).__name__}); to start over, remove the folder (rm -r {path}) and "
                              "rerun the same command") from None
        if previous != current:
            diff = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
            raise ConfigError(f"checkpoint folder {path} holds a run with other settings ({', '.join(diff)} "
                              "differ); rerun the same command to resume it, or use another --checkpoint-dir")
    write_json_atomic(stamp, current)
    return path


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
    checkpoint_dir: object = None
    checkpoint_every: int = 100
    info: dict = dataclasses.field(default_factory=dict)
    guards: list = dataclasses.field(default_factory=list)

    def fit(self, model, stream):
        """``model.fit`` (compiled, built) for ``steps`` steps in equal epochs, with the run's callbacks.

        With ``checkpoint_dir`` it checkpoints and resumes like :meth:`RunContext.fit`.
        """
        return _guarded_fit(self, model, stream)


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
    if dataset not in kdata.DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(kdata.DATASETS)}")
    for label, value in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{label} must be an integer >= 1, got {value!r}")
    if learning_rate is not None:
        _check_learning_rate(learning_rate)
    if export is None:
        raise ConfigError("pretrain needs --export: where to save the trained model")
    export = _check_writable_target(export, "export file")
    metrics_json = _check_writable_target(metrics_json, "metrics file")
    if checkpoint_every is None:
        checkpoint_every = max(1, int(steps) // 20)
    if not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every!r}")
    if checkpoint_dir is not None:
        config = {"pretrain": name, "dataset": dataset, "steps": int(steps), "batch_size": int(batch_size),
                  "learning_rate": learning_rate, "seed": int(seed), "hyperparameters": hp}
        checkpoint_dir = _check_checkpoint_dir(checkpoint_dir, config)

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
