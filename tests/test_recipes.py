"""Every recipe's --full path runs offline on mock TFDS data for a few steps (paper settings, tiny label count).

A user with the prepared data can trust these paths to run; numbers need the real data and a GPU.
"""

import json
import os
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.tensorflow_only  # tfds.testing.mock_data needs TensorFlow

sys.path.insert(0, os.path.join(REPO, "recipes"))


@pytest.mark.parametrize("argv", [
    ["--dataset", "mnist", "--full"],
    ["--dataset", "svhn", "--full", "--model", "conv_small", "--method", "rpt"],
    ["--dataset", "cifar10", "--full", "--augment", "--entmin", "1.0"],
])
def test_vat_recipe_full_paths(argv, mock_tfds, tmp_path, capsys):
    import vat as recipe

    dataset = argv[1]
    with mock_tfds(dataset, n=40) as data_dir:
        out = tmp_path / "m.json"
        # the paper's architecture at 1/8 of its channels, so that CI's CPU runs it in seconds
        assert recipe.main(argv + ["--steps", "2", "--labels", "20", "--width", "0.125", "--jit-compile", "false",
                                   "--data-dir", data_dir, "--metrics-json", str(out),
                                   "--checkpoint-dir", str(tmp_path / "ckpt")]) == 0
    result = json.loads(out.read_text())
    assert result["train_steps"] == 2 and result["dataset"] == dataset
    full = recipe.FULL[dataset]
    # the recipe's --checkpoint-dir reaches run(): the folder is stamped with this run's settings
    stamp = json.loads((tmp_path / "ckpt" / "run.json").read_text())
    assert stamp["dataset"] == dataset and stamp["steps"] == 2
    assert result["hyperparameters"]["batch_labeled"] == full["batch_labeled"]
    assert result["hyperparameters"]["epsilon"] == full["epsilon"]
    assert "paper:" in capsys.readouterr().out
