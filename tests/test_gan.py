"""kzoo.gan.GAN: the adversarial core (gradients checked by hand, a 2-D Gaussian learned)."""

import keras
import numpy as np
import pytest
from keras import ops

from kzoo import ops as kops
from kzoo.gan import GAN


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def test_gan_losses_match_the_closed_form():
    real = np.array([[2.0], [-1.0], [0.0]], "float32")
    fake = np.array([[0.5], [3.0], [-2.0]], "float32")
    d = kops.gan_discriminator_loss(ops.convert_to_tensor(real), ops.convert_to_tensor(fake))
    g = kops.gan_generator_loss(ops.convert_to_tensor(fake))
    expect_d = -np.log(_sigmoid(real[:, 0])) - np.log(1 - _sigmoid(fake[:, 0]))
    expect_g = -np.log(_sigmoid(fake[:, 0]))
    np.testing.assert_allclose(ops.convert_to_numpy(d), expect_d, rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(g), expect_g, rtol=1e-5)
    big = kops.gan_generator_loss(ops.convert_to_tensor(np.array([[-200.0]], "float32")))
    assert np.isfinite(ops.convert_to_numpy(big)).all()  # stable for saturated logits


class ConstantOutput(keras.layers.Layer):
    """G(z) = c for every z (a generator whose gradient is easy to write by hand)."""

    def build(self, input_shape):
        self.c = self.add_weight(shape=(2,), initializer=keras.initializers.Constant([0.5, -1.0]), name="c")

    def call(self, z):
        return ops.zeros_like(z[:, :2]) + self.c


def _linear_pair():
    z = keras.Input((3,))
    gen = keras.Model(z, ConstantOutput()(z), name="gen")
    x = keras.Input((2,))
    disc = keras.Model(x, keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant([[0.3], [-0.2]]),
                                             bias_initializer=keras.initializers.Constant(0.1))(x), name="disc")
    return gen, disc


def test_one_step_gives_each_network_the_gradient_of_its_own_loss():
    gen, disc = _linear_pair()
    gan = GAN(gen, disc, seed=0)
    gan.compile(discriminator_optimizer=keras.optimizers.SGD(0.1), generator_optimizer=keras.optimizers.SGD(0.2))
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0], [2.0, 2.0]], "float32")
    w, b, c = np.array([0.3, -0.2]), 0.1, np.array([0.5, -1.0])
    # by hand: L_D = mean(-log σ(w·x+b)) + (-log(1-σ(w·c+b))); L_G = -log σ(w·c+b)
    s_real, s_fake = _sigmoid(x @ w + b), _sigmoid(c @ w + b)
    gw = (-(1 - s_real)[:, None] * x).mean(0) + s_fake * c
    gb = (-(1 - s_real)).mean() + s_fake
    gc = -(1 - s_fake) * w
    logs = gan.fit(x, epochs=1, batch_size=4, verbose=0, shuffle=False).history
    np.testing.assert_allclose(disc.get_weights()[0][:, 0], w - 0.1 * gw, rtol=1e-5)
    np.testing.assert_allclose(disc.get_weights()[1][0], b - 0.1 * gb, rtol=1e-5)
    np.testing.assert_allclose(gen.get_weights()[0], c - 0.2 * gc, rtol=1e-5)
    assert logs["g_loss"][0] == pytest.approx(-np.log(s_fake), rel=1e-5)


