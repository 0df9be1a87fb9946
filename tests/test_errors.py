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


def test_library_code_raises_kzoo_errors_not_bare_builtins():
    """Every error kzoo raises on purpose is under KzooError (the bad-argument ones are still ValueError/TypeError)."""
    import pathlib
    import re

    import kzoo

    root = pathlib.Path(kzoo.__file__).parent
    bare = re.compile(r"raise (ValueError|TypeError|RuntimeError)\(")
    found = [f"{p.relative_to(root)}:{i}" for p in sorted(root.rglob("*.py")) if p.name != "serialization.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if bare.search(line)]
    assert found == []
    assert issubclass(errors.InvalidArgumentError, (errors.ConfigError, ValueError))
    assert issubclass(errors.ArgumentTypeError, TypeError) and issubclass(errors.UsageError, RuntimeError)
