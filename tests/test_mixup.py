"""Tests for kzoo.mixup: Manifold Mixup and input mixup, supervised and semi-supervised."""

import keras
import numpy as np
import pytest
from conftest import BACKEND, np_log_softmax, np_softmax, to_np, weights64

import kzoo
from kzoo import mixup, mixup_graph
from kzoo.core import StepContext


def two_layer(input_dim=5, hidden=4, num_classes=3):
    """input -> Dense(name=d1) -> tanh (block1) -> Dense (logits)."""
    inp = keras.Input((input_dim,), name="input")
    h = keras.layers.Dense(hidden, name="d1")(inp)
    h = keras.layers.Activation("tanh", name="block1")(h)
    out = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inp, out)


class Fixed(mixup.ManifoldMixup):
    """λ, partners and layer fixed, so the loss can be checked against numpy.

    ``Fixed(lam, perm, k)`` uses one sample for every batch; ``Fixed(samples=[...])``
    uses the given (lam, perm, k) in turn (labeled batch first, then unlabeled).
    """

    def __init__(self, lam=None, perm=None, k=None, samples=None, **kwargs):
        super().__init__(**kwargs)
        self.samples = list(samples) if samples else None
        self.fixed = (lam, perm, k)

    def sample(self, ctx, n, alpha):
        lam, perm, k = self.samples.pop(0) if self.samples else self.fixed
        return (keras.ops.convert_to_tensor(np.asarray(lam, "float32")),
                keras.ops.convert_to_tensor(np.asarray(perm, "int32")), k)


def _np_forward(model, x, k, lam, perm):
    """float64 reference: mix at layer k (0: input, 1: block1) and continue to the logits."""
    w1, b1, w2, b2 = weights64(model)
    lam = np.asarray(lam, np.float64)
    lam_col = lam[:, None] if lam.ndim else lam
    x = np.asarray(x, np.float64)
    if k == 0:
        x = lam_col * x + (1 - lam_col) * x[perm]
    h = np.tanh(x @ w1 + b1)
    if k == 1:
        h = lam_col * h + (1 - lam_col) * h[perm]
    return h @ w2 + b2


@pytest.mark.parametrize("k", [0, 1])
@pytest.mark.parametrize("per_example", [False, True])
def test_mixed_cross_entropy_matches_numpy(seeded, k, per_example):
    model = two_layer()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5)).astype("float32")
    y = np.array([0, 2, 1, 2], "int32")
    perm = np.array([2, 0, 3, 1])
    lam = np.array([0.3, 0.9, 0.5, 0.1]) if per_example else np.float64(0.3)
    reg = Fixed(lam, perm, k, alpha=1.0, layers=["input", "block1"], per_example=per_example)
    reg.check_network(model)
    ctx = StepContext(model, x, y, None, model(x), None, keras.random.SeedGenerator(0))
    value = float(to_np(reg.terms(ctx)["mixup"]))
    logits = _np_forward(model, x, k, lam, perm)
    onehot = np.eye(3)[y]
    lam_col = lam[:, None] if per_example else lam
    targets = lam_col * onehot + (1 - lam_col) * onehot[perm]
    expect = np.mean(-np.sum(targets * np_log_softmax(logits), axis=1))
    np.testing.assert_allclose(value, expect, rtol=1e-5)
    # the same as λ CE(y_i) + (1 - λ) CE(y_perm(i)) (mixup's two-label form)
    lp = np_log_softmax(logits)
    two = -(np.squeeze(lam_col) * lp[np.arange(4), y] + (1 - np.squeeze(lam_col)) * lp[np.arange(4), y[perm]])
    np.testing.assert_allclose(value, two.mean(), rtol=1e-5)


def test_layer_choice_is_the_same_eager_and_compiled(seeded):
    """A layer index k given as a tensor mixes at layer k alone, eager and compiled (one graph for all k)."""
    from kzoo import backend as kb

    model = two_layer()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5)).astype("float32")
    y = np.array([1, 0, 2, 2], "int32")
    perm, lam = np.array([3, 2, 1, 0]), np.float64(0.7)
    seed = keras.random.SeedGenerator(0)  # created once, outside any trace

    def mixed_loss(k):
        reg = Fixed(lam, perm, k, alpha=1.0, layers=["input", "block1"])
        reg.check_network(model)
        ctx = StepContext(model, x, y, None, model(x), None, seed)
        return reg.terms(ctx)["mixup"]

    compiled = kb.compile_function(mixed_loss)
    onehot = np.eye(3)[y]
    targets = lam * onehot + (1 - lam) * onehot[perm]
    for k in (0, 1):
        expect = np.mean(-np.sum(targets * np_log_softmax(_np_forward(model, x, k, lam, perm)), axis=1))
        k_tensor = keras.ops.convert_to_tensor(k, dtype="int32")
        np.testing.assert_allclose(float(to_np(mixed_loss(k_tensor))), expect, rtol=1e-5)
        np.testing.assert_allclose(float(to_np(compiled(k_tensor))), expect, rtol=1e-5)


