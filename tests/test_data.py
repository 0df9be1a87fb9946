"""Tests for kzoo.data: loading, splits, validation, batching, augmentation."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import write_tfds_metadata

import kzoo.data as kd

DATA_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "kzoo", "data", "__init__.py")


def _take(stream, n):
    it = iter(stream)
    return [next(it) for _ in range(n)]


def _ids_data(n, k=10, shape=(3,)):
    """x rows carry their own index in every feature, labels = i % k."""
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], int(np.prod(shape)),
                  axis=1).reshape((n,) + shape)
    y = (np.arange(n) % k).astype(np.int64)
    return x, y


def _row_ids(xb):
    flat = np.asarray(xb).reshape(len(xb), -1)
    assert (flat == flat[:, :1]).all()
    return flat[:, 0].astype(int)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def test_names_and_unknown_dataset():
    assert kd.DATASETS == ("digits", "mnist1d", "moons", "circles", "spirals",
                           "gaussians25", "synthetic32", "mnist", "cifar10",
                           "svhn", "cifar100")
    with pytest.raises(ValueError) as e:
        kd.load("imagenet")
    msg = str(e.value)
    assert "imagenet" in msg and "digits" in msg and "svhn" in msg
    with pytest.raises(ValueError, match="unexpected keyword.*bogus"):
        kd.load("moons", bogus=1)
    with pytest.raises(ValueError, match="unexpected keyword"):
        kd.load("digits", n_samples=10)


def test_digits_fixed_split():
    a = kd.load("digits", seed=0)
    b = kd.load("digits", seed=7)
    assert a.x_train.shape == (1300, 8, 8, 1) and a.x_test.shape == (497, 8, 8, 1)
    assert a.input_shape == (8, 8, 1)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32
    assert a.num_classes == 10 and a.value_range == (0.0, 1.0)
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    # Values are k/16.
    assert np.allclose(a.x_train * 16, np.round(a.x_train * 16))
    for f in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    # Stratified: every class has ~27.7% of its examples in the test split.
    tr, te = np.bincount(a.y_train, minlength=10), np.bincount(a.y_test)
    frac = te / (tr + te)
    assert np.all(np.abs(frac - 497 / 1797) < 0.01), frac
    with np.load(os.path.join(os.path.dirname(os.path.dirname(DATA_PY)), "_data",
                              "digits.npz")) as f:
        raw_x, raw_y = f["x"], f["y"]
    assert raw_x.shape == (1797, 8, 8) and raw_x.dtype == np.uint8
    np.testing.assert_array_equal(tr + te, np.bincount(raw_y))
    # Train and test are disjoint and together make the whole set.
    all_rows = np.concatenate([a.x_train, a.x_test]).reshape(1797, 64) * 16
    key = lambda m: sorted(map(bytes, np.asarray(m, np.uint8)))
    assert key(all_rows) == key(raw_x.reshape(1797, 64))
    flat = kd.load("digits", flatten=True)
    assert flat.x_train.shape == (1300, 64) and flat.input_shape == (64,)
    np.testing.assert_array_equal(flat.x_train, a.x_train.reshape(1300, 64))


@pytest.mark.parametrize("name,n_train", [("moons", 1000), ("circles", 1000),
                                          ("spirals", 2000)])
def test_two_class_2d_sets(name, n_train):
    ds = kd.load(name, seed=1)
    assert ds.x_train.shape == (n_train, 2) and ds.x_test.shape == (1000, 2)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.num_classes == 2
    np.testing.assert_array_equal(np.bincount(ds.y_train), [n_train // 2] * 2)
    lo = min(ds.x_train.min(), ds.x_test.min())
    hi = max(ds.x_train.max(), ds.x_test.max())
    assert ds.value_range == (pytest.approx(lo), pytest.approx(hi))
    # Classes are shuffled, not stored in blocks.
    assert 0.3 < ds.y_train[: n_train // 2].mean() < 0.7
    same = kd.load(name, seed=1)
    other = kd.load(name, seed=2)
    np.testing.assert_array_equal(ds.x_train, same.x_train)
    assert not np.array_equal(ds.x_train, other.x_train)
    small = kd.load(name, n_samples=11, n_test=5, noise=0.0)
    assert small.x_train.shape == (11, 2) and small.x_test.shape == (5, 2)


def test_2d_geometry():
    c = kd.load("circles", noise=0.0)
    r = np.linalg.norm(c.x_train, axis=1)
    np.testing.assert_allclose(r[c.y_train == 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(r[c.y_train == 1], 0.5, atol=1e-5)
    m = kd.load("moons", noise=0.0)
    outer = m.x_train[m.y_train == 0]
    np.testing.assert_allclose(np.linalg.norm(outer, axis=1), 1.0, atol=1e-5)
    assert (outer[:, 1] >= -1e-6).all()
    s = kd.load("spirals", noise=0.0)
    # The two spirals are point reflections of each other: class-1 points
    # negated lie on the class-0 curve (r = angle / max_angle).
    for pts, sign in ((s.x_train[s.y_train == 0], 1), (s.x_train[s.y_train == 1], -1)):
        p = sign * pts.astype(np.float64)
        r = np.linalg.norm(p, axis=1) * (780 * 2 * np.pi / 360)
        np.testing.assert_allclose(-np.cos(r) * r, p[:, 0] * 780 * 2 * np.pi / 360, atol=1e-3)
    with pytest.raises(ValueError, match="noise"):
        kd.load("moons", noise=-1)
    with pytest.raises(ValueError, match="factor"):
        kd.load("circles", factor=1.5)


def test_gaussians25():
    c = kd.GAUSSIANS25_CENTERS
    assert c.shape == (25, 2)
    assert sorted(map(tuple, c.tolist())) == [(a, b) for a in (-4, -2, 0, 2, 4)
                                              for b in (-4, -2, 0, 2, 4)]
    ds = kd.load("gaussians25", n_samples=2500, n_test=500, seed=3)
    assert ds.num_classes == 25 and ds.x_train.shape == (2500, 2)
    np.testing.assert_array_equal(np.bincount(ds.y_train), [100] * 25)
    dist = np.linalg.norm(ds.x_train - c[ds.y_train], axis=1)
    assert dist.max() < 0.05 * 6  # well inside 6 std of its own center
    # Per-coordinate spread matches std 0.05.
    assert 0.045 < (ds.x_train - c[ds.y_train]).std() < 0.055
    # Nearest center is the label's center for every sample.
    nearest = np.argmin(((ds.x_test[:, None] - c[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, ds.y_test)
    assert ds.value_range[0] < -4 and ds.value_range[1] > 4


def test_synthetic32():
    ds = kd.load("synthetic32", n_samples=64, n_test=16, seed=0)
    assert ds.x_train.shape == (64, 32, 32, 3) and ds.x_test.shape == (16, 32, 32, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.num_classes == 10 and set(ds.y_train) <= set(range(10))
    assert kd.load("synthetic32").x_train.shape[0] == 2048
    assert kd.load("synthetic32", flatten=True, n_samples=4).x_train.shape == (4, 3072)


def test_list_datasets(tmp_path):
    info = kd.list_datasets(data_dir=str(tmp_path))
    assert [d["name"] for d in info] == list(kd.DATASETS)
    by = {d["name"]: d for d in info}
    assert all(set(d) >= {"name", "offline", "description"} for d in info)
    for name in ("digits", "moons", "circles", "spirals", "gaussians25", "synthetic32"):
        assert by[name]["offline"] is True
    for name in ("mnist", "cifar10", "svhn", "cifar100"):
        assert by[name]["offline"] is False
    # A version folder with dataset_info.json counts as prepared.
    (tmp_path / "cifar10" / "3.0.2").mkdir(parents=True)
    assert {d["name"]: d["offline"] for d in kd.list_datasets(str(tmp_path))}["cifar10"] is False
    (tmp_path / "cifar10" / "3.0.2" / "dataset_info.json").write_text("{}")
    by = {d["name"]: d["offline"] for d in kd.list_datasets(str(tmp_path))}
    assert by["cifar10"] is True and by["mnist"] is False


def test_absent_tfds_data_message(tmp_path, monkeypatch):
    with pytest.raises(kd.DatasetUnavailableError) as e:
        kd.load("svhn", data_dir=str(tmp_path))
    msg = str(e.value)
    assert "\n" not in msg
    assert "svhn" in msg and str(tmp_path) in msg
    assert "download_and_prepare --datasets=svhn_cropped" in msg
    assert "--data-dir" in msg
    assert isinstance(e.value, RuntimeError)
    with pytest.raises(kd.DatasetUnavailableError, match="download_and_prepare --datasets=cifar100 "):
        kd.load("cifar100", data_dir=str(tmp_path))
    # Default data dir: KZOO_DATA_DIR wins over TFDS_DATA_DIR.
    other = tmp_path / "tfds"
    monkeypatch.setenv("KZOO_DATA_DIR", str(tmp_path / "kz"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(other))
    assert kd.resolve_data_dir() == str(tmp_path / "kz")
    kz_dir = re.escape(str(tmp_path / "kz"))
    with pytest.raises(kd.DatasetUnavailableError, match="mnist.*" + kz_dir):
        kd.load("mnist")
    monkeypatch.delenv("KZOO_DATA_DIR")
    assert kd.resolve_data_dir() == str(other)
    monkeypatch.delenv("TFDS_DATA_DIR")
    assert kd.resolve_data_dir() == os.path.expanduser("~/tensorflow_datasets")


@pytest.mark.parametrize("name,tfds_name,shape,classes", [
    ("mnist", "mnist", (28, 28, 1), 10),
    ("svhn", "svhn_cropped", (32, 32, 3), 10),
    ("cifar100", "cifar100", (32, 32, 3), 100),
])
def test_tfds_loading_with_mock(tmp_path, name, tfds_name, shape, classes):
    tfds = pytest.importorskip("tensorflow_datasets")
    data_dir = str(tmp_path)
    # Real metadata makes the mock use known split sizes (batch_size=-1
    # otherwise becomes sys.maxsize and crashes TF).
    write_tfds_metadata(data_dir, tfds_name, 7)
    by = {d["name"]: d["offline"] for d in kd.list_datasets(data_dir)}
    assert by[name] is True
    # Metadata alone (no records): a one-line DatasetUnavailableError.
    with pytest.raises(kd.DatasetUnavailableError) as e:
        kd.load(name, data_dir=data_dir)
    assert "\n" not in str(e.value) and data_dir in str(e.value)
    with tfds.testing.mock_data(num_examples=7, data_dir=data_dir):
        ds = kd.load(name, data_dir=data_dir)
        flat = kd.load(name, data_dir=data_dir, flatten=True)
    assert ds.name == name and ds.num_classes == classes
    assert ds.x_train.shape == (7,) + shape and ds.x_test.shape == (7,) + shape
    assert ds.input_shape == shape
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.x_train.max() > 0.5  # scaled from uint8, not left at 0..255/255**2
    assert ds.y_train.min() >= 0 and ds.y_train.max() < classes
    assert ds.value_range == (0.0, 1.0)
    assert flat.x_train.shape == (7, int(np.prod(shape)))


def test_npz_export_is_read_without_tensorflow(tmp_path, monkeypatch, capsys):
    """`kzoo datasets --export` writes what load() then reads with TF and TFDS unimportable."""
    import shutil
    import sys

    tfds = pytest.importorskip("tensorflow_datasets")
    from kzoo.cli import main

    data_dir = str(tmp_path / "tfds")
    write_tfds_metadata(data_dir, "svhn_cropped", 9)
    with tfds.testing.mock_data(num_examples=9, data_dir=data_dir):
        reference = kd.load("svhn", data_dir=data_dir)
        assert main(["datasets", "--export", "svhn", "--data-dir", data_dir]) == 0
    path = kd.npz_path("svhn", data_dir)
    assert f"wrote {path}" in capsys.readouterr().out
    # a JAX-only machine: the export alone, in another folder, no TensorFlow
    other = str(tmp_path / "gpu_box")
    os.makedirs(os.path.join(other, "kzoo_npz"))
    shutil.copy(path, kd.npz_path("svhn", other))
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    assert {d["name"]: d["offline"] for d in kd.list_datasets(other)}["svhn"] is True
    ds = kd.load("svhn", data_dir=other)
    for split in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, split), getattr(reference, split))
    assert ds.num_classes == 10 and ds.x_train.dtype == np.float32
    # a damaged export says what to do, in one line
    with open(kd.npz_path("svhn", other), "wb") as f:
        f.write(b"not an npz")
    with pytest.raises(kd.DatasetUnavailableError, match="--export svhn") as e:
        kd.load("svhn", data_dir=other)
    assert "\n" not in str(e.value)
    # without TensorFlow and without the export: the error says how to get one
    os.remove(kd.npz_path("svhn", other))
    shutil.copytree(os.path.join(data_dir, "svhn_cropped"), os.path.join(other, "svhn_cropped"))  # prepared TFDS
    with pytest.raises(kd.DatasetUnavailableError, match="kzoo datasets --export svhn") as e:
        kd.load("svhn", data_dir=other)
    assert kd.npz_path("svhn", other) in str(e.value)
    # only the TFDS sets are exported
    assert main(["datasets", "--export", "moons", "--data-dir", data_dir]) == 2
    assert "only the TFDS sets" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# labeled_split
# ---------------------------------------------------------------------------


def test_labeled_split_balanced_and_deterministic():
    x, y = _ids_data(1000)
    x_l, y_l, x_u = kd.labeled_split(x, y, 100, seed=0)
    assert x_l.shape == (100, 3) and y_l.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(y_l), [10] * 10)
    ids = _row_ids(x_l)
    assert len(set(ids)) == 100
    np.testing.assert_array_equal(y[ids], y_l)  # labels stay with inputs
    assert x_u.shape == x.shape  # VAT setting: all inputs are unlabeled too
    again = kd.labeled_split(x, y, 100, seed=0)
    np.testing.assert_array_equal(again[0], x_l)
    other = kd.labeled_split(x, y, 100, seed=1)
    assert set(_row_ids(other[0])) != set(ids)


def test_labeled_split_remainder_and_rest():
    x, y = _ids_data(500)
    extra_sets = set()
    for seed in range(6):
        _, y_l, _ = kd.labeled_split(x, y, 13, seed=seed)
        counts = np.bincount(y_l, minlength=10)
        assert counts.sum() == 13 and set(counts) == {1, 2}
        assert (counts == 2).sum() == 3
        extra_sets.add(tuple(np.flatnonzero(counts == 2)))
    assert len(extra_sets) > 1  # which classes get the extra depends on seed
    x_l, y_l, x_u = kd.labeled_split(x, y, 50, seed=0,
                                     unlabeled_includes_labeled=False)
    assert len(x_u) == 450
    assert not set(_row_ids(x_l)) & set(_row_ids(x_u))
    assert set(_row_ids(x_l)) | set(_row_ids(x_u)) == set(range(500))
    x_l, y_l, _ = kd.labeled_split(x, y, 7, balanced=False, seed=0)
    assert len(x_l) == 7 and len(set(_row_ids(x_l))) == 7


def test_labeled_split_errors():
    x, y = _ids_data(100)
    with pytest.raises(ValueError, match="empty labeled set"):
        kd.labeled_split(x, y, 0)
    with pytest.raises(ValueError, match="asked for 101 labels but only 100"):
        kd.labeled_split(x, y, 101)
    y2 = y.copy()
    y2[y2 == 3] = 4  # class 3 now has no examples; class 4 has 20
    with pytest.raises(ValueError, match="only 0 examples of class 3"):
        kd.labeled_split(x, y2, 20)
    y3 = np.where((y == 0) & (np.arange(100) >= 50), 1, y)  # class 0: 5 rows
    with pytest.raises(ValueError, match=r"asked for 60 labels \(6 of class 0\) "
                       r"but only 5 examples of class 0 exist"):
        kd.labeled_split(x, y3, 60)
    assert len(kd.labeled_split(x, y3, 50)[0]) == 50
    with pytest.raises(ValueError, match="n_labels=5 < num_classes=10.*balanced=False"):
        kd.labeled_split(x, y, 5)
    assert len(kd.labeled_split(x, y, 5, balanced=False)[0]) == 5
    with pytest.raises(ValueError, match="num_classes=5"):
        kd.labeled_split(x, y, 20, num_classes=5)
    with pytest.raises(ValueError, match="same length"):
        kd.labeled_split(x, y[:10], 5)


# ---------------------------------------------------------------------------
# validate_arrays
# ---------------------------------------------------------------------------


def test_validate_arrays_errors():
    x = np.zeros((6, 4), np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    x_l, y_l, x_u = kd.validate_arrays(x, y.astype(np.float64), x, num_classes=3)
    assert y_l.dtype == np.int32
    cases = [
        (dict(x_l=x, y_l=y[:5]), "len\\(x_l\\)=6 and len\\(y_l\\)=5"),
        (dict(x_l=x[:0], y_l=y[:0]), "empty"),
        (dict(x_l=x, y_l=np.eye(3)[y]), "one-hot.*argmax"),
        (dict(x_l=x, y_l=y + 0.5), "not a whole number"),
        (dict(x_l=x, y_l=y - 1), "negative class index -1"),
        (dict(x_l=x, y_l=y, num_classes=2), "class index 2 but num_classes=2"),
        (dict(x_l=x, y_l=y.astype(str)), "integer class indices"),
        (dict(x_l=np.where(np.eye(6, 4) > 0, np.nan, x), y_l=y), "x_l contains 4 NaN/inf.*index 0"),
        (dict(x_l=x, y_l=y, x_u=np.full((3, 4), np.inf)), "x_u contains 12 NaN/inf"),
        (dict(x_l=x, y_l=y, x_u=np.zeros((3, 5))),
         r"x_u examples have shape \(5,\) but x_l examples have shape \(4,\)"),
        (dict(x_l=np.zeros(6), y_l=y), "shape \\(n, ...features\\)"),
    ]
    for kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            kd.validate_arrays(**kwargs)
    # The same checks guard the batch streams, plus batch sizes.
    with pytest.raises(ValueError, match="x_u examples have shape"):
        kd.semi_supervised(x, y, np.zeros((3, 2, 2)), as_tf=False)
    with pytest.raises(ValueError, match="batch_labeled must be >= 1"):
        kd.semi_supervised(x, y, x, batch_labeled=0, as_tf=False)
    with pytest.raises(ValueError, match="batch_unlabeled must be >= 1"):
        kd.semi_supervised(x, y, x, batch_unlabeled=-3, as_tf=False)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        kd.supervised(x, y, batch_size=0, as_tf=False)
    with pytest.raises(ValueError, match="integer"):
        kd.supervised(x, y, batch_size=2.5, as_tf=False)


# ---------------------------------------------------------------------------
# Batch streams
# ---------------------------------------------------------------------------


def test_semi_supervised_batches_numpy():
    x, y = _ids_data(40)
    x_u, _ = _ids_data(100)
    x_u = x_u + 1000  # distinguish unlabeled rows
    stream = kd.semi_supervised(x, y, x_u, batch_labeled=8, batch_unlabeled=32,
                                seed=3, as_tf=False)
    assert iter(stream) is stream and hasattr(stream, "__next__")
    batches = _take(stream, 10)
    for inputs, yb in batches:
        assert set(inputs) == {"labeled", "unlabeled"}
        assert inputs["labeled"].shape == (8, 3) and inputs["unlabeled"].shape == (32, 3)
        assert inputs["labeled"].dtype == np.float32 and yb.dtype == np.int32
        np.testing.assert_array_equal(y[_row_ids(inputs["labeled"])], yb)
        assert (_row_ids(inputs["unlabeled"]) >= 1000).all()
    # One pass over the labeled set (5 batches) shows every example once.
    first_pass = np.concatenate([_row_ids(b[0]["labeled"]) for b in batches[:5]])
    assert sorted(first_pass) == list(range(40))
    second_pass = np.concatenate([_row_ids(b[0]["labeled"]) for b in batches[5:]])
    assert sorted(second_pass) == list(range(40))
    assert not np.array_equal(first_pass, second_pass)  # reshuffled
    # Unlabeled: 100 rows, batch 32 -> first 96 rows distinct.
    u = np.concatenate([_row_ids(b[0]["unlabeled"]) for b in batches[:3]])
    assert len(set(u)) == 96
    # Determinism.
    again = _take(kd.semi_supervised(x, y, x_u, batch_labeled=8, batch_unlabeled=32,
                                     seed=3, as_tf=False), 10)
    for (a, ya), (b, yb) in zip(batches, again):
        np.testing.assert_array_equal(a["labeled"], b["labeled"])
        np.testing.assert_array_equal(a["unlabeled"], b["unlabeled"])
        np.testing.assert_array_equal(ya, yb)
    other = _take(kd.semi_supervised(x, y, x_u, batch_labeled=8, batch_unlabeled=32,
                                     seed=4, as_tf=False), 1)
    assert not np.array_equal(other[0][0]["labeled"], batches[0][0]["labeled"])


def test_small_labeled_set_is_tiled():
    x, y = _ids_data(3, k=3)
    stream = kd.semi_supervised(x, y, np.zeros((50, 3)), batch_labeled=8,
                                batch_unlabeled=4, as_tf=False)
    batches = _take(stream, 3)
    ids = np.concatenate([_row_ids(b[0]["labeled"]) for b in batches])
    for inputs, yb in batches:
        assert inputs["labeled"].shape == (8, 3) and yb.shape == (8,)
        assert inputs["unlabeled"].shape == (4, 3)
    # 24 rows = 8 full passes over 3 examples: each appears exactly 8 times.
    np.testing.assert_array_equal(np.bincount(ids), [8, 8, 8])


def test_supervised_only_fallback_and_supervised():
    x, y = _ids_data(20)
    for x_u in (None, np.zeros((0, 3))):
        xb, yb = next(iter(kd.semi_supervised(x, y, x_u, batch_labeled=6, as_tf=False)))
        assert isinstance(xb, np.ndarray) and xb.shape == (6, 3) and yb.shape == (6,)
    batches = _take(kd.supervised(x, y, batch_size=5, seed=1, as_tf=False), 4)
    assert sorted(np.concatenate([_row_ids(b[0]) for b in batches])) == list(range(20))
    assert all(b[0].dtype == np.float32 and b[1].dtype == np.int32 for b in batches)
    assert kd.batches_per_epoch(20, 5) == 4 and kd.batches_per_epoch(21, 5) == 5
    assert kd.batches_per_epoch(3, 32) == 1
    with pytest.raises(ValueError, match="batch_size"):
        kd.batches_per_epoch(10, 0)


def test_tf_stream_matches_numpy_structure():
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(0).random((20, 8, 8, 1)).astype(np.float32)
    y = np.arange(20) % 10
    ds = kd.semi_supervised(x[:5], y[:5], x, batch_labeled=8, batch_unlabeled=16,
                            augment="translate+flip", as_tf=True, seed=1)
    assert isinstance(ds, tf.data.Dataset)
    spec_in, spec_y = ds.element_spec
    assert spec_in["labeled"].shape == (8, 8, 8, 1) and spec_in["labeled"].dtype == tf.float32
    assert spec_in["unlabeled"].shape == (16, 8, 8, 1)
    assert spec_y.shape == (8,) and spec_y.dtype == tf.int32
    batches = list(ds.take(3).as_numpy_iterator())
    np_batch = next(iter(kd.semi_supervised(x[:5], y[:5], x, batch_labeled=8,
                                            batch_unlabeled=16, as_tf=False)))
    for (inputs, yb) in batches:
        assert inputs["labeled"].shape == np_batch[0]["labeled"].shape
        assert set(yb) <= set(range(5))
    plain = kd.supervised(x, y, batch_size=4, as_tf=True)
    xb, yb = next(iter(plain))
    assert xb.shape == (4, 8, 8, 1) and yb.dtype == tf.int32
    # no autotuner: its background loop's doubling sleeps made some `fit` calls end at 10·(2^k − 1) ms
    assert ds.options().autotune.enabled is False and plain.options().autotune.enabled is False


# ---------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------


def test_parse_augment():
    assert kd.parse_augment(None) == ()
    assert kd.parse_augment("translate") == ("translate",)
    assert kd.parse_augment("flip+translate") == ("translate", "flip")
    assert kd.parse_augment(["flip", "translate", "flip"]) == ("translate", "flip")
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'.*translate, flip"):
        kd.parse_augment("translate,rotate")
    x = np.zeros((10, 64), np.float32)
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match=r"rank 4 \(N, H, W, C\).*\(10, 64\)"):
        kd.semi_supervised(x, y, x, augment="flip", as_tf=False)
    with pytest.raises(ValueError, match="rank 4"):
        kd.augment_images(np.zeros((2, 8, 8)), "translate", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown augmentation"):
        kd.supervised(np.zeros((4, 8, 8, 1)), y[:4], augment="blur", as_tf=False)


def test_flip_twice_is_identity():
    x = np.arange(6 * 4 * 5 * 2, dtype=np.float32).reshape(6, 4, 5, 2)
    once = kd.random_flip(x, np.random.default_rng(5))
    twice = kd.random_flip(once, np.random.default_rng(5))
    np.testing.assert_array_equal(twice, x)
    flipped = [not np.array_equal(once[i], x[i]) for i in range(6)]
    assert any(flipped) and not all(flipped)
    for i in range(6):
        expect = x[i, :, ::-1] if flipped[i] else x[i]
        np.testing.assert_array_equal(once[i], expect)
    np.testing.assert_array_equal(x, np.arange(x.size).reshape(x.shape))  # input untouched


def test_translate_moves_pixels_within_two():
    x = np.arange(16 * 6 * 7 * 1, dtype=np.float32).reshape(16, 6, 7, 1)
    out = kd.random_translate(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert sum(not np.array_equal(out[i], x[i]) for i in range(16)) >= 8
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    for i in range(16):
        crops = [padded[i, dy:dy + 6, dx:dx + 7] for dy in range(5) for dx in range(5)]
        assert any(np.array_equal(out[i], c) for c in crops)
    zero = kd.random_translate(x, np.random.default_rng(0), pad_mode="constant")
    assert (zero == 0).sum() > (x == 0).sum()
    # In the stream, augmentation hits labeled and unlabeled batches.
    y = np.arange(16) % 4
    inputs, _ = next(iter(kd.semi_supervised(x, y, x, batch_labeled=16,
                                             batch_unlabeled=16,
                                             augment="translate", as_tf=False)))
    for key in ("labeled", "unlabeled"):
        rows = {bytes(r) for r in x.reshape(16, -1)}
        moved = sum(bytes(r) not in rows for r in inputs[key].reshape(16, -1))
        assert moved >= 8, key


# ---------------------------------------------------------------------------
# Without TensorFlow, and with keras on JAX
# ---------------------------------------------------------------------------

_NO_TF = textwrap.dedent("""
    import importlib.abc, importlib.util, sys, json, tempfile
    BLOCK = ("tensorflow", "tensorflow_datasets", "keras", "sklearn", "jax", "torch")
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCK:
                raise ImportError("blocked " + name)
            return None
    sys.meta_path.insert(0, Block())
    spec = importlib.util.spec_from_file_location("kzoo_data_alone", sys.argv[1])
    kd = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = kd
    spec.loader.exec_module(kd)
    ds = kd.load("digits")
    x_l, y_l, x_u = kd.labeled_split(ds.x_train, ds.y_train, 20)
    stream = kd.semi_supervised(x_l, y_l, x_u, batch_labeled=4,
                                batch_unlabeled=8, augment="translate")
    inputs, yb = next(stream)
    offline = {d["name"]: d["offline"] for d in kd.list_datasets(tempfile.mkdtemp())}
    try:
        kd.load("mnist", data_dir=tempfile.mkdtemp())
        err = None
    except kd.DatasetUnavailableError as e:
        err = str(e)
    print(json.dumps({
        "shapes": [inputs["labeled"].shape, inputs["unlabeled"].shape, yb.shape],
        "type": type(stream).__name__,
        "offline_mnist": offline["mnist"],
        "err": err,
        "mods": sorted(m for m in BLOCK if m in sys.modules),
    }))
