"""Tests for kzoo.ops: divergences, normalizations, schedules, argument checks."""

import math

import keras
import numpy as np
import pytest
from conftest import np_entropy, np_kl, to_np

from kzoo import ops as kops

# ---------------------------------------------------------------------------
# Divergences
# ---------------------------------------------------------------------------


def test_kl_from_logits_matches_float64_closed_form():
    rng = np.random.default_rng(0)
    p = rng.normal(0, 3, (7, 5))
    q = rng.normal(0, 3, (7, 5))
    got = to_np(kops.kl_from_logits(p.astype("float32"), q.astype("float32")))
    assert got.shape == (7,)
    np.testing.assert_allclose(got, np_kl(p, q), rtol=1e-4, atol=1e-5)
    # KL(p || p) = 0 and KL >= 0.
    same = to_np(kops.kl_from_logits(p.astype("float32"), p.astype("float32")))
    np.testing.assert_allclose(same, 0.0, atol=1e-6)
    assert (got >= 0).all()


def test_kl_by_hand_two_classes():
    # p = softmax([0, 0]) = (1/2, 1/2), q = softmax([log 3, 0]) = (3/4, 1/4):
    # KL = 1/2 log(2/3) + 1/2 log(2) = 1/2 log(4/3).
    got = to_np(kops.kl_from_logits(np.array([[0.0, 0.0]], "float32"),
                                    np.array([[math.log(3.0), 0.0]], "float32")))
    np.testing.assert_allclose(got, [0.5 * math.log(4.0 / 3.0)], rtol=1e-5)


def test_kl_stays_finite_for_confident_logits():
    p = np.array([[50.0, -50.0], [-50.0, 50.0], [50.0, -50.0]], "float32")
    q = np.array([[-50.0, 50.0], [-50.0, 50.0], [49.0, -49.0]], "float32")
    got = to_np(kops.kl_from_logits(p, q))
    assert np.isfinite(got).all()
    # KL(onehot(0) || softmax([-50, 50])) ~ 100 (= -log q_0), 0 for equal.
    np.testing.assert_allclose(got, np_kl(p, q), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0], 100.0, rtol=1e-5)
    np.testing.assert_allclose(got[1], 0.0, atol=1e-6)


def test_entropy_from_logits_matches_float64_closed_form():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (9, 4))
    got = to_np(kops.entropy_from_logits(z.astype("float32")))
    np.testing.assert_allclose(got, np_entropy(z), rtol=1e-5, atol=1e-6)
    # uniform -> log K, one-hot-like -> ~0 and finite
    uniform = to_np(kops.entropy_from_logits(np.zeros((2, 4), "float32")))
    np.testing.assert_allclose(uniform, math.log(4.0), rtol=1e-6)
    confident = to_np(kops.entropy_from_logits(np.array([[50.0, -50.0]], "float32")))
    assert np.isfinite(confident).all()
    np.testing.assert_allclose(confident, np_entropy([[50.0, -50.0]]), atol=1e-6)


def test_cross_entropy_from_logits():
    z = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], "float32")
    y = np.array([0, 2], "int32")
    got = to_np(kops.cross_entropy_from_logits(y, z))
    lse = np.log(np.exp(z.astype(np.float64)).sum(-1))
    np.testing.assert_allclose(got, [lse[0] - 2.0, lse[1]], rtol=1e-5)


# ---------------------------------------------------------------------------
# Normalizations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 4, 2)])
def test_l2_normalize_unit_per_example_norm(shape):
    rng = np.random.default_rng(2)
    d = rng.normal(0, 1, shape) * rng.uniform(0.1, 100, (shape[0],) + (1,) * (len(shape) - 1))
    got = to_np(kops.l2_normalize(d.astype("float32")))
    assert got.shape == shape
    flat = got.reshape(shape[0], -1)
    np.testing.assert_allclose(np.linalg.norm(flat, axis=1), 1.0, rtol=1e-5)
    # direction preserved: parallel to the input, example by example
    ref = d.reshape(shape[0], -1)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(flat, ref, atol=1e-5)
    np.testing.assert_allclose(to_np(kops.per_example_l2_norm(got)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 3, 1)])