def test_one_hot_targets_mix_like_class_indices(seeded):
    model = two_layer()
    x = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    y = np.array([0, 2, 1, 2], "int32")
    reg = Fixed(0.7, [1, 2, 3, 0], 1, layers=["block1"])
    values = []
    for targets in (y, np.eye(3, dtype="float32")[y]):
        ctx = StepContext(model, x, targets, None, model(x), None, keras.random.SeedGenerator(0))
        values.append(float(to_np(reg.terms(ctx)["mixup"])))
    np.testing.assert_allclose(values[0], values[1], rtol=1e-6)


def test_consistency_term_and_ramp_match_numpy(seeded):
    model = two_layer()
    rng = np.random.default_rng(2)
    x_l, x_u = rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(6, 5)).astype("float32")
    y = np.array([0, 1, 2, 0], "int32")
    perm_u = np.array([5, 4, 3, 2, 1, 0])
    reg = Fixed(samples=[(0.6, [1, 0, 3, 2], 1), (0.25, perm_u, 1)], layers=["block1"], consistency=3.0,
                rampup_steps=10)
    logits_u = model(x_u)
    ctx = StepContext(model, x_l, y, x_u, model(x_l), logits_u, keras.random.SeedGenerator(0))
    total, values = reg.weighted_loss(ctx, 0)
    p = np_softmax(to_np(logits_u))
    target = 0.25 * p + 0.75 * p[perm_u]
    pred = np_softmax(_np_forward(model, x_u, 1, np.float64(0.25), perm_u))
    expect = np.mean(np.mean((pred - target) ** 2, axis=1))
    np.testing.assert_allclose(float(to_np(values["mixup_consistency"])), expect, rtol=1e-5)
    ramp0 = np.exp(-5.0)  # sigmoid ramp-up at step 0
    np.testing.assert_allclose(float(to_np(total)),
                               float(to_np(values["mixup"])) + ramp0 * 3.0 * expect, rtol=1e-5)


def test_sampling_lambda_beta_and_uniform_layer(seeded):
    reg = mixup.ManifoldMixup(alpha=2.0, layers=["input", "a", "b"])
    ctx = StepContext(None, None, None, None, None, None, keras.random.SeedGenerator(3))
    lams, ks, perms = [], [], []
    for _ in range(120):
        lam, perm, k = reg.sample(ctx, 8, 2.0)
        lams.append(float(to_np(lam)))
        ks.append(int(to_np(k)))
        perms.append(tuple(to_np(perm)))
    lams = np.array(lams)
    # Beta(2, 2): mean 1/2 (standard error 0.02 here), variance 1/20
    assert abs(lams.mean() - 0.5) < 0.07 and abs(lams.var() - 0.05) < 0.02
    assert min(np.bincount(ks, minlength=3)) > 20  # each of the 3 layers about 40 times
    assert all(sorted(p) == list(range(8)) for p in perms) and len(set(perms)) > 110
    lam, _, _ = mixup.ManifoldMixup(alpha=1.0, layers=["input"], per_example=True).sample(ctx, 8, 1.0)
    assert to_np(lam).shape == (8,)


def _one_step(model_fn, reg, x, y, x_u=None):
    keras.utils.set_random_seed(0)
    clf = model_fn()
    net = kzoo.Regularized(clf, reg, seed=0)
    net.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)  # one step: no compile cost
    before = [to_np(w).copy() for w in clf.weights]
    data = x if x_u is None else {"labeled": x, "unlabeled": x_u}
    logs = net.train_on_batch(data, y, return_dict=True)
    return clf, before, logs


def test_mixed_loss_replaces_clean_loss_and_trains_layers_before_the_mixing_point(digits):
    x, y = digits["x_l"][:16], digits["y_l"][:16]
    model_fn = lambda: kzoo.models.mlp((64,), 10, hidden=(8, 8))  # noqa: E731
    clf, before, logs = _one_step(model_fn, mixup.ManifoldMixup(alpha=1.0, layers=["block2"]), x, y)
    # the paper's objective: the logged loss is the mixed cross-entropy alone
    np.testing.assert_allclose(logs["loss"], logs["mixup"], rtol=1e-5)
    # gradients reach the first layer, before the mixing point
    assert not np.allclose(to_np(clf.get_layer("dense1").kernel), before[0])
    # replace_supervised=False: clean CE + mixed CE
    _, _, logs_add = _one_step(model_fn, mixup.ManifoldMixup(alpha=1.0, layers=["block2"], replace_supervised=False),
                               x, y)
    _, _, logs_sup = _one_step(model_fn, None, x, y)
    np.testing.assert_allclose(logs_add["loss"], logs_sup["loss"] + logs_add["mixup"], rtol=1e-4)


