"""MNIST-1D (issue 24): the dataset (generated offline, cached as npz) and the sequence classifiers."""

import os
import random
import sys

import numpy as np
import pytest

import kzoo.data as kd
from kzoo.errors import DatasetUnavailableError, InvalidArgumentError, UnsafePathError


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("kzoo-data"))


@pytest.fixture(scope="module")
def ds(data_dir):
    return kd.load("mnist1d", data_dir=data_dir)


def test_shapes_split_and_class_balance(ds):
    assert ds.x_train.shape == (4000, 40, 1) and ds.x_test.shape == (1000, 40, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert ds.num_classes == 10 and ds.input_shape == (40, 1)
    for y, n in ((ds.y_train, 4000), (ds.y_test, 1000)):
        counts = np.bincount(y, minlength=10)
        assert len(counts) == 10 and counts.sum() == n
        assert counts.min() >= 0.85 * n / 10 and counts.max() <= 1.15 * n / 10  # the generator: 500 per class
    # the generator standardizes the whole set (mean 0, std 1)
    x = np.concatenate([ds.x_train, ds.x_test]).astype(np.float64)
    assert abs(x.mean()) < 1e-3 and abs(x.std() - 1) < 1e-3
    assert ds.value_range == (float(x.min()), float(x.max()))


def test_flatten_gives_vectors(data_dir, ds):
    flat = kd.load("mnist1d", data_dir=data_dir, flatten=True)
    assert flat.x_train.shape == (4000, 40) and flat.x_test.shape == (1000, 40)
    np.testing.assert_array_equal(flat.x_train, ds.x_train[..., 0])


def test_logistic_regression_reproduces_the_paper(ds):
    """The MNIST-1D paper: logistic regression with all 4,000 labels, 32% test accuracy."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000).fit(ds.x_train[..., 0], ds.y_train)
    accuracy = float((clf.predict(ds.x_test[..., 0]) == ds.y_test).mean())
    assert 0.28 <= accuracy <= 0.38, accuracy


def test_cached_npz_is_read_back_without_the_generator(data_dir, ds, monkeypatch):
    path = kd.npz_path("mnist1d", data_dir)
    assert os.path.isfile(path)
    with np.load(path, allow_pickle=False) as f:  # plain arrays: loading runs no code
        assert {"x_train", "y_train", "x_test", "y_test", "version"} <= set(f.files)
    monkeypatch.setitem(sys.modules, "mnist1d", None)  # an import of it would fail now
    again = kd.load("mnist1d", data_dir=data_dir)
    np.testing.assert_array_equal(again.x_test, ds.x_test)
    np.testing.assert_array_equal(again.y_train, ds.y_train)
    assert next(d for d in kd.list_datasets(data_dir) if d["name"] == "mnist1d")["offline"]


def test_missing_extra_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(DatasetUnavailableError) as e:
        kd.load("mnist1d", data_dir=str(tmp_path))
    assert "kzoo[mnist1d]" in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(kd.npz_path("mnist1d", str(tmp_path)))


def test_bad_cache_is_generated_again_and_links_are_not_followed(tmp_path, ds):
    path = kd.npz_path("mnist1d", str(tmp_path))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"not an npz")
    py_state, np_state = random.getstate(), np.random.get_state()
    again = kd.load("mnist1d", data_dir=str(tmp_path))
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    # the generator seeds the global RNGs: kzoo restores them
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state))
    # a link in the cache's place (to a file kzoo did not write) is neither read nor replaced: refused in one
    # line, as every file kzoo writes (kzoo.io)
    other = tmp_path / "elsewhere.npz"
    np.savez(other, x_train=np.zeros((4000, 40)), y_train=np.zeros(4000), x_test=np.zeros((1000, 40)),
             y_test=np.zeros(1000), version=np.int32(1))
    os.remove(path)
    os.symlink(other, path)
    with pytest.raises(UnsafePathError, match="symbolic link") as e:
        kd.load("mnist1d", data_dir=str(tmp_path))
    assert len(str(e.value).splitlines()) == 1 and os.path.islink(path)
    with np.load(other) as f:
        assert not f["x_train"].any()  # the link's target is untouched


def test_unknown_kwargs_rejected(data_dir):
    with pytest.raises(InvalidArgumentError, match="unexpected keyword"):
        kd.load("mnist1d", data_dir=data_dir, length=80)


def test_all_labels_take_every_example(ds):
    """4,000 labels on MNIST-1D's unbalanced classes (398..411 per class): every example is labeled."""
    idx, y, _ = kd.labeled_split(np.arange(4000), ds.y_train, 4000, num_classes=10, seed=3)
    assert sorted(idx.tolist()) == list(range(4000))
    np.testing.assert_array_equal(y, ds.y_train[idx])
    with pytest.raises(ValueError, match="examples of class"):  # below all of them: still class-balanced
        kd.labeled_split(np.arange(4000), ds.y_train, 3990, num_classes=10)


def test_standardized_sequences_are_not_taken_for_pixels(ds):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kd.warn_pixel_range(ds.x_train, "x_l")
    with pytest.warns(UserWarning, match="0..255 pixels"):
        kd.warn_pixel_range(np.full((2, 8, 8, 1), 200.0, np.float32), "x_l")


# ---------------------------------------------------------------------------
# The sequence classifiers
# ---------------------------------------------------------------------------


def test_mnist1d_cnn_is_the_papers_network():
    from kzoo import models

    m = models.get("mnist1d_cnn", input_shape=(40, 1), num_classes=10)
    convs = [layer for layer in m.layers if layer.__class__.__name__ == "Conv1D"]
    assert [(c.filters, c.kernel_size[0], c.strides[0]) for c in convs] == [(25, 5, 2), (25, 3, 2), (25, 3, 2)]
    assert m.get_layer("flatten").output.shape[-1] == 125  # 40 -> 20 -> 10 -> 5 steps of 25 channels
    # 150 + 1900 + 1900 conv weights and biases, 125 * 10 + 10 logits
    assert m.count_params() == 150 + 1900 + 1900 + 1260
    assert m.output.shape[1:] == (10,)
    assert [m.get_layer(f"block{i}").output.shape[1] for i in (1, 2, 3)] == [20, 10, 5]


def test_mnist1d_cnn_matches_a_numpy_forward_pass():
    from kzoo import models

    m = models.get("mnist1d_cnn", input_shape=(40, 1), num_classes=10)
    x = np.random.default_rng(0).normal(size=(3, 40, 1)).astype(np.float32)
    h = x.astype(np.float64)
    for i, k in enumerate((5, 3, 3), start=1):
        w, b = (np.asarray(v, np.float64) for v in m.get_layer(f"conv{i}").get_weights())
        length = h.shape[1]
        out_len = (length + 1) // 2
        pad = max((out_len - 1) * 2 + k - length, 0)
        hp = np.pad(h, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)))
        h = np.stack([np.einsum("nkc,kcf->nf", hp[:, 2 * t:2 * t + k], w) for t in range(out_len)], 1) + b
        h = np.maximum(h, 0)
    w, b = (np.asarray(v, np.float64) for v in m.get_layer("logits").get_weights())
    expected = h.reshape(len(h), -1) @ w + b
    np.testing.assert_allclose(np.asarray(m(x)), expected, rtol=1e-4, atol=1e-4)


