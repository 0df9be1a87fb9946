"""kzoo bench: argument checks, the in-process worker, the table."""

import keras
import pytest

from kzoo import bench, methods


def test_worker_measures_a_method_and_the_keras_reference():
    # jit on torch is torch.compile (minutes of inductor compile on a CPU): eager there
    cfg = {"backend": keras.backend.backend(), "jit": keras.backend.backend() != "torch", "precision": "float32", "dataset": "digits",
           "labels": 20, "model": "mlp", "width": 1.0, "batch_labeled": 8, "batch_unlabeled": 8, "steps": 3,
           "warmup": 1, "hp": {"epsilon": "2.0"}}
    row = bench.worker({**cfg, "method": "vat"})
    assert row["steps_per_second"] > 0 and row["ms_per_step"] == pytest.approx(1000 / row["steps_per_second"])
    assert row["peak_rss_mb"] > 50
    ref = bench.worker({**cfg, "method": bench.KERAS_REFERENCE, "hp": {}})
    assert ref["steps_per_second"] > 0
    table = bench.markdown([row, ref, {**row, "method": "lvat", "skipped": "needs --transformer"}])
    assert "| vat |" in table and "skipped: needs --transformer" in table


def test_bad_arguments_are_rejected_before_any_run(capsys, monkeypatch):
    monkeypatch.setattr(bench.subprocess, "run", lambda *a, **k: pytest.fail("a run started"))
    for argv, message in ((["--methods", "vta"], "unknown methods"),
                          (["--backends", "numpy"], "--backends"),
                          (["--jit", "maybe"], "--jit"),
                          (["--precision", "fp8"], "--precision"),
                          (["--hp", "vat.epsilon=-1"], "epsilon"),
                          (["--hp", "nope"], "METHOD.NAME=VALUE"),
                          (["--steps", "0"], "--steps")):
        with pytest.raises(SystemExit):
            bench.main(argv)
        assert message in capsys.readouterr().err


def test_methods_missing_a_required_argument_are_skipped_with_the_reason(monkeypatch):
    spec = methods.Method("needs-path", "test", (methods.Hyperparameter("transformer", None, "path", str),),
                          build=lambda hp: None)
    monkeypatch.setitem(methods.METHODS, "needs-path", spec)
    assert "--transformer" in bench._needs("needs-path", {})
    assert bench._needs("needs-path", {"transformer": "x.keras"}) is None
    assert bench._needs("vat", {}) is None