def test_mixed_pass_does_not_update_batch_norm_statistics(digits):
    x, y = digits["x_l"][:16], digits["y_l"][:16]
    model_fn = lambda: kzoo.models.mlp((64,), 10, hidden=(8,))  # noqa: E731
    stats = []
    for reg in (None, mixup.ManifoldMixup(alpha=1.0, layers=["input", "block1"], batch_norm="clean")):
        clf, _, _ = _one_step(model_fn, reg, x, y)
        stats.append([to_np(v) for v in clf.non_trainable_variables])
    for a, b in zip(*stats):
        np.testing.assert_allclose(a, b, rtol=1e-6)  # the clean pass alone moved them


def test_semi_supervised_fit_logs_both_terms_and_exports_plain_classifier(digits, tmp_path):
    keras.utils.set_random_seed(0)
    clf = kzoo.models.mlp((64,), 10, hidden=(16, 8))
    reg = mixup.ManifoldMixup(alpha=0.5, layers="input,block1,block2", consistency=2.0, unlabeled_alpha=2.0,
                              rampup_steps=5)
    net = kzoo.Regularized(clf, reg, seed=0)
    net.compile(optimizer="adam", metrics=["accuracy"])
    stream = kzoo.data.semi_supervised(digits["x_l"], digits["y_l"], digits["x_u"], batch_labeled=16,
                                       batch_unlabeled=32, num_classes=10)
    hist = net.fit(stream, steps_per_epoch=6, epochs=1, verbose=0).history
    assert {"mixup", "mixup_consistency", "loss", "accuracy"} <= set(hist)
    assert hist["mixup_consistency"][0] > 0 and np.isfinite(hist["loss"][0])
    # consistency > 0 needs unlabeled batches: clear error on supervised data
    sup = kzoo.Regularized(kzoo.models.mlp((64,), 10, hidden=(8,)), mixup.InputMixup(consistency=1.0))
    sup.compile(optimizer="adam", jit_compile=False)
    with pytest.raises(ValueError, match="semi-supervised"):
        sup.train_on_batch(digits["x_l"][:8], digits["y_l"][:8])
    if keras.backend.backend() == "tensorflow":
        path = net.export(str(tmp_path / "mm"))
        loaded = keras.layers.TFSMLayer(path, call_endpoint="serve")
        np.testing.assert_allclose(to_np(loaded(digits["x_test"][:4])), to_np(clf(digits["x_test"][:4])),
                                   atol=1e-5)
        assert len(loaded.weights) == len(clf.weights)  # no regularizer or seed state


def test_bad_input_is_rejected_with_clear_errors():
    with pytest.raises(ValueError, match="alpha"):
        mixup.ManifoldMixup(alpha=0.0)
    with pytest.raises(ValueError, match="alpha"):
        mixup.InputMixup(alpha=-1.0)
    with pytest.raises(ValueError, match="unlabeled_alpha"):
        mixup.ManifoldMixup(unlabeled_alpha=0.0)
    with pytest.raises(ValueError, match="empty"):
        mixup.ManifoldMixup(layers=[])
    with pytest.raises(ValueError, match="empty"):
        mixup.ManifoldMixup(layers=" , ")
    with pytest.raises(ValueError, match="distinct"):
        mixup.ManifoldMixup(layers=["input", "input"])
    model = kzoo.models.mlp((64,), 10, hidden=(8,))
    with pytest.raises(ValueError, match=r"no layer named 'block7'.*input, .*block1"):
        kzoo.Regularized(model, mixup.ManifoldMixup(layers=["input", "block7"]))
    with pytest.raises(ValueError, match="output"):
        mixup_graph.split_model(model, "logits")
    # a split inside a residual block: the layers after it also need the skip connection
    inp = keras.Input((4,), name="input")
    a = keras.layers.Dense(4, name="a")(inp)
    b = keras.layers.Dense(4, name="b")(a)
    s = keras.layers.Add(name="block1")([a, b])
    res = keras.Model(inp, keras.layers.Dense(2, name="logits")(s))
    with pytest.raises(ValueError, match="skip connection"):
        mixup_graph.split_model(res, "b")
    assert mixup_graph.split_model(res, "block1")[1] is not None

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(2)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="functional"):
        mixup_graph.split_model(sub, "d")
    mixup_graph.split_model(sub, "input")  # input mixup needs no split
    # targets: class indices or one-hot only
    with pytest.raises(ValueError, match="class indices"):
        mixup.as_probabilities(keras.ops.zeros((4, 5)), 3)
    with pytest.raises(ValueError, match="class indices"):
        mixup.as_probabilities(keras.ops.zeros((4, 3, 2)), 3)
    with pytest.raises(ValueError, match="non-integer"):
        mixup.check_targets(np.array([0.5, 1.0]), 3)
    with pytest.raises(ValueError, match="outside"):
        mixup.check_targets(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="probability"):
        mixup.check_targets(np.array([[1.0, 1.0, 0.0]]), 3)
    np.testing.assert_array_equal(mixup.check_targets(np.array([0.0, 2.0]), 3), [0, 2])


