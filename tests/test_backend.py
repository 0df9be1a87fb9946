"""Tests for kzoo.backend: the supported-backend check, gradients and JVPs on the
active backend, and JAX training with TensorFlow unimportable."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import BACKEND, REPO, to_np

from kzoo import backend as kb


def test_supported_backends():
    assert kb.SUPPORTED_BACKENDS == ("tensorflow", "jax", "torch")
    assert kb.name() == BACKEND == keras.backend.backend()
    assert kb.check_backend() == BACKEND
    assert kb.check_backend("jax") == "jax" and kb.check_backend("tensorflow") == "tensorflow"
    assert kb.check_backend("torch") == "torch"


@pytest.mark.parametrize("backend", ["numpy", "openvino"])
def test_unsupported_backend_error_names_the_supported_ones(backend):
    with pytest.raises(kb.UnsupportedBackendError) as e:
        kb.check_backend(backend)
    msg = str(e.value)
    assert "tensorflow" in msg and "jax" in msg and "torch" in msg and repr(backend) in msg
    assert "KERAS_BACKEND" in msg
    assert isinstance(e.value, ImportError)


def test_train_step_function_is_the_active_backends():
    fn = kb.train_step_function()
    assert fn.__module__ == f"kzoo.backend.{BACKEND}"


def test_grad_wrt_closed_form():
    x = np.linspace(-2, 2, 12).reshape(3, 4).astype("float32")
    g = to_np(kb.grad_wrt(lambda r: keras.ops.sum(keras.ops.sin(r) * r), keras.ops.convert_to_tensor(x)))
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(g, np.cos(x64) * x64 + np.sin(x64), rtol=1e-5, atol=1e-6)


def test_jvp_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3)).astype("float32")
    x = rng.normal(size=(2, 4)).astype("float32")
    v = rng.normal(size=(2, 4)).astype("float32")

    def fn(z):
        return keras.ops.tanh(keras.ops.matmul(z, a))

    got = to_np(kb.jvp(fn, keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(v)))
    pre = x.astype(np.float64) @ a
    np.testing.assert_allclose(got, (1 - np.tanh(pre) ** 2) * (v.astype(np.float64) @ a),
                               rtol=1e-4, atol=1e-6)


def test_random_draws_are_keras_numbers_and_advance_the_seed():
    """kzoo.backend.uniform / normal: the numbers keras.random draws from the same generator state (on
    TensorFlow they name Philox, the algorithm Keras' automatic choice takes on a CPU outside XLA), and every
    draw moves the generator on, as Keras' do."""
    for kind, args in (("uniform", {"minval": -2.0, "maxval": 3.0}), ("normal", {"mean": 1.0, "stddev": 2.0})):
        ours, theirs = keras.random.SeedGenerator(7), keras.random.SeedGenerator(7)
        first = to_np(getattr(kb, kind)((3, 4), ours, **args))
        np.testing.assert_array_equal(first, to_np(getattr(keras.random, kind)((3, 4), seed=theirs, **args)))
        second = to_np(getattr(kb, kind)((3, 4), ours, **args))
        assert not np.array_equal(first, second) and first.dtype == np.float32
        np.testing.assert_array_equal(second, to_np(getattr(keras.random, kind)((3, 4), seed=theirs, **args)))
    assert to_np(kb.uniform((2,), 5, dtype="float16")).dtype == np.float16  # an int seed: Keras' own handling


def test_inner_gradients_are_constants_for_the_outer_gradient():
    """grad_wrt and jvp stop the gradient: d/dw of an inner gradient is 0 here
    (it would be 2x without the stop, as d/dr sum(w r^2) = 2 w r)."""
    x = keras.ops.convert_to_tensor(np.array([[1.0, 2.0, -3.0]], "float32"))

    def outer_grad(inner):
        def outer(w):
            return keras.ops.sum(inner(w)) + 0.0 * keras.ops.sum(w)

        return to_np(kb.grad_wrt(outer, keras.ops.ones_like(x)))

    via_grad = outer_grad(lambda w: kb.grad_wrt(lambda r: keras.ops.sum(w * r * r), x))
    via_jvp = outer_grad(lambda w: kb.jvp(lambda r: w * r * r, x, keras.ops.ones_like(x)))
    np.testing.assert_array_equal(via_grad, np.zeros((1, 3)))
    np.testing.assert_array_equal(via_jvp, np.zeros((1, 3)))


@pytest.mark.skipif(BACKEND != "jax", reason="a subprocess on JAX: run it once, in the JAX pass")
def test_jax_trains_without_tensorflow():
    code = textwrap.dedent("""
        import json, sys
        sys.modules["tensorflow"] = None  # any `import tensorflow` now raises ImportError
        import keras
        import numpy as np
        import kzoo
        assert keras.backend.backend() == "jax"
        keras.utils.set_random_seed(0)
        ds = kzoo.data.load("digits", flatten=True)
        x_l, y_l, x_u = kzoo.data.labeled_split(ds.x_train, ds.y_train, 20, seed=0)
        default = kzoo.data.semi_supervised(x_l, y_l, x_u, batch_labeled=8, batch_unlabeled=16)
        stream = kzoo.data.semi_supervised(x_l, y_l, x_u, batch_labeled=8, batch_unlabeled=16,
                                           seed=0, as_tf=False)
        clf = kzoo.models.mlp(input_shape=(64,), num_classes=10, hidden=(16,))
        model = kzoo.Regularized(clf, kzoo.regularizers.VAT(epsilon=1.0), seed=0)
        model.compile(optimizer="adam", metrics=["accuracy"])
        before = [np.array(w) for w in clf.get_weights()]
        hist = model.fit(stream, steps_per_epoch=3, epochs=1, verbose=0)
        after = clf.get_weights()
        print(json.dumps({
            "history": {k: [float(v) for v in vs] for k, vs in hist.history.items()},
            "changed": any(not np.allclose(a, b) for a, b in zip(before, after)),
            "default_stream": type(default).__name__,
            "tf_blocked": sys.modules.get("tensorflow", "missing") is None,
            "tf_modules": sorted(k for k in sys.modules if k.startswith("tensorflow.")),
            "steps": int(model.optimizer.iterations.numpy()),
        }))
    """)
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"loss", "vat", "accuracy"} <= set(out["history"])
    assert out["history"]["vat"][0] > 0 and np.isfinite(out["history"]["loss"][0])
    assert out["changed"] and out["steps"] == 3
    assert out["default_stream"] == "generator"  # numpy batches when TF is unavailable
    assert out["tf_blocked"] and out["tf_modules"] == []


