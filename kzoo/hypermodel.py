"""Any registered kzoo method as a ``keras_tuner.HyperModel``, and TensorBoard HParams records.

    import keras_tuner, kzoo.tuning
    hypermodel = kzoo.tuning.HyperModel("vat", dataset="digits", labels=100, steps=500)
    tuner = keras_tuner.BayesianOptimization(hypermodel, objective=kzoo.tuning.objective(),
                                             max_trials=10, directory="search", project_name="vat")
    tuner.search()
    best = tuner.get_best_hyperparameters()[0].values     # then: kzoo train vat --epsilon ... (all labels)

``build(hp)`` declares the method's hyperparameters in ``hp`` (one ``Choice``
per hyperparameter: the ``grid`` given, else each hyperparameter's declared
grid; ``fixed`` ones are held) and returns a fresh classifier of the run's
model. ``fit(hp, model)`` trains the method with ``hp``'s values through
:func:`kzoo.experiment.run`, on the labeled set minus a class-balanced
validation split, never looking at the test set, and returns
``{"val_error", "val_nll", "train_seconds"}``: minimize ``val_error``. Every
keras-tuner tuner works (GridSearch, RandomSearch, BayesianOptimization,
Hyperband: Hyperband's ``epochs`` budget is ``epochs * steps_per_epoch``
optimizer steps). ``fit`` puts the best execution's trained weights into
``model`` and hands them to the tuner's checkpoint, so ``tuner.get_best_models()``
returns trained classifiers (trained on the validation split's complement:
for the final model, re-train the best hyperparameters on all labels, as
``kzoo tune`` does). Methods whose classifier is a network of their own
(gan-ssl, ali-ssl) keep their weights in kzoo's run; re-train those.

On your own data and model, as with any keras-tuner HyperModel::

    def build_model(hp):                  # or a fixed keras.Model (each trial trains a fresh clone)
        return keras.Sequential([keras.Input((20,)), keras.layers.Dense(hp.Int("units", 16, 64, step=16),
                                 activation="relu"), keras.layers.Dense(3)])      # logits

    hypermodel = kzoo.tuning.HyperModel("vat", model=build_model, grid={"epsilon": [0.5, 1.0, 2.0]})
    tuner = keras_tuner.RandomSearch(hypermodel, objective=kzoo.tuning.objective(), max_trials=4)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=5, callbacks=[keras.callbacks.EarlyStopping()])
    # semi-supervised: tuner.search(kzoo.data.semi_supervised(x_l, y_l, x_u), steps_per_epoch=100, ...)

``fit`` then trains ``build``'s classifier with the method's regularizer (``hp``'s
values) on what ``tuner.search`` was given (arrays, a ``tf.data.Dataset`` or a
kzoo stream of ``({"labeled", "unlabeled"}, y)`` batches), with the user's
callbacks and ``fit`` arguments (``epochs``, ``batch_size``, ``steps_per_epoch``),
and scores it on ``validation_data``: ``{"val_error", "val_nll"}`` and the last
epoch's logs (``val_loss``, ``val_accuracy`` if compiled...). ``model`` may also
name a built-in network (``"mlp"``, ``"conv_small"``...), built for
``input_shape`` and ``num_classes``. Data that the classifier cannot take (other
input shapes, labels outside its classes) is refused in one line before training
(:class:`UnusableDataError`, which stops the search).
"""

import json
import os
import shutil
import sys
import time

import keras_tuner
import numpy as np

from kzoo.experiment import ConfigError, build_regularizer, evaluate_classifier, resolve_hyperparameters
from kzoo.io import write_text_atomic

OBJECTIVE = "val_error"


class UnusableDataError(ConfigError, keras_tuner.errors.FatalValueError):
    """Data given to ``tuner.search`` that the classifier cannot take; keras-tuner stops the search on it (a
    fatal error, not a failed trial)."""


def objective():
    """The objective of a kzoo search: the validation error, minimized."""
    return keras_tuner.Objective(OBJECTIVE, direction="min")