def test_methods_cli_flags_and_errors(tmp_path):
    from kzoo.experiment import ConfigError, run

    res = run(method="manifold-mixup-ssl", dataset="digits", labels=30, steps=10, batch_labeled=8,
              batch_unlabeled=16, verbose=0, mixup_rampup_fraction=0.5, mix_layers="input,block1,block2")
    assert np.isfinite(res["test_nll"]) and "ManifoldMixup" in res["hyperparameters"]["regularizer"]
    assert "rampup_steps=5" in res["hyperparameters"]["regularizer"]
    with pytest.raises(ConfigError, match="valid|can be mixed"):
        run(method="manifold-mixup", steps=2, verbose=0, mix_layers="input,conv9")
    with pytest.raises(ConfigError, match="mixup_alpha"):
        run(method="mixup", steps=2, verbose=0, mixup_alpha=0.0)
    with pytest.raises(ConfigError, match="does not apply"):
        run(method="mixup", steps=2, verbose=0, mix_layers="block1")


def test_resnets_have_named_mixable_blocks(seeded):
    pre = kzoo.models.preact_resnet18((8, 8, 1), 10, width=1 / 16, blocks_per_stage=(1, 1, 1, 1))
    names = mixup_graph.mixable_layers(pre)
    assert [n for n in names if n.startswith("block")] == ["block1", "block2", "block3", "block4"]
    assert not any(n.endswith("_conv2") for n in names)  # inside a residual block: not a split point
    model = kzoo.models.wide_resnet28_2((8, 8, 1), 10, width=0.25, depth=10)
    names = mixup_graph.mixable_layers(model)
    assert [n for n in names if n.startswith("block")] == ["block1", "block2", "block3"]
    reg = mixup.ManifoldMixup(alpha=2.0, layers=["input", "block1", "block2"])
    net = kzoo.Regularized(model, reg, seed=0)
    net.compile(optimizer="adam")
    x = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype("float32")
    logs = net.train_on_batch(x, np.arange(8) % 10, return_dict=True)
    assert np.isfinite(logs["mixup"])


@pytest.mark.one_backend  # model structure, the same on every backend: TensorFlow pass only
def test_full_size_resnets_parameter_counts():
    # PreActResNet-18 on CIFAR-10: 11,171,146 trainable parameters in the widely used PyTorch
    # implementation (kuangliu/pytorch-cifar), which omits He et al.'s final BN-ReLU
    # (2 x 512 parameters) that kzoo keeps; WRN-28-2: about 1.5M (Oliver et al., 2018).
    pre = kzoo.models.preact_resnet18((32, 32, 3), 10)
    assert sum(int(np.prod(w.shape)) for w in pre.trainable_weights) == 11_171_146 + 2 * 512
    wrn = kzoo.models.wide_resnet28_2((32, 32, 3), 10)
    assert 1.4e6 < sum(int(np.prod(w.shape)) for w in wrn.trainable_weights) < 1.55e6