def test_unsupported_backend_rejected_at_import():
    """With Keras on an unsupported backend, the training core refuses to load."""
    code = "import kzoo.core"
    env = dict(os.environ, KERAS_BACKEND="numpy", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)
    assert proc.returncode != 0
    assert "UnsupportedBackendError" in proc.stderr
    assert "'numpy'" in proc.stderr and "tensorflow" in proc.stderr and "jax" in proc.stderr


# ---------------------------------------------------------------------------
# JAX's persistent compilation cache (startup time)
# ---------------------------------------------------------------------------

_CACHE_PROBE = textwrap.dedent("""
    import json, os
    import jax
    events = []
    jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
    import keras, kzoo
    keras.utils.set_random_seed(0)
    clf = kzoo.models.mlp(input_shape=(8,), num_classes=3, hidden=(7, 5))
    print(json.dumps({"dir": jax.config.jax_compilation_cache_dir,
                      "kzoo_dir": kzoo.backend.compilation_cache_dir(),
                      "hits": events.count("/jax/compilation_cache/cache_hits"),
                      "weights": [float(abs(w).sum()) for w in clf.get_weights()]}))
""")


def _cache_probe(tmp_path, **env):
    env = dict({k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"},
               KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", **env)
    proc = subprocess.run([sys.executable, "-c", _CACHE_PROBE], capture_output=True, text=True,
                          timeout=180, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _entries(path):
    return sorted(f for f in os.listdir(path) if f.endswith("-cache")) if os.path.isdir(path) else []


@pytest.mark.skipif(BACKEND != "jax", reason="a subprocess on JAX: run it once, in the JAX pass")
def test_jax_compilation_cache_cold_then_warm(tmp_path):
    """A fresh directory is created and filled by the first process; the next one reads it (same weights)."""
    cache = str(tmp_path / "new" / "jax")
    cold = _cache_probe(tmp_path, KZOO_JAX_CACHE_DIR=cache)
    assert cold["dir"] == cold["kzoo_dir"] == cache
    written = _entries(cache)
    assert written  # the random initializers' executables
    warm = _cache_probe(tmp_path, KZOO_JAX_CACHE_DIR=cache)
    assert warm["hits"] > 0 and cold["hits"] == 0
    assert _entries(cache) == written  # nothing compiled anew
    assert warm["weights"] == cold["weights"]


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX backend's cache")
@pytest.mark.parametrize("setting", ["off", "", "0", "unwritable"])
def test_jax_compilation_cache_off_or_unwritable_is_no_cache(tmp_path, monkeypatch, setting):
    import jax

    from kzoo.backend import jax as kjax

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(kjax.CACHE_ENV, str(blocker / "jax") if setting == "unwritable" else setting)
    saved = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        assert kjax.configure_compilation_cache() is None
        assert jax.config.jax_compilation_cache_dir is None
    finally:
        jax.config.update("jax_compilation_cache_dir", saved)


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX backend's cache")
def test_jax_compilation_cache_user_setting_wins(tmp_path, monkeypatch):
    import jax

    from kzoo.backend import jax as kjax

    monkeypatch.setenv(kjax.CACHE_ENV, str(tmp_path / "kzoo"))
    saved = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))
    try:
        assert kjax.configure_compilation_cache() == str(tmp_path / "mine")
        assert not (tmp_path / "kzoo").exists()
    finally:
        jax.config.update("jax_compilation_cache_dir", saved)


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX backend's cache")
def test_jax_compilation_cache_default_dir(monkeypatch, tmp_path):
    from kzoo.backend import jax as kjax

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kjax.default_cache_dir() == str(tmp_path / "kzoo" / "jax")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert kjax.default_cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "kzoo", "jax")
