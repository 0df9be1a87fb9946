"""Tests for kzoo.vat: the power iteration against an independent float64
Hessian, the values of every regularizer term, and hyperparameter checks."""

import math

import keras
import numpy as np
import pytest
from conftest import (linear_model, np_ce, np_entropy, np_kl, np_softmax, tanh_mlp,
                      tanh_mlp_np, to_np, weights64)

import kzoo
from kzoo import vat as kvat
from kzoo.core import StepContext
from kzoo.regularizers import RPT, VAT, AdversarialTraining, EntropyMinimization

EPS32 = float(np.finfo(np.float32).eps)


class RecordingContext(StepContext):
    """A StepContext that remembers every input its perturbed passes saw
    (kept as tensors: under JAX those seen inside a gradient are tracers)."""

    def forward(self, x):
        self.seen.append(x)
        return super().forward(x)


def make_ctx(model, x_l, y_l=None, x_u=None, seed=3, recording=False):
    x_l = keras.ops.convert_to_tensor(x_l)
    logits_l = model(x_l)
    logits_u = None
    if x_u is not None:
        x_u = keras.ops.convert_to_tensor(x_u)
        logits_u = model(x_u)
    if y_l is not None:
        y_l = keras.ops.convert_to_tensor(y_l)
    cls = RecordingContext if recording else StepContext
    ctx = cls(model, x_l, y_l, x_u, logits_l, logits_u, keras.random.SeedGenerator(seed))
    ctx.seen = []
    return ctx


# ---------------------------------------------------------------------------
# An independent float64 Hessian of r -> KL(p(x) || p(x + r)) at r = 0
# ---------------------------------------------------------------------------


def analytic_hessian(model, x):
    """J^T (diag p - p p^T) J per example, J the numpy Jacobian of the logits."""
    w1, b1, w2, _ = weights64(model)
    x = np.asarray(x, np.float64)
    a = x @ w1 + b1
    s = 1.0 - np.tanh(a) ** 2                      # (B, H)
    jac = np.einsum("dh,bh,hc->bcd", w1, s, w2)     # (B, C, D): d logits_c / d x_d
    p = np_softmax(tanh_mlp_np(model)(x))          # (B, C)
    curv = np.einsum("bc,ce->bce", p, np.eye(p.shape[1])) - np.einsum("bc,be->bce", p, p)
    return np.einsum("bcd,bce,bef->bdf", jac, curv, jac)


def finite_difference_hessian(f64, x, h=1e-3):
    """Central second differences of r -> KL(p(x) || p(x + r)) in float64 (one example)."""
    x = np.asarray(x, np.float64)
    p = f64(x[None])
    dim = x.shape[0]
    e = np.eye(dim) * h
    # every (i, j) corner at once: (dim, dim, 4, dim) inputs
    corners = np.stack([x + e[:, None] + e[None], x + e[:, None] - e[None],
                        x - e[:, None] + e[None], x - e[:, None] - e[None]], axis=2)
    kl = np_kl(p, f64(corners.reshape(-1, dim))).reshape(dim, dim, 4)
    return (kl[..., 0] - kl[..., 1] - kl[..., 2] + kl[..., 3]) / (4 * h * h)


def top_eigenvectors(hessians):
    vals, vecs = np.linalg.eigh(hessians)
    return vecs[..., -1], vals


def abs_cos(d, v):
    d = np.asarray(d, np.float64)
    return np.abs(np.sum(d * v, axis=1)) / (np.linalg.norm(d, axis=1) * np.linalg.norm(v, axis=1))


@pytest.fixture
def two_class(seeded):
    model = tanh_mlp(16, 32, 2)
    x = np.random.default_rng(1).uniform(0, 1, (8, 16)).astype("float32")
    return model, x


@pytest.fixture
def three_class(seeded):
    model = tanh_mlp(16, 32, 3)
    x = np.random.default_rng(1).uniform(0, 1, (8, 16)).astype("float32")
    return model, x


def test_reference_hessian_is_the_kl_hessian(three_class):
    """The analytic reference agrees with plain finite differences of the KL."""
    model, x = three_class
    analytic = analytic_hessian(model, x)
    f64 = tanh_mlp_np(model)
    for b in (0, 5):
        fd = finite_difference_hessian(f64, x[b])
        np.testing.assert_allclose(fd, analytic[b], atol=1e-5 * np.abs(analytic[b]).max() + 1e-9,
                                   rtol=1e-3)
    # p(y|x) is a softmax over logits: the Hessian's rank is at most C - 1.
    vals = np.linalg.eigvalsh(analytic)
    assert (vals > -1e-12).all()
    assert (vals[:, :-2] < 1e-9 * vals[:, -1:]).all()


