"""Latent-space VAT (Osada et al., "Regularization with Latent Space Virtual Adversarial Training").

LVAT is VAT with the adversarial direction searched in the latent space of a
frozen generative model, the *transformer* (paper, Algorithm 2):

    z = Enc(x);  r = ε · (unit direction found by K power iterations through Dec);
    x_adv = Dec(z + r);  L = α · E[KL(f(x) || f(x_adv))]

* :class:`LVAT` -- the regularizer (ε in latent units);
* :class:`VAE` -- the paper's Table 2 VAE scaled to the input size (Normal
  posterior, Normal or Bernoulli likelihood, standard Normal prior);
* :class:`Glow` -- Kingma & Dhariwal's multi-scale flow: L levels of K steps
  (actnorm -> invertible 1x1 convolution (LU) -> affine coupling), squeeze and
  split between levels.

Both transformers are Keras models trained with ``fit`` (negative ELBO /
negative log-likelihood in bits per dimension) whose every parameter is a
Keras variable owned by a Keras layer; the probability math (distributions,
KL, sampling, bijector forward/inverse/log-det) is TensorFlow Probability's.
Both implement the transformer protocol LVAT uses: ``data_shape``,
``latent_dim``, ``encode(x) -> z`` (batch, latent_dim) and ``decode(z) -> x``,
and count their training steps (``trained_steps``) so that LVAT can warn about
an untrained one. Save them with :func:`kzoo.export.save_keras_atomic` (or
``model.save``) and load them with :func:`load_transformer`.

Backends: TensorFlow only (TensorFlow Probability); on JAX, building any of
them raises :class:`kzoo.backend.UnsupportedBackendError` saying so.

Dequantization: inputs in [0, 1] with ``num_bins`` levels (x = k / (num_bins - 1);
digits: 17) are trained on as x_deq = (k + u) / num_bins, u ~ U(0, 1)^D, so the
models are densities on [0, 1]^D and bits/dim = -E[log p(x_deq)] / (D ln 2) +
log2(num_bins), an upper bound on the bits/dim of the discrete data (for the VAE,
with the ELBO in place of log p: a further upper bound). ``encode`` uses the
bin centre (u = 1/2); ``decode`` maps back to the k / (num_bins - 1) scale, so
Glow's ``decode(encode(x))`` returns ``x``.
"""

import functools
import math
import os
import warnings

import keras
import numpy as np
from keras import ops

from kzoo import backend as kb
from kzoo import ops as kops
from kzoo.core import Regularizer, StepContext, StepOutput
from kzoo.vat import _check_inputs, power_iteration

TRANSFORMERS = ("vae", "glow")


def _tfp():
    return kb.tfp("the LVAT transformers (kzoo.models.VAE / Glow) and the LVAT regularizer")


def _check_image_shape(input_shape, what):
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else ()
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise ValueError(
            f"{what} needs image inputs: input_shape=(height, width, channels), got {input_shape!r}; "
            "load the data unflattened (kzoo.data.load(..., flatten=False))"
        )
    return shape


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def num_bins_of(x, maximum=256):
    """Number of quantization levels of data in [0, 1] (distinct values; capped at ``maximum``)."""
    levels = np.unique(np.asarray(x)).size
    return int(min(max(levels, 2), maximum))


