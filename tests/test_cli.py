"""The command line contract: kzoo train / methods / datasets."""

import json
import os
import subprocess
import sys

import keras
import pytest

from kzoo import cli

REQUIRED_KEYS = {"method", "dataset", "labels", "seed", "backend", "model", "hyperparameters",
                 "test_error", "test_nll", "train_steps", "train_seconds", "steps_per_second"}


def test_methods_lists_every_method(capsys):
    assert cli.main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("supervised", "vat", "rpt", "adversarial"):
        assert any(line.split()[0] == name for line in out.splitlines())


def test_train_help_names_every_model(capsys):
    import kzoo.models

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in kzoo.models.MODELS), text


def test_datasets_reports_offline_availability(capsys, tmp_path):
    assert cli.main(["datasets", "--data-dir", str(tmp_path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(rows) >= {"digits", "moons", "circles", "spirals", "gaussians25", "synthetic32",
                         "mnist", "cifar10", "svhn"}
    assert "offline" in rows["digits"] and "not available" in rows["mnist"]


def test_train_writes_metrics_json(tmp_path, capsys):
    path = tmp_path / "m.json"
    rc = cli.main(["train", "vat", "--labels", "20", "--steps", "4", "--batch-labeled", "8",
                   "--batch-unlabeled", "16", "--entmin", "1.0", "--metrics-json", str(path), "--quiet"])
    assert rc == 0
    result = json.loads(path.read_text())
    assert REQUIRED_KEYS <= set(result)
    assert result["train_steps"] == 4 and result["labels"] == 20
    assert result["backend"] == keras.backend.backend()
    assert 0.0 <= result["test_error"] <= 1.0 and result["test_nll"] > 0
    assert "EntropyMinimization" in result["hyperparameters"]["regularizer"]
    assert "test error" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "vta"], "valid methods: supervised, vat"),
        (["train", "vat", "--dataset", "mnistt"], "valid datasets"),
        (["train", "vat", "--model", "resnet"], "valid models"),
        (["train", "vat", "--epsilon", "0"], "epsilon (--epsilon) of vat must be > 0"),
        (["train", "vat", "--power-iterations", "0"], "power_iterations"),
        (["train", "vat", "--labels", "5000"], "5000"),
        (["train", "vat", "--labels", "5"], "labels"),
        (["train", "rpt", "--entmin", "1"], "--entmin does not apply to rpt"),
        (["train", "vat", "--steps", "0"], "steps"),
    ],
)
def test_bad_arguments_fail_before_training(argv, message, capsys, monkeypatch):
    import kzoo.core

    def no_fit(*a, **k):  # training must not start
        raise AssertionError("fit was called")

    monkeypatch.setattr(kzoo.core.Regularized, "fit", no_fit)
    assert cli.main(argv + ["--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kzoo: error:") and message in err


def test_unwritable_export_fails_before_training(tmp_path, capsys, monkeypatch):
    import kzoo.core

    monkeypatch.setattr(kzoo.core.Regularized, "fit", lambda *a, **k: pytest.fail("fit was called"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["train", "vat", "--export", str(blocker / "model"), "--quiet"]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_python_dash_m_with_backend_flag(tmp_path):
    """`python -m kzoo train --backend jax` selects the backend before keras loads."""
    path = tmp_path / "m.json"
    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)
    out = subprocess.run(
        [sys.executable, "-m", "kzoo", "train", "supervised", "--backend", "jax", "--labels", "20",
         "--steps", "3", "--batch-labeled", "8", "--metrics-json", str(path), "--quiet"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(path.read_text())["backend"] == "jax"