@pytest.mark.parametrize("hvp", ["finite_difference", "exact"])
@pytest.mark.parametrize("iterations", [1, 2])
def test_power_iteration_finds_top_hessian_eigenvector_two_classes(two_class, hvp, iterations):
    model, x = two_class
    top, vals = top_eigenvectors(analytic_hessian(model, x))
    assert (vals[:, -1] > 0).all()
    ctx = make_ctx(model, x)
    d = to_np(kvat.power_iteration(ctx, ctx.x_l, ctx.logits_l, xi=1e-6, iterations=iterations,
                                   seed_generator=ctx.seed_generator, hvp=hvp))
    assert d.shape == x.shape and np.isfinite(d).all()
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)
    cos = abs_cos(d, top)
    assert cos.min() >= 0.9, cos
    # A random direction in 16 dimensions is nowhere near that aligned.
    rand = np.random.default_rng(0).normal(size=x.shape)
    assert abs_cos(rand, top).mean() < 0.6


@pytest.mark.parametrize("hvp", ["finite_difference", "exact"])
def test_power_iteration_three_classes_converges(three_class, hvp):
    model, x = three_class
    top, vals = top_eigenvectors(analytic_hessian(model, x))
    # two non-zero eigenvalues: one step is not enough in general, K=20 is
    assert (vals[:, -2] > 1e-3 * vals[:, -1]).all()
    ctx = make_ctx(model, x)
    d = to_np(kvat.power_iteration(ctx, ctx.x_l, ctx.logits_l, xi=1e-6, iterations=20,
                                   seed_generator=ctx.seed_generator, hvp=hvp))
    cos = abs_cos(d, top)
    assert cos.min() >= 0.9, cos


def test_power_iteration_rank4_inputs(seeded):
    """Image-shaped inputs: the direction is normalized over all non-batch axes."""
    inp = keras.Input((4, 4, 1))
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(8, activation="tanh")(h)
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    x = np.random.default_rng(2).uniform(0, 1, (3, 4, 4, 1)).astype("float32")
    ctx = make_ctx(model, x)
    d = to_np(kvat.power_iteration(ctx, ctx.x_l, ctx.logits_l, 1e-6, 1, ctx.seed_generator))
    assert d.shape == x.shape
    np.testing.assert_allclose(np.linalg.norm(d.reshape(3, -1), axis=1), 1.0, rtol=1e-5)
    # same network flattened -> same Hessian structure as the dense case
    w1, b1, w2, _ = weights64(model)
    xf = x.reshape(3, -1).astype(np.float64)
    jac = np.einsum("dh,bh,hc->bcd", w1, 1 - np.tanh(xf @ w1 + b1) ** 2, w2)
    p = np_softmax(to_np(model(x)))
    curv = np.einsum("bc,ce->bce", p, np.eye(2)) - np.einsum("bc,be->bce", p, p)
    top, _ = top_eigenvectors(np.einsum("bcd,bce,bef->bdf", jac, curv, jac))
    assert abs_cos(d.reshape(3, -1), top).min() >= 0.9


# ---------------------------------------------------------------------------
# finite_difference_step
# ---------------------------------------------------------------------------


def test_finite_difference_step_relative_floor():
    x = np.zeros((4, 3), "float32")
    x[0] = [3.0, 4.0, 0.0]            # norm 5
    x[1] = [1e4, 0.0, 0.0]            # norm 1e4
    # x[2] = 0 -> the literal xi
    x[3] = [1e-3, 0.0, 0.0]           # floor below xi=1e-6? sqrt(eps)*1e-3 = 3.5e-7 < 1e-6
    step = to_np(kvat.finite_difference_step(keras.ops.convert_to_tensor(x), 1e-6))
    assert step.shape == (4, 1)
    expect = np.maximum(1e-6, math.sqrt(EPS32) * np.array([5.0, 1e4, 0.0, 1e-3]))
    np.testing.assert_allclose(step[:, 0], expect, rtol=1e-5)
    assert step[2, 0] == pytest.approx(1e-6) and step[3, 0] == pytest.approx(1e-6)
    # a large xi is never lowered
    big = to_np(kvat.finite_difference_step(keras.ops.convert_to_tensor(x), 1.0))
    np.testing.assert_allclose(big[:, 0], [1.0, math.sqrt(EPS32) * 1e4, 1.0, 1.0], rtol=1e-5)


