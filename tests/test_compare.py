"""kzoo compare: the paired confidence interval by hand, a tiny leaderboard end to end, resume, bad input."""

import json
import math
import os

import keras
import numpy as np
import pytest

import kzoo
from kzoo import cli, compare_report, experiment
from kzoo import compare as kcompare
from kzoo.experiment import ConfigError

# ---------------------------------------------------------------------------
# The statistics, against hand computations
# ---------------------------------------------------------------------------


def test_paired_ci_against_a_hand_computation():
    # differences 0.02, 0.03, 0.04: mean 0.03, sample std 0.01, standard error 0.01/sqrt(3);
    # t quantile 0.975 with 2 degrees of freedom from a printed t-table: 4.302652729911275
    a, b = [0.10, 0.12, 0.15], [0.08, 0.09, 0.11]
    ci = kcompare.paired_ci(a, b)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # = 0.0248413771...
    assert ci["n"] == 3
    assert ci["mean"] == pytest.approx(0.03, abs=1e-12)
    assert ci["low"] == pytest.approx(0.03 - half, abs=1e-9)
    assert ci["high"] == pytest.approx(0.03 + half, abs=1e-9)
    assert ci["low"] == pytest.approx(0.0051586229, abs=1e-9)
    # five pairs, differences -1, 0, 1, 2, 3: mean 1, std sqrt(2.5); t(0.975, 4) = 2.7764451051977987
    ci = kcompare.paired_ci([0, 1, 2, 3, 4], [1, 1, 1, 1, 1])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert (ci["mean"], ci["low"], ci["high"]) == pytest.approx((1.0, 1 - half, 1 + half), abs=1e-9)
    # one pair: a difference but no interval
    assert kcompare.paired_ci([0.2], [0.1]) == {"mean": pytest.approx(0.1), "low": None, "high": None, "n": 1}
    with pytest.raises(ValueError, match="same length"):
        kcompare.paired_ci([1, 2], [1])


def test_mean_std_is_the_sample_std():
    assert compare_report.mean_std([1.0, 2.0, 3.0, 4.0]) == pytest.approx((2.5, math.sqrt(5 / 3)))
    assert compare_report.mean_std([0.3]) == (0.3, 0.0)
    assert compare_report.mean_std([]) == (None, None)


def test_entries_variants_and_grids():
    e = kcompare.parse_entry("vat+entmin", grids={"vat+entmin": {"epsilon": (0.5, 1.0)}})
    assert (e.method, e.fixed, e.grid) == ("vat", {"entmin": 1.0}, {"epsilon": (0.5, 1.0)})
    e = kcompare.parse_entry("vat:steps=600,alpha=0.3")
    assert e.run == {"steps": 600} and e.fixed == {"entmin": 0.0, "alpha": 0.3} and "alpha" not in e.grid
    assert "epsilon" in e.grid  # the registry's declared grid, minus what is fixed
    e = kcompare.parse_entry("gan-ssl+manifold")
    assert 0.0 not in e.grid["manifold_gamma"] and e.fixed == {"ambient_gamma": 0.0}
    assert kcompare.parse_entry("supervised").points() == [{}]
    assert kcompare.parse_grids(["vat:epsilon=1,2", "svc:C=1,10"]) == {"vat": {"epsilon": (1.0, 2.0)},
                                                                       "svc": {"C": (1.0, 10.0)}}
    default = kcompare.default_entries()
    assert default[0] == "supervised" and "vat" in default and "mixup" not in default  # mixup: supervised
    assert not any(n.startswith("lvat") or n == "manifold" for n in default)  # they need a pretrained file


def test_cache_key_follows_every_setting(tmp_path):
    ds = kzoo.data.load("digits")
    context = {"dataset": "digits", "data": ds, "validation_labels": {30: 10}, "backend": "jax", "run": {}}
    entry = kcompare.parse_entry("vat", grids={"vat": {"epsilon": (0.5, 1.0)}})
    key = kcompare.unit_key(entry, "seed", 30, 0, {"epsilon": 0.5}, context)
    same = kcompare.unit_key(entry, "seed", 30, 0, {"epsilon": 0.5}, dict(context))
    assert kcompare.key_path(str(tmp_path), entry, key) == kcompare.key_path(str(tmp_path), entry, same)
    changed = [kcompare.unit_key(entry, "seed", 30, 1, {"epsilon": 0.5}, context),
               kcompare.unit_key(entry, "seed", 30, 0, {"epsilon": 1.0}, context),
               kcompare.unit_key(entry, "trial", 30, 0, {"epsilon": 0.5}, context),
               kcompare.unit_key(entry, "seed", 30, 0, {"epsilon": 0.5}, {**context, "run": {"steps": 10}}),
               kcompare.unit_key(entry, "seed", 30, 0, {"epsilon": 0.5}, {**context, "backend": "tensorflow"}),
               kcompare.unit_key(kcompare.parse_entry("vat:alpha=0.3"), "seed", 30, 0, {"epsilon": 0.5}, context)]
    paths = {kcompare.key_path(str(tmp_path), entry, k) for k in changed + [key]}
    assert len(paths) == len(changed) + 1