def test_resnet1d_builds_and_names_its_blocks():
    from kzoo import models

    m = models.get("resnet1d", input_shape=(40, 1), num_classes=10, width=0.5)
    assert m.output.shape[1:] == (10,)
    assert [m.get_layer(f"block{i}").output.shape[1] for i in (1, 2, 3)] == [40, 20, 10]


@pytest.mark.parametrize("name", ["mnist1d_cnn", "resnet1d"])
def test_sequence_nets_refuse_images_in_one_line(name):
    from kzoo import models

    with pytest.raises(InvalidArgumentError, match="sequence inputs") as e:
        models.get(name, input_shape=(8, 8, 1), num_classes=10)
    assert "\n" not in str(e.value)


def test_mnist1d_trains_the_paper_cnn_by_default(data_dir, monkeypatch):
    from kzoo.experiment import run

    monkeypatch.setenv("KZOO_DATA_DIR", data_dir)
    res = run(method="supervised", dataset="mnist1d", labels=100, steps=3, batch_labeled=16, verbose=0)
    assert res["model"] == "mnist1d_cnn"
    res = run(method="supervised", dataset="digits", labels=30, steps=2, batch_labeled=10, verbose=0)
    assert res["model"] == "mlp"


def test_labelspreading_nll_is_finite_where_its_graph_leaves_points_unreached(ds):
    """rbf with a large gamma on 40 standardized features: many rows of 0/0 = NaN; they count as uniform."""
    from kzoo.baselines import fit_baseline

    res = fit_baseline("labelspreading-rbf", {"gamma": 10.0}, ds, 100, 0, 20)
    assert np.isfinite(res["val_nll"]) and res["val_nll"] <= np.log(1e7)


