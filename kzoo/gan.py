"""GANs as Keras models trained with ``fit``: the adversarial core kzoo's GAN-based methods build on.

:class:`GAN` is the plain unconditional GAN (Goodfellow et al.) with the
non-saturating generator loss, for any generator ``z -> x`` and discriminator
``x -> one logit``. Both networks train in one step: the discriminator on
``-log σ(D(x)) - log(1 - σ(D(G(z))))`` and the generator on ``-log σ(D(G(z)))``,
through the discriminator seen frozen (:func:`kzoo.core.call_without_updates`),
so that a single backward pass over the sum of the two losses gives each network
the gradient of its own loss, and :class:`kzoo.MultiOptimizer` gives each its
own optimizer. The step itself is the backend's (``kzoo/backend``), shared with
every other kzoo model.

    gan = kzoo.gan.GAN(generator, discriminator)
    gan.compile(discriminator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                generator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    gan.fit(x_stream, steps_per_epoch=1000)      # batches of x, or (x, y) with y ignored
    samples = gan.sample(64)

On top of it (paper 000, Lecouat et al., "Manifold regularization with GANs for
semi-supervised learning"):

* :class:`SemiSupervisedGAN` -- Salimans et al.'s feature-matching GAN whose
  K+1-way discriminator is the classifier, with the paper's manifold and
  ambient regularizers (coupled);
* :class:`ManifoldGAN` / :class:`AmbientSmoothness` -- the same regularizers on
  any classifier, with a frozen pretrained generator (decoupled);
* the architectures of Tables A3/A4/A6 scaled to the input size, weight
  normalization layers, metrics (generator mean log condition number, a digits
  sample score), a NaN guard callback, and the ``gan-ssl`` / ``manifold`` /
  ``dcgan`` entries of :mod:`kzoo.methods`.
"""

import functools
import math
import os

import keras
import numpy as np
from keras import ops

from kzoo import backend as kb
from kzoo import ops as kops
from kzoo.callbacks import NaNGuard, NonFiniteLossError  # noqa: F401  (kzoo.gan.NaNGuard, as before)
from kzoo.core import (LABELED, UNLABELED, MultiOptimizer, Regularizer, StepContext, StepOutput,
                       call_without_updates, is_semi_supervised_batch)

LATENTS = ("normal", "uniform")


def latent_dim_of(generator):
    shape = generator.input_shape
    if isinstance(shape, list) or len(shape) != 2:
        raise ValueError(f"the generator must take one flat latent vector (batch, dim); its input shape is {shape}")
    return int(shape[1])


def real_inputs(data):
    """The real examples of a batch: ``x``, ``(x, ...)`` or a semi-supervised batch's unlabeled part."""
    x = data[0] if isinstance(data, (tuple, list)) else data
    if is_semi_supervised_batch(x):
        x = x[UNLABELED]
    return x


def sample_latent(n, dim, seed_generator, latent="normal"):
    """``n`` latent vectors: N(0, I) (``"normal"``) or U(-1, 1)^dim (``"uniform"``, Table A3)."""
    if latent == "uniform":
        return keras.random.uniform((n, dim), minval=-1.0, maxval=1.0, seed=seed_generator)
    return keras.random.normal((n, dim), seed=seed_generator)


class GAN(keras.Model):
    """Unconditional GAN: ``generator`` maps N(0, I) latents to inputs, ``discriminator`` maps inputs to a logit."""

    def __init__(self, generator, discriminator, seed=None, latent="normal", **kwargs):
        super().__init__(**kwargs)
        if latent not in LATENTS:
            raise ValueError(f"latent must be one of {', '.join(LATENTS)}, got {latent!r}")
        self.latent = latent
        for name, net in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(net, keras.Model):
                raise TypeError(f"{name} must be a keras.Model, got {type(net).__name__}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim_of(generator)
        out = tuple(generator.output_shape[1:])
        expected = tuple(discriminator.input_shape[1:])
        if out != expected:
            raise ValueError(f"the generator's output shape {out} does not match the discriminator's input "
                             f"shape {expected}")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss", "d_real", "d_fake")}
        self.built = generator.built and discriminator.built

    def compile(self, discriminator_optimizer="adam", generator_optimizer="adam", **kwargs):
        optimizer = MultiOptimizer({
            "discriminator": (discriminator_optimizer, self.discriminator),
            "generator": (generator_optimizer, self.generator),
        })
        super().compile(optimizer=optimizer, **kwargs)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, z, training=None):
        return self.generator(z, training=training)

    def sample_latent(self, n):
        return sample_latent(n, self.latent_dim, self.seed_generator, self.latent)

    def sample(self, n, batch_size=1024):
        """``n`` generated examples (inference mode) as a numpy array."""
        import numpy as np

        out = []
        for start in range(0, n, batch_size):
            z = self.sample_latent(min(batch_size, n - start))
            out.append(ops.convert_to_numpy(self.generator(z, training=False)))
        return np.concatenate(out)

    def train_step(self, *args):
        return kb.train_step_function()(self, *args)

    def adversarial_losses(self, x):
        """``(discriminator loss, generator loss, D(x) logits, D(G(z)) logits)``, each loss a batch mean."""
        z = self.sample_latent(ops.shape(x)[0])
        x_fake = self.generator(z, training=True)
        real = self.discriminator(x, training=True)
        fake = self.discriminator(ops.stop_gradient(x_fake), training=True)
        fake_for_g = call_without_updates(self.discriminator, x_fake, frozen=True)
        d_loss = ops.mean(kops.gan_discriminator_loss(real, fake))
        g_loss = ops.mean(kops.gan_generator_loss(fake_for_g))
        return d_loss, g_loss, real, fake

    def _kzoo_compute(self, data):
        x = real_inputs(data)
        d_loss, g_loss, real, fake = self.adversarial_losses(x)
        terms = {"d_loss": d_loss, "g_loss": g_loss,
                 "d_real": ops.mean(ops.sigmoid(real)), "d_fake": ops.mean(ops.sigmoid(fake))}
        # a loss of its own (no compile loss): scaled per replica under tf.distribute, like the core's
        return StepOutput(kb.scale_loss_for_distribution(d_loss + g_loss), x, None, None, None, terms)

    def _kzoo_update_metrics(self, out):
        for name, value in out.terms.items():
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}


