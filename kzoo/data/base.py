"""Dataset names, the :class:`Dataset` container and small argument helpers (numpy only)."""

from __future__ import annotations
from kzoo.errors import InvalidArgumentError

import dataclasses
import os

import numpy as np

from kzoo.checks import check_int as _check_int  # noqa: F401  (used by the other kzoo.data modules)
from kzoo.checks import check_positive
from kzoo.errors import DatasetUnavailableError  # noqa: F401  (kzoo.data.DatasetUnavailableError)


DATASETS = (
    "digits",
    "mnist1d",
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
    "mnist1d": "MNIST-1D (Greydanus & Kobak, 2020): the mnist1d package's generator at its published defaults, "
    "10 classes, 4000 train / 1000 test, sequences (40, 1) (standardized); generated once and cached as "
    "DATA_DIR/kzoo_npz/mnist1d.npz (needs the mnist1d extra to generate)",
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

_DIGITS_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
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
    x_val: np.ndarray = None  # a validation split, when one was asked for (TFDS ``splits``)
    y_val: np.ndarray = None

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


def _check_float(name, value):
    return check_positive(name, value, allow_zero=True)


def _take_kwargs(name, kwargs, defaults):
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise InvalidArgumentError(
            f"load({name!r}) got unexpected keyword argument(s) "
            f"{', '.join(unknown)}; accepted: {allowed}")
    out = dict(defaults)
    out.update(kwargs)
    return out


def _canonical_name(name):
    if not isinstance(name, str):
        raise InvalidArgumentError(f"dataset name must be a string, one of "
                         f"{', '.join(DATASETS)}; got {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise InvalidArgumentError(f"unknown dataset {name!r}; valid names: "
                         f"{', '.join(DATASETS)}")
    return key


