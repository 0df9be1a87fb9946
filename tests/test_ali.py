"""kzoo.ali: ALI/BiGAN gradients checked by hand (float64 numpy), semi-supervised losses, shapes, I/O, CLI."""

import json
import os

import keras
import numpy as np
import pytest
from keras import layers, ops

from kzoo import ali as kali
from kzoo import data as kdata
from tests.conftest import np_log_softmax, np_softmax, to_np


def _sig(t):
    return 1.0 / (1.0 + np.exp(-t))


def _softplus(t):
    return np.logaddexp(0.0, t)


# ---------------------------------------------------------------------------
# A tiny linear ALI whose every gradient is written by hand
# ---------------------------------------------------------------------------

A0 = np.array([0.4, -0.3])  # encoder mean: μ = x·a
C0 = np.array([0.2, 0.1])  # encoder log-std: log σ = x·c
B0 = np.array([0.7, -0.5])  # decoder: x̃ = z·B + d
D0 = np.array([0.1, 0.2])
W0 = np.array([0.3, -0.2])  # discriminator: l = x·w + z·v + b (K columns when semi-supervised)
V0, BIAS0 = 0.5, 0.1
EPS = np.array([0.5, -1.0, 1.5, 0.3])  # encoder noise ε per example
PRIOR = np.array([1.0, -0.5, 0.2, -2.0])  # prior samples z per example
X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0], [2.0, 2.0]])


class FixedNoiseALI(kali.ALI):
    """ALI whose ε and prior z are the fixed arrays above (so the step can be computed by hand)."""

    sizes = {"eps": 4, "prior": 4}  # batch sizes of the step (static: TF traces generator batches as dynamic)

    def _normal(self, shape, what):
        values = EPS if what == "eps" else PRIOR
        return ops.convert_to_tensor(values[-self.sizes[what]:, None].astype("float32"))


def _const(v):
    return keras.initializers.Constant(np.asarray(v, "float32"))


def _linear_nets(deterministic=False, num_classes=None):
    x = keras.Input((2,))
    mean = layers.Dense(1, use_bias=False, kernel_initializer=_const(A0[:, None]), name="mean")(x)
    if deterministic:
        enc = keras.Model(x, mean)
    else:
        log_std = layers.Dense(1, use_bias=False, kernel_initializer=_const(C0[:, None]), name="log_std")(x)
        enc = keras.Model(x, [mean, log_std])
    z = keras.Input((1,))
    dec = keras.Model(z, layers.Dense(2, kernel_initializer=_const(B0[None, :]), bias_initializer=_const(D0))(z))
    xd, zd = keras.Input((2,)), keras.Input((1,))
    k = num_classes or 1
    w = np.concatenate([W0, [V0]])[:, None] * (1.0 + np.arange(k)[None, :] * np.array([[1.0], [-0.5], [0.3]]))
    b = BIAS0 * (1.0 + np.arange(k))
    disc = keras.Model([xd, zd], layers.Dense(k, kernel_initializer=_const(w), bias_initializer=_const(b))(
        layers.Concatenate()([xd, zd])))
    return enc, dec, disc, w, b