def test_gan_learns_a_shifted_gaussian():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(4096, 2)) * 0.5 + np.array([3.0, -2.0])).astype("float32")
    z = keras.Input((2,))
    gen = keras.Model(z, keras.layers.Dense(2)(keras.layers.Dense(16, activation="relu")(z)))
    x = keras.Input((2,))
    disc = keras.Model(x, keras.layers.Dense(1)(keras.layers.Dense(32, activation="relu")(x)))
    gan = GAN(gen, disc, seed=0)
    lr = keras.optimizers.schedules.PolynomialDecay(2e-3, 960, 1e-4)  # decay damps the GAN's oscillation
    gan.compile(discriminator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5),
                generator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5))
    before = gan.sample(1000).mean(0)
    gan.fit(data, epochs=30, batch_size=128, verbose=0)
    after = gan.sample(2000).mean(0)
    assert np.linalg.norm(before - [3.0, -2.0]) > 2.0
    assert np.linalg.norm(after - [3.0, -2.0]) < 0.4, after


def test_mismatched_networks_are_rejected():
    gen, _ = _linear_pair()
    x = keras.Input((5,))
    disc = keras.Model(x, keras.layers.Dense(1)(x))
    with pytest.raises(ValueError, match=r"output shape \(2,\) does not match"):
        GAN(gen, disc)
    with pytest.raises(TypeError, match="generator must be a keras.Model"):
        GAN(lambda z: z, disc)


# ============================================================================
# Semi-supervised GAN, manifold/ambient regularization, metrics (paper 000)
# ============================================================================

import os  # noqa: E402

import kzoo  # noqa: E402
from kzoo import gan as kgan  # noqa: E402
from kzoo.core import StepContext  # noqa: E402


def _np_lse(a):
    a = np.asarray(a, np.float64)
    m = a.max(-1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(-1, keepdims=True)))[:, 0]


def test_kplus1_unlabeled_loss_is_the_k_plus_1_discriminator_with_the_fake_logit_at_zero():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(5, 4)) * 3, rng.normal(size=(7, 4)) * 3
    # explicit K+1 softmax with a zero logit for "fake"
    p_fake_real = np.exp(-np.logaddexp(0.0, _np_lse(real)))       # p(fake | x_real)
    p_fake_gen = np.exp(-np.logaddexp(0.0, _np_lse(fake)))        # p(fake | G(z))
    expect = 0.5 * (np.mean(-np.log(1 - p_fake_real)) + np.mean(-np.log(p_fake_gen)))
    got = kops.kplus1_unlabeled_loss(ops.convert_to_tensor(real.astype("float32")),
                                     ops.convert_to_tensor(fake.astype("float32")))
    assert float(got) == pytest.approx(expect, rel=1e-5)


def test_feature_matching_loss_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 3, 2)), rng.normal(size=(4, 3, 2))
    expect = np.mean((a.reshape(6, -1).mean(0) - b.reshape(4, -1).mean(0)) ** 2)
    got = kops.feature_matching_loss(ops.convert_to_tensor(a.astype("float32")), ops.convert_to_tensor(b.astype("float32")))
    assert float(got) == pytest.approx(expect, rel=1e-5)


# -- weight normalization ---------------------------------------------------------


def test_weight_norm_dense_is_g_v_over_norm_v_and_invariant_to_the_scale_of_v():
    layer = kgan.WeightNormDense(3, name="wn")
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    layer(x)
    assert {w.name for w in layer.trainable_weights} == {"v", "g", "bias"}
    assert all(isinstance(w, keras.Variable) for w in layer.weights)
    v = np.random.default_rng(1).normal(size=(5, 3))
    g = np.array([0.5, 2.0, -1.0])
    layer.v.assign(v.astype("float32"))
    layer.g.assign(g.astype("float32"))
    layer.bias.assign(np.array([0.1, 0.2, 0.3], "float32"))
    expect = x @ (g * v / np.linalg.norm(v, axis=0)) + [0.1, 0.2, 0.3]
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), expect, rtol=1e-4, atol=1e-5)
    layer.v.assign((7.0 * v).astype("float32"))
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), expect, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("transpose", [False, True])
def test_weight_norm_convolutions_equal_keras_convolutions_with_the_effective_kernel(transpose):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    cls, ref_cls = ((kgan.WeightNormConv2DTranspose, keras.layers.Conv2DTranspose) if transpose
                    else (kgan.WeightNormConv2D, keras.layers.Conv2D))
    wn = cls(5, 3, strides=2, padding="same")
    wn(x)
    wn.g.assign(rng.uniform(0.5, 2, 5).astype("float32"))
    ref = ref_cls(5, 3, strides=2, padding="same")
    ref(x)
    kernel = ops.convert_to_numpy(wn.kernel)
    axes = (0, 1, 3) if transpose else (0, 1, 2)
    np.testing.assert_allclose(np.sqrt((kernel ** 2).sum(axis=axes)), ops.convert_to_numpy(wn.g.value), rtol=1e-5)
    ref.set_weights([kernel, np.zeros(5, "float32")])
    np.testing.assert_allclose(ops.convert_to_numpy(wn(x)), ops.convert_to_numpy(ref(x)), rtol=1e-4, atol=1e-5)


