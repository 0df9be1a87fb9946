"""Packaging: PEP 621 metadata with ranges and extras, one version, LICENSE, a wheel that installs in a fresh venv."""

import json
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
    project = pyproject["project"]
    # an SPDX expression and the file (PEP 639); a License classifier beside it is an error for setuptools
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["kzoo"]
    assert os.path.isfile(os.path.join(REPO, "kzoo", "py.typed"))


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
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(os.path.join(REPO, name), src / name)
    shutil.copytree(os.path.join(REPO, "kzoo"), src / "kzoo", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    # without PYTHONPATH: pip --python runs in the venv's interpreter, which would see this checkout's kzoo there
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # build isolation: the license expression needs setuptools >= 77 (pyproject's build-system), newer than the
    # environment's own (from pip's cache, else PyPI)
    subprocess.run(pip + ["wheel", "--no-deps", "-w", str(root / "dist"), str(src)],
                   check=True, capture_output=True, text=True, timeout=600)
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


def test_the_wheel_metadata_license_urls_and_files(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    head = meta.split("\n\n")[0]
    assert "License-Expression: MIT" in head and "License-File: LICENSE" in head
    assert not re.search(r"^License: ", head, re.M)  # not the whole licence text in the License field
    assert not re.search(r"^Classifier: License ::", head, re.M)
    urls = dict(line.split(": ", 1)[1].split(", ", 1) for line in head.splitlines() if line.startswith("Project-URL:"))
    assert urls == {"Documentation": "README.md"}  # no host is known for kzoo: the README (long description, sdist)
    assert "kzoo/py.typed" in names
    # every module of the package, and nothing beside it (recipes and benchmarks come with the sdist)
    modules = {os.path.relpath(os.path.join(d, f), REPO) for d, _, fs in os.walk(os.path.join(REPO, "kzoo"))
               for f in fs if f.endswith(".py")}
    assert modules <= set(names)
    assert not [n for n in names if n.split("/")[0] in ("recipes", "benchmarks", "tests")]
    with open(os.path.join(REPO, "MANIFEST.in")) as f:
        manifest = f.read()
    assert "graft recipes" in manifest and "include benchmarks/RESULTS.md" in manifest


def test_methods_verbose_says_where_its_evidence_is(capsys):
    from kzoo.cli import main

    assert main(["methods", "-v"]) == 0
    out = capsys.readouterr().out
    cited = set(re.findall(r"\[([^\]]*RESULTS\.md[^\]]*)\]", out))
    assert cited and all(c.startswith("benchmarks/RESULTS.md") for c in cited), cited
    assert os.path.isfile(os.path.join(REPO, "benchmarks", "RESULTS.md"))
    assert "not in the installed wheel" in out.strip().splitlines()[-1] and "source distribution" in out
    for section in {c.split(": ", 1)[1] for c in cited if ": " in c}:  # each cited section exists
        with open(os.path.join(REPO, "benchmarks", "RESULTS.md")) as f:
            assert re.search(rf"^#+ {re.escape(section)}", f.read(), re.M), section


# ---------------------------------------------------------------------------
# The wheel in fresh venvs: no backend, JAX only (the README's commands there)
# ---------------------------------------------------------------------------


def _closure(requirements, extras=()):
    """The distributions (of this environment) that ``requirements`` need, recursively, with their extras."""
    from importlib import metadata

    seen, todo = {}, [(Requirement(r), set(extras)) for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extra or {""})):
            continue
        key = req.name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = metadata.distribution(req.name)
        seen[key] = dist
        todo += [(Requirement(r), set(req.extras)) for r in dist.requires or ()]
    return seen


def _site_of(dists, folder):
    """``folder`` with links to the files of ``dists`` only (their packages, modules and .dist-info): what a
    venv sees through one .pth line, in place of installing them again from PyPI."""
    folder.mkdir()
    for dist in dists.values():
        tops = {str(f).split("/")[0] for f in dist.files or () if not str(f).startswith("..")}
        for top in tops:
            source = os.path.join(str(dist.locate_file("")), top)
            if os.path.exists(source) and not os.path.exists(folder / top) and top != "__pycache__":
                os.symlink(source, folder / top)
    return folder


def _fresh_venv(root, name, wheel, site):
    venv = root / name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", "--python", str(python),
                    "install", "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, text=True,
                   timeout=300, env=env)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if site is not None:
        with open(os.path.join(purelib, "kzoo-test-deps.pth"), "w") as f:
            f.write(str(site) + "\n")
    return venv


def _run_in(venv, cmd, cwd):
    """A command in ``venv`` as a user who set nothing (no KERAS_BACKEND, no log level, no PYTHONPATH)."""
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def _first_lines(proc, n=3):
    return [ln[:160] for ln in (proc.stdout + proc.stderr).strip().splitlines()[:n]]