@pytest.mark.parametrize("deterministic", [False, True], ids=["ali", "bigan"])
def test_one_step_gives_each_network_the_gradient_of_its_own_loss(deterministic):
    enc, dec, disc, w_full, b_full = _linear_nets(deterministic)
    model = FixedNoiseALI(enc, dec, disc, seed=0)
    lr_d, lr_g = 0.1, 0.2
    model.compile(discriminator_optimizer=keras.optimizers.SGD(lr_d), generator_optimizer=keras.optimizers.SGD(lr_g))
    w, v, b = w_full[:2, 0], w_full[2, 0], b_full[0]
    # forward by hand (float64)
    log_std = X @ C0
    z_hat = X @ A0 + (0.0 if deterministic else np.exp(log_std) * EPS)
    x_tilde = PRIOR[:, None] * B0[None, :] + D0
    l_q = X @ w + v * z_hat + b
    l_p = x_tilde @ w + v * PRIOR + b
    n = len(X)
    # L_D = mean softplus(-l_q) + mean softplus(l_p): generator outputs constant
    dq, dp = -_sig(-l_q) / n, _sig(l_p) / n
    g_w = dq @ X + dp @ x_tilde
    g_v = dq @ z_hat + dp @ PRIOR
    g_b = dq.sum() + dp.sum()
    # L_G = mean softplus(l_q) + mean softplus(-l_p) (§2.3): discriminator constant
    gq, gp = _sig(l_q) / n, -_sig(-l_p) / n
    g_zhat = gq * v
    g_a = g_zhat @ X
    g_c = (g_zhat * np.exp(log_std) * EPS) @ X
    g_xt = gp[:, None] * w[None, :]
    g_B = PRIOR @ g_xt
    g_d = g_xt.sum(0)
    logs = model.fit(X.astype("float32"), batch_size=4, epochs=1, verbose=0, shuffle=False).history

    np.testing.assert_allclose(logs["d_loss"][0], np.mean(_softplus(-l_q)) + np.mean(_softplus(l_p)), rtol=1e-5)
    np.testing.assert_allclose(logs["g_loss"][0], np.mean(_softplus(l_q)) + np.mean(_softplus(-l_p)), rtol=1e-5)
    kernel, bias = (to_np(t) for t in disc.layers[-1].weights)
    np.testing.assert_allclose(kernel[:, 0], np.concatenate([w - lr_d * g_w, [v - lr_d * g_v]]), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bias[0], b - lr_d * g_b, rtol=1e-5)
    np.testing.assert_allclose(to_np(enc.get_layer("mean").kernel)[:, 0], A0 - lr_g * g_a, rtol=1e-5, atol=1e-7)
    if not deterministic:
        np.testing.assert_allclose(to_np(enc.get_layer("log_std").kernel)[:, 0], C0 - lr_g * g_c, rtol=1e-5,
                                   atol=1e-7)
    dk, db = (to_np(t) for t in dec.layers[-1].weights)
    np.testing.assert_allclose(dk[0], B0 - lr_g * g_B, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(db, D0 - lr_g * g_d, rtol=1e-5, atol=1e-7)


def test_semi_supervised_step_matches_the_k_plus_1_losses_by_hand():
    """K logits with the fake logit fixed at 0 (Salimans et al.): D(real) = σ(logsumexp(l))."""
    k = 3
    enc, dec, disc, w_full, b_full = _linear_nets(num_classes=k)
    model = FixedNoiseALI(enc, dec, disc, unsupervised_weight=0.7, seed=0)
    model.sizes = {"eps": 4, "prior": 2}  # 2 labeled + 2 unlabeled real inputs, 2 prior samples
    lr_d = 0.1
    model.compile(discriminator_optimizer=keras.optimizers.SGD(lr_d), generator_optimizer=keras.optimizers.SGD(0.0))
    x_l, y_l, x_u = X[:2], np.array([2, 0]), X[2:]
    x_all = np.concatenate([x_l, x_u])
    z_hat = x_all @ A0 + np.exp(x_all @ C0) * EPS[-4:]
    prior = PRIOR[-2:]
    x_tilde = prior[:, None] * B0[None, :] + D0
    feats_real = np.concatenate([x_all, z_hat[:, None]], 1)
    feats_fake = np.concatenate([x_tilde, prior[:, None]], 1)
    lr, lf = feats_real @ w_full + b_full, feats_fake @ w_full + b_full
    lse = lambda t: np.log(np.exp(t).sum(1))  # noqa: E731
    l_l, l_u = lr[:2], lr[2:]
    sup = -np_log_softmax(l_l)[np.arange(2), y_l].mean()
    unsup = np.mean(_softplus(-lse(l_u))) + np.mean(_softplus(lse(lf)))
    # gradient w.r.t. the logits, then the kernel (float64)
    onehot = np.eye(k)[y_l]
    d_l = (np_softmax(l_l) - onehot) / 2
    d_u = 0.7 * (-_sig(-lse(l_u)))[:, None] * np_softmax(l_u) / 2
    d_f = 0.7 * _sig(lse(lf))[:, None] * np_softmax(lf) / 2
    g_w = feats_real[:2].T @ d_l + feats_real[2:].T @ d_u + feats_fake.T @ d_f
    g_b = d_l.sum(0) + d_u.sum(0) + d_f.sum(0)
    def stream():
        yield {"labeled": x_l.astype("float32"), "unlabeled": x_u.astype("float32")}, y_l.astype("int32")

    logs = model.fit(stream(), steps_per_epoch=1, epochs=1, verbose=0).history
    np.testing.assert_allclose(logs["sup_loss"][0], sup, rtol=1e-5)
    np.testing.assert_allclose(logs["d_loss"][0], sup + 0.7 * unsup, rtol=1e-5)
    np.testing.assert_allclose(logs["accuracy"][0], np.mean(l_l.argmax(1) == y_l))
    kernel, bias = (to_np(t) for t in disc.layers[-1].weights)
    np.testing.assert_allclose(kernel, w_full - lr_d * g_w, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bias, b_full - lr_d * g_b, rtol=1e-5, atol=1e-7)
    # the exported classifier is x -> D(x, encoder mean): K logits, no sampling
    clf = model.classifier()
    feats = np.concatenate([X, (X @ A0)[:, None]], 1)
    np.testing.assert_allclose(clf.predict(X.astype("float32"), verbose=0), feats @ (w_full - lr_d * g_w)
                               + (b_full - lr_d * g_b), rtol=1e-4, atol=1e-5)


def test_real_and_fake_pairs_share_the_discriminators_batch_norm_statistics():
    """As in the authors' code, D sees the real pairs and the fake pairs as ONE batch: a batch-norm layer in
    D (the paper's SVHN D(x)) normalizes both with the statistics of their union."""
    enc, dec, _, w_full, b_full = _linear_nets()
    xd, zd = keras.Input((2,)), keras.Input((1,))
    hx = layers.BatchNormalization(center=False, scale=False, epsilon=1e-3)(xd)
    disc = keras.Model([xd, zd], layers.Dense(1, kernel_initializer=_const(w_full), bias_initializer=_const(b_full))(
        layers.Concatenate()([hx, zd])))
    model = FixedNoiseALI(enc, dec, disc, seed=0)
    model.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))
    z_hat = X @ A0 + np.exp(X @ C0) * EPS
    x_tilde = PRIOR[:, None] * B0[None, :] + D0
    both = np.concatenate([X, x_tilde])
    normed = (both - both.mean(0)) / np.sqrt(both.var(0) + 1e-3)  # statistics of real ∪ fake
    logits = normed @ w_full[:2, 0] + np.concatenate([z_hat, PRIOR]) * w_full[2, 0] + b_full[0]
    l_q, l_p = logits[:4], logits[4:]
    logs = model.fit(X.astype("float32"), batch_size=4, epochs=1, verbose=0, shuffle=False).history
    np.testing.assert_allclose(logs["d_loss"][0], np.mean(_softplus(-l_q)) + np.mean(_softplus(l_p)), rtol=1e-5)
    np.testing.assert_allclose(logs["g_loss"][0], np.mean(_softplus(l_q)) + np.mean(_softplus(-l_p)), rtol=1e-5)


