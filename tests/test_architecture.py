"""kzoo's layers (README, "Layout"), checked with import-linter's contract in ``.importlinter``.

No module imports from a layer above its own, not even inside a function; the
check itself is shown to fail on a deliberately added upward import.
"""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.one_backend  # the import graph does not depend on the Keras backend

MAX_LINES = 600


def _lint_imports(root):
    """``lint-imports`` on the kzoo package under ``root`` (with its ``.importlinter``): (exit code, output)."""
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                          "sys.exit(lint_imports_command())", "--no-cache"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


def test_no_module_imports_from_a_higher_layer():
    code, output = _lint_imports(REPO)
    assert code == 0, output
    assert "1 kept, 0 broken" in output, output


def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path):
    shutil.copytree(os.path.join(REPO, "kzoo"), tmp_path / "kzoo",
                    ignore=shutil.ignore_patterns("__pycache__", "_data"))
    shutil.copy(os.path.join(REPO, ".importlinter"), tmp_path / ".importlinter")
    with open(tmp_path / "kzoo" / "ops.py", "a") as f:  # layer 1 reaching up to the command line (layer 7)
        f.write("\n\ndef _upward():\n    import kzoo.cli  # noqa: F401\n")
    code, output = _lint_imports(tmp_path)
    assert code == 1, output
    assert "0 kept, 1 broken" in output, output
    assert "kzoo.ops -> kzoo.cli" in output, output


def test_no_module_is_longer_than_600_lines():
    long = {}
    for folder, _, files in os.walk(os.path.join(REPO, "kzoo")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    n = sum(1 for _ in f)
                if n > MAX_LINES:
                    long[os.path.relpath(path, REPO)] = n
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"
