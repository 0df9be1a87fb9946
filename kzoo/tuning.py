"""Hyperparameter grid search over any registered method, with keras-tuner.

    kzoo tune vat --dataset digits --labels 100 --grid epsilon=0.5,1,2,4 alpha=0.3,1 --results-json tune.json
    kzoo tune vat ... --distributed --workers 2      # keras-tuner chief + 2 worker processes on 127.0.0.1

Every trial is one :func:`kzoo.experiment.run` of the method with one point of
the grid, trained on the labeled set minus a class-balanced validation split
(``validation_labels``, default 20% of the labels) and scored by its error on
that split; the test set is never looked at while tuning (``test=False``).
The grid is keras-tuner's :class:`keras_tuner.GridSearch` over one ``Choice``
per tuned hyperparameter: the values given with ``--grid NAME=V1,V2`` (checked
against the method's declared ranges), or each hyperparameter's declared
``grid`` when no ``--grid`` is given. The best configuration (lowest validation
error, ties broken by validation NLL) is then re-trained on all ``labels``
labeled examples and tested. Results (every trial, its validation error and
NLL, time and worker; the best; its test error) go to JSON and markdown.

Distributed mode uses keras-tuner's own chief/worker mechanism: one chief
process holds the oracle and serves it over gRPC on 127.0.0.1 (the environment
variables ``KERASTUNER_TUNER_ID``/``KERASTUNER_ORACLE_IP``/``KERASTUNER_ORACLE_PORT``
of its documentation), the workers ask it for trials and report back. One kzoo
command starts them, waits (bounded by ``timeout``), stops them and collects
the results from the chief's project folder. Each trial execution leaves a
record in ``DIRECTORY/executions/`` (which worker ran it, when, its metrics),
from which the table is built and which shows that every trial ran once.
"""

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from kzoo import locks
from kzoo.checks import check_dataset
from kzoo.errors import COMMAND_ERRORS, ConfigError, TuningFailed, fail
from kzoo.experiment import resolve_hyperparameters
from kzoo.io import check_writable_target, open_new_text, write_json_atomic, write_text_atomic
from kzoo.methods import given_hyperparameters

PROJECT = "oracle"
# run() arguments a tuning run passes through to every trial
RUN_ARGUMENTS = ("dataset", "labels", "model", "steps", "batch_labeled", "batch_unlabeled", "seed",
                 "learning_rate", "decay_fraction", "width", "augment", "data_dir", "jit_compile",
                 "distribution", "devices", "preset", "download", "splits")


def __getattr__(name):
    """``kzoo.tuning.HyperModel`` and ``kzoo.tuning.objective`` (kzoo.hypermodel; imported when used, as it
    imports keras-tuner)."""
    if name in ("HyperModel", "objective"):
        from kzoo import hypermodel

        return getattr(hypermodel, name)
    raise AttributeError(f"module 'kzoo.tuning' has no attribute {name!r}")


# ----------------------------------------------------------------------------
# The grid
# ----------------------------------------------------------------------------


def parse_grid(method, items):
    """``["epsilon=0.5,1", "alpha=0.3,1"]`` -> ``{"epsilon": (0.5, 1.0), "alpha": (0.3, 1.0)}``.

    Values are converted and range-checked with the method's
    :meth:`kzoo.methods.Hyperparameter.check`; ConfigError names what is wrong.
    """
    spec, _ = resolve_hyperparameters(method)
    grid = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"--grid takes NAME=V1,V2,...; got {item!r}")
        name, _, values = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        try:
            hp = spec.hyperparameter(name)
        except KeyError:
            takes = ", ".join(h.name for h in spec.hyperparameters) or "none"
            raise ConfigError(f"--grid {name}: {method} has no hyperparameter {name!r} (its hyperparameters: "
                              f"{takes})") from None
        if name in grid:
            raise ConfigError(f"--grid gives {name} twice")
        raw = [v.strip() for v in values.split(",")]
        if not values.strip() or any(v == "" for v in raw):
            raise ConfigError(f"--grid {name}= needs comma-separated values, got {values!r}")
        try:
            checked = tuple(hp.check(v, method) for v in raw)
        except ValueError as e:
            raise ConfigError(f"--grid: {e}") from None
        if len(set(checked)) != len(checked):
            raise ConfigError(f"--grid {name} repeats a value: {values}")
        grid[name] = checked
    return grid


