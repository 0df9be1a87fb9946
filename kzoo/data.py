"""Datasets, labeled/unlabeled splits and batch streams for kzoo.

Importing this module needs only numpy.  TensorFlow, tensorflow_datasets
and keras are imported lazily, inside the functions that need them.

Main entry points:

* :func:`load` - a :class:`Dataset` by name (see :data:`DATASETS`).
* :func:`labeled_split` - pick a (class-balanced) labeled subset.
* :func:`semi_supervised` / :func:`supervised` - infinite batch streams,
  either a ``tf.data.Dataset`` or a plain Python generator over numpy
  arrays (usable with ``model.fit(..., steps_per_epoch=N)`` on any backend).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re
import sys
import weakref

import numpy as np

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "GAUSSIANS25_CENTERS",
    "Dataset",
    "DatasetUnavailableError",
    "augment_images",
    "batches_per_epoch",
    "labeled_split",
    "list_datasets",
    "load",
    "parse_augment",
    "random_flip",
    "random_translate",
    "resolve_data_dir",
    "semi_supervised",
    "supervised",
    "validate_arrays",
]


class DatasetUnavailableError(RuntimeError):
    """A dataset cannot be loaded here (data not prepared or library missing)."""


DATASETS = (
    "digits",
    "moons",
    "circles",
    "spirals",
    "gaussians25",
    "synthetic32",
    "mnist",
    "cifar10",
    "svhn",
    "cifar100",
)

_DESCRIPTIONS = {
    "digits": "scikit-learn 8x8 handwritten digits (shipped), 10 classes, "
    "1300 train / 497 test, images (8, 8, 1) in [0, 1]",
    "moons": "two interleaving half circles, 2 classes, 2-D points "
    "(kwargs: n_samples=1000, n_test=1000, noise=0.1)",
    "circles": "two concentric circles, 2 classes, 2-D points "
    "(kwargs: n_samples=1000, n_test=1000, noise=0.05, factor=0.5)",
    "spirals": "two interleaved spirals (Manifold Mixup Fig. 1), 2 classes, "
    "2-D points (kwargs: n_samples=2000, n_test=1000, noise=0.02)",
    "gaussians25": "mixture of 25 2-D Gaussians on the grid {-4,-2,0,2,4}^2 "
    "with std 0.05 (ALI paper), label = component, 25 classes "
    "(kwargs: n_samples=5000, n_test=2500, std=0.05)",
    "synthetic32": "random 32x32x3 images in [0, 1] with random labels, "
    "10 classes, for speed runs (kwargs: n_samples=2048, n_test=512)",
    "mnist": "MNIST via tensorflow_datasets 'mnist', 10 classes, "
    "images (28, 28, 1) in [0, 1]",
    "cifar10": "CIFAR-10 via tensorflow_datasets 'cifar10', 10 classes, "
    "images (32, 32, 3) in [0, 1]",
    "svhn": "SVHN via tensorflow_datasets 'svhn_cropped' (train/test, "
    "no extra), 10 classes, images (32, 32, 3) in [0, 1]",
    "cifar100": "CIFAR-100 via tensorflow_datasets 'cifar100' (fine labels), "
    "100 classes, images (32, 32, 3) in [0, 1]",
}

# kzoo name -> tensorflow_datasets name.
_TFDS_NAMES = {"mnist": "mnist", "cifar10": "cifar10", "svhn": "svhn_cropped",
               "cifar100": "cifar100"}
# Classes of each TFDS set (as_supervised yields 'label': CIFAR-100's fine labels).
_TFDS_CLASSES = {"mnist": 10, "cifar10": 10, "svhn": 10, "cifar100": 100}
_ALIASES = {"svhn_cropped": "svhn"}

_DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "_data", "digits.npz")
_DIGITS_NUM_TEST = 497

GAUSSIANS25_CENTERS = np.array(
    [(cx, cy) for cx in (-4.0, -2.0, 0.0, 2.0, 4.0)
     for cy in (-4.0, -2.0, 0.0, 2.0, 4.0)],
    dtype=np.float32,
)
GAUSSIANS25_CENTERS.setflags(write=False)

AUGMENTATIONS = ("translate", "flip")


# ---------------------------------------------------------------------------
# Dataset container
# ---------------------------------------------------------------------------


@dataclasses.dataclass(repr=False)
class Dataset:
    """Arrays of one dataset: float32 inputs, int32 class indices."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    value_range: tuple

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, x_train={self.x_train.shape}, "
            f"x_test={self.x_test.shape}, num_classes={self.num_classes}, "
            f"value_range={self.value_range})"
        )


