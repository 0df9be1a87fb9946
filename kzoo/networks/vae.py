"""The LVAT paper's VAE (Table 2, scaled to the input size): a transformer for ``lvat-vae``.
"""

from kzoo.errors import InvalidArgumentError
import math

import keras
from keras import ops

from kzoo.networks.flows import _check_image_shape, _check_int, _tfp, _Transformer


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

    Sequences ``(steps, channels)`` (MNIST-1D) get the same network with 1-D layers (kernel 2, stride 2
    convolutions down to about 5 steps) and, being real-valued (standardized, unbounded), a Normal
    likelihood with mean Dec(z) (linear) on the raw values: no dequantization, bits/dim of the density.

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
        shape = _check_image_shape(input_shape, "VAE", sequences=True)
        super().__init__(shape, num_bins, seed, name=name, **kwargs)
        if likelihood not in ("normal", "bernoulli"):
            raise InvalidArgumentError(f"likelihood must be 'normal' or 'bernoulli', got {likelihood!r}")
        self.continuous = len(shape) == 2  # real-valued sequences: no dequantization, a linear mean
        if self.continuous and likelihood == "bernoulli":
            raise InvalidArgumentError("likelihood='bernoulli' needs inputs in [0, 1] (images); sequences are "
                                       "real-valued: use likelihood='normal'")
        self.likelihood = likelihood
        self.latent_dim = (min(128, max(2, self.dims // 4)) if latent_dim is None
                           else _check_int("latent_dim", latent_dim, 1))
        self.channels = _check_int("channels", channels, 1)
        base = list(shape[:-1])
        stages = 0
        while all(b % 2 == 0 and b // 2 >= 4 for b in base) and stages < 3:
            base, stages = [b // 2 for b in base], stages + 1
        self.stages = stages
        self.encoder = self._make_encoder(shape, stages)
        self.decoder = self._make_decoder(shape, stages, tuple(base))
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
        conv = layers.Conv1D if len(shape) == 2 else layers.Conv2D
        for i in range(stages):
            h = conv(self.channels * 2 ** i, 2, strides=2, padding="valid", name=f"conv{i + 1}")(h)
            h = layers.BatchNormalization(name=f"bn{i + 1}")(h)
            h = layers.Activation("tanh" if i == stages - 1 else "relu", name=f"act{i + 1}")(h)
        h = layers.Flatten(name="flatten")(h)
        out = layers.Dense(2 * self.latent_dim, name="posterior")(h)
        return keras.Model(inp, out, name="encoder")

    def _make_decoder(self, shape, stages, base):
        layers = keras.layers
        inp = keras.Input((self.latent_dim,))
        deconv, conv = ((layers.Conv1DTranspose, layers.Conv1D) if len(shape) == 2
                        else (layers.Conv2DTranspose, layers.Conv2D))
        h = layers.Dense(math.prod(base) * 32, name="dense")(inp)
        h = layers.LeakyReLU(negative_slope=0.1, name="lrelu")(h)
        h = layers.Reshape(tuple(base) + (32,), name="reshape")(h)
        for i in range(stages):
            h = deconv(self.channels * 2 ** (stages - 1 - i), 2, strides=2, padding="same", name=f"deconv{i + 1}")(h)
            h = layers.BatchNormalization(name=f"bn{i + 1}")(h)
            h = layers.ReLU(name=f"relu{i + 1}")(h)
        out = conv(shape[-1], 1, name="logits")(h)
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
        ndims = len(self.data_shape)
        if self.likelihood == "bernoulli":
            return tfd.Independent(tfd.Bernoulli(logits=logits, dtype="float32"), reinterpreted_batch_ndims=ndims)
        scale = ops.exp(ops.convert_to_tensor(self.log_scale))
        mean = logits if self.continuous else ops.sigmoid(logits)
        return tfd.Independent(tfd.Normal(mean, scale), reinterpreted_batch_ndims=ndims)

    def _model_space(self, x, noise):
        if self.continuous or self.likelihood != "normal":
            return ops.cast(x, "float32")
        return self._dequantize(x, noise)

    def _bits(self, nll_nats):
        if self.continuous:  # a density of real values: bits/dim of the density itself, no quantization bins
            return nll_nats / (self.dims * math.log(2.0))
        return super()._bits(nll_nats)

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
            raise InvalidArgumentError("bits/dim needs a density: the Bernoulli VAE on continuous inputs has none "
                             "(use likelihood='normal')")
        return super().bits_per_dim(x, batch_size, samples, seed)

    # -- Keras -----------------------------------------------------------------------

    def call(self, x, training=False):
        return self.decode(self.encode(x, training=training), training=training)

    def train_step_loss(self, data):
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
        return self._quantized_scale(mean) if self.likelihood == "normal" and not self.continuous else mean
