"""TFDS datasets: the data folder, prepared versions, npz exports (TensorFlow imported lazily)."""

from __future__ import annotations
from kzoo.errors import InvalidArgumentError

import importlib.util
import os
import re
import sys

import numpy as np

from kzoo.io import atomic_file
from kzoo.data.base import (_DESCRIPTIONS, _DIGITS_PATH, _TFDS_CLASSES, _TFDS_NAMES, DATASETS, Dataset,
                             DatasetUnavailableError, _canonical_name)



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
    """Where :func:`export_npz` writes ``name``: ``DATA_DIR/kzoo_npz/NAME.npz`` (also mnist1d's cache)."""
    return os.path.join(resolve_data_dir(data_dir), "kzoo_npz", f"{_canonical_name(name)}.npz")


def export_npz(name, data_dir=None):
    """Write a prepared TFDS set as one ``.npz`` (uint8 images, int32 labels); returns its path.

    :func:`load` reads that file before it looks for TFDS data, without
    TensorFlow: export once on a machine with TensorFlow, then copy the file
    to a JAX-only machine (e.g. a GPU box) under the same data folder.
    """
    key = _canonical_name(name)
    if key not in _TFDS_NAMES:
        raise InvalidArgumentError(f"only the TFDS sets ({', '.join(_TFDS_NAMES)}) are exported; {key!r} needs no data "
                         "folder")
    ds = _load_tfds(key, data_dir, use_npz=False)
    path = npz_path(key, data_dir)

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


SPLIT_ROLES = ("train", "validation", "test")


def check_splits(splits):
    """``{"train": ..., "test": ..., ["validation": ...]}`` of TFDS split strings (defaults: "train", "test").

    Accepts a dict or ``["train=train[:90%]", "validation=train[90%:]"]`` (the command line's form).
    """
    given = {}
    for item in ([] if splits is None else splits.items() if isinstance(splits, dict) else splits):
        role, value = item if isinstance(item, tuple) else (str(item).partition("=")[0], str(item).partition("=")[2])
        role, value = role.strip(), str(value).strip()
        if role not in SPLIT_ROLES or not value:
            raise InvalidArgumentError(f"splits are ROLE=TFDS_SPLIT with ROLE one of {', '.join(SPLIT_ROLES)} (e.g. "
                             f"validation=train[90%:]); got {role}={value!r}")
        given[role] = value
    return {"train": "train", "test": "test", **given}


def _load_tfds(key, data_dir, use_npz=True, download=False, splits=None):
    tfds_name = _TFDS_NAMES[key]
    splits = check_splits(splits)
    default_splits = splits == check_splits(None)  # the npz export holds the train and test splits only
    if use_npz and default_splits and not download and os.path.isfile(npz_path(key, data_dir)):
        return _load_npz(key, npz_path(key, data_dir))
    data_dir = resolve_data_dir(data_dir)
    if not download and _prepared_version_dir(tfds_name, data_dir) is None:
        raise DatasetUnavailableError(
            f"Dataset '{key}' is not available offline: no prepared "
            f"tensorflow_datasets '{tfds_name}' data found in {data_dir}; "
            + _prepare_hint(tfds_name, data_dir) + "; or let TFDS download it (--download, download=True)")
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
                tfds_name, split=which, data_dir=data_dir, download=download,
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

    x_tr, y_tr = split(splits["train"])
    x_te, y_te = split(splits["test"])
    x_va, y_va = split(splits["validation"]) if "validation" in splits else (None, None)
    return Dataset(key, x_tr, y_tr, x_te, y_te, num_classes=_TFDS_CLASSES[key],
                   value_range=(0.0, 1.0), x_val=x_va, y_val=y_va)


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
        elif key == "mnist1d":  # generated (offline) when the mnist1d extra is installed, else its cache
            offline = os.path.isfile(npz_path(key, resolved)) or importlib.util.find_spec("mnist1d") is not None
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


