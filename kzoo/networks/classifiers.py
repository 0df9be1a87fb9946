"""Classifiers of the papers, as functional Keras models that output logits.

* :func:`mlp` -- the VAT paper's MNIST network: fully connected, batch norm, ReLU.
* :func:`conv_small`, :func:`conv_large` -- Table 6 of the VAT paper (lReLU 0.1,
  batch norm after every conv, 2x2 max-pool + dropout between blocks, global
  average pool). ``input_shape`` is configurable so they also run on 8x8 digits:
  the third block's 3x3 conv is "valid" (6x6 on 32x32 inputs) when the feature
  map allows it and "same" otherwise; ``width`` scales every channel count.

``kzoo.models.VAE`` and ``kzoo.models.Glow`` are the LVAT paper's generative
"transformers" (defined in :mod:`kzoo.networks.vae` / :mod:`kzoo.networks.glow`,
loaded on first use; TensorFlow backend).
* :func:`conv_manifold` -- the 13-layer CNN of the manifold-regularization paper's
  decoupled experiments (Lecouat et al., paper 000, Table A7: 96/128/256 channels, lReLU 0.2).
* :func:`preact_resnet18` -- PreActResNet-18 (He et al., 2016), the Manifold
  Mixup paper's supervised network; :func:`wide_resnet28_2` -- WRN-28-2
  (Zagoruyko & Komodakis, 2016, as in Oliver et al., 2018), its
  semi-supervised network. Both take ``width`` (channel multiplier) and a
  depth option so tests stay tiny.
* :func:`mnist1d_cnn` -- the MNIST-1D paper's CNN (Greydanus & Kobak): three stride-2 Conv1D layers
  of 25 channels (kernels 5, 3, 3, ReLU) and a linear layer; :func:`resnet1d` -- a small
  residual 1D conv net (stronger, still a short CPU run). Both take sequences ``(length, channels)``.

Every model names the output of its i-th block ``block{i}`` (mlp: hidden layer
i; the conv models: each of the three conv blocks, after its pooling and
dropout; the ResNets: residual stage i), the layers Manifold Mixup mixes at
(``kzoo.mixup``); ``"input"`` is the input.
"""

from kzoo.errors import InvalidArgumentError
import keras
from keras import layers

from kzoo import backend as _backend  # noqa: F401  (the JAX compilation cache, before the first build)

from kzoo.networks import CLASSIFIERS as MODELS  # noqa: E402  (the names, known without Keras)


def mlp(input_shape=(64,), num_classes=10, hidden=(1200, 600, 300, 150), batch_norm=True,
        hidden_noise=0.0, name="mlp"):
    """Fully connected classifier (VAT paper, MNIST: hidden=(1200, 600, 300, 150)).

    ``hidden_noise``: std of Gaussian noise added to hidden units in training
    (the paper's semi-supervised MNIST setting used 0.5). Inputs of any shape
    are flattened.
    """
    _check(input_shape, num_classes)
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    h = layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for i, units in enumerate(hidden):
        h = layers.Dense(units, use_bias=not batch_norm, name=f"dense{i + 1}")(h)
        if batch_norm:
            h = layers.BatchNormalization(name=f"bn{i + 1}")(h)
        h = layers.ReLU(name=f"relu{i + 1}")(h)
        if hidden_noise:
            h = layers.GaussianNoise(hidden_noise, name=f"noise{i + 1}")(h)
        h = layers.Identity(name=f"block{i + 1}")(h)  # a named mixing point (kzoo.mixup)
    outputs = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name)


_TABLE6 = {
    # (block1, block2, block3 (3x3, 1x1, 1x1), dense input)
    "conv_small_svhn": ((64, 64, 64), (128, 128, 128), (128, 128, 128)),
    "conv_small": ((96, 96, 96), (192, 192, 192), (192, 192, 192)),
    "conv_large": ((128, 128, 128), (256, 256, 256), (512, 256, 128)),
    # paper 000 (Lecouat et al.), Table A7: the CNN of the decoupled experiments (Table 5)
    "conv_manifold": ((96, 96, 96), (128, 128, 128), (256, 128, 128)),
}


