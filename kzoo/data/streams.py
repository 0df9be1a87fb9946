"""Endless batch streams for ``fit``: numpy generators or ``tf.data`` pipelines."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np

from kzoo.data.augment import _check_image_batch, augment_images, parse_augment
from kzoo.data.base import _check_int
from kzoo.data.splits import _STREAMS, validate_arrays, warn_pixel_range
from kzoo.errors import UnsupportedBackendError



# ---------------------------------------------------------------------------
# Batch streams
# ---------------------------------------------------------------------------


def batches_per_epoch(n, batch_size) -> int:
    """Number of batches to see ``n`` examples once: ``ceil(n / batch_size)``."""
    n = _check_int("n", n, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    return -(-n // batch_size)


class _IndexStream:
    """Endless index batches: reshuffle each pass, concatenate passes."""

    def __init__(self, n, batch, rng):
        self.n, self.batch, self.rng = n, batch, rng
        self.buf = np.empty(0, dtype=np.int64)

    def next(self):
        while len(self.buf) < self.batch:
            self.buf = np.concatenate([self.buf, self.rng.permutation(self.n)])
        out, self.buf = self.buf[:self.batch], self.buf[self.batch:]
        return out


def _numpy_stream(x_l, y_l, x_u, batch_l, batch_u, seed, ops):
    ss_l, ss_u, ss_a = np.random.SeedSequence(seed).spawn(3)
    lab = _IndexStream(len(x_l), batch_l, np.random.default_rng(ss_l))
    unl = (_IndexStream(len(x_u), batch_u, np.random.default_rng(ss_u))
           if x_u is not None else None)
    aug_rng = np.random.default_rng(ss_a)
    while True:
        idx = lab.next()
        xb_l = augment_images(x_l[idx], ops, aug_rng)
        yb_l = y_l[idx]
        if unl is None:
            yield xb_l, yb_l
        else:
            xb_u = augment_images(x_u[unl.next()], ops, aug_rng)
            yield {"labeled": xb_l, "unlabeled": xb_u}, yb_l


def _default_as_tf():
    try:
        if sys.modules.get("tensorflow", 0) is None:
            return False
        if importlib.util.find_spec("tensorflow") is None:
            return False
        import keras
        return keras.backend.backend() == "tensorflow"
    except Exception:  # keras/tensorflow missing or broken: numpy path
        return False


def _tf_stream(x_l, y_l, x_u, batch_l, batch_u, seed, ops):
    import tensorflow as tf

    def index_ds(n, batch, op_seed):
        return (tf.data.Dataset.range(n)
                .shuffle(n, seed=op_seed, reshuffle_each_iteration=True)
                .repeat()
                .batch(batch, drop_remainder=True))

    tx_l = tf.constant(x_l)
    ty_l = tf.constant(y_l)
    tx_u = tf.constant(x_u) if x_u is not None else None
    aug_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])

    def aug(x):
        if not ops:
            return x
        shape = x.shape
        out = tf.numpy_function(
            lambda a: augment_images(a, ops, aug_rng).astype(np.float32),
            [x], tf.float32, stateful=True)
        return tf.ensure_shape(out, shape)

    lab = index_ds(len(x_l), batch_l, 2 * seed)
    if tx_u is None:
        ds = lab.map(lambda i: (aug(tf.gather(tx_l, i)), tf.gather(ty_l, i)))
    else:
        unl = index_ds(len(x_u), batch_u, 2 * seed + 1)
        ds = tf.data.Dataset.zip((lab, unl)).map(
            lambda i, j: ({"labeled": aug(tf.gather(tx_l, i)),
                           "unlabeled": aug(tf.gather(tx_u, j))},
                          tf.gather(ty_l, i)))
    # tf.data's autotuner runs a background loop that sleeps 10 ms, 20 ms, 40 ms, ...; deleting the iterator at the
    # end of a `fit` call sometimes waits for its current sleep, so a call could end at 1.27, 2.55 or 5.11 s whatever
    # its work (measured: benchmarks/RESULTS.md, overhead section). The pipeline is a gather per batch; a fixed
    # prefetch of two batches keeps the step fed without it.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


def _make_stream(x_l, y_l, x_u, batch_l, batch_u, num_classes, seed, augment,
                 as_tf):
    batch_l = _check_int("batch_labeled" if x_u is not None else "batch_size",
                         batch_l, 1)
    if x_u is not None:
        batch_u = _check_int("batch_unlabeled", batch_u, 1)
    seed = _check_int("seed", seed, 0)
    x_l, y_l, x_u = validate_arrays(x_l, y_l, x_u, num_classes)
    if x_u is not None and len(x_u) == 0:
        x_u = None
    warn_pixel_range(x_l, "x_l")
    ops = parse_augment(augment)
    if ops:
        _check_image_batch(x_l, f"augment={'+'.join(ops)}")
    x_l = x_l.astype(np.float32, copy=False)
    if x_u is not None:
        x_u = x_u.astype(np.float32, copy=False)
    if as_tf is None:
        as_tf = _default_as_tf()
    if as_tf:
        try:
            import tensorflow  # noqa: F401
        except ImportError as e:
            raise UnsupportedBackendError(
                f"as_tf=True needs tensorflow, which could not be imported "
                f"({e}); install tensorflow or pass as_tf=False for a numpy "
                f"iterator") from e
        stream = _tf_stream(x_l, y_l, x_u, batch_l, batch_u, seed, ops)
    else:
        stream = _numpy_stream(x_l, y_l, x_u, batch_l, batch_u, seed, ops)
    try:  # what fit checks against the model (labels vs. its logits) when num_classes was not given
        _STREAMS[stream] = {"max_label": int(y_l.max()) if y_l.size else -1, "num_classes": num_classes}
    except TypeError:
        pass
    return stream


def semi_supervised(x_l, y_l, x_u=None, *, batch_labeled=32,
                    batch_unlabeled=128, num_classes=None, seed=0,
                    augment=None, as_tf=None):
    """Endless batches ``({"labeled": xb_l, "unlabeled": xb_u}, yb_l)``.

    Each stream reshuffles at every pass over its set; a set smaller than
    its batch is repeated so every batch has exactly ``batch_labeled`` /
    ``batch_unlabeled`` rows.  With ``x_u`` None or empty the batches are
    plain ``(xb_l, yb_l)``.  Inputs are float32, labels int32.  ``augment``
    (``"translate"`` and/or ``"flip"``) is applied to labeled and unlabeled
    image batches.  Deterministic for a given ``seed``.

    ``as_tf=None`` returns a ``tf.data.Dataset`` when tensorflow is importable
    and keras runs on the tensorflow backend, else a Python generator over
    numpy arrays (works with ``model.fit(..., steps_per_epoch=N)``).
    ``as_tf=True`` / ``False`` forces the choice.
    """
    return _make_stream(x_l, y_l, x_u, batch_labeled, batch_unlabeled,
                        num_classes, seed, augment, as_tf)


def supervised(x, y, *, batch_size=32, num_classes=None, seed=0, augment=None,
               as_tf=None):
    """Endless shuffled ``(xb, yb)`` batches; see :func:`semi_supervised`."""
    return _make_stream(x, y, None, batch_size, None, num_classes, seed,
                        augment, as_tf)