def test_reparametrized_encoder_samples_q_z_given_x():
    enc, dec, disc, _, _ = _linear_nets()
    model = kali.ALI(enc, dec, disc, seed=3)
    x = np.repeat(X[:1], 20000, 0).astype("float32")
    z = model.encode(x, sample=True)[:, 0]
    mu, sigma = X[0] @ A0, np.exp(X[0] @ C0)
    assert abs(z.mean() - mu) < 0.03 and abs(z.std() - sigma) < 0.03
    np.testing.assert_allclose(model.encode(x[:3])[:, 0], mu, rtol=1e-6)  # the mean without sampling
    assert model.interpolate(X[:2], X[2:], steps=5).shape == (2, 5, 2)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_mismatched_networks_are_rejected_with_clear_messages():
    enc, dec, disc, _, _ = _linear_nets()
    z3 = keras.Input((3,))
    with pytest.raises(ValueError, match=r"encoder's mean output has shape \(1,\) but the decoder takes latents "
                                         r"of shape \(3,\)"):
        kali.ALI(enc, keras.Model(z3, layers.Dense(2)(z3)), disc)
    z1 = keras.Input((1,))
    with pytest.raises(ValueError, match=r"decoder's output shape \(5,\) does not match the encoder's input"):
        kali.ALI(enc, keras.Model(z1, layers.Dense(5)(z1)), disc)
    xd = keras.Input((2,))
    with pytest.raises(ValueError, match=r"discriminator must take two inputs \[x, z\]"):
        kali.ALI(enc, dec, keras.Model(xd, layers.Dense(1)(xd)))
    with pytest.raises(TypeError, match="encoder must be a keras.Model"):
        kali.ALI(lambda x: x, dec, disc)
    with pytest.raises(ValueError, match="unsupervised_weight must be a finite number >= 0"):
        kali.ALI(enc, dec, disc, unsupervised_weight=-1.0)
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        kali.networks_mlp(latent_dim=0)
    with pytest.raises(ValueError, match="width must be a finite number > 0"):
        kali.networks_conv(width=0.0)


