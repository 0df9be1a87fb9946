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
"""

import os
import time

import keras_tuner

from kzoo.experiment import ConfigError, resolve_hyperparameters

OBJECTIVE = "val_error"


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
        **run_kwargs: :func:`kzoo.experiment.run` arguments (dataset, labels, model, steps, ...).
    """

    def __init__(self, method, grid=None, fixed=None, validation_labels=None, executions=1, steps_per_epoch=None,
                 tensorboard=None, name=None, tunable=True, **run_kwargs):
        super().__init__(name=name or f"kzoo-{method}", tunable=tunable)
        self.method = method
        self.grid = declared_grid(method, grid)
        self.fixed = {k: v for k, v in (fixed or {}).items() if v is not None}
        if not self.grid:
            raise ConfigError(f"{method} declares no hyperparameter grid; give one (grid={{name: values}})")
        from kzoo import data as kdata

        labels = run_kwargs.get("labels", 100)
        dataset = run_kwargs.get("dataset", "digits")
        if dataset not in kdata.DATASETS:
            raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(kdata.DATASETS)}")
        self._dataset = kdata.load(dataset, data_dir=run_kwargs.get("data_dir"), seed=run_kwargs.get("seed", 0))
        if validation_labels is None:
            validation_labels = max(self._dataset.num_classes, round(0.2 * labels))
        self.validation_labels = int(validation_labels)
        self.executions = int(executions)
        self.steps_per_epoch = steps_per_epoch
        self.tensorboard = tensorboard
        self.run_kwargs = run_kwargs
        if tensorboard:
            write_hparams_config(tensorboard, self.grid)

    def declare_hyperparameters(self, hp):
        for name, values in self.grid.items():
            hp.Choice(name, list(values), ordered=False)

    def build(self, hp):
        """Declares the search space in ``hp``; a fresh classifier of the run's model (what a trial trains)."""
        self.declare_hyperparameters(hp)
        from kzoo import models as kmodels
        from kzoo.networks import default_model

        kw = {"input_shape": self._dataset.input_shape, "num_classes": self._dataset.num_classes}
        model = self.run_kwargs.get("model") or default_model(self._dataset.name)
        if model != "mlp":
            kw["width"] = self.run_kwargs.get("width", 1.0)
        return kmodels.get(model, **kw)

    def fit(self, hp, model=None, *args, trial_id=None, **kwargs):
        """Trains the method with ``hp``'s values; ``{"val_error", "val_nll", "train_seconds"}``."""
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