# ---------------------------------------------------------------------------
# Small argument helpers
# ---------------------------------------------------------------------------


def _check_int(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer)):
        raise ValueError(
            f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def _check_float(name, value, minimum=0.0):
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number >= {minimum}; got {value!r}") from None
    if not math.isfinite(out) or out < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum}; "
                         f"got {value!r}")
    return out


def _take_kwargs(name, kwargs, defaults):
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise ValueError(
            f"load({name!r}) got unexpected keyword argument(s) "
            f"{', '.join(unknown)}; accepted: {allowed}")
    out = dict(defaults)
    out.update(kwargs)
    return out


def _canonical_name(name):
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, one of "
                         f"{', '.join(DATASETS)}; got {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: "
                         f"{', '.join(DATASETS)}")
    return key


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load(name, *, data_dir=None, flatten=False, seed=0, **kwargs) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) as a :class:`Dataset`.

    ``flatten=True`` reshapes inputs to ``(n, features)``.  ``seed`` drives
    the generated sets (2-D sets, synthetic32); ``digits`` and the TFDS sets
    ignore it (their splits are fixed).  ``data_dir`` is only used by the
    TFDS sets (see :func:`resolve_data_dir`).  Extra keyword arguments are
    dataset specific (see :func:`list_datasets` descriptions).
    """
    key = _canonical_name(name)
    seed = _check_int("seed", seed, 0)
    if key == "digits":
        _take_kwargs(key, kwargs, {})
        ds = _load_digits()
    elif key in ("moons", "circles", "spirals", "gaussians25"):
        ds = _load_2d(key, seed, kwargs)
    elif key == "synthetic32":
        ds = _load_synthetic32(seed, kwargs)
    else:
        _take_kwargs(key, kwargs, {})
        ds = _load_tfds(key, data_dir)
    if flatten and ds.x_train.ndim > 2:
        ds.x_train = ds.x_train.reshape(len(ds.x_train), -1)
        ds.x_test = ds.x_test.reshape(len(ds.x_test), -1)
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
            raise ValueError(f"factor must be in (0, 1) (inner radius / "
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


def resolve_data_dir(data_dir=None) -> str:
    """Directory holding prepared TFDS data.

    ``data_dir`` if given, else ``$KZOO_DATA_DIR``, else ``$TFDS_DATA_DIR``,
    else ``~/tensorflow_datasets``.
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = (os.environ.get("KZOO_DATA_DIR")
                    or os.environ.get("TFDS_DATA_DIR")
                    or os.path.join("~", "tensorflow_datasets"))
    return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))


_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


def _prepared_version_dir(tfds_name, data_dir):
    """Newest ``data_dir/tfds_name/X.Y.Z`` holding dataset_info.json, or None."""
    root = os.path.join(data_dir, tfds_name)
    try:
        entries = os.listdir(root)
    except OSError:
        return None
    versions = [
        e for e in entries
        if _VERSION_RE.match(e)
        and os.path.isfile(os.path.join(root, e, "dataset_info.json"))
    ]
    if not versions:
        return None
    best = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    return os.path.join(root, best)