def _conv_net(spec, input_shape, num_classes, width, dropout, name, negative_slope=0.1):
    _check(input_shape, num_classes)
    if len(input_shape) != 3:
        raise InvalidArgumentError(
            f"{name} needs image inputs (height, width, channels), got input_shape={tuple(input_shape)}; "
            "use kzoo.data.load(..., flatten=False) or the mlp model"
        )
    if width <= 0:
        raise InvalidArgumentError(f"width must be > 0, got {width}")
    ch = lambda c: max(1, int(round(c * width)))  # noqa: E731
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    h = inputs
    size = min(input_shape[0], input_shape[1])

    def conv(h, filters, kernel, padding, tag):
        h = layers.Conv2D(ch(filters), kernel, padding=padding, use_bias=False, name=f"conv{tag}")(h)
        h = layers.BatchNormalization(name=f"bn{tag}")(h)
        return layers.LeakyReLU(negative_slope=negative_slope, name=f"lrelu{tag}")(h)

    for b, filters in enumerate(spec[:2], start=1):
        for i, f in enumerate(filters, start=1):
            h = conv(h, f, 3, "same", f"{b}_{i}")
        if size >= 2:
            h = layers.MaxPooling2D(2, name=f"pool{b}")(h)
            size //= 2
        if dropout:
            h = layers.Dropout(dropout, name=f"drop{b}")(h)
        h = layers.Identity(name=f"block{b}")(h)  # a named mixing point (kzoo.mixup)
    f1, f2, f3 = spec[2]
    h = conv(h, f1, 3, "valid" if size >= 5 else "same", "3_1")
    h = conv(h, f2, 1, "same", "3_2")
    h = conv(h, f3, 1, "same", "3_3")
    h = layers.Identity(name="block3")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name)


def conv_small(input_shape=(32, 32, 3), num_classes=10, width=1.0, dropout=0.5, variant="cifar10"):
    """Conv-Small of Table 6 (``variant="cifar10"`` 96/192 channels, ``"svhn"`` 64/128)."""
    if variant not in ("cifar10", "svhn"):
        raise InvalidArgumentError(f"variant must be 'cifar10' or 'svhn', got {variant!r}")
    spec = _TABLE6["conv_small" if variant == "cifar10" else "conv_small_svhn"]
    return _conv_net(spec, input_shape, num_classes, width, dropout, "conv_small")


def conv_large(input_shape=(32, 32, 3), num_classes=10, width=1.0, dropout=0.5):
    """Conv-Large of Table 6 (128/256/512 channels)."""
    return _conv_net(_TABLE6["conv_large"], input_shape, num_classes, width, dropout, "conv_large")


def conv_manifold(input_shape=(32, 32, 3), num_classes=10, width=1.0, dropout=0.5):
    """The decoupled experiments' CNN of paper 000 (Lecouat et al.), Table A7: 3 × (3×3, 96) -> max-pool ->
    dropout 0.5 -> 3 × (3×3, 128) -> max-pool -> dropout 0.5 -> 3×3 256 (valid) -> 1×1 128 -> 1×1 128
    -> average pool -> dense; batch norm and lReLU 0.2 after every conv."""
    return _conv_net(_TABLE6["conv_manifold"], input_shape, num_classes, width, dropout, "conv_manifold",
                     negative_slope=0.2)


def _channels(width):
    if not width or width <= 0:
        raise InvalidArgumentError(f"width must be > 0, got {width}")
    return lambda c: max(1, int(round(c * width)))


def _image_input(input_shape, num_classes, name):
    _check(input_shape, num_classes)
    if len(input_shape) != 3:
        raise InvalidArgumentError(
            f"{name} needs image inputs (height, width, channels), got input_shape={tuple(input_shape)}; "
            "use kzoo.data.load(..., flatten=False) or the mlp model"
        )
    return keras.Input(shape=tuple(input_shape), name="input")