# --------------------------------------------------------------------------
# Weight normalization (Salimans & Kingma, 2016): w = g · v / ||v||
# --------------------------------------------------------------------------


class _WeightNorm(keras.layers.Layer):
    """Shared part of the weight-normalized layers: ``v`` and ``g`` are Keras variables.

    The effective kernel is ``g · v / ||v||`` with the norm taken per output
    unit (over every kernel axis but the output one); ``g`` starts at 1, so each
    output unit starts with a unit-norm weight vector. Initialization is the
    paper's isotropic N(0, 0.05²) for ``v`` (Table A5), not Salimans' data-dependent one.
    """

    _norm_axes = None  # kernel axes reduced to get one norm per output unit

    def __init__(self, activation=None, use_bias=True, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(0.0, 0.05))

    def _make_weights(self, v_shape, units):
        self.v = self.add_weight(name="v", shape=v_shape, initializer=self.kernel_initializer)
        self.g = self.add_weight(name="g", shape=(units,), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(units,), initializer="zeros") if self.use_bias else None

    @property
    def kernel(self):
        """The effective kernel g · v / ||v||."""
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(self.v), axis=self._norm_axes, keepdims=True), 1e-12))
        shape = [1] * len(self.v.shape)
        shape[self._out_axis] = -1
        return self.v * ops.reshape(self.g, shape) / norm

    def _finish(self, out):
        if self.use_bias:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        return {**super().get_config(), "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="kzoo")
class WeightNormDense(_WeightNorm):
    """Dense layer with weight normalization (``v``: (in, units), ``g``: (units,))."""

    _norm_axes, _out_axis = (0,), 1

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self._make_weights((int(input_shape[-1]), self.units), self.units)

    def call(self, x):
        return self._finish(ops.matmul(x, self.kernel))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="kzoo")
class WeightNormConv2D(_WeightNorm):
    """2-D convolution (channels last) with weight normalization (one ``g`` per filter)."""

    _norm_axes, _out_axis = (0, 1, 2), 3

    def __init__(self, filters, kernel_size, strides=1, padding="same", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.strides = int(strides)
        self.padding = padding

    def build(self, input_shape):
        self._make_weights(self.kernel_size + (int(input_shape[-1]), self.filters), self.filters)

    def call(self, x):
        return self._finish(ops.conv(x, self.kernel, strides=self.strides, padding=self.padding))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding}


@keras.saving.register_keras_serializable(package="kzoo")
class WeightNormConv2DTranspose(WeightNormConv2D):
    """Transposed 2-D convolution with weight normalization (kernel (kh, kw, filters, in))."""

    _norm_axes, _out_axis = (0, 1, 3), 2

    def build(self, input_shape):
        self._make_weights(self.kernel_size + (self.filters, int(input_shape[-1])), self.filters)

    def call(self, x):
        return self._finish(ops.conv_transpose(x, self.kernel, strides=self.strides, padding=self.padding))


# --------------------------------------------------------------------------
# Architectures (paper 000, Tables A3, A4, A6; scaled to the input size)
# --------------------------------------------------------------------------


def _ch(c, width):
    return max(1, int(round(c * width)))


def output_activation(value_range):
    """The generator's output nonlinearity for data in ``value_range``: sigmoid, tanh or linear."""
    lo, hi = value_range
    if lo >= 0.0 and hi <= 1.0:
        return "sigmoid"
    if lo >= -1.0 and hi <= 1.0:
        return "tanh"
    return None


def _upsamplings(size):
    """(number of stride-2 layers, starting size) for a square image of ``size``."""
    for k in (3, 2, 1):
        if size % (2 ** k) == 0 and size // (2 ** k) >= (4 if k == 3 else 2):
            return k, size // (2 ** k)
    raise ValueError(f"conv GANs need an even image size of at least 4, got {size}")


def _check_image_shape(shape, what):
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[0] != shape[1]:
        raise ValueError(f"the conv {what} needs square images (size, size, channels), got {shape}; "
                         "use arch='mlp' for flat inputs")
    return shape


def conv_generator(output_shape, latent_dim=100, channels=(512, 256, 128), kernel_size=5, width=1.0,
                   weight_norm_output=True, activation="sigmoid", name="generator"):
    """Table A3 (``channels=(512, 256, 128)``, 5×5) or Table A6's DCGAN (``(1024, 256, 64)``, 4×4).

    latent -> dense s0×s0×c0 batchnorm ReLU -> stride-2 transposed convs (batchnorm ReLU)
    -> a last stride-2 transposed conv to the image channels (weight-normalized in
    Table A3) with ``activation``. The number of stride-2 layers follows the
    image size (three for 32×32 as in the paper, two for 8×8 digits).
    """
    size, _, out_ch = _check_image_shape(output_shape, "generator")
    k, s0 = _upsamplings(size)
    z = keras.Input((int(latent_dim),), name="z")
    h = keras.layers.Dense(s0 * s0 * _ch(channels[0], width), use_bias=False, name="dense")(z)
    h = keras.layers.BatchNormalization(name="bn0")(h)
    h = keras.layers.ReLU(name="relu0")(h)
    h = keras.layers.Reshape((s0, s0, _ch(channels[0], width)), name="reshape")(h)
    for i in range(1, k):
        c = _ch(channels[min(i, len(channels) - 1)], width)
        h = keras.layers.Conv2DTranspose(c, kernel_size, strides=2, padding="same", use_bias=False,
                                         name=f"convT{i}")(h)
        h = keras.layers.BatchNormalization(name=f"bn{i}")(h)
        h = keras.layers.ReLU(name=f"relu{i}")(h)
    if weight_norm_output:
        x = WeightNormConv2DTranspose(out_ch, kernel_size, strides=2, padding="same", activation=activation,
                                      name="output")(h)
    else:
        x = keras.layers.Conv2DTranspose(out_ch, kernel_size, strides=2, padding="same", activation=activation,
                                         name="output")(h)
    return keras.Model(z, x, name=name)


