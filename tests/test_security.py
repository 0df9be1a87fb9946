"""Nothing a file or a folder holds makes kzoo run code, follow a link it did not make, or trust a shared folder.

* a ``.keras`` file names only classes kzoo registered itself (a fixed table); kzoo never imports a module a
  file names (``kzoo.__main__`` would run the command line inside ``load_model``);
* lock files, checkpoints and every file kzoo writes into a user's folder are never written through a symlink
  planted there;
* the JAX compilation cache folder must be the user's own and not writable by others; the distributed
  search's coordinator listens on localhost unless told otherwise.
"""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import BACKEND, REPO

import kzoo
import kzoo.core
from kzoo import io as kio
from kzoo import locks, serialization
from kzoo.errors import KzooError

# --------------------------------------------------------------------------------------------------------------
# 1. .keras files load only kzoo's registered classes
# --------------------------------------------------------------------------------------------------------------

_LOAD = r"""
import json, os, sys, zipfile
folder, export = sys.argv[1], sys.argv[2]
# what kzoo's command line would do if a file could make load_model import kzoo.__main__
sys.argv = ["kzoo", "train", "--dataset", "digits", "--method", "supervised", "--epochs", "1", "--export", export]
import keras
import kzoo
from kzoo.errors import KzooError
out = {}
for name in sorted(os.listdir(folder)):
    try:
        keras.models.load_model(os.path.join(folder, name))
        out[name] = "loaded"
    except KzooError as e:
        out[name] = "KzooError: " + str(e)
    except BaseException as e:
        out[name] = type(e).__name__ + ": " + str(e)
out["imported"] = sorted(m for m in sys.modules if m in ("kzoo.__main__", "kzoo.cli", "kzoo.experiment"))
print(json.dumps(out))
"""

# what a crafted file puts where a Regularized model's regularizer (or a layer of its classifier) belongs
_PLANTED = {
    "main": {"class_name": "kzoo.__main__.VAT", "config": {}},
    "cli": {"class_name": "kzoo.cli.X", "config": {}},
    "missing": {"class_name": "kzoo.nonexistent.VAT", "config": {"epsilon": 1.0}},
    "wrong_module_legacy": {"class_name": "kzoo.cli.VAT", "config": {"epsilon": 1.0}},
    "wrong_module": {"module": "kzoo.__main__", "class_name": "VAT", "config": {"epsilon": 1.0},
                     "registered_name": "kzoo>VAT"},
    "unregistered": {"module": "kzoo.vat", "class_name": "Evil", "config": {}, "registered_name": "kzoo>Evil"},
}


def _regularized_file(path):
    import keras

    inp = keras.Input((4,))
    clf = keras.Model(inp, keras.layers.Dense(3)(inp))
    model = kzoo.Regularized(clf, kzoo.regularizers.VAT(epsilon=1.0))
    model.compile(optimizer="adam")
    model(np.zeros((2, 4), "float32"))
    model.save(str(path))


def _rewrite(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)


def _set_regularizer(planted):
    def edit(config):
        config["config"]["regularizer"] = planted
    return edit


def _set_layer_module(config):
    layers = config["config"]["classifier"]["config"]["layers"]
    dense = next(layer for layer in layers if layer["class_name"] == "Dense")
    dense.update(module="kzoo.cli", class_name="WeightNormDense", registered_name="kzoo>WeightNormDense")


def _set_compile_optimizer(config):
    assert config["compile_config"], "the model was saved compiled"
    config["compile_config"]["optimizer"] = {"module": "kzoo.cli", "class_name": "main", "config": {},
                                             "registered_name": "kzoo>main"}