def _preact_block(h, filters, stride, tag, bn_momentum=0.99, negative_slope=0.0, last_name=None):
    """Pre-activation residual block: BN-act-conv3x3(stride)-BN-act-conv3x3 + shortcut."""
    act = (lambda n: layers.ReLU(name=n)) if not negative_slope else \
        (lambda n: layers.LeakyReLU(negative_slope=negative_slope, name=n))
    pre = layers.BatchNormalization(momentum=bn_momentum, name=f"{tag}_bn1")(h)
    pre = act(f"{tag}_act1")(pre)
    if stride != 1 or h.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{tag}_shortcut")(pre)
    else:
        shortcut = h
    out = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{tag}_conv1")(pre)
    out = layers.BatchNormalization(momentum=bn_momentum, name=f"{tag}_bn2")(out)
    out = act(f"{tag}_act2")(out)
    out = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{tag}_conv2")(out)
    return layers.Add(name=last_name or f"{tag}_add")([out, shortcut])


def preact_resnet18(input_shape=(32, 32, 3), num_classes=10, width=1.0, blocks_per_stage=(2, 2, 2, 2),
                    name="preact_resnet18"):
    """PreActResNet-18: 3x3 conv stem, 4 stages of pre-activation blocks (64/128/256/512 channels
    times ``width``, strides 1/2/2/2), BN-ReLU, global average pool, dense logits.

    Stage i's output is the layer ``block{i}`` (the paper mixes at input, block1, block2).
    ``blocks_per_stage`` (default (2, 2, 2, 2): 18 layers) shrinks the depth for tests.
    """
    inputs = _image_input(input_shape, num_classes, name)
    ch = _channels(width)
    if len(blocks_per_stage) != 4 or any(int(b) < 1 for b in blocks_per_stage):
        raise InvalidArgumentError(f"blocks_per_stage must be 4 integers >= 1, got {blocks_per_stage!r}")
    h = layers.Conv2D(ch(64), 3, padding="same", use_bias=False, name="stem")(inputs)
    for s, (filters, stride, blocks) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2), blocks_per_stage),
                                                start=1):
        for b in range(1, int(blocks) + 1):
            h = _preact_block(h, ch(filters), stride if b == 1 else 1, f"stage{s}_{b}",
                              last_name=f"block{s}" if b == blocks else None)
    h = layers.BatchNormalization(name="final_bn")(h)
    h = layers.ReLU(name="final_relu")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name)


def wide_resnet28_2(input_shape=(32, 32, 3), num_classes=10, width=1.0, depth=28, widen_factor=2,
                    name="wide_resnet28_2"):
    """WRN-28-2 as in Oliver et al. (2018): 3x3 conv stem (16), 3 stages of (depth - 4) / 6
    pre-activation blocks with 16k/32k/64k channels (k = ``widen_factor``, times ``width``),
    strides 1/2/2, leaky ReLU 0.1, batch-norm momentum 0.999, BN-act, global average pool, logits.

    Stage i's output is the layer ``block{i}`` (the paper mixes at input, block1, block2).
    ``depth`` (6n + 4) shrinks the network for tests (depth=10: one block per stage).
    """
    inputs = _image_input(input_shape, num_classes, name)
    ch = _channels(width)
    if (int(depth) - 4) % 6 or depth < 10:
        raise InvalidArgumentError(f"depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth!r}")
    if widen_factor <= 0:
        raise InvalidArgumentError(f"widen_factor must be > 0, got {widen_factor!r}")
    n = (int(depth) - 4) // 6
    h = layers.Conv2D(ch(16), 3, padding="same", use_bias=False, name="stem")(inputs)
    for s, (filters, stride) in enumerate(zip((16, 32, 64), (1, 2, 2)), start=1):
        for b in range(1, n + 1):
            h = _preact_block(h, ch(filters * widen_factor), stride if b == 1 else 1, f"stage{s}_{b}",
                              bn_momentum=0.999, negative_slope=0.1, last_name=f"block{s}" if b == n else None)
    h = layers.BatchNormalization(momentum=0.999, name="final_bn")(h)
    h = layers.LeakyReLU(negative_slope=0.1, name="final_act")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name)


def _sequence_input(input_shape, num_classes, name):
    _check(input_shape, num_classes)
    if len(input_shape) != 2:
        raise InvalidArgumentError(
            f"{name} needs sequence inputs (length, channels), got input_shape={tuple(input_shape)}; "
            "use kzoo.data.load(..., flatten=False) (mnist1d: (40, 1)) or the mlp model")
    return keras.Input(shape=tuple(input_shape), name="input")


