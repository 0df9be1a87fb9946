"""Packaging: PEP 621 metadata with ranges and extras, one version, LICENSE, a wheel that installs in a fresh venv."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
from conftest import REPO
from packaging.requirements import Requirement

import kzoo

pytestmark = pytest.mark.one_backend  # nothing here depends on the Keras backend


def _pyproject():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _pins():
    pins = {}
    with open(os.path.join(REPO, "requirements.txt")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                req = Requirement(line)
                pins[req.name.lower().replace("_", "-")] = next(iter(req.specifier)).version
    return pins


def test_dependencies_are_ranges_that_hold_the_pinned_versions():
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    assert {"lvat", "tune", "plots", "onnx", "gpu", "all", "torch", "jax", "tensorflow"} <= set(extras)
    pins = _pins()
    checked = 0
    for line in project["dependencies"] + [r for reqs in extras.values() for r in reqs]:
        req = Requirement(line)
        if req.name == "kzoo":
            continue
        assert "==" not in str(req.specifier), f"{line}: exact pins belong in requirements.txt, not the package"
        assert str(req.specifier), f"{line}: give a range"
        name = req.name.lower().replace("_", "-")
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), f"{line} excludes the pinned {pins[name]}"
            checked += 1
    assert checked >= 15
    # what each extra must bring (the list), and the GPU builds of both backends
    names = {k: {Requirement(r).name for r in v} for k, v in extras.items()}
    assert {"tensorflow-probability", "tf-keras", "scipy"} <= names["lvat"]
    assert {"keras-tuner", "grpcio", "tensorboard"} <= names["tune"]
    assert "matplotlib" in names["plots"]
    assert {"onnx", "onnxruntime", "tf2onnx", "jax2onnx"} <= names["onnx"]
    gpu = {Requirement(r).name: Requirement(r).extras for r in extras["gpu"]}
    assert gpu == {"tensorflow": {"and-cuda"}, "jax": {"cuda12"}}
    every = Requirement(extras["all"][0])
    assert every.name == "kzoo" and set(extras) - {"all", "gpu"} <= every.extras


def test_one_version_source_and_a_license():
    pyproject = _pyproject()
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "kzoo.__version__"}
    with open(os.path.join(REPO, "setup.py")) as f:
        assert "version" not in f.read()
    assert re.fullmatch(r"\d+\.\d+\.\d+", kzoo.__version__)
    with open(os.path.join(REPO, "LICENSE")) as f:
        assert f.readline().strip() == "MIT License"


def test_kzoo_version_on_the_command_line(capsys):
    from kzoo.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"kzoo {kzoo.__version__}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """kzoo's wheel, built from a copy of the checkout, installed with --no-deps in a fresh venv."""
    root = tmp_path_factory.mktemp("pkg")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy(os.path.join(REPO, name), src / name)
    shutil.copytree(os.path.join(REPO, "kzoo"), src / "kzoo", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    # without PYTHONPATH: pip --python runs in the venv's interpreter, which would see this checkout's kzoo there
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = (root / "dist").glob("kzoo-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(pip + ["--python", str(python), "install", "--no-deps", str(wheel)], check=True,
                   capture_output=True, text=True, timeout=300, env=env)
    return wheel, venv, env


def _in_venv(venv, *cmd, env=None):
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, cwd=str(venv), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_the_wheel_installs_and_runs_in_a_fresh_venv(installed):
    wheel, venv, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "kzoo/_data/digits.npz" in names and "kzoo/serialization.py" in names
    assert any(n.endswith(".dist-info/LICENSE") or "licenses/LICENSE" in n for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert f"Version: {kzoo.__version__}" in meta and "Requires-Dist: keras<4,>=3.15" in meta
    assert {"lvat", "tune", "plots", "onnx", "gpu", "all"} <= set(re.findall(r"Provides-Extra: (\S+)", meta))
    # neither keras nor numpy is installed there: the version and `import kzoo` need neither
    assert _in_venv(venv, str(venv / "bin" / "kzoo"), "--version") == f"kzoo {kzoo.__version__}"
    assert _in_venv(venv, str(venv / "bin" / "python"), "-c", "import kzoo; print(kzoo.__version__)") \
        == kzoo.__version__


def test_the_installed_wheel_loads_a_saved_model_with_keras_and_numpy_from_the_shared_env(installed, tmp_path):
    """The wheel's kzoo with the test environment's keras and numpy (its site-packages on PYTHONPATH, where kzoo
    itself is only an editable hook, inactive there): ``import kzoo; keras.models.load_model`` works."""
    import keras
    import numpy as np

    _, venv, _ = installed
    inp = keras.Input((4,))
    model = kzoo.Regularized(keras.Model(inp, keras.layers.Dense(2)(inp)), kzoo.regularizers.VAT(epsilon=1.0))
    model.compile()
    model.fit(np.ones((8, 4), "float32"), np.zeros(8, "int32"), epochs=1, verbose=0)
    model.save(str(tmp_path / "m.keras"))
    shared = os.path.dirname(os.path.dirname(keras.__file__))
    code = (f"import kzoo, keras; m = keras.models.load_model({str(tmp_path / 'm.keras')!r}); "
            f"print(type(m).__name__, m.regularizer, kzoo.__file__.startswith({str(venv)!r}))")
    out = _in_venv(venv, str(venv / "bin" / "python"), "-c", code,
                   env={"PYTHONPATH": shared, "KERAS_BACKEND": keras.backend.backend(), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.splitlines()[-1] == f"Regularized {model.regularizer!r} True"