def declared_grid(method, grid=None):
    """``grid`` (name -> values) checked against the method's ranges, or each hyperparameter's declared grid."""
    spec, _ = resolve_hyperparameters(method)
    if not grid:
        return {hp.name: tuple(hp.grid) for hp in spec.hyperparameters if hp.grid}
    checked = {}
    for name, values in grid.items():
        try:
            hp = spec.hyperparameter(name)
            checked[name] = tuple(hp.check(v, method) for v in values)
        except KeyError:
            raise ConfigError(f"{method} has no hyperparameter {name!r}") from None
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return checked


def train_and_validate(method, values, fixed=None, validation_labels=None, executions=1, tensorboard=None,
                       trial_id=None, **run_kwargs):
    """Train ``method`` with the hyperparameters ``values`` (``executions`` times: seeds seed, seed+1, ...)
    on the validation split; ``{"val_error", "val_nll", "train_seconds", "val_errors"}`` (means but the last).

    ``tensorboard``: each execution logs its training under ``tensorboard/trial_ID/execution_E`` and an
    HParams record (the hyperparameters and the validation error) for TensorBoard's HParams dashboard.
    """
    from kzoo.experiment import run

    spec, _ = resolve_hyperparameters(method)
    values = {k: spec.hyperparameter(k).check(v, method) for k, v in values.items()}
    errors, nlls, seconds = [], [], []
    for e in range(executions):
        kwargs = dict(run_kwargs)
        kwargs["seed"] = kwargs.get("seed", 0) + e
        logdir = None
        if tensorboard:
            logdir = os.path.join(tensorboard, f"trial_{trial_id or time.time_ns()}", f"execution_{e}")
            kwargs["tensorboard"] = logdir
        result = run(method=method, hyperparameters={**(fixed or {}), **values},
                     validation_labels=validation_labels, test=False, verbose=0, **kwargs)
        errors.append(result["val_error"])
        nlls.append(result["val_nll"])
        seconds.append(result["train_seconds"])
        if logdir:
            write_hparams(logdir, {**(fixed or {}), **values, "seed": kwargs["seed"]},
                          {"val_error": result["val_error"], "val_nll": result["val_nll"]},
                          trial_id=f"{trial_id}/{e}" if trial_id else None)
    return {"val_error": sum(errors) / len(errors), "val_nll": sum(nlls) / len(nlls),
            "train_seconds": sum(seconds), "val_errors": errors}


# ----------------------------------------------------------------------------
# TensorBoard's HParams plugin (written without TensorFlow: tensorboard's own protos and event writer)
# ----------------------------------------------------------------------------


def _write(logdir, summaries):
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(logdir)
    try:
        for step, summary in summaries:
            writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    finally:
        writer.close()


def write_hparams_config(logdir, grid, metrics=("val_error", "val_nll")):
    """The search's experiment config (its hyperparameters' domains, the metrics) in ``logdir``."""
    from tensorboard.plugins.hparams import summary_v2 as hp_summary

    hparams = [hp_summary.HParam(name, hp_summary.Discrete(list(values))) for name, values in grid.items()]
    config = hp_summary.hparams_config_pb(hparams=hparams, metrics=[hp_summary.Metric(m) for m in metrics])
    _write(logdir, [(0, config)])


def write_hparams(logdir, hyperparameters, metrics, trial_id=None):
    """One trial's hyperparameters and final metrics in ``logdir``, for the HParams dashboard."""
    from tensorboard.plugins.hparams import summary_v2 as hp_summary
    from tensorboard.plugins.scalar import summary_v2 as scalar_summary

    values = {k: (v if isinstance(v, (bool, int, float, str)) else str(v)) for k, v in hyperparameters.items()}
    summaries = [(0, hp_summary.hparams_pb(values, trial_id=trial_id))]
    summaries += [(0, scalar_summary.scalar_pb(name, float(value))) for name, value in metrics.items()]
    _write(logdir, summaries)


# ----------------------------------------------------------------------------
# The HyperModel
# ----------------------------------------------------------------------------


