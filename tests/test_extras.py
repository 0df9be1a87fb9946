"""What is installed, checked before any work: the default backend, the extras each command needs (named in
one line), ``--export-format keras``, quiet start-up, and the raw-pixel warning."""

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
from conftest import BACKEND, REPO

from kzoo import cli, extras
from kzoo.data import looks_like_raw_pixels, warn_pixel_range

# the environment of a user who set nothing: no backend, no log level
ENV = {k: v for k, v in os.environ.items()
       if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", extras._MARK)} | {"PYTHONPATH": REPO}

# Run kzoo's command line with some modules made uninstalled (sys.modules[name] = None: import fails, and
# kzoo.extras.installed says no): a JAX-only install, no backend, no keras-tuner...
_WITHOUT = textwrap.dedent("""
    import sys
    for name in sys.argv[1].split(","):
        if name:
            sys.modules[name] = None
    from kzoo.cli import main
    rc = main(sys.argv[2:])
    print("modules:", json.dumps(sorted(m for m in ("keras", "tensorflow", "jax") if sys.modules.get(m))))
    sys.exit(rc)
""").replace("import sys", "import json, sys", 1)


def _cli_without(missing, *argv, env=None, cwd=None):
    return subprocess.run([sys.executable, "-c", _WITHOUT, ",".join(missing), *argv], capture_output=True,
                          text=True, timeout=300, env=env or ENV, cwd=cwd)


def _one_line(proc, code=2):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr[-2000:]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


@pytest.mark.one_backend
def test_no_backend_installed_is_one_line_naming_the_extras(tmp_path):
    proc = _cli_without(["tensorflow", "jax", "torch"], "train", "vat", "--dataset", "digits", "--labels", "100",
                        cwd=tmp_path)
    line = _one_line(proc)
    assert 'pip install "kzoo[jax]"' in line and 'pip install "kzoo[tensorflow]"' in line
    assert "modules: []" in proc.stdout  # nothing imported: Keras was never tried
    assert not os.listdir(tmp_path)


@pytest.mark.one_backend
def test_jax_only_install_defaults_to_jax_and_refuses_a_saved_model_before_training(tmp_path):
    proc = _cli_without(["tensorflow"], "train", "vat", "--steps", "5", "--export", str(tmp_path / "sm"),
                        cwd=tmp_path)
    line = _one_line(proc)
    assert "SavedModel" in line and 'pip install "kzoo[tensorflow]"' in line, line
    assert "modules: []" in proc.stdout and not os.listdir(tmp_path)  # refused before Keras was imported
    # the installed backend is chosen: Keras alone would default to TensorFlow and fail to import
    code = ("import sys; sys.modules['tensorflow'] = None; import kzoo, keras; print(keras.backend.backend()); "
            "print(kzoo.models.mlp(input_shape=(4,), num_classes=3).output_shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=ENV)
    assert out.returncode == 0 and out.stdout.split() == ["jax", "(None,", "3)"], out.stderr[-2000:]


@pytest.mark.one_backend
def test_an_explicit_backend_that_is_not_installed_names_its_extra_and_the_installed_one():
    proc = _cli_without(["tensorflow"], "train", "vat", "--backend", "tensorflow", "--steps", "5")
    line = _one_line(proc)
    assert 'pip install "kzoo[tensorflow]"' in line and "--backend jax" in line


@pytest.mark.one_backend
def test_each_command_names_the_extra_it_lacks_before_any_work(tmp_path):
    line = _one_line(_cli_without(["keras_tuner"], "tune", "vat", "--steps", "5", cwd=tmp_path))
    assert "kzoo tune" in line and 'pip install "kzoo[tune]"' in line
    line = _one_line(_cli_without(["tensorflow_probability"], "train", "lvat-vae", "--steps", "5", cwd=tmp_path))
    assert 'pip install "kzoo[lvat]"' in line
    line = _one_line(_cli_without(["onnx"], "train", "vat", "--steps", "5", "--export-format", "onnx",
                                  "--export", str(tmp_path / "m.onnx"), cwd=tmp_path))
    assert "onnx" in line and 'pip install "kzoo[onnx]"' in line
    assert not os.listdir(tmp_path)


def test_compare_without_matplotlib_skips_the_png_with_a_note(tmp_path):
    proc = _cli_without(["matplotlib"], "compare", "supervised", "--dataset", "moons", "--labels", "30",
                        "--seeds", "1", "--folds", "1", "--steps", "5", "--out", str(tmp_path / "c"),
                        "--backend", BACKEND, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    note = [ln for ln in proc.stderr.splitlines() if "matplotlib" in ln]
    assert len(note) == 1 and 'pip install "kzoo[plots]"' in note[0] and "compare.png" in note[0]
    assert sorted(f for f in os.listdir(tmp_path / "c") if f.startswith("compare.")) == ["compare.json",
                                                                                       "compare.md"]


def test_export_format_keras_writes_a_keras_file_that_loads(tmp_path, capsys):
    target = tmp_path / "out.keras"
    rc = cli.main(["train", "vat", "--dataset", "digits", "--labels", "100", "--steps", "5", "--quiet",
                   "--export-format", "keras", "--export", str(target)])
    assert rc == 0, capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["out.keras"]  # no temporary file or lock left beside it
    model = keras.models.load_model(target)
    x = np.random.default_rng(0).random((3,) + tuple(model.input_shape[1:]), dtype=np.float32)
    assert model.predict(x, verbose=0).shape == (3, 10)
    # a .keras export is one file with that suffix, and has no version folders: refused before training
    for extra in (["--export", str(tmp_path / "out")], ["--export", str(target), "--export-version", "2"]):
        rc = cli.main(["train", "vat", "--steps", "5", "--export-format", "keras"] + extra)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and ".keras" in err[0]


_LOG = re.compile(r"absl::InitializeLog|^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]", re.M)


@pytest.mark.one_backend
def test_quiet_by_default_and_verbose_on_request(tmp_path):
    args = [sys.executable, "-m", "kzoo", "train", "vat", "--steps", "3", "--quiet", "--backend", "tensorflow"]
    quiet = subprocess.run(args, capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr[-2000:]
    assert json.loads(quiet.stdout.splitlines()[0])["backend"] == "tensorflow"
    loud = subprocess.run(args + ["--verbose"], capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path)
    assert loud.returncode == 0 and _LOG.search(loud.stderr), loud.stderr[-2000:]


@pytest.mark.one_backend
def test_the_readme_snippet_runs_without_warnings(tmp_path):
    readme = open(os.path.join(REPO, "README.md")).read()
    snippet = re.search(r"## In Python\n\n```python\n(.*?)```", readme, re.S).group(1)
    assert "steps_per_epoch=500, epochs=3" in snippet and 'model.export("saved_models/vat_digits")' in snippet
    snippet = snippet.replace("steps_per_epoch=500, epochs=3", "steps_per_epoch=5, epochs=1, verbose=0")
    snippet = snippet.replace("model.evaluate(ds.x_test, ds.y_test)", "model.evaluate(ds.x_test, ds.y_test, verbose=0)")
    proc = subprocess.run([sys.executable, "-W", "always", "-c", snippet], capture_output=True, text=True,
                          timeout=300, env=ENV, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "", proc.stderr[-3000:]
    assert os.path.isfile(tmp_path / "saved_models" / "vat_digits" / "saved_model.pb")


# ---------------------------------------------------------------------------
# the raw-pixel warning: whole numbers in 0..255, not any value above 2
# ---------------------------------------------------------------------------


def _warned(x):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        warn_pixel_range(x, "x_l")
    return [str(m.message) for m in w]


def test_standardized_inputs_draw_no_pixel_warning():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 8, 8, 1)).astype(np.float32)
    x = (x - x.mean()) / x.std()
    assert 3 < x.max() < 5  # "values up to 3.87" drew the warning before
    assert not looks_like_raw_pixels(x) and _warned(x) == []
    for scaled in (rng.random((50, 8, 8, 3)), 2 * rng.random((50, 64)) - 1, rng.random((50, 64)) * 4):
        assert _warned(scaled.astype(np.float32)) == []  # [0, 1], [-1, 1], fractional values up to 4
    assert _warned(rng.integers(0, 2, (50, 64)).astype(np.float32)) == []  # binary 0/1 images


def test_raw_pixels_warn_whatever_their_dtype():
    rng = np.random.default_rng(0)
    for x in (rng.integers(0, 256, (20, 8, 8, 1)).astype(np.uint8),
              rng.integers(0, 256, (20, 64)).astype(np.float32),  # flattened, float: still 0..255 pixels
              rng.integers(0, 17, (20, 64)).astype(np.float64)):  # sklearn's digits: whole numbers 0..16
        msgs = _warned(x)
        assert len(msgs) == 1 and "0..255 pixels" in msgs[0] and "/ 255" in msgs[0]
    assert not looks_like_raw_pixels(rng.integers(-5, 250, (20, 64)).astype(np.float32))  # negative values
    assert not looks_like_raw_pixels(np.full((4, 4), 1000.0))  # beyond 8-bit
