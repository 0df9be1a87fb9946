"""One error root and one table of exit codes for every kzoo command."""

import pytest

from kzoo import cli, errors, experiment, tuning

ERRORS = (errors.ConfigError, errors.DatasetUnavailableError, errors.ExportError, errors.TrainingDiverged,
          errors.NonFiniteLossError, errors.SplitError, errors.UnsupportedBackendError, errors.TuningFailed,
          errors.InvalidArgumentError, errors.ArgumentTypeError, errors.UsageError)


def test_every_kzoo_error_has_one_root_and_keeps_its_builtin_base():
    for cls in ERRORS:
        assert issubclass(cls, errors.KzooError)
    assert issubclass(errors.ConfigError, ValueError) and issubclass(errors.SplitError, ValueError)
    assert issubclass(errors.TrainingDiverged, RuntimeError) and issubclass(errors.ExportError, RuntimeError)
    assert issubclass(errors.NonFiniteLossError, (errors.TrainingDiverged, FloatingPointError))
    assert issubclass(errors.UnsupportedBackendError, ImportError)


def test_old_homes_name_the_same_classes():
    from kzoo import backend, callbacks, data, export, mixup

    assert experiment.ConfigError is errors.ConfigError and data.DatasetUnavailableError is errors.DatasetUnavailableError
    assert export.ExportError is errors.ExportError and callbacks.TrainingDiverged is errors.TrainingDiverged
    assert callbacks.NonFiniteLossError is errors.NonFiniteLossError and mixup.SplitError is errors.SplitError
    assert backend.UnsupportedBackendError is errors.UnsupportedBackendError


@pytest.mark.parametrize("error, code", [
    (errors.ConfigError("bad --epsilon"), 2), (errors.DatasetUnavailableError("no svhn here"), 2),
    (errors.TrainingDiverged("loss became nan"), 3), (errors.NonFiniteLossError("nan"), 3),
    (errors.InvalidArgumentError("epsilon must be > 0"), 2), (errors.ArgumentTypeError("not a keras.Model"), 2),
    (errors.UsageError("set the regularizer before compile()"), 2), (errors.ExportError("disk full"), 3), (errors.TuningFailed("chief died"), 3), (TimeoutError("--timeout"), 3),
])
def test_train_and_tune_exit_with_the_same_code_for_the_same_failure(error, code, monkeypatch, capsys):
    def raise_it(*args, **kwargs):
        raise error

    monkeypatch.setattr(experiment, "run", raise_it)
    monkeypatch.setattr(tuning, "tune", raise_it)
    assert cli.main(["train", "vat", "--steps", "2", "--quiet"]) == code
    assert cli.main(["tune", "vat", "--steps", "2", "--quiet"]) == code
    err = capsys.readouterr().err
    assert err.count(f"kzoo: error: {error}") == 2
    assert code in errors.EXIT_CODES


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "run", interrupted)
    assert cli.main(["train", "vat", "--quiet"]) == errors.EXIT_INTERRUPTED == 130
    assert "interrupted" in capsys.readouterr().err


def test_an_unexpected_error_keeps_its_traceback(monkeypatch):
    def bug(*args, **kwargs):
        raise KeyError("a bug, not a kzoo error")

    monkeypatch.setattr(experiment, "run", bug)
    with pytest.raises(KeyError):
        cli.main(["train", "vat", "--quiet"])


# bare builtin exception classes kzoo may name outside except clauses, isinstance checks and class bases, and why
_BARE_ALLOWED = {
    ("__init__.py", "AttributeError"), ("networks/classifiers.py", "AttributeError"),  # __getattr__'s protocol
    ("tuning.py", "AttributeError"), ("serialization.py", "AttributeError"),
    ("core.py", "NotImplementedError"), ("train_step.py", "NotImplementedError"), ("ops.py", "NotImplementedError"),  # abstract methods
    ("callbacks.py", "OSError"), ("export.py", "OSError"),  # raised and caught inside: CheckpointError/ExportError
    ("methods/registry.py", "KeyError"),  # a mapping lookup; every caller turns it into ConfigError
    ("serialization.py", "TypeError"),  # kzoo's own table out of date: a bug, not an input error
    ("errors.py", "FloatingPointError"),  # COMMAND_ERRORS (what commands catch)
}
_BARE = {"ValueError", "TypeError", "RuntimeError", "FloatingPointError", "KeyError", "IndexError", "OSError",
         "ImportError", "ArithmeticError", "LookupError", "ZeroDivisionError", "AssertionError", "Exception",
         "NotImplementedError", "AttributeError", "IOError", "EnvironmentError"}


def test_library_code_raises_kzoo_errors_not_bare_builtins():
    """Every error kzoo raises on purpose is under KzooError (the bad-argument ones are still ValueError/TypeError).

    Not only ``raise ValueError(...)``: any use of a bare builtin exception class is found (a default argument
    ``error=ValueError``, a helper that returns ``ValueError(...)``, an alias), except in ``except`` clauses,
    ``isinstance``/``issubclass`` checks and class bases, and the few uses listed above with their reason.
    """
    import ast
    import pathlib

    import kzoo

    root = pathlib.Path(kzoo.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        allowed = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                allowed |= {id(n) for n in ast.walk(node.type)}
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("isinstance", "issubclass"):
                allowed |= {id(n) for arg in node.args[1:] for n in ast.walk(arg)}
            elif isinstance(node, ast.ClassDef):
                allowed |= {id(n) for base in node.bases for n in ast.walk(base)}
        rel = path.relative_to(root).as_posix()
        found += [f"{rel}:{node.lineno} {node.id}" for node in ast.walk(tree)
                  if isinstance(node, ast.Name) and node.id in _BARE and id(node) not in allowed
                  and (rel, node.id) not in _BARE_ALLOWED]
    assert found == []
    assert issubclass(errors.InvalidArgumentError, (errors.ConfigError, ValueError))
    assert issubclass(errors.ArgumentTypeError, TypeError) and issubclass(errors.UsageError, RuntimeError)
