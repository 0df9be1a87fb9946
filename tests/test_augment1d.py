"""kzoo.data.augment1d: in-graph shift, scaling, noise and cut-out, against numpy."""

import keras
import numpy as np
import pytest
from conftest import to_np

from kzoo.data.augment1d import STRONG, WEAK, Augment, as_augment, shift
from kzoo.errors import InvalidArgumentError


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("mode", ["circular", "zeros"])
def test_shift_matches_numpy(mode):
    x = _x((4, 10, 2))
    offsets = np.array([0, 3, -2, 9], "int32")
    out = to_np(shift(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(offsets), 1, mode))
    for i, s in enumerate(offsets):
        expect = np.roll(x[i], s, axis=0)
        if mode == "zeros":
            if s > 0:
                expect[:s] = 0
            elif s < 0:
                expect[s:] = 0
        np.testing.assert_array_equal(out[i], expect)


@pytest.mark.parametrize("shape", [(6, 12), (6, 12, 3), (6, 8, 8, 1)])
def test_shapes_and_determinism_under_seed(shape):
    x = _x(shape)
    aug = Augment(shift=2, scale=0.2, noise=0.1, cutout=3)
    a = to_np(aug(x, keras.random.SeedGenerator(7)))
    b = to_np(aug(x, keras.random.SeedGenerator(7)))
    c = to_np(aug(x, keras.random.SeedGenerator(8)))
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_random_circular_shift_is_a_roll_within_range():
    x = _x((64, 20, 1))
    out = to_np(Augment(shift=3)(x, keras.random.SeedGenerator(0)))
    seen = set()
    for i in range(len(x)):
        matches = [s for s in range(-3, 4) if np.array_equal(out[i], np.roll(x[i], s, axis=0))]
        assert len(matches) == 1, i
        seen.add(matches[0])
    assert seen == set(range(-3, 4))  # every offset drawn in 64 examples


def test_image_shift_translates_both_axes():
    x = _x((32, 8, 8, 1))
    out = to_np(Augment(shift=1)(x, keras.random.SeedGenerator(3)))
    moved_both = 0
    for i in range(len(x)):
        found = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)
                 if np.array_equal(out[i], np.roll(np.roll(x[i], a, axis=0), b, axis=1))]
        assert len(found) == 1
        moved_both += found[0][0] != 0 and found[0][1] != 0
    assert moved_both > 0


def test_noise_statistics():
    x = np.zeros((256, 40, 1), "float32")
    out = to_np(Augment(noise=0.3)(x, keras.random.SeedGenerator(1)))
    assert abs(out.std() - 0.3) < 0.01 and abs(out.mean()) < 0.01


def test_scale_factors_per_example_in_range():
    x = np.ones((512, 10), "float32")
    out = to_np(Augment(scale=0.25)(x, keras.random.SeedGenerator(2)))
    factors = out[:, 0]
    np.testing.assert_allclose(out, factors[:, None] * np.ones((1, 10)), rtol=1e-6)  # one factor per example
    assert factors.min() >= 0.75 and factors.max() <= 1.25
    assert abs(factors.mean() - 1.0) < 0.02 and abs(factors.std() - 0.5 / np.sqrt(12)) < 0.01


def test_cutout_zeros_one_segment_of_the_given_length():
    x = np.ones((64, 20, 2), "float32")
    out = to_np(Augment(cutout=5)(x, keras.random.SeedGenerator(4)))
    for row in out[..., 0]:
        zeros = np.flatnonzero(row == 0)
        assert len(zeros) == 5 and zeros[-1] - zeros[0] == 4
    np.testing.assert_array_equal(out[..., 0], out[..., 1])  # every channel of the segment


def test_identity_and_presets():
    x = _x((3, 10))
    assert Augment().identity and Augment()(x, keras.random.SeedGenerator(0)) is x
    assert as_augment(None) == Augment() and as_augment({"shift": 2}) == WEAK
    assert STRONG.shift > WEAK.shift and STRONG.noise > 0 and STRONG.scale > 0 and STRONG.cutout > 0
    assert as_augment(STRONG.get_config()) == STRONG


def test_bad_arguments_and_shapes_are_refused():
    with pytest.raises(InvalidArgumentError, match="shift"):
        Augment(shift=-1)
    with pytest.raises(InvalidArgumentError, match="scale"):
        Augment(scale=1.5)
    with pytest.raises(InvalidArgumentError, match="noise"):
        Augment(noise=float("nan"))
    with pytest.raises(InvalidArgumentError, match="rank >= 2"):
        Augment(noise=0.1)(np.zeros((4,), "float32"), keras.random.SeedGenerator(0))
    with pytest.raises(InvalidArgumentError, match="shorter"):
        Augment(shift=8).check_shape((None, 8, 8, 1))
    with pytest.raises(InvalidArgumentError, match="shorter"):
        Augment(cutout=40).check_shape((None, 40, 1))
    Augment(shift=4, cutout=8).check_shape((None, 40, 1))
