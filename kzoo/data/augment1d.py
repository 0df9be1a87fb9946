"""Augmentation inside the train step, in ``keras.ops``: random shift, amplitude scaling, Gaussian noise, cut-out.

Made for sequences, batches shaped ``(batch, length, channels)`` (MNIST-1D), and usable by every method
on any batch of rank >= 2: ``(batch, length)`` is a one-channel sequence, and on ``(batch, height,
width, channels)`` images the shift and the cut-out act on each of the two spatial axes (a translation
and a square patch). Random draws go through :func:`kzoo.backend.uniform` / :func:`kzoo.backend.normal`
with the step's ``keras.random.SeedGenerator`` (stateless counter-based draws, as everywhere in kzoo):
the same seed state gives the same augmentation.

>>> weak, strong = WEAK, STRONG                      # FixMatch's presets
>>> x_aug = Augment(shift=4, scale=0.2, noise=0.05)(x, seed_generator)

Importing this module imports Keras (``kzoo.data`` itself does not import it).
"""

from keras import ops

from kzoo import backend as kb
from kzoo.checks import check_int, check_positive
from kzoo.errors import InvalidArgumentError

SHIFT_MODES = ("circular", "zeros")


def _spatial_axes(rank):
    if rank < 2:
        raise InvalidArgumentError(f"augmentation needs batches of rank >= 2 ((batch, length) or (batch, length, "
                                   f"channels)), got rank {rank}")
    return (1,) if rank == 2 else tuple(range(1, rank - 1))


def _along(values, axis, rank):
    """``values`` of shape (batch, n) reshaped to broadcast along ``axis`` of a rank-``rank`` batch."""
    shape = [1] * rank
    shape[0], shape[axis] = -1, values.shape[-1]
    return ops.reshape(values, shape)


def _draw_integer(u, low, high):
    """Integers uniform in [low, high] from uniforms ``u`` in [0, 1)."""
    k = ops.floor(u * (high - low + 1))
    return ops.cast(ops.minimum(k, high - low), "int32") + low


def shift(x, offsets, axis=1, mode="circular"):
    """``x`` shifted along ``axis`` by ``offsets`` (int, one per example): ``out[i] = x[i - offset]``.

    ``mode="circular"`` wraps around; ``"zeros"`` fills the vacated positions with zeros.
    """
    if mode not in SHIFT_MODES:
        raise InvalidArgumentError(f"shift mode must be one of {', '.join(SHIFT_MODES)}, got {mode!r}")
    rank, n = len(x.shape), int(x.shape[axis])
    source = ops.arange(n, dtype="int32")[None, :] - ops.reshape(ops.cast(offsets, "int32"), (-1, 1))
    wrapped = ops.mod(source, n)
    index = ops.broadcast_to(_along(wrapped, axis, rank), ops.shape(x))
    out = ops.take_along_axis(x, index, axis=axis)
    if mode == "zeros":
        inside = ops.logical_and(source >= 0, source < n)
        out = out * ops.cast(_along(inside, axis, rank), x.dtype)
    return out