def test_data_of_the_wrong_shape_and_nan_losses_stop_with_clear_errors():
    enc, dec, disc, _, _ = _linear_nets()
    model = kali.ALI(enc, dec, disc, seed=0)
    model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match=r"training inputs have shape \(3,\) per example but the encoder and "
                                         r"decoder work on \(2,\)"):
        model.fit(np.zeros((8, 3), "float32"), batch_size=4, epochs=1, verbose=0)

    def wrong_stream():  # only seen when the step is traced: the weights must survive the failed fit
        while True:
            yield (np.zeros((4, 3), "float32"),)

    with pytest.raises(ValueError, match=r"training inputs have shape \(3,\) per example"):
        model.fit(wrong_stream(), steps_per_epoch=2, epochs=1, verbose=0)
    np.testing.assert_allclose(to_np(enc.get_layer("mean").kernel)[:, 0], A0, rtol=1e-6)
    bad = X.astype("float32").copy()
    bad[0, 0] = np.nan
    before = [np.array(w) for w in model.get_weights()]
    with pytest.raises(FloatingPointError, match=r"non-finite loss at training step 1 .*d_loss=nan.*restored to "
                                                 r"those of step 0.*ALI training diverged: lower the learning rates"):
        model.fit(bad, batch_size=4, epochs=1, verbose=0)
    # the diverged step's weights are not kept: the model is as it was before this fit
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_hyperparameters_are_checked_before_any_work(tmp_path):
    from kzoo.experiment import ConfigError, pretrain, run

    with pytest.raises(ConfigError, match=r"beta1 \(--beta1\) of ali-ssl must be <= 0.999"):
        run(method="ali-ssl", beta1=1.5, steps=1)
    with pytest.raises(ConfigError, match=r"unsup_weight \(--unsup-weight\) of ali-ssl must be >= 0"):
        run(method="ali-ssl", unsup_weight=-1, steps=1)
    with pytest.raises(ConfigError, match=r"latent_dim \(--latent-dim\) of ali must be >= 0"):
        pretrain("ali", export=str(tmp_path / "a.keras"), hyperparameters={"latent_dim": -2})


# ---------------------------------------------------------------------------
# Mode coverage, architectures, save/load, the registered method and pretrainer
# ---------------------------------------------------------------------------