def test_a_crafted_keras_file_never_imports_a_module_it_names(tmp_path):
    good = tmp_path / "good.keras"
    _regularized_file(good)
    files = tmp_path / "files"
    files.mkdir()
    _rewrite(good, files / "ok.keras", lambda config: None)
    for name, planted in _PLANTED.items():
        _rewrite(good, files / f"{name}.keras", _set_regularizer(planted))
    _rewrite(good, files / "layer.keras", _set_layer_module)
    _rewrite(good, files / "compile.keras", _set_compile_optimizer)
    export = tmp_path / "pwned"
    env = {**os.environ, "PYTHONPATH": REPO, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", _LOAD, str(files), str(export)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]  # not sys.exit from a command line run inside load_model
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("imported") == [], "a file made load_model import a kzoo module it named"
    assert not export.exists(), "a training run and an export happened inside load_model"
    assert out.pop("ok.keras") == "loaded"
    for name, result in out.items():
        assert result.startswith("KzooError: refusing to load "), (name, result)
        assert "\n" not in result, (name, result)
    assert "kzoo.__main__.VAT" in out["main.keras"] and "kzoo.cli.X" in out["cli.keras"]
    assert "kzoo.nonexistent.VAT" in out["missing.keras"] and "kzoo.__main__.VAT" in out["wrong_module.keras"]
    assert "kzoo.cli.main" in out["compile.keras"]
    assert "kzoo.cli.WeightNormDense" in out["layer.keras"] and "kzoo.vat.Evil" in out["unregistered.keras"]


@pytest.mark.parametrize("config", list(_PLANTED.values()), ids=list(_PLANTED))
def test_deserialize_refuses_what_kzoo_did_not_register(config):
    before = set(sys.modules)
    with pytest.raises(KzooError, match="refusing to load") as info:
        kzoo.core.deserialize(config)
    assert "\n" not in str(info.value)
    assert {m for m in set(sys.modules) - before if m.startswith("kzoo")} == set()


def test_every_registered_name_resolves_from_the_table_alone():
    for name, module in serialization.SERIALIZABLES.items():
        short = name.partition(">")[2]
        assert serialization.registered_name({"module": module, "class_name": short, "registered_name": name}) \
            == name
        assert serialization.registered_name({"class_name": f"{module}.{short}"}) == name  # kzoo 0.1's form
    assert serialization.registered_name({"module": "keras.layers", "class_name": "Dense"}) is None


# --------------------------------------------------------------------------------------------------------------
# 2. no file kzoo writes or locks inside a user's folder follows a link planted there
# --------------------------------------------------------------------------------------------------------------

RUN = ["vat", "--labels", "20", "--batch-labeled", "8", "--batch-unlabeled", "16", "--seed", "3", "--quiet",
       "--steps", "2"]


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    yield path
    assert path.read_text() == "precious\n", "kzoo wrote through a planted symbolic link"


def _one_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("kzoo: warning:")]
    assert len(lines) == 1 and lines[0].startswith("kzoo: error: ") and "Traceback" not in err, err[-3000:]
    return lines[0]


@pytest.mark.parametrize("where", ["export", "checkpoint"])
def test_a_symlink_planted_at_a_lock_file_is_refused_and_its_target_untouched(tmp_path, victim, where, monkeypatch,
                                                                             capsys):
    from kzoo import cli

    monkeypatch.setattr(kzoo.core.Regularized, "fit", lambda *a, **k: pytest.fail("fit was called"))
    out, ck = tmp_path / "out", tmp_path / "ck"
    out.mkdir()
    ck.mkdir()
    lock = out / ".model.lock" if where == "export" else ck / ".lock"
    lock.symlink_to(victim)
    rc = cli.main(["train"] + RUN + ["--export", str(out / "model"), "--checkpoint-dir", str(ck)])
    line = _one_line(capsys.readouterr().err)
    assert rc == 2 and f"{lock} is a symbolic link" in line, line
    assert lock.is_symlink() and not (out / "model").exists()
    with pytest.raises(KzooError, match="symbolic link"):
        locks.acquire(str(lock), "x", "y")


def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / ".lock")
    with pytest.raises(KzooError, match="not a regular file"):
        locks.acquire(str(tmp_path / ".lock"), "x", "y")