def _tfds_importable():
    for mod in ("tensorflow_datasets", "tensorflow"):
        try:
            if sys.modules.get(mod, 0) is None:
                return False
            if importlib.util.find_spec(mod) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def _prepare_hint(tfds_name, data_dir):
    return (
        f"run `python -m tensorflow_datasets.scripts.download_and_prepare "
        f"--datasets={tfds_name} --data_dir={data_dir}` on a machine with "
        f"network and copy {data_dir} here, or pass --data-dir (data_dir=...) "
        f"/ set KZOO_DATA_DIR to a directory that already holds it (or its "
        f"kzoo_npz/ export: `kzoo datasets --export NAME`, readable without TensorFlow)")


def npz_path(name, data_dir=None):
    """Where :func:`export_npz` writes ``name``: ``DATA_DIR/kzoo_npz/NAME.npz``."""
    return os.path.join(resolve_data_dir(data_dir), "kzoo_npz", f"{_canonical_name(name)}.npz")


def export_npz(name, data_dir=None):
    """Write a prepared TFDS set as one ``.npz`` (uint8 images, int32 labels); returns its path.

    :func:`load` reads that file before it looks for TFDS data, without
    TensorFlow: export once on a machine with TensorFlow, then copy the file
    to a JAX-only machine (e.g. a GPU box) under the same data folder.
    """
    key = _canonical_name(name)
    if key not in _TFDS_NAMES:
        raise ValueError(f"only the TFDS sets ({', '.join(_TFDS_NAMES)}) are exported; {key!r} needs no data "
                         "folder")
    ds = _load_tfds(key, data_dir, use_npz=False)
    path = npz_path(key, data_dir)
    from kzoo.experiment import atomic_file

    def u8(x):
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)

    with atomic_file(path, ".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, x_train=u8(ds.x_train), y_train=ds.y_train, x_test=u8(ds.x_test), y_test=ds.y_test,
                     num_classes=np.int32(ds.num_classes))
    return path


def _load_npz(key, path):
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test", "num_classes")}
    except (OSError, ValueError, KeyError) as e:
        raise DatasetUnavailableError(
            f"Dataset '{key}': {path} is not a readable kzoo export ({type(e).__name__}: {e}); write it again "
            f"with `kzoo datasets --export {key}` on a machine with TensorFlow, or delete it to read the TFDS "
            "data") from e
    scale = np.float32(255.0)
    return Dataset(key, arrays["x_train"].astype(np.float32) / scale, arrays["y_train"].astype(np.int32),
                   arrays["x_test"].astype(np.float32) / scale, arrays["y_test"].astype(np.int32),
                   num_classes=int(arrays["num_classes"]), value_range=(0.0, 1.0))


def _load_tfds(key, data_dir, use_npz=True):
    tfds_name = _TFDS_NAMES[key]
    if use_npz and os.path.isfile(npz_path(key, data_dir)):
        return _load_npz(key, npz_path(key, data_dir))
    data_dir = resolve_data_dir(data_dir)
    if _prepared_version_dir(tfds_name, data_dir) is None:
        raise DatasetUnavailableError(
            f"Dataset '{key}' is not available offline: no prepared "
            f"tensorflow_datasets '{tfds_name}' data found in {data_dir}; "
            + _prepare_hint(tfds_name, data_dir))
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DatasetUnavailableError(
            f"Dataset '{key}' needs tensorflow and tensorflow_datasets, "
            f"which could not be imported ({e}); install them with "
            f"`pip install tensorflow tensorflow-datasets`, or, on a machine "
            f"without TensorFlow, copy the file `kzoo datasets --export {key}` "
            f"writes where TensorFlow is installed to "
            f"{npz_path(key, data_dir)}, or use an offline set such as "
            f"'digits'") from e

    def split(which):
        try:
            x, y = tfds.as_numpy(tfds.load(
                tfds_name, split=which, data_dir=data_dir, download=False,
                as_supervised=True, batch_size=-1))
        except Exception as e:  # tfds raises AssertionError, OSError, ...
            if isinstance(e, (KeyboardInterrupt, MemoryError)):
                raise
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise DatasetUnavailableError(
                f"Dataset '{key}' could not be read from {data_dir} "
                f"(split {which!r}: {type(e).__name__}: {first}); the "
                f"prepared data may be incomplete or of another version: "
                + _prepare_hint(tfds_name, data_dir)) from e
        x = np.asarray(x)
        scale = 255.0 if x.dtype == np.uint8 else 1.0
        x = x.astype(np.float32) / np.float32(scale)
        return x, np.asarray(y).astype(np.int32)

    x_tr, y_tr = split("train")
    x_te, y_te = split("test")
    return Dataset(key, x_tr, y_tr, x_te, y_te, num_classes=_TFDS_CLASSES[key],
                   value_range=(0.0, 1.0))