def default_grid(method):
    """Each declared hyperparameter's suggested ``grid`` (those without one are not tuned)."""
    spec, _ = resolve_hyperparameters(method)
    return {hp.name: tuple(hp.grid) for hp in spec.hyperparameters if hp.grid}


def grid_size(grid):
    n = 1
    for values in grid.values():
        n *= len(values)
    return n


TUNERS = {"grid": "GridSearch", "random": "RandomSearch", "bayesian": "BayesianOptimization",
          "hyperband": "Hyperband"}


def _tuner(config, directory):
    """keras-tuner's chosen tuner (``config["tuner"]``) over :class:`kzoo.hypermodel.HyperModel`'s search
    space, with crash-safe files (:func:`kzoo.hypermodel.safe_oracle`); each trial is :func:`run_trial`, which
    also keeps the record of which process ran it."""
    import keras_tuner

    from kzoo.hypermodel import ORACLES, HyperModel, objective, read_json, safe_oracle

    kind = config.get("tuner", "grid")

    class KzooTuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            values = trial.hyperparameters.values
            return run_trial(config, trial.trial_id, {k: v for k, v in values.items() if not k.startswith("tuner/")},
                             self.tuner_id, epochs=values.get("tuner/epochs"))

        def save(self):
            if not self._is_worker():
                self.oracle.save()
            write_text_atomic(self._get_tuner_fname(), json.dumps(self.get_state()), suffix=".json")

        def reload(self):
            if not self._is_worker():
                self._populate_initial_space()  # the search space, also when oracle.json must be rebuilt
                self.oracle.reload()
            self.set_state(read_json(self._get_tuner_fname()) or self.get_state())

    hypermodel = HyperModel(config["method"], grid=config["grid"], fixed=config["fixed"],
                            validation_labels=config["validation_labels"], **config["run"])
    kwargs = {"max_trials": None if kind == "grid" else config.get("max_trials") or grid_size(config["grid"])}
    if kind == "hyperband":
        kwargs = {"max_epochs": config.get("max_epochs", 3), "factor": 3, "hyperband_iterations": 1}
    oracle = safe_oracle(getattr(keras_tuner.oracles, ORACLES[kind]))(
        objective=objective(),
        max_consecutive_failed_trials=grid_size(config["grid"]) + 1,  # a failed trial is reported, not fatal
        seed=config["run"].get("seed", 0),
        **kwargs,
    )
    return KzooTuner(oracle=oracle, hypermodel=hypermodel, directory=directory, project_name=PROJECT,
                     overwrite=False)


# ----------------------------------------------------------------------------
# One trial
# ----------------------------------------------------------------------------