def test_mixed_pass_normalizes_with_the_clean_batch_statistics(seeded):
    from conftest import bn_model

    model = bn_model(input_dim=6, units=5, num_classes=3, momentum=0.9)
    rng = np.random.default_rng(4)
    x_stats = rng.normal(size=(8, 6)).astype("float32")
    x = (0.5 * rng.normal(size=(8, 6)) + 1.0).astype("float32")
    # the training-mode output of a batch is reproduced exactly from its own statistics
    np.testing.assert_allclose(to_np(mixup.call_with_batch_statistics_of(model, x_stats, x_stats)),
                               to_np(kzoo.call_without_updates(model, x_stats, training=True)), atol=1e-5)
    # float64 reference: batch norm of x with the mean and (biased) variance of x_stats
    pre = to_np(model.get_layer("pre").kernel).astype(np.float64)
    bn = model.get_layer("bn")
    gamma, beta = to_np(bn.gamma).astype(np.float64), to_np(bn.beta).astype(np.float64)
    w, b = (to_np(v).astype(np.float64) for v in model.get_layer("logits").weights)
    hs = x_stats.astype(np.float64) @ pre
    h = (x.astype(np.float64) @ pre - hs.mean(0)) / np.sqrt(hs.var(0) + bn.epsilon) * gamma + beta
    expect = np.maximum(h, 0) @ w + b
    np.testing.assert_allclose(to_np(mixup.call_with_batch_statistics_of(model, x_stats, x)), expect, atol=1e-4)
    before = [to_np(v).copy() for v in model.non_trainable_variables]
    mixup.call_with_batch_statistics_of(model, x_stats, x)
    for a, v in zip(before, model.non_trainable_variables):
        np.testing.assert_array_equal(a, to_np(v))


@pytest.mark.parametrize("batch_norm", ["clean", "mixed"])
def test_batch_norm_modes_of_the_mixed_pass(seeded, batch_norm):
    from conftest import bn_model

    model = bn_model(input_dim=6, units=5, num_classes=3)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 6)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2], "int32")
    perm = np.array([3, 4, 5, 0, 1, 2])
    reg = Fixed(0.4, perm, 0, layers=["input"], batch_norm=batch_norm)
    ctx = StepContext(model, x, y, None, model(x), None, keras.random.SeedGenerator(0))
    value = float(to_np(reg.terms(ctx)["mixup"]))
    x_mix = 0.4 * x + 0.6 * x[perm]
    if batch_norm == "clean":
        logits = mixup.call_with_batch_statistics_of(model, x, x_mix)
    else:
        logits = kzoo.call_without_updates(model, x_mix, training=True)
    targets = 0.4 * np.eye(3)[y] + 0.6 * np.eye(3)[y[perm]]
    expect = np.mean(-np.sum(targets * np_log_softmax(to_np(logits)), axis=1))
    np.testing.assert_allclose(value, expect, rtol=1e-5)
    with pytest.raises(ValueError, match="batch_norm"):
        mixup.ManifoldMixup(batch_norm="running")


@pytest.mark.parametrize("model", ["conv_small", "conv_large", "conv_manifold"])
def test_conv_models_take_manifold_mixups_default_layers(seeded, model):
    # the default mix_layers ("auto") picks input,block1,block2 on every built-in model
    from kzoo.experiment import run
    from kzoo.methods import get

    net = kzoo.models.get(model, input_shape=(8, 8, 1), num_classes=10, width=1 / 16)
    names = mixup_graph.mixable_layers(net)
    assert [n for n in names if n.startswith("block")] == ["block1", "block2", "block3"]
    assert mixup.auto_layers(net) == (("input", "block1", "block2"), None)
    assert get("manifold-mixup").hyperparameter("mix_layers").default == "auto"
    res = run(method="manifold-mixup", model=model, width=1 / 16, labels=20, steps=2, batch_labeled=8,
              verbose=0, test=False)
    assert "block1" in res["hyperparameters"]["regularizer"] and res["train_steps"] == 2
    # the metrics JSON says where and how the run mixed
    assert res["hyperparameters"]["mix_layers_used"] == "input,block1,block2"
    assert res["hyperparameters"]["mix_batch_norm_used"] == "paper"


def test_vat_mixup_adds_vat_entmin_and_mixup_consistency_keeping_the_clean_loss(seeded):
    from kzoo.experiment import run

    res = run(method="vat-mixup", labels=20, validation_labels=10, steps=2, batch_labeled=8, batch_unlabeled=8, entmin=1.0,
              mixup_consistency=3.0, verbose=0, test=False)
    reg = res["hyperparameters"]["regularizer"]
    assert reg.startswith("VAT(") and "EntropyMinimization(" in reg and "ManifoldMixup(" in reg
    assert "consistency=3.0" in reg and "replace_supervised=False" in reg and "rampup_steps=1" in reg
    assert np.isfinite(res["val_nll"])