def test_the_atomic_writer_never_writes_through_a_link_at_its_destination(tmp_path, victim):
    link = tmp_path / "metrics.json"
    link.symlink_to(victim)
    with pytest.raises(KzooError, match="is a symbolic link") as info:
        kio.write_json_atomic(str(link), {"a": 1})
    assert "\n" not in str(info.value) and link.is_symlink()
    with pytest.raises(KzooError, match="is a symbolic link"):  # and before any work, for the command line
        kio.check_writable_target(str(link), "metrics file")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_the_atomic_writer_never_writes_through_a_link_at_its_temporary_name(tmp_path, victim, monkeypatch):
    """The temporary file lives in a private folder made with mkdir (never through an existing name): a link
    planted at the name it would take first is skipped, and nothing can be planted inside."""
    import tempfile

    names = iter(["planted", "ours0001"] + [f"n{i:07d}" for i in range(100)])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    (tmp_path / ".tmp-planted").symlink_to(victim)
    kio.write_json_atomic(str(tmp_path / "m.json"), {"a": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert (tmp_path / ".tmp-planted").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-planted", "m.json", "victim.txt"]


def test_export_and_checkpoints_never_follow_a_planted_link(tmp_path, victim):
    import keras

    from kzoo import callbacks as kcb
    from kzoo import checkpoints as kck
    from kzoo import export as kexport

    target = tmp_path / "someone_elses_model"
    target.mkdir()
    (target / "saved_model.pb").write_text("theirs")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    link = tmp_path / "model"
    link.symlink_to(target)
    with pytest.raises(KzooError, match="is a symbolic link") as info:
        kexport.export_classifier(model, str(link))
    assert "\n" not in str(info.value) and link.is_symlink()
    assert os.listdir(target) == ["saved_model.pb"] and (target / "saved_model.pb").read_text() == "theirs"
    keras_link = tmp_path / "m.keras"
    keras_link.symlink_to(victim)
    with pytest.raises(KzooError, match="is a symbolic link"):
        kexport.save_keras_atomic(model, str(keras_link))
    # a link planted among checkpoints is not a checkpoint: never loaded, never followed
    ck = tmp_path / "ck"
    ck.mkdir()
    real = tmp_path / "elsewhere" / "ckpt-000000009"
    real.mkdir(parents=True)
    (real / "meta.json").write_text("{}")
    (ck / "ckpt-000000009").symlink_to(real, target_is_directory=True)
    assert kck.complete_checkpoints(str(ck)) == []
    kcb.save_checkpoint(model, str(ck), 3)
    assert [step for step, _ in kck.complete_checkpoints(str(ck))] == [3]
    kck.clear_checkpoints(str(ck))
    assert (real / "meta.json").read_text() == "{}"


# --------------------------------------------------------------------------------------------------------------
# 3. trust boundaries: the JAX compilation cache, the distributed search's coordinator
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_jax_cache():
    import jax

    saved = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    jax.config.update("jax_compilation_cache_dir", saved)


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX backend's cache")
@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_jax_cache_folder_writable_by_others_is_refused_when_set_and_skipped_by_default(
        tmp_path, monkeypatch, fresh_jax_cache, mode):
    import jax

    from kzoo.backend import jax as kjax

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    monkeypatch.setenv(kjax.CACHE_ENV, str(shared))
    with pytest.raises(KzooError, match=r"KZOO_JAX_CACHE_DIR=.*writable by (others|its group)") as info:
        kjax.configure_compilation_cache()
    assert "\n" not in str(info.value) and jax.config.jax_compilation_cache_dir is None
    # the default folder (nothing set) in the same state: no cache, a warning
    monkeypatch.delenv(kjax.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    default = tmp_path / "xdg" / "kzoo" / "jax"
    default.mkdir(parents=True)
    default.chmod(mode)
    with pytest.warns(UserWarning, match="is not used: the folder is writable"):
        assert kjax.configure_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir is None
    default.chmod(0o700)
    assert kjax.configure_compilation_cache() == str(default)


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX backend's cache")
def test_a_new_jax_cache_folder_is_private(tmp_path, monkeypatch, fresh_jax_cache):
    from kzoo.backend import jax as kjax

    monkeypatch.setenv(kjax.CACHE_ENV, str(tmp_path / "new" / "cache"))
    assert kjax.configure_compilation_cache() == str(tmp_path / "new" / "cache")
    assert (tmp_path / "new" / "cache").stat().st_mode & 0o077 == 0


def test_a_distributed_search_serves_on_localhost_and_reads_no_module_names_from_its_folder():
    """The chief's gRPC coordinator is unauthenticated: it listens on 127.0.0.1 only; and the worker processes
    take their configuration (the modules to import) from the parent, never from a file of the search folder."""
    import inspect

    from kzoo import tuning

    source = inspect.getsource(tuning._search_distributed)
    assert 'KERASTUNER_ORACLE_IP="127.0.0.1"' in source
    assert "json.dumps(config)" in source and "config_path" not in source
    assert "open(" not in inspect.getsource(tuning._process_main)


def test_the_readme_states_the_trust_boundaries():
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    section = text[text.index("## Trust boundaries"):]
    section = section[:section.index("\n## ", 4)]
    for needle in ("SavedModel", "safe_mode", "KZOO_JAX_CACHE_DIR", "127.0.0.1", "symbolic link"):
        assert needle in section, needle