class Augment:
    """A random augmentation of a batch, applied as ``augment(x, seed_generator)``.

    Args:
        shift: shift each example by an integer number of steps uniform in [-shift, shift] along each
            spatial axis (0: no shift).
        scale: multiply each example by a factor uniform in [1 - scale, 1 + scale] (amplitude scaling).
        noise: add Gaussian noise of this standard deviation to every value.
        cutout: zero a segment of this many steps at a uniform position along each spatial axis (a patch
            on images), inside the example.
        shift_mode: "circular" (wrap around) or "zeros" (pad with zeros).
    """

    def __init__(self, shift=0, scale=0.0, noise=0.0, cutout=0, shift_mode="circular"):
        self.shift = check_int("augmentation shift (steps)", shift, minimum=0, error=InvalidArgumentError)
        self.cutout = check_int("augmentation cutout (steps)", cutout, minimum=0, error=InvalidArgumentError)
        self.scale = check_positive("augmentation scale", scale, allow_zero=True, error=InvalidArgumentError)
        if self.scale >= 1.0:
            raise InvalidArgumentError(f"augmentation scale must be < 1 (factors in [1 - scale, 1 + scale]), "
                                       f"got {scale!r}")
        self.noise = check_positive("augmentation noise", noise, allow_zero=True, error=InvalidArgumentError)
        if shift_mode not in SHIFT_MODES:
            raise InvalidArgumentError(f"shift_mode must be one of {', '.join(SHIFT_MODES)}, got {shift_mode!r}")
        self.shift_mode = shift_mode

    @property
    def identity(self):
        return not (self.shift or self.scale or self.noise or self.cutout)

    def check_shape(self, shape, what="the inputs"):
        """A one-line error when batches of ``shape`` (batch first, or the network's input shape with None)
        cannot be augmented so: rank < 2, or a shift or cut-out as long as a spatial axis."""
        axes = _spatial_axes(len(shape))
        for axis in axes:
            n = shape[axis]
            if n is None:
                continue
            if self.shift and self.shift >= n:
                raise InvalidArgumentError(f"augmentation shift {self.shift} must be shorter than {what}' axis "
                                           f"{axis} of length {n}")
            if self.cutout and self.cutout >= n:
                raise InvalidArgumentError(f"augmentation cutout {self.cutout} must be shorter than {what}' axis "
                                           f"{axis} of length {n}")

    def __call__(self, x, seed):
        if self.identity:
            return x
        x = ops.convert_to_tensor(x)
        rank = len(x.shape)
        axes = _spatial_axes(rank)
        self.check_shape(tuple(x.shape))
        # every per-example uniform from one draw: (batch, [shift per axis, cutout per axis, scale])
        columns = len(axes) * (bool(self.shift) + bool(self.cutout)) + bool(self.scale)
        u = kb.uniform((ops.shape(x)[0], columns), seed, dtype="float32") if columns else None
        col = 0
        if self.shift:
            for axis in axes:
                x = shift(x, _draw_integer(u[:, col], -self.shift, self.shift), axis, self.shift_mode)
                col += 1
        if self.cutout:
            keep = None
            for axis in axes:
                n = int(x.shape[axis])
                start = _draw_integer(u[:, col], 0, n - self.cutout)[:, None]
                pos = ops.arange(n, dtype="int32")[None, :]
                inside = _along(ops.logical_and(pos >= start, pos < start + self.cutout), axis, rank)
                keep = inside if keep is None else ops.logical_and(keep, inside)
                col += 1
            x = x * (1.0 - ops.cast(keep, x.dtype))
        if self.scale:
            factor = 1.0 - self.scale + 2.0 * self.scale * u[:, col]
            x = x * ops.cast(ops.reshape(factor, (-1,) + (1,) * (rank - 1)), x.dtype)
        if self.noise:
            x = x + kb.normal(ops.shape(x), seed, stddev=self.noise, dtype=x.dtype)
        return x

    def get_config(self):
        return {"shift": self.shift, "scale": self.scale, "noise": self.noise, "cutout": self.cutout,
                "shift_mode": self.shift_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Augment) and self.get_config() == other.get_config()

    def __repr__(self):
        return "Augment(" + ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()) + ")"


def as_augment(value):
    """An :class:`Augment` from an Augment, its config dict, or None (no augmentation)."""
    if value is None:
        return Augment()
    if isinstance(value, Augment):
        return value
    if isinstance(value, dict):
        return Augment(**value)
    raise InvalidArgumentError(f"an augmentation is a kzoo.data.augment1d.Augment or its config dict, got "
                               f"{type(value).__name__}")


#: FixMatch's weak augmentation for sequences: a small shift (its images: flip and a 12.5% translation)
WEAK = Augment(shift=2)
#: FixMatch's strong augmentation for sequences: a larger shift, amplitude scaling, noise and a cut-out
#: (its images: RandAugment and Cutout)
STRONG = Augment(shift=8, scale=0.25, noise=0.1, cutout=8)

__all__ = ["Augment", "SHIFT_MODES", "STRONG", "WEAK", "as_augment", "shift"]