def test_weight_normalized_models_save_and_reload(tmp_path):
    _, disc = kgan.ssgan_pair((8, 8, 1), 10, arch="mlp", width=0.1)
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype("float32")
    path = str(tmp_path / "d.keras")
    disc.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(ops.convert_to_numpy(again(x)), ops.convert_to_numpy(disc(x)), rtol=1e-5)


# -- architectures ------------------------------------------------------------------


@pytest.mark.one_backend  # model structure, the same on every backend: TensorFlow pass only
def test_architectures_scale_to_the_input_size():
    for shape in ((8, 8, 1), (32, 32, 3)):  # two stride-2 layers for 8×8, three (the paper's) for 32×32
        gen = kgan.conv_generator(shape, latent_dim=16, width=0.02)
        assert gen.output_shape[1:] == shape
        assert sum(isinstance(layer, (keras.layers.Conv2DTranspose, kgan.WeightNormConv2DTranspose))
                   for layer in gen.layers) == (2 if shape[0] == 8 else 3)
    disc = kgan.ssgan_discriminator((8, 8, 1), 10, width=0.1)
    assert disc.output_shape[1:] == (10,)
    assert disc.get_layer("features").output.shape[1:] == (13,)
    g, d = kgan.dcgan_pair((8, 8, 1), arch="conv", width=0.02, latent_dim=8)
    assert g.output_shape[1:] == (8, 8, 1) and d.output_shape[1:] == (1,)
    g, d = kgan.ssgan_pair((2,), 2, value_range=(-2.0, 2.0))
    assert g.output_shape[1:] == (2,) and d.output_shape[1:] == (2,) and kgan.latent_dim_of(g) == 2
    assert kgan.resolve_arch("auto", (8, 8, 1)) == "mlp" and kgan.resolve_arch("auto", (32, 32, 3)) == "conv"
    assert kgan.output_activation((0.0, 1.0)) == "sigmoid" and kgan.output_activation((-3.0, 3.0)) is None


@pytest.mark.one_backend  # model structure, the same on every backend: TensorFlow pass only
def test_ssgan_discriminator_columns_of_table_a4():
    # Conv-Small (SVHN column: 64/128 channels) and Conv-Large (CIFAR-10 column: 96/192), at width 1/8
    for name, (c1, c2) in (("conv_small", (8, 16)), ("conv_large", (12, 24))):
        _, d = kgan.ssgan_pair((8, 8, 1), 10, arch="conv", width=0.125, discriminator=name)
        assert [d.get_layer(n).output.shape[-1] for n in ("conv1_1", "conv2_1", "conv3_1", "nin3_3")] == \
            [c1, c2, c2, c2]
    with pytest.raises(ValueError, match="conv_small, conv_large"):
        kgan.ssgan_pair((8, 8, 1), 10, discriminator="conv_huge")


# -- the manifold and ambient regularizers ------------------------------------------------