# ---------------------------------------------------------------------------
# scikit-learn baselines on kzoo's splits
# ---------------------------------------------------------------------------


def test_baselines_use_the_folds_and_seeds_of_kzoo_runs():
    from kzoo import baselines

    ds = kzoo.data.load("digits")
    val = baselines.fit_baseline("labelspreading-knn", {"n_neighbors": 7}, ds, 30, 0, 10)
    test = baselines.fit_baseline("svc", {"C": 10.0, "gamma": 0.03}, ds, 30, 0, 0)
    assert set(val) == {"val_error", "val_nll", "train_seconds"} and 0 <= val["val_error"] <= 1
    assert val["val_error"] * 10 == pytest.approx(round(val["val_error"] * 10))  # scored on 10 examples
    assert 0 <= test["test_error"] < 0.5 and test["test_nll"] is None
    # the fold: 20 labels to fit, 10 to score, none of them in the unlabeled pool
    x_l, y_l, x_u, x_val, y_val = experiment._split(ds, 30, 10, 0)
    assert len(x_l) == 20 and len(x_val) == 10 and len(x_u) == len(ds.x_train) - 10
    assert sorted(np.bincount(y_val, minlength=10)) == [1] * 10


# ---------------------------------------------------------------------------
# End to end, resume
# ---------------------------------------------------------------------------

TINY = dict(methods=["supervised", "vat", "labelspreading-knn"], labels=(30,), seeds=2, folds=1, steps=50,
            grids={"vat": {"epsilon": (0.5, 2.0)}, "labelspreading-knn": {"n_neighbors": (5, 10)}})


def test_compare_end_to_end_then_resume(tmp_path, capsys, monkeypatch):
    out = tmp_path / "cmp"
    summary = kzoo.compare(out=str(out), **TINY)  # kzoo.compare is callable
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("kzoo compare [")]
    # 2 supervised seeds; vat: 2 grid points x 1 fold + 2 seeds; label spreading the same
    assert len(lines) == 10 and "ETA" in lines[-1] and lines[-1].startswith("kzoo compare [10/10]")
    assert summary["ran"] == 10 and summary["reused"] == 0
    table = summary["results"]["30"]
    assert list(table) == ["supervised", "vat", "labelspreading-knn"]
    vat = table["vat"]
    assert vat["status"] == "ok" and vat["chosen"]["epsilon"] in (0.5, 2.0) and len(vat["trials"]) == 2
    errors = {s["seed"]: s["test_error"] for s in vat["seeds"]}
    sup = {s["seed"]: s["test_error"] for s in table["supervised"]["seeds"]}
    assert sorted(errors) == [0, 1] and sorted(sup) == [0, 1]
    d = vat["delta_to_reference"]  # paired by seed, with the t-interval of the per-seed differences
    diffs = [errors[s] - sup[s] for s in (0, 1)]
    assert d["mean"] == pytest.approx(np.mean(diffs))
    half = 12.706204736174698 * np.std(diffs, ddof=1) / np.sqrt(2)  # t(0.975, 1)
    assert (d["low"], d["high"]) == pytest.approx((np.mean(diffs) - half, np.mean(diffs) + half))
    assert table["labelspreading-knn"]["delta_to_reference"]["n"] == 2
    with open(out / "compare.json") as f:
        stored = json.load(f)
    assert stored["protocol"] and stored["validation_labels"] == {"30": 10}
    md = (out / "compare.md").read_text()
    assert "| vat |" in md and "Protocol:" in md and "95% CI" in md
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(out) if p.startswith(".tmp")]

    # a rerun reuses everything; one deleted and one corrupted result are the only ones run again
    cache = out / "cache"
    seed_files = sorted(p for p in os.listdir(cache) if p.startswith("seed-vat-"))
    os.remove(cache / seed_files[1])
    trial = sorted(p for p in os.listdir(cache) if p.startswith("trial-labelspreading"))[0]
    (cache / trial).write_text("{ half a file")
    again = kzoo.compare(out=str(out), **TINY)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("kzoo compare [")]
    assert again["ran"] == 2 and again["reused"] == 8 and len(lines) == 2
    assert any("vat @30 seed 1" in ln for ln in lines) and any("labelspreading-knn @30 trial" in ln for ln in lines)
    assert again["results"]["30"]["supervised"]["test_error_mean"] == table["supervised"]["test_error_mean"]

    # only_cached reports without training: an entry never run is "not run"
    def no_training(*args, **kwargs):
        raise AssertionError("only_cached must not train")

    monkeypatch.setattr(kcompare, "run_unit", no_training)
    part = kzoo.compare(out=str(out), only_cached=True, **{**TINY, "methods": TINY["methods"] + ["rpt"],
                                                             "grids": {**TINY["grids"], "rpt": {"epsilon": (1.0,)}}})
    assert part["results"]["30"]["rpt"]["status"] == "not run" and part["ran"] == 0
    assert "Not (fully) run yet: rpt" in (out / "compare.md").read_text()


