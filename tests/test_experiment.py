"""kzoo.experiment: configuration checks, outputs written atomically."""

import json
import os

import pytest

from kzoo import experiment, regularizers


def test_build_regularizer_defaults_and_sum():
    assert experiment.build_regularizer("supervised") is None
    vat = experiment.build_regularizer("vat")
    assert isinstance(vat, regularizers.VAT) and vat.epsilon == experiment.DEFAULTS["epsilon"]["vat"]
    both = experiment.build_regularizer("vat", epsilon=0.5, entmin=2.0)
    assert both.loss_names == ("vat", "entmin") and both.weights == {"vat": 1.0, "entmin": 2.0}
    adv = experiment.build_regularizer("adversarial", adv_norm="linf", epsilon=0.1)
    assert adv.norm == "linf" and adv.epsilon == 0.1


def test_epochs_split_evenly():
    assert experiment._epochs_for(500) == 1
    assert experiment._epochs_for(3000) == 3
    assert 3001 % experiment._epochs_for(3001) == 0


def test_write_json_atomic_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    experiment.write_json_atomic(str(path), {"a": 1})
    with pytest.raises(TypeError):
        experiment.write_json_atomic(str(path), {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["r.json"]


def test_run_supervised_two_moons_learns():
    result = experiment.run(method="supervised", dataset="moons", labels=200, steps=1000,
                            batch_labeled=64, verbose=0)
    assert result["train_steps"] == 1000  # enough for batch-norm moving statistics (momentum 0.99)
    assert result["test_error"] < 0.2  # chance is 0.5