def _linear(in_dim, out_dim, kernel, name):
    inp = keras.Input((in_dim,))
    layer = keras.layers.Dense(out_dim, use_bias=False, name=name)
    model = keras.Model(inp, layer(inp), name=name)
    layer.set_weights([np.asarray(kernel, "float32")])
    return model


def _orthogonal(n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q


def test_manifold_penalty_closed_form_for_linear_networks():
    """g(z) = A z, f(x) = W x with A, W orthogonal: normalized Ω = ε² exactly; unnormalized Ω = ε²η²||δ||²."""
    d = 4
    gen = _linear(d, d, _orthogonal(d, 0), "gen")
    clf = _linear(d, d, _orthogonal(d, 1), "clf")
    seed = keras.random.SeedGenerator(3)
    z = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(4000, d)).astype("float32"))
    gen_fn = lambda t: gen(t)  # noqa: E731
    omega = kgan.manifold_penalty(clf, gen_fn, z, epsilon=0.7, eta=3.0, seed_generator=seed)
    np.testing.assert_allclose(ops.convert_to_numpy(omega), 0.7 ** 2, rtol=1e-4)
    omega_un = kgan.manifold_penalty(clf, gen_fn, z, epsilon=0.7, eta=0.5, seed_generator=seed, normalized=False)
    assert float(ops.mean(omega_un)) == pytest.approx(0.7 ** 2 * 0.5 ** 2 * d, rel=0.05)  # E||δ||² = d
    x, r = kgan.manifold_tangent(gen_fn, z[:5], 1.0, seed)
    np.testing.assert_allclose(np.linalg.norm(ops.convert_to_numpy(r), axis=1), 1.0, rtol=1e-5)
    amb = kgan.ambient_penalty(clf, z[:50], 0.3, seed)
    np.testing.assert_allclose(ops.convert_to_numpy(amb), 0.09, rtol=1e-4)


def test_smoothness_penalty_matches_numpy_for_a_nonlinear_classifier():
    from conftest import tanh_mlp, tanh_mlp_np

    keras.utils.set_random_seed(0)
    clf = tanh_mlp(input_dim=3, hidden=8, num_classes=4)
    rng = np.random.default_rng(0)
    x, r = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    got = kgan.smoothness_penalty(clf, ops.convert_to_tensor(x.astype("float32")),
                                  ops.convert_to_tensor(r.astype("float32")))
    f = tanh_mlp_np(clf)
    np.testing.assert_allclose(ops.convert_to_numpy(got), ((f(x) - f(x + r)) ** 2).sum(1), rtol=1e-4)


def _bn_generator(latent=3, out=6):
    z = keras.Input((latent,))
    h = keras.layers.Dense(8)(z)
    h = keras.layers.BatchNormalization()(h)
    return keras.Model(z, keras.layers.Dense(out)(keras.layers.ReLU()(h)), name="gen")


