"""kzoo.tuning: grids from the declared hyperparameters, validation split, tables, distributed mode."""

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO

from kzoo import cli, experiment, methods, tuning

# A method with its own (tiny) training loop and the GAN manifold regularizer's
# hyperparameter names: `kzoo tune manifold --grid epsilon=5,20 eta=0.1,1 gamma=1e-4,1e-3`
# must work for any registered method, without knowing its name.
FAKE_METHODS = textwrap.dedent('''
    from kzoo import methods

    CALLS = []


    def _train(ctx):
        import kzoo

        CALLS.append({"hp": dict(ctx.hyperparameters), "n_l": len(ctx.x_l), "n_u": len(ctx.x_u),
                      "val": None if ctx.x_val is None else len(ctx.x_val)})
        clf = ctx.make_classifier(hidden=(8,))
        net = kzoo.Regularized(clf, None, seed=ctx.seed)
        net.compile(optimizer=ctx.optimizer(), jit_compile=False)
        ctx.fit(net)
        return clf


    METHOD = methods.Method("fake-manifold", "a GAN-like method with its own loop", (
        methods.Hyperparameter("epsilon", 20.0, "radius", float, minimum=0.0, exclusive_minimum=True),
        methods.Hyperparameter("eta", 1.0, "step", float, minimum=0.0, grid=(0.1, 1.0)),
        methods.Hyperparameter("gamma", 1e-3, "weight", float, minimum=0.0, grid=(1e-4, 1e-3))), train=_train)
    methods.METHODS.setdefault(METHOD.name, METHOD)
''')


@pytest.fixture
def fake_module(tmp_path, monkeypatch):
    """The fake method, importable as ``fake_kzoo_methods`` here and in child processes."""
    import importlib

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "fake_kzoo_methods.py").write_text(FAKE_METHODS)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([REPO, str(folder)]))
    sys.modules.pop("fake_kzoo_methods", None)
    module = importlib.import_module("fake_kzoo_methods")
    yield module
    methods.METHODS.pop("fake-manifold", None)
    sys.modules.pop("fake_kzoo_methods", None)