def test_l2_normalize_tiny_inputs(shape):
    rng = np.random.default_rng(3)
    d = (rng.normal(0, 1, shape) * 1e-20).astype("float32")
    got = to_np(kops.l2_normalize(d))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(np.linalg.norm(got.reshape(shape[0], -1), axis=1), 1.0,
                               rtol=1e-4)
    ref = d.astype(np.float64).reshape(shape[0], -1)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(got.reshape(shape[0], -1), ref, atol=1e-4)


def test_l2_normalize_zero_input_is_finite():
    got = to_np(kops.l2_normalize(np.zeros((2, 3), "float32")))
    assert np.isfinite(got).all()


def test_linf_normalize_is_sign():
    d = np.array([[-2.5, 0.0, 1e-30, 7.0], [3.0, -1e-8, 0.5, -0.0]], "float32")
    got = to_np(kops.linf_normalize(d))
    np.testing.assert_array_equal(got, np.sign(d))
    assert np.abs(got).max() == 1.0


def test_per_example_l2_norm():
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    got = to_np(kops.per_example_l2_norm(x))
    np.testing.assert_allclose(got, np.linalg.norm(x.reshape(2, -1).astype(np.float64), axis=1),
                               rtol=1e-6)


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("step, t", [(0, 0.0), (50, 0.5), (100, 1.0), (150, 1.0), (1000, 1.0)])
def test_sigmoid_rampup_closed_form(step, t):
    got = float(to_np(kops.sigmoid_rampup(step, 100)))
    np.testing.assert_allclose(got, math.exp(-5.0 * (1.0 - t) ** 2), rtol=1e-6)


def test_sigmoid_rampup_tensor_step_and_no_rampup():
    got = float(to_np(kops.sigmoid_rampup(keras.ops.convert_to_tensor(25, "int32"), 100)))
    np.testing.assert_allclose(got, math.exp(-5.0 * 0.75 ** 2), rtol=1e-6)
    assert kops.sigmoid_rampup(0, 0) == 1.0
    assert kops.sigmoid_rampup(12345, 0) == 1.0
    np.testing.assert_allclose(float(to_np(kops.sigmoid_rampup(0, 1000))), math.exp(-5.0))


def test_linear_decay_values():
    sched = kops.LinearDecay(0.1, total_steps=100, decay_steps=40)
    values = {s: float(to_np(sched(s))) for s in (0, 30, 60, 70, 80, 100, 150)}
    np.testing.assert_allclose(values[0], 0.1, rtol=1e-6)
    np.testing.assert_allclose(values[30], 0.1, rtol=1e-6)
    np.testing.assert_allclose(values[60], 0.1, rtol=1e-6)   # decay starts here
    np.testing.assert_allclose(values[70], 0.1 * 0.75, rtol=1e-6)
    np.testing.assert_allclose(values[80], 0.05, rtol=1e-6)  # middle of the decay
    np.testing.assert_allclose(values[100], 0.0, atol=1e-9)
    np.testing.assert_allclose(values[150], 0.0, atol=1e-9)
    assert sched.get_config() == {"learning_rate": 0.1, "total_steps": 100, "decay_steps": 40}


def test_linear_decay_edge_cases():
    const = kops.LinearDecay(0.2, total_steps=10, decay_steps=0)
    np.testing.assert_allclose(float(to_np(const(9))), 0.2, rtol=1e-6)
    whole = kops.LinearDecay(1.0, total_steps=10, decay_steps=50)  # clipped to 10
    assert whole.decay_steps == 10
    np.testing.assert_allclose(float(to_np(whole(5))), 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="total_steps"):
        kops.LinearDecay(0.1, total_steps=0, decay_steps=0)