def test_decoupled_manifold_regularizer_trains_the_classifier_and_never_the_generator(seeded):
    from conftest import bn_model

    gen = _bn_generator()
    before = [np.array(w) for w in gen.get_weights()]
    clf = bn_model(input_dim=6, num_classes=3)
    clf_before = [np.array(w) for w in clf.get_weights()]
    reg = kzoo.regularizers.ManifoldGAN(generator=gen, epsilon=1.0, eta=1.0, gamma=1.0)
    model = kzoo.Regularized(clf, reg, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    rng = np.random.default_rng(0)
    x_l, y_l, x_u = rng.normal(size=(8, 6)), rng.integers(0, 3, 8), rng.normal(size=(32, 6))
    hist = model.fit(kzoo.data.semi_supervised(x_l, y_l, x_u, batch_labeled=4, batch_unlabeled=16, as_tf=False),
                     steps_per_epoch=3, epochs=1, verbose=0).history
    assert np.isfinite(hist["manifold"][0]) and hist["manifold"][0] > 0
    for a, b in zip(before, gen.get_weights()):
        np.testing.assert_array_equal(a, b)  # weights and batch-norm statistics
    assert not gen.trainable
    assert any(not np.allclose(a, b) for a, b in zip(clf_before, clf.get_weights()))


def test_bad_regularizer_hyperparameters_are_rejected():
    gen = _bn_generator()
    with pytest.raises(ValueError, match="gamma"):
        kgan.ManifoldGAN(gen, gamma=-1.0)
    with pytest.raises(ValueError, match="epsilon"):
        kgan.ManifoldGAN(gen, epsilon=0.0)
    with pytest.raises(ValueError, match="eta"):
        kgan.ManifoldGAN(gen, eta=-0.1)
    with pytest.raises(ValueError, match="epsilon"):
        kgan.AmbientSmoothness(epsilon=-1.0)
    g, c = kgan.ssgan_pair((6,), 3, width=0.05)
    with pytest.raises(ValueError, match="manifold_gamma"):
        kgan.SemiSupervisedGAN(g, c, manifold_gamma=-1e-3)
    with pytest.raises(ValueError, match="eta"):
        kgan.SemiSupervisedGAN(g, c, eta=0.0)
    with pytest.raises(ValueError, match="generator file .* does not exist"):
        kgan.ManifoldGAN("/nonexistent/gen.keras")
    from kzoo.experiment import ConfigError, run

    for bad in ({"manifold_gamma": -1.0}, {"epsilon": 0.0}, {"eta": 0.0}, {"ambient_gamma": -0.5}):
        with pytest.raises(ConfigError):
            run(method="gan-ssl", steps=1, verbose=0, **bad)
    with pytest.raises(ConfigError, match="needs --generator"):
        run(method="manifold", steps=1, verbose=0)


def test_a_generator_whose_output_does_not_fit_the_classifier_is_a_clear_error(tmp_path):
    from conftest import bn_model

    gen = _bn_generator(out=5)
    model = kzoo.Regularized(bn_model(input_dim=6), kgan.ManifoldGAN(gen, gamma=1.0), seed=0)
    model.compile(optimizer="adam")
    x = np.zeros((8, 6), "float32")
    with pytest.raises(ValueError, match=r"outputs examples of shape \(5,\) but the classifier takes \(6,\)"):
        model.fit(kzoo.data.semi_supervised(x, np.zeros(8, int), x, batch_labeled=4, batch_unlabeled=4,
                                            as_tf=False), steps_per_epoch=1, verbose=0)
    path = str(tmp_path / "gen.keras")
    gen.save(path)
    from kzoo.experiment import ConfigError, run

    with pytest.raises(ConfigError, match=r"outputs examples of shape \(5,\) but the classifier takes \(8, 8, 1\)"):
        run(method="manifold", generator=path, steps=1, verbose=0)


# -- the semi-supervised GAN --------------------------------------------------------------


def _tiny_ssgan(**kwargs):
    """Generator G(z) = c (constant), classifier: features = x W1 (linear), logits = features W2."""
    z = keras.Input((3,))
    gen = keras.Model(z, ConstantOutput()(z), name="gen")
    x = keras.Input((2,))
    feats = keras.layers.Dense(3, use_bias=False, name="features",
                               kernel_initializer=keras.initializers.Constant([[0.2, -0.1, 0.4], [0.3, 0.5, -0.2]]))(x)
    logits = keras.layers.Dense(2, name="logits")(feats)
    clf = keras.Model(x, logits, name="clf")
    return gen, clf, kgan.SemiSupervisedGAN(gen, clf, seed=0, **kwargs)


def _one_batch(x_l, y_l, x_u):
    while True:
        yield {"labeled": x_l, "unlabeled": x_u}, y_l


def test_ssgan_step_discriminator_and_feature_matching_gradients_by_hand():
    gen, clf, model = _tiny_ssgan(unlabeled_weight=0.0)
    model.compile(discriminator_optimizer=keras.optimizers.SGD(0.1), generator_optimizer=keras.optimizers.SGD(0.5),
                  jit_compile=False)
    rng = np.random.default_rng(0)
    x_l = rng.normal(size=(4, 2)).astype("float32")
    y_l = np.array([0, 1, 1, 0], "int32")
    x_u = rng.normal(size=(6, 2)).astype("float32")
    # reference classifier: the same network trained by plain Keras on the labeled cross-entropy
    ref = keras.models.clone_model(clf)
    ref.set_weights(clf.get_weights())
    ref.compile(optimizer=keras.optimizers.SGD(0.1),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref.train_on_batch(x_l, y_l)
    w1 = np.array([[0.2, -0.1, 0.4], [0.3, 0.5, -0.2]])
    c = np.array([0.5, -1.0])
    a = (x_u @ w1).mean(0)  # E f(x_u); f(G(z)) = c W1 for every z
    grad_c = -(2.0 / 3.0) * w1 @ (a - c @ w1)  # d/dc mean_j (a_j - (c W1)_j)²
    logs = model.fit(_one_batch(x_l, y_l, x_u), steps_per_epoch=1, epochs=1, verbose=0).history
    for got, expect in zip(clf.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gen.get_weights()[0], c - 0.5 * grad_c, rtol=1e-5)
    assert logs["g_loss"][0] == pytest.approx(np.mean((a - c @ w1) ** 2), rel=1e-5)


def test_classifier_weights_are_an_exponential_moving_average():
    gen, clf, model = _tiny_ssgan(ema_decay=0.999)
    model.compile(discriminator_optimizer=keras.optimizers.SGD(0.1), generator_optimizer=keras.optimizers.SGD(0.1),
                      jit_compile=False)
    rng = np.random.default_rng(0)
    batches = _one_batch(rng.normal(size=(4, 2)).astype("float32"), np.array([0, 1, 1, 0], "int32"),
                         rng.normal(size=(6, 2)).astype("float32"))
    w0 = [np.array(w, np.float64) for w in clf.get_weights()]
    model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0)
    w1 = [np.array(w, np.float64) for w in clf.get_weights()]
    for ema, w in zip(model.ema_variables, w0):  # decay min(0.999, 1/10): the EMA starts at w0
        np.testing.assert_allclose(ops.convert_to_numpy(ema.value), w, rtol=1e-6)
    model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0)
    decay = 2.0 / 11.0  # min(0.999, (1 + 1) / (10 + 1))
    exported = model.ema_classifier()
    for ema, got, a, b in zip(model.ema_variables, exported.get_weights(), w0, w1):
        np.testing.assert_allclose(ops.convert_to_numpy(ema.value), decay * a + (1 - decay) * b, rtol=1e-5)
        np.testing.assert_allclose(got, decay * a + (1 - decay) * b, rtol=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(exported.get_weights(), clf.get_weights()))