def test_entmin_row_is_vats_entropy_term_alone():
    from kzoo.compare import parse_entry

    entry = parse_entry("entmin", "mnist1d", {"entmin": {"entmin": (0.3, 1.0)}})
    assert entry.method == "vat" and entry.fixed == {"alpha": 0.0} and entry.grid == {"entmin": (0.3, 1.0)}


def test_ali_networks_on_sequences_keep_their_shape_and_real_values():
    from kzoo.networks.ali import networks_for

    enc, dec, disc = networks_for((40, 1), num_classes=10, width=0.25)
    assert dec.output.shape[1:] == (40, 1) and enc.input.shape[1:] == (40, 1)
    assert dec.get_layer("x_out").get_config()["activation"] == "linear"  # unbounded, standardized values
    import keras

    z = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(4, dec.input.shape[1])).astype(np.float32))
    assert tuple(disc([dec(z), z]).shape) == (4, 10)


# ---------------------------------------------------------------------------
# Every family trains on MNIST-1D (a handful of steps each)
# ---------------------------------------------------------------------------


def _few_steps(method, data_dir, monkeypatch, **kw):
    from kzoo.experiment import run

    monkeypatch.setenv("KZOO_DATA_DIR", data_dir)
    res = run(method=method, dataset="mnist1d", labels=100, steps=2, batch_labeled=16, batch_unlabeled=32,
              verbose=0, **kw)
    assert res["train_steps"] == 2 and 0.0 <= res["test_error"] <= 1.0 and np.isfinite(res["test_nll"])
    return res


@pytest.mark.parametrize("method", ["vat", "rpt", "adversarial", "mixup", "manifold-mixup", "mixup-ssl"])
def test_perturbation_and_mixup_families_train_the_cnn(method, data_dir, monkeypatch):
    assert _few_steps(method, data_dir, monkeypatch)["model"] == "mnist1d_cnn"


def test_resnet1d_trains_with_vat(data_dir, monkeypatch):
    assert _few_steps("vat", data_dir, monkeypatch, model="resnet1d", width=0.25)["model"] == "resnet1d"


@pytest.mark.parametrize("method", ["gan-ssl", "ali-ssl"])
def test_gan_family_and_ali_train_on_sequences(method, data_dir, monkeypatch):
    _few_steps(method, data_dir, monkeypatch)


def test_manifold_with_a_generator_pretrained_on_sequences(data_dir, monkeypatch, tmp_path):
    from kzoo.experiment import pretrain

    monkeypatch.setenv("KZOO_DATA_DIR", data_dir)
    gen = str(tmp_path / "dcgan.keras")
    pretrain("dcgan", dataset="mnist1d", steps=2, export=gen, verbose=0)
    _few_steps("manifold", data_dir, monkeypatch, generator=gen)


@pytest.mark.tensorflow_only
def test_lvat_vae_pretrained_and_trained_on_sequences(data_dir, monkeypatch, tmp_path):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow Probability runs on the TensorFlow backend only")
    from kzoo.experiment import pretrain

    monkeypatch.setenv("KZOO_DATA_DIR", data_dir)
    vae = str(tmp_path / "vae.keras")
    pretrain("vae", dataset="mnist1d", steps=2, export=vae, verbose=0)
    _few_steps("lvat-vae", data_dir, monkeypatch, transformer=vae)
    with pytest.raises(ValueError, match="Glow's squeeze.*lvat-vae"):
        pretrain("glow", dataset="mnist1d", steps=2, export=str(tmp_path / "glow.keras"), verbose=0)
