"""Classifiers of the papers, as functional Keras models that output logits.

* :func:`mlp` -- the VAT paper's MNIST network: fully connected, batch norm, ReLU.
* :func:`conv_small`, :func:`conv_large` -- Table 6 of the VAT paper (lReLU 0.1,
  batch norm after every conv, 2x2 max-pool + dropout between blocks, global
  average pool). ``input_shape`` is configurable so they also run on 8x8 digits:
  the third block's 3x3 conv is "valid" (6x6 on 32x32 inputs) when the feature
  map allows it and "same" otherwise; ``width`` scales every channel count.

``kzoo.models.VAE`` and ``kzoo.models.Glow`` are the LVAT paper's generative
"transformers" (defined in :mod:`kzoo.lvat`, loaded on first use; TensorFlow backend).
"""

import keras
from keras import layers

MODELS = ("mlp", "conv_small", "conv_large")


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
    outputs = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name)


_TABLE6 = {
    # (block1, block2, block3 (3x3, 1x1, 1x1), dense input)
    "conv_small_svhn": ((64, 64, 64), (128, 128, 128), (128, 128, 128)),
    "conv_small": ((96, 96, 96), (192, 192, 192), (192, 192, 192)),
    "conv_large": ((128, 128, 128), (256, 256, 256), (512, 256, 128)),
}


def _conv_net(spec, input_shape, num_classes, width, dropout, name):
    _check(input_shape, num_classes)
    if len(input_shape) != 3:
        raise ValueError(
            f"{name} needs image inputs (height, width, channels), got input_shape={tuple(input_shape)}; "
            "use kzoo.data.load(..., flatten=False) or the mlp model"
        )
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    ch = lambda c: max(1, int(round(c * width)))  # noqa: E731
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    h = inputs
    size = min(input_shape[0], input_shape[1])

    def conv(h, filters, kernel, padding, tag):
        h = layers.Conv2D(ch(filters), kernel, padding=padding, use_bias=False, name=f"conv{tag}")(h)
        h = layers.BatchNormalization(name=f"bn{tag}")(h)
        return layers.LeakyReLU(negative_slope=0.1, name=f"lrelu{tag}")(h)

    for b, filters in enumerate(spec[:2], start=1):
        for i, f in enumerate(filters, start=1):
            h = conv(h, f, 3, "same", f"{b}_{i}")
        if size >= 2:
            h = layers.MaxPooling2D(2, name=f"pool{b}")(h)
            size //= 2
        if dropout:
            h = layers.Dropout(dropout, name=f"drop{b}")(h)
    f1, f2, f3 = spec[2]
    h = conv(h, f1, 3, "valid" if size >= 5 else "same", "3_1")
    h = conv(h, f2, 1, "same", "3_2")
    h = conv(h, f3, 1, "same", "3_3")
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name=name)


def conv_small(input_shape=(32, 32, 3), num_classes=10, width=1.0, dropout=0.5, variant="cifar10"):
    """Conv-Small of Table 6 (``variant="cifar10"`` 96/192 channels, ``"svhn"`` 64/128)."""
    if variant not in ("cifar10", "svhn"):
        raise ValueError(f"variant must be 'cifar10' or 'svhn', got {variant!r}")
    spec = _TABLE6["conv_small" if variant == "cifar10" else "conv_small_svhn"]
    return _conv_net(spec, input_shape, num_classes, width, dropout, "conv_small")


def conv_large(input_shape=(32, 32, 3), num_classes=10, width=1.0, dropout=0.5):
    """Conv-Large of Table 6 (128/256/512 channels)."""
    return _conv_net(_TABLE6["conv_large"], input_shape, num_classes, width, dropout, "conv_large")


def get(name, **kwargs):
    """Build a model by name (one of :data:`MODELS`)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return globals()[name](**kwargs)


def _check(input_shape, num_classes):
    if not input_shape or any(int(s) < 1 for s in input_shape):
        raise ValueError(f"input_shape must be a tuple of positive sizes, got {input_shape!r}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes!r}")


def __getattr__(name):
    # kzoo.models.VAE / kzoo.models.Glow: the LVAT transformers (kzoo.lvat), imported on first use
    if name in ("VAE", "Glow"):
        from kzoo import lvat

        return getattr(lvat, name)
    raise AttributeError(f"module 'kzoo.models' has no attribute {name!r}")