class _Transformer(keras.Model):
    """What VAE and Glow share: dequantization, the step counter, the kzoo train step, trackers."""

    def __init__(self, data_shape, num_bins, seed, **kwargs):
        super().__init__(**kwargs)
        _tfp()  # TensorFlow backend with TFP, or a clear error now
        self.data_shape = data_shape
        self.num_bins = _check_int("num_bins", num_bins, 2)
        self.seed = seed
        self.dims = int(np.prod(data_shape))
        self._seed_generator = keras.random.SeedGenerator(seed)
        self.trained_steps = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                             name="trained_steps", dtype="float32")

    # -- dequantization (see the module docstring) ------------------------------

    def _dequantize(self, x, noise):
        """x = k / (bins - 1) -> (k + u) / bins, u ~ U(0,1) (noise=True) or u = 1/2."""
        k = ops.cast(x, "float32") * (self.num_bins - 1)
        if noise:
            u = keras.random.uniform(ops.shape(k), seed=self._seed_generator)
        else:
            u = 0.5
        return (k + u) / self.num_bins

    def _quantized_scale(self, x_deq):
        """Inverse of the bin-centre map: (k + 1/2) / bins -> k / (bins - 1)."""
        return (x_deq * self.num_bins - 0.5) / (self.num_bins - 1)

    def _bits(self, nll_nats):
        """Bits/dim of the discrete data from -log p(x_deq) in nats per example."""
        return nll_nats / (self.dims * math.log(2.0)) + math.log2(self.num_bins)

    # -- training through kzoo's backend train step ---------------------------------

    def compile(self, optimizer="adam", jit_compile=False, **kwargs):
        """As ``keras.Model.compile``; XLA off by default (TFP's graphs compiled slower and ran slower
        with it on CPU: 33 vs 23 ms per Glow step on digits)."""
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def train_step(self, *args):
        return kb.train_step_function()(self, *args)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _kzoo_update_metrics(self, out):
        for name, value in out.terms.items():
            self._trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    def _step_output(self, x, loss, terms):
        self.trained_steps.assign_add(1.0)
        return StepOutput(kb.scale_loss_for_distribution(loss), x, None, None, None, terms)

    @staticmethod
    def _inputs_of(data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return ops.cast(x, "float32")

    def bits_per_dim(self, x, batch_size=256, samples=4, seed=0):
        """Mean bits/dim of ``x`` (numpy, in [0, 1]) over ``samples`` draws of the noise."""
        gen = keras.random.SeedGenerator(seed)
        total, count = 0.0, 0
        for _ in range(samples):
            for start in range(0, len(x), batch_size):
                xb = ops.convert_to_tensor(np.asarray(x[start:start + batch_size], "float32"))
                nll = self._negative_log_likelihood(xb, gen)
                total += float(np.sum(ops.convert_to_numpy(self._bits(nll))))
                count += int(xb.shape[0])
        return total / count

    def reconstruct(self, x):
        """``decode(encode(x))``."""
        return self.decode(self.encode(x))


# ------------------------------------------------------------------------------
# VAE (the LVAT paper's Table 2, scaled to the input size)
# ------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kzoo")
class VAE(_Transformer):
    """Convolutional VAE: Enc -> Normal posterior, Dec -> Normal or Bernoulli likelihood, N(0, I) prior.

    The paper's Table 2 (32x32x3 inputs, latent 128) scaled by input size: as
    many 2x2 stride-2 convolutions (``channels``, 2·``channels``, 4·``channels``;
    batch norm, ReLU, tanh after the last) as halve the image down to about
    4x4 (three on 32x32, one on 8x8), a dense layer to the posterior's mean and
    scale; the decoder mirrors it (dense to 4x4x32 with lReLU 0.1, 2x2 stride-2
    transposed convolutions with batch norm and ReLU, a 1x1 convolution to the
    input channels). ``latent_dim=None``: 128 capped at a quarter of the
    input dimension (16 on digits).

    ``likelihood="normal"``: mean sigmoid(Dec(z)), a learned per-pixel scale,
    trained on dequantized inputs (bits/dim are then an upper bound from the
    ELBO); ``"bernoulli"``: logits Dec(z) on inputs in [0, 1] (continuous
    targets, so no bits/dim). ``fit`` minimizes the negative ELBO (one
    reparametrized sample, drawn by TFP), logged as ``loss`` (nats per
    example) with ``reconstruction``, ``kl`` and (Normal) ``bits_per_dim``.
    For LVAT, ``encode`` is the posterior mean and ``decode`` the likelihood's mean.
    """

    def __init__(self, input_shape=(8, 8, 1), latent_dim=None, channels=32, likelihood="normal",
                 num_bins=256, seed=None, name="vae", **kwargs):
        shape = _check_image_shape(input_shape, "VAE")
        super().__init__(shape, num_bins, seed, name=name, **kwargs)
        if likelihood not in ("normal", "bernoulli"):
            raise ValueError(f"likelihood must be 'normal' or 'bernoulli', got {likelihood!r}")
        self.likelihood = likelihood
        self.latent_dim = (min(128, max(2, self.dims // 4)) if latent_dim is None
                           else _check_int("latent_dim", latent_dim, 1))
        self.channels = _check_int("channels", channels, 1)
        h, w, c = shape
        stages = 0
        while h % 2 == 0 and w % 2 == 0 and h // 2 >= 4 and w // 2 >= 4 and stages < 3:
            h, w, stages = h // 2, w // 2, stages + 1
        self.stages = stages
        self.encoder = self._make_encoder(shape, stages)
        self.decoder = self._make_decoder(shape, stages, (h, w))
        if likelihood == "normal":
            self.log_scale = self.add_weight(shape=shape, initializer=keras.initializers.Constant(math.log(0.1)),
                                             name="log_scale")
        self._trackers = {n: keras.metrics.Mean(name=n) for n in
                          ("loss", "reconstruction", "kl") + (("bits_per_dim",) if likelihood == "normal" else ())}
        self(ops.zeros((1,) + shape))  # build every variable now (loading restores into them)

    def _make_encoder(self, shape, stages):
        layers = keras.layers
        inp = keras.Input(shape)
        h = inp
        for i in range(stages):
            h = layers.Conv2D(self.channels * 2 ** i, 2, strides=2, padding="valid", name=f"conv{i + 1}")(h)
            h = layers.BatchNormalization(name=f"bn{i + 1}")(h)
            h = layers.Activation("tanh" if i == stages - 1 else "relu", name=f"act{i + 1}")(h)
        h = layers.Flatten(name="flatten")(h)
        out = layers.Dense(2 * self.latent_dim, name="posterior")(h)
        return keras.Model(inp, out, name="encoder")

    def _make_decoder(self, shape, stages, base):
        layers = keras.layers
        inp = keras.Input((self.latent_dim,))
        h = layers.Dense(base[0] * base[1] * 32, name="dense")(inp)
        h = layers.LeakyReLU(negative_slope=0.1, name="lrelu")(h)
        h = layers.Reshape((base[0], base[1], 32), name="reshape")(h)
        for i in range(stages):
            h = layers.Conv2DTranspose(self.channels * 2 ** (stages - 1 - i), 2, strides=2, padding="same",
                                       name=f"deconv{i + 1}")(h)
            h = layers.BatchNormalization(name=f"bn{i + 1}")(h)
            h = layers.ReLU(name=f"relu{i + 1}")(h)
        out = layers.Conv2D(shape[-1], 1, name="logits")(h)
        return keras.Model(inp, out, name="decoder")

    def get_config(self):
        return {"input_shape": self.data_shape, "latent_dim": self.latent_dim, "channels": self.channels,
                "likelihood": self.likelihood, "num_bins": self.num_bins, "seed": self.seed, "name": self.name}

    # -- distributions (TFP) -----------------------------------------------------

    def posterior(self, x_model, training=False):
        tfd = _tfp().distributions
        params = self.encoder(x_model, training=training)
        loc, raw = params[:, :self.latent_dim], params[:, self.latent_dim:]
        return tfd.Independent(tfd.Normal(loc, ops.softplus(raw) + 1e-4), reinterpreted_batch_ndims=1)

    def prior(self):
        tfd = _tfp().distributions
        zeros = ops.zeros((self.latent_dim,))
        return tfd.Independent(tfd.Normal(zeros, ops.ones_like(zeros)), reinterpreted_batch_ndims=1)

    def likelihood_of(self, z, training=False):
        tfd = _tfp().distributions
        logits = self.decoder(z, training=training)
        if self.likelihood == "bernoulli":
            return tfd.Independent(tfd.Bernoulli(logits=logits, dtype="float32"), reinterpreted_batch_ndims=3)
        scale = ops.exp(ops.convert_to_tensor(self.log_scale))
        return tfd.Independent(tfd.Normal(ops.sigmoid(logits), scale), reinterpreted_batch_ndims=3)

    def _model_space(self, x, noise):
        return self._dequantize(x, noise) if self.likelihood == "normal" else ops.cast(x, "float32")

    def _negative_elbo(self, x_model, seed_generator, training):
        tfd = _tfp().distributions
        q = self.posterior(x_model, training=training)
        seed = ops.cast(keras.random.randint((2,), 0, 2 ** 31 - 1, seed=seed_generator), "int32")
        z = q.sample(seed=seed)  # reparametrized
        reconstruction = -self.likelihood_of(z, training=training).log_prob(x_model)
        kl = tfd.kl_divergence(q, self.prior())
        return reconstruction, kl

    def _negative_log_likelihood(self, x, seed_generator):
        rec, kl = self._negative_elbo(self._model_space(x, True), seed_generator, training=False)
        return rec + kl

    def bits_per_dim(self, x, batch_size=256, samples=4, seed=0):
        if self.likelihood != "normal":
            raise ValueError("bits/dim needs a density: the Bernoulli VAE on continuous inputs has none "
                             "(use likelihood='normal')")
        return super().bits_per_dim(x, batch_size, samples, seed)

    # -- Keras -----------------------------------------------------------------------

    def call(self, x, training=False):
        return self.decode(self.encode(x, training=training), training=training)

    def _kzoo_compute(self, data):
        x = self._inputs_of(data)
        rec, kl = self._negative_elbo(self._model_space(x, True), self._seed_generator, training=True)
        loss = ops.mean(rec + kl)
        terms = {"loss": loss, "reconstruction": ops.mean(rec), "kl": ops.mean(kl)}
        if self.likelihood == "normal":
            terms["bits_per_dim"] = self._bits(loss)
        return self._step_output(x, loss, terms)

    # -- the transformer protocol --------------------------------------------------

    def encode(self, x, training=False):
        """Posterior mean of q(z | x) (bin-centred x), shape (batch, latent_dim)."""
        return self.posterior(self._model_space(x, False), training=training).mean()

    def decode(self, z, training=False):
        """Mean of p(x | z), on the scale of the inputs."""
        mean = self.likelihood_of(z, training=training).mean()
        return self._quantized_scale(mean) if self.likelihood == "normal" else mean


# ------------------------------------------------------------------------------
# Glow
# ------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kzoo")
class ActNorm(keras.layers.Layer):
    """y = (x + b) · exp(s) per channel; data-dependent initialization (zero mean, unit variance)."""

    def build(self, input_shape):
        c = input_shape[-1]
        self.bias = self.add_weight(shape=(c,), initializer="zeros", name="bias")
        self.log_scale = self.add_weight(shape=(c,), initializer="zeros", name="log_scale")

    def bijector(self):
        tfb = _tfp().bijectors
        return tfb.Chain([tfb.Scale(log_scale=ops.convert_to_tensor(self.log_scale)),
                          tfb.Shift(ops.convert_to_tensor(self.bias))])

    def initialize(self, h):
        h = ops.convert_to_numpy(h).astype(np.float64)
        mean = h.mean(axis=(0, 1, 2))
        std = h.std(axis=(0, 1, 2))
        self.bias.assign(-mean.astype("float32"))
        self.log_scale.assign(-np.log(std + 1e-6).astype("float32"))


@keras.saving.register_keras_serializable(package="kzoo")
class InvertibleConv1x1(keras.layers.Layer):
    """Invertible 1x1 convolution W = P L (U + diag(sign · exp(log|s|))), LU-parametrized (Glow, Sec. 3.2).

    Trainable: the strictly lower and strictly upper entries (one C x C
    variable; its diagonal is unused) and log|s|; P and sign(s) are fixed.
    Initialized from a random rotation. TFP's ``ScaleMatvecLU`` applies it
    (log|det W| = sum log|s| per pixel).
    """

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        import scipy.linalg

        c = input_shape[-1]
        rng = np.random.default_rng(self.seed)
        w = np.linalg.qr(rng.normal(size=(c, c)))[0]
        p, lower, upper = scipy.linalg.lu(w)  # w = p @ lower @ upper
        diag = np.diag(upper)
        free = np.tril(lower, -1) + np.triu(upper, 1)
        self.lu_free = self.add_weight(shape=(c, c), initializer=keras.initializers.Constant(free),
                                       name="lu_free")
        self.log_abs_s = self.add_weight(shape=(c,), initializer=keras.initializers.Constant(np.log(np.abs(diag))),
                                         name="log_abs_s")
        self.sign_s = self.add_weight(shape=(c,), initializer=keras.initializers.Constant(np.sign(diag)),
                                      trainable=False, name="sign_s")
        # tf.linalg.lu convention: w[perm] = L U, i.e. perm = argmax over rows of p^T
        self.permutation = self.add_weight(shape=(c,), dtype="int32", trainable=False, name="permutation",
                                           initializer=keras.initializers.Constant(np.argmax(p, axis=0)))

    def bijector(self):
        tfb = _tfp().bijectors
        free = ops.convert_to_tensor(self.lu_free)
        diag = ops.convert_to_tensor(self.sign_s) * ops.exp(ops.convert_to_tensor(self.log_abs_s))
        lower_upper = ops.tril(free, -1) + ops.triu(free, 1) + ops.diag(diag)
        return tfb.ScaleMatvecLU(lower_upper, ops.convert_to_tensor(self.permutation))

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="kzoo")
class AffineCoupling(keras.layers.Layer):
    """Glow's affine coupling: (a, b) -> (a, (b + t(a)) · sigmoid(h(a) + 2)).

    t and h come from a small CNN (3x3 conv, ReLU, 1x1 conv, ReLU, 3x3 conv)
    whose last layer starts near zero (Glow starts at exactly zero; a small
    random start lets every variable move from the first step), so each
    coupling starts near the identity.
    """

    def __init__(self, hidden_channels=64, **kwargs):
        super().__init__(**kwargs)
        self.hidden_channels = hidden_channels

    def build(self, input_shape):
        c = input_shape[-1]
        self.split = c // 2
        out = c - self.split
        layers = keras.layers
        self.conv1 = layers.Conv2D(self.hidden_channels, 3, padding="same", activation="relu", name="conv1")
        self.conv2 = layers.Conv2D(self.hidden_channels, 1, activation="relu", name="conv2")
        self.conv3 = layers.Conv2D(2 * out, 3, padding="same", name="conv3",
                                   kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
                                   bias_initializer="zeros")
        shape_a = tuple(input_shape[:-1]) + (self.split,)
        self.conv1.build(shape_a)
        self.conv2.build(shape_a[:-1] + (self.hidden_channels,))
        self.conv3.build(shape_a[:-1] + (self.hidden_channels,))

    def bijector(self, a):
        tfb = _tfp().bijectors
        h = self.conv3(self.conv2(self.conv1(a)))
        n = ops.shape(h)[-1] // 2
        shift, raw = h[..., :n], h[..., n:]
        return tfb.Chain([tfb.Scale(ops.sigmoid(raw + 2.0)), tfb.Shift(shift)])

    def get_config(self):
        return {**super().get_config(), "hidden_channels": self.hidden_channels}


@keras.saving.register_keras_serializable(package="kzoo")
class FlowStep(keras.layers.Layer):
    """One step of flow: actnorm -> invertible 1x1 convolution -> affine coupling."""

    def __init__(self, hidden_channels=64, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_channels = hidden_channels
        self.seed = seed
        self.actnorm = ActNorm(name="actnorm")
        self.invconv = InvertibleConv1x1(seed=seed, name="invconv")
        self.coupling = AffineCoupling(hidden_channels, name="coupling")

    def build(self, input_shape):
        for layer in (self.actnorm, self.invconv, self.coupling):
            layer.build(input_shape)

    def forward(self, h, initialize=False):
        if initialize:
            self.actnorm.initialize(h)
        ldj = 0.0
        for bij in (self.actnorm.bijector(), self.invconv.bijector()):
            ldj = ldj + bij.forward_log_det_jacobian(h, event_ndims=3)
            h = bij.forward(h)
        a, b = h[..., :self.coupling.split], h[..., self.coupling.split:]
        bij = self.coupling.bijector(a)
        ldj = ldj + bij.forward_log_det_jacobian(b, event_ndims=3)
        return ops.concatenate([a, bij.forward(b)], axis=-1), ldj

    def inverse(self, h, bound=None):
        """The inverse step; ``bound``: clip after each part, so that no inf (and then NaN) can arise."""
        clip = (lambda t: t) if bound is None else (lambda t: ops.clip(t, -bound, bound))  # noqa: E731
        a, b = h[..., :self.coupling.split], h[..., self.coupling.split:]
        h = clip(ops.concatenate([a, clip(self.coupling.bijector(a).inverse(b))], axis=-1))
        h = clip(self.invconv.bijector().inverse(h))
        return clip(self.actnorm.bijector().inverse(h))

    def call(self, h):
        return self.forward(h)[0]

    def get_config(self):
        return {**super().get_config(), "hidden_channels": self.hidden_channels, "seed": self.seed}


def squeeze2d(h):
    """(B, H, W, C) -> (B, H/2, W/2, 4C), Glow's space-to-depth."""
    _, hh, ww, c = h.shape
    h = ops.reshape(h, (-1, hh // 2, 2, ww // 2, 2, c))
    h = ops.transpose(h, (0, 1, 3, 5, 2, 4))
    return ops.reshape(h, (-1, hh // 2, ww // 2, 4 * c))


def unsqueeze2d(h):
    _, hh, ww, c4 = h.shape
    c = c4 // 4
    h = ops.reshape(h, (-1, hh, ww, c, 2, 2))
    h = ops.transpose(h, (0, 1, 4, 2, 5, 3))
    return ops.reshape(h, (-1, 2 * hh, 2 * ww, c))


@keras.saving.register_keras_serializable(package="kzoo")
class Glow(_Transformer):
    """Glow (Kingma & Dhariwal 2018): ``levels`` L, ``depth`` K steps per level.

    Each level squeezes (H, W, C) -> (H/2, W/2, 4C), applies K steps of
    actnorm -> invertible 1x1 conv -> affine coupling, and (except the last)
    splits half of the channels off as latent variables with a standard
    Normal prior. ``encode`` returns every latent, flattened in level order:
    (batch, H·W·C), the same dimension as the input. Trained by ``fit`` on the
    negative log-likelihood of dequantized inputs, logged as ``loss`` in
    bits/dim (see the module docstring) and ``nll`` in nats per example.
    Actnorm starts from data (:meth:`initialize`; ``fit`` on an array does it
    on its first 512 examples).
    """

    def __init__(self, input_shape=(8, 8, 1), levels=2, depth=4, hidden_channels=64, num_bins=256, seed=0,
                 name="glow", **kwargs):
        shape = _check_image_shape(input_shape, "Glow")
        super().__init__(shape, num_bins, seed, name=name, **kwargs)
        self.levels = _check_int("levels", levels, 1)
        self.depth = _check_int("depth", depth, 1)
        self.hidden_channels = _check_int("hidden_channels", hidden_channels, 1)
        if shape[0] % 2 ** self.levels or shape[1] % 2 ** self.levels:
            raise ValueError(f"Glow with {levels} levels squeezes the image {levels} times: height and width "
                             f"must be divisible by {2 ** levels}, got input_shape={shape}")
        self.latent_dim = self.dims
        self.steps = [FlowStep(self.hidden_channels, seed=(0 if seed is None else seed) * 1000 + i,
                               name=f"step{i // self.depth + 1}_{i % self.depth + 1}")
                      for i in range(self.levels * self.depth)]
        self.initialized = self.add_weight(shape=(), initializer="zeros", trainable=False, name="initialized",
                                           dtype="float32")
        # shapes of the latent parts (one per level), for decode
        h, w, c = shape
        self._parts = []
        for level in range(self.levels):
            h, w, c = h // 2, w // 2, 4 * c
            for step in self.steps[level * self.depth:(level + 1) * self.depth]:
                step.build((None, h, w, c))
            if level < self.levels - 1:
                self._parts.append((h, w, c // 2))
                c = c - c // 2
        self._parts.append((h, w, c))
        self._trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "nll")}
        self(ops.zeros((1,) + shape))

    def get_config(self):
        return {"input_shape": self.data_shape, "levels": self.levels, "depth": self.depth,
                "hidden_channels": self.hidden_channels, "num_bins": self.num_bins, "seed": self.seed,
                "name": self.name}

    # -- the flow ---------------------------------------------------------------------

    def flow_forward(self, y, initialize=False):
        """y (centred dequantized input) -> (z flat, log|det dz/dy| per example)."""
        zs, ldj, h = [], 0.0, y
        for level in range(self.levels):
            h = squeeze2d(h)
            for step in self.steps[level * self.depth:(level + 1) * self.depth]:
                h, step_ldj = step.forward(h, initialize=initialize)
                ldj = ldj + step_ldj
            if level < self.levels - 1:
                c = self._parts[level][-1]
                zs.append(h[..., :c])
                h = h[..., c:]
        zs.append(h)
        z = ops.concatenate([ops.reshape(part, (-1, int(np.prod(part.shape[1:])))) for part in zs], axis=1)
        return z, ldj

    def flow_inverse(self, z, bound=None):
        """z flat -> y. ``bound``: clip every intermediate to [-bound, bound] (see :meth:`decode`)."""
        sizes = [int(np.prod(p)) for p in self._parts]
        offsets = np.cumsum([0] + sizes)
        parts = [ops.reshape(z[:, offsets[i]:offsets[i + 1]], (-1,) + self._parts[i]) for i in range(len(sizes))]
        h = parts[-1]
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                h = ops.concatenate([parts[level], h], axis=-1)
            for step in reversed(self.steps[level * self.depth:(level + 1) * self.depth]):
                h = step.inverse(h, bound)
            h = unsqueeze2d(h)
        return h

    def log_prob_deq(self, x_deq):
        """log p(x_deq) in nats per example (standard Normal base, change of variables)."""
        tfd = _tfp().distributions
        z, ldj = self.flow_forward(x_deq - 0.5)
        base = tfd.Independent(tfd.Normal(ops.zeros_like(z), ops.ones_like(z)), reinterpreted_batch_ndims=1)
        return base.log_prob(z) + ldj

    def _negative_log_likelihood(self, x, seed_generator):
        k = ops.cast(x, "float32") * (self.num_bins - 1)
        u = keras.random.uniform(ops.shape(k), seed=seed_generator)
        return -self.log_prob_deq((k + u) / self.num_bins)

    def initialize(self, x):
        """Data-dependent actnorm initialization from a batch ``x`` (numpy, in [0, 1])."""
        x = ops.convert_to_tensor(np.asarray(x, "float32"))
        self.flow_forward(self._dequantize(x, noise=True) - 0.5, initialize=True)
        self.initialized.assign(1.0)
        return self

    def fit(self, x=None, *args, **kwargs):
        if float(ops.convert_to_numpy(self.initialized)) == 0.0 and isinstance(x, np.ndarray):
            self.initialize(x[:512])
        return super().fit(x, *args, **kwargs)

    # -- Keras -------------------------------------------------------------------------

    def call(self, x, training=False):
        return self.encode(x)

    def _kzoo_compute(self, data):
        x = self._inputs_of(data)
        nll = -self.log_prob_deq(self._dequantize(x, noise=True))
        bits = ops.mean(self._bits(nll))
        return self._step_output(x, bits, {"loss": bits, "nll": ops.mean(nll)})

    # -- the transformer protocol -----------------------------------------------------

    def encode(self, x, training=False):
        """The latent z (batch, H·W·C) of the bin-centred x."""
        return self.flow_forward(self._dequantize(x, noise=False) - 0.5)[0]

    def decode(self, z, training=False):
        """The inverse of :meth:`encode` (exact for the latents of inputs in [0, 1]), clipped to [0, 1].

        Off the data, the inverse flow can be extremely sensitive: each coupling
        divides by its scale sigmoid(h + 2), which can be tiny there, and LVAT's
        power iteration seeks exactly the latent directions the decoded image is
        most sensitive to. On a small Glow trained on digits, about 1 test image
        in 10 decoded to inf/NaN at ε = 1 along its adversarial direction. So every
        intermediate of the inverse is clipped to ±1e4 (normal values are below
        ~20) and the result to the data range [0, 1].
        """
        return ops.clip(self._quantized_scale(self.flow_inverse(z, bound=1e4) + 0.5), 0.0, 1.0)


# ------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------


def resolve_path(path):
    """A saved transformer's file: ``path`` itself, or ``path + ".keras"`` (folder-like names)."""
    path = os.fspath(path)
    if path.endswith(".keras"):
        return path
    return path + ".keras"


@functools.lru_cache(maxsize=8)
def _load(path, mtime):
    return keras.saving.load_model(path, compile=False)


def load_transformer(path, kind=None):
    """Load a VAE or Glow saved with ``model.save`` / ``kzoo pretrain``; ``kind``: "vae" or "glow" to check.

    The model is cached by path and modification time, so runs and grid
    searches in one process share it.
    """
    _tfp()
    given = os.fspath(path)
    path = given if os.path.isfile(given) else resolve_path(given)
    if not os.path.isfile(path):
        hint = f"train one with `kzoo pretrain {kind or 'glow'} --export {given}`"
        raise FileNotFoundError(f"no saved transformer at {given!r} (looked for {path!r}); {hint}")
    model = _load(os.path.abspath(path), os.path.getmtime(path))
    expected = {"vae": VAE, "glow": Glow}.get(kind)
    if expected is not None and not isinstance(model, expected):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a {expected.__name__} "
                         f"(lvat-{kind} needs a {kind} transformer)")
    if not isinstance(model, _Transformer):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a kzoo VAE or Glow")
    return model


# ------------------------------------------------------------------------------
# The regularizer
# ------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kzoo")
class LVAT(Regularizer):
    """Latent-space VAT: α · E[KL(f(x) || f(Dec(Enc(x) + r_lvat)))] (paper, Algorithm 2).

    Args:
        transformer: a trained :class:`VAE` or :class:`Glow` (or the path of a
            saved one), or any object with ``data_shape``, ``encode`` and ``decode``.
            It is never trained by the classifier's training.
        epsilon: radius ε of the perturbation in the latent space (latent units;
            the paper uses 1.0 for Glow, 1.0-1.5 for the VAE).
        alpha: weight α (the paper fixes 1).
        xi: finite-difference step ξ of the power iteration (in latent units),
            floored per example as in VAT (``relative_xi_floor``).
        power_iterations: K >= 1.
        inputs: "all" (labeled + unlabeled, the paper's), "labeled" or "unlabeled".
        rampup_steps: sigmoid ramp-up of α.
    """

    name = "lvat"

    def __init__(self, transformer, epsilon=1.0, alpha=1.0, xi=1e-6, power_iterations=1, inputs="all",
                 relative_xi_floor=True, rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.epsilon = kops.check_positive("epsilon (latent units)", epsilon)
        self.alpha = kops.check_positive("alpha", alpha, allow_zero=True)
        self.xi = kops.check_positive("xi", xi)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) or power_iterations < 1:
            raise ValueError(f"power_iterations (K) must be an integer >= 1, got {power_iterations!r}")
        self.power_iterations = power_iterations
        self.inputs = _check_inputs(inputs)
        self.relative_xi_floor = bool(relative_xi_floor)
        _tfp()
        self.transformer_path = None
        if isinstance(transformer, (str, os.PathLike)):
            self.transformer_path = os.fspath(transformer)
            transformer = load_transformer(transformer)
        missing = [a for a in ("data_shape", "encode", "decode") if not hasattr(transformer, a)]
        if missing:
            raise TypeError(f"transformer must be a trained kzoo.models.VAE or Glow (or have data_shape, encode "
                            f"and decode); {type(transformer).__name__} lacks {', '.join(missing)}")
        steps = getattr(transformer, "trained_steps", None)
        if steps is not None and float(ops.convert_to_numpy(steps)) == 0.0:
            warnings.warn(f"the transformer {getattr(transformer, 'name', '')!r} has not been trained (0 steps): "
                          "its latent space is random, so LVAT's perturbations are meaningless. Train it first "
                          "(transformer.fit(x) or `kzoo pretrain vae|glow`).", UserWarning, stacklevel=2)
        self.transformer = transformer
        self.weights = {self.name: self.alpha}

    # The transformer is held by this plain object (not a Keras layer), so a
    # kzoo.Regularized model does not track it: it is not among the trained
    # variables, and save/export never include it.

    def check_input_shape(self, input_shape):
        shape = tuple(int(s) for s in input_shape)
        if shape != tuple(self.transformer.data_shape):
            raise ValueError(
                f"the transformer's input shape {tuple(self.transformer.data_shape)} does not match the "
                f"classifier's {shape}: LVAT decodes perturbed latents into classifier inputs, so both must "
                "take the same inputs (train the transformer on the classifier's data, unflattened images)"
            )

    def check_network(self, network):
        shape = getattr(network, "input_shape", None)
        if isinstance(shape, tuple) and len(shape) > 1 and all(s is not None for s in shape[1:]):
            self.check_input_shape(shape[1:])

    def adversarial(self, ctx, x, logits):
        """``(z, r_lvat, x_adv)`` for inputs ``x`` with clean logits ``logits`` (all constants)."""
        self.check_input_shape(x.shape[1:])
        z = ops.stop_gradient(self.transformer.encode(x))

        def perturbed(r):
            return ctx.forward(self.transformer.decode(z + r))

        d = power_iteration(ctx, z, logits, self.xi, self.power_iterations, ctx.seed_generator,
                            relative_xi_floor=self.relative_xi_floor, perturbed=perturbed)
        r = self.epsilon * d
        return z, r, ops.stop_gradient(self.transformer.decode(z + r))

    def terms(self, ctx):
        x, logits = ctx.inputs(self.inputs)
        _, _, x_adv = self.adversarial(ctx, x, logits)
        kl = kops.kl_from_logits(ops.stop_gradient(logits), ctx.forward(x_adv))
        return {self.name: ops.mean(kl)}

    def get_config(self):
        return {
            "transformer": self.transformer_path or f"<{type(self.transformer).__name__}>",
            "epsilon": self.epsilon,
            "alpha": self.alpha,
            "xi": self.xi,
            "power_iterations": self.power_iterations,
            "inputs": self.inputs,
            "relative_xi_floor": self.relative_xi_floor,
            **super().get_config(),
        }

    def serialize(self):
        if self.transformer_path is None:
            raise TypeError(
                "cannot save a model whose LVAT regularizer holds an in-memory transformer: build it from the "
                "transformer's .keras file (LVAT(transformer='glow.keras', ...), as `kzoo pretrain glow|vae` writes "
                "it), or save only the classifier (model.network.save(...)) or export it (model.export(...))")
        return super().serialize()


def adversarial_examples(regularizer, classifier, x, seed=0, batch_size=512, training=False):
    """``(x_rec, x_adv, z, r)`` as numpy for inputs ``x``: Dec(Enc(x)) and Dec(Enc(x) + r_lvat).

    What the paper's Figs. 2-4 show; the classifier in inference mode by default.
    """
    seed_generator = keras.random.SeedGenerator(seed)
    out = {"x_rec": [], "x_adv": [], "z": [], "r": []}
    for start in range(0, len(x), batch_size):
        xb = ops.convert_to_tensor(np.asarray(x[start:start + batch_size], "float32"))
        ctx = StepContext(classifier, xb, None, None, None, None, seed_generator, training=training)
        z, r, x_adv = regularizer.adversarial(ctx, xb, ctx.forward(xb))
        out["x_rec"].append(ops.convert_to_numpy(regularizer.transformer.decode(z)))
        out["x_adv"].append(ops.convert_to_numpy(x_adv))
        out["z"].append(ops.convert_to_numpy(z))
        out["r"].append(ops.convert_to_numpy(r))
    return tuple(np.concatenate(out[k]) for k in ("x_rec", "x_adv", "z", "r"))


# ------------------------------------------------------------------------------
# Registry glue (kzoo.methods): building from hyperparameters, pretraining
# ------------------------------------------------------------------------------


def build_regularizer(kind, hp):
    """The LVAT regularizer of method ``lvat-KIND`` from its resolved hyperparameters."""
    path = hp.get("transformer")
    if not path:
        raise ValueError(f"lvat-{kind} needs --transformer PATH: a {kind} saved by "
                         f"`kzoo pretrain {kind} --dataset DATASET --export PATH`")
    try:
        transformer = load_transformer(path, kind)
    except (FileNotFoundError, ImportError) as e:
        raise ValueError(str(e)) from e
    reg = LVAT(transformer, epsilon=hp["epsilon"], alpha=hp["alpha"], xi=hp["xi"],
               power_iterations=hp["power_iterations"], rampup_steps=hp["rampup_steps"])
    reg.transformer_path = path
    if hp.get("entmin"):
        from kzoo.vat import EntropyMinimization

        reg = reg + EntropyMinimization(weight=hp["entmin"], rampup_steps=hp["rampup_steps"])
    return reg


def input_batches(x, batch_size, seed=0):
    """Endless shuffled batches of ``x`` alone (epoch by epoch), for ``fit`` of a transformer."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, "float32")
    batch_size = min(batch_size, len(x))
    while True:
        order = rng.permutation(len(x))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield (x[order[start:start + batch_size]],)


def invertibility_error(model, x, batch_size=512):
    """max |x - Dec(Enc(x))| over ``x``."""
    worst = 0.0
    for start in range(0, len(x), batch_size):
        xb = np.asarray(x[start:start + batch_size], "float32")
        rec = ops.convert_to_numpy(model.reconstruct(ops.convert_to_tensor(xb)))
        worst = max(worst, float(np.max(np.abs(rec - xb))))
    return worst


def pretrain(kind, ctx):
    """Train a VAE or Glow on ``ctx.dataset``'s training inputs (no labels), save it; returns metrics."""
    from kzoo.experiment import ConfigError
    from kzoo.export import save_keras_atomic

    try:
        _tfp()
    except ImportError as e:
        raise ConfigError(str(e)) from e
    ds, hp = ctx.dataset, ctx.hyperparameters
    try:
        shape = _check_image_shape(ds.input_shape, f"kzoo pretrain {kind}")
        bins = num_bins_of(ds.x_train)
        if kind == "vae":
            model = VAE(shape, latent_dim=hp["latent_dim"], channels=hp["channels"], likelihood=hp["likelihood"],
                        num_bins=bins, seed=ctx.seed)
            lr = 1e-3
        else:
            model = Glow(shape, levels=hp["levels"], depth=hp["depth"], hidden_channels=hp["hidden_channels"],
                         num_bins=bins, seed=ctx.seed)
            lr = 1e-3
    except ValueError as e:
        raise ConfigError(str(e)) from e
    export = resolve_path(ctx.export)
    model.compile(optimizer=keras.optimizers.Adam(ctx.learning_rate or lr))
    if kind == "glow":
        model.initialize(ds.x_train[:512])
    ctx.fit(model, input_batches(ds.x_train, ctx.batch_size, ctx.seed))
    metrics = {"num_bins": bins, "latent_dim": int(model.latent_dim),
               "parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables))}
    if kind == "glow" or model.likelihood == "normal":
        metrics["train_bits_per_dim"] = model.bits_per_dim(ds.x_train)
        metrics["test_bits_per_dim"] = model.bits_per_dim(ds.x_test)
    metrics["test_max_reconstruction_error"] = invertibility_error(model, ds.x_test)
    x_test = np.asarray(ds.x_test, "float32")
    rec = ops.convert_to_numpy(model.reconstruct(ops.convert_to_tensor(x_test)))
    metrics["test_mean_l2_reconstruction_error"] = float(np.mean(np.sqrt(((rec - x_test) ** 2).reshape(len(x_test), -1).sum(1))))
    metrics["export"] = save_keras_atomic(model, export)
    return metrics