def test_beta_sampler_matches_numpy_and_stays_finite_at_small_alpha(seeded):
    """kzoo.ops.sample_beta (keras.ops only, so it compiles with XLA on TensorFlow) against numpy's Beta."""
    import scipy.stats

    from kzoo import ops as kops

    seed, rng = keras.random.SeedGenerator(0), np.random.default_rng(0)
    for a, b in [(0.2, 0.2), (1.0, 1.0), (2.0, 2.0), (0.5, 3.0)]:
        x = to_np(kops.sample_beta((20000,), a, b, seed)).astype(np.float64)
        ref = rng.beta(a, b, 20000).astype(np.float32).astype(np.float64)  # float32 rounds near 1 alike
        assert scipy.stats.ks_2samp(x, ref).pvalue > 1e-3, (a, b)
        np.testing.assert_allclose(x.mean(), a / (a + b), atol=0.01)
    tiny = to_np(kops.sample_beta((1000,), 0.01, 0.01, seed))
    assert np.all(np.isfinite(tiny)) and np.mean((tiny < 1e-6) | (tiny > 1 - 1e-6)) > 0.8  # 0.87 in theory


def test_permute_rows_gradient_is_the_inverse_permutation():
    """kzoo.ops.permute_rows: x[perm], and d/dx sum(w * x[perm]) = w[perm^-1] (by hand), per row."""
    from kzoo import backend as kb
    from kzoo import ops as kops

    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 7, 3)).astype(np.float32)
    perm = np.array([3, 0, 6, 1, 5, 2, 4], np.int32)
    np.testing.assert_array_equal(to_np(kops.permute_rows(x, perm)), x[perm])
    g = to_np(kb.grad_wrt(lambda r: keras.ops.sum(kops.permute_rows(r, perm) * w), keras.ops.convert_to_tensor(x)))
    inverse = np.empty(7, np.int64)
    inverse[perm] = np.arange(7)
    np.testing.assert_allclose(g, w[inverse], rtol=0, atol=0)


def test_paper_batch_norm_trains_on_the_mixed_pass_alone(seeded):
    """batch_norm="paper": one stateful pass over the mixed batch; loss, accuracy and batch-norm statistics
    against a float64 computation by hand, compiled."""
    from conftest import bn_model

    model = bn_model(input_dim=6, units=5, num_classes=3, momentum=0.75)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(6, 6)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2], "int32")
    perm, lam = np.array([3, 4, 5, 0, 1, 2]), 0.3
    w_pre = to_np(model.get_layer("pre").kernel).astype(np.float64)
    bn = model.get_layer("bn")
    w, b = (to_np(v).astype(np.float64) for v in model.get_layer("logits").weights)
    h = x.astype(np.float64) @ w_pre
    h_mix = lam * h + (1 - lam) * h[perm]  # mixed at the layer "pre", before batch norm
    z = np.maximum((h_mix - h_mix.mean(0)) / np.sqrt(h_mix.var(0) + bn.epsilon), 0) @ w + b
    targets = lam * np.eye(3)[y] + (1 - lam) * np.eye(3)[y[perm]]
    expect_loss = np.mean(-np.sum(targets * np_log_softmax(z), axis=1))
    dominant = y[perm]  # λ = 0.3: the partner weighs more
    net = kzoo.Regularized(model, Fixed(lam, perm, 1, layers=["input", "pre"], batch_norm="paper"), seed=0)
    net.compile(optimizer=keras.optimizers.SGD(0.0), metrics=["accuracy"], jit_compile=True)
    logs = net.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["mixup"], expect_loss, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], expect_loss, rtol=1e-5)
    np.testing.assert_allclose(logs["accuracy"], np.mean(z.argmax(1) == dominant), atol=1e-6)
    # the mixed pass alone updated the moving statistics (from 0 and 1, momentum 0.75)
    np.testing.assert_allclose(to_np(bn.moving_mean), 0.25 * h_mix.mean(0), atol=1e-5)
    np.testing.assert_allclose(to_np(bn.moving_variance), 0.75 + 0.25 * h_mix.var(0), rtol=1e-4)
    with pytest.raises(ValueError, match="paper"):
        mixup.ManifoldMixup(batch_norm="paper", replace_supervised=False)
    with pytest.raises(ValueError, match="paper"):
        mixup.ManifoldMixup(batch_norm="paper", consistency=1.0)


@pytest.mark.skipif(BACKEND == "torch", reason="XLA is TensorFlow's and JAX's; jit_compile=True on torch is "
                    "torch.compile, minutes of inductor compile per fit on a CPU (the paper-batch-norm test above "
                    "compiles one step with it)")
