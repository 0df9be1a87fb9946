"""Per-dataset presets of the method registry (issue 15, item 4): validation-chosen settings that fill in
what a run does not give explicitly; explicit arguments override them."""

import dataclasses

import pytest

from kzoo import cli, methods
from kzoo.experiment import ConfigError, run


def _with_presets(monkeypatch, name, *presets, warning=""):
    spec = dataclasses.replace(methods.METHODS[name], presets=presets, warning=warning)
    monkeypatch.setitem(methods.METHODS, name, spec)
    return spec


def test_preset_lookup_merges_dataset_and_label_count():
    spec = dataclasses.replace(methods.METHODS["vat"], presets=(
        methods.Preset("digits", {"epsilon": 2.0, "steps": 3000}),
        methods.Preset("digits", {"epsilon": 3.0}, labels=30),
        methods.Preset("digits", {"epsilon": 9.0}, model="conv_small"),
        methods.Preset("mnist", {"epsilon": 5.0})))
    assert spec.preset("digits", 100) == {"epsilon": 2.0, "steps": 3000}
    assert spec.preset("digits", 30) == {"epsilon": 3.0, "steps": 3000}  # the label count's, over the dataset's
    assert spec.preset("digits", 30, model="conv_small") == {"epsilon": 9.0}
    assert spec.preset("cifar10", 100) == {}


def test_register_rejects_a_preset_the_method_cannot_take():
    base = methods.METHODS["vat"]
    for bad in ({"epsilon": -1.0}, {"mixup_alpha": 1.0}):
        spec = dataclasses.replace(base, name="vat-bad-preset", presets=(methods.Preset("digits", bad),))
        with pytest.raises(ValueError):
            methods.register(spec)
    assert "vat-bad-preset" not in methods.METHODS


def test_run_applies_the_preset_under_explicit_arguments(monkeypatch):
    _with_presets(monkeypatch, "vat", methods.Preset("digits", {"epsilon": 2.5, "entmin": 0.5, "steps": 3}),
                  methods.Preset("digits", {"entmin": 0.25}, labels=20))
    common = dict(method="vat", dataset="digits", labels=20, batch_labeled=8, batch_unlabeled=8, verbose=0,
                  test=False)
    res = run(**common)
    assert res["train_steps"] == 3
    assert (res["hyperparameters"]["epsilon"], res["hyperparameters"]["entmin"]) == (2.5, 0.25)
    assert res["preset"] == {"epsilon": 2.5, "entmin": 0.25, "steps": 3}
    res = run(steps=2, epsilon=1.5, **common)  # explicit arguments win
    assert res["train_steps"] == 2 and res["hyperparameters"]["epsilon"] == 1.5
    assert res["hyperparameters"]["entmin"] == 0.25 and res["preset"] == {"entmin": 0.25}
    res = run(steps=2, preset=False, **common)
    assert res["hyperparameters"]["epsilon"] == 1.0 and "preset" not in res
    with pytest.raises(ConfigError, match="does not apply"):  # a bad argument fails before the preset
        run(mixup_alpha=1.0, **common)


def test_methods_verbose_shows_presets_and_warnings(monkeypatch, capsys):
    _with_presets(monkeypatch, "rpt", methods.Preset("digits", {"epsilon": 4.0}, labels=100, evidence="RESULTS.md"),
                  warning="worse than supervised on digits at 30 labels")
    assert cli.main(["methods", "-v"]) == 0
    out = capsys.readouterr().out
    assert "preset (digits, 100 labels, model mlp): epsilon=4.0  [RESULTS.md]" in out
    assert "warning: worse than supervised on digits at 30 labels" in out


def test_registered_presets_are_valid_and_reach_a_run():
    for spec in methods.METHODS.values():
        for preset in spec.presets:
            spec.resolve({k: v for k, v in preset.settings.items() if k not in methods.PRESET_RUN_SETTINGS})
    assert methods.METHODS["mixup"].warning and methods.METHODS["manifold-mixup"].warning
    res = run(method="mixup", dataset="digits", labels=20, steps=2, batch_labeled=8, verbose=0, test=False)
    assert res["preset"] == {"mixup_alpha": 1.0, "mix_keep_clean": True, "mix_batch_norm": "clean"}
    assert "replace_supervised=False" in res["hyperparameters"]["regularizer"]


def _leaderboard_rows():
    """(section, labels, row) of every measured row of the committed digits leaderboard whose entry is the
    method itself (not a named variant such as vat+entmin), without a pretrained file among its settings."""
    import glob
    import json
    import os

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "results",
                        "compare-digits")
    for path in sorted(glob.glob(os.path.join(root, "*.json"))):
        with open(path) as f:
            summary = json.load(f)
        for n, table in summary["results"].items():
            for label, row in table.items():
                entry = row["entry"]
                if (entry["method"] not in methods.METHODS or label.split(":")[0] != entry["method"]
                        or row["test_error_mean"] is None or row.get("chosen") is None
                        or any(isinstance(v, str) and v.endswith(".keras") for v in entry["fixed"].values())):
                    continue
                yield os.path.basename(path), int(n), summary["run_settings"], row


def test_presets_reproduce_the_leaderboard_rows():
    # issue 15, item 4: `kzoo train METHOD --dataset digits --labels N` with no flags trains the leaderboard's
    # row: the preset gives the validation-chosen setting and the row's fixed settings and run settings
    rows = list(_leaderboard_rows())
    assert len(rows) >= 4
    for section, n, run_settings, row in rows:
        method = row["entry"]["method"]
        spec = methods.METHODS[method]
        preset = spec.preset("digits", n, "mlp")
        hp = spec.resolve({k: v for k, v in preset.items() if k not in methods.PRESET_RUN_SETTINGS})
        for k, v in {**row["entry"]["fixed"], **row["chosen"]}.items():
            assert hp[k] == pytest.approx(v), (section, n, method, k, hp[k], v)
        for k, default in methods.PRESET_RUN_SETTINGS.items():
            want = row["entry"]["run"].get(k, run_settings[k])
            assert preset.get(k, default) == pytest.approx(want), (section, n, method, k)
