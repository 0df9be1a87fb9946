"""Shared fixtures: tiny digits arrays, tiny models, float64 numpy references."""

import os

import keras
import numpy as np
import pytest

import kzoo

BACKEND = keras.backend.backend()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------
# float64 numpy references (independent of keras.ops)
# ---------------------------------------------------------------------------


def np_log_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def np_softmax(z):
    return np.exp(np_log_softmax(z))


def np_kl(p_logits, q_logits):
    lp, lq = np_log_softmax(p_logits), np_log_softmax(q_logits)
    return np.sum(np.exp(lp) * (lp - lq), axis=-1)


def np_entropy(logits):
    lp = np_log_softmax(logits)
    return -np.sum(np.exp(lp) * lp, axis=-1)


def np_ce(labels, logits):
    lp = np_log_softmax(logits)
    return -lp[np.arange(len(lp)), np.asarray(labels)]


def to_np(x):
    if isinstance(x, keras.Variable):
        x = x.value
        if hasattr(x, "read_value"):  # a tf.Variable: read it as a tensor
            x = x.read_value()
    return np.asarray(keras.ops.convert_to_numpy(x))


def weights64(model):
    """The model's weights (in ``model.weights`` order) as float64 numpy arrays."""
    return [to_np(w).astype(np.float64) for w in model.weights]


# ---------------------------------------------------------------------------
# Tiny models
# ---------------------------------------------------------------------------


def tanh_mlp(input_dim=16, hidden=32, num_classes=2):
    """Dense(hidden, tanh) -> Dense(classes): no batch norm, no dropout."""
    inp = keras.Input((input_dim,))
    h = keras.layers.Dense(hidden, activation="tanh", name="hidden")(inp)
    out = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inp, out)


def tanh_mlp_np(model):
    """A float64 numpy re-implementation of :func:`tanh_mlp`: x -> logits."""
    w1, b1, w2, b2 = weights64(model)
    return lambda x: np.tanh(np.asarray(x, np.float64) @ w1 + b1) @ w2 + b2


def linear_model(input_dim=6, num_classes=3):
    inp = keras.Input((input_dim,))
    out = keras.layers.Dense(num_classes, name="logits")(inp)
    return keras.Model(inp, out)


def bn_model(input_dim=16, units=8, num_classes=3, momentum=0.5):
    """Dense (first layer, no bias) -> BatchNorm -> ReLU -> Dense."""
    inp = keras.Input((input_dim,))
    h = keras.layers.Dense(units, use_bias=False, name="pre")(inp)
    h = keras.layers.BatchNormalization(momentum=momentum, name="bn")(h)
    h = keras.layers.ReLU(name="relu")(h)
    out = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inp, out)


@pytest.fixture
def seeded():
    keras.utils.set_random_seed(0)
    return 0


@pytest.fixture(scope="session")
def digits():
    """A small slice of digits, flattened to 64 features in [0, 1]."""
    ds = kzoo.data.load("digits", flatten=True)
    x_l, y_l, x_u = kzoo.data.labeled_split(ds.x_train, ds.y_train, 40, seed=0)
    return {
        "x_l": x_l, "y_l": y_l, "x_u": x_u[:240],
        "x_test": ds.x_test[:64], "y_test": ds.y_test[:64],
        "num_classes": ds.num_classes,
    }


@pytest.fixture
def small_mlp(seeded):
    """A tiny batch-norm MLP on 64 inputs, 10 classes (kzoo.models.mlp)."""
    return kzoo.models.mlp(input_shape=(64,), num_classes=10, hidden=(16,))


# ---------------------------------------------------------------------------
# Offline stand-ins for the TFDS datasets (recipes' --full paths)
# ---------------------------------------------------------------------------

TFDS_NAMES = {"mnist": "mnist", "svhn": "svhn_cropped", "cifar10": "cifar10", "cifar100": "cifar100"}


def write_tfds_metadata(data_dir, name, n):
    """dataset_info.json of a prepared TFDS set with ``n`` train and test examples (no records)."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(TFDS_NAMES.get(name, name), data_dir=str(data_dir))
    builder.info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name=s, shard_lengths=[n], num_bytes=0, filename_template=None)
        for s in ("train", "test")]))
    os.makedirs(builder.data_dir, exist_ok=True)
    builder.info.write_to_directory(builder.data_dir)


@pytest.fixture
def mock_tfds(tmp_path):
    """``with mock_tfds("svhn", n) as data_dir:`` -- kzoo.data.load(name, data_dir=data_dir) returns
    ``n`` random examples per split through tfds.testing.mock_data (no network, no records)."""
    import contextlib

    tfds = pytest.importorskip("tensorflow_datasets")

    @contextlib.contextmanager
    def make(name, n=64):
        data_dir = tmp_path / "tfds"
        write_tfds_metadata(data_dir, name, n)
        with tfds.testing.mock_data(num_examples=n, data_dir=str(data_dir)):
            yield str(data_dir)

    return make


@pytest.fixture
def pretrain_calls(monkeypatch):
    """The keyword arguments of every ``kzoo.experiment.pretrain`` call the test makes (the calls still run)."""
    from kzoo import experiment

    calls = []
    original = experiment.pretrain

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(experiment, "pretrain", spy)
    return calls


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """``item.rep_call_passed``: whether the test body passed (test_faults' ``record`` keeps only those rows)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call_passed = rep.passed
