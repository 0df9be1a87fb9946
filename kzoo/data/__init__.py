"""Datasets, labeled/unlabeled splits and batch streams for kzoo.

Importing this package needs only numpy.  TensorFlow, tensorflow_datasets
and keras are imported lazily, inside the functions that need them.

Main entry points:

* :func:`load` - a :class:`Dataset` by name (see :data:`DATASETS`).
* :func:`labeled_split` - pick a (class-balanced) labeled subset.
* :func:`semi_supervised` / :func:`supervised` - infinite batch streams,
  either a ``tf.data.Dataset`` or a plain Python generator over numpy
  arrays (usable with ``model.fit(..., steps_per_epoch=N)`` on any backend).

Modules: ``base`` (names, :class:`Dataset`), ``datasets`` (:func:`load`, the
shipped and generated sets), ``tfds`` (TFDS sets, npz exports), ``splits``,
``augment``, ``streams``.
"""

from kzoo.data.augment import augment_images, parse_augment, random_flip, random_translate
from kzoo.data.base import AUGMENTATIONS, DATASETS, GAUSSIANS25_CENTERS, Dataset, DatasetUnavailableError
from kzoo.data.datasets import load
from kzoo.data.splits import (check_fit, check_fit_data, labeled_split, looks_like_raw_pixels, validate_arrays,
                              warn_pixel_range)
from kzoo.data.streams import batches_per_epoch, semi_supervised, supervised
from kzoo.data.tfds import check_splits, export_npz, list_datasets, npz_path, resolve_data_dir

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "GAUSSIANS25_CENTERS",
    "Dataset",
    "DatasetUnavailableError",
    "augment_images",
    "batches_per_epoch",
    "check_fit",
    "check_fit_data",
    "check_splits",
    "export_npz",
    "labeled_split",
    "list_datasets",
    "load",
    "npz_path",
    "parse_augment",
    "random_flip",
    "random_translate",
    "resolve_data_dir",
    "semi_supervised",
    "supervised",
    "validate_arrays",
    "looks_like_raw_pixels",
    "warn_pixel_range",
]