""")


def test_module_imports_and_iterates_with_numpy_only():
    out = subprocess.run([sys.executable, "-c", _NO_TF, DATA_PY],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["shapes"] == [[4, 8, 8, 1], [8, 8, 8, 1], [4]]
    assert res["type"] == "generator"  # as_tf=None falls back to numpy
    assert res["offline_mnist"] is False
    assert res["err"] and "mnist" in res["err"]
    assert res["mods"] == []


_JAX_FIT = textwrap.dedent("""
    import importlib.util, sys, os
    os.environ["KERAS_BACKEND"] = "jax"
    spec = importlib.util.spec_from_file_location("kzoo_data_alone", sys.argv[1])
    kd = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = kd
    spec.loader.exec_module(kd)
    import keras
    assert keras.backend.backend() == "jax"
    ds = kd.load("digits", flatten=True)
    x_l, y_l, x_u = kd.labeled_split(ds.x_train, ds.y_train, 30)
    stream = kd.semi_supervised(x_l, y_l, x_u, batch_labeled=16, batch_unlabeled=64)
    a = keras.Input((64,), name="labeled")
    u = keras.Input((64,), name="unlabeled")
    model = keras.Model({"labeled": a, "unlabeled": u}, keras.layers.Dense(10)(a))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = model.fit(stream, steps_per_epoch=3, epochs=2, verbose=0, shuffle=False)
    print("LOSSES", len(hist.history["loss"]), "tensorflow" in sys.modules)
