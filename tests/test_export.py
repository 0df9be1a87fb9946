"""Tests for kzoo.export: SavedModel export of the plain classifier, atomically.

Writing and loading a real SavedModel needs the TensorFlow backend; the
atomicity and path checks stub the writer out and run on both backends.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import REPO

import kzoo

# the export machinery below is exercised through SavedModel exports, which the torch backend refuses (Keras
# exports torch models through torch_xla; test_a_saved_model_on_torch_is_refused_in_one_line_before_any_work checks the refusal): TensorFlow and JAX
SAVED_MODEL = pytest.mark.skipif(keras.backend.backend() == "torch", reason="a SavedModel from torch needs "
                                 "torch_xla, which kzoo refuses up front; the machinery is tested on TF and JAX")
from kzoo import export as kexport
from kzoo.export import ExportError, export_classifier
from kzoo.regularizers import VAT


@pytest.fixture
def trained(digits, small_mlp):
    """A tiny Regularized VAT model after two train steps."""
    model = kzoo.Regularized(small_mlp, VAT(epsilon=1.0), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    stream = kzoo.data.semi_supervised(digits["x_l"], digits["y_l"], digits["x_u"],
                                       batch_labeled=8, batch_unlabeled=16, seed=0)
    model.fit(stream, steps_per_epoch=2, epochs=1, verbose=0)
    return model


def _load_in_fresh_process(path, x):
    """tf.saved_model.load + serve in a new interpreter; returns (logits, info)."""
    in_path = os.path.join(os.path.dirname(path), "x.npy")
    out_path = os.path.join(os.path.dirname(path), "out.npy")
    np.save(in_path, x)
    code = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({path!r})
        x = np.load({in_path!r})
        np.save({out_path!r}, loaded.serve(tf.constant(x)).numpy())
        sig = loaded.signatures["serving_default"]
        out = sig(tf.constant(x))
        print(json.dumps({{
            "variables": sorted(v.name for v in loaded.variables),
            "signature_variables": sorted(v.name for v in sig.variables),
            "signatures": sorted(loaded.signatures),
            "serving_default": {{k: v.numpy().tolist() for k, v in out.items()}},
            "kzoo_imported": "kzoo" in sys.modules,
        }}))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return np.load(out_path), info


@pytest.mark.tensorflow_only
def test_export_serves_the_classifier_in_a_fresh_process(trained, digits, tmp_path):
    x = digits["x_test"][:16]
    path = trained.export(str(tmp_path / "out" / "vat_digits"))
    assert path == os.path.abspath(str(tmp_path / "out" / "vat_digits"))
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    # nothing left behind next to it
    assert sorted(os.listdir(tmp_path / "out")) == ["vat_digits"]
    served, info = _load_in_fresh_process(path, x)
    expect = trained.predict(x, verbose=0)
    assert served.shape == (16, 10)
    np.testing.assert_allclose(served, expect, atol=1e-5, rtol=1e-5)
    assert {"serve", "serving_default"} <= set(info["signatures"])
    (sd,) = info["serving_default"].values()
    np.testing.assert_allclose(np.array(sd), expect, atol=1e-5, rtol=1e-5)
    # the plain classifier only: no seed generator, optimizer or metric state
    clf = trained.classifier
    assert len(info["variables"]) == len(clf.variables)
    assert len(info["signature_variables"]) <= len(clf.variables)
    assert not any("seed" in n or "adam" in n or "iteration" in n or "vat" in n
                   for n in info["variables"] + info["signature_variables"])
    assert not info["kzoo_imported"]  # served without kzoo


@pytest.mark.tensorflow_only
def test_export_replaces_previous_export(trained, digits, tmp_path):
    dest = tmp_path / "model"
    trained.export(str(dest))
    first = trained.predict(digits["x_test"][:4], verbose=0)
    # train further, export again to the same path
    trained.fit(digits["x_l"], digits["y_l"], batch_size=20, epochs=1, verbose=0)
    second = trained.predict(digits["x_test"][:4], verbose=0)
    assert not np.allclose(first, second)
    trained.export(str(dest))
    served, _ = _load_in_fresh_process(str(dest), digits["x_test"][:4])
    np.testing.assert_allclose(served, second, atol=1e-5, rtol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["model", "out.npy", "x.npy"]


# ---------------------------------------------------------------------------
# Atomicity and path checks (the SavedModel writer is stubbed: both backends)
# ---------------------------------------------------------------------------


@pytest.fixture
def built_clf(seeded):
    inp = keras.Input((4,))
    return keras.Model(inp, keras.layers.Dense(2)(inp))


def _previous_export(path):
    os.makedirs(os.path.join(path, "variables"))
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"previous model")
    with open(os.path.join(path, "variables", "v.data"), "wb") as f:
        f.write(b"previous variables")


def _assert_previous_intact(path):
    assert sorted(os.listdir(path)) == ["saved_model.pb", "variables"]
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        assert f.read() == b"previous model"
    with open(os.path.join(path, "variables", "v.data"), "rb") as f:
        assert f.read() == b"previous variables"


def _failing_writer(exc):
    def export(model, filepath, **kwargs):
        os.makedirs(filepath)
        with open(os.path.join(filepath, "saved_model.pb"), "wb") as f:
            f.write(b"partial")
        raise exc

    return export


@SAVED_MODEL
@pytest.mark.parametrize("previous", [False, True])
@pytest.mark.parametrize("exc", [RuntimeError("writer crashed"), OSError(28, "No space left")])
def test_interrupted_export_leaves_nothing_half_written(built_clf, tmp_path, monkeypatch,
                                                        previous, exc):
    dest = str(tmp_path / "model")
    if previous:
        _previous_export(dest)
    monkeypatch.setattr(keras.Model, "export", _failing_writer(exc))
    expected = ExportError if isinstance(exc, OSError) else RuntimeError
    with pytest.raises(expected) as e:
        export_classifier(built_clf, dest)
    if expected is ExportError:
        assert dest in str(e.value) and "nothing was left" in str(e.value)
    if previous:
        _assert_previous_intact(dest)
    else:
        assert not os.path.exists(dest)
    # the staging folder is gone too
    assert sorted(os.listdir(tmp_path)) == (["model"] if previous else [])


def _new_model_writer(model, filepath, **kwargs):
    os.makedirs(filepath)
    with open(os.path.join(filepath, "saved_model.pb"), "wb") as f:
        f.write(b"new model")


def test_previous_export_survives_a_failed_final_move(built_clf, tmp_path, monkeypatch):
    dest = str(tmp_path / "model")
    _previous_export(dest)
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(src) == "model" and dst == dest:  # staged -> destination
            raise OSError(5, "I/O error")
        return real_replace(src, dst)

    monkeypatch.setattr(keras.Model, "export", _new_model_writer)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(kexport, "_exchange", lambda a, b: False)  # the two-rename path (no renameat2)
    with pytest.raises(ExportError):
        export_classifier(built_clf, dest)
    monkeypatch.undo()
    _assert_previous_intact(dest)
    assert sorted(os.listdir(tmp_path)) == ["model"]


@SAVED_MODEL
def test_replacing_an_export_is_one_atomic_swap(built_clf, tmp_path, monkeypatch):
    """With a previous export there, no rename leaves the path empty: the folders are exchanged."""
    dest = str(tmp_path / "model")
    _previous_export(dest)

    def no_replace(src, dst):
        raise AssertionError(f"os.replace({src}, {dst}): the path would be missing between two renames")

    monkeypatch.setattr(keras.Model, "export", _new_model_writer)
    monkeypatch.setattr(os, "replace", no_replace)
    export_classifier(built_clf, dest)
    monkeypatch.undo()
    assert (tmp_path / "model" / "saved_model.pb").read_bytes() == b"new model"
    assert sorted(os.listdir(tmp_path)) == ["model"]


@SAVED_MODEL
def test_successful_stubbed_export_moves_into_place(built_clf, tmp_path, monkeypatch):
    dest = str(tmp_path / "a" / "b" / "model")

    def fake_writer(model, filepath, **kwargs):
        assert model is built_clf
        assert os.path.dirname(os.path.dirname(filepath)) == os.path.dirname(dest)
        os.makedirs(filepath)
        with open(os.path.join(filepath, "saved_model.pb"), "wb") as f:
            f.write(b"new model")

    monkeypatch.setattr(keras.Model, "export", fake_writer)
    _previous_export(dest)
    assert export_classifier(built_clf, dest) == dest
    assert os.listdir(dest) == ["saved_model.pb"]
    assert sorted(os.listdir(os.path.dirname(dest))) == ["model"]


@SAVED_MODEL
def test_export_path_errors(built_clf, tmp_path):
    a_file = tmp_path / "afile"
    a_file.write_text("not a folder")
    with pytest.raises(ExportError, match="cannot create the export folder"):
        export_classifier(built_clf, str(a_file / "model"))
    with pytest.raises(ExportError, match="cannot create the export folder"):
        export_classifier(built_clf, str(a_file / "deeper" / "model"))
    with pytest.raises(ExportError, match="a file"):
        export_classifier(built_clf, str(a_file))
    assert a_file.read_text() == "not a folder"
    assert sorted(os.listdir(tmp_path)) == ["afile"]
    with pytest.raises(ValueError, match="saved_model.*onnx"):
        export_classifier(built_clf, str(tmp_path / "m"), format="tflite")
    with pytest.raises(ExportError, match="version must be an integer >= 1"):
        export_classifier(built_clf, str(tmp_path / "m"), version=0)
    with pytest.raises(ExportError, match="a folder"):
        export_classifier(built_clf, str(tmp_path), format="onnx")
    assert sorted(os.listdir(tmp_path)) == ["afile"]


def test_export_unbuilt_model_errors(tmp_path):
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ExportError, match="not built"):
        export_classifier(unbuilt, str(tmp_path / "m"))
    assert not os.path.exists(tmp_path / "m")


@SAVED_MODEL
def test_regularized_export_goes_through_kzoo(built_clf, tmp_path, monkeypatch):
    """model.export of the wrapper exports the classifier, not the wrapper."""
    seen = {}

    def fake_writer(model, filepath, **kwargs):
        seen["model"] = model
        os.makedirs(filepath)

    monkeypatch.setattr(keras.Model, "export", fake_writer)
    wrapper = kzoo.Regularized(built_clf, VAT())
    out = wrapper.export(str(tmp_path / "m"))
    assert seen["model"] is built_clf and os.path.isdir(out)


class MixinNet(kzoo.RegularizerMixin, keras.Model):
    pass


@pytest.mark.tensorflow_only
def test_functional_mixin_exports_without_seed_state(digits, tmp_path):
    inputs = keras.Input((64,))
    outputs = keras.layers.Dense(10)(keras.layers.Dense(16, activation="relu")(inputs))
    model = MixinNet(inputs, outputs, regularizer=VAT(epsilon=1.0), seed=0)
    model.compile(optimizer="adam")
    stream = kzoo.data.semi_supervised(digits["x_l"], digits["y_l"], digits["x_u"],
                                       batch_labeled=8, batch_unlabeled=16, seed=0)
    model.fit(stream, steps_per_epoch=2, epochs=1, verbose=0)
    x = digits["x_test"][:8]
    path = model.export(str(tmp_path / "mixin"))
    served, info = _load_in_fresh_process(path, x)
    np.testing.assert_allclose(served, model.predict(x, verbose=0), atol=1e-5, rtol=1e-5)
    assert len(info["variables"]) == 4  # two kernels, two biases
    assert not any("seed" in n for n in info["variables"])


def test_save_keras_atomic_keeps_the_previous_model_when_saving_fails(tmp_path):
    import keras

    from kzoo.export import ExportError, save_keras_atomic

    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    path = tmp_path / "m.keras"
    save_keras_atomic(model, path)
    before = path.read_bytes()

    class Broken(keras.Model):
        def save(self, *a, **k):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_keras_atomic(Broken(), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.keras"]
    with pytest.raises(ExportError, match=".keras"):
        save_keras_atomic(model, tmp_path / "m.h5")


# ---------------------------------------------------------------------------
# ONNX (onnxruntime runs the file) and versioned serving folders
# ---------------------------------------------------------------------------


def _run_onnx(path, x):
    """The ONNX file run by onnxruntime in a new interpreter that imports neither Keras nor kzoo."""
    in_path, out_path = path + ".x.npy", path + ".y.npy"
    np.save(in_path, x)
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        import onnxruntime as ort
        session = ort.InferenceSession({path!r}, providers=["CPUExecutionProvider"])
        (inp,) = session.get_inputs()
        np.save({out_path!r}, session.run(None, {{inp.name: np.load({in_path!r})}})[0])
        assert "keras" not in sys.modules and "kzoo" not in sys.modules
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = np.load(out_path)
    os.remove(in_path), os.remove(out_path)
    return out


def test_onnx_export_runs_in_onnxruntime_like_keras(trained, digits, tmp_path):
    pytest.importorskip("onnxruntime")
    x = digits["x_test"][:16]
    path = trained.export(str(tmp_path / "vat.onnx"), format="onnx")
    assert path == str(tmp_path / "vat.onnx") and os.path.isfile(path)
    np.testing.assert_allclose(_run_onnx(path, x), trained.predict(x, verbose=0), atol=1e-5, rtol=1e-5)
    # another batch size than the one traced (the batch dimension is dynamic)
    np.testing.assert_allclose(_run_onnx(path, x[:3]), trained.predict(x[:3], verbose=0), atol=1e-5, rtol=1e-5)
    # a versioned model repository (Triton's layout): DIR/N/model.onnx, the other versions kept
    repo = tmp_path / "models" / "vat"
    first = trained.export(str(repo), format="onnx", version=1)
    second = trained.export(str(repo), format="onnx", version=2)
    assert first == str(repo / "1" / "model.onnx") and second == str(repo / "2" / "model.onnx")
    assert sorted(os.listdir(repo)) == ["1", "2"] and os.listdir(repo / "1") == ["model.onnx"]


def test_onnx_export_replaces_atomically_and_keeps_the_previous_file_on_failure(built_clf, tmp_path, monkeypatch):
    dest = tmp_path / "m.onnx"
    dest.write_bytes(b"previous")

    def broken(model, filepath, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"half")
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(keras.Model, "export", broken)
    monkeypatch.setattr("kzoo.export._check_converter", lambda fmt: None)
    with pytest.raises(ExportError, match="converter crashed.*previous export there is unchanged"):
        export_classifier(built_clf, str(dest), format="onnx")
    assert dest.read_bytes() == b"previous" and os.listdir(tmp_path) == ["m.onnx"]

    def writer(model, filepath, format=None, **kwargs):
        assert format == "onnx"
        with open(filepath, "wb") as f:
            f.write(b"new")

    monkeypatch.setattr(keras.Model, "export", writer)
    assert export_classifier(built_clf, str(dest), format="onnx") == str(dest)
    assert dest.read_bytes() == b"new" and os.listdir(tmp_path) == ["m.onnx"]


def test_a_missing_converter_is_one_clear_error(built_clf, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__
    missing = {"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "torch.onnx"}[keras.backend.backend()]

    def no_converter(name, *args, **kwargs):
        if name == missing:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_converter)
    with pytest.raises(ExportError, match=f"needs {missing}: pip install kzoo\\[onnx\\]"):
        export_classifier(built_clf, str(tmp_path / "m.onnx"), format="onnx")
    assert os.listdir(tmp_path) == []


@pytest.mark.tensorflow_only
def test_versioned_saved_model_layout_for_tf_serving(trained, digits, tmp_path):
    x = digits["x_test"][:8]
    repo = tmp_path / "serving" / "vat"
    path = trained.export(str(repo), format="saved_model", version=3)
    assert path == str(repo / "3") and os.path.isfile(repo / "3" / "saved_model.pb")
    (repo / "1").mkdir()  # an older version stays where it is
    again = trained.export(str(repo), version=3)  # the same version replaced atomically
    assert again == path and sorted(os.listdir(repo)) == ["1", "3"]
    served, _ = _load_in_fresh_process(path, x)
    np.testing.assert_allclose(served, trained.predict(x, verbose=0), atol=1e-5, rtol=1e-5)


def test_cli_train_exports_onnx_with_a_version(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from kzoo.cli import main

    repo = tmp_path / "repo"
    assert main(["train", "vat", "--steps", "3", "--labels", "20", "--quiet", "--export", str(repo),
                 "--export-format", "onnx", "--export-version", "2"]) == 0
    onnx_file = repo / "2" / "model.onnx"
    assert onnx_file.is_file()
    ds = kzoo.data.load("digits")
    out = _run_onnx(str(onnx_file), ds.x_test[:4].astype("float32"))
    assert out.shape == (4, 10) and np.isfinite(out).all()
    capsys.readouterr()
    # bad input: one line, exit status 2, nothing written
    assert main(["train", "vat", "--steps", "3", "--export-version", "2", "--quiet"]) == 2
    assert "--export-version needs --export" in capsys.readouterr().err
    assert main(["train", "vat", "--steps", "3", "--export", str(tmp_path / "x"), "--export-version", "0"]) == 2
    assert "version must be an integer >= 1" in capsys.readouterr().err
    assert main(["train", "vat", "--steps", "3", "--export", str(tmp_path), "--export-format", "onnx"]) == 2
    assert "is an existing folder" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["repo"]


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the torch backend's refusal")
def test_a_saved_model_on_torch_is_refused_in_one_line_before_any_work(built_clf, tmp_path, capsys):
    from kzoo.cli import main

    with pytest.raises(ExportError, match="torch_xla.*onnx"):
        export_classifier(built_clf, str(tmp_path / "m"))
    assert main(["train", "vat", "--steps", "3", "--labels", "20", "--quiet", "--export", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "torch_xla" in err and "--export-format onnx" in err and len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == []
