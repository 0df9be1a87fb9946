"""ALI / BiGAN networks: maxout layers, the MLP and conv encoder/decoder/joint discriminator, and the
paper's 32×32 models (Appendix A, Tables 3 and 4). Also importable from :mod:`kzoo.ali`.
"""

from kzoo.errors import InvalidArgumentError
import keras
import numpy as np
from keras import layers, ops

from kzoo.checks import check_positive


LOG_STD = "log_std"


# --------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kzoo")
class Maxout(layers.Layer):
    """Maxout units (Goodfellow et al. 2013): the max over ``pieces`` affine maps, ``units`` outputs."""

    def __init__(self, units, pieces=2, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1 or int(pieces) < 1:
            raise InvalidArgumentError(f"Maxout needs units >= 1 and pieces >= 1, got units={units}, pieces={pieces}")
        self.units, self.pieces = int(units), int(pieces)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dense = layers.Dense(self.units * self.pieces, kernel_initializer=self.kernel_initializer)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x):
        h = self.dense(x)
        h = ops.reshape(h, (-1, self.units, self.pieces))
        return ops.max(h, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "pieces": self.pieces,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


# --------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------


def _init(std):
    return keras.initializers.RandomNormal(stddev=std) if std else "glorot_uniform"


def _encoder_heads(h, latent_dim, deterministic, init, name):
    if deterministic:
        z = layers.Dense(latent_dim, kernel_initializer=init, name="z")(h)
        return z
    mean = layers.Dense(latent_dim, kernel_initializer=init, name="mean")(h)
    log_std = layers.Dense(latent_dim, kernel_initializer=init, name=LOG_STD)(h)
    return [mean, log_std]


def _check_arch(latent_dim, width, num_classes):
    if int(latent_dim) < 1:
        raise InvalidArgumentError(f"latent_dim must be >= 1, got {latent_dim}")
    check_positive("width", width)
    if num_classes is not None and int(num_classes) < 2:
        raise InvalidArgumentError(f"num_classes must be >= 2 (or None for unsupervised ALI), got {num_classes}")


def networks_mlp(input_dim=2, latent_dim=2, hidden=400, decoder_layers=4, disc_hidden=200, maxout_pieces=5,
                 num_classes=None, deterministic=False, init_std=0.02, dropout=0.0, width=1.0, input_noise=0.0):
    """Encoder, decoder and joint discriminator for vector data (the ALI authors' 25-Gaussian model).

    The paper's toy experiment (§4.5) follows the authors' released code: encoder
    2 hidden layers of 400 ReLU units with batch norm, decoder 4 such layers,
    linear output; discriminator on ``concat(x, z)``: 3 maxout layers of 200
    units × 5 pieces, one logit; weights N(0, 0.02²), zero biases. ``width``
    scales every hidden size. ``num_classes``: K logits (semi-supervised).
    ``input_dim`` may also be an image shape ``(h, w, c)``: the networks then
    flatten it, and the decoder ends in a sigmoid (images in [0, 1]) reshaped to it; a sequence shape
    ``(steps, channels)`` (MNIST-1D: standardized, unbounded) is flattened too, with a linear decoder output.
    ``input_noise``: std of Gaussian noise on the discriminator's x in training
    (Salimans et al.'s MLP discriminator uses 0.3).
    """
    _check_arch(latent_dim, width, num_classes)
    shape = (int(input_dim),) if np.ndim(input_dim) == 0 else tuple(int(s) for s in input_dim)
    flat = int(np.prod(shape))
    if flat < 1 or int(decoder_layers) < 1:
        raise InvalidArgumentError(f"input_dim and decoder_layers must be >= 1, got {input_dim}, {decoder_layers}")
    check_positive("input_noise", input_noise, allow_zero=True)
    image = len(shape) == 3  # images in [0, 1]: a sigmoid output; sequences and vectors: linear
    shaped = len(shape) > 1
    hid = max(1, int(round(hidden * width)))
    dhid = max(1, int(round(disc_hidden * width)))
    init = _init(init_std)

    def stack(h, n, tag):
        for i in range(n):
            h = layers.Dense(hid, use_bias=False, kernel_initializer=init, name=f"{tag}{i + 1}")(h)
            h = layers.BatchNormalization(name=f"{tag}_bn{i + 1}")(h)
            h = layers.ReLU(name=f"{tag}_relu{i + 1}")(h)
        return h

    def flatten(x, tag):
        return layers.Flatten(name=f"{tag}_flatten")(x) if shaped else x

    x = keras.Input(shape, name="x")
    encoder = keras.Model(x, _encoder_heads(stack(flatten(x, "enc"), 2, "enc"), latent_dim, deterministic, init,
                                            "encoder"), name="encoder")
    z = keras.Input((latent_dim,), name="z")
    out = layers.Dense(flat, activation="sigmoid" if image else None, kernel_initializer=init, name="x_out")(
        stack(z, int(decoder_layers), "dec"))
    if shaped:
        out = layers.Reshape(shape, name="x_image")(out)
    decoder = keras.Model(z, out, name="decoder")
    xd, zd = keras.Input(shape, name="x"), keras.Input((latent_dim,), name="z")
    hx = flatten(xd, "d")
    if input_noise:
        hx = layers.GaussianNoise(input_noise, name="x_noise")(hx)
    discriminator = _maxout_discriminator([xd, zd], dhid, maxout_pieces, num_classes, init, dropout, "discriminator",
                                          features=[hx, zd])
    return encoder, decoder, discriminator


def _maxout_discriminator(inputs, hidden, pieces, num_classes, init, dropout, name, concat=True, features=None):
    features = inputs if features is None else features
    h = layers.Concatenate(name="xz")(features) if concat else features
    for i in range(3):
        if dropout:
            h = layers.Dropout(dropout, name=f"drop{i + 1}")(h)
        h = Maxout(hidden, pieces, kernel_initializer=init, name=f"maxout{i + 1}")(h)
    out = layers.Dense(num_classes or 1, kernel_initializer=init, name="logits")(h)
    return keras.Model(inputs, out, name=name)


def x_discriminator_mlp(input_dim=2, disc_hidden=200, maxout_pieces=5, init_std=0.02, dropout=0.0, width=1.0):
    """The GAN baseline's discriminator: :func:`networks_mlp`'s, on ``x`` alone (paper §4.5)."""
    init = _init(init_std)
    dhid = max(1, int(round(disc_hidden * width)))
    return _maxout_discriminator(keras.Input((input_dim,), name="x"), dhid, maxout_pieces, None, init, dropout,
                                 "x_discriminator", concat=False)


def networks_conv(input_shape=(8, 8, 1), latent_dim=32, num_classes=None, deterministic=False, width=1.0,
                  init_std=0.01, leak=0.01, dropout=0.2):
    """Convolutional ALI networks for small images (the paper's SVHN model, Table 4, scaled down).

    The SVHN model (32×32 input, 5 conv layers with two stride-2 steps to a 1×1
    map, 256 latents) is scaled to inputs of side 8: the encoder keeps the pattern
    conv 3×3 (32) → conv 4×4 stride 2 (64) → conv 4×4 valid (128) → 1×1 (256),
    batch norm + leaky ReLU (slope 0.01), linear heads; the decoder mirrors it with
    transposed convolutions and a sigmoid output; D(x) has the same convolutions
    without batch norm and with dropout 0.2, D(z) two 1×1 layers (dense, 256), and
    D(x, z) two 512-unit layers on their concatenation, then the logits. Channel
    counts are the paper's halved (then × ``width``); inputs of other sides work
    as long as side/2 >= 4. Output in [0, 1] (sigmoid) like the paper's. The
    paper's own 32×32 models, layer by layer: :func:`networks_paper`.
    """
    _check_arch(latent_dim, width, num_classes)
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3 or input_shape[0] != input_shape[1] or input_shape[0] < 8 or input_shape[0] % 2:
        raise InvalidArgumentError(f"networks_conv needs square images of even side >= 8 (h, w, c), got {input_shape}")
    ch = lambda c: max(1, int(round(c * width)))  # noqa: E731
    init = _init(init_std)
    side, channels = input_shape[0], input_shape[2]

    def act(h, name):
        return layers.LeakyReLU(negative_slope=leak, name=name)(h)

    def conv_stack(h, bn, tag, drop):
        spec = [(ch(32), 3, 1, "same"), (ch(64), 4, 2, "same"), (ch(128), side // 2, 1, "valid")]
        for i, (f, k, s, pad) in enumerate(spec):
            if drop:
                h = layers.Dropout(drop, name=f"{tag}_drop{i + 1}")(h)
            h = layers.Conv2D(f, k, strides=s, padding=pad, use_bias=not bn, kernel_initializer=init,
                              name=f"{tag}_conv{i + 1}")(h)
            if bn:
                h = layers.BatchNormalization(name=f"{tag}_bn{i + 1}")(h)
            h = act(h, f"{tag}_act{i + 1}")
        return layers.Flatten(name=f"{tag}_flat")(h)

    x = keras.Input(input_shape, name="x")
    h = conv_stack(x, True, "enc", 0.0)
    h = layers.Dense(ch(256), use_bias=False, kernel_initializer=init, name="enc_dense")(h)
    h = act(layers.BatchNormalization(name="enc_bn4")(h), "enc_act4")
    encoder = keras.Model(x, _encoder_heads(h, latent_dim, deterministic, init, "encoder"), name="encoder")

    z = keras.Input((latent_dim,), name="z")
    h = layers.Reshape((1, 1, latent_dim), name="dec_reshape")(z)
    for i, (f, k, s, pad) in enumerate([(ch(128), side // 2, 1, "valid"), (ch(64), 4, 2, "same"),
                                        (ch(32), 3, 1, "same")]):
        h = layers.Conv2DTranspose(f, k, strides=s, padding=pad, use_bias=False, kernel_initializer=init,
                                   name=f"dec_deconv{i + 1}")(h)
        h = act(layers.BatchNormalization(name=f"dec_bn{i + 1}")(h), f"dec_act{i + 1}")
    out = layers.Conv2D(channels, 1, activation="sigmoid", kernel_initializer=init, name="x_out")(h)
    decoder = keras.Model(z, out, name="decoder")

    xd, zd = keras.Input(input_shape, name="x"), keras.Input((latent_dim,), name="z")
    hx = conv_stack(xd, False, "dx", dropout)
    hz = zd
    for i in range(2):
        hz = layers.Dropout(dropout, name=f"dz_drop{i + 1}")(hz) if dropout else hz
        hz = act(layers.Dense(ch(256), kernel_initializer=init, name=f"dz_dense{i + 1}")(hz), f"dz_act{i + 1}")
    h = layers.Concatenate(name="xz")([hx, hz])
    for i in range(2):
        h = layers.Dropout(dropout, name=f"dxz_drop{i + 1}")(h) if dropout else h
        h = act(layers.Dense(ch(512), kernel_initializer=init, name=f"dxz_dense{i + 1}")(h), f"dxz_act{i + 1}")
    h = layers.Dropout(dropout, name="dxz_drop3")(h) if dropout else h
    logits = layers.Dense(num_classes or 1, kernel_initializer=init, name="logits")(h)
    discriminator = keras.Model([xd, zd], logits, name="discriminator")
    return encoder, decoder, discriminator


# The paper's two 32×32 models (Appendix A). Encoder and D(x) share the conv stack below
# (valid padding: 32 -> 28 -> 13 -> 10 -> 4 -> 1); the decoder mirrors it with transposed
# convolutions (1 -> 4 -> 10 -> 13 -> 28 -> 32). (feature maps, kernel, stride).
PAPER_CONVS = ((32, 5, 1), (64, 4, 2), (128, 4, 1), (256, 4, 2), (512, 4, 1))
PAPER_DECONVS = ((256, 4, 1), (128, 4, 2), (64, 4, 1), (32, 4, 2), (32, 5, 1))
# per dataset: latent size, leaky-ReLU slope, maxout pieces in D (None: leaky ReLU), batch norm in D(x)'s
# layers 2-5, dropout before each layer of D(x) / D(z) / D(x, z) (the last entry: before the logits)
PAPER_MODELS = {
    "svhn": {"latent_dim": 256, "leak": 0.01, "maxout_pieces": None, "dx_batchnorm": True,
             "dx_dropout": (0.2,) * 5, "dz_dropout": (0.2, 0.2), "dxz_dropout": (0.2, 0.2, 0.2),
             "table": "Table 4"},
    "cifar10": {"latent_dim": 64, "leak": 0.1, "maxout_pieces": 2, "dx_batchnorm": False,
                "dx_dropout": (0.2, 0.5, 0.5, 0.5, 0.5), "dz_dropout": (0.2, 0.5), "dxz_dropout": (0.5, 0.5, 0.5),
                "table": "Table 3"},
}


@keras.saving.register_keras_serializable(package="kzoo")
class ChannelMaxout(layers.Layer):
    """Maxout over groups of ``pieces`` consecutive channels (last axis): ``C·pieces`` maps -> ``C`` maps."""

    def __init__(self, pieces=2, **kwargs):
        super().__init__(**kwargs)
        if int(pieces) < 1:
            raise InvalidArgumentError(f"ChannelMaxout needs pieces >= 1, got {pieces}")
        self.pieces = int(pieces)

    def call(self, x):
        c = x.shape[-1]
        if c % self.pieces:
            raise InvalidArgumentError(f"ChannelMaxout: {c} channels are not a multiple of pieces={self.pieces}")
        h = ops.reshape(x, (-1,) + tuple(x.shape[1:-1]) + (c // self.pieces, self.pieces))
        return ops.max(h, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] // self.pieces,)

    def get_config(self):
        return {**super().get_config(), "pieces": self.pieces}


def networks_paper(dataset="svhn", input_shape=(32, 32, 3), latent_dim=None, num_classes=None,
                   deterministic=False, width=1.0, init_std=0.01):
    """The paper's unsupervised 32×32 models, layer by layer (Appendix A): ``dataset`` "svhn" or "cifar10".

    Shared by both (convolutions with valid padding, weights N(0, 0.01²), zero biases;
    a layer followed by batch norm has no bias; "1×1" layers on 1×1 maps are Dense layers):

    ======================  ======  ======  ====  ===  ==========================
    G_z(x), 32×32 input     kernel  stride  maps  BN   nonlinearity
    ======================  ======  ======  ====  ===  ==========================
    conv                    5×5     1       32    ✓    leaky ReLU
    conv                    4×4     2       64    ✓    leaky ReLU
    conv                    4×4     1       128   ✓    leaky ReLU
    conv                    4×4     2       256   ✓    leaky ReLU
    conv                    4×4     1       512   ✓    leaky ReLU
    conv                    1×1     1       512   ✓    leaky ReLU
    conv                    1×1     1       2·L   ×    linear: [mean, log σ]
    G_x(z), L×1×1 input
    transposed conv         4×4     1       256   ✓    leaky ReLU
    transposed conv         4×4     2       128   ✓    leaky ReLU
    transposed conv         4×4     1       64    ✓    leaky ReLU
    transposed conv         4×4     2       32    ✓    leaky ReLU
    transposed conv         5×5     1       32    ✓    leaky ReLU
    conv                    1×1     1       32    ✓    leaky ReLU
    conv                    1×1     1       3     ×    sigmoid
    D(x): the encoder's five convolutions, no BN on the first; D(z): two 1×1 layers of
    512; D(x, z) on their concatenation (1024): two 1×1 layers of 1024, then 1 logit
    ======================  ======  ======  ====  ===  ==========================

    SVHN (Table 4, ``dataset="svhn"``): L = 256 latents, leaky ReLU slope 0.01, D(x)
    with batch norm on its layers 2-5, every discriminator layer leaky ReLU with
    dropout 0.2 on its input (the logits' too).

    CIFAR-10 (Table 3, ``dataset="cifar10"``): L = 64 latents, leaky ReLU slope 0.1,
    every discriminator layer a maxout of 2 pieces (no batch norm), dropout 0.2 on the
    inputs of the first layers of D(x) and D(z), 0.5 on every other discriminator
    layer's (the logits' too). "maps" of a maxout layer are its outputs (the layer
    computes 2× as many pieces), so D(x, z)'s input has the 1024 channels the table
    says; the authors' released code instead halves the maps in the maxout (512).

    Both tables' training settings (the recipe's, not this function's): Adam
    (α = 1e-4, β1 = 0.5; the table's "β2 = 10⁻³" is Blocks' 1 − β2, i.e. 0.999),
    batch size 100; 100 epochs (SVHN) / 6475 epochs (CIFAR-10).

    ``num_classes``: K logits instead of 1 (the semi-supervised K+1-way discriminator
    of §4.3); ``latent_dim`` (default the table's), ``width`` scales every channel count.
    """
    if dataset not in PAPER_MODELS:
        raise InvalidArgumentError(f"the paper's models are for {', '.join(PAPER_MODELS)}, got dataset={dataset!r}")
    cfg = PAPER_MODELS[dataset]
    latent_dim = cfg["latent_dim"] if latent_dim is None else int(latent_dim)
    _check_arch(latent_dim, width, num_classes)
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3 or input_shape[:2] != (32, 32):
        raise InvalidArgumentError(f"the paper's {dataset} model takes 32×32 images (32, 32, channels), got {input_shape}; "
                         "use architecture='conv' for other sizes")
    ch = lambda c: max(1, int(round(c * width)))  # noqa: E731
    init, leak, pieces = _init(init_std), cfg["leak"], cfg["maxout_pieces"]

    def act(h, name):
        return layers.LeakyReLU(negative_slope=leak, name=name)(h)

    def conv(h, f, k, s, bn, name, transpose=False):
        kind = layers.Conv2DTranspose if transpose else layers.Conv2D
        return kind(f, k, strides=s, padding="valid", use_bias=not bn, kernel_initializer=init, name=name)(h)

    def bn_act(h, tag, i):
        return act(layers.BatchNormalization(name=f"{tag}_bn{i}")(h), f"{tag}_act{i}")

    x = keras.Input(input_shape, name="x")
    h = x
    for i, (f, k, s) in enumerate(PAPER_CONVS, 1):
        h = bn_act(conv(h, ch(f), k, s, True, f"enc_conv{i}"), "enc", i)
    h = layers.Flatten(name="enc_flat")(h)
    h = bn_act(layers.Dense(ch(512), use_bias=False, kernel_initializer=init, name="enc_dense6")(h), "enc", 6)
    encoder = keras.Model(x, _encoder_heads(h, latent_dim, deterministic, init, "encoder"), name="encoder")

    z = keras.Input((latent_dim,), name="z")
    h = layers.Reshape((1, 1, latent_dim), name="dec_reshape")(z)
    for i, (f, k, s) in enumerate(PAPER_DECONVS, 1):
        h = bn_act(conv(h, ch(f), k, s, True, f"dec_deconv{i}", transpose=True), "dec", i)
    h = bn_act(layers.Conv2D(ch(32), 1, use_bias=False, kernel_initializer=init, name="dec_conv6")(h), "dec", 6)
    out = layers.Conv2D(input_shape[2], 1, activation="sigmoid", kernel_initializer=init, name="x_out")(h)
    decoder = keras.Model(z, out, name="decoder")

    def unit(h, f, tag, i, drop, spatial=None, bn=False):
        """One discriminator layer: dropout on its input, conv/dense, [BN], leaky ReLU or maxout."""
        if drop:
            h = layers.Dropout(drop, name=f"{tag}_drop{i}")(h)
        n = f * (pieces or 1)
        if spatial:
            h = conv(h, n, spatial[0], spatial[1], bn, f"{tag}_conv{i}")
        else:
            h = layers.Dense(n, use_bias=not bn, kernel_initializer=init, name=f"{tag}_dense{i}")(h)
        if bn:
            h = layers.BatchNormalization(name=f"{tag}_bn{i}")(h)
        return ChannelMaxout(pieces, name=f"{tag}_maxout{i}")(h) if pieces else act(h, f"{tag}_act{i}")

    xd, zd = keras.Input(input_shape, name="x"), keras.Input((latent_dim,), name="z")
    hx = xd
    for i, ((f, k, s), drop) in enumerate(zip(PAPER_CONVS, cfg["dx_dropout"]), 1):
        hx = unit(hx, ch(f), "dx", i, drop, spatial=(k, s), bn=cfg["dx_batchnorm"] and i > 1)
    hx = layers.Flatten(name="dx_flat")(hx)
    hz = zd
    for i, drop in enumerate(cfg["dz_dropout"], 1):
        hz = unit(hz, ch(512), "dz", i, drop)
    h = layers.Concatenate(name="xz")([hx, hz])
    for i, drop in enumerate(cfg["dxz_dropout"][:-1], 1):
        h = unit(h, ch(1024), "dxz", i, drop)
    h = layers.Dropout(cfg["dxz_dropout"][-1], name="dxz_drop3")(h)
    logits = layers.Dense(num_classes or 1, kernel_initializer=init, name="logits")(h)
    discriminator = keras.Model([xd, zd], logits, name="discriminator")
    return encoder, decoder, discriminator


def networks_svhn(**kwargs):
    """The paper's SVHN model (Table 4): :func:`networks_paper` with ``dataset="svhn"``."""
    return networks_paper("svhn", **kwargs)


def networks_cifar10(**kwargs):
    """The paper's CIFAR-10 model (Table 3, maxout discriminator): :func:`networks_paper` with ``dataset="cifar10"``."""
    return networks_paper("cifar10", **kwargs)


ARCHITECTURES = ("auto", "conv", "mlp", "svhn", "cifar10")


def networks_for(input_shape, latent_dim=None, num_classes=None, deterministic=False, width=1.0, architecture="auto",
                 **kwargs):
    """The default networks for a dataset's input shape.

    ``architecture="auto"`` and ``"mlp"``: :func:`networks_mlp` (on images and sequences it
    flattens them, uses 32 latents and puts Gaussian noise of std 0.3 on the
    discriminator's input, as Salimans et al.'s MLP discriminator); ``"conv"``:
    :func:`networks_conv` (images only); ``"svhn"`` / ``"cifar10"``: the paper's
    32×32 models of Tables 4 / 3 (:func:`networks_paper`; latent size 256 / 64
    unless given). "auto" picks the MLP on images too: on
    CPU it trains about 4× faster per step than the conv model, and on digits
    its adversarial game stays balanced (D(real) and D(fake) near 0.5) where the
    conv discriminator wins outright (D(fake) → 0) at the default learning rate.
    """
    input_shape = tuple(input_shape)
    if architecture not in ARCHITECTURES:
        raise InvalidArgumentError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture!r}")
    if architecture in PAPER_MODELS:
        return networks_paper(architecture, input_shape, latent_dim=latent_dim or None, num_classes=num_classes,
                              deterministic=deterministic, width=width, **kwargs)
    if len(input_shape) == 3 and architecture in ("auto", "mlp"):
        return networks_mlp(input_shape, latent_dim=latent_dim or 32, num_classes=num_classes,
                            deterministic=deterministic, width=width, input_noise=0.3, **kwargs)
    if len(input_shape) == 3:
        return networks_conv(input_shape, latent_dim=latent_dim or 32, num_classes=num_classes,
                             deterministic=deterministic, width=width, **kwargs)
    if len(input_shape) == 2 and architecture in ("auto", "mlp"):  # sequences (steps, channels): MNIST-1D
        return networks_mlp(input_shape, latent_dim=latent_dim or 32, num_classes=num_classes,
                            deterministic=deterministic, width=width, input_noise=0.3, **kwargs)
    if len(input_shape) == 1:
        return networks_mlp(input_shape[0], latent_dim=latent_dim or 2, num_classes=num_classes,
                            deterministic=deterministic, width=width, **kwargs)
    raise InvalidArgumentError(f"ALI has default networks for images (h, w, c), sequences (steps, channels) "
                               f"(architecture auto or mlp) and vectors (d,), got input shape {input_shape} with "
                               f"architecture={architecture!r}")