def list_datasets(data_dir=None) -> list:
    """``[{"name", "offline", "description"}, ...]`` in :data:`DATASETS` order.

    ``offline`` is True when the set can be loaded right now without
    network: always for generated sets, when the shipped file exists for
    ``digits``, and for the TFDS sets when prepared data is present in
    :func:`resolve_data_dir` ``(data_dir)`` and tensorflow_datasets is
    installed (checked cheaply: nothing is loaded or imported).
    """
    resolved = resolve_data_dir(data_dir)
    have_tfds = None
    out = []
    for key in DATASETS:
        if key == "digits":
            offline = os.path.exists(_DIGITS_PATH)
        elif key in _TFDS_NAMES:
            if have_tfds is None:
                have_tfds = _tfds_importable()
            offline = os.path.isfile(npz_path(key, resolved)) or bool(have_tfds) and (
                _prepared_version_dir(_TFDS_NAMES[key], resolved) is not None)
        else:
            offline = True
        out.append({"name": key, "offline": offline,
                    "description": _DESCRIPTIONS[key]})
    return out


# ---------------------------------------------------------------------------
# Labeled / unlabeled split
# ---------------------------------------------------------------------------


def _as_class_indices(y, name, num_classes=None):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(
            f"{name} looks one-hot with shape {y.shape}; pass 1-D integer "
            f"class indices instead, e.g. {name}.argmax(axis=1)")
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D integer class indices of shape (n,); got "
            f"shape {y.shape} (use {name}.reshape(-1) if it is (n, 1))")
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer)
                                   or np.issubdtype(y.dtype, np.floating)):
        raise ValueError(f"{name} must hold integer class indices; got dtype "
                         f"{y.dtype}; convert with {name}.astype('int32')")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name} must hold integer class indices but {name}[{i}] = "
                f"{y[i]!r} is not a whole number; pass class indices, not "
                f"probabilities or soft labels")
    if y.size:
        lo, hi = y.min(), y.max()
        if lo < 0:
            raise ValueError(f"{name} has negative class index {lo}; class "
                             f"indices must be >= 0")
        if num_classes is not None and hi >= num_classes:
            raise ValueError(
                f"{name} has class index {int(hi)} but num_classes="
                f"{num_classes} (valid indices 0..{num_classes - 1}); fix "
                f"the labels or pass the right num_classes")
    return y.astype(np.int32)