def test_finite_difference_step_rank4_and_literal():
    x = np.ones((2, 3, 3, 2), "float32")
    x[1] *= 10.0
    step = to_np(kvat.finite_difference_step(keras.ops.convert_to_tensor(x), 1e-6))
    assert step.shape == (2, 1, 1, 1)
    np.testing.assert_allclose(step.ravel(), math.sqrt(EPS32) * np.sqrt(18.0) * np.array([1, 10]),
                               rtol=1e-5)
    literal = to_np(kvat.finite_difference_step(keras.ops.convert_to_tensor(x), 1e-6,
                                                relative_floor=False))
    assert literal.size == 1
    np.testing.assert_allclose(literal, 1e-6, rtol=1e-6)


def test_power_iteration_literal_xi_perturbation_lost_in_float32(two_class):
    """Why the floor exists: ξ=1e-6 taken literally moves x by less than float32
    rounding, the finite difference is noise, and K=1 misses the eigenvector on
    some example; the floored step finds it on nearly every example (K=1 from a random start can still
    land between two close eigenvectors: one of 8 examples at |cos| 0.73 on some CPUs)."""
    model, x = two_class
    x = x * 100.0  # inputs of norm ~230: ulp(x) ~ 1e-5 >> ξ d
    top, _ = top_eigenvectors(analytic_hessian(model, x))
    ctx = make_ctx(model, x)
    floored = to_np(kvat.power_iteration(ctx, ctx.x_l, ctx.logits_l, 1e-6, 1, ctx.seed_generator))
    literal = to_np(kvat.power_iteration(ctx, ctx.x_l, ctx.logits_l, 1e-6, 1, ctx.seed_generator,
                                         relative_xi_floor=False))
    assert np.mean(abs_cos(floored, top) >= 0.9) >= 0.85
    with np.errstate(invalid="ignore"):  # the literal step may give d = 0
        cos_literal = np.nan_to_num(abs_cos(literal, top), nan=0.0)
    assert cos_literal.min() < 0.9


# ---------------------------------------------------------------------------
# Term values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("inputs", ["all", "labeled", "unlabeled"])
def test_vat_term_with_fixed_direction_is_numpy_kl(two_class, inputs):
    model, x = two_class
    f64 = tanh_mlp_np(model)
    x_l, x_u = x[:3], x[3:]
    reg = VAT(epsilon=0.7, inputs=inputs)
    rng = np.random.default_rng(5)
    fixed = {}

    def direction(ctx, xx, logits):
        d = rng.normal(size=tuple(xx.shape))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        fixed["d"], fixed["x"] = d, to_np(xx)
        return keras.ops.convert_to_tensor(d.astype("float32"))

    reg.adversarial_direction = direction
    ctx = make_ctx(model, x_l, np.zeros(3, "int32"), x_u)
    value = float(to_np(reg.terms(ctx)["vat"]))
    selected = {"all": x, "labeled": x_l, "unlabeled": x_u}[inputs]
    np.testing.assert_array_equal(fixed["x"], selected)
    xs = selected.astype(np.float64)
    expect = np.mean(np_kl(f64(xs), f64(xs + 0.7 * fixed["d"])))
    assert expect > 1e-6
    np.testing.assert_allclose(value, expect, rtol=2e-3)


def test_vat_term_uses_adversarial_perturbation_of_norm_epsilon(two_class):
    model, x = two_class
    f64 = tanh_mlp_np(model)
    eps = 0.5
    ctx = make_ctx(model, x, recording=True)
    value = float(to_np(VAT(epsilon=eps).terms(ctx)["vat"]))
    r = to_np(ctx.seen[-1]).astype(np.float64) - x
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), eps, rtol=1e-3)
    top, _ = top_eigenvectors(analytic_hessian(model, x))
    assert abs_cos(r, top).min() >= 0.9
    np.testing.assert_allclose(value, np.mean(np_kl(f64(x), f64(x + r))), rtol=2e-3)
    # the virtual adversarial direction beats random directions of the same norm
    rand = np.random.default_rng(0).normal(size=(16,) + x.shape)
    rand = eps * rand / np.linalg.norm(rand, axis=2, keepdims=True)
    kl_rand = np.mean([np_kl(f64(x), f64(x + rr)) for rr in rand], axis=0)
    assert (np_kl(f64(x), f64(x + r)) > kl_rand).all()