class HyperModel(keras_tuner.HyperModel):
    """A registered kzoo method as a keras-tuner HyperModel (see the module docstring).

    Args:
        method: a name of :data:`kzoo.methods.METHODS`.
        grid: ``{name: values}`` to search (default: each hyperparameter's declared grid).
        fixed: other hyperparameters held at a value.
        validation_labels: size of the validation split of the labeled set (default 20% of
            ``labels``, at least one per class).
        executions: runs per trial (seeds seed, seed+1, ...), averaged.
        steps_per_epoch: with a tuner that passes ``epochs`` (Hyperband), optimizer steps per epoch
            (default: ``steps``).
        tensorboard: log each trial's training and an HParams record here.
        model: a built-in network's name (default ``"mlp"``), or your own classifier (logits): a
            ``keras.Model`` (each trial trains a fresh clone) or a function ``hp -> keras.Model``; then
            ``tuner.search`` must be given your data (see the module docstring).
        input_shape, num_classes: the built-in network for your data (instead of a built-in dataset's).
        **run_kwargs: :func:`kzoo.experiment.run` arguments (dataset, labels, model, steps, ...).
    """

    def __init__(self, method, grid=None, fixed=None, validation_labels=None, executions=1, steps_per_epoch=None,
                 tensorboard=None, name=None, tunable=True, model="mlp", input_shape=None, num_classes=None,
                 **run_kwargs):
        super().__init__(name=name or f"kzoo-{method}", tunable=tunable)
        self.method = method
        self.grid = declared_grid(method, grid)
        self.fixed = {k: v for k, v in (fixed or {}).items() if v is not None}
        if not self.grid:
            raise ConfigError(f"{method} declares no hyperparameter grid; give one (grid={{name: values}})")
        self.user_model = None if isinstance(model, str) else model
        if self.user_model is not None and not callable(self.user_model):
            raise ConfigError(f"model must be a network's name, a keras.Model or a function hp -> keras.Model; got "
                              f"{type(model).__name__}")
        run_kwargs["model"] = model if isinstance(model, str) else "mlp"
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self.num_classes = None if num_classes is None else int(num_classes)
        if (self.input_shape is None) != (self.num_classes is None):
            raise ConfigError("give input_shape and num_classes together (the built-in network for your data)")
        self.validation_labels = validation_labels
        self.executions = int(executions)
        self.steps_per_epoch = steps_per_epoch
        self.tensorboard = tensorboard
        self.run_kwargs = run_kwargs
        self._dataset = None
        if self.user_model is not None or self.input_shape is not None:
            return  # trained on the data given to tuner.search (see fit)
        from kzoo import data as kdata

        labels = run_kwargs.get("labels", 100)
        dataset = run_kwargs.get("dataset", "digits")
        if dataset not in kdata.DATASETS:
            raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(kdata.DATASETS)}")
        self._dataset = kdata.load(dataset, data_dir=run_kwargs.get("data_dir"), seed=run_kwargs.get("seed", 0))
        if validation_labels is None:
            validation_labels = max(self._dataset.num_classes, round(0.2 * labels))
        self.validation_labels = int(validation_labels)
        if tensorboard:
            write_hparams_config(tensorboard, self.grid)

    def declare_hyperparameters(self, hp):
        for name, values in self.grid.items():
            hp.Choice(name, list(values), ordered=False)

    def build(self, hp):
        """Declares the search space in ``hp``; a fresh classifier (what a trial trains): the user's model
        (built by their function, or a fresh clone of their fixed model), else the run's built-in network."""
        self.declare_hyperparameters(hp)
        import keras

        if self.user_model is not None:
            if isinstance(self.user_model, keras.Model):
                model = keras.models.clone_model(self.user_model)  # fresh weights for every trial
            else:
                model = self.user_model(hp)
            if not isinstance(model, keras.Model):
                raise UnusableDataError(f"the model function returned {type(model).__name__}, not a keras.Model "
                                        "classifier (logits)")
            return model
        from kzoo import models as kmodels
        from kzoo.networks import default_model

        if self._dataset is not None:
            kw = {"input_shape": self._dataset.input_shape, "num_classes": self._dataset.num_classes}
        else:
            kw = {"input_shape": self.input_shape, "num_classes": self.num_classes}
        model = self.run_kwargs.get("model") or (default_model(self._dataset.name) if self._dataset is not None else "mlp")
        if model != "mlp":
            kw["width"] = self.run_kwargs.get("width", 1.0)
        return kmodels.get(model, **kw)

    def fit(self, hp, model=None, *args, trial_id=None, **kwargs):
        """Trains the method with ``hp``'s values; ``{"val_error", "val_nll", ...}``.

        With data (``tuner.search(x, y, validation_data=..., ...)``): on that data (:meth:`fit_on_data`); without:
        a :func:`kzoo.experiment.run` on the built-in dataset's validation split."""
        x = args[0] if args else kwargs.pop("x", None)
        if x is not None:
            y = args[1] if len(args) > 1 else kwargs.pop("y", None)
            if len(args) > 2:
                raise UnusableDataError("give fit's other arguments by name (validation_data=, epochs=, ...)")
            return self.fit_on_data(hp, model, x, y, **kwargs)
        if self._dataset is None:
            raise UnusableDataError("this HyperModel trains on your data: tuner.search(x, y, validation_data="
                                    "(x_val, y_val), epochs=...) (a built-in dataset: HyperModel(method, "
                                    "dataset=...) without model/input_shape)")
        run_kwargs = dict(self.run_kwargs)
        epochs = kwargs.get("epochs")
        if epochs is not None:  # a tuner with a budget per trial (Hyperband): epochs * steps_per_epoch steps
            run_kwargs["steps"] = int(epochs) * int(self.steps_per_epoch or run_kwargs.get("steps", 1000))
        values = {k: v for k, v in hp.values.items() if k in self.grid}
        trained = []
        metrics = train_and_validate(self.method, values, self.fixed, self.validation_labels, self.executions,
                                     self.tensorboard, trial_id, on_trained=trained.append, **run_kwargs)
        result = {k: metrics[k] for k in ("val_error", "val_nll", "train_seconds")}
        best = trained[metrics["val_errors"].index(min(metrics["val_errors"]))]
        self._checkpoint(model, best, kwargs.get("callbacks"), result)
        return result

    def _checkpoint(self, model, trained, callbacks, logs):
        """``model`` (what ``build`` returned) takes the weights of the trial's best trained classifier, and the
        tuner's own checkpoint callback saves them, as after a ``fit`` epoch: ``tuner.get_best_models()`` then
        loads them. Methods whose classifier is a network of their own (gan-ssl, ali-ssl: other weights than
        ``build``'s classifier) leave ``model`` untrained and write no checkpoint."""
        if model is None or [tuple(w.shape) for w in model.weights] != [tuple(w.shape) for w in trained.weights]:
            return
        model.set_weights(trained.get_weights())
        for callback in callbacks or ():
            if type(callback).__name__ == "SaveBestEpoch":  # keras-tuner's per-trial best-weights checkpoint
                callback.set_model(model)
                callback.on_epoch_end(0, dict(logs))

    # ------------------------------------------------------------------------
    # The user's data
    # ------------------------------------------------------------------------

    def fit_on_data(self, hp, model, x, y=None, validation_data=None, callbacks=None, **fit_kwargs):
        """Train ``model`` (what :meth:`build` returned) with the method's regularizer at ``hp``'s values on
        ``x``/``y``, with the user's ``callbacks`` and ``fit_kwargs``; score it on ``validation_data``."""
        import keras

        from kzoo.core import Regularized

        spec, _ = resolve_hyperparameters(self.method)
        if spec.build is None:
            raise UnusableDataError(f"{self.method} trains networks of its own (a GAN); it cannot train your model "
                                    "on your data: tune it on a built-in dataset (HyperModel(method, dataset=...))")
        if model is None:
            raise UnusableDataError("fit needs the model that build(hp) returned")
        if validation_data is None:
            raise UnusableDataError("give validation_data=(x_val, y_val) to tuner.search: kzoo's objective is the "
                                    "validation error")
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise UnusableDataError("validation_data must be (x_val, y_val) arrays")
        x_val, y_val = (np.asarray(v) for v in validation_data)
        num_classes = _check_classifier(model)
        _check_data(model, num_classes, x, y, "x")
        _check_data(model, num_classes, x_val, y_val, "validation_data")
        values = {k: v for k, v in hp.values.items() if k in self.grid}
        try:
            regularizer = build_regularizer(self.method, **{**self.fixed, **values})
        except ConfigError as e:
            raise UnusableDataError(str(e)) from None
        wrapped = Regularized(model, regularizer, seed=self.run_kwargs.get("seed", 0))
        wrapped.compile(optimizer=keras.optimizers.Adam(self.run_kwargs.get("learning_rate") or 1e-3),
                        metrics=["accuracy"])
        tuner_callbacks = [c for c in callbacks or () if type(c).__name__ == "SaveBestEpoch"]
        user_callbacks = [c for c in callbacks or () if type(c).__name__ != "SaveBestEpoch"]
        fit_kwargs.setdefault("verbose", 0)
        t0 = time.perf_counter()
        history = wrapped.fit(x, y, validation_data=(x_val, y_val), callbacks=user_callbacks, **fit_kwargs)
        seconds = time.perf_counter() - t0
        result = {k: float(v[-1]) for k, v in (history.history or {}).items() if v}
        result.update(evaluate_classifier(model, x_val, y_val, prefix="val"))
        result["train_seconds"] = seconds
        self._checkpoint(model, model, tuner_callbacks, result)
        return result


