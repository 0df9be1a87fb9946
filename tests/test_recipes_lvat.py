"""recipes/lvat.py --full (SVHN: the paper's VAE / Glow transformer, then LVAT) runs offline on mock TFDS data.

The networks are shrunk (``--width``, ``--glow-depth``) so that CI's CPU runs them in seconds; every other
setting is the paper's and must reach the pretraining and the run. Numbers need the real data and a GPU.
"""

import json
import os
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.tensorflow_only  # tfds.testing.mock_data and LVAT (TensorFlow Probability) need TensorFlow

sys.path.insert(0, os.path.join(REPO, "recipes"))


@pytest.mark.parametrize("kind, shrink, shrunk", [
    ("vae", ["--width", "0.0625"], {"channels": 8}),
    ("glow", ["--width", "0.125", "--glow-depth", "1"], {"hidden_channels": 8, "depth": 1}),
])
def test_lvat_recipe_full_path(kind, shrink, shrunk, mock_tfds, tmp_path, capsys, pretrain_calls):
    import lvat as recipe

    calls = pretrain_calls
    save = tmp_path / f"{kind}_svhn"
    out = tmp_path / "m.json"
    argv = ["--dataset", "svhn", "--full", "--transformer", kind, "--pretrain-steps", "1", "--steps", "2",
            "--labels", "20", "--save", str(save), "--metrics-json", str(out)] + shrink
    with mock_tfds("svhn", n=40) as data_dir:
        assert recipe.main(argv + ["--data-dir", data_dir]) == 0
    # the transformer: the paper's configuration except the shrunk sizes, saved where asked
    assert len(calls) == 1 and (tmp_path / f"{kind}_svhn.keras").is_file()
    assert calls[0]["hyperparameters"] == {**recipe.FULL_PRETRAIN[kind], **shrunk}
    assert calls[0]["steps"] == 1 and calls[0]["learning_rate"] == (1e-4 if kind == "glow" else None)
    # the classifier run: LVAT with the paper's ε, batches and schedule (Conv-Large at the given width)
    result = json.loads(out.read_text())
    hp = result["hyperparameters"]
    full = recipe.FULL["svhn"]
    assert result["train_steps"] == 2 and result["method"] == f"lvat-{kind}" and result["model"] == "conv_large"
    assert hp["epsilon"] == recipe.FULL_EPSILON[("svhn", kind)]
    assert (hp["batch_labeled"], hp["batch_unlabeled"]) == (full["batch_labeled"], full["batch_unlabeled"])
    assert hp["decay_fraction"] == full["decay_fraction"] and hp["transformer"] == str(save)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("kzoo: ") and f"paper: {recipe.PAPER[('svhn', kind)]:.2f}%" in line


def test_lvat_recipe_rejects_shrinking_outside_full(capsys):
    import lvat as recipe

    with pytest.raises(SystemExit):
        recipe.main(["--width", "0.5"])
    assert "--width shrinks the --full networks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recipe.main(["--dataset", "svhn", "--full", "--transformer", "vae", "--glow-depth", "2"])
    assert "--glow-depth applies to --transformer glow" in capsys.readouterr().err
