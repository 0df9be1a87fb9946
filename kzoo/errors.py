"""Every error kzoo raises on purpose, under one root, and the command line's exit codes.

Standard library only: the bottom layer of kzoo (see README, Layout). Each
class keeps the builtin base it had before it moved here (``ConfigError`` is a
``ValueError``, ``TrainingDiverged`` a ``RuntimeError``...), so existing
``except ValueError`` code keeps working; ``except kzoo.errors.KzooError``
catches them all.
"""

import sys


class KzooError(Exception):
    """Root of every error kzoo raises on purpose."""


class ConfigError(KzooError, ValueError):
    """A run's configuration is invalid; raised before any work starts."""


class DatasetUnavailableError(KzooError, RuntimeError):
    """The dataset cannot be loaded on this machine (not downloaded, no TFDS, ...)."""


class ExportError(KzooError, RuntimeError):
    """A model could not be exported or saved; nothing was left half-written at the destination."""


class TrainingDiverged(KzooError, RuntimeError):
    """A loss became NaN or infinite; training was stopped."""


class NonFiniteLossError(TrainingDiverged, FloatingPointError):
    """Training produced a NaN or infinite loss; the NaN guard put the last good weights back."""


class InvalidArgumentError(ConfigError):
    """An argument's value is invalid (a library call's bad ε, shape, name...): bad input, exit code 2."""


class ArgumentTypeError(KzooError, TypeError):
    """An argument has the wrong type (a model where a path was expected...): bad input, exit code 2."""


class UsageError(KzooError, RuntimeError):
    """kzoo was called in the wrong order or context (a regularizer set after compile...): exit code 2."""


class SplitError(KzooError, ValueError):
    """A model cannot be split at the requested layer (Manifold Mixup)."""


class UnsupportedBackendError(KzooError, ImportError):
    """The active Keras backend (or a library it needs) cannot run this."""


class CheckpointError(KzooError, RuntimeError):
    """A checkpoint could not be written, or none left in the folder can be read; the run stops."""


class LockedError(ConfigError):
    """Another process holds the lock (a checkpoint folder, an export target); raised before any work starts
    (exit code 2, as other bad input)."""


class UnsafePathError(ConfigError):
    """A path kzoo would write or lock is a symbolic link, not a regular file, or not the user's own (someone
    may have planted it); refused before anything is written through it (exit code 2, as other bad input)."""


class WriteError(KzooError, OSError):
    """A file could not be written (a full disk, no permission, an I/O error); nothing was left half-written
    and what was at its path is unchanged (exit code 3). Keeps the OSError's errno."""

    def __str__(self):
        return self.strerror or super().__str__()


class NonFiniteValueError(KzooError, FloatingPointError):
    """A model's outputs, or a result to be reported or written, are NaN or infinite: refused rather than
    reported as numbers (exit code 3)."""


class TuningFailed(KzooError, RuntimeError):
    """A hyperparameter search could not finish (a process of a distributed search died)."""


# The exit codes of every ``kzoo`` command, the same for train, tune, pretrain, evaluate, datasets
# (the README's table is this one).
EXIT_OK = 0
EXIT_USAGE = 2          # bad input: usage, configuration, dataset not available; nothing was trained
EXIT_FAILED = 3         # the run failed: training diverged, an export failed, a search did not finish
EXIT_INTERRUPTED = 130  # interrupted (Ctrl-C: 128 + SIGINT)
EXIT_TERMINATED = 143  # stopped by SIGTERM (a scheduler, a container; 128 + SIGTERM), handled like Ctrl-C

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_USAGE: "bad input: usage, configuration or an unavailable dataset (checked before any work)",
    EXIT_FAILED: "the run failed: training diverged, the export failed, or a search did not finish "
                 "(the message says what was kept)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_TERMINATED: "stopped by SIGTERM (a scheduler or container), handled like Ctrl-C",
    129: "stopped by SIGHUP (the terminal closed), handled like Ctrl-C",
}

# What a command catches and turns into its exit code and a one-line message; anything else is a bug
# and keeps its traceback. (FloatingPointError: a NaN guard's NonFiniteLossError; TimeoutError: --timeout.)
COMMAND_ERRORS = (KzooError, FloatingPointError, TimeoutError)


def exit_code(error):
    """The exit code (:data:`EXIT_CODES`) of a command that stopped on ``error``."""
    if isinstance(error, KeyboardInterrupt):  # kzoo.interrupts.Interrupted: 128 + its signal (130, 143)
        return getattr(error, "exit_code", EXIT_INTERRUPTED)
    if isinstance(error, (ConfigError, DatasetUnavailableError, UnsupportedBackendError, ArgumentTypeError,
                          UsageError)):
        return EXIT_USAGE
    return EXIT_FAILED


def fail(error):
    """Print ``error`` as a command's one-line message (``kzoo: error: ...``); returns its exit code."""
    print(f"kzoo: error: {error}", file=sys.stderr)
    return exit_code(error)