# ---------------------------------------------------------------------------
# Bad input: a one-line error before any training, nothing written
# ---------------------------------------------------------------------------


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("trained despite bad input")

    monkeypatch.setattr(experiment, "run", fail)
    monkeypatch.setattr(kcompare, "run_unit", fail)


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=["nosuch"]), "unknown method 'nosuch'"),
    (dict(methods=["vat"], labels=(15,)), "too few for a validation split"),
    (dict(methods=["vat:bogus=1"]), "no hyperparameter or run setting 'bogus'"),
    (dict(methods=["vat"], grids={"rpt": {"epsilon": (1.0,)}}), "not among the methods"),
    (dict(methods=["lvat-vae"]), "lvat-vae"),
    (dict(methods=["vat"], dataset="nosuch"), "unknown dataset"),
    (dict(methods=["vat"], seeds=0), "seeds must be"),
])
def test_bad_input_fails_before_training(tmp_path, no_training, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        kzoo.compare(out=str(tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out" / "compare.json").exists()


def test_dataset_without_labels(tmp_path, no_training, monkeypatch):
    ds = kzoo.data.load("digits")
    ds.y_train = None
    monkeypatch.setattr(kzoo.data, "load", lambda *a, **k: ds)
    with pytest.raises(ConfigError, match="has no labels"):
        kzoo.compare(methods=["vat"], out=str(tmp_path / "out"))


def test_cli_bad_input_is_one_line_and_exit_code_2(tmp_path, no_training, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for argv, message in ((["compare", "nosuch", "--out", str(tmp_path / "o")], "unknown method"),
                          (["compare", "vat", "--labels", "12", "--out", str(tmp_path / "o")], "too few"),
                          (["compare", "vat", "--out", str(blocker / "sub")], "cannot be written"),
                          (["compare", "vat", "--grid", "vat:epsilon", "--out", str(tmp_path / "o")], "--grid")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("kzoo: error:") and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the leaderboard's VAT section ran on JAX: its units "
                    "are keyed by that backend (the JAX pass renders it)")
def test_the_digits_leaderboard_renders_from_its_committed_cache(tmp_path, capsys):
    """A folder written by kzoo 0.1 (a cache, no compare_settings.json, NaN NLLs of LabelSpreading) is adopted,
    and its VAT rows are found again: a hyperparameter added since (VAT's ema_teacher) is left out of the keys at
    its neutral value. The numbers are the leaderboard's (README, RESULTS.md)."""
    import shutil

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    board = tmp_path / "board"
    shutil.copytree(os.path.join(repo, "benchmarks", "results", "compare-digits", "cache"), board / "cache")
    rc = cli.main(["compare", "labelspreading-knn", "supervised", "vat", "--grid", "vat:epsilon=0.5,1,2,4,8",
                   "--labels", "100", "--seeds", "5", "--folds", "2", "--dataset", "digits",
                   "--out", str(board), "--only-cached", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    rows = json.loads((board / "compare.json").read_text())["results"]["100"]
    assert round(100 * rows["vat"]["test_error_mean"], 2) == 2.90
    assert round(100 * rows["supervised"]["test_error_mean"], 2) == 8.21
    assert json.loads((board / "compare_settings.json").read_text())["dataset"] == "digits"