def labeled_split(x, y, n_labels, *, num_classes=None, seed=0, balanced=True,
                  unlabeled_includes_labeled=True):
    """Pick ``n_labels`` labeled examples; return ``(x_l, y_l, x_u)``.

    With ``balanced`` every class gets ``n_labels // K`` examples and the
    remainder goes one extra to the first classes of a seed-dependent class
    order.  Choice is made by ``numpy.random.default_rng(seed)``: same seed,
    same subset.  ``x_u`` is every training input (labels dropped) when
    ``unlabeled_includes_labeled`` (the VAT paper's setting), else the rest.
    """
    x = np.asarray(x)
    if x.ndim < 1:
        raise ValueError("x must be an array of examples (n, ...); got a scalar")
    if num_classes is not None:
        num_classes = _check_int("num_classes", num_classes, 1)
    y = _as_class_indices(y, "y", num_classes)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length; got "
                         f"len(x)={len(x)} and len(y)={len(y)}")
    seed = _check_int("seed", seed, 0)
    if isinstance(n_labels, (bool, np.bool_)) or not isinstance(
            n_labels, (int, np.integer)):
        raise ValueError(f"n_labels must be an integer; got {n_labels!r}")
    n_labels = int(n_labels)
    if n_labels < 1:
        raise ValueError(f"n_labels={n_labels} gives an empty labeled set; "
                         f"pass n_labels >= 1")
    if n_labels > len(x):
        raise ValueError(f"asked for {n_labels} labels but only {len(x)} "
                         f"examples exist; lower n_labels")
    if num_classes is None:
        num_classes = int(y.max()) + 1
    rng = np.random.default_rng(seed)

    if balanced:
        if n_labels < num_classes:
            raise ValueError(
                f"a balanced split needs at least one label per class but "
                f"n_labels={n_labels} < num_classes={num_classes}; raise "
                f"n_labels or pass balanced=False")
        per_class = np.full(num_classes, n_labels // num_classes)
        per_class[rng.permutation(num_classes)[:n_labels % num_classes]] += 1
        chosen = []
        for c in range(num_classes):
            idx = np.flatnonzero(y == c)
            if per_class[c] > len(idx):
                raise ValueError(
                    f"asked for {n_labels} labels ({per_class[c]} of class "
                    f"{c}) but only {len(idx)} examples of class {c} exist; "
                    f"lower n_labels or pass balanced=False")
            chosen.append(rng.choice(idx, per_class[c], replace=False))
        chosen = rng.permutation(np.concatenate(chosen))
    else:
        chosen = rng.choice(len(x), n_labels, replace=False)

    x_l, y_l = x[chosen], y[chosen]
    if unlabeled_includes_labeled:
        x_u = x
    else:
        keep = np.ones(len(x), dtype=bool)
        keep[chosen] = False
        x_u = x[keep]
    return x_l, y_l, x_u


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _check_inputs(x, name):
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have shape (n, ...features); got shape {x.shape} "
            f"(use {name}.reshape(-1, 1) for one scalar feature)")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(f"{name} must be numeric; got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.inexact):
        bad = ~np.isfinite(x)
        if bad.any():
            rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
            raise ValueError(
                f"{name} contains {int(bad.sum())} NaN/inf values in "
                f"{len(rows)} example(s) (first at index {int(rows[0])}); "
                f"clean or drop those examples")
    return x


def validate_arrays(x_l, y_l, x_u=None, num_classes=None):
    """Check semi-supervised arrays before any work; raise ValueError.

    Returns ``(x_l, y_l, x_u)`` as numpy arrays with ``y_l`` as int32.
    """
    if num_classes is not None:
        num_classes = _check_int("num_classes", num_classes, 1)
    x_l = np.asarray(x_l)
    y_arr = np.asarray(y_l)
    if x_l.ndim >= 1 and y_arr.ndim >= 1 and len(x_l) != len(y_arr):
        raise ValueError(f"x_l and y_l must have the same length; got "
                         f"len(x_l)={len(x_l)} and len(y_l)={len(y_arr)}")
    if x_l.ndim >= 1 and len(x_l) == 0:
        raise ValueError("x_l / y_l are empty: the labeled set needs at "
                         "least one example")
    y_l = _as_class_indices(y_arr, "y_l", num_classes)
    x_l = _check_inputs(x_l, "x_l")
    if x_u is not None:
        x_u = np.asarray(x_u)
        if x_u.ndim >= 1 and len(x_u) == 0:
            return x_l, y_l, x_u
        if x_u.shape[1:] != x_l.shape[1:]:
            raise ValueError(
                f"x_u examples have shape {x_u.shape[1:]} but x_l examples "
                f"have shape {x_l.shape[1:]}; both must come from the same "
                f"input space (same preprocessing / flatten setting)")
        x_u = _check_inputs(x_u, "x_u")
    return x_l, y_l, x_u


_STREAMS = weakref.WeakKeyDictionary()  # stream -> what was checked about its labels


def warn_pixel_range(x, name):
    """Warn when ``x`` looks like 0..255 pixel values (uint8, or images above 2): kzoo's radii assume [0, 1]."""
    x = np.asarray(x)
    if x.size == 0 or not np.issubdtype(x.dtype, np.number):
        return
    hi = float(np.max(x))
    if x.dtype == np.uint8 or (x.ndim >= 3 and hi > 2.0):
        import warnings

        warnings.warn(f"{name} holds values up to {hi:g} (dtype {x.dtype}): it looks like 0..255 pixels. kzoo's "
                      "perturbation radii (VAT's epsilon, ...) assume inputs scaled to [0, 1]; on raw pixels the "
                      f"regularizer is close to 0. Scale first: {name} = {name}.astype('float32') / 255",
                      UserWarning, stacklevel=4)


def check_fit_data(x, y, num_logits, sparse_labels=True):
    """Checks of ``fit``'s data against the model: NaN/inf inputs, one-hot or out-of-range labels; ValueError.

    ``x``/``y`` as arrays are checked in full; a kzoo stream (:func:`semi_supervised`,
    :func:`supervised`) by the labels it was made from. ``num_logits``: the classifier's
    outputs (None: unknown). ``sparse_labels``: the loss takes class indices.
    """
    info = None
    try:
        info = _STREAMS.get(x)
    except TypeError:
        pass
    if info is not None:
        if num_logits and info["num_classes"] is None and info["max_label"] >= num_logits:
            raise ValueError(f"the stream's labels go up to class index {info['max_label']} but the classifier "
                             f"outputs {num_logits} logits (class indices 0..{num_logits - 1}); fix the labels, "
                             f"or pass num_classes={num_logits} to kzoo.data.semi_supervised/supervised to check "
                             "them there")
        return
    arrays = x.items() if isinstance(x, dict) else [("x", x)]
    for name, value in arrays:
        if isinstance(value, np.ndarray):
            _check_inputs(value, name if name == "x" else f"x[{name!r}]")
            warn_pixel_range(value, name if name == "x" else f"x[{name!r}]")
    if isinstance(y, (np.ndarray, list)) and sparse_labels:
        _as_class_indices(y, "y", num_logits)


def check_fit(model, x, y):
    """What ``fit`` of a kzoo model checks first: :func:`check_fit_data` against its classifier's logits, and a
    warning if the classifier ends in a softmax (kzoo's regularizers expect logits)."""
    net = model.network
    out = getattr(net, "outputs", None)
    num_logits = int(out[0].shape[-1]) if out and out[0].shape[-1] is not None else None
    check_fit_data(x, y, num_logits, type(getattr(model, "loss", None)).__name__ == "SparseCategoricalCrossentropy")
    layer = net.layers[-1] if getattr(net, "layers", None) else None
    if type(layer).__name__ == "Softmax" or getattr(getattr(layer, "activation", None), "__name__", "") == "softmax":
        import warnings

        warnings.warn(f"the classifier's last layer ({layer.name}) is a softmax: kzoo expects logits, so the "
                      "regularizers compare probabilities and the VAT term is close to 0. Remove the softmax "
                      "(activation=None) and predict with keras.ops.softmax(model(x))", UserWarning, stacklevel=3)


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
            raise ValueError(
                f"augment must be None, a string or a sequence of names from "
                f"{AUGMENTATIONS}; got {augment!r}") from None
    out = []
    for n in names:
        key = n.strip().lower() if isinstance(n, str) else n
        if key in ("none", ""):
            continue
        if key not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {n!r}; valid names: "
                             f"{', '.join(AUGMENTATIONS)}")
        if key not in out:
            out.append(key)
    # Fixed order: translate then flip, whatever order was given.
    return tuple(a for a in AUGMENTATIONS if a in out)


def _check_image_batch(x, what="augmentation"):
    if np.ndim(x) != 4:
        raise ValueError(
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
    return ds.prefetch(tf.data.AUTOTUNE)


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
            raise ImportError(
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