@pytest.mark.parametrize("batch_norm", ["clean", "paper"])
def test_manifold_mixup_compiles_with_xla_on_every_backend(digits, batch_norm):
    """Random λ, partners and layer in one jit-compiled graph (TensorFlow: no gamma kernel in XLA needed)."""
    keras.utils.set_random_seed(0)
    clf = kzoo.models.mlp((64,), 10, hidden=(16, 8))
    net = kzoo.Regularized(clf, mixup.ManifoldMixup(alpha=2.0, layers="input,block1,block2", batch_norm=batch_norm),
                           seed=0)
    net.compile(optimizer="adam", metrics=["accuracy"], jit_compile=True)
    before = to_np(clf.get_layer("dense1").kernel).copy()
    hist = net.fit(digits["x_l"], digits["y_l"], batch_size=16, epochs=2, verbose=0).history
    assert net.jit_compile and np.all(np.isfinite(hist["loss"])) and np.all(np.isfinite(hist["accuracy"]))
    assert not np.allclose(to_np(clf.get_layer("dense1").kernel), before)


# --------------------------------------------------------------------------
# layers="auto" (issue 27): the paper's eligible layers on a user's plain network
# --------------------------------------------------------------------------


def plain_mlp():
    inp = keras.Input((6,))
    h = keras.layers.Dense(5, activation="relu")(inp)
    h = keras.layers.Dense(4, activation="tanh")(h)
    h = keras.layers.Dense(4, activation="relu")(h)
    return keras.Model(inp, keras.layers.Dense(3)(h))


def plain_conv1d():
    """The MNIST-1D paper's CNN in small: three strided Conv1D, Flatten, Dense; no layer names."""
    inp = keras.Input((40, 1))  # 40 -> 18 -> 8 -> 4 positions
    h = keras.layers.Conv1D(3, 5, strides=2, activation="relu")(inp)
    h = keras.layers.Conv1D(4, 3, strides=2, activation="relu")(h)
    h = keras.layers.Conv1D(4, 1, strides=2, activation="relu")(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inp, keras.layers.Dense(3)(h))