def test_covered_modes_counts_nearest_components():
    c = kdata.GAUSSIANS25_CENTERS
    assert kali.covered_modes(c) == 25
    assert kali.covered_modes(c[:3] + 0.9) == 3  # still nearest to their own centers
    assert kali.covered_modes(np.array([[1.0, 1.0]]) * 0.99) == 1
    assert kali.covered_modes(c[:4] + 0.9, radius=3) == 0  # 0.9·√2 ≫ 3σ = 0.15
    assert kali.covered_modes(c[:4] + 0.1, radius=3) == 4
    with pytest.raises(ValueError, match=r"samples must have shape \(n, 2\)"):
        kali.covered_modes(np.zeros((3, 3)))


@pytest.mark.one_backend  # model structure, the same on every backend: TensorFlow pass only
def test_architectures_have_the_advertised_shapes():
    enc, dec, disc = kali.networks_conv((8, 8, 1), latent_dim=16, num_classes=10, width=0.25)
    model = kali.ALI(enc, dec, disc, seed=0)
    assert model.stochastic and model.num_classes == 10 and model.latent_dim == 16
    assert enc.output_shape == [(None, 16), (None, 16)] and dec.output_shape == (None, 8, 8, 1)
    assert dec.layers[-1].activation is keras.activations.sigmoid  # images in [0, 1], as the paper's
    assert model.classifier().output_shape == (None, 10)
    enc, dec, disc = kali.networks_mlp(deterministic=True, width=0.1)
    model = kali.ALI(enc, dec, disc)
    assert not model.stochastic and model.num_classes is None and model.latent_dim == 2
    enc, dec, disc = kali.networks_for((8, 8, 1), num_classes=10, width=0.1)  # auto: flattening MLP
    model = kali.ALI(enc, dec, disc)
    assert model.latent_dim == 32 and dec.output_shape == (None, 8, 8, 1) and disc.get_layer("x_noise").stddev == 0.3
    with pytest.raises(ValueError, match="architecture must be one of auto, conv, mlp"):
        kali.networks_for((8, 8, 1), architecture="resnet")


