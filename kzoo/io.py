"""The one atomic writer of kzoo: files and folders appear complete or not at all.

Every file kzoo writes (metrics JSON, tables, figures, ``.keras`` files, npz
exports, the NaN guard's weights) is written under a temporary name next to its
destination and renamed into place only when complete, so an interrupted write
never leaves a half-written file, and what was there survives until the new one
is whole. (Folders: a SavedModel export swaps its folder in, :mod:`kzoo.export`;
a checkpoint is checksummed and renamed into place, :mod:`kzoo.callbacks`.)
Standard library only (the bottom layer of kzoo).
"""

import contextlib
import json
import os
import tempfile

from kzoo.errors import ConfigError


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """``with atomic_file(path) as tmp:`` write ``tmp``; it replaces ``path`` only if the block succeeds.

    An interrupted write never leaves a half-written file at ``path``, and what
    was there survives until the new file is complete.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text_atomic(path, text, suffix=""):
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    with atomic_file(path, suffix) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def write_json_atomic(path, payload):
    """``payload`` as indented, key-sorted JSON at ``path``, atomically."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n", suffix=".json")


def check_writable_target(path, what):
    """``path`` made absolute, or ConfigError when it cannot be written (before any work starts).

    The nearest existing folder above ``path`` must be writable (a file can be
    created in it) and every name still to be created short enough for the
    filesystem; an ``export folder`` or ``TensorBoard folder`` must not be an existing
    file, any other target not an existing folder. None stays None.
    """
    if path is None:
        return None
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    probe = parent
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK) or not _can_create_in(probe):
        raise ConfigError(f"{what} {path} cannot be written: {probe} is not a writable folder")
    try:
        name_max = os.pathconf(probe, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for part in os.path.relpath(path, probe).split(os.sep):  # the names still to be created
        if len(os.fsencode(part)) > name_max:
            raise ConfigError(f"{what} {path} cannot be written: the name {part[:24]}... is "
                              f"{len(os.fsencode(part))} bytes long, over the {name_max} bytes a name may have "
                              "on this filesystem")
    if os.path.isfile(path) and what in ("export folder", "TensorBoard folder"):
        raise ConfigError(f"{what} {path} is an existing file, not a folder")
    if os.path.isdir(path) and what not in ("export folder", "TensorBoard folder"):
        raise ConfigError(f"{what} {path} is an existing folder; give a file path, e.g. "
                          f"{os.path.join(path, 'metrics.json' if 'metrics' in what else 'model.keras')}")
    return path


def _can_create_in(folder):
    """Whether a file can be created in ``folder`` (a read-only filesystem, or permissions, even for root)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.remove(tmp)
    return True