def test_parse_grid_converts_and_checks_against_the_declared_ranges():
    grid = tuning.parse_grid("vat", ["epsilon=0.5,1,2", "alpha=0.3,1", "power-iterations=1,2"])
    assert grid == {"epsilon": (0.5, 1.0, 2.0), "alpha": (0.3, 1.0), "power_iterations": (1, 2)}
    assert all(type(v) is int for v in grid["power_iterations"])
    for items, message in [(["epsilon=0,1"], "epsilon (--epsilon) of vat must be > 0"),
                           (["eta=0.1"], "vat has no hyperparameter 'eta'"),
                           (["epsilon"], "NAME=V1,V2"),
                           (["epsilon=1,"], "comma-separated"),
                           (["epsilon=1,1.0"], "repeats a value"),
                           (["epsilon=1", "epsilon=2"], "twice"),
                           (["power_iterations=1.5"], "must be of type int")]:
        with pytest.raises(experiment.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            tuning.parse_grid("vat", items)


def test_default_grid_is_what_each_method_declares():
    for name, spec in methods.METHODS.items():
        expected = {hp.name: tuple(hp.grid) for hp in spec.hyperparameters if hp.grid}
        assert tuning.default_grid(name) == expected
    assert tuning.default_grid("vat")["epsilon"] == (0.5, 1.0, 2.0, 4.0)
    with pytest.raises(experiment.ConfigError, match="declares no hyperparameter grid"):
        tuning.tune("supervised", labels=30)


def test_validation_split_comes_from_the_labeled_set_only():
    from kzoo import data as kdata

    ds = kdata.load("digits", flatten=True)
    x_l, y_l, x_u, x_val, y_val = experiment._split(ds, 60, 20, seed=4)
    assert len(x_l) == 40 and len(x_val) == 20 and np.bincount(y_val, minlength=10).tolist() == [2] * 10
    full_l, full_y, _ = kdata.labeled_split(ds.x_train, ds.y_train, 60, num_classes=10, seed=4)
    rows = lambda a: {r.tobytes() for r in a.reshape(len(a), -1)}  # noqa: E731
    assert rows(x_val) | rows(x_l) == rows(full_l)  # train + validation = the labeled subset
    assert not rows(x_val) & rows(x_l) and not rows(x_val) & rows(x_u)  # never trained on
    assert len(x_u) == len(ds.x_train) - 20
    assert not rows(x_val) & rows(ds.x_test)
    # without a validation split: exactly kzoo.data.labeled_split (the runs before this issue)
    x0, y0, u0, v0, _ = experiment._split(ds, 60, 0, seed=4)
    np.testing.assert_array_equal(x0, full_l)
    np.testing.assert_array_equal(y0, full_y)
    assert u0 is ds.x_train and v0 is None


def test_best_trial_breaks_ties_by_nll_and_the_table_marks_it():
    trials = [
        {"trial_id": "0", "hyperparameters": {"epsilon": 1.0}, "status": "COMPLETED", "val_error": 0.1,
         "val_nll": 0.5, "seconds": 1.0, "worker": "tuner0", "runs": 1, "message": None},
        {"trial_id": "1", "hyperparameters": {"epsilon": 2.0}, "status": "COMPLETED", "val_error": 0.1,
         "val_nll": 0.3, "seconds": 1.0, "worker": "tuner0", "runs": 1, "message": None},
        {"trial_id": "2", "hyperparameters": {"epsilon": 4.0}, "status": "FAILED", "val_error": None,
         "val_nll": None, "seconds": None, "worker": None, "runs": 0, "message": ["boom"]},
    ]
    best = tuning.best_trial(trials)
    assert best["trial_id"] == "1"
    md = tuning.markdown({"method": "vat", "dataset": "digits", "labels": 100, "validation_labels": 20,
                          "executions": 1, "tuning_seconds": 3.0, "grid": {"epsilon": [1.0, 2.0, 4.0]},
                          "trials": trials, "best": best, "final": {"test_error": 0.05, "test_nll": 0.2,
                                                                     "train_seconds": 2.0}})
    assert "| **1** | 2.0 | **10.00%** | 0.300 |" in md and "| 2 | 4.0 | — |" in md
    assert "test error 5.00%" in md


def test_tune_any_registered_method_with_its_own_loop(fake_module, tmp_path, monkeypatch, capsys):
    """The GAN manifold command line, on a fake method: every grid point once, validation only, best retrained."""
    seen = []
    real_evaluate = experiment.evaluate_classifier

    def spy(clf, x, y, batch_size=512, prefix="test"):
        seen.append(prefix)
        return real_evaluate(clf, x, y, batch_size, prefix)

    monkeypatch.setattr(experiment, "evaluate_classifier", spy)
    out, md, tb = tmp_path / "tune.json", tmp_path / "tune.md", tmp_path / "tb"
    rc = cli.main(["tune", "fake-manifold", "--grid", "epsilon=5,20", "eta=0.1,1", "gamma=1e-4,1e-3",
                   "--labels", "30", "--validation-labels", "10", "--steps", "2", "--batch-labeled", "8",
                   "--batch-unlabeled", "16", "--results-json", str(out), "--results-md", str(md),
                   "--tensorboard", str(tb), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    results = json.loads(out.read_text())
    grid = list(itertools.product([5.0, 20.0], [0.1, 1.0], [1e-4, 1e-3]))
    assert len(results["trials"]) == 8
    tried = sorted(tuple(t["hyperparameters"][k] for k in ("epsilon", "eta", "gamma")) for t in results["trials"])
    assert tried == sorted(grid)
    assert all(t["status"] == "COMPLETED" and 0 <= t["val_error"] <= 1 and t["runs"] == 1
               for t in results["trials"])
    assert results["best"] == tuning.best_trial(results["trials"])
    # 8 trials trained on 20 labels, validated on 10 held-out ones; then the best on all 30, tested once
    calls = fake_module.CALLS
    assert [(c["n_l"], c["val"]) for c in calls] == [(20, 10)] * 8 + [(30, None)]
    assert calls[-1]["hp"] == {**results["best"]["hyperparameters"]}
    # each trial: its validation error at the epoch's end (for TensorBoard) and at the end; the final run: test
    assert seen == ["val", "val"] * 8 + ["test"]
    assert 0 <= results["final"]["test_error"] <= 1
    text = md.read_text()
    assert text.count("| COMPLETED |") == 8 and "Re-trained on all 30 labeled examples" in text
    # TensorBoard: one log folder per trial, with event files
    for t in results["trials"]:
        folder = tb / f"trial_{t['trial_id']}" / "execution_0"
        assert any("tfevents" in f for _, _, files in os.walk(folder) for f in files), folder


def test_tune_errors_before_any_trial(capsys):
    assert cli.main(["tune", "vat", "--grid", "epsilon=-1", "--quiet"]) == 2
    assert "epsilon (--epsilon) of vat must be > 0" in capsys.readouterr().err
    assert cli.main(["tune", "vat", "--grid", "epsilon=1,2", "--epsilon", "2", "--quiet"]) == 2
    assert "both fixed" in capsys.readouterr().err
    assert cli.main(["tune", "vat", "--grid", "epsilon=1", "--labels", "30", "--validation-labels", "5",
                     "--quiet"]) == 2
    assert "at least one label per class" in capsys.readouterr().err


@pytest.mark.one_backend  # process orchestration (keras-tuner chief/workers); trials run on both backends elsewhere
def test_distributed_chief_and_two_workers_run_every_trial_exactly_once(fake_module, tmp_path):
    """One kzoo command: keras-tuner's chief on 127.0.0.1 and two worker processes."""
    directory, out = tmp_path / "search", tmp_path / "tune.json"
    cmd = [sys.executable, "-m", "kzoo", "tune", "fake-manifold", "--import", "fake_kzoo_methods",
           "--grid", "epsilon=5,20", "eta=0.1,1", "--labels", "30", "--validation-labels", "10",
           "--steps", "2", "--batch-labeled", "8", "--batch-unlabeled", "16", "--distributed", "--workers", "2",
           "--directory", str(directory), "--timeout", "400", "--no-retrain", "--results-json", str(out),
           "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=450,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    logs = "".join((directory / "logs" / f).read_text()[-1500:] for f in os.listdir(directory / "logs"))
    assert proc.returncode == 0, proc.stderr[-2000:] + logs
    results = json.loads(out.read_text())
    assert results["distributed"]["workers"] == 2 and results["distributed"]["failed_workers"] == {}
    records = [json.loads((directory / "executions" / f).read_text())
               for f in os.listdir(directory / "executions")]
    by_trial = {}
    for r in records:
        by_trial.setdefault(r["trial_id"], []).append(r)
    assert len(by_trial) == 4 and all(len(v) == 1 for v in by_trial.values())  # every trial exactly once
    tried = sorted((r["hyperparameters"]["epsilon"], r["hyperparameters"]["eta"]) for r in records)
    assert tried == sorted(itertools.product([5.0, 20.0], [0.1, 1.0]))
    assert {r["tuner_id"] for r in records} <= {"tuner1", "tuner2"}  # run by the workers, not the chief
    assert all(t["status"] == "COMPLETED" for t in results["trials"])
    for r in records:  # every process it started has ended
        with pytest.raises(ProcessLookupError):
            os.kill(r["pid"], 0)


# ---------------------------------------------------------------------------
# The public HyperModel with keras-tuner's own tuners; kzoo tune --tuner; HParams records
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("tuner", ["RandomSearch", "BayesianOptimization", "Hyperband"])
def test_the_hypermodel_works_with_keras_tuners_own_tuners(fake_module, tmp_path, tuner):
    import keras_tuner

    hypermodel = tuning.HyperModel("fake-manifold", grid={"eta": [0.1, 1.0], "gamma": [1e-4]}, labels=30,
                                   validation_labels=10, steps=2, batch_labeled=8, batch_unlabeled=16,
                                   steps_per_epoch=1)
    assert isinstance(hypermodel, keras_tuner.HyperModel)
    budget = {"max_epochs": 2, "factor": 2} if tuner == "Hyperband" else {"max_trials": 2}
    search = getattr(keras_tuner, tuner)(hypermodel, objective=tuning.objective(), directory=str(tmp_path),
                                         project_name="p", seed=0, **budget)
    search.search()
    trials = [t for t in search.oracle.trials.values() if t.status == "COMPLETED"]
    assert trials
    for t in trials:
        assert t.hyperparameters.values["eta"] in (0.1, 1.0) and 0 <= t.score <= 1
    best = search.get_best_hyperparameters()[0].values
    assert best["gamma"] == 1e-4
    calls = fake_module.CALLS
    assert {(c["n_l"], c["val"]) for c in calls} == {(20, 10)}  # validation split only, the test set unseen
    if tuner == "Hyperband":  # budgets of 1 and 2 epochs of 1 step each
        assert {t.hyperparameters.values["tuner/epochs"] for t in trials} <= {1, 2}


def test_get_best_models_returns_the_trained_classifier(tmp_path, monkeypatch):
    """The tuner's own reload path (build + its checkpoint) gives back the weights the best trial trained."""
    import keras_tuner

    hypermodel = tuning.HyperModel("vat", grid={"epsilon": [1.0, 4.0]}, labels=30,
                                   validation_labels=10, steps=3, batch_labeled=8, batch_unlabeled=16)
    trained = {}
    checkpoint = hypermodel._checkpoint

    def spy(model, best, callbacks, logs):
        trained[logs["val_error"], logs["val_nll"]] = [w.copy() for w in best.get_weights()]
        return checkpoint(model, best, callbacks, logs)

    monkeypatch.setattr(hypermodel, "_checkpoint", spy)
    search = keras_tuner.RandomSearch(hypermodel, objective=tuning.objective(), max_trials=2,
                                      directory=str(tmp_path), project_name="p", seed=0)
    search.search()
    best_trial = search.oracle.get_best_trials(1)[0]
    best = search.get_best_models(1)[0]
    expected = trained[best_trial.score, best_trial.metrics.get_last_value("val_nll")]
    fresh = hypermodel.build(best_trial.hyperparameters.copy())
    assert any(not np.array_equal(a, b) for a, b in zip(fresh.get_weights(), expected))  # training moved them
    for a, b in zip(best.get_weights(), expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["random", "hyperband"])
def test_cli_tune_with_another_tuner_logs_hparams(fake_module, tmp_path, kind, capsys):
    from tensorboard.backend.event_processing import event_accumulator

    out, tb = tmp_path / "tune.json", tmp_path / "tb"
    rc = cli.main(["tune", "fake-manifold", "--tuner", kind, "--max-trials", "2", "--max-epochs", "2",
                   "--grid", "eta=0.1,1", "gamma=1e-4", "--labels", "30", "--validation-labels", "10",
                   "--steps", "2", "--batch-labeled", "8", "--batch-unlabeled", "16", "--results-json", str(out),
                   "--tensorboard", str(tb), "--no-retrain", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    results = json.loads(out.read_text())
    done = [t for t in results["trials"] if t["status"] == "COMPLETED"]
    assert done and all(0 <= t["val_error"] <= 1 for t in done)

    def plugin_tags(folder):
        acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"tensors": 0})
        acc.Reload()
        return acc.PluginTagToContent("hparams"), acc

    config, _ = plugin_tags(tb)
    assert "_hparams_/experiment" in config  # the search's domains and metrics, once at the root
    for t in done:
        session, acc = plugin_tags(tb / f"trial_{t['trial_id']}" / "execution_0")
        assert "_hparams_/session_start_info" in session
        logged = float(np.asarray(
            __import__("tensorboard.util.tensor_util", fromlist=["x"]).make_ndarray(
                acc.Tensors("val_error")[-1].tensor_proto)))
        assert logged == pytest.approx(t["val_error"])
    capsys.readouterr()
    assert cli.main(["tune", "fake-manifold", "--tuner", "random", "--max-trials", "0", "--quiet"]) == 2
    assert "max_trials must be an integer >= 1" in capsys.readouterr().err


def test_markdown_names_the_tuner_that_searched():
    base = {"method": "vat", "dataset": "digits", "labels": 100, "validation_labels": 20, "executions": 1,
            "grid": {"epsilon": [1.0]}, "tuning_seconds": 1.0, "best": None,
            "trials": [{"trial_id": "0", "hyperparameters": {"epsilon": 1.0}, "val_error": 0.1, "val_nll": 0.3,
                        "seconds": 1.0, "worker": None, "status": "COMPLETED"}]}
    assert tuning.markdown(base).startswith("Grid search of **vat**")
    assert tuning.markdown({**base, "tuner": "hyperband"}).startswith("Hyperband search of **vat**")
    assert tuning.markdown({**base, "tuner": "random"}).startswith("Random search of **vat**")


# ---------------------------------------------------------------------------------------------------------
# Stops and resumes of a search (issue 22): every grid point exactly once, crash-safe files
# ---------------------------------------------------------------------------------------------------------

GRID3 = {"epsilon": (5.0, 10.0, 20.0)}


def _tune3(directory, **kwargs):
    return tuning.tune("fake-manifold", grid=GRID3, directory=str(directory), labels=30, validation_labels=10,
                       steps=2, batch_labeled=8, batch_unlabeled=16, retrain=False, verbose=0, **kwargs)


def _points(results):
    return sorted(t["hyperparameters"]["epsilon"] for t in results["trials"])


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_search_interrupted_around_a_trial_runs_every_grid_point_exactly_once(fake_module, tmp_path,
                                                                                monkeypatch, when):
    """Ctrl-C as trial 2 begins ("before") or as it ends, its result recorded but not yet handed to the oracle
    ("after"); the rerun runs the missing points only (keras-tuner's GridSearch kept its order in memory: the
    rerun skipped a point, or died with KeyError '0001')."""
    real, ran = tuning.run_trial, []

    def interrupted(config, trial_id, values, *args, **kwargs):
        if len(ran) == 1 and when == "before":
            raise KeyboardInterrupt
        metrics = real(config, trial_id, values, *args, **kwargs)
        ran.append(values["epsilon"])
        if len(ran) == 2 and when == "after":
            raise KeyboardInterrupt
        return metrics

    monkeypatch.setattr(tuning, "run_trial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _tune3(tmp_path / "search")
    first = list(ran)
    monkeypatch.setattr(tuning, "run_trial", lambda *a, **k: (ran.append(a[2]["epsilon"]), real(*a, **k))[1])
    results = _tune3(tmp_path / "search")
    assert _points(results) == [5.0, 10.0, 20.0]
    assert all(t["status"] == "COMPLETED" and t["runs"] == 1 for t in results["trials"])
    assert sorted(ran) == [5.0, 10.0, 20.0] and len(first) == {"before": 1, "after": 2}[when]
    os.rename(tmp_path / "search", tmp_path / "moved")  # no absolute path in its settings: a moved folder resumes
    assert _tune3(tmp_path / "moved")["trials"] == results["trials"]  # a finished search: nothing runs again
    assert len(ran) == 3


@pytest.mark.parametrize("damage", ["oracle", "trial", "both", "all"])
def test_empty_search_files_are_rebuilt_and_the_search_resumes(fake_module, tmp_path, monkeypatch, capsys,
                                                               damage):
    """oracle.json / trial.json / tuner0.json at 0 bytes (what kill -9 left with keras-tuner's own writes):
    the rerun rebuilds them from the trials and kzoo's execution records, says so, and runs only what is
    missing."""
    real, ran = tuning.run_trial, []

    def stop_at_third(config, trial_id, values, *args, **kwargs):
        if len(ran) == 2:
            raise KeyboardInterrupt
        ran.append(values["epsilon"])
        return real(config, trial_id, values, *args, **kwargs)

    monkeypatch.setattr(tuning, "run_trial", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        _tune3(tmp_path / "search")
    project = tmp_path / "search" / tuning.PROJECT
    files = {"oracle": [project / "oracle.json"], "trial": [project / "trial_0001" / "trial.json"],
             "both": [project / "oracle.json", project / "trial_0002" / "trial.json"],
             "all": [project / "oracle.json", project / "tuner0.json"] + list(project.glob("trial_*/trial.json"))}
    for f in files[damage]:
        assert f.exists(), sorted(os.listdir(project))
        f.write_bytes(b"")
    (tmp_path / "search" / "executions" / "planted.json").write_text("{")  # not a record: skipped
    capsys.readouterr()
    monkeypatch.setattr(tuning, "run_trial", lambda *a, **k: (ran.append(a[2]["epsilon"]), real(*a, **k))[1])
    results = _tune3(tmp_path / "search")
    assert "was unreadable and was rebuilt" in capsys.readouterr().err
    assert _points(results) == [5.0, 10.0, 20.0]
    assert all(t["status"] == "COMPLETED" for t in results["trials"])
    assert sorted(ran) == [5.0, 10.0, 20.0]  # the third point ran once, after the rebuild; none twice
    for f in project.glob("*/trial.json"):
        json.loads(f.read_text())  # rewritten whole
    json.loads((project / "oracle.json").read_text())


@pytest.mark.one_backend  # process orchestration
def test_kill9_during_a_search_then_the_same_command_resumes(fake_module, tmp_path):
    """kill -9 at seeded random points of `kzoo tune --directory`: every search file left parses (atomic
    writes), and the same command then finishes with every grid point run exactly once."""
    import random
    import signal
    import time

    directory, out = tmp_path / "search", tmp_path / "tune.json"
    cmd = [sys.executable, "-m", "kzoo", "tune", "fake-manifold", "--import", "fake_kzoo_methods", "--grid",
           "epsilon=5,10,20", "eta=0.1,1", "--labels", "30", "--validation-labels", "10", "--steps", "2",
           "--batch-labeled", "8", "--batch-unlabeled", "16", "--directory", str(directory), "--no-retrain",
           "--results-json", str(out), "--quiet"]
    rng, kills = random.Random(22), 0
    executions = directory / "executions"
    for _ in range(3):
        done = len(os.listdir(executions)) if executions.is_dir() else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        try:
            while proc.poll() is None and (len(os.listdir(executions)) if executions.is_dir() else 0) <= done:
                assert time.monotonic() < deadline, "no trial within 300 s"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        kills += proc.returncode == -signal.SIGKILL
        for f in (directory / tuning.PROJECT).glob("**/*.json"):
            json.loads(f.read_text())  # never empty nor half-written
    assert kills >= 2
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    points = sorted((t["hyperparameters"]["epsilon"], t["hyperparameters"]["eta"]) for t in results["trials"])
    assert points == sorted(itertools.product([5.0, 10.0, 20.0], [0.1, 1.0]))
    assert all(t["status"] == "COMPLETED" for t in results["trials"])


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2), (2, 0, 1)])
def test_best_trial_with_a_nan_nll_does_not_depend_on_the_order(order):
    """Issue 24: LabelSpreading's NaN NLL made ties depend on grid order (NaN compares false both ways)."""
    trials = [{"trial_id": str(i), "status": "COMPLETED", "val_error": 0.2, "val_nll": nll}
              for i, nll in enumerate((float("nan"), 0.7, float("inf")))]
    assert tuning.best_trial([trials[i] for i in order])["trial_id"] == "1"
    worse = [dict(t, val_error=0.1 if t["trial_id"] == "0" else 0.2) for t in trials]
    assert tuning.best_trial([worse[i] for i in order])["trial_id"] == "0"  # the error decides first
