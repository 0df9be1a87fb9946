"""The GAN family's networks: weight-normalized layers and the architectures of paper 000 (Tables A3, A4, A6).

Used by :mod:`kzoo.gan` (the math) and :mod:`kzoo.methods.gan` (training loops); the
names are also importable from :mod:`kzoo.gan`.
"""

from kzoo.errors import InvalidArgumentError
import keras
import numpy as np
from keras import ops


def latent_dim_of(generator):
    shape = generator.input_shape
    if isinstance(shape, list) or len(shape) != 2:
        raise InvalidArgumentError(f"the generator must take one flat latent vector (batch, dim); its input shape is {shape}")
    return int(shape[1])



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
    raise InvalidArgumentError(f"conv GANs need an even image size of at least 4, got {size}")


def _check_image_shape(shape, what):
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[0] != shape[1]:
        raise InvalidArgumentError(f"the conv {what} needs square images (size, size, channels), got {shape}; "
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
        raise InvalidArgumentError(f"arch must be auto, conv or mlp, got {arch!r}")
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
        raise InvalidArgumentError(f"discriminator must be one of {', '.join(SSGAN_DISCRIMINATORS)}, got {discriminator!r}")
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
