"""Glow (Kingma & Dhariwal): the multi-scale flow used as the transformer of ``lvat-glow``.
"""

from kzoo.errors import InvalidArgumentError
import keras
import numpy as np
from keras import ops

from kzoo.networks.flows import _check_image_shape, _check_int, _tfp, _Transformer


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
            raise InvalidArgumentError(f"Glow with {levels} levels squeezes the image {levels} times: height and width "
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

    def train_step_loss(self, data):
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