def ssgan_discriminator(input_shape, num_classes, width=1.0, weight_norm=True, dropout=True,
                        channels=(64, 128), name="discriminator"):
    """Table A4's Conv-Small (SVHN column; ``channels=(96, 192)`` is Conv-Large CIFAR-10), K logits.

    dropout 0.2 -> 3 × (3×3 conv lReLU 0.2), the third stride 2 -> dropout 0.5 ->
    3 × (3×3 conv), the third stride 2 -> dropout 0.5 -> 3×3 conv (valid when the
    map allows) -> 2 NiN (1×1) -> global average pool (the feature-matching layer,
    named ``features``) -> weight-normalized dense to K logits. The fake class's
    logit is fixed at 0 (see :func:`kzoo.ops.kplus1_unlabeled_loss`), so the
    network is an ordinary K-way classifier.
    """
    size, _, _ = _check_image_shape(input_shape, "discriminator")
    conv = (lambda f, k, s, p, n: WeightNormConv2D(f, k, strides=s, padding=p, name=n)) if weight_norm else \
        (lambda f, k, s, p, n: keras.layers.Conv2D(f, k, strides=s, padding=p, name=n))
    x = keras.Input(tuple(input_shape), name="input")
    h = keras.layers.Dropout(0.2, name="drop0")(x) if dropout else x
    for b, c in enumerate(channels, start=1):
        for i in range(1, 4):
            stride = 2 if i == 3 and size >= 2 else 1
            h = conv(_ch(c, width), 3, stride, "same", f"conv{b}_{i}")(h)
            h = keras.layers.LeakyReLU(0.2, name=f"lrelu{b}_{i}")(h)
            if stride == 2:
                size = (size + 1) // 2
        if dropout:
            h = keras.layers.Dropout(0.5, name=f"drop{b}")(h)
    c = _ch(channels[-1], width)
    h = conv(c, 3, 1, "valid" if size >= 3 else "same", "conv3_1")(h)
    h = keras.layers.LeakyReLU(0.2, name="lrelu3_1")(h)
    for i in (2, 3):
        h = conv(c, 1, 1, "same", f"nin3_{i}")(h)
        h = keras.layers.LeakyReLU(0.2, name=f"lrelu3_{i}")(h)
    h = keras.layers.GlobalAveragePooling2D(name="features")(h)
    dense = WeightNormDense if weight_norm else keras.layers.Dense
    return keras.Model(x, dense(num_classes, name="logits")(h), name=name)


def conv_discriminator(input_shape, num_outputs=1, channels=(64, 256, 1024), kernel_size=4, width=1.0,
                       name="discriminator"):
    """Table A6's DCGAN discriminator: stride-2 4×4 convs (batchnorm, lReLU 0.2) then one logit."""
    size, _, _ = _check_image_shape(input_shape, "discriminator")
    k, _ = _upsamplings(size)
    x = keras.Input(tuple(input_shape), name="input")
    h = x
    for i in range(k):
        h = keras.layers.Conv2D(_ch(channels[min(i, len(channels) - 1)], width), kernel_size, strides=2,
                                padding="same", use_bias=False, name=f"conv{i + 1}")(h)
        h = keras.layers.BatchNormalization(name=f"bn{i + 1}")(h)
        h = keras.layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(h)
    h = keras.layers.Flatten(name="features")(h)
    return keras.Model(x, keras.layers.Dense(num_outputs, name="logits")(h), name=name)


def mlp_generator(output_shape, latent_dim=2, hidden=(128, 128, 128), activation=None, batch_norm=False,
                  name="generator"):
    """MLP generator for 2-D (or any flat) data; paper 000 App. I.1 used 6 × 384 ReLU layers."""
    z = keras.Input((int(latent_dim),), name="z")
    h = z
    for i, units in enumerate(hidden, start=1):
        h = keras.layers.Dense(units, use_bias=not batch_norm, name=f"dense{i}")(h)
        if batch_norm:
            h = keras.layers.BatchNormalization(name=f"bn{i}")(h)
        h = keras.layers.ReLU(name=f"relu{i}")(h)
    n_out = int(np.prod(output_shape))
    x = keras.layers.Dense(n_out, activation=activation, name="output")(h)
    if tuple(output_shape) != (n_out,):
        x = keras.layers.Reshape(tuple(output_shape), name="reshape")(x)
    return keras.Model(z, x, name=name)


def mlp_discriminator(input_shape, num_outputs=1, hidden=(128, 128, 128), weight_norm=False, noise=0.0,
                      name="discriminator"):
    """MLP discriminator / classifier (lReLU 0.2; ``noise``: Gaussian noise on every layer's input,
    as Salimans et al.'s MNIST discriminator). The last hidden layer is named ``features``."""
    x = keras.Input(tuple(input_shape), name="input")
    h = keras.layers.Flatten(name="flatten")(x) if len(input_shape) > 1 else x
    dense = WeightNormDense if weight_norm else keras.layers.Dense
    for i, units in enumerate(hidden, start=1):
        if noise:
            h = keras.layers.GaussianNoise(noise, name=f"noise{i}")(h)
        h = dense(units, name=f"dense{i}")(h)
        h = keras.layers.LeakyReLU(0.2, name="features" if i == len(hidden) else f"lrelu{i}")(h)
    return keras.Model(x, dense(num_outputs, name="logits")(h), name=name)


