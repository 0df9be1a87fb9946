"""Tests for kzoo.models: the papers' classifiers, their shapes and their checks."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo import models


def _out_channels(model, name):
    return model.get_layer(name).output.shape[-1]


@pytest.mark.parametrize(
    "build, input_shape",
    [
        (lambda s: models.mlp(input_shape=s, num_classes=7, hidden=(12, 6)), (64,)),
        (lambda s: models.mlp(input_shape=s, num_classes=7, hidden=(12, 6)), (8, 8, 1)),
        (lambda s: models.conv_small(input_shape=s, num_classes=7, width=0.125), (8, 8, 1)),
        (lambda s: models.conv_small(input_shape=s, num_classes=7, width=0.125, variant="svhn"),
         (8, 8, 1)),
        (lambda s: models.conv_small(input_shape=s, num_classes=7, width=0.125), (32, 32, 3)),
        (lambda s: models.conv_large(input_shape=s, num_classes=7, width=0.125), (8, 8, 1)),
        (lambda s: models.conv_large(input_shape=s, num_classes=7, width=0.125), (32, 32, 3)),
    ],
    ids=["mlp-64", "mlp-8x8", "small-8x8", "small_svhn-8x8", "small-32", "large-8x8",
         "large-32"],
)
def test_models_build_and_output_logits(build, input_shape):
    keras.utils.set_random_seed(0)
    model = build(input_shape)
    assert tuple(model.input.shape[1:]) == input_shape
    x = np.random.default_rng(0).uniform(0, 1, (3,) + input_shape).astype("float32")
    out = keras.ops.convert_to_numpy(model(x, training=False))
    assert out.shape == (3, 7) and np.isfinite(out).all()
    # logits, not probabilities: no softmax on the last layer
    last = model.get_layer("logits")
    assert isinstance(last, keras.layers.Dense) and last.units == 7
    assert last.activation in (None, keras.activations.linear)
    assert not np.allclose(out.sum(axis=1), 1.0)


def test_mlp_layers_and_options():
    m = models.mlp(input_shape=(64,), num_classes=7, hidden=(12, 6))
    names = [layer.name for layer in m.layers]
    assert names == ["input", "dense1", "bn1", "relu1", "block1", "dense2", "bn2", "relu2", "block2", "logits"]
    assert isinstance(m.get_layer("block1"), keras.layers.Identity)  # a named mixing point (kzoo.mixup)
    assert _out_channels(m, "dense1") == 12 and _out_channels(m, "dense2") == 6
    # batch norm replaces the dense bias
    assert m.get_layer("dense1").use_bias is False
    plain = models.mlp(input_shape=(64,), num_classes=7, hidden=(12,), batch_norm=False,
                       hidden_noise=0.5)
    names = [layer.name for layer in plain.layers]
    assert "bn1" not in names and "noise1" in names
    assert plain.get_layer("dense1").use_bias is True
    assert plain.get_layer("noise1").stddev == 0.5
    # the paper's MNIST network by default
    default = models.mlp()
    assert [_out_channels(default, f"dense{i}") for i in range(1, 5)] == [1200, 600, 300, 150]
    assert "flatten" in [layer.name for layer in models.mlp(input_shape=(8, 8, 1)).layers]


# Shapes below reuse those of the parametrized builds above (num_classes=7,
# width=0.125): on JAX every new weight shape costs an initializer compile.


def test_conv_small_channels_and_variants():
    # Table 6 at width 1/8: Conv-Small 96/192 -> 12/24, the SVHN variant 64/128 -> 8/16
    small = models.conv_small(input_shape=(8, 8, 1), num_classes=7, width=0.125)
    assert [_out_channels(small, n) for n in ("conv1_1", "conv2_1", "conv3_1", "conv3_3")] == \
        [12, 24, 24, 24]
    svhn = models.conv_small(input_shape=(8, 8, 1), num_classes=7, width=0.125, variant="svhn")
    assert [_out_channels(svhn, n) for n in ("conv1_1", "conv2_1", "conv3_1", "conv3_3")] == \
        [8, 16, 16, 16]
    nodrop = models.conv_small(input_shape=(8, 8, 1), num_classes=7, width=0.125, dropout=0.0)
    assert "drop1" not in [layer.name for layer in nodrop.layers]
    with pytest.raises(ValueError, match="variant"):
        models.conv_small(variant="mnist")


def test_conv_large_table6_at_full_width():
    m = models.conv_large(input_shape=(32, 32, 3), num_classes=10, width=1.0)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in m.layers}
    # block 1: three 3x3 convs with 128 channels at 32x32, pool to 16x16
    assert shapes["conv1_1"] == (32, 32, 128) and shapes["conv1_3"] == (32, 32, 128)
    assert shapes["pool1"] == (16, 16, 128)
    # block 2: 256 channels, pool to 8x8
    assert shapes["conv2_1"] == (16, 16, 256) and shapes["conv2_3"] == (16, 16, 256)
    assert shapes["pool2"] == (8, 8, 256)
    # block 3: 3x3 valid conv 512 (6x6), 1x1 conv 256, 1x1 conv 128, global pool
    assert shapes["conv3_1"] == (6, 6, 512)
    assert shapes["conv3_2"] == (6, 6, 256)
    assert shapes["conv3_3"] == (6, 6, 128)
    assert shapes["lrelu3_3"] == (6, 6, 128)
    assert shapes["gap"] == (128,)
    assert shapes["logits"] == (10,)
    # batch norm after every conv, lReLU(0.1), 3x3 kernels, no conv bias
    conv = m.get_layer("conv1_1")
    assert conv.kernel_size == (3, 3) and conv.use_bias is False
    assert m.get_layer("conv3_2").kernel_size == (1, 1)
    assert isinstance(m.get_layer("bn2_2"), keras.layers.BatchNormalization)
    assert m.get_layer("lrelu1_1").negative_slope == pytest.approx(0.1)
    assert m.get_layer("drop1").rate == 0.5


def test_conv_manifold_is_table_a7_of_the_manifold_gan_paper():
    m = models.conv_manifold(input_shape=(32, 32, 3), num_classes=10, width=0.125)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in m.layers}
    # 3 × 3x3 96 -> pool -> 3 × 3x3 128 -> pool -> 3x3 256 valid -> 1x1 128 -> 1x1 128 (width 1/8)
    assert shapes["conv1_3"] == (32, 32, 12) and shapes["pool1"] == (16, 16, 12)
    assert shapes["conv2_3"] == (16, 16, 16) and shapes["pool2"] == (8, 8, 16)
    assert shapes["conv3_1"] == (6, 6, 32) and shapes["conv3_2"] == (6, 6, 16) and shapes["conv3_3"] == (6, 6, 16)
    assert m.get_layer("lrelu2_2").negative_slope == pytest.approx(0.2)  # the paper's slope (conv_large: 0.1)
    assert m.get_layer("drop2").rate == 0.5 and "conv_manifold" in models.MODELS


def test_conv_on_small_inputs_keeps_a_feature_map():
    m = models.conv_large(input_shape=(8, 8, 1), num_classes=7, width=0.125)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in m.layers}
    assert shapes["pool2"][:2] == (2, 2)
    assert shapes["conv3_1"] == (2, 2, 64)  # "same": a 3x3 valid conv would not fit
    assert shapes["conv1_1"][-1] == 16 and shapes["conv2_1"][-1] == 32
    # a 1x1 input: no pooling at all, every conv "same"
    tiny = models.conv_small(input_shape=(1, 1, 1), num_classes=7, width=0.125)
    names = [layer.name for layer in tiny.layers]
    assert "pool1" not in names and "pool2" not in names
    assert tuple(tiny.get_layer("conv3_1").output.shape[1:]) == (1, 1, 24)
    out = keras.ops.convert_to_numpy(tiny(np.ones((2, 1, 1, 1), "float32"), training=False))
    assert out.shape == (2, 7) and np.isfinite(out).all()
    # width never rounds a layer away
    assert _out_channels(models.conv_small(input_shape=(8, 8, 1), width=0.001), "conv1_1") == 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: models.mlp(input_shape=(), num_classes=10), "input_shape"),
        (lambda: models.mlp(input_shape=(0,), num_classes=10), "input_shape"),
        (lambda: models.mlp(input_shape=(64,), num_classes=1), "num_classes"),
        (lambda: models.conv_small(input_shape=(64,)), "image inputs"),
        (lambda: models.conv_large(input_shape=(8, 8)), "image inputs"),
        (lambda: models.conv_large(input_shape=(8, -8, 1)), "input_shape"),
        (lambda: models.conv_large(input_shape=(8, 8, 1), width=0), "width"),
        (lambda: models.conv_small(input_shape=(8, 8, 1), num_classes=0), "num_classes"),
        (lambda: models.get("resnet"), "unknown model"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_get_by_name():
    assert models.MODELS[:3] == ("mlp", "conv_small", "conv_large")
    assert {"preact_resnet18", "wide_resnet28_2"} <= set(models.MODELS)
    with pytest.raises(ValueError) as e:
        models.get("Conv_Small")
    assert all(name in str(e.value) for name in models.MODELS)
    m = models.get("conv_small", input_shape=(8, 8, 1), num_classes=7, width=0.125)
    assert m.name == "conv_small" and m.output.shape[-1] == 7
    mlp = models.get("mlp", input_shape=(64,), num_classes=7, hidden=(12, 6))
    assert mlp.name == "mlp" and _out_channels(mlp, "dense2") == 6
    large = kzoo.models.get("conv_large", input_shape=(8, 8, 1), num_classes=7, width=0.125)
    assert large.name == "conv_large" and _out_channels(large, "conv3_1") == 64
