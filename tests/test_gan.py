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