def test_gan_ssl_method_trains_with_both_regularizers_and_returns_the_ema_classifier(tmp_path):
    from kzoo.experiment import run

    result = run(method="gan-ssl", dataset="moons", labels=2, steps=4, batch_labeled=2, batch_unlabeled=16,
                 manifold_gamma=0.1, ambient_gamma=0.1, epsilon=0.1, gan_width=0.1, verbose=0,
                 metrics_json=str(tmp_path / "m.json"))
    assert result["hyperparameters"]["classifier"] == "EMA of the discriminator"
    assert 0.0 <= result["test_error"] <= 1.0 and result["train_steps"] == 4


# -- NaN guard ------------------------------------------------------------------------------


# -- metrics -----------------------------------------------------------------------------------


def test_mlcn_of_a_linear_generator_is_the_closed_form():
    u, v = _orthogonal(6, 0)[:, :3], _orthogonal(3, 1)
    s = np.array([4.0, 2.0, 0.5])
    a = u @ np.diag(s) @ v.T  # x = A z: singular values s
    gen = _linear(3, 6, a.T, "lin")  # keras kernel is (in, out)
    expect = np.log((4.0 / 0.5) ** 2)  # λ_max / λ_min of JᵀJ = (s_max / s_min)²
    assert kgan.mean_log_condition_number(gen, n=5) == pytest.approx(expect, rel=1e-4)
    with pytest.raises(ValueError, match="latent size 6 exceeds the output size 3"):
        kgan.mean_log_condition_number(_linear(6, 3, np.ones((6, 3)), "wide"))


