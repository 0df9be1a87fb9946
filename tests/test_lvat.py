"""Tests for kzoo.lvat: the VAE and Glow transformers (TFP math, Keras variables),
the LVAT regularizer (latent power iteration against an exact float64 Hessian),
save/load, bad input, and the clear error on JAX."""

import os
import warnings

import keras
import numpy as np
import pytest
from conftest import BACKEND, np_kl, np_softmax, tanh_mlp, tanh_mlp_np, to_np, weights64

import kzoo
from kzoo.experiment import ConfigError

TF = BACKEND == "tensorflow"
tf_only = [pytest.mark.tensorflow_only,
           pytest.mark.skipif(not TF, reason="TensorFlow Probability runs on the TensorFlow backend only")]


def tf_only_test(fn):
    for mark in tf_only:
        fn = mark(fn)
    return fn


@pytest.fixture(scope="module")
def digits_images():
    ds = kzoo.data.load("digits")
    return ds


@pytest.fixture(scope="module")
def trained_glow(digits_images):
    """A small Glow (2 levels x 1 step) trained for 44 steps on digits; the first step's effect is kept."""
    if not TF:
        pytest.skip("TensorFlow backend only")
    keras.utils.set_random_seed(0)
    glow = kzoo.models.Glow(input_shape=(8, 8, 1), levels=2, depth=1, hidden_channels=16, num_bins=17, seed=0)
    glow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    before = [to_np(v).copy() for v in glow.trainable_variables]
    first = glow.fit(digits_images.x_train[:128], batch_size=128, epochs=1, verbose=0).history
    glow.first_step = {"before": before, "after": [to_np(v).copy() for v in glow.trainable_variables],
                       "logs": first, "initialized": float(to_np(glow.initialized))}
    glow.fit(digits_images.x_train, batch_size=128, epochs=4, steps_per_epoch=43 // 4 + 1, verbose=0)
    return glow


def tiny_glow(trained=True):
    glow = kzoo.models.Glow(input_shape=(8, 8, 1), levels=1, depth=1, hidden_channels=4, num_bins=17)
    if trained:
        glow.trained_steps.assign(1.0)  # its quality does not matter where it is used
    return glow


# ---------------------------------------------------------------------------
# Glow
# ---------------------------------------------------------------------------


@tf_only_test
def test_squeeze_is_space_to_depth_and_unsqueeze_inverts_it():
    from kzoo.lvat import squeeze2d, unsqueeze2d

    x = np.arange(2 * 4 * 6 * 3, dtype="float32").reshape(2, 4, 6, 3)
    s = to_np(squeeze2d(keras.ops.convert_to_tensor(x)))
    assert s.shape == (2, 2, 3, 12)
    # numpy reference: output channel (c, i, j) at (h, w) is x[2h + i, 2w + j, c]
    for c in range(3):
        for i in range(2):
            for j in range(2):
                np.testing.assert_array_equal(s[..., c * 4 + i * 2 + j], x[:, i::2, j::2, c])
    np.testing.assert_array_equal(to_np(unsqueeze2d(keras.ops.convert_to_tensor(s))), x)


@tf_only_test
def test_glow_log_det_is_the_log_abs_det_of_the_numerical_jacobian(digits_images):
    """The flow's log|det dz/dy| (TFP bijectors) against tf's full Jacobian and numpy's slogdet, float64."""
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    glow = kzoo.models.Glow(input_shape=(4, 4, 1), levels=2, depth=1, hidden_channels=8, num_bins=17, seed=3)
    x = digits_images.x_train[:64, 2:6, 2:6, :]
    glow.initialize(x)  # non-trivial actnorm
    rng = np.random.default_rng(0)
    for v in glow.trainable_variables:  # move every parameter away from its initial value
        v.assign(to_np(v) + 0.1 * rng.normal(size=v.shape).astype("float32"))
    y = tf.constant(rng.uniform(-0.5, 0.5, (3, 4, 4, 1)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(y)
        z, ldj = glow.flow_forward(y)
        rows = [tf.reduce_sum(z[:, i]) for i in range(16)]  # examples are independent: one row each
    jac = np.stack([tape.gradient(row, y).numpy().reshape(3, 16) for row in rows], axis=1).astype(np.float64)
    _, logdet = np.linalg.slogdet(jac)
    np.testing.assert_allclose(ldj.numpy(), logdet, rtol=1e-3, atol=1e-3)
    # and the flow is a bijection: the inverse returns y
    np.testing.assert_allclose(to_np(glow.flow_inverse(z)), y.numpy(), atol=1e-5)


@tf_only_test
def test_glow_invertibility_on_digits_within_1e_4(trained_glow, digits_images):
    from kzoo.lvat import invertibility_error

    x = np.concatenate([digits_images.x_train, digits_images.x_test])
    z = to_np(trained_glow.encode(keras.ops.convert_to_tensor(x)))
    assert z.shape == (len(x), 64)
    assert invertibility_error(trained_glow, x) <= 1e-4
    # off the data the inverse flow may blow up: decode stays finite, in the data range [0, 1]
    wild = to_np(trained_glow.decode(keras.ops.convert_to_tensor(z[:16] * 50.0)))
    assert np.all(np.isfinite(wild)) and wild.min() >= 0.0 and wild.max() <= 1.0


@tf_only_test
def test_glow_one_training_step_changes_every_trainable_variable(trained_glow):
    glow = trained_glow
    names = {v.path.split("/")[-1] for v in glow.trainable_variables}
    assert {"bias", "log_scale", "lu_free", "log_abs_s", "kernel"} <= names
    # per step: actnorm 2, 1x1 conv 2, coupling 3 convs x (kernel, bias); 2 levels x 1 step
    assert len(glow.trainable_variables) == 2 * (2 + 2 + 6)
    first = glow.first_step
    unchanged = [v.path for v, b, a in zip(glow.trainable_variables, first["before"], first["after"])
                 if np.array_equal(a, b)]
    assert unchanged == []
    assert first["initialized"] == 1.0  # fit on an array ran the data-dependent actnorm initialization
    # loss is bits/dim of 17-level data: positive, and below ~log2(17) after actnorm's initialization
    assert 0.0 < first["logs"]["loss"][0] < 6.0
    assert float(to_np(glow.trained_steps)) == 1 + 4 * (43 // 4 + 1)


@tf_only_test
def test_glow_loss_is_bits_per_dim_of_the_change_of_variables(digits_images):
    """bits/dim = (-log N(z) - log|det|) / (D ln 2) + log2(bins), recomputed in numpy from z and the log-det."""
    glow = kzoo.models.Glow(input_shape=(8, 8, 1), levels=1, depth=1, hidden_channels=8, num_bins=17)
    x_deq = (digits_images.x_test[:16] * 16 + 0.5) / 17
    z, ldj = glow.flow_forward(keras.ops.convert_to_tensor(x_deq - 0.5))
    z, ldj = to_np(z).astype(np.float64), to_np(ldj).astype(np.float64)
    log_p = -0.5 * np.sum(z ** 2, axis=1) - 32 * np.log(2 * np.pi) + ldj
    np.testing.assert_allclose(to_np(glow.log_prob_deq(keras.ops.convert_to_tensor(x_deq))), log_p, rtol=1e-5)
    bits = to_np(glow._bits(keras.ops.convert_to_tensor(-log_p.astype("float32"))))
    np.testing.assert_allclose(bits, -log_p / (64 * np.log(2)) + np.log2(17), rtol=1e-5)


def test_glow_bad_shapes_raise():
    if not TF:
        pytest.skip("TensorFlow backend only")
    with pytest.raises(ValueError, match="divisible by 8"):
        kzoo.models.Glow(input_shape=(12, 12, 1), levels=3)
    with pytest.raises(ValueError, match="image inputs"):
        kzoo.models.Glow(input_shape=(64,))


# ---------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------


@tf_only_test
def test_vae_one_training_step_changes_every_trainable_variable_and_logs_the_elbo(digits_images):
    vae = kzoo.models.VAE(input_shape=(8, 8, 1), latent_dim=4, channels=8, num_bins=17, seed=0)
    assert len(vae.trainable_variables) > 0
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    before = [to_np(v).copy() for v in vae.trainable_variables]
    logs = vae.fit(digits_images.x_train[:64], batch_size=64, epochs=1, verbose=0).history
    unchanged = [v.path for v, b in zip(vae.trainable_variables, before) if np.array_equal(to_np(v), b)]
    assert unchanged == []
    assert logs["loss"][0] == pytest.approx(logs["reconstruction"][0] + logs["kl"][0], rel=1e-4)
    assert logs["bits_per_dim"][0] == pytest.approx(logs["loss"][0] / (64 * np.log(2)) + np.log2(17), rel=1e-4)


@tf_only_test
def test_vae_elbo_terms_match_numpy_closed_forms(digits_images):
    """KL(N(μ, σ²) || N(0, 1)) and the Normal log-likelihood, recomputed in float64 numpy."""
    vae = kzoo.models.VAE(input_shape=(8, 8, 1), latent_dim=4, channels=8, num_bins=17, seed=0)
    x = keras.ops.convert_to_tensor((digits_images.x_test[:8] * 16 + 0.5) / 17)
    q = vae.posterior(x)
    params = to_np(vae.encoder(x, training=False)).astype(np.float64)
    mu, sigma = params[:, :4], np.log1p(np.exp(params[:, 4:])) + 1e-4
    kl_np = np.sum(0.5 * (mu ** 2 + sigma ** 2 - 1) - np.log(sigma), axis=1)
    from kzoo.lvat import _tfp

    np.testing.assert_allclose(to_np(_tfp().distributions.kl_divergence(q, vae.prior())), kl_np, rtol=1e-4)
    np.testing.assert_allclose(to_np(vae.encode(keras.ops.convert_to_tensor(digits_images.x_test[:8]))), mu,
                               rtol=1e-5, atol=1e-6)
    z = keras.ops.convert_to_tensor(mu.astype("float32"))
    mean = 1 / (1 + np.exp(-to_np(vae.decoder(z, training=False)).astype(np.float64)))
    scale = np.exp(to_np(vae.log_scale).astype(np.float64))
    xn = to_np(x).astype(np.float64)
    ll_np = np.sum(-0.5 * ((xn - mean) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi), axis=(1, 2, 3))
    np.testing.assert_allclose(to_np(vae.likelihood_of(z).log_prob(x)), ll_np, rtol=1e-4)
    # decode is the likelihood mean mapped back from bin centres to the k/16 scale
    np.testing.assert_allclose(to_np(vae.decode(z)), (mean * 17 - 0.5) / 16, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# Save / load
# ---------------------------------------------------------------------------


@tf_only_test
def test_transformers_save_and_load_in_keras_format(trained_glow, digits_images, tmp_path):
    from kzoo.export import save_keras_atomic
    from kzoo.lvat import load_transformer

    x = keras.ops.convert_to_tensor(digits_images.x_test[:32])
    path = save_keras_atomic(trained_glow, str(tmp_path / "glow_digits.keras"))
    loaded = load_transformer(str(tmp_path / "glow_digits"), kind="glow")  # folder-like name works too
    assert isinstance(loaded, kzoo.models.Glow) and loaded is not trained_glow
    np.testing.assert_allclose(to_np(loaded.encode(x)), to_np(trained_glow.encode(x)), atol=1e-6)
    assert float(to_np(loaded.trained_steps)) == float(to_np(trained_glow.trained_steps)) > 0
    with pytest.raises(ValueError, match="not a VAE"):
        load_transformer(path, kind="vae")
    with pytest.raises(FileNotFoundError, match="kzoo pretrain glow"):
        load_transformer(str(tmp_path / "missing"), kind="glow")

    vae = kzoo.models.VAE(input_shape=(8, 8, 1), latent_dim=4, channels=8, num_bins=17, likelihood="bernoulli")
    vpath = save_keras_atomic(vae, str(tmp_path / "vae.keras"))
    vloaded = load_transformer(vpath, kind="vae")
    assert vloaded.likelihood == "bernoulli" and vloaded.latent_dim == 4
    np.testing.assert_allclose(to_np(vloaded.decode(vloaded.encode(x))), to_np(vae.decode(vae.encode(x))), atol=1e-6)


# ---------------------------------------------------------------------------
# The LVAT regularizer
# ---------------------------------------------------------------------------


class LinearTransformer:
    """An exactly invertible linear 'transformer' z = x A^-1, x = z A, for a closed-form Hessian."""

    def __init__(self, a):
        self.a = np.asarray(a, np.float64)
        self.data_shape = (self.a.shape[1],)
        self.latent_dim = self.a.shape[0]
        self._a = keras.ops.convert_to_tensor(self.a.astype("float32"))
        self._a_inv = keras.ops.convert_to_tensor(np.linalg.inv(self.a).astype("float32"))

    def encode(self, x):
        return keras.ops.matmul(x, self._a_inv)

    def decode(self, z):
        return keras.ops.matmul(z, self._a)


def latent_hessian(model, x, a):
    """Hessian of r -> KL(f(x) || f((z + r) A)) at r = 0 with z = x A^-1: A J^T (diag p - p p^T) J A^T."""
    w1, b1, w2, _ = weights64(model)
    x = np.asarray(x, np.float64)
    s = 1.0 - np.tanh(x @ w1 + b1) ** 2
    jac = np.einsum("dh,bh,hc->bcd", w1, s, w2) @ a.T    # (B, C, latent)
    p = np_softmax(tanh_mlp_np(model)(x))
    curv = np.einsum("bc,ce->bce", p, np.eye(p.shape[1])) - np.einsum("bc,be->bce", p, p)
    return np.einsum("bcd,bce,bef->bdf", jac, curv, jac)


def make_ctx(model, x, seed=3):
    from kzoo.core import StepContext

    x = keras.ops.convert_to_tensor(x)
    return StepContext(model, x, None, None, model(x), None, keras.random.SeedGenerator(seed))


@tf_only_test
@pytest.mark.parametrize("classes,iterations", [(2, 1), (3, 3)])
def test_lvat_direction_is_the_top_eigenvector_of_the_latent_hessian(seeded, classes, iterations):
    model = tanh_mlp(8, 16, classes)
    rng = np.random.default_rng(0)
    # a non-orthogonal map, so the latent and the input-space directions differ
    a = np.linalg.qr(rng.normal(size=(8, 8)))[0] * rng.uniform(0.3, 3.0, size=(8, 1))
    x = rng.uniform(0, 1, (6, 8)).astype("float32")
    reg = kzoo.regularizers.LVAT(LinearTransformer(a), epsilon=0.7, power_iterations=iterations)
    ctx = make_ctx(model, x)
    z, r, x_adv = reg.adversarial(ctx, ctx.x_l, ctx.logits_l)
    r = to_np(r).astype(np.float64)
    vals, vecs = np.linalg.eigh(latent_hessian(model, x, a))
    top = vecs[..., -1]
    cos = np.abs(np.sum(r * top, axis=1)) / np.linalg.norm(r, axis=1)
    assert np.all(cos > (0.999 if classes == 2 else 0.98)), cos
    # the input-space top eigenvector (VAT's direction) is a different direction here
    input_top = np.linalg.eigh(latent_hessian(model, x, np.eye(8)))[1][..., -1]
    mapped = r @ a
    cos_input = np.abs(np.sum(mapped * input_top, axis=1)) / np.linalg.norm(mapped, axis=1)
    assert np.median(cos_input) < 0.99
    # ||r|| = ε in latent units, x_adv = Dec(z + r)
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), 0.7, rtol=1e-5)
    np.testing.assert_allclose(to_np(x_adv), (to_np(z) + r) @ a, atol=1e-4)
    # the term is the numpy KL(f(x) || f(x_adv)) averaged
    f = tanh_mlp_np(model)
    expected = np_kl(f(x), f(to_np(x_adv))).mean()
    fresh = make_ctx(model, x)  # the same seed: the same random start, the same x_adv
    assert float(to_np(reg.terms(fresh)["lvat"])) == pytest.approx(expected, rel=1e-3)


@tf_only_test
def test_lvat_training_leaves_the_transformer_untouched(digits_images):
    ds = digits_images
    glow = tiny_glow()
    x_l, y_l, x_u = kzoo.data.labeled_split(ds.x_train, ds.y_train, 30, seed=0)
    clf = kzoo.models.mlp(input_shape=(8, 8, 1), num_classes=10, hidden=(16,))
    model = kzoo.Regularized(clf, kzoo.regularizers.LVAT(transformer=glow, epsilon=1.0), seed=0)
    model.compile(optimizer="adam", jit_compile=False)
    trained_glow = glow
    transformer_vars = {id(v) for v in trained_glow.weights}
    before = [to_np(v).copy() for v in trained_glow.weights]
    clf_before = [to_np(v).copy() for v in clf.trainable_variables]
    history = model.fit(kzoo.data.semi_supervised(x_l, y_l, x_u[:256], batch_labeled=16, batch_unlabeled=32),
                        steps_per_epoch=5, epochs=1, verbose=0).history
    assert np.isfinite(history["lvat"][0]) and history["lvat"][0] > 0
    assert not transformer_vars & {id(v) for v in model.trainable_variables}
    assert not transformer_vars & {id(v) for v in model.weights}
    for v, b in zip(trained_glow.weights, before):
        np.testing.assert_array_equal(to_np(v), b)
    assert any(not np.array_equal(to_np(v), b) for v, b in zip(clf.trainable_variables, clf_before))


@tf_only_test
def test_lvat_bad_input(trained_glow):
    with pytest.raises(ValueError, match="epsilon"):
        kzoo.regularizers.LVAT(trained_glow, epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        kzoo.regularizers.LVAT(trained_glow, epsilon=-1.0)
    with pytest.raises(TypeError, match="encode"):
        kzoo.regularizers.LVAT(object())
    reg = kzoo.regularizers.LVAT(trained_glow)
    flat = kzoo.models.mlp(input_shape=(64,), num_classes=10, hidden=(8,))
    with pytest.raises(ValueError, match=r"\(8, 8, 1\) does not match the classifier's \(64,\)"):
        kzoo.Regularized(flat, reg)
    untrained = tiny_glow(trained=False)
    with pytest.warns(UserWarning, match="not been trained"):
        kzoo.regularizers.LVAT(untrained)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        kzoo.regularizers.LVAT(trained_glow)  # a trained one: no warning


# ---------------------------------------------------------------------------
# Registry, CLI, experiment
# ---------------------------------------------------------------------------


def test_registry_declares_lvat_methods_and_pretrainers():
    from kzoo.methods import METHODS, PRETRAINERS

    for name in ("lvat-vae", "lvat-glow"):
        hp = {h.name for h in METHODS[name].hyperparameters}
        assert {"epsilon", "alpha", "xi", "power_iterations", "transformer"} <= hp
    assert {"vae", "glow"} <= set(PRETRAINERS)
    with pytest.raises(ValueError, match="epsilon"):
        METHODS["lvat-glow"].resolve({"epsilon": 0})


def test_run_rejects_bad_lvat_configurations_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="epsilon"):
        kzoo.experiment.run(method="lvat-glow", epsilon=-1.0, transformer="x")
    if TF:
        with pytest.raises(ConfigError, match="needs --transformer"):
            kzoo.experiment.run(method="lvat-vae")
        with pytest.raises(ConfigError, match="no saved transformer"):
            kzoo.experiment.run(method="lvat-glow", transformer=str(tmp_path / "nope"))
    else:
        with pytest.raises(ConfigError, match="TensorFlow Probability.*KERAS_BACKEND=tensorflow"):
            kzoo.experiment.run(method="lvat-glow", transformer=str(tmp_path / "nope"))


@pytest.mark.skipif(TF, reason="the JAX and torch backends' error")
def test_on_jax_a_clear_error_names_what_is_missing(tmp_path):
    from kzoo.backend import UnsupportedBackendError

    why = "has no PyTorch substrate" if BACKEND == "torch" else "TensorFlow Probability on the TensorFlow backend"
    for build in (lambda: kzoo.models.Glow(), lambda: kzoo.models.VAE(),
                  lambda: kzoo.regularizers.LVAT("saved_models/glow_digits.keras")):
        with pytest.raises(UnsupportedBackendError, match=why) as e:
            build()
        assert "\n" not in str(e.value) and "KERAS_BACKEND=tensorflow" in str(e.value)
    with pytest.raises(ConfigError, match="KERAS_BACKEND=tensorflow"):
        kzoo.experiment.pretrain("glow", steps=1, export=str(tmp_path / "g.keras"), verbose=0)


@tf_only_test
def test_pretrain_then_train_lvat_glow_end_to_end(tmp_path):
    from kzoo import cli

    export = str(tmp_path / "glow_digits")  # folder-like: saved as glow_digits.keras
    res = kzoo.experiment.pretrain("glow", steps=3, batch_size=64, export=export, verbose=0,
                                   hyperparameters={"levels": 1, "depth": 1, "hidden_channels": 4})
    assert res["export"] == export + ".keras" and os.path.isfile(export + ".keras")
    assert res["test_max_reconstruction_error"] <= 1e-4 and res["num_bins"] == 17
    assert 0 < res["test_bits_per_dim"] < 10
    out = kzoo.experiment.run(method="lvat-glow", transformer=export, labels=30, steps=2, verbose=0,
                              batch_labeled=16, batch_unlabeled=16, jit_compile=False)
    assert 0 <= out["test_error"] <= 1 and out["hyperparameters"]["transformer"] == export
    with_entmin = kzoo.experiment.build_regularizer("lvat-glow", transformer=export, entmin=1.0)
    assert with_entmin.loss_names == ("lvat", "entmin") and with_entmin.weights["entmin"] == 1.0
    # a VAE file given to lvat-glow, and a mismatched kind on the command line: clear errors, exit 2
    assert cli.main(["train", "lvat-vae", "--transformer", export, "--steps", "1", "--quiet"]) == 2


# ---------------------------------------------------------------------------
# Sequences (MNIST-1D, issue 24): the VAE takes them, Glow refuses them in one line
# ---------------------------------------------------------------------------


@tf_only_test
def test_vae_on_sequences_is_a_real_valued_normal_without_dequantization():
    x = np.random.default_rng(0).normal(size=(64, 40, 1)).astype("float32")
    vae = kzoo.models.VAE(input_shape=(40, 1), latent_dim=4, channels=8, num_bins=256, seed=0)
    assert vae.stages == 3 and vae.encoder.get_layer("flatten").input.shape[1] == 5  # 40 -> 20 -> 10 -> 5 steps
    z = keras.ops.convert_to_tensor(to_np(vae.encode(keras.ops.convert_to_tensor(x[:8]))))
    mean = to_np(vae.decoder(z, training=False)).astype(np.float64)  # linear: the likelihood mean itself
    scale = np.exp(to_np(vae.log_scale).astype(np.float64))
    xn = x[:8].astype(np.float64)
    ll_np = np.sum(-0.5 * ((xn - mean) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi), axis=(1, 2))
    np.testing.assert_allclose(to_np(vae.likelihood_of(z).log_prob(keras.ops.convert_to_tensor(x[:8]))), ll_np,
                               rtol=1e-4)
    np.testing.assert_allclose(to_np(vae.decode(z)), mean, rtol=1e-5, atol=1e-6)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    logs = vae.fit(x, batch_size=64, epochs=1, verbose=0).history
    assert logs["bits_per_dim"][0] == pytest.approx(logs["loss"][0] / (40 * np.log(2)), rel=1e-4)
    with pytest.raises(ValueError, match="real-valued"):
        kzoo.models.VAE(input_shape=(40, 1), likelihood="bernoulli")


def test_glow_refuses_sequences_saying_why_and_what_instead():
    from kzoo.networks.flows import _check_image_shape

    with pytest.raises(ValueError, match="Glow's squeeze.*lvat-vae") as e:
        _check_image_shape((40, 1), "kzoo pretrain glow")
    assert "\n" not in str(e.value)
    assert _check_image_shape((40, 1), "VAE", sequences=True) == (40, 1)