def test_save_and_load_round_trip(tmp_path):
    enc, dec, disc = kali.networks_mlp(width=0.05)
    model = kali.ALI(enc, dec, disc, seed=0)
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    model.fit(np.random.default_rng(0).normal(size=(64, 2)).astype("float32"), batch_size=32, epochs=1, verbose=0)
    path = kali.save(model, tmp_path / "m.keras")
    back = kali.load(path)
    np.testing.assert_allclose(back.encode(X), model.encode(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.decode(X[:, :2]), model.decode(X[:, :2]), rtol=1e-5, atol=1e-6)
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp")] == []


@pytest.mark.skipif(keras.backend.backend() == "torch", reason="a SavedModel from torch needs torch_xla: refused "
                    "(test_export.py); loaded here with TensorFlow")
def test_kzoo_train_ali_ssl_exports_a_plain_classifier(tmp_path):
    from kzoo.experiment import run

    res = run(method="ali-ssl", dataset="moons", labels=10, steps=4, batch_labeled=8, batch_unlabeled=16,
              width=0.05, verbose=0, export=str(tmp_path / "clf"))
    assert 0.0 <= res["test_error"] <= 1.0 and res["train_steps"] == 4
    assert "networks_mlp (latent 2" in res["hyperparameters"]["networks"]
    import tensorflow as tf

    served = tf.saved_model.load(res["export"])
    logits = served.serve(tf.zeros((3, 2)))
    assert tuple(logits.shape) == (3, 2)  # x -> K logits: no encoder noise, no discriminator's fake class


def test_kzoo_pretrain_ali_on_gaussians25(tmp_path):
    from kzoo.cli import main

    out = tmp_path / "ali_g25.keras"  # given without the suffix, as in the command
    metrics = tmp_path / "m.json"
    rc = main(["pretrain", "ali", "--dataset", "gaussians25", "--steps", "5", "--batch-size", "32", "--ali-width", "0.05",
               "--export", str(tmp_path / "ali_g25"), "--metrics-json", str(metrics), "--quiet"])
    assert rc == 0
    result = json.loads(metrics.read_text())
    assert 1 <= result["covered_modes"] <= 25 and result["latent_dim"] == 2
    assert os.path.exists(result["figure"]) and result["figure"].endswith("ali_g25.png")
    assert result["export"] == str(out)
    back = kali.load(out)
    assert back.sample(10).shape == (10, 2)


def test_mode_coverage_recipe_runs_end_to_end(tmp_path):
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("ali_g25", os.path.join(REPO, "recipes", "ali_gaussians25.py"))
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    out = str(tmp_path / "g25")
    res = recipe.main(["--seeds", "1", "--steps", "2", "--width", "0.05", "--n-train", "300", "--out", out])
    assert {r["model"] for r in res["runs"]} == {"ali", "gan"} and len(res["runs"]) == 2
    for kind in ("ali", "gan"):
        assert 0 <= res["summary"][kind]["mean"] <= 25
    # paired comparison: both models of a run get the same randomized hyperparameters
    a, g = (next(r for r in res["runs"] if r["model"] == k and r["seed"] == 0) for k in ("ali", "gan"))
    assert a["learning_rate"] == g["learning_rate"] and a["init_std"] == g["init_std"]
    assert recipe.draw_hyperparameters(0) != recipe.draw_hyperparameters(1)
    assert os.path.exists(out + ".png") and os.path.exists(out + "_fig8.png") and os.path.exists(out + ".json")


# ---------------------------------------------------------------------------
# The paper's 32×32 models (Appendix A, Tables 3-4), layer by layer
# ---------------------------------------------------------------------------

# The tables, typed in again: (kernel, stride, feature maps) of G_z(x)'s / D(x)'s convolutions and G_x(z)'s
# transposed convolutions; then per dataset: latents, leaky slope, maxout pieces, D(x) BN, dropout rates.
TABLE_CONVS = [(5, 1, 32), (4, 2, 64), (4, 1, 128), (4, 2, 256), (4, 1, 512)]
TABLE_DECONVS = [(4, 1, 256), (4, 2, 128), (4, 1, 64), (4, 2, 32), (5, 1, 32)]
TABLES = {"svhn": dict(latent=256, leak=0.01, pieces=1, dx_bn=True, dropout=[0.2] * 10),
          "cifar10": dict(latent=64, leak=0.1, pieces=2, dx_bn=False,
                          dropout=[0.2, 0.5, 0.5, 0.5, 0.5, 0.2, 0.5, 0.5, 0.5, 0.5])}


def _table_parameter_count(table, w, k):
    """Trainable parameters of the three networks, counted from the table (BN: γ and β; no bias before BN)."""
    c = lambda n: max(1, round(n * w))  # noqa: E731
    lat, p = table["latent"], table["pieces"]
    enc, cin = 0, 3
    for kern, _, f in TABLE_CONVS:
        enc += kern * kern * cin * c(f) + 2 * c(f)
        cin = c(f)
    enc += cin * c(512) + 2 * c(512) + 2 * (c(512) * lat + lat)  # 1×1 conv + BN, linear [mean, log σ]
    dec, cin = 0, lat
    for kern, _, f in TABLE_DECONVS:
        dec += kern * kern * cin * c(f) + 2 * c(f)
        cin = c(f)
    dec += cin * c(32) + 2 * c(32) + c(32) * 3 + 3  # 1×1 conv + BN, 1×1 sigmoid output (bias)
    disc, cin = 0, 3
    for i, (kern, _, f) in enumerate(TABLE_CONVS):
        bn = table["dx_bn"] and i > 0
        disc += kern * kern * cin * c(f) * p + (2 * c(f) if bn else c(f) * p)
        cin = c(f)
    zin = lat
    for _ in range(2):
        disc += zin * c(512) * p + c(512) * p
        zin = c(512)
    jin = cin + zin
    for _ in range(2):
        disc += jin * c(1024) * p + c(1024) * p
        jin = c(1024)
    return enc, dec, disc + jin * k + k


@pytest.mark.parametrize("dataset", ["svhn", "cifar10"])
def test_paper_models_follow_appendix_a_layer_by_layer(dataset, monkeypatch):
    from kzoo.networks import ali as ali_networks

    table = TABLES[dataset]
    assert ali_networks._init(0.01).stddev == 0.01  # the tables' N(0, 0.01²) weights
    # structure only: constant weights build ~10× faster on JAX (no random kernel compiled per shape)
    monkeypatch.setattr(ali_networks, "_init", lambda std: "zeros")
    w = 1 / 16
    enc, dec, disc = kali.networks_paper(dataset, num_classes=10, width=w)
    model = kali.ALI(enc, dec, disc)
    assert model.latent_dim == table["latent"] and model.stochastic and model.num_classes == 10
    convs = [layer for layer in enc.layers if isinstance(layer, layers.Conv2D)]
    assert [(lay.kernel_size[0], lay.strides[0], lay.filters) for lay in convs] == [
        (k, s, max(1, round(f * w))) for k, s, f in TABLE_CONVS]
    assert [lay.output.shape[1] for lay in convs] == [28, 13, 10, 4, 1]  # valid padding: 32×32 -> 1×1
    deconvs = [layer for layer in dec.layers if isinstance(layer, layers.Conv2DTranspose)]
    assert [(lay.kernel_size[0], lay.strides[0], lay.filters) for lay in deconvs] == [
        (k, s, max(1, round(f * w))) for k, s, f in TABLE_DECONVS]
    assert [lay.output.shape[1] for lay in deconvs] == [4, 10, 13, 28, 32]
    assert dec.output_shape == (None, 32, 32, 3) and dec.layers[-1].activation is keras.activations.sigmoid
    slopes = {lay.negative_slope for net in (enc, dec, disc) for lay in net.layers if isinstance(lay, layers.LeakyReLU)}
    assert len(slopes) == 1 and slopes.pop() == pytest.approx(table["leak"])
    drops = [lay.rate for lay in disc.layers if isinstance(lay, layers.Dropout)]
    assert sorted(drops) == sorted(table["dropout"])  # one before each discriminator layer and the logits
    assert [lay.rate for lay in disc.layers if isinstance(lay, layers.Dropout) and lay.name.startswith("dx_")] == \
        table["dropout"][:5]
    bn_x = sorted(lay.name for lay in disc.layers if isinstance(lay, layers.BatchNormalization))
    assert bn_x == (["dx_bn2", "dx_bn3", "dx_bn4", "dx_bn5"] if table["dx_bn"] else [])
    maxouts = [lay for lay in disc.layers if isinstance(lay, kali.ChannelMaxout)]
    assert len(maxouts) == (9 if table["pieces"] == 2 else 0)
    assert disc.get_layer("xz").output.shape[-1] == 2 * max(1, round(512 * w))  # D(x) ⊕ D(z): the tables' 1024
    counts = tuple(sum(int(np.prod(v.shape)) for v in net.trainable_weights) for net in (enc, dec, disc))
    assert counts == _table_parameter_count(table, w, 10)


def test_channel_maxout_takes_the_max_of_consecutive_channels():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 8)).astype("float32")
    out = to_np(kali.ChannelMaxout(2)(x))
    np.testing.assert_array_equal(out, np.maximum(x[..., 0::2], x[..., 1::2]))
    assert to_np(kali.ChannelMaxout(4)(x[:, 0, 0])).shape == (2, 2)
    with pytest.raises(ValueError, match="the paper's svhn model takes 32×32 images"):
        kali.networks_paper("svhn", input_shape=(28, 28, 1))
    with pytest.raises(ValueError, match="the paper's models are for svhn, cifar10"):
        kali.networks_paper("mnist")