def default_latent_dim(input_shape):
    """100 (the paper's) for images of 1,000+ values; else about half the input size (2 for 2-D points).

    Never more than the input size, so the generator's Jacobian can have full
    column rank (the condition number of :func:`mean_log_condition_number`).
    """
    n = int(np.prod(input_shape))
    return 100 if n >= 1000 else max(2, min(100, n // 2))


def resolve_arch(arch, input_shape):
    if arch not in ("auto", "conv", "mlp"):
        raise ValueError(f"arch must be auto, conv or mlp, got {arch!r}")
    if arch == "auto":  # conv for images of 16×16 and more; 8×8 digits train faster and better as MLPs on CPU
        return "conv" if len(input_shape) == 3 and input_shape[0] == input_shape[1] and input_shape[0] >= 16 \
            else "mlp"
    return arch


SSGAN_DISCRIMINATORS = {"conv_small": (64, 128), "conv_large": (96, 192)}  # Table A4: SVHN, CIFAR-10 columns


def ssgan_pair(input_shape, num_classes, arch="auto", width=1.0, latent_dim=None, weight_norm=True,
               value_range=(0.0, 1.0), discriminator="conv_small"):
    """(generator, classifier) of the semi-supervised GAN: Tables A3/A4 for images, MLPs otherwise.

    ``discriminator`` (conv arch): Table A4's ``"conv_small"`` (64/128 channels, the paper's SVHN
    network) or ``"conv_large"`` (96/192, its CIFAR-10 network).
    """
    if discriminator not in SSGAN_DISCRIMINATORS:
        raise ValueError(f"discriminator must be one of {', '.join(SSGAN_DISCRIMINATORS)}, got {discriminator!r}")
    input_shape = tuple(int(s) for s in input_shape)
    latent_dim = latent_dim or default_latent_dim(input_shape)
    act = output_activation(value_range)
    if resolve_arch(arch, input_shape) == "conv":
        gen = conv_generator(input_shape, latent_dim, width=width, weight_norm_output=weight_norm, activation=act)
        disc = ssgan_discriminator(input_shape, num_classes, width=width, weight_norm=weight_norm,
                                   channels=SSGAN_DISCRIMINATORS[discriminator])
    else:
        hidden = tuple(_ch(c, width) for c in (256, 256, 256))
        gen = mlp_generator(input_shape, latent_dim, hidden=hidden, activation=act, batch_norm=True)
        disc = mlp_discriminator(input_shape, num_classes, hidden=hidden, weight_norm=weight_norm,
                                 noise=0.0 if len(input_shape) == 1 and input_shape[0] <= 3 else 0.3)
    return gen, disc


def dcgan_pair(input_shape, arch="auto", width=1.0, latent_dim=None, value_range=(0.0, 1.0)):
    """(generator, discriminator) of a plain GAN: Table A6's DCGAN for images, MLPs otherwise."""
    input_shape = tuple(int(s) for s in input_shape)
    latent_dim = latent_dim or default_latent_dim(input_shape)
    act = output_activation(value_range)
    if resolve_arch(arch, input_shape) == "conv":
        gen = conv_generator(input_shape, latent_dim, channels=(1024, 256, 64), kernel_size=4, width=width,
                             weight_norm_output=False, activation=act)
        disc = conv_discriminator(input_shape, 1, width=width)
    else:
        hidden = tuple(_ch(c, width) for c in (128, 128, 128))
        gen = mlp_generator(input_shape, latent_dim, hidden=hidden, activation=act)
        disc = mlp_discriminator(input_shape, 1, hidden=hidden)
    return gen, disc


# --------------------------------------------------------------------------
# Manifold and ambient regularization (paper 000 §3), written once
# --------------------------------------------------------------------------


def check_regularizer_hyperparameters(gamma, epsilon, eta=None, gamma_name="gamma"):
    """γ >= 0, ε > 0, η > 0 as floats; ValueError naming the bad one."""
    gamma = kops.check_positive(gamma_name, gamma, allow_zero=True)
    epsilon = kops.check_positive("epsilon", epsilon)
    if eta is not None:
        eta = kops.check_positive("eta", eta)
    return gamma, epsilon, eta


def manifold_tangent(generate, z, eta, seed_generator, normalized=True):
    """``(g(z), r̄)``: samples and the stochastic finite-difference tangent r = g(z + η δ) - g(z).

    δ ~ N(0, I); r̄ = r / ||r|| per example (``normalized``, the paper's default)
    or r itself. Both are constants for the training gradient (the generator
    is not trained by the regularizer). ``generate`` maps latents to inputs; it
    is called once on [z, z + η δ] so that both halves see the same
    normalization statistics.
    """
    n = z.shape[0] if z.shape[0] is not None else ops.shape(z)[0]
    delta = keras.random.normal(ops.shape(z), seed=seed_generator, dtype=z.dtype)
    both = ops.stop_gradient(generate(ops.concatenate([z, z + eta * delta], axis=0)))
    x, x_eta = both[:n], both[n:]
    r = x_eta - x
    return x, (kops.l2_normalize(r) if normalized else r)


def ambient_direction(x, seed_generator):
    """δ̄ = δ / ||δ||, δ ~ N(0, I) of ``x``'s shape (the ambient regularizer's direction)."""
    return kops.l2_normalize(keras.random.normal(ops.shape(x), seed=seed_generator, dtype=x.dtype))


def smoothness_penalty(classify, x, r):
    """Per-example ||f(x) - f(x + r)||² on logits; the gradient flows through both passes.

    ``classify`` runs once on [x, x + r] (both halves share batch statistics
    and no state is updated when it is a :func:`kzoo.core.call_without_updates` view).
    """
    n = x.shape[0] if x.shape[0] is not None else ops.shape(x)[0]
    logits = classify(ops.concatenate([x, x + r], axis=0))
    return kops.squared_l2_distance(logits[:n], logits[n:])


def manifold_penalty(classify, generate, z, epsilon, eta, seed_generator, normalized=True):
    """Ω = E ||f(g(z)) - f(g(z) + ε r̄)||² (per example), paper 000 §3."""
    x, r = manifold_tangent(generate, z, eta, seed_generator, normalized)
    return smoothness_penalty(classify, x, epsilon * r)


def ambient_penalty(classify, x, epsilon, seed_generator):
    """E ||f(x) - f(x + ε δ̄)||² (per example): the ambient regularizer (Kumar et al.)."""
    return smoothness_penalty(classify, ops.stop_gradient(x), epsilon * ambient_direction(x, seed_generator))


def load_generator(path):
    """A generator saved by ``kzoo pretrain dcgan`` (a ``.keras`` file); clear errors for bad paths."""
    if isinstance(path, keras.Model):
        return path
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"generator must be a keras.Model or the path of a saved one, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".keras"):
        path += ".keras"
    if not os.path.isfile(path):
        raise ValueError(f"generator file {path} does not exist; make one with "
                         f"`kzoo pretrain dcgan --dataset DATASET --export {path}`")
    model = keras.saving.load_model(path, compile=False)
    if not isinstance(model, keras.Model):
        raise ValueError(f"{path} does not hold a Keras model")
    return model


def check_generator_matches(generator, input_shape):
    """Raise ValueError when the generator's output shape is not the classifier's input shape."""
    out = tuple(generator.output_shape[1:])
    expected = tuple(int(s) for s in input_shape)
    if out != expected:
        raise ValueError(f"the generator outputs examples of shape {out} but the classifier takes {expected}; "
                         "use a generator trained on the same dataset (kzoo pretrain dcgan --dataset ...)")


@keras.saving.register_keras_serializable(package="kzoo")
class ManifoldGAN(Regularizer):
    """Decoupled manifold regularization: γ · E ||f(g(z)) - f(g(z) + ε r̄)||² with a frozen generator.

    Args:
        generator: a Keras model z -> x (or the path of one saved by
            ``kzoo pretrain dcgan``). It is frozen (``trainable = False``), run in
            inference mode and never updated.
        epsilon: step ε along the tangent (input units; paper: 20 on 32×32 images in [-1, 1]).
        eta: latent step η of the finite difference (paper: 1).
        gamma: weight γ (paper, Table A8: 1e-4).
        normalized: r̄ = r / ||r|| (default) or the unnormalized r.
        batch_size: generated samples per step (default: the unlabeled batch size).
        latent: the generator's latent distribution, "normal" (DCGAN) or "uniform".
    """

    name = "manifold"

    def __init__(self, generator, epsilon=20.0, eta=1.0, gamma=1e-4, normalized=True, batch_size=None,
                 latent="normal", rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.gamma, self.epsilon, self.eta = check_regularizer_hyperparameters(gamma, epsilon, eta)
        if latent not in LATENTS:
            raise ValueError(f"latent must be one of {', '.join(LATENTS)}, got {latent!r}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}")
        self.generator_path = os.fspath(generator) if isinstance(generator, (str, os.PathLike)) else None
        self.generator = load_generator(generator)
        self.generator.trainable = False
        self.latent_dim = latent_dim_of(self.generator)
        self.normalized = bool(normalized)
        self.batch_size = batch_size
        self.latent = latent
        self.weights = {self.name: self.gamma}

    def _generate(self, z):
        return call_without_updates(self.generator, z, training=False, frozen=True)

    def terms(self, ctx):
        x_ref = ctx.x_u if ctx.x_u is not None else ctx.x_l
        check_generator_matches(self.generator, x_ref.shape[1:])
        n = self.batch_size or (x_ref.shape[0] if x_ref.shape[0] is not None else ops.shape(x_ref)[0])
        z = sample_latent(n, self.latent_dim, ctx.seed_generator, self.latent)
        omega = manifold_penalty(ctx.forward, self._generate, z, self.epsilon, self.eta, ctx.seed_generator,
                                 self.normalized)
        return {self.name: ops.mean(omega)}

    def get_config(self):
        return {"generator": self.generator_path or self.generator.name, "epsilon": self.epsilon, "eta": self.eta,
                "gamma": self.gamma, "normalized": self.normalized, "batch_size": self.batch_size,
                "latent": self.latent, **super().get_config()}

    def serialize(self):
        if self.generator_path is None:
            raise TypeError(
                "cannot save a model whose ManifoldGAN regularizer holds an in-memory generator: build it from "
                "the generator's .keras file (ManifoldGAN(generator='dcgan.keras', ...), as `kzoo pretrain dcgan` "
                "writes it), or save only the classifier (model.network.save(...)) or export it (model.export(...))")
        return super().serialize()


@keras.saving.register_keras_serializable(package="kzoo")
class AmbientSmoothness(Regularizer):
    """Ambient regularization: γ · E ||f(x) - f(x + ε δ̄)||², δ ~ N(0, I), on the unlabeled inputs."""

    name = "ambient"

    def __init__(self, epsilon=20.0, gamma=1e-3, inputs="unlabeled", rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.gamma, self.epsilon, _ = check_regularizer_hyperparameters(gamma, epsilon)
        if inputs not in ("all", LABELED, UNLABELED):
            raise ValueError(f"inputs must be 'all', 'labeled' or 'unlabeled', got {inputs!r}")
        self.inputs = inputs
        self.weights = {self.name: self.gamma}

    def terms(self, ctx):
        x, _ = ctx.inputs(self.inputs)
        return {self.name: ops.mean(ambient_penalty(ctx.forward, x, self.epsilon, ctx.seed_generator))}

    def get_config(self):
        return {"epsilon": self.epsilon, "gamma": self.gamma, "inputs": self.inputs, **super().get_config()}


# --------------------------------------------------------------------------
# The semi-supervised feature-matching GAN (Salimans et al.; paper 000 §4.2)
# --------------------------------------------------------------------------


def feature_layer_output(classifier, feature_layer=None):
    """The intermediate tensor feature matching uses: ``feature_layer`` (a name), the layer named
    ``features``, or the input of the classifier's last layer."""
    if feature_layer is not None:
        return classifier.get_layer(feature_layer).output
    try:
        return classifier.get_layer("features").output
    except ValueError:
        return classifier.layers[-1].input


class SemiSupervisedGAN(GAN):
    """Feature-matching semi-supervised GAN whose discriminator is the K-class classifier.

    K+1-way discriminator, implemented with the usual trick: the classifier
    outputs K logits and the fake class's logit is fixed at 0, so
    p(real | x) = Σ_k exp(l_k) / (Σ_k exp(l_k) + 1) (no extra output unit).

    Discriminator loss: cross-entropy on the labeled batch +
    ``unlabeled_weight`` · :func:`kzoo.ops.kplus1_unlabeled_loss` on unlabeled
    and generated batches, + γ_m · Ω_manifold (on generated samples, the
    tangent from the generator itself) + γ_a · Ω_ambient (on the unlabeled
    batch). Generator loss: feature matching on ``feature_layer`` (default: the
    layer named ``features``, else the input of the last layer). One backward
    pass; each network gets the gradient of its own loss (frozen views).

    The classifier's weights are averaged as an exponential moving average
    (own non-trainable variables, decay min(ema_decay, (1 + t) / (10 + t)) as
    TensorFlow's ExponentialMovingAverage with num_updates; updated with the
    weights each step starts from). :meth:`ema_classifier` is the classifier to
    evaluate and export.

    Batches: ``({"labeled": x_l, "unlabeled": x_u}, y_l)`` (kzoo.data.semi_supervised).
    """

    TRACKED = ("loss_lab", "loss_unl", "g_loss", "manifold", "ambient", "acc_lab")

    def __init__(self, generator, classifier, feature_layer=None, manifold_gamma=0.0, ambient_gamma=0.0,
                 epsilon=20.0, eta=1.0, normalized=True, unlabeled_weight=1.0, ema_decay=0.999,
                 latent="uniform", seed=None, **kwargs):
        super().__init__(generator, classifier, seed=seed, latent=latent, **kwargs)
        self.manifold_gamma, self.epsilon, self.eta = check_regularizer_hyperparameters(
            manifold_gamma, epsilon, eta, gamma_name="manifold_gamma")
        self.ambient_gamma = kops.check_positive("ambient_gamma", ambient_gamma, allow_zero=True)
        self.unlabeled_weight = kops.check_positive("unlabeled_weight", unlabeled_weight, allow_zero=True)
        if not (ema_decay is not None and 0.0 <= ema_decay < 1.0):
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay!r}")
        self.ema_decay = float(ema_decay)
        self.normalized = bool(normalized)
        trunk = keras.Model(classifier.inputs, [feature_layer_output(classifier, feature_layer),
                                                classifier.outputs[0]], name="trunk")
        object.__setattr__(self, "_trunk", trunk)  # a view of the classifier's layers, not tracked twice
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.TRACKED}
        self.ema_variables = [
            self.add_weight(shape=tuple(v.shape), initializer="zeros", trainable=False,
                            name="ema_" + v.path.replace("/", "_"))
            for v in classifier.trainable_variables
        ]
        for ema, v in zip(self.ema_variables, classifier.trainable_variables):
            ema.assign(np.array(ops.convert_to_numpy(v.value)))  # a copy: JAX must not see one buffer twice
        self.ema_steps = self.add_weight(shape=(), initializer="zeros", trainable=False, name="ema_steps")

    @property
    def classifier(self):
        return self.discriminator

    def _update_ema(self):
        t = self.ema_steps.value
        decay = ops.minimum(self.ema_decay, (1.0 + t) / (10.0 + t))
        for ema, v in zip(self.ema_variables, self.discriminator.trainable_variables):
            ema.assign(decay * ema.value + (1.0 - decay) * ops.stop_gradient(v.value))
        self.ema_steps.assign(t + 1.0)

    def ema_classifier(self):
        """A copy of the classifier carrying the moving-average weights (what to evaluate and export)."""
        clone = keras.models.clone_model(self.discriminator)
        for target, ema in zip(clone.trainable_variables, self.ema_variables):
            target.assign(np.array(ops.convert_to_numpy(ema.value)))
        for target, v in zip(clone.non_trainable_variables, self.discriminator.non_trainable_variables):
            target.assign(np.array(ops.convert_to_numpy(v.value)))
        return clone

    def _generate_frozen(self, z):
        return call_without_updates(self.generator, z, training=True, frozen=True)

    def _classify_view(self, x):
        return call_without_updates(self.discriminator, x, training=True)

    def _kzoo_compute(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if not is_semi_supervised_batch(x):
            raise ValueError("SemiSupervisedGAN trains on semi-supervised batches "
                             "({'labeled': x_l, 'unlabeled': x_u}, y_l); use kzoo.data.semi_supervised")
        x_l, x_u = x[LABELED], x[UNLABELED]
        n_l = x_l.shape[0] if x_l.shape[0] is not None else ops.shape(x_l)[0]
        n_u = x_u.shape[0] if x_u.shape[0] is not None else ops.shape(x_u)[0]
        self._update_ema()
        z = self.sample_latent(n_u)
        x_fake = self.generator(z, training=True)
        feats_real, logits_real = self._trunk(ops.concatenate([x_l, x_u], axis=0), training=True)
        logits_l, logits_u, feats_u = logits_real[:n_l], logits_real[n_l:], feats_real[n_l:]
        _, logits_fake = self._trunk(ops.stop_gradient(x_fake), training=True)
        loss_lab = ops.mean(kops.cross_entropy_from_logits(y, logits_l))
        loss_unl = kops.kplus1_unlabeled_loss(logits_u, logits_fake)
        d_loss = loss_lab + self.unlabeled_weight * loss_unl
        terms = {"loss_lab": loss_lab, "loss_unl": loss_unl}
        if self.manifold_gamma > 0:
            omega = ops.mean(manifold_penalty(self._classify_view, self._generate_frozen, z, self.epsilon,
                                              self.eta, self.seed_generator, self.normalized))
            d_loss = d_loss + self.manifold_gamma * omega
            terms["manifold"] = omega
        if self.ambient_gamma > 0:
            omega = ops.mean(ambient_penalty(self._classify_view, x_u, self.epsilon, self.seed_generator))
            d_loss = d_loss + self.ambient_gamma * omega
            terms["ambient"] = omega
        feats_fake, _ = call_without_updates(self._trunk, x_fake, frozen=True)
        g_loss = kops.feature_matching_loss(ops.stop_gradient(feats_u), feats_fake)
        terms["g_loss"] = g_loss
        terms["acc_lab"] = ops.mean(ops.cast(ops.equal(ops.argmax(logits_l, axis=-1),
                                                       ops.cast(y, "int32")), "float32"))
        return StepOutput(kb.scale_loss_for_distribution(d_loss + g_loss), x_l, y, logits_l, None, terms)

    def _kzoo_update_metrics(self, out):
        for name, value in out.terms.items():
            self.trackers[name].update_state(value)
        return {name: self.trackers[name].result() for name in self.TRACKED if name in out.terms}


# --------------------------------------------------------------------------
# NaN guard: stop on a non-finite loss, keep the last good weights
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Metrics (reusable by every generative model of kzoo: GAN, ALI, ...)
# --------------------------------------------------------------------------


def generator_jacobian(generator, z, training=False, chunk=2048):
    """Jacobians dG/dz at each row of ``z``: numpy array (n, input size, latent size), by forward mode.

    One JVP per chunk of up to ``chunk`` (z, basis direction) pairs instead of one per latent axis (with
    ``training=True`` batch-norm statistics would span a chunk of repeated rows: use inference mode).
    """
    z = np.asarray(z, "float32")
    n, nz = z.shape
    zs = np.repeat(z, nz, axis=0)  # row i·nz + j: z_i with direction e_j
    es = np.tile(np.eye(nz, dtype="float32"), (n, 1))
    cols = []
    for start in range(0, n * nz, chunk):
        zc = ops.convert_to_tensor(zs[start:start + chunk])
        m = int(zc.shape[0])

        def flat(zz, m=m):
            return ops.reshape(generator(zz, training=training), (m, -1))

        ec = ops.convert_to_tensor(es[start:start + chunk])
        cols.append(np.asarray(ops.convert_to_numpy(StepContext.jvp(flat, zc, ec)), np.float64))
    return np.concatenate(cols).reshape(n, nz, -1).transpose(0, 2, 1)


def mean_log_condition_number(generator, n=64, seed=0, latent="normal", training=False):
    """Generator mean log condition number (MLCN; paper 000 App. C, after Odena et al. 2018).

    For sampled z, J = dG/dz (input size × latent size) and the metric tensor
    M = JᵀJ; the condition number is λ_max(M) / λ_min(M) = (s_max / s_min)² with
    s the singular values of J. Returns the mean over ``n`` samples of its
    natural log (inf when J is rank deficient). Needs latent size <= input size.
    """
    nz = latent_dim_of(generator)
    nx = int(np.prod(generator.output_shape[1:]))
    if nz > nx:
        raise ValueError(f"the latent size {nz} exceeds the output size {nx}: JᵀJ is singular and the condition "
                         "number is infinite for every z")
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, (n, nz)) if latent == "uniform" else rng.normal(size=(n, nz))
    jac = generator_jacobian(generator, z, training)
    # eigenvalues of M = JᵀJ (latent × latent, float64): 20× faster than the SVD of the tall J on 32×32×3
    lam = np.linalg.eigvalsh(np.matmul(jac.transpose(0, 2, 1), jac))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_cond = np.where(lam[:, 0] > 0, np.log(lam[:, -1]) - np.log(np.maximum(lam[:, 0], 1e-300)), np.inf)
    return float(np.mean(log_cond))


@functools.lru_cache(maxsize=2)
def digits_scorer(seed=0, steps=600):
    """A kzoo MLP trained (supervised, all 1,300 training labels) on digits: the scorer of
    :func:`digits_sample_score`. Cached per process; about 97% test accuracy."""
    from kzoo import data as kdata
    from kzoo import models as kmodels

    ds = kdata.load("digits")
    clf = kmodels.mlp(input_shape=ds.input_shape, num_classes=10, hidden=(256, 128), name="digits_scorer")
    clf.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(seed)
    for _ in range(steps // 100):
        idx = rng.integers(0, len(ds.x_train), (100, 128))
        for i in idx:
            clf.train_on_batch(ds.x_train[i], ds.y_train[i])
    return clf


def digits_sample_score(x, seed=0):
    """Quality/diversity of generated 8×8 digits, scored by a kzoo digits classifier.

    NOT the Inception score: the same formula exp(E_x KL(p(y|x) || p(y))) but
    with :func:`digits_scorer` (an MLP trained on scikit-learn's digits) in
    place of Inception-v3; it ranges from 1 to 10 and only compares generators
    of 8×8 digits with each other (the real test images score about 9).
    Also returns the mean top-class confidence and the number of classes that
    are the top class of at least 1% of the samples.
    """
    x = np.asarray(x, "float32").reshape(-1, 8, 8, 1)
    logits = np.asarray(digits_scorer(seed).predict(x, verbose=0, batch_size=512), np.float64)
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    p = np.exp(log_p)
    p_y = p.mean(0)
    kl = (p * (log_p - np.log(p_y + 1e-12))).sum(1)
    counts = np.bincount(p.argmax(1), minlength=10)
    return {"digits_score": float(np.exp(kl.mean())), "confidence": float(p.max(1).mean()),
            "classes_covered": int((counts >= 0.01 * len(x)).sum())}


def save_image_grid(images, path, ncols=10, title=None):
    """Save images (n, h, w, c) in [0, 1] (or 2-D points, as a scatter) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    n = len(images)
    nrows = int(math.ceil(n / ncols))
    h, w = images.shape[1:3]
    grid = np.ones((nrows * (h + 1) + 1, ncols * (w + 1) + 1, images.shape[3]))
    for i, img in enumerate(np.clip(images, 0.0, 1.0)):
        r, c = divmod(i, ncols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = img
    fig, ax = plt.subplots(figsize=(ncols * 0.5 + 0.5, nrows * 0.5 + 0.5))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray_r" if grid.shape[-1] == 1 else None,
              interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------
# Training loops of the registered methods (kzoo.methods) and the pretrainer
# --------------------------------------------------------------------------


def _config_error(message):
    from kzoo.experiment import ConfigError

    return ConfigError(message)


def train_gan_ssl(ctx):
    """``kzoo train gan-ssl``: the coupled semi-supervised GAN; returns the EMA classifier."""
    hp = ctx.hyperparameters
    ds = ctx.dataset
    try:
        gen, clf = ssgan_pair(ds.input_shape, ds.num_classes, arch=hp["gan_arch"], width=hp["gan_width"],
                              latent_dim=hp["latent_dim"] or None, weight_norm=hp["weight_norm"],
                              value_range=ds.value_range, discriminator=hp["gan_discriminator"])
    except ValueError as e:
        raise _config_error(str(e)) from e
    model = SemiSupervisedGAN(gen, clf, manifold_gamma=hp["manifold_gamma"], ambient_gamma=hp["ambient_gamma"],
                              epsilon=hp["epsilon"], eta=hp["eta"], normalized=hp["normalize"],
                              unlabeled_weight=hp["unlabeled_weight"], ema_decay=hp["ema_decay"], seed=ctx.seed)
    model.compile(discriminator_optimizer=ctx.optimizer(beta_1=0.5), generator_optimizer=ctx.optimizer(beta_1=0.5),
                  jit_compile=ctx.jit_compile)
    ctx.callbacks.append(NaNGuard())
    ctx.fit(model)
    ctx.info.update({"latent_dim": latent_dim_of(gen), "arch": resolve_arch(hp["gan_arch"], ds.input_shape),
                     "classifier": "EMA of the discriminator"})
    ctx.info["model"] = "discriminator (Table A4)" if ctx.info["arch"] == "conv" else "discriminator (MLP)"
    ctx.gan = model  # for callers that want the generator (recipes, benchmarks)
    return model.ema_classifier()


def train_manifold(ctx):
    """``kzoo train manifold --generator PATH``: a classifier regularized with a frozen pretrained generator."""
    from kzoo.core import Regularized

    hp = ctx.hyperparameters
    if not hp["generator"]:
        raise _config_error("manifold needs --generator PATH: a generator saved by "
                            "`kzoo pretrain dcgan --dataset DATASET --export PATH.keras`")
    try:
        generator = load_generator(hp["generator"])
        check_generator_matches(generator, ctx.dataset.input_shape)
        reg = ManifoldGAN(generator, epsilon=hp["epsilon"], eta=hp["eta"], gamma=hp["gamma"],
                          normalized=hp["normalize"], rampup_steps=hp["rampup_steps"])
    except (ValueError, TypeError) as e:
        raise _config_error(str(e)) from e
    clf = ctx.make_classifier()
    ctx.info["regularizer"] = repr(reg)
    net = Regularized(clf, reg, seed=ctx.seed)
    net.compile(optimizer=ctx.optimizer(), metrics=["accuracy"], jit_compile=ctx.jit_compile)
    ctx.callbacks.append(NaNGuard())
    ctx.fit(net)
    return clf


def pretrain_dcgan(ctx):
    """``kzoo pretrain dcgan``: a plain GAN (Table A6 scaled, or MLPs for flat data); saves the generator."""
    from kzoo import data as kdata
    from kzoo.export import save_keras_atomic

    hp = ctx.hyperparameters
    ds = ctx.dataset
    try:
        gen, disc = dcgan_pair(ds.input_shape, arch=hp["gan_arch"], width=hp["gan_width"],
                               latent_dim=hp["latent_dim"] or None, value_range=ds.value_range)
    except ValueError as e:
        raise _config_error(str(e)) from e
    gan = GAN(gen, disc, seed=ctx.seed)
    lr = ctx.learning_rate or 1e-3  # on digits 1e-3 for 4,000 steps beat 2e-4 for 6,000 (digits sample score 6.7 vs 4.4)
    gan.compile(discriminator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5),
                generator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5))
    stream = kdata.supervised(ds.x_train, ds.y_train, batch_size=ctx.batch_size, seed=ctx.seed)
    ctx.callbacks.append(NaNGuard())
    history = ctx.fit(gan, stream)
    save_keras_atomic(gen, ctx.export)
    metrics = {k: float(v[-1]) for k, v in history.history.items()}
    metrics["latent_dim"] = latent_dim_of(gen)
    if latent_dim_of(gen) <= int(np.prod(ds.input_shape)):
        metrics["mlcn"] = mean_log_condition_number(gen, seed=ctx.seed)
    if ds.name == "digits":
        metrics.update(digits_sample_score(gan.sample(1000)))
    return metrics