@pytest.mark.slow
def test_the_readme_commands_in_fresh_venvs_with_no_backend_and_with_jax_only(installed, tmp_path):
    import time

    t0 = time.perf_counter()
    wheel, _, _ = installed
    meta = zipfile.ZipFile(wheel).read(next(n for n in zipfile.ZipFile(wheel).namelist()
                                            if n.endswith(".dist-info/METADATA"))).decode()
    requires = re.findall(r"^Requires-Dist: (.+)$", meta, re.M)
    core, with_jax = _closure(requires), _closure(requires, extras=("jax",))
    assert {"keras", "numpy"} <= set(core) and not {"tensorflow", "jax"} & set(core)
    assert {"jax", "jaxlib"} <= set(with_jax) and "tensorflow" not in with_jax
    bare = _fresh_venv(tmp_path, "bare", wheel, _site_of(core, tmp_path / "core-site"))
    jax = _fresh_venv(tmp_path, "jax", wheel, _site_of(with_jax, tmp_path / "jax-site"))
    shown = {}

    # no backend: the README's main job is one line naming the extras, exit 2; --version and methods work
    work = tmp_path / "bare-work"
    work.mkdir()
    proc = _run_in(bare, "kzoo train vat --dataset digits --labels 100 --export saved_models/vat_digits", work)
    shown["no backend: kzoo train vat ..."] = (proc.returncode, _first_lines(proc))
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr[-3000:]
    assert proc.stderr.strip() == ('kzoo: error: kzoo needs a Keras backend and none is installed: '
                                   'pip install "kzoo[jax]" or pip install "kzoo[tensorflow]"')
    assert _run_in(bare, "kzoo --version && kzoo methods", work).returncode == 0
    proc = _run_in(bare, "python -c 'import kzoo; kzoo.models'", work)
    assert proc.returncode == 1 and 'pip install "kzoo[jax]"' in proc.stderr.strip().splitlines()[-1]
    assert not os.listdir(work)

    # JAX only: the default export (a SavedModel) is refused before any work, naming [tensorflow] ...
    work = tmp_path / "jax-work"
    work.mkdir()
    proc = _run_in(jax, "kzoo train vat --dataset digits --labels 100 --export saved_models/vat_digits", work)
    shown["jax only: kzoo train vat ... --export saved_models/vat_digits"] = (proc.returncode, _first_lines(proc))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]
    assert 'pip install "kzoo[tensorflow]"' in proc.stderr and not os.listdir(work)
    # ... and a .keras export trains on JAX, the default backend there, with no log lines
    proc = _run_in(jax, "kzoo train vat --dataset digits --labels 100 --steps 20 --export-format keras "
                        "--export out.keras --quiet", work)
    shown["jax only: kzoo train vat ... --export-format keras --export out.keras"] = (proc.returncode,
                                                                                     _first_lines(proc))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[0])["backend"] == "jax"
    assert sorted(os.listdir(work)) == ["out.keras"]
    proc = _run_in(jax, "python -c 'import kzoo, keras; m = keras.models.load_model(\"out.keras\"); "
                        "print(keras.backend.backend(), m.output_shape)'", work)
    assert proc.returncode == 0 and proc.stdout.split() == ["jax", "(None,", "10)"], proc.stderr[-3000:]
    proc = _run_in(jax, "kzoo tune vat --steps 5", work)
    assert proc.returncode == 2 and 'pip install "kzoo[tune]"' in proc.stderr
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": round(seconds, 1), "first_lines": shown}, indent=1))


@pytest.mark.slow
def test_the_readme_main_job_in_a_fresh_venv_with_tensorflow_only(installed, tmp_path):
    """TensorFlow only (no JAX): the README's main job trains on TensorFlow and exports a SavedModel, with no
    TensorFlow log line before kzoo's own output."""
    import time

    t0 = time.perf_counter()
    wheel, _, _ = installed
    meta = zipfile.ZipFile(wheel).read(next(n for n in zipfile.ZipFile(wheel).namelist()
                                            if n.endswith(".dist-info/METADATA"))).decode()
    with_tf = _closure(re.findall(r"^Requires-Dist: (.+)$", meta, re.M), extras=("tensorflow",))
    assert "tensorflow" in with_tf and not {"jax", "jaxlib"} & set(with_tf)
    venv = _fresh_venv(tmp_path, "tf", wheel, _site_of(with_tf, tmp_path / "tf-site"))
    work = tmp_path / "tf-work"
    work.mkdir()
    proc = _run_in(venv, "kzoo train vat --dataset digits --labels 100 --steps 20 --quiet "
                         "--export saved_models/vat_digits", work)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[0])["backend"] == "tensorflow"
    assert os.path.isfile(work / "saved_models" / "vat_digits" / "saved_model.pb")
    proc2 = _run_in(venv, "kzoo train vat --steps 5 --backend jax", work)
    assert proc2.returncode == 2 and 'pip install "kzoo[jax]"' in proc2.stderr
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 1),
                      "tensorflow only: kzoo train vat ... --export saved_models/vat_digits": _first_lines(proc),
                      "tensorflow only: --backend jax": _first_lines(proc2)}, indent=1))
