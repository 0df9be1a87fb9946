"""The folders a run, a search or a comparison writes to, and the settings they record.

A folder is locked for one process and stamped with the settings of what it holds (a JSON file); resuming
with other settings is refused in one line (:class:`~kzoo.errors.ConfigError`) instead of mixing two runs'
results. :func:`check_checkpoint_dir` for a run's (or a pretraining's) checkpoints, :func:`claim_folder` for
a search's or a comparison's folder; :func:`data_settings` is what a resumed run must share besides its own
settings.
"""

import json
import os

from kzoo import locks
from kzoo.errors import ConfigError
from kzoo.io import check_writable_target, write_json_atomic


def check_checkpoint_dir(path, config):
    """The checkpoint folder, checked writable and locked for this process; ConfigError if it holds another
    run's checkpoints or another process holds it."""
    from kzoo import checkpoints

    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"checkpoint folder {path} is an existing file, not a folder")
    check_writable_target(os.path.join(path, "run.json"), "checkpoint folder")
    try:
        os.makedirs(path, exist_ok=True)
        checkpoints.lock_checkpoint_dir(path)
        checkpoints.remove_stale(path)  # what saves killed midway left (no other run can be writing: locked)
    except locks.LockedError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"checkpoint folder {path} cannot be written: {e.strerror}") from None
    stamp = os.path.join(path, "run.json")
    current = json.loads(json.dumps(config, default=str))
    if checkpoints.latest_checkpoint(path)[1] is not None:
        check_same_settings(stamp, current, f"checkpoint folder {path}", "--checkpoint-dir",
                            "the settings of the run checkpointed there")
    write_json_atomic(stamp, current)
    return path


def backend_name():
    """The Keras backend a run uses, known before Keras is imported (as Keras chooses it: $KERAS_BACKEND, else
    keras.json, else tensorflow)."""
    import sys

    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return str(json.load(f).get("backend") or "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def data_settings(data_dir, splits):
    """What a resumed run must share with the run it resumes besides its own settings: the backend (a
    checkpoint's random state and compiled steps are the backend's), the data folder (its real path) and the
    TFDS splits."""
    return {"backend": backend_name(), "data_dir": os.path.realpath(data_dir) if data_dir else None,
            "splits": splits}


def claim_folder(folder, stamp, settings, what, flag, holds, in_use, ignore=()):
    """Lock ``folder`` (a search's or comparison's) for this process and record ``settings`` in its JSON
    file ``stamp``; ConfigError (one line) if another run holds it or, when it already holds results
    (``in_use``: True, or a folder that is not empty), if they were made with other settings (``ignore``: keys
    that may change, such as paths)."""
    try:
        os.makedirs(folder, exist_ok=True)
        locks.acquire(os.path.join(folder, ".lock"), f"{what} {folder}", f"wait for it to end, or use another {flag}")
    except OSError as e:
        raise ConfigError(f"{what} {folder} cannot be written: {e.strerror}") from None
    current = json.loads(json.dumps(settings, default=str))
    if isinstance(in_use, str):  # a folder of results: in use when not empty
        in_use = os.path.isdir(in_use) and bool(os.listdir(in_use))
    if in_use:
        check_same_settings(stamp, current, f"{what} {folder}", flag, holds, ignore)
    write_json_atomic(stamp, current)


def check_same_settings(stamp, current, what, flag, holds, ignore=()):
    """ConfigError (one line) unless the JSON ``stamp`` (``holds``: what it records) exists, is readable and
    equals ``current`` (keys an older kzoo did not record are not compared, nor those in ``ignore``)."""
    folder = os.path.dirname(stamp)
    if not os.path.isfile(stamp):
        raise ConfigError(f"{what} holds a run without its {os.path.basename(stamp)} ({holds}): kzoo cannot tell "
                          f"whether it is this run; to start over, remove the folder (rm -r {folder}), or use "
                          f"another {flag}")
    try:
        with open(stamp) as f:
            previous = json.load(f)
        if not isinstance(previous, dict):
            raise json.JSONDecodeError("not a JSON object", "", 0)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{stamp} ({holds}) is unreadable ({type(e).__name__}); to start over, remove the "
                          f"folder (rm -r {folder}) and rerun the same command") from None
    added = set(data_settings(None, None)) | {"backend"}
    diff = sorted(k for k in set(previous) | set(current) if k not in ignore
                  and previous.get(k) != current.get(k) and not (k in added and k not in previous))
    if diff:
        shown = "".join(f"; {k}: {previous.get(k)!r} there, {current.get(k)!r} now" for k in diff
                        if k in added or k == "method")
        raise ConfigError(f"{what} holds a run with other settings ({', '.join(diff)} differ{shown}); rerun the "
                          f"same command to resume it, or use another {flag}")
