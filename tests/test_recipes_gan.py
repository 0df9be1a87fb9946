"""recipes/manifold_gan.py's paper-scale paths (CIFAR-10 / SVHN, Tables 1, 3 and 5) run offline on mock TFDS data.

One or two steps at a tiny width: the paper's settings must reach the run (metrics JSON) and the paper's
number must be printed beside kzoo's. Numbers need the real data and a GPU.
"""

import json
import os
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.tensorflow_only  # tfds.testing.mock_data needs TensorFlow

sys.path.insert(0, os.path.join(REPO, "recipes"))

TINY = ["--steps", "1", "--labels", "20", "--width", "0.0625", "--jit-compile", "false"]


def _run(argv, mock_tfds, tmp_path, dataset):
    import manifold_gan

    out = tmp_path / "m.json"
    with mock_tfds(dataset, n=40) as data_dir:
        assert manifold_gan.main(argv + TINY + ["--data-dir", data_dir, "--metrics-json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("dataset, table", [("cifar10", "1"), ("svhn", "3")])
def test_coupled_full_paths(dataset, table, mock_tfds, tmp_path, capsys):
    import manifold_gan_images as recipe

    result = _run(["--dataset", dataset, "--full", "--table", table], mock_tfds, tmp_path, dataset)
    assert result["method"] == "gan-ssl" and result["dataset"] == dataset and result["train_steps"] == 1
    hp = result["hyperparameters"]
    paper = recipe.COUPLED[dataset]
    # Table A5: γ, ε (the paper's 20 for images in [-1, 1] is 10 for kzoo's [0, 1]), η, lr, batches, schedule
    assert (hp["manifold_gamma"], hp["epsilon"], hp["eta"]) == (1e-3, 10.0, 1.0)
    assert hp["learning_rate"] == 3e-4
    assert hp["batch_labeled"] == hp["batch_unlabeled"] == {"cifar10": 25, "svhn": 50}[dataset]
    assert hp["decay_fraction"] == pytest.approx({"cifar10": 200 / 1400, "svhn": 0.0}[dataset])
    # Tables A3/A4: conv networks, latent 100, weight norm; Conv-Large (96/192) on CIFAR-10, Conv-Small on SVHN
    assert (hp["arch"], hp["latent_dim"], hp["weight_norm"]) == ("conv", 100, True)
    assert hp["gan_discriminator"] == {"cifar10": "conv_large", "svhn": "conv_small"}[dataset]
    assert hp["augment"] == ("translate,flip" if table == "1" else None)  # Table 1 is the augmented one
    # the full schedule (overridden by --steps here): epochs × one pass over the unlabeled images
    full = recipe.coupled_config(dataset, 20, "manifold", augment=False)
    assert full["steps"] == {"cifar10": 1400 * 2000, "svhn": 400 * 1466}[dataset] == \
        paper["epochs"] * -(-recipe.TRAIN_SIZE[dataset] // paper["batch"])
    line = capsys.readouterr().out.splitlines()[-1]
    expected = {"1": "with 4000 labels: Manifold (ours) 11.79 ± 0.25%",
                "3": "with 1000 labels: Manifold (ours) 4.63 ± 0.11%, Improved GAN (ours) 4.90 ± 0.10%"}[table]
    assert line.startswith("kzoo: ") and f"Table {table}" in line and expected in line


def test_decoupled_full_path_pretrains_the_dcgan_once(mock_tfds, tmp_path, capsys, pretrain_calls):
    import keras

    import manifold_gan_images as recipe

    calls = pretrain_calls
    save = tmp_path / "dcgan.keras"
    argv = ["--dataset", "cifar10", "--full", "--table", "5", "--pretrain-steps", "1", "--save", str(save),
            "--checkpoint-dir", str(tmp_path / "ckpt")]
    result = _run(argv, mock_tfds, tmp_path, "cifar10")
    # the DCGAN (Table A6, latent 100) was pretrained and saved where asked
    assert len(calls) == 1 and save.is_file()
    kw = calls[0]
    # each stage checkpoints in its own folder (a rerun resumes the stage that was interrupted)
    assert kw["checkpoint_dir"] == str(tmp_path / "ckpt" / "pretrain")
    assert json.loads((tmp_path / "ckpt" / "train" / "run.json").read_text())["method"] == "manifold"
    assert (kw["dataset"], kw["steps"], kw["batch_size"], kw["learning_rate"]) == ("cifar10", 1, 64, 2e-4)
    assert kw["hyperparameters"] == {"gan_arch": "conv", "latent_dim": 100, "gan_width": 0.0625}
    generator = keras.saving.load_model(save, compile=False)
    assert generator.input_shape == (None, 100) and generator.output_shape == (None, 32, 32, 3)
    # Table A8 reached the manifold run; Table A7's CNN is the classifier
    hp = result["hyperparameters"]
    assert result["method"] == "manifold" and result["model"] == "conv_manifold" and result["train_steps"] == 1
    assert (hp["gamma"], hp["epsilon"], hp["eta"]) == (1e-4, 10.0, 1.0)
    assert (hp["learning_rate"], hp["decay_fraction"], hp["batch_labeled"]) == (3e-4, 0.0, 100)
    assert hp["generator"] == str(save)
    assert recipe.decoupled_config(4000, "manifold", "g")["steps"] == 200 * 40  # 200 epochs of the labeled set
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("kzoo: ") and "no number for 20 labels" in line
    assert "with 4000 labels: + manifold (IS: 6.68) 23.50 ± 1.20%, Supervised (ours) 25.01 ± 1.29%" in line
    # a second run reuses the saved generator instead of pretraining again
    mtime = save.stat().st_mtime_ns
    assert recipe.pretrain_dcgan(str(save), 0.0625, 1, 0, None) is None
    assert len(calls) == 1 and save.stat().st_mtime_ns == mtime
    assert "reusing the DCGAN generator" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "cifar10", "--full", "--table", "3"], "Table 3 is a svhn experiment"),
    (["--dataset", "svhn", "--full", "--table", "5"], "Table 5 is a cifar10 experiment"),
    (["--dataset", "cifar10", "--table", "2"], "need --full"),
    (["--dataset", "cifar10", "--full", "--table", "5", "--regularizer", "ambient"], "coupled"),
    (["--dataset", "svhn", "--full", "--pretrain-steps", "3"], "applies to --table 5"),
    (["--dataset", "cifar10", "--full", "--regularizer", "none", "--gamma", "1"], "without a regularizer"),
    (["--dataset", "cifar10", "--full", "--labels", "0"], "--labels must be >= 1"),
    (["--dataset", "cifar10", "--full", "--regularizer", "unnormalized"], "needs --epsilon"),
])
def test_invalid_combinations_fail_before_any_work(argv, message, capsys, monkeypatch):
    import manifold_gan
    from kzoo import experiment

    monkeypatch.setattr(experiment, "run", lambda **kw: pytest.fail("run() was called"))
    monkeypatch.setattr(experiment, "pretrain", lambda *a, **kw: pytest.fail("pretrain() was called"))
    with pytest.raises(SystemExit) as e:
        manifold_gan.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_run_checks_come_before_the_dcgan_pretraining(tmp_path, capsys, monkeypatch):
    import manifold_gan
    from kzoo import experiment

    monkeypatch.setattr(experiment, "pretrain", lambda *a, **kw: pytest.fail("pretrain() was called"))
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        manifold_gan.main(["--dataset", "cifar10", "--full", "--table", "5", "--save", str(tmp_path / "g.keras"),
                           "--metrics-json", str(tmp_path / "file" / "m.json")])
    assert "metrics file" in capsys.readouterr().err and not (tmp_path / "g.keras").exists()


def test_paper_lines_name_the_rows():
    import manifold_gan_images as recipe

    line = recipe.paper_line(2, 4000, "manifold")
    assert "Manifold (ours) 14.34 ± 0.17%" in line and "Improved GAN (ours) 15.50 ± 0.35%" in line
    assert "Supervised (ours) 41.65 ± 3.12%" in recipe.paper_line(5, 1000, "none")
    assert "no number in the paper" in recipe.paper_line(1, 4000, "none")  # no unregularized row with augmentation
