"""Tests for kzoo.evaluate: ECE, FGSM, PGD and ``kzoo evaluate``."""

import json

import keras
import numpy as np
import pytest
from conftest import linear_model, np_softmax, tanh_mlp, weights64

import kzoo
from kzoo import evaluate as ev


def test_ece_hand_computed():
    # confidences 0.9, 0.75, 0.65, 0.55 in 5 bins: (0.8, 1] holds 0.9 (correct): |1 - 0.9| = 0.1;
    # (0.6, 0.8] holds 0.75 (wrong) and 0.65 (correct): |0.5 - 0.7| = 0.2; (0.4, 0.6] holds 0.55
    # (correct): 0.45. ECE = 0.1/4 + 0.2 * 2/4 + 0.45/4 = 0.2375.
    probs = np.array([[0.9, 0.1], [0.75, 0.25], [0.35, 0.65], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 1])
    assert ev.expected_calibration_error(probs, labels, bins=5) == pytest.approx(0.2375)
    # one bin: |accuracy - mean confidence| = |0.75 - 0.7125|
    assert ev.expected_calibration_error(probs, labels, bins=1) == pytest.approx(0.0375)
    # perfectly calibrated and confident
    assert ev.expected_calibration_error(np.eye(3), [0, 1, 2]) == 0.0
    m = ev.classification_metrics(np.log(probs), labels, bins=5)
    assert m["test_error"] == 0.25 and m["ece"] == pytest.approx(0.2375)
    assert m["test_nll"] == pytest.approx(-np.mean(np.log([0.9, 0.25, 0.65, 0.55])))
    with pytest.raises(ValueError, match="bins"):
        ev.expected_calibration_error(probs, labels, bins=0)


def test_fgsm_on_a_linear_model_matches_the_closed_form(seeded):
    model = linear_model(input_dim=6, num_classes=3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (20, 6)).astype("float32")
    x[:5] = 0.98  # some components end up clipped at the top of the range
    y = rng.integers(0, 3, 20)
    w, b = weights64(model)
    p = np_softmax(x.astype(np.float64) @ w + b)
    grad = (p - np.eye(3)[y]) @ w.T  # ∇_x CE(y, softmax(W^T x + b))
    eps = 0.05
    expect = np.clip(x + eps * np.sign(grad), 0.0, 1.0)
    adv = ev.fgsm(model, x, y, eps, value_range=(0.0, 1.0))
    np.testing.assert_allclose(adv, expect, atol=1e-6)
    assert adv.max() <= 1.0 and (adv == 1.0).any()
    # the attack raises the loss
    def ce(z):
        lp = np.log(np_softmax(z.astype(np.float64) @ w + b))
        return -lp[np.arange(len(y)), y].mean()
    assert ce(adv) > ce(x)


def _trained_digits_model(digits):
    keras.utils.set_random_seed(0)
    model = tanh_mlp(input_dim=64, hidden=32, num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits["x_l"], digits["y_l"], batch_size=40, epochs=60, verbose=0)
    return model


def test_pgd_many_steps_drive_accuracy_near_zero(digits):
    model = _trained_digits_model(digits)
    x, y = digits["x_test"], digits["y_test"]
    clean = ev.evaluate(model, x, y)
    assert clean["test_error"] < 0.35
    # the paper's Appendix F sanity check: an unbounded PGD search
    res = ev.evaluate(model, x, y, attack="pgd", epsilon=None, pgd_steps=40, pgd_step_size=0.05,
                      value_range=(0.0, 1.0))
    assert res["adversarial_accuracy"] <= 0.03
    # bounded PGD stays in the ε-ball and the value range, and is at least as strong as FGSM here
    adv = ev.pgd(model, x, y, 0.1, steps=10, step_size=0.02, value_range=(0.0, 1.0))
    assert np.abs(adv - x).max() <= 0.1 + 1e-6 and adv.min() >= 0.0 and adv.max() <= 1.0
    fgsm = ev.evaluate(model, x, y, attack="fgsm", epsilon=0.1, value_range=(0.0, 1.0))
    pgd_acc = float((ev.predict_logits(model, adv).argmax(1) == y).mean())
    assert pgd_acc <= fgsm["adversarial_accuracy"] + 0.02
    assert fgsm["adversarial_accuracy"] < 1 - clean["test_error"]
    with pytest.raises(ValueError, match="epsilon"):
        ev.evaluate(model, x, y, attack="fgsm", epsilon=None)
    with pytest.raises(ValueError, match="attack"):
        ev.evaluate(model, x, y, attack="cw")
    with pytest.raises(ValueError, match="value_range"):
        ev.fgsm(model, x, y, 0.1, value_range=(1.0, 0.0))


@pytest.mark.tensorflow_only
def test_cli_evaluates_an_exported_saved_model(digits, tmp_path, capsys):
    from kzoo.cli import main

    model = _trained_digits_model(digits)
    # a digits classifier on the dataset's own 8x8x1 inputs, as kzoo train exports it
    inp = keras.Input((8, 8, 1))
    clf = keras.Model(inp, model(keras.layers.Flatten()(inp)))
    net = kzoo.Regularized(clf, kzoo.regularizers.InputMixup(alpha=1.0))
    path = net.export(str(tmp_path / "clf"))
    out_json = tmp_path / "m.json"
    assert main(["evaluate", path, "--attack", "fgsm", "--epsilon", "0.1", "--limit", "100",
                 "--metrics-json", str(out_json)]) == 0
    res = json.loads(out_json.read_text())
    ds = kzoo.data.load("digits")
    direct = ev.evaluate(clf, ds.x_test[:100], ds.y_test[:100], attack="fgsm", epsilon=0.1,
                         value_range=ds.value_range)
    for key in ("test_error", "test_nll", "ece", "adversarial_accuracy"):
        assert res[key] == pytest.approx(direct[key], abs=1e-4)
    assert "FGSM" in capsys.readouterr().out
    # bad input: clear errors, exit status 2, before any work
    assert main(["evaluate", path, "--attack", "fgsm"]) == 2
    assert "needs --epsilon" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing"), "--attack", "pgd"]) == 2
    assert main(["evaluate", path, "--dataset", "moons"]) == 2
    assert "does not accept inputs" in capsys.readouterr().err


def test_cli_evaluates_a_keras_file_on_any_backend(digits, tmp_path, capsys):
    from kzoo.cli import main

    model = _trained_digits_model(digits)
    inp = keras.Input((8, 8, 1))
    clf = keras.Model(inp, model(keras.layers.Flatten()(inp)))
    path = str(tmp_path / "clf.keras")
    clf.save(path)
    assert main(["evaluate", path, "--attack", "pgd", "--epsilon", "0.05", "--pgd-steps", "3", "--limit", "50"]) == 0
    res = json.loads(capsys.readouterr().out.splitlines()[0])
    assert res["attack"] == "pgd" and res["n"] == 50 and 0.0 <= res["adversarial_accuracy"] <= 1.0