def test_generator_jacobian_matches_central_differences():
    from conftest import tanh_mlp, tanh_mlp_np

    keras.utils.set_random_seed(1)
    gen = tanh_mlp(input_dim=2, hidden=5, num_classes=4)
    f = tanh_mlp_np(gen)
    z = np.random.default_rng(0).normal(size=(3, 2))
    jac = kgan.generator_jacobian(gen, z)
    h = 1e-6
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        np.testing.assert_allclose(jac[:, :, i], (f(z + e) - f(z - e)) / (2 * h), rtol=1e-3, atol=1e-5)


def test_digits_sample_score_ranks_real_digits_above_noise():
    ds = kzoo.data.load("digits")
    real = kgan.digits_sample_score(ds.x_test)
    noise = kgan.digits_sample_score(np.random.default_rng(0).uniform(size=(497, 8, 8, 1)))
    assert real["digits_score"] > 7.0 and real["classes_covered"] == 10
    assert noise["digits_score"] < 3.0


# -- pretraining and the decoupled method ------------------------------------------------------------


def test_pretrain_dcgan_then_train_manifold_with_its_generator(tmp_path):
    import json

    from kzoo.cli import main
    from kzoo.experiment import run

    path = str(tmp_path / "dcgan_moons.keras")
    assert main(["pretrain", "dcgan", "--dataset", "moons", "--steps", "3", "--batch-size", "16", "--gan-width",
                 "0.1", "--export", path, "--quiet", "--metrics-json", str(tmp_path / "pre.json")]) == 0
    with open(tmp_path / "pre.json") as f:
        out = json.load(f)
    assert os.path.isfile(path) and np.isfinite(out["mlcn"]) and out["latent_dim"] == 2
    gen = kgan.load_generator(path)
    assert gen.output_shape[1:] == (2,)
    result = run(method="manifold", dataset="moons", labels=2, steps=3, batch_labeled=2, batch_unlabeled=16,
                 generator=path, gamma=1.0, epsilon=0.1, verbose=0)
    assert "ManifoldGAN" in result["hyperparameters"]["regularizer"]


def test_regularizer_passes_of_the_coupled_gan_leave_batch_norm_statistics_alone():
    """One step with and without the manifold/ambient terms: the same batch-norm moving statistics."""
    rng = np.random.default_rng(0)
    x_l, y_l = rng.normal(size=(4, 6)).astype("float32"), np.array([0, 1, 2, 0], "int32")
    x_u = rng.normal(size=(8, 6)).astype("float32")
    stats = []
    for gamma in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        gen, clf = kgan.ssgan_pair((6,), 3, width=0.05)
        model = kgan.SemiSupervisedGAN(gen, clf, manifold_gamma=gamma, ambient_gamma=gamma, epsilon=1.0, seed=0)
        model.compile(discriminator_optimizer=keras.optimizers.SGD(0.1), generator_optimizer=keras.optimizers.SGD(0.1))
        logs = model.fit(_one_batch(x_l, y_l, x_u), steps_per_epoch=1, epochs=1, verbose=0).history
        assert ("manifold" in logs) == (gamma > 0) and ("ambient" in logs) == (gamma > 0)
        stats.append([np.array(v) for v in gen.non_trainable_variables])
    assert stats[0] and all(np.array_equal(a, b) for a, b in zip(*stats))
