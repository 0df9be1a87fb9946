"""Image augmentation in numpy: random translations and flips."""

from __future__ import annotations
from kzoo.errors import InvalidArgumentError

import re

import numpy as np

from kzoo.data.base import AUGMENTATIONS



# ---------------------------------------------------------------------------
# Augmentation (numpy)
# ---------------------------------------------------------------------------


def parse_augment(augment) -> tuple:
    """Normalize ``augment`` to a tuple of names from :data:`AUGMENTATIONS`.

    Accepts None, a string such as ``"translate"``, ``"translate+flip"`` or
    ``"translate,flip"``, or a sequence of such names.
    """
    if augment is None or augment is False:
        return ()
    if isinstance(augment, str):
        names = [p for p in re.split(r"[\s,+]+", augment) if p]
    else:
        try:
            names = list(augment)
        except TypeError:
            raise InvalidArgumentError(
                f"augment must be None, a string or a sequence of names from "
                f"{AUGMENTATIONS}; got {augment!r}") from None
    out = []
    for n in names:
        key = n.strip().lower() if isinstance(n, str) else n
        if key in ("none", ""):
            continue
        if key not in AUGMENTATIONS:
            raise InvalidArgumentError(f"unknown augmentation {n!r}; valid names: "
                             f"{', '.join(AUGMENTATIONS)}")
        if key not in out:
            out.append(key)
    # Fixed order: translate then flip, whatever order was given.
    return tuple(a for a in AUGMENTATIONS if a in out)


def _check_image_batch(x, what="augmentation"):
    if np.ndim(x) != 4:
        raise InvalidArgumentError(
            f"{what} needs image batches of rank 4 (N, H, W, C); got shape "
            f"{np.shape(x)}; drop augment or load images unflattened "
            f"(flatten=False)")


def random_translate(x, rng, max_shift=2, pad_mode="reflect"):
    """Shift each image by up to ``max_shift`` pixels in each direction.

    Pads by ``max_shift`` (``pad_mode`` 'reflect' or 'constant' = zeros) and
    crops back a random window per example.  Returns a new array.
    """
    _check_image_batch(x, "random_translate")
    x = np.asarray(x)
    s = int(max_shift)
    if s <= 0:
        return x.copy()
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)), mode=pad_mode)
    dy = rng.integers(0, 2 * s + 1, n)
    dx = rng.integers(0, 2 * s + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    return padded[np.arange(n)[:, None, None], rows[:, :, None],
                  cols[:, None, :]]


def random_flip(x, rng):
    """Mirror each image left-right with probability 1/2; returns a new array."""
    _check_image_batch(x, "random_flip")
    out = np.array(x, copy=True)
    mask = rng.random(len(out)) < 0.5
    out[mask] = out[mask][:, :, ::-1]
    return out


def augment_images(x, augment, rng, *, max_shift=2, pad_mode="reflect"):
    """Apply ``augment`` (see :func:`parse_augment`) to an NHWC batch."""
    ops = parse_augment(augment)
    if not ops:
        return x
    _check_image_batch(x)
    if "translate" in ops:
        x = random_translate(x, rng, max_shift=max_shift, pad_mode=pad_mode)
    if "flip" in ops:
        x = random_flip(x, rng)
    return x