def plain_conv2d():
    """Conv2D -> pool -> Conv2D -> pool -> Flatten -> Dense -> Dense."""
    inp = keras.Input((10, 10, 2))
    h = keras.layers.Conv2D(3, 3, activation="relu")(inp)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(4, 2, activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(5, activation="relu")(h)
    return keras.Model(inp, keras.layers.Dense(3)(h))


def _np_layer(layer, h):
    """float64 numpy forward of one layer of the plain nets above (valid padding, channels last)."""
    act = {"relu": lambda v: np.maximum(v, 0.0), "tanh": np.tanh, "linear": lambda v: v}
    if isinstance(layer, keras.layers.Dense):
        w, b = (to_np(v).astype(np.float64) for v in layer.weights)
        return act[layer.activation.__name__](h @ w + b)
    if isinstance(layer, keras.layers.Conv1D):
        w, b = (to_np(v).astype(np.float64) for v in layer.weights)
        k, s = w.shape[0], layer.strides[0]
        n_out = (h.shape[1] - k) // s + 1
        out = np.stack([sum(h[:, t * s + j] @ w[j] for j in range(k)) for t in range(n_out)], axis=1) + b
        return act[layer.activation.__name__](out)
    if isinstance(layer, keras.layers.Conv2D):
        w, b = (to_np(v).astype(np.float64) for v in layer.weights)
        kh, kw = w.shape[:2]
        rows, cols = h.shape[1] - kh + 1, h.shape[2] - kw + 1
        out = np.zeros((h.shape[0], rows, cols, w.shape[-1]))
        for a in range(kh):
            for c in range(kw):
                out += h[:, a:a + rows, c:c + cols] @ w[a, c]
        return act[layer.activation.__name__](out + b)
    if isinstance(layer, keras.layers.MaxPooling2D):
        n, r, c, ch = h.shape
        return h[:, :r // 2 * 2, :c // 2 * 2].reshape(n, r // 2, 2, c // 2, 2, ch).max(axis=(2, 4))
    if isinstance(layer, keras.layers.Flatten):
        return h.reshape(len(h), -1)
    raise AssertionError(f"no numpy reference for {type(layer).__name__}")


def _np_mixed_logits(model, x, mix_at, lam, perm):
    """float64 reference of the plain nets: mix the hidden states at layer ``mix_at`` and go on."""
    h = np.asarray(x, np.float64)
    if mix_at == "input":
        h = lam * h + (1 - lam) * h[perm]
    for layer in model.layers[1:]:
        h = _np_layer(layer, h)
        if layer.name == mix_at:
            h = lam * h + (1 - lam) * h[perm]
    return h


@pytest.mark.parametrize("build,expect", [
    (plain_mlp, (0, 1)),  # Dense layers: every one a stage; the first two of three hidden stages
    (plain_conv1d, (0, 1)),  # strided convs: every one halves the resolution, a stage each
    (plain_conv2d, (1, 4)),  # a stage ends after its pooling: pool 1, pool 2 flattened (then Dense, Dense)
])
def test_default_mixes_at_hidden_layers_of_plain_user_networks(seeded, build, expect):
    model = build()
    names = tuple(model.layers[1 + i].name for i in expect)
    reg = Fixed(0.35, None, None, alpha=1.0)  # the default layers: the paper's rule on this network
    assert reg.layers_for(model) == ("input",) + names and reg.batch_norm == "paper"
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    perm = np.array([3, 0, 4, 1, 2])
    ctx = StepContext(model, x, None, None, None, None, keras.random.SeedGenerator(0))
    for k, name in enumerate(reg.layers_for(model)):
        got = to_np(reg.mixed_logits(ctx, x, keras.ops.convert_to_tensor(np.float32(0.35)),
                                     keras.ops.convert_to_tensor(perm.astype("int32")), k))
        np.testing.assert_allclose(got, _np_mixed_logits(model, x, name, 0.35, perm), rtol=1e-4, atol=1e-5)
    # mixing at a hidden layer is not input mixup
    assert not np.allclose(_np_mixed_logits(model, x, names[0], 0.35, perm),
                           _np_mixed_logits(model, x, "input", 0.35, perm), atol=1e-3)


class _Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.out = keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.hidden(x))


def _skip_around_everything():
    inp = keras.Input((6,))
    h = keras.layers.Dense(6, activation="relu")(inp)
    h = keras.layers.Dense(6, activation="relu")(h)
    h = keras.layers.Add()([h, inp])
    return keras.Model(inp, keras.layers.Dense(3)(h), name="skipnet")


def _one_hidden():
    inp = keras.Input((6,))
    return keras.Model(inp, keras.layers.Dense(3)(keras.layers.Dense(4, activation="relu")(inp)), name="onehidden")


@pytest.mark.parametrize("build,why", [(_Subclassed, "not a functional Keras model"),
                                       (_skip_around_everything, "skip connection"),
                                       (_one_hidden, "1 hidden stage")])
def test_no_eligible_hidden_layer_warns_and_falls_back_or_refuses_when_auto_was_asked(seeded, build, why):
    model = build()
    model(np.zeros((2, 6), "float32"))
    with pytest.warns(UserWarning, match=f"falls back to input mixup.*|{why}") as record:
        kzoo.Regularized(model, mixup.ManifoldMixup())
    assert why in str(record[0].message) and "falls back to input mixup" in str(record[0].message)
    reg = mixup.ManifoldMixup()
    with pytest.warns(UserWarning):
        assert reg.layers_for(model) == ("input",)
    with pytest.raises(kzoo.errors.SplitError, match="layers='auto'") as err:
        kzoo.Regularized(model, mixup.ManifoldMixup(layers="auto"))
    assert why in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(kzoo.errors.KzooError, match="alone"):
        mixup.ManifoldMixup(layers=["auto", "input"])


def test_keras_round_trip_keeps_the_chosen_layers_and_mode_and_says_them_once(seeded, tmp_path, capsys):
    model = plain_conv1d()
    x = np.random.default_rng(0).uniform(size=(16, 40, 1)).astype("float32")
    y = np.arange(16) % 3
    reg = mixup.ManifoldMixup()
    net = kzoo.Regularized(model, reg, seed=0)
    chosen = reg.layers
    assert len(chosen) == 3 and chosen[0] == "input"
    net.compile(optimizer="adam", jit_compile=False)
    for _ in range(2):
        net.fit(x, y, batch_size=8, epochs=1, verbose=0)
    out = capsys.readouterr().out
    assert out.count("kzoo: ManifoldMixup mixes at " + ", ".join(chosen)) == 1 and "batch_norm='paper'" in out
    config = reg.get_config()
    assert config["layers"] == list(chosen) and config["batch_norm"] == "paper"
    net.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.regularizer.layers == chosen and loaded.regularizer.batch_norm == "paper"
    assert loaded.regularizer.layers_for(loaded.network) == chosen
    # input mixup's mode too; the semi-supervised variant keeps its clean pass
    inp = kzoo.Regularized(plain_conv1d(), mixup.InputMixup(), seed=0)
    inp.save(tmp_path / "i.keras")
    again = keras.models.load_model(tmp_path / "i.keras").regularizer
    assert isinstance(again, mixup.InputMixup) and again.batch_norm == "paper" and again.layers == ("input",)
    assert mixup.ManifoldMixup(consistency=1.0).batch_norm == "clean"
    assert mixup.ManifoldMixup(replace_supervised=False).batch_norm == "clean"
