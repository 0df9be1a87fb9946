"""recipes/ali.py: every --full path (paper Tables 1-4) runs offline on mock TFDS data for a step or two.

The paper's networks at a small channel width, the paper's batch size, learning rate, β1, latent size
and label counts; a user with the prepared data and a GPU runs the same code at full scale.
"""

import json
import os
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.tensorflow_only  # tfds.testing.mock_data needs TensorFlow

sys.path.insert(0, os.path.join(REPO, "recipes"))

N_MOCK = 2000  # random labels: every class has the 100 (SVHN) / 100 (CIFAR-10, 1000 labels) labeled examples


def _recipe():
    import ali as recipe

    return recipe


def test_svhn_unsupervised_full_path_saves_the_table4_model(mock_tfds, tmp_path, capsys):
    from kzoo import ali as kali

    recipe = _recipe()
    export, metrics = tmp_path / "ali_svhn.keras", tmp_path / "m.json"
    with mock_tfds("svhn", n=200) as data_dir:
        recipe.main(["--dataset", "svhn", "--full", "--steps", "2", "--width", "0.0625", "--quiet",
                     "--data-dir", data_dir, "--export", str(export), "--metrics-json", str(metrics),
                     "--checkpoint-dir", str(tmp_path / "ckpt")])
    res = json.loads(metrics.read_text())
    assert res["steps"] == 2 and res["dataset"] == "svhn"
    # --checkpoint-dir reached the pretraining: the folder is stamped with its settings
    assert json.loads((tmp_path / "ckpt" / "run.json").read_text())["pretrain"] == "ali"
    assert (res["batch_size"], res["learning_rate"], res["beta1"], res["latent_dim"]) == (100, 1e-4, 0.5, 256)
    assert res["hyperparameters"]["ali_arch"] == "svhn" and "Table 4" in res["networks"]
    assert os.path.exists(res["figure"]) and res["figure"].endswith("ali_svhn.png")
    back = kali.load(export)  # the saved model is the paper's SVHN architecture (Table 4)
    assert back.latent_dim == 256 and back.data_shape == (32, 32, 3)
    assert back.discriminator.get_layer("dx_conv2").kernel_size == (4, 4)
    assert back.encoder.get_layer("enc_conv1").kernel_initializer.stddev == 0.01  # N(0, 0.01²) weights
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
    out = capsys.readouterr().out
    assert "paper: 100 epochs = 73300 steps" in out and "paper: no number for the unsupervised model" in out


@pytest.mark.parametrize("dataset,labels,paper", [("svhn", None, "7.42 ± 0.65%"), ("cifar10", "1000", "19.98 ± 0.89%")])
def test_ssl_full_paths_use_the_papers_settings(dataset, labels, paper, mock_tfds, tmp_path, capsys):
    recipe = _recipe()
    metrics = tmp_path / "m.json"
    argv = ["--dataset", dataset, "--full", "--ssl", "--steps", "1", "--width", "0.0625", "--quiet",
            "--jit-compile", "false", "--metrics-json", str(metrics)] + (["--labels", labels] if labels else [])
    with mock_tfds(dataset, n=N_MOCK) as data_dir:
        recipe.main(argv + ["--data-dir", data_dir])
    res = json.loads(metrics.read_text())
    hp = res["hyperparameters"]
    assert res["train_steps"] == 1 and res["method"] == "ali-ssl" and res["labels"] == 1000
    assert (hp["batch_labeled"], hp["batch_unlabeled"], hp["learning_rate"], hp["decay_fraction"]) == (100, 100, 1e-4, 0)
    assert hp["beta1"] == 0.5 and hp["ali_arch"] == dataset
    assert hp["latent_dim"] == hp["latent_dim_used"] == {"svhn": 256, "cifar10": 64}[dataset]
    assert ("Table 4" if dataset == "svhn" else "Table 3") in hp["networks"]
    out = capsys.readouterr().out
    assert f"paper: {paper}" in out and "kzoo: " in out


def test_digits_default_runs_offline(tmp_path, capsys):
    recipe = _recipe()
    res = recipe.main(["--steps", "2", "--width", "0.05", "--quiet", "--export", str(tmp_path / "d.keras")])
    assert res["dataset"] == "digits" and res["steps"] == 2 and os.path.exists(tmp_path / "d.png")
    assert "paper: no digits number" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--full"], "--full applies to svhn and cifar10"),
    (["--dataset", "svhn"], "add --full"),
    (["--dataset", "svhn", "--full", "--labels", "1000"], "add --ssl"),
    (["--dataset", "cifar10", "--full", "--ssl", "--labels", "3000"], "Table 2 has 1000, 2000, 4000 and 8000"),
    (["--dataset", "svhn", "--full", "--width", "0"], "--width must be > 0"),
    (["--dataset", "svhn", "--full", "--export", "out.h5"], "a .keras file"),
])
def test_invalid_combinations_error_before_any_work(argv, message, capsys, monkeypatch):
    import kzoo.experiment

    recipe = _recipe()

    def no_work(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(kzoo.experiment, "run", no_work)
    monkeypatch.setattr(kzoo.experiment, "pretrain", no_work)
    with pytest.raises(SystemExit) as e:
        recipe.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_full_schedules_are_the_tables_epochs():
    recipe = _recipe()
    assert recipe.full_steps("svhn") == 100 * 733  # Table 4: 100 epochs of the 73,257 SVHN training images
    assert recipe.full_steps("cifar10") == 6475 * 500  # Table 3: 6475 epochs of 50,000 images
