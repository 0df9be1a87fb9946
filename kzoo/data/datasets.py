"""Loading a dataset by name: shipped, generated or TFDS (numpy only at import)."""

from __future__ import annotations
from kzoo.errors import InvalidArgumentError

import os

import numpy as np

from kzoo.data.base import (_DIGITS_NUM_TEST, _DIGITS_PATH, GAUSSIANS25_CENTERS, Dataset, DatasetUnavailableError,
                             _canonical_name, _check_float, _check_int, _take_kwargs)
from kzoo.data.base import _TFDS_NAMES
from kzoo.data.tfds import _load_tfds, check_splits, npz_path
from kzoo.io import atomic_file



# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load(name, *, data_dir=None, flatten=False, seed=0, download=False, splits=None, **kwargs) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) as a :class:`Dataset`.

    ``flatten=True`` reshapes inputs to ``(n, features)`` (``mnist1d``: ``(n, 40, 1)`` -> ``(n, 40)``).  ``seed`` drives
    the generated sets (2-D sets, synthetic32); ``digits`` and the TFDS sets
    ignore it (their splits are fixed).  ``data_dir`` is only used by the
    TFDS sets (see :func:`resolve_data_dir`).  Extra keyword arguments are
    dataset specific (see :func:`list_datasets` descriptions).

    TFDS sets only: ``download=True`` lets TFDS download and prepare a set that
    is not in ``data_dir`` yet (off by default: kzoo never touches the network
    unless asked); ``splits`` chooses the TFDS splits, e.g.
    ``{"train": "train[:90%]", "validation": "train[90%:]", "test": "test"}``
    (a validation split lands in ``x_val``/``y_val``).
    """
    key = _canonical_name(name)
    seed = _check_int("seed", seed, 0)
    splits = check_splits(splits)
    if key not in _TFDS_NAMES and splits != check_splits(None):
        raise InvalidArgumentError(f"splits apply to the TFDS sets ({', '.join(_TFDS_NAMES)}); {key!r} has its own")
    if key == "digits":
        _take_kwargs(key, kwargs, {})
        ds = _load_digits()
    elif key == "mnist1d":
        _take_kwargs(key, kwargs, {})
        ds = _load_mnist1d(data_dir)
    elif key in ("moons", "circles", "spirals", "gaussians25"):
        ds = _load_2d(key, seed, kwargs)
    elif key == "synthetic32":
        ds = _load_synthetic32(seed, kwargs)
    else:
        _take_kwargs(key, kwargs, {})
        ds = _load_tfds(key, data_dir, download=bool(download), splits=splits)
    if flatten and ds.x_train.ndim > 2:
        ds.x_train = ds.x_train.reshape(len(ds.x_train), -1)
        ds.x_test = ds.x_test.reshape(len(ds.x_test), -1)
        if ds.x_val is not None:
            ds.x_val = ds.x_val.reshape(len(ds.x_val), -1)
    return ds


def _fixed_key(idx):
    # Knuth multiplicative hash: a fixed pseudo-random order that does not
    # depend on numpy's RNG implementation (so the split never changes).
    return (idx.astype(np.uint64) * np.uint64(2654435761)
            + np.uint64(12345)) % np.uint64(2 ** 32)


def _digits_test_indices(y, num_test):
    counts = np.bincount(y)
    exact = counts * num_test / counts.sum()
    per_class = np.floor(exact).astype(int)
    short = num_test - per_class.sum()
    # Largest remainder, ties broken by class index (stable sort).
    order = np.argsort(-(exact - per_class), kind="stable")
    per_class[order[:short]] += 1
    test = []
    for c, k in enumerate(per_class):
        idx = np.flatnonzero(y == c)
        idx = idx[np.argsort(_fixed_key(idx), kind="stable")]
        test.append(idx[:k])
    return np.sort(np.concatenate(test))


def _load_digits():
    if not os.path.exists(_DIGITS_PATH):
        raise DatasetUnavailableError(
            f"Dataset 'digits' is missing its shipped file {_DIGITS_PATH}; "
            f"reinstall kzoo (the file is package data)")
    with np.load(_DIGITS_PATH) as f:
        x = f["x"].astype(np.float32) / 16.0
        y = f["y"].astype(np.int32)
    x = x.reshape(len(x), 8, 8, 1)
    test = _digits_test_indices(y, _DIGITS_NUM_TEST)
    mask = np.zeros(len(y), dtype=bool)
    mask[test] = True
    return Dataset("digits", x[~mask], y[~mask], x[mask], y[mask],
                   num_classes=10, value_range=(0.0, 1.0))


# MNIST-1D: the generator's published defaults (mnist1d.data.get_dataset_args(): 5000 sequences, 80% train,
# length 40, seed 42). The cache records them; a cache written with other settings is generated again.
_MNIST1D_SHAPES = {"x_train": (4000, 40), "y_train": (4000,), "x_test": (1000, 40), "y_test": (1000,)}
_MNIST1D_CACHE_VERSION = 1


def _mnist1d_generate():
    """The mnist1d package's dataset at its defaults, made offline (``make_dataset``, never ``get_dataset``,
    which downloads); the global ``random``/``numpy`` RNG states it seeds are restored afterwards."""
    import random

    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise DatasetUnavailableError(
            f"Dataset 'mnist1d' needs the mnist1d package to be generated once ({e}); install kzoo's mnist1d "
            "extra: pip install 'kzoo[mnist1d]'") from None
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        args = get_dataset_args()
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    settings = {k: v for k, v in vars(args).items() if k != "url"} if hasattr(args, "__dict__") else {}
    return {"x_train": np.asarray(data["x"], np.float32), "y_train": np.asarray(data["y"], np.int32),
            "x_test": np.asarray(data["x_test"], np.float32), "y_test": np.asarray(data["y_test"], np.int32),
            "settings": np.array(repr(sorted(settings.items()))), "version": np.int32(_MNIST1D_CACHE_VERSION)}


def _mnist1d_read(path):
    """The cached arrays, or None when the file is missing, a link, unreadable or of another shape/version."""
    if os.path.islink(path) or not os.path.isfile(path):
        return None  # a link kzoo did not make is never followed: the cache is written again in its place
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in (*_MNIST1D_SHAPES, "version")}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if int(arrays["version"]) != _MNIST1D_CACHE_VERSION or any(
            arrays[k].shape != shape for k, shape in _MNIST1D_SHAPES.items()):
        return None
    return arrays


def _load_mnist1d(data_dir):
    path = npz_path("mnist1d", data_dir)
    arrays = _mnist1d_read(path)
    if arrays is None:
        arrays = _mnist1d_generate()
        with atomic_file(path, ".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    x_tr = arrays["x_train"].astype(np.float32)[..., None]
    x_te = arrays["x_test"].astype(np.float32)[..., None]
    lo, hi = float(min(x_tr.min(), x_te.min())), float(max(x_tr.max(), x_te.max()))
    return Dataset("mnist1d", x_tr, arrays["y_train"].astype(np.int32), x_te, arrays["y_test"].astype(np.int32),
                   num_classes=10, value_range=(lo, hi))


def _two_class_labels(n):
    n0 = n // 2
    y = np.zeros(n, dtype=np.int32)
    y[n0:] = 1
    return y


def _moons(n, rng, noise):
    y = _two_class_labels(n)
    t = rng.uniform(0.0, np.pi, n)
    x = np.where(
        (y == 0)[:, None],
        np.stack([np.cos(t), np.sin(t)], 1),
        np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], 1),
    )
    return x, y


def _circles(n, rng, noise, factor):
    y = _two_class_labels(n)
    t = rng.uniform(0.0, 2.0 * np.pi, n)
    r = np.where(y == 0, 1.0, factor)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1), y


_SPIRAL_MAX_ANGLE = 780.0 * 2.0 * np.pi / 360.0  # a bit over two turns


def _spirals(n, rng):
    y = _two_class_labels(n)
    t = np.sqrt(rng.uniform(0.0, 1.0, n)) * _SPIRAL_MAX_ANGLE
    x = np.stack([-np.cos(t) * t, np.sin(t) * t], 1) / _SPIRAL_MAX_ANGLE
    x[y == 1] *= -1.0
    return x, y


def _gaussians25(n, rng):
    y = (np.arange(n) % 25).astype(np.int32)
    return GAUSSIANS25_CENTERS[y].astype(np.float64), y


_2D_DEFAULTS = {
    "moons": {"n_samples": 1000, "n_test": 1000, "noise": 0.1},
    "circles": {"n_samples": 1000, "n_test": 1000, "noise": 0.05,
                "factor": 0.5},
    "spirals": {"n_samples": 2000, "n_test": 1000, "noise": 0.02},
    "gaussians25": {"n_samples": 5000, "n_test": 2500, "std": 0.05},
}


def _load_2d(key, seed, kwargs):
    opts = _take_kwargs(key, kwargs, _2D_DEFAULTS[key])
    n_train = _check_int("n_samples", opts["n_samples"], 1)
    n_test = _check_int("n_test", opts["n_test"], 1)
    noise = _check_float("std" if key == "gaussians25" else "noise",
                         opts.get("std", opts.get("noise")))
    if key == "circles":
        factor = _check_float("factor", opts["factor"])
        if not 0.0 < factor < 1.0:
            raise InvalidArgumentError(f"factor must be in (0, 1) (inner radius / "
                             f"outer radius); got {factor}")
    rng = np.random.default_rng(seed)

    def make(n):
        if key == "moons":
            x, y = _moons(n, rng, noise)
        elif key == "circles":
            x, y = _circles(n, rng, noise, factor)
        elif key == "spirals":
            x, y = _spirals(n, rng)
        else:
            x, y = _gaussians25(n, rng)
        x = x + rng.normal(0.0, noise, x.shape) if noise > 0 else x
        perm = rng.permutation(n)
        return x[perm].astype(np.float32), y[perm].astype(np.int32)

    x_tr, y_tr = make(n_train)
    x_te, y_te = make(n_test)
    lo = float(min(x_tr.min(), x_te.min()))
    hi = float(max(x_tr.max(), x_te.max()))
    return Dataset(key, x_tr, y_tr, x_te, y_te,
                   num_classes=25 if key == "gaussians25" else 2,
                   value_range=(lo, hi))


def _load_synthetic32(seed, kwargs):
    opts = _take_kwargs("synthetic32", kwargs,
                        {"n_samples": 2048, "n_test": 512})
    n_train = _check_int("n_samples", opts["n_samples"], 1)
    n_test = _check_int("n_test", opts["n_test"], 1)
    rng = np.random.default_rng(seed)

    def make(n):
        x = rng.random((n, 32, 32, 3), dtype=np.float32)
        y = rng.integers(0, 10, n).astype(np.int32)
        return x, y

    x_tr, y_tr = make(n_train)
    x_te, y_te = make(n_test)
    return Dataset("synthetic32", x_tr, y_tr, x_te, y_te, num_classes=10,
                   value_range=(0.0, 1.0))