def run_trial(config, trial_id, values, tuner_id="tuner0", epochs=None):
    """Train ``config``'s method with the hyperparameters ``values`` on the validation split; its metrics.

    ``executions`` > 1 repeats it with seeds seed, seed+1, ... (each a different
    labeled subset, validation split and initialization) and averages. ``epochs``
    (Hyperband's budget): ``epochs * steps / max_epochs`` optimizer steps.
    """
    from kzoo.hypermodel import train_and_validate

    run_kwargs = dict(config["run"])
    if epochs is not None:
        run_kwargs["steps"] = max(1, int(epochs) * run_kwargs.get("steps", 1000) // config.get("max_epochs", 3))
    started = time.time()
    metrics = train_and_validate(config["method"], values, config["fixed"], config["validation_labels"],
                                 config["executions"], config.get("tensorboard"), trial_id, **run_kwargs)
    errors = metrics.pop("val_errors")
    record = {"trial_id": trial_id, "hyperparameters": values, "tuner_id": tuner_id, "pid": os.getpid(),
              "started": started, "ended": time.time(), "val_errors": errors, **metrics}
    folder = os.path.join(config["directory"], "executions")
    os.makedirs(folder, exist_ok=True)
    write_json_atomic(os.path.join(folder, f"trial_{trial_id}-{tuner_id}-{os.getpid()}-{time.time_ns()}.json"),
                      record)
    print(f"kzoo tune: trial {trial_id} {values}: validation error {100 * metrics['val_error']:.2f}% "
          f"({tuner_id}, {time.time() - started:.1f} s)", flush=True)
    return metrics


# ----------------------------------------------------------------------------
# Collecting results
# ----------------------------------------------------------------------------


def collect(config):
    """The trials of a finished search, from the oracle's files and the execution records."""
    from kzoo.hypermodel import read_json

    directory = config["directory"]
    project = os.path.join(directory, PROJECT)
    executions = {}
    folder = os.path.join(directory, "executions")
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
        rec = read_json(os.path.join(folder, name)) if name.endswith(".json") and not name.startswith(".") else None
        if rec and "trial_id" in rec:  # an unreadable or foreign file there is not a record
            executions.setdefault(rec["trial_id"], []).append(rec)
    trials = []
    for name in sorted(os.listdir(project)) if os.path.isdir(project) else ():
        path = os.path.join(project, name, "trial.json")
        state = read_json(path) if name.startswith("trial_") else None
        if not state or "trial_id" not in state:  # reloading rebuilt every trial it could: skip what is left
            continue
        trial_id = state["trial_id"]
        metrics = state.get("metrics", {}).get("metrics", {})

        def last(metric):
            obs = metrics.get(metric, {}).get("observations", [])
            return float(obs[-1]["value"][0]) if obs else None

        recs = executions.get(trial_id, [])
        trials.append({
            "trial_id": trial_id,
            "hyperparameters": state["hyperparameters"]["values"],
            "status": state["status"],
            "val_error": last("val_error"),
            "val_nll": last("val_nll"),
            "train_seconds": last("train_seconds"),
            "seconds": round(recs[-1]["ended"] - recs[-1]["started"], 2) if recs else None,
            "worker": recs[-1]["tuner_id"] if recs else None,
            "runs": len(recs),
            "message": (state.get("message") or "").strip().splitlines()[-1:] or None,
        })
    return trials


def best_trial(trials):
    """The completed trial with the lowest validation error; ties: the lowest validation NLL, where a missing
    or non-finite NLL (NaN, inf) counts as +inf, so the choice never depends on the order of the trials through
    a NaN (NaN compares false both ways); remaining exact ties: the first in grid order."""
    done = [t for t in trials if t["status"] == "COMPLETED" and t["val_error"] is not None]
    if not done:
        return None

    def nll(t):
        v = t["val_nll"]
        return float(v) if v is not None and math.isfinite(float(v)) else float("inf")

    return min(done, key=lambda t: (t["val_error"], nll(t)))


def markdown(results):
    """The results table (every trial, its validation error, the best) as markdown."""
    names = list(results["grid"])
    head = ["trial"] + names + ["val. error", "val. NLL", "seconds", "worker", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = (results.get("best") or {}).get("trial_id")
    for t in results["trials"]:
        mark = "**" if t["trial_id"] == best else ""
        err = f"{100 * t['val_error']:.2f}%" if t["val_error"] is not None else "—"
        nll = f"{t['val_nll']:.3f}" if t["val_nll"] is not None else "—"
        row = [f"{mark}{t['trial_id']}{mark}"] + [f"{t['hyperparameters'].get(n)}" for n in names] + [
            f"{mark}{err}{mark}", nll, f"{t['seconds']}" if t["seconds"] is not None else "—",
            t["worker"] or "—", t["status"]]
        lines.append("| " + " | ".join(row) + " |")
    r = results
    search = {"grid": "Grid search", "random": "Random search", "bayesian": "Bayesian optimization",
              "hyperband": "Hyperband search"}.get(r.get("tuner", "grid"), "Search")
    out = [f"{search} of **{r['method']}** on {r['dataset']} with {r['labels']} labels: "
           f"{len(r['trials'])} trials, validation split of {r['validation_labels']} of the labeled examples "
           f"({r['executions']} execution(s) per trial), {r['tuning_seconds']:.0f} s"
           + (f" with {r['distributed']['workers']} worker processes" if r.get("distributed") else "") + ".", "",
           *lines, ""]
    if r.get("best"):
        b = r["best"]
        out.append(f"Best (lowest validation error, ties broken by NLL): "
                   + ", ".join(f"{k}={v}" for k, v in b["hyperparameters"].items())
                   + f", validation error {100 * b['val_error']:.2f}%.")
    if r.get("final"):
        f = r["final"]
        out.append(f"Re-trained on all {r['labels']} labeled examples: test error {100 * f['test_error']:.2f}% "
                   f"(NLL {f['test_nll']:.3f}), {f['train_seconds']:.0f} s.")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------
# The search, in-process or distributed
# ----------------------------------------------------------------------------


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc, grace=5.0):
    """Stop one child process we started: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)


def _process_main(config_json):
    """Entry point of a chief or worker process (its role is in KERASTUNER_TUNER_ID). Its configuration comes
    from the parent on the command line, never from a file of the search folder: the modules it imports
    (``--import``) are those the user named, whatever the folder holds."""
    config = json.loads(config_json)
    role = os.environ["KERASTUNER_TUNER_ID"]
    _import_all(config.get("imports", ()))
    directory = config["directory"] if role == "chief" else os.path.join(config["directory"], "workers", role)
    tuner = _tuner(config, directory)
    tuner.search()  # the chief serves the oracle until the workers are done; a worker runs trials
    return 0


def _search_distributed(config, workers, timeout, verbose):
    directory = config["directory"]
    os.makedirs(os.path.join(directory, "logs"), exist_ok=True)
    port = _free_port()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port),
               PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    import keras

    env["KERAS_BACKEND"] = keras.backend.backend()
    code = "import sys; from kzoo.tuning import _process_main; sys.exit(_process_main(sys.argv[1]))"
    procs, failed = {}, {}
    deadline = time.monotonic() + timeout
    try:
        for role in ["chief"] + [f"tuner{i}" for i in range(1, workers + 1)]:
            log = open_new_text(os.path.join(directory, "logs", f"{role}.log"), "log file")  # no planted link
            procs[role] = subprocess.Popen([sys.executable, "-c", code, json.dumps(config)],
                                           env=dict(env, KERASTUNER_TUNER_ID=role), stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
        worker_roles = [r for r in procs if r != "chief"]
        while any(procs[r].poll() is None for r in worker_roles):
            if procs["chief"].poll() not in (None, 0):  # 0: it served every trial and exited
                raise TuningFailed(f"the tuning chief exited early (code {procs['chief'].returncode}); see "
                                   f"{os.path.join(directory, 'logs', 'chief.log')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"distributed tuning did not finish within {timeout:.0f} s (--timeout); "
                                   f"the finished trials are kept in {directory}")
            time.sleep(0.2)
        failed = {r: procs[r].returncode for r in worker_roles if procs[r].returncode != 0}
        if failed and verbose:
            print(f"kzoo tune: workers failed: {failed}; see {os.path.join(directory, 'logs')}", file=sys.stderr)
        try:  # the chief notices that every worker is done; it may poll slowly, so it is not waited for long
            procs["chief"].wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
    finally:
        for proc in procs.values():
            _stop(proc)
    return {"workers": workers, "port": port, "failed_workers": failed}


@locks.scoped  # the search folder stays locked while the search lasts
def tune(method, grid=None, fixed=None, validation_labels=None, executions=1, directory=None,
         overwrite=False, distributed=False, workers=2, timeout=24 * 3600, tensorboard=None,
         results_json=None, results_md=None, retrain=True, export=None, metrics_json=None, verbose=1,
         imports=(), export_format="tf_saved_model", export_version=None, tuner="grid", max_trials=None,
         max_epochs=3, **run_kwargs):
    """Search ``method``'s hyperparameters; returns the results dict (see the module docstring).

    ``tuner``: "grid" (every point), "random", "bayesian" (``max_trials`` points, default
    the grid's size) or "hyperband" (budgets up to ``max_epochs`` epochs of ``steps / max_epochs``).

    ``grid``: ``{name: values}`` (None: each hyperparameter's declared grid);
    ``fixed``: other hyperparameters held at a value; ``run_kwargs``: run()
    arguments (dataset, labels, steps, ...). ``directory`` keeps the search
    (a rerun resumes it; ``overwrite`` starts again); None: a temporary folder.
    ``imports``: modules imported first, here and in every worker process
    (modules that register methods of your own with :func:`kzoo.methods.register`).
    """
    _import_all(imports)
    from kzoo import experiment, run_folders

    t_start = time.time()
    spec, _ = resolve_hyperparameters(method)
    unknown = sorted(set(run_kwargs) - set(RUN_ARGUMENTS))
    if unknown:
        raise ConfigError(f"tune does not take {', '.join(unknown)}")
    grid = default_grid(method) if not grid else {k: tuple(v) for k, v in grid.items()}
    if not grid:
        raise ConfigError(f"{method} declares no hyperparameter grid; give one with --grid NAME=V1,V2")
    fixed = {k: v for k, v in (fixed or {}).items() if v is not None}
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ConfigError(f"{', '.join(both)} is both fixed (--{both[0].replace('_', '-')}) and in --grid")
    for name, values in grid.items():  # every grid point is a valid configuration, before any work
        for v in values:
            resolve_hyperparameters(method, {**fixed, name: v})
    labels = run_kwargs.get("labels", 100)
    from kzoo import data as kdata

    dataset = run_kwargs.get("dataset", "digits")
    check_dataset(dataset, kdata.DATASETS, error=ConfigError)
    try:
        ds = kdata.load(dataset, data_dir=run_kwargs.get("data_dir"), seed=run_kwargs.get("seed", 0),
                        download=bool(run_kwargs.get("download")), splits=run_kwargs.get("splits"))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if validation_labels is None:  # 20% of the labels, at least one per class
        validation_labels = max(ds.num_classes, round(0.2 * labels))
    if not isinstance(validation_labels, int) or not 1 <= validation_labels < labels:
        raise ConfigError(f"validation_labels must be in [1, labels={labels}), got {validation_labels!r}")
    for e in range(executions if isinstance(executions, int) else 1):
        try:
            experiment._split(ds, labels, validation_labels, run_kwargs.get("seed", 0) + e)
        except ValueError as err:
            raise ConfigError(f"--labels {labels} with --validation-labels {validation_labels}: {err}") from None
    if not isinstance(executions, int) or executions < 1:
        raise ConfigError(f"executions must be an integer >= 1, got {executions!r}")
    if distributed and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    if tuner not in TUNERS:
        raise ConfigError(f"unknown tuner {tuner!r}; valid tuners: {', '.join(TUNERS)}")
    for name, value in (("max_trials", max_trials), ("max_epochs", max_epochs)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    if not timeout or timeout <= 0:
        raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
    for path, what in ((results_json, "results file"), (results_md, "results file"),
                       (metrics_json, "metrics file"), (tensorboard, "TensorBoard folder")):
        check_writable_target(path, what)
    if run_kwargs.get("width") is not None:
        from kzoo.networks import default_model
        experiment.check_width(run_kwargs["width"], run_kwargs.get("model") or default_model(dataset), spec)
    planted = sorted(k for k in os.environ if k.startswith("KERASTUNER_"))
    if planted and not distributed:  # keras-tuner would wait for a chief that was never started
        raise ConfigError(f"the environment sets {', '.join(planted)} (keras-tuner's distributed-search "
                          f"variables), with which a plain search waits forever for a chief; unset them first "
                          f"(unset {' '.join(planted)}), or pass --distributed")
    experiment.check_export(export, export_format, export_version)

    own_directory = directory is None
    directory = tempfile.mkdtemp(prefix="kzoo-tune-") if own_directory else os.path.abspath(directory)
    config = {"method": method, "grid": {k: list(v) for k, v in grid.items()}, "fixed": fixed,
              "validation_labels": int(validation_labels), "executions": int(executions),
              "run": run_kwargs, "directory": directory,
              "tensorboard": os.path.abspath(tensorboard) if tensorboard else None, "imports": list(imports),
              "tuner": tuner, "max_trials": max_trials, "max_epochs": max_epochs,
              **run_folders.data_settings(run_kwargs.get("data_dir"), run_kwargs.get("splits"))}
    # locked for this process; a folder holding a search of other settings is refused (paths may change: a
    # moved folder resumes)
    stamp, in_use = os.path.join(directory, "kzoo_tune.json"), os.path.isdir(os.path.join(directory, PROJECT))
    run_folders.claim_folder(directory, stamp, config, "search folder", "--directory (or --overwrite)",
                             "the settings of the search there", in_use and not overwrite,
                             ignore=("directory", "tensorboard"))
    if overwrite and not own_directory:
        for name in (PROJECT, "executions", "workers", "logs"):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    if tensorboard:  # the HParams dashboard's experiment: the searched domains and the metrics
        from kzoo.hypermodel import write_hparams_config

        write_hparams_config(config["tensorboard"], grid)

    try:
        if verbose:
            print(f"kzoo tune: {method} ({tuner}), {grid_size(grid)} grid points over "
                  + ", ".join(f"{k} in {list(v)}" for k, v in grid.items()) + f"; search folder {directory}",
                  flush=True)
        t_search = time.time()
        dist = None
        if distributed:
            dist = _search_distributed(config, workers, timeout, verbose)
        else:
            with _quiet_tuner(verbose):
                _tuner(config, directory).search()
        tuning_seconds = time.time() - t_search
        trials = collect(config)
        best = best_trial(trials)
        import keras

        results = {"method": method, "dataset": run_kwargs.get("dataset", "digits"), "labels": labels,
                   "validation_labels": int(validation_labels), "executions": int(executions), "tuner": tuner,
                   "backend": keras.backend.backend(),
                   "grid": config["grid"], "fixed_hyperparameters": fixed,
                   "run": {k: v for k, v in run_kwargs.items()}, "trials": trials,
                   "best": best, "tuning_seconds": round(tuning_seconds, 2), "distributed": dist,
                   "directory": None if own_directory else directory}
        if best is None:
            raise ConfigError(f"no trial of {method} completed; see the trial messages in {directory}"
                              + "".join(f"\n  trial {t['trial_id']}: {t['message']}" for t in trials[:3]))
        if retrain:
            final = experiment.run(method=method, hyperparameters={**fixed, **best["hyperparameters"]},
                                   export=export, export_format=export_format, export_version=export_version,
                                   metrics_json=metrics_json, verbose=verbose, **run_kwargs)
            results["final"] = {k: final[k] for k in ("test_error", "test_nll", "train_steps", "train_seconds")}
            if final.get("export"):
                results["final"]["export"] = final["export"]
        results["total_seconds"] = round(time.time() - t_start, 2)
        if results_json:
            write_json_atomic(results_json, results)
        if results_md:
            write_text_atomic(results_md, markdown(results))
        return results
    finally:
        if own_directory:
            shutil.rmtree(directory, ignore_errors=True)


def _import_all(modules):
    import importlib

    for name in modules or ():
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"--import {name}: {e}") from e


@contextlib.contextmanager
def _quiet_tuner(verbose):
    """keras-tuner prints a search summary per trial; kzoo prints its own line per trial instead."""
    if verbose > 1:
        yield
        return
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield


# ----------------------------------------------------------------------------
# Command line: kzoo tune
# ----------------------------------------------------------------------------


def add_parser(sub, train_parser):
    """``kzoo tune``: the flags of ``kzoo train`` plus the search's own."""
    u = sub.add_parser("tune", parents=[train_parser], add_help=False,
                       help="search a method's hyperparameters on a validation split (keras-tuner: grid, random, "
                       "bayesian, hyperband)",
                       description="Grid search over a method's hyperparameters with keras-tuner; trials are "
                       "scored on a validation split of the labeled set, the best is re-trained on all labels "
                       "and tested. --export/--metrics-json apply to that final run.")
    g = u.add_argument_group("search")
    g.add_argument("--grid", nargs="+", action="extend", default=[], metavar="NAME=V1,V2",
                   help="values to try per hyperparameter (default: each hyperparameter's declared grid)")
    g.add_argument("--tuner", choices=tuple(TUNERS), default="grid",
                   help="grid (every point, default), random, bayesian (--max-trials points) or hyperband "
                   "(budgets up to --max-epochs epochs of steps/max-epochs optimizer steps)")
    g.add_argument("--max-trials", type=int, default=None, help="random/bayesian: trials (default: the grid's size)")
    g.add_argument("--max-epochs", type=int, default=3, help="hyperband: the largest budget, in epochs (default 3)")
    g.add_argument("--executions", type=int, default=1, help="runs per trial (seeds seed, seed+1, ...), averaged")
    g.add_argument("--directory", default=None, help="keep the search here (a rerun resumes it); "
                   "default: a temporary folder")
    g.add_argument("--overwrite", action="store_true", help="start the search in --directory again")
    g.add_argument("--distributed", action="store_true",
                   help="keras-tuner chief/worker mode: a chief and --workers worker processes on 127.0.0.1")
    g.add_argument("--workers", type=int, default=2, help="worker processes with --distributed (default 2)")
    g.add_argument("--timeout", type=float, default=24 * 3600, help="give up after this many seconds")
    g.add_argument("--results-json", default=None, help="write the results (every trial, the best) here")
    g.add_argument("--results-md", default=None, help="write the results table as markdown here")
    g.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import this module first (in every worker too), e.g. one registering your own methods")
    g.add_argument("--no-retrain", action="store_true", help="do not re-train and test the best configuration")
    return u


def main(args):
    if args.checkpoint_dir:
        print("kzoo: error: --checkpoint-dir is for kzoo train; a search resumes from its --directory",
              file=sys.stderr)
        return 2
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    run_kwargs = {"dataset": args.dataset, "labels": args.labels, "model": args.model, "steps": args.steps,
                  "batch_labeled": args.batch_labeled, "batch_unlabeled": args.batch_unlabeled,
                  "seed": args.seed, "learning_rate": args.learning_rate, "decay_fraction": args.decay_fraction,
                  "width": args.width, "augment": args.augment, "data_dir": args.data_dir, "jit_compile": jit,
                  "distribution": args.distribution, "devices": args.devices, "preset": args.preset,
                  "download": args.download, "splits": args.splits}
    try:
        _import_all(args.imports)
        grid = parse_grid(args.method, args.grid)
        results = tune(args.method, grid=grid, fixed=given_hyperparameters(args),
                       validation_labels=args.validation_labels or None, executions=args.executions,
                       directory=args.directory, overwrite=args.overwrite, distributed=args.distributed,
                       workers=args.workers, timeout=args.timeout, tensorboard=args.tensorboard,
                       results_json=args.results_json, results_md=args.results_md, retrain=not args.no_retrain,
                       export=args.export, metrics_json=args.metrics_json, verbose=0 if args.quiet else 1,
                       imports=args.imports, export_format=args.export_format,
                       export_version=args.export_version, tuner=args.tuner, max_trials=args.max_trials,
                       max_epochs=args.max_epochs, **run_kwargs)
    except COMMAND_ERRORS as e:  # the exit codes of kzoo train (kzoo.errors.EXIT_CODES)
        return fail(e)
    print(markdown(results))
    return 0