# ----------------------------------------------------------------------------
# A search's files: crash-safe writes, a resume that runs every grid point once
# ----------------------------------------------------------------------------


def read_json(path):
    """The JSON object in ``path``, or None when it is missing, empty, truncated or not JSON."""
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _grid_points(space):
    """Every point of a grid of ``Choice`` hyperparameters, in keras-tuner's GridSearch order (each
    hyperparameter's default first, the last hyperparameter varying fastest)."""
    import itertools

    names, values = [], []
    for hp in space.space:
        if hp.name.startswith("tuner/"):
            continue
        vals = list(getattr(hp, "values", [hp.default]))
        names.append(hp.name)
        values.append([hp.default] + [v for v in vals if v != hp.default])
    return [dict(zip(names, point)) for point in itertools.product(*values)]


def safe_oracle(base):
    """``base`` (a keras-tuner oracle class) whose files are crash-safe and whose resume is exact.

    * ``oracle.json`` and every ``trial_*/trial.json`` are written with kzoo.io's atomic writer: a kill leaves
      the previous complete file, never an empty or half-written one.
    * Reloading never trusts a file blindly: an unreadable ``trial.json`` (a folder written before this, or
      damaged by hand) is rebuilt from kzoo's execution record of that trial, or from the grid point its id
      was given; an unreadable ``oracle.json`` is rebuilt from the trials. What was rebuilt is reported.
    * A trial that was running when the search stopped is run again, unless it had already finished (its
      ``trial.json`` says so, or kzoo's execution record of it exists): then its result is kept as is.
    * The grid oracle picks the first grid point that no trial has taken (keras-tuner's GridSearch keeps its
      order in memory only, so a resumed search skipped points and could fail with a KeyError).
    """
    import keras_tuner
    from keras_tuner.engine import trial as trial_module
    from keras_tuner.engine.hyperparameters import HyperParameters

    RUNNING, COMPLETED, FAILED = (trial_module.TrialStatus.RUNNING, trial_module.TrialStatus.COMPLETED,
                                  trial_module.TrialStatus.FAILED)
    grid = issubclass(base, keras_tuner.oracles.GridSearchOracle)

    class SafeOracle(base):
        def save(self):
            write_text_atomic(self._get_oracle_fname(), json.dumps(self.get_state()), suffix=".json")

        def _save_trial(self, trial):
            write_text_atomic(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"),
                              json.dumps(trial.get_state()), suffix=".json")

        if grid:
            def populate_space(self, trial_id):
                taken = {self._compute_values_hash(t.hyperparameters.values) for t in self.trials.values()}
                for point in _grid_points(self.get_space()):
                    if self._compute_values_hash(point) not in taken:
                        return {"status": RUNNING, "values": point}
                if self.ongoing_trials:
                    return {"status": trial_module.TrialStatus.IDLE, "values": None}
                return {"status": trial_module.TrialStatus.STOPPED, "values": None}

            def end_trial(self, trial):  # GridSearchOracle's in-memory order is not used (populate_space)
                keras_tuner.Oracle.end_trial(self, trial)

        def _records(self):
            folder = os.path.join(os.path.dirname(self._project_dir), "executions")
            found = {}
            for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
                rec = read_json(os.path.join(folder, name)) if name.endswith(".json") else None
                if rec and "trial_id" in rec and rec.get("val_error") is not None:
                    found[str(rec["trial_id"])] = rec
            return found

        def _finish_from_record(self, trial, rec):
            for name in ("val_error", "val_nll", "train_seconds"):
                if rec.get(name) is not None:
                    if not trial.metrics.exists(name):
                        trial.metrics.register(name, direction="min")
                    trial.metrics.update(name, float(rec[name]), step=0)
            trial.status = COMPLETED
            self.score_trial(trial)

        def reload(self):
            project, notes = self._project_dir, []
            records = self._records()
            state = read_json(self._get_oracle_fname())
            damaged = []
            for name in sorted(os.listdir(project)):
                path = os.path.join(project, name, "trial.json")
                if not (name.startswith("trial_") and os.path.isdir(os.path.join(project, name))):
                    continue
                trial_state = read_json(path)
                if trial_state is None:
                    damaged.append(name[len("trial_"):])
                    continue
                trial = trial_module.Trial.from_state(trial_state)
                self.trials[trial.trial_id] = trial
            for trial_id in damaged:
                values = None
                if trial_id in records:
                    values = dict(records[trial_id]["hyperparameters"])
                elif grid and state:
                    want = (state.get("id_to_hash") or {}).get(trial_id)
                    values = next((p for p in _grid_points(HyperParameters.from_config(state["hyperparameters"]))
                                   if self._compute_values_hash(p) == want), None)
                if values is None and trial_id == max(damaged + list(self.trials)):
                    # the newest trial, unfinished (no record) and its values unknown: as if never started
                    shutil.rmtree(os.path.join(project, f"trial_{trial_id}"), ignore_errors=True)
                    notes.append(f"trial_{trial_id}/trial.json was unreadable and was rebuilt (removed: the "
                                 "trial had not finished, it runs again)")
                    continue
                hps = self.hyperparameters.copy()
                hps.values = values or {}
                trial = trial_module.Trial(hyperparameters=hps, trial_id=trial_id, status=RUNNING)
                if values is None:
                    trial.status, trial.message = FAILED, "its trial.json was unreadable and its values unknown"
                self.trials[trial_id] = trial
                notes.append(f"trial_{trial_id}/trial.json was unreadable and was rebuilt")
            known = set(self.trials)
            if state is None or not set((state.get("ongoing_trials") or {}).values()) <= known \
                    or not set(state.get("start_order", [])) <= known:
                if os.path.exists(self._get_oracle_fname()):
                    notes.append("oracle.json was unreadable and was rebuilt from the trials")
                state = self.get_state()
                ids = sorted(self.trials)
                state.update(ongoing_trials={}, start_order=ids, retry_queue=[],
                             end_order=[i for i in ids if self.trials[i].status != RUNNING],
                             run_times={i: 1 for i in ids if self.trials[i].status != RUNNING},
                             tried_so_far=[], id_to_hash={})
                state["seed_state"] = state.get("seed_state", 0) + len(ids)
            self.set_state(state)
            for trial in self.trials.values():
                if trial.hyperparameters.values:  # not a damaged trial whose values are unknown
                    self._record_values(trial)
            # trials that were running when the search stopped: finished ones are kept, the others run again
            ended = set(self.end_order)
            retry = []
            for trial_id in sorted(self.trials):
                trial = self.trials[trial_id]
                if trial.status == RUNNING and trial_id in records:
                    self._finish_from_record(trial, records[trial_id])
                if trial.status == RUNNING:
                    retry.append(trial_id)
                elif trial_id not in ended:
                    self.end_order.append(trial_id)
                    self._run_times[trial_id] = max(1, self._run_times[trial_id])
                if trial_id in damaged or trial.status != RUNNING:
                    self._save_trial(trial)
            self._retry_queue = list(reversed(retry))  # popped from the end: the oldest first
            self.ongoing_trials = {}
            self.save()
            for note in notes:
                print(f"kzoo: warning: {os.path.join(project, '')}: {note}", file=sys.stderr, flush=True)

    SafeOracle.__name__ = SafeOracle.__qualname__ = f"Kzoo{base.__name__}"
    return SafeOracle