def mnist1d_cnn(input_shape=(40, 1), num_classes=10, width=1.0, channels=25, name="mnist1d_cnn"):
    """The MNIST-1D paper's CNN: Conv1D(25, 5, stride 2) -> Conv1D(25, 3, stride 2) -> Conv1D(25, 3,
    stride 2), ReLU after each, then flatten and a linear layer of logits (40 steps: 20, 10, 5 positions,
    125 features; "same" padding). ``width`` scales the 25 channels. Layer ``block{i}`` is conv i's output
    (the mixing points of Manifold Mixup)."""
    inputs = _sequence_input(input_shape, num_classes, name)
    ch = _channels(1.0 if width is None else width)
    h = inputs
    for i, kernel in enumerate((5, 3, 3), start=1):
        h = layers.Conv1D(ch(channels), kernel, strides=2, padding="same", name=f"conv{i}")(h)
        h = layers.ReLU(name=f"relu{i}")(h)
        h = layers.Identity(name=f"block{i}")(h)  # a named mixing point (kzoo.mixup)
    h = layers.Flatten(name="flatten")(h)
    outputs = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name)


def resnet1d(input_shape=(40, 1), num_classes=10, width=1.0, channels=(32, 64, 64), name="resnet1d"):
    """A small residual 1D conv net: Conv1D(c1, 5) stem, then three stages of one pre-activation residual
    block (BN-ReLU-Conv1D(3)-BN-ReLU-Conv1D(3) + shortcut; strides 1, 2, 2; ``channels`` times ``width``),
    BN-ReLU, global average pool over the steps, linear logits. Stage i's output is the layer ``block{i}``."""
    inputs = _sequence_input(input_shape, num_classes, name)
    ch = _channels(1.0 if width is None else width)
    if len(channels) != 3:
        raise InvalidArgumentError(f"channels must be 3 integers (one per stage), got {channels!r}")
    h = layers.Conv1D(ch(channels[0]), 5, padding="same", use_bias=False, name="stem")(inputs)
    for s, (filters, stride) in enumerate(zip(channels, (1, 2, 2)), start=1):
        tag, filters = f"stage{s}", ch(filters)
        pre = layers.BatchNormalization(name=f"{tag}_bn1")(h)
        pre = layers.ReLU(name=f"{tag}_act1")(pre)
        if stride != 1 or h.shape[-1] != filters:
            shortcut = layers.Conv1D(filters, 1, strides=stride, use_bias=False, name=f"{tag}_shortcut")(pre)
        else:
            shortcut = h
        out = layers.Conv1D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{tag}_conv1")(pre)
        out = layers.BatchNormalization(name=f"{tag}_bn2")(out)
        out = layers.ReLU(name=f"{tag}_act2")(out)
        out = layers.Conv1D(filters, 3, padding="same", use_bias=False, name=f"{tag}_conv2")(out)
        h = layers.Add(name=f"block{s}")([out, shortcut])
    h = layers.BatchNormalization(name="final_bn")(h)
    h = layers.ReLU(name="final_relu")(h)
    h = layers.GlobalAveragePooling1D(name="gap")(h)
    outputs = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name)


def get(name, **kwargs):
    """Build a model by name (one of :data:`MODELS`)."""
    if name not in MODELS:
        raise InvalidArgumentError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return globals()[name](**kwargs)


def _check(input_shape, num_classes):
    if not input_shape or any(int(s) < 1 for s in input_shape):
        raise InvalidArgumentError(f"input_shape must be a tuple of positive sizes, got {input_shape!r}")
    if int(num_classes) < 2:
        raise InvalidArgumentError(f"num_classes must be >= 2, got {num_classes!r}")


def __getattr__(name):
    # kzoo.models.VAE / kzoo.models.Glow: the LVAT transformers, imported on first use
    if name == "VAE":
        from kzoo.networks.vae import VAE

        return VAE
    if name == "Glow":
        from kzoo.networks.glow import Glow

        return Glow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