def test_rpt_perturbation_has_norm_epsilon(two_class):
    model, x = two_class
    f64 = tanh_mlp_np(model)
    ctx = make_ctx(model, x[:4], None, x[4:], recording=True)
    value = float(to_np(RPT(epsilon=2.5).terms(ctx)["rpt"]))
    assert len(ctx.seen) == 1                  # no power iteration: one perturbed pass
    r = to_np(ctx.seen[0]).astype(np.float64) - x    # "all": labeled then unlabeled
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), 2.5, rtol=1e-4)
    np.testing.assert_allclose(value, np.mean(np_kl(f64(x), f64(x + r))), rtol=2e-3)
    # random: different directions for different examples and across calls
    assert abs_cos(r[:1], r[1:2])[0] < 0.99
    RPT(epsilon=2.5).terms(ctx)
    r2 = to_np(ctx.seen[-1]) - x
    assert abs_cos(r, r2).max() < 0.99


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_adversarial_training_closed_form_on_logistic_model(seeded, norm):
    model = linear_model(6, 3)
    w, b = weights64(model)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 6)).astype("float32")
    y = np.array([0, 1, 2, 1, 0], "int32")
    eps = 0.3
    ctx = make_ctx(model, x, y, recording=True)
    value = float(to_np(AdversarialTraining(epsilon=eps, norm=norm).terms(ctx)["adv"]))
    # closed-form input gradient of CE for logits = x W + b: (softmax - onehot) W^T
    x64 = x.astype(np.float64)
    g = (np_softmax(x64 @ w + b) - np.eye(3)[y]) @ w.T
    if norm == "linf":
        r = eps * np.sign(g)
    else:
        r = eps * g / np.linalg.norm(g, axis=1, keepdims=True)
    np.testing.assert_allclose(to_np(ctx.seen[-1]) - x, r, atol=1e-5)
    expect = np.mean(np_ce(y, (x64 + r) @ w + b))
    np.testing.assert_allclose(value, expect, rtol=1e-4)
    # adversarial: worse than the clean loss
    assert value > np.mean(np_ce(y, x64 @ w + b))


@pytest.mark.parametrize("inputs", ["all", "labeled", "unlabeled"])
def test_entropy_minimization_term_is_numpy_mean_entropy(inputs):
    keras.utils.set_random_seed(7)
    model = tanh_mlp(5, 8, 3)
    x = np.random.default_rng(8).normal(size=(7, 5)).astype("float32") * 3
    ctx = make_ctx(model, x[:3], None, x[3:])
    value = float(to_np(EntropyMinimization(weight=0.5, inputs=inputs).terms(ctx)["entmin"]))
    selected = {"all": x, "labeled": x[:3], "unlabeled": x[3:]}[inputs]
    expect = np.mean(np_entropy(tanh_mlp_np(model)(selected)))
    np.testing.assert_allclose(value, expect, rtol=1e-5)


def test_supervised_context_uses_labeled_batch_for_all(two_class):
    model, x = two_class
    ctx = make_ctx(model, x)
    xa, la = ctx.inputs("all")
    xu, lu = ctx.inputs("unlabeled")
    np.testing.assert_array_equal(to_np(xa), x)
    np.testing.assert_array_equal(to_np(xu), x)
    np.testing.assert_allclose(to_np(la), to_np(lu))


# ---------------------------------------------------------------------------
# local_distributional_smoothness
# ---------------------------------------------------------------------------


def test_local_distributional_smoothness(two_class):
    model, x = two_class
    f64 = tanh_mlp_np(model)
    lds = kvat.local_distributional_smoothness(model, x, epsilon=0.3)
    assert isinstance(lds, np.ndarray) and lds.shape == (8,)
    assert np.isfinite(lds).all() and (lds >= 0).all() and lds.max() > 0
    # LDS is the KL along +-(top Hessian eigenvector) (two classes: rank one);
    # the sign is random, and the KL differs slightly between the two signs.
    top, _ = top_eigenvectors(analytic_hessian(model, x))
    plus, minus = np_kl(f64(x), f64(x + 0.3 * top)), np_kl(f64(x), f64(x - 0.3 * top))
    upper, lower = np.maximum(plus, minus) * 1.01 + 1e-7, np.minimum(plus, minus) * 0.99 - 1e-7
    assert (lds <= upper).all() and (lds >= lower).all()
    # chunking gives the same per-example quantity
    chunked = kvat.local_distributional_smoothness(model, x, epsilon=0.3, batch_size=3)
    assert chunked.shape == (8,)
    assert (chunked <= upper).all() and (chunked >= lower).all()
    # smoothness grows with the radius
    assert (kvat.local_distributional_smoothness(model, x, epsilon=1.0) > lds).all()