ORACLES = {"grid": "GridSearchOracle", "random": "RandomSearchOracle",
           "bayesian": "BayesianOptimizationOracle", "hyperband": "HyperbandOracle"}


def _check_classifier(model):
    """The number of classes of a logits classifier (one output ``(batch, K)``); UnusableDataError otherwise."""
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1 or len(outputs[0].shape) != 2 or outputs[0].shape[-1] is None:
        raise UnusableDataError("the model must be a built classifier with one output of shape (batch, classes) "
                                "(logits); give it a keras.Input")
    return int(outputs[0].shape[-1])


def _check_data(model, num_classes, x, y, name):
    """UnusableDataError (one line) when ``x``/``y`` (arrays, a kzoo stream or a tf.data.Dataset) do not fit the
    classifier: other input shapes, labels outside ``0..num_classes-1``, as many labels as examples."""
    want = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None

    def check_shape(shape, what):
        shape = tuple(shape)
        if want is not None and (len(shape) != len(want) or any(w is not None and s is not None and s != w
                                                                for s, w in zip(shape, want))):
            raise UnusableDataError(f"{what} has examples of shape {shape} but the model takes inputs of shape "
                                    f"{want}")

    def check_labels(labels, what):
        labels = np.asarray(labels)
        if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or
                                    (labels.size and np.all(labels == np.round(labels)))):
            raise UnusableDataError(f"{what} must be class indices (one integer per example), got shape "
                                    f"{labels.shape}, dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise UnusableDataError(f"{what} holds classes {int(labels.min())}..{int(labels.max())} but the model "
                                    f"has {num_classes} outputs (classes 0..{num_classes - 1})")

    if isinstance(x, (np.ndarray, list)) or hasattr(x, "__array__") and not hasattr(x, "element_spec"):
        x = np.asarray(x)
        check_shape(x.shape[1:], name)
        if y is None:
            raise UnusableDataError(f"{name} needs its labels: tuner.search(x, y, ...)")
        if len(y) != len(x):
            raise UnusableDataError(f"{name} has {len(x)} examples but {len(y)} labels")
        check_labels(y, f"the labels of {name}")
        return
    if isinstance(x, dict):
        raise UnusableDataError(f"{name}: give semi-supervised data as a stream of ({{'labeled', 'unlabeled'}}, y) "
                                "batches (kzoo.data.semi_supervised), with steps_per_epoch")
    from kzoo.data.splits import check_fit_data

    try:  # a kzoo stream: the labels it was made from
        check_fit_data(x, y, num_classes)
    except ValueError as e:
        raise UnusableDataError(str(e)) from None
    spec = getattr(x, "element_spec", None)  # a tf.data.Dataset: its shapes
    if isinstance(spec, tuple) and spec:
        inputs = spec[0]
        for key, part in (inputs.items() if isinstance(inputs, dict) else [(None, inputs)]):
            check_shape(part.shape[1:], name if key is None else f"{name}[{key!r}]")
