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
    assert kb.SUPPORTED_BACKENDS == ("tensorflow", "jax")
    assert kb.name() == BACKEND == keras.backend.backend()
    assert kb.check_backend() == BACKEND
    assert kb.check_backend("jax") == "jax" and kb.check_backend("tensorflow") == "tensorflow"


@pytest.mark.parametrize("backend", ["torch", "numpy", "openvino"])
def test_unsupported_backend_error_names_the_supported_ones(backend):
    with pytest.raises(kb.UnsupportedBackendError) as e:
        kb.check_backend(backend)
    msg = str(e.value)
    assert "tensorflow" in msg and "jax" in msg and repr(backend) in msg
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
