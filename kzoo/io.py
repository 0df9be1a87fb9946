"""The one atomic writer of kzoo: files and folders appear complete or not at all.

Every file kzoo writes (metrics JSON, tables, figures, ``.keras`` files, npz
exports, the NaN guard's weights) is written under a temporary name next to its
destination and renamed into place only when complete, so an interrupted write
never leaves a half-written file, and what was there survives until the new one
is whole. (Folders: a SavedModel export swaps its folder in, :mod:`kzoo.export`;
a checkpoint is checksummed and renamed into place, :mod:`kzoo.callbacks`.)

Nothing is written through a link kzoo did not make: a destination (or lock
file) that is a symbolic link, or not the user's own, is refused in one line
(:class:`~kzoo.errors.UnsafePathError`), and temporary files live in a private
folder (mode 0700, made with ``mkdtemp``) where nobody else can plant anything.
Standard library only (the bottom layer of kzoo).
"""

import contextlib
import errno
import json
import math
import os
import shutil
import stat
import tempfile

from kzoo.errors import ConfigError, NonFiniteValueError, UnsafePathError, WriteError


def _unsafe(path, what, st):
    if stat.S_ISLNK(st.st_mode):
        return UnsafePathError(f"{what} {path} is a symbolic link, which kzoo does not follow or replace (someone "
                               f"may have planted it): remove it (rm {path}) or choose another path")
    if st.st_uid != os.getuid():
        return UnsafePathError(f"{what} {path} belongs to another user (uid {st.st_uid}); kzoo writes only the "
                               "user's own files: remove it or choose another path")
    return None


def check_not_link(path, what="file"):
    """Raise :class:`UnsafePathError` when ``path`` exists as a symbolic link or is not the user's own
    (nothing is followed); a missing path is fine. Returns ``path``."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # missing (or under a file: the callers' own checks say so)
        return path
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:  # cannot exist: check_writable_target names the part that is too long
            return path
        raise
    error = _unsafe(path, what, st)
    if error is not None:
        raise error
    return path


def open_nofollow(path, flags, what="file", mode=0o644):
    """``os.open(path, flags)`` that never follows a link at ``path`` and returns only a descriptor of a
    regular file the user owns; else :class:`UnsafePathError` (one line), nothing written."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePathError(f"{what} {path} is a symbolic link, which kzoo does not follow (someone may "
                                  f"have planted it): remove it (rm {path}) or choose another path") from None
        raise
    st = os.fstat(fd)
    error = _unsafe(path, what, st)
    if error is None and not stat.S_ISREG(st.st_mode):
        error = UnsafePathError(f"{what} {path} is not a regular file: remove it or choose another path")
    if error is not None:
        os.close(fd)
        raise error
    return fd


def open_new_text(path, what="file"):
    """A text file object writing ``path`` (created or truncated) without following a link there."""
    return os.fdopen(open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, what), "w")


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """``with atomic_file(path) as tmp:`` write ``tmp``; it replaces ``path`` only if the block succeeds.

    An interrupted write never leaves a half-written file at ``path``, and what
    was there survives until the new file is complete. ``tmp`` lies in a private
    temporary folder beside ``path`` (no one else can plant a link there); a
    symbolic link at ``path`` itself, or a file of another user, is refused
    (:class:`UnsafePathError`) and never replaced.
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    private = None
    try:
        os.makedirs(folder, exist_ok=True)
        check_not_link(path, "destination")
        if os.path.lexists(path) and not os.path.isfile(path):  # a folder, a device, a fifo: never replaced
            raise UnsafePathError(f"destination {path} is not a regular file: remove it or choose another path")
        private = tempfile.mkdtemp(prefix=".tmp-", dir=folder)
        tmp = os.path.join(private, "file" + suffix)
        yield tmp
        st = os.lstat(tmp)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"the temporary file {tmp} is not a regular file; {path} was not replaced")
        check_not_link(path, "destination")
        os.replace(tmp, path)
    except OSError as e:
        if isinstance(e, WriteError):
            raise
        raise write_error(path, e) from e
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def write_error(path, e):
    """:class:`WriteError` (one line, errno kept) for the OSError ``e`` raised while writing ``path``."""
    reason = "no space left on device (the disk is full)" if e.errno == errno.ENOSPC else \
        (e.strerror or " ".join(str(e).split()) or type(e).__name__)
    kept = "what was there is unchanged" if os.path.lexists(path) else "nothing was left there"
    return WriteError(e.errno, f"could not write {path}: {reason}; {kept}")


def write_text_atomic(path, text, suffix=""):
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    with atomic_file(path, suffix) as tmp:
        with open_new_text(tmp) as f:
            f.write(text)


def write_json_atomic(path, payload):
    """``payload`` as indented, key-sorted, strict JSON at ``path``, atomically.

    Strict: a NaN or infinite number is never written as a bare ``NaN``/``Infinity`` (which JSON does not
    have): :class:`NonFiniteValueError` names the first such key and nothing is written.
    """
    try:
        text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False)
    except ValueError:
        where = _non_finite_key(payload)
        raise NonFiniteValueError(f"refusing to write {path}: {where or 'a value'} is NaN or infinite, which "
                                  "JSON cannot hold; nothing was written") from None
    write_text_atomic(path, text + "\n", suffix=".json")


def _non_finite_key(value, where=""):
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the value"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) \
        else ()
    for key, item in items:
        found = _non_finite_key(item, f"{where}[{key!r}]" if where or not isinstance(key, str) else key)
        if found:
            return found
    return None


def check_writable_target(path, what):
    """``path`` made absolute, or ConfigError when it cannot be written (before any work starts).

    The nearest existing folder above ``path`` must be writable (a file can be
    created in it) and every name still to be created short enough for the
    filesystem; an ``export folder`` or ``TensorBoard folder`` must not be an existing
    file, any other target not an existing folder, and none a symbolic link or
    another user's (:func:`check_not_link`). None stays None.
    """
    if path is None:
        return None
    path = check_not_link(os.path.abspath(path), what)
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