""")


def test_numpy_stream_fits_keras_on_jax():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run([sys.executable, "-c", _JAX_FIT, DATA_PY], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LOSSES 2" in out.stdout


def test_tfds_splits_chosen_by_the_user_with_a_validation_split(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    data_dir = str(tmp_path)
    write_tfds_metadata(data_dir, "mnist", 10)
    with tfds.testing.mock_data(num_examples=10, data_dir=data_dir):  # the mock reads every split whole
        mocked = kd.load("mnist", data_dir=data_dir, splits={"validation": "train[80%:]"}, flatten=True)
    assert mocked.x_val.shape == (10, 28 * 28) and mocked.y_val.dtype == np.int32
    # which TFDS splits are asked for, and where each lands
    asked = []
    train = (np.arange(10 * 28 * 28) % 256).astype(np.uint8).reshape(10, 28, 28, 1)
    labels = np.arange(10) % 10

    def fake_load(name, split, data_dir, download, as_supervised, batch_size):
        asked.append(split)
        part = {"train[:80%]": slice(0, 8), "train[80%:]": slice(8, 10), "test[:50%]": slice(0, 5)}[split]
        return train[part], labels[part]

    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(tfds, "as_numpy", lambda t: t)
    ds = kd.load("mnist", data_dir=data_dir,
                 splits={"train": "train[:80%]", "validation": "train[80%:]", "test": "test[:50%]"})
    assert asked == ["train[:80%]", "test[:50%]", "train[80%:]"]
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (8, 2, 5)
    np.testing.assert_array_equal(ds.x_val, train[8:].astype(np.float32) / 255.0)
    np.testing.assert_array_equal(ds.y_val, labels[8:])
    for bad in ({"valid": "train"}, ["train"], {"test": ""}):
        with pytest.raises(ValueError, match="ROLE=TFDS_SPLIT"):
            kd.load("mnist", data_dir=data_dir, splits=bad)
    with pytest.raises(ValueError, match="splits apply to the TFDS sets"):
        kd.load("digits", splits={"validation": "train[90%:]"})


def test_tfds_download_is_off_by_default_and_passed_through_when_asked(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    data_dir = str(tmp_path / "empty")
    with pytest.raises(kd.DatasetUnavailableError, match="not available offline.*--download"):
        kd.load("mnist", data_dir=data_dir)
    calls = []

    def fake_load(name, split, data_dir, download, as_supervised, batch_size):
        calls.append((name, split, download))
        n = 4 if split == "train" else 3
        return np.zeros((n, 28, 28, 1), np.uint8), np.arange(n) % 10

    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(tfds, "as_numpy", lambda t: t)
    ds = kd.load("mnist", data_dir=data_dir, download=True)
    assert calls == [("mnist", "train", True), ("mnist", "test", True)]
    assert len(ds.x_train) == 4 and len(ds.x_test) == 3


def test_cli_train_takes_download_and_splits(tmp_path, monkeypatch, capsys):
    from kzoo import experiment
    from kzoo.cli import main

    seen = {}

    def fake_run(**kwargs):
        seen.update(kwargs)
        raise experiment.ConfigError("stop here")

    monkeypatch.setattr(experiment, "run", fake_run)
    assert main(["train", "vat", "--dataset", "mnist", "--download", "--split", "train=train[:90%]",
                 "--split", "validation=train[90%:]", "--quiet"]) == 2
    assert seen["download"] is True and seen["splits"] == ["train=train[:90%]", "validation=train[90%:]"]
    assert main(["train", "vat", "--quiet"]) == 2
    assert seen["download"] is False and seen["splits"] is None
    capsys.readouterr()
    monkeypatch.undo()
    assert main(["train", "vat", "--split", "dev=train", "--quiet"]) == 2
    assert "ROLE=TFDS_SPLIT" in capsys.readouterr().err