def test_linear_decay_as_optimizer_schedule():
    opt = keras.optimizers.SGD(learning_rate=kops.LinearDecay(0.5, 4, 2))
    v = keras.Variable(np.zeros(1, "float32"))
    lrs = []
    for _ in range(4):
        lrs.append(float(to_np(opt.learning_rate)))
        opt.apply_gradients([(keras.ops.ones((1,)), v)])
    np.testing.assert_allclose(lrs, [0.5, 0.5, 0.5, 0.25], rtol=1e-6)
    # registered for saving: an optimizer with kzoo's schedules and SGDWithL2 round-trips through its config
    for optimizer in (opt, kops.SGDWithL2(learning_rate=kops.StepDecay(0.1, boundaries=[5]), l2=1e-4)):
        config = keras.saving.serialize_keras_object(optimizer)
        again = keras.saving.deserialize_keras_object(config)
        assert type(again) is type(optimizer)
        assert type(again._learning_rate) is type(optimizer._learning_rate)
        assert keras.saving.get_registered_object(keras.saving.get_registered_name(type(optimizer._learning_rate)))


def test_step_decay_values_and_checks():
    sched = kops.StepDecay(0.1, boundaries=[50, 75, 88])
    got = {s: float(to_np(sched(s))) for s in (0, 49, 50, 74, 75, 87, 88, 1000)}
    want = {0: 0.1, 49: 0.1, 50: 0.01, 74: 0.01, 75: 1e-3, 87: 1e-3, 88: 1e-4, 1000: 1e-4}
    for s, v in want.items():
        np.testing.assert_allclose(got[s], v, rtol=1e-5)
    assert sched.get_config() == {"learning_rate": 0.1, "boundaries": [50, 75, 88], "factor": 0.1}
    twice = kops.StepDecay(1.0, [2, 2])  # two drops on one step (a very short run)
    np.testing.assert_allclose([float(to_np(twice(s))) for s in (1, 2)], [1.0, 0.01], rtol=1e-5)
    with pytest.raises(ValueError, match="non-decreasing"):
        kops.StepDecay(0.1, [75, 50])
    with pytest.raises(ValueError, match="factor"):
        kops.StepDecay(0.1, [5], factor=0.0)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_l2_matches_pytorch_style_coupled_l2(nesterov):
    """float64 numpy reference of PyTorch's SGD(momentum, weight_decay, nesterov):
    g' = g + wd w; b = m b + g'; step = g' + m b (nesterov) or b; w -= lr step.
    Keras' velocity form (v = m v - lr g'; w += v) is the same for a constant lr."""
    lr, m, wd = 0.1, 0.9, 0.05
    w0 = np.array([1.0, -2.0, 0.5])
    grads = [np.array([0.3, -0.1, 0.2]) * (k + 1) for k in range(5)]
    opt = kops.SGDWithL2(lr, momentum=m, nesterov=nesterov, l2=wd)
    v = keras.Variable(w0.astype("float32"))
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), v)])
    w, b = w0.copy(), np.zeros(3)
    for g in grads:
        g = g + wd * w
        b = m * b + g
        w = w - lr * ((g + m * b) if nesterov else b)
    np.testing.assert_allclose(to_np(v), w, rtol=1e-5, atol=1e-6)
    # without the L2 term it is Keras' SGD
    plain, ref = kops.SGDWithL2(lr, momentum=m, nesterov=nesterov), keras.optimizers.SGD(lr, m, nesterov)
    a, c = keras.Variable(w0.astype("float32")), keras.Variable(w0.astype("float32"))
    for g in grads:
        plain.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), a)])
        ref.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), c)])
    np.testing.assert_allclose(to_np(a), to_np(c), rtol=1e-6)
    assert kops.SGDWithL2.from_config(opt.get_config()).l2 == wd
    with pytest.raises(ValueError, match="l2"):
        kops.SGDWithL2(0.1, l2=-1.0)


# ---------------------------------------------------------------------------
# check_positive
# ---------------------------------------------------------------------------


def test_check_positive():
    assert kops.check_positive("epsilon", 2) == 2.0
    assert kops.check_positive("alpha", 0, allow_zero=True) == 0.0
    for bad in (0, -1.0, float("nan"), float("inf"), None):
        with pytest.raises(ValueError, match="epsilon"):
            kops.check_positive("epsilon", bad)
    with pytest.raises(ValueError, match=r"alpha.*>= 0"):
        kops.check_positive("alpha", -0.5, allow_zero=True)
