"""Every recipe's --full path runs offline on mock TFDS data for a few steps (paper settings, tiny label count).

A user with the prepared data can trust these paths to run; numbers need the real data and a GPU.
"""

import json
import os
import sys

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "recipes"))


@pytest.mark.tensorflow_only  # tfds.testing.mock_data needs TensorFlow
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
        # the paper's conv architecture at 1/8 of its channels, so that CI's CPU runs it in seconds (MNIST's
        # model is the paper's MLP, which has no width: refused)
        width = [] if dataset == "mnist" else ["--width", "0.125"]
        assert recipe.main(argv + ["--steps", "2", "--labels", "20"] + width + ["--jit-compile", "false",
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


def test_vat_recipe_full_path_reads_an_npz_export_without_tensorflow(tmp_path, capsys, monkeypatch):
    """The GPU machine's path (JAX, no TensorFlow): `kzoo datasets --export`'s file is all --full needs."""
    import keras
    import numpy as np

    if keras.backend.backend() == "jax":  # from here on, `import tensorflow(_datasets)` fails
        monkeypatch.setitem(sys.modules, "tensorflow", None)
        monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)

    import kzoo.data
    import vat as recipe

    rng = np.random.default_rng(0)
    path = kzoo.data.npz_path("svhn", str(tmp_path))
    os.makedirs(os.path.dirname(path))
    np.savez(path, x_train=rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8), y_train=np.arange(60) % 10,
             x_test=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y_test=np.arange(20) % 10,
             num_classes=np.int32(10))
    out = tmp_path / "m.json"
    assert recipe.main(["--dataset", "svhn", "--full", "--model", "conv_small", "--steps", "2", "--labels", "20",
                        "--width", "0.125", "--data-dir", str(tmp_path),
                        "--metrics-json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["train_steps"] == 2 and result["hyperparameters"]["batch_unlabeled"] == 128
    assert "paper: 6.83%" in capsys.readouterr().out  # Table 4, Conv-Small, SVHN