def test_local_distributional_smoothness_image_model(seeded):
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(2, 3, activation="tanh")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    clf = keras.Model(inp, keras.layers.Dense(3)(h))
    x = np.random.default_rng(0).uniform(0, 1, (5, 8, 8, 1)).astype("float32")
    lds = kvat.local_distributional_smoothness(clf, x, epsilon=1.0)
    assert lds.shape == (5,) and np.isfinite(lds).all() and (lds >= 0).all()


# ---------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory, name",
    [
        (lambda: VAT(epsilon=0), "epsilon"),
        (lambda: VAT(epsilon=-1.0), "epsilon"),
        (lambda: VAT(epsilon=float("nan")), "epsilon"),
        (lambda: VAT(xi=0), "xi"),
        (lambda: VAT(alpha=-1), "alpha"),
        (lambda: VAT(power_iterations=0), "power_iterations"),
        (lambda: VAT(power_iterations=-2), "power_iterations"),
        (lambda: VAT(power_iterations=1.5), "power_iterations"),
        (lambda: VAT(power_iterations="2"), "power_iterations"),
        (lambda: VAT(inputs="both"), "inputs"),
        (lambda: VAT(hvp="lanczos"), "hvp"),
        (lambda: VAT(rampup_steps=-1), "rampup_steps"),
        (lambda: RPT(epsilon=0), "epsilon"),
        (lambda: RPT(inputs="test"), "inputs"),
        (lambda: RPT(rampup_steps=-5), "rampup_steps"),
        (lambda: AdversarialTraining(epsilon=-0.1), "epsilon"),
        (lambda: AdversarialTraining(norm="l1"), "norm"),
        (lambda: AdversarialTraining(rampup_steps=-1), "rampup_steps"),
        (lambda: EntropyMinimization(weight=-1), "weight"),
        (lambda: EntropyMinimization(inputs="x"), "inputs"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_them(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


def test_k_zero_points_to_rpt():
    with pytest.raises(ValueError, match="RPT"):
        VAT(power_iterations=0)


def test_config_and_repr_roundtrip():
    reg = VAT(epsilon=2.0, power_iterations=2, hvp="exact", rampup_steps=10)
    cfg = reg.get_config()
    assert cfg["epsilon"] == 2.0 and cfg["power_iterations"] == 2 and cfg["hvp"] == "exact"
    assert cfg["rampup_steps"] == 10
    again = VAT(**cfg)
    assert again.get_config() == cfg
    assert repr(reg).startswith("VAT(") and "epsilon=2.0" in repr(reg)
    assert reg.loss_names == ("vat",)
    assert VAT(alpha=0.0).weights == {"vat": 0.0}
    assert AdversarialTraining(alpha=3).weights == {"adv": 3.0}
    assert EntropyMinimization(weight=0.2).weights == {"entmin": 0.2}


# ---------------------------------------------------------------------------
# Every regularizer trains inside the compiled train step
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reg, name",
    [
        (lambda: VAT(epsilon=1.0, power_iterations=2, hvp="exact"), "vat"),
        (lambda: RPT(epsilon=1.0), "rpt"),
        (lambda: AdversarialTraining(epsilon=0.1, norm="linf"), "adv"),
    ],
)
def test_regularizers_train_in_compiled_step(seeded, reg, name):
    clf = tanh_mlp(16, 8, 3)
    rng = np.random.default_rng(0)
    x_l = rng.uniform(0, 1, (8, 16)).astype("float32")
    x_u = rng.uniform(0, 1, (12, 16)).astype("float32")
    y = rng.integers(0, 3, 8).astype("int32")
    model = kzoo.Regularized(clf, reg(), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = weights64(clf)
    logs = model.train_on_batch({"labeled": x_l, "unlabeled": x_u}, y, return_dict=True)
    assert set(logs) == {"loss", name}
    assert np.isfinite(logs["loss"]) and logs[name] > 0
    assert any(not np.allclose(a, b) for a, b in zip(before, weights64(clf)))
