"""recipes/manifold_mixup.py: every --full path (Tables 1 and 2) runs offline on mock TFDS data for 2 steps
with the paper's optimizer, schedule, batch sizes and mixup hyperparameters, and prints the paper's number."""

import json
import os
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.tensorflow_only  # tfds.testing.mock_data needs TensorFlow

sys.path.insert(0, os.path.join(REPO, "recipes"))


# One row per table and dataset (CI time: tracing a mixed ResNet step is the slow part); the other rows differ
# only in method_settings, checked below without training.
@pytest.mark.parametrize("table,dataset,method,n,labels", [
    (1, "cifar10", "input-mixup", 40, 20),
    (1, "cifar100", "supervised", 800, 100),  # every one of the 100 mock classes needs a label
    (2, "cifar10", "manifold-mixup", 40, 20),
    (2, "svhn", "input-mixup", 40, 20),
])
def test_manifold_mixup_recipe_full_paths(table, dataset, method, n, labels, mock_tfds, tmp_path, capsys,
                                          monkeypatch):
    import functools

    import manifold_mixup as recipe

    from kzoo.networks import classifiers as models

    # Tracing the mixed passes of the full-depth ResNets takes minutes on CI's CPU: the same architectures
    # (same code, same block1/block2/block3 mixing points) with one residual block per stage here.
    monkeypatch.setattr(models, "preact_resnet18", functools.partial(models.preact_resnet18,
                                                                     blocks_per_stage=(1, 1, 1, 1)))
    monkeypatch.setattr(models, "wide_resnet28_2", functools.partial(models.wide_resnet28_2, depth=10))
    with mock_tfds(dataset, n=n) as data_dir:
        out = tmp_path / "m.json"
        # the paper's network at 1/16 of its channels, so that CI's CPU runs it in seconds
        assert recipe.main(["--table", str(table), "--dataset", dataset, "--method", method, "--full",
                            "--steps", "2", "--labels", str(labels), "--width", "0.0625", "--jit-compile", "false",
                            "--data-dir", data_dir, "--metrics-json", str(out)]) == 0
    result = json.loads(out.read_text())
    hp = result["hyperparameters"]
    assert result["train_steps"] == 2 and result["dataset"] == dataset and result["labels"] == labels
    assert result["model"] == ("preact_resnet18" if table == 1 else "wide_resnet28_2")
    # the paper's optimizer and schedule (Appendices C and E)
    assert (hp["optimizer"], hp["learning_rate"], hp["momentum"]) == ("sgd", 0.1, 0.9)
    assert hp["batch_labeled"] == 100
    if table == 1:
        assert hp["weight_decay"] == 1e-4 and hp["lr_drops"] == pytest.approx([1 / 3, 2 / 3])
        assert hp["augment"] == "translate,flip" and not hp["nesterov"]
        if method != "supervised":
            alpha = {"input-mixup": 1.0, "manifold-mixup": 2.0}[method]
            assert hp["mixup_alpha"] == alpha and result["method"] == {"input-mixup": "mixup"}.get(method, method)
        assert recipe.FULL[(1, dataset)]["steps"] == 600_000  # 1,200 epochs of 500 updates
    else:
        assert hp["batch_unlabeled"] == 100 and hp["weight_decay"] == 5e-4 and hp["nesterov"]
        assert hp["lr_drops"] == [0.5, 0.75, 0.875]
        assert (hp["mixup_alpha"], hp["mixup_unlabeled_alpha"], hp["mixup_rampup_fraction"]) == (0.1, 2.0, 0.4)
        assert hp["mixup_consistency"] == {"cifar10": 1.0, "svhn": 2.0}[dataset]
        assert hp["augment"] == {"cifar10": "translate,flip", "svhn": "translate"}[dataset]
        assert recipe.FULL[(2, dataset)]["steps"] == {"cifar10": 450_000, "svhn": 132_000}[dataset]
    if method == "manifold-mixup":
        assert hp["mix_layers"] == "input,block1,block2"
    err, nll = recipe.PAPER[(table, dataset)][method]
    printed = capsys.readouterr().out
    assert f"paper: {err:.2f}%" in printed and f"Table {table}" in printed
    assert result["recipe"]["paper"].startswith(f"{err:.2f}%")
    if nll is not None:
        assert f"NLL {nll:.4f}" in printed


@pytest.mark.parametrize("argv,message", [
    (["--full"], "--full applies to"),
    (["--table", "1", "--dataset", "svhn", "--full"], "Table 1 is on cifar10 and cifar100"),
    (["--table", "2", "--dataset", "cifar100", "--full"], "Table 2 is on cifar10 and svhn"),
    (["--table", "2", "--method", "manifold-mixup-all"], "is a Table 1 row"),
    (["--steps", "0"], "--steps must be >= 1"),
])
def test_manifold_mixup_recipe_rejects_invalid_combinations_before_any_work(argv, message, capsys, monkeypatch):
    import manifold_mixup as recipe

    from kzoo import experiment

    monkeypatch.setattr(experiment, "run", lambda **kw: pytest.fail("training started"))
    with pytest.raises(SystemExit) as e:
        recipe.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_manifold_mixup_recipe_rows_and_their_mixing_layers_on_the_full_networks():
    import manifold_mixup as recipe

    from kzoo import mixup, models

    assert recipe.method_settings(1, "supervised", True) == ("supervised", {})
    assert recipe.method_settings(1, "input-mixup", True) == ("mixup", {"mixup_alpha": 1.0})
    assert recipe.method_settings(1, "manifold-mixup", True) == (
        "manifold-mixup", {"mixup_alpha": 2.0, "mix_layers": "input,block1,block2"})
    assert recipe.method_settings(1, "manifold-mixup-all", True) == (
        "manifold-mixup", {"mixup_alpha": 6.0, "mix_layers": "input,block1,block2,block3"})
    ssl = dict(mixup_alpha=0.1, mixup_unlabeled_alpha=2.0, mixup_rampup_fraction=0.4, mixup_consistency=2.0)
    assert recipe.method_settings(2, "input-mixup", True, "svhn") == ("mixup-ssl", ssl)
    assert recipe.method_settings(2, "manifold-mixup", True, "svhn") == (
        "manifold-mixup-ssl", {**ssl, "mix_layers": "input,block1,block2"})
    # the paper's eligible layers exist at full depth (PreActResNet-18 on CIFAR-100, WRN-28-2)
    mixup.ManifoldMixup(layers="input,block1,block2,block3").check_network(
        models.preact_resnet18(num_classes=100, width=0.0625))
    mixup.ManifoldMixup(layers=recipe.PAPER_LAYERS).check_network(models.wide_resnet28_2(width=0.0625))


def test_manifold_mixup_recipe_paper_lines():
    import manifold_mixup as recipe

    assert recipe.paper_line(1, "cifar10", "manifold-mixup", True).startswith("2.89%, NLL 0.1407 (Table 1")
    assert recipe.paper_line(2, "svhn", "manifold-mixup", True).startswith("5.70% ± 0.48 (Table 2")
    assert "PreActResNet-152" in recipe.paper_line(1, "cifar10", "manifold-mixup-all", True)
    assert recipe.paper_line(1, "digits", "manifold-mixup", False).startswith("no number")
