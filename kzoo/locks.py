"""Advisory locks (fcntl) that keep two kzoo runs off one checkpoint folder or export target.

Standard library only: the command line takes its locks while checking its
arguments, before Keras is imported. A lock is held by this process until
:func:`release` or until the process ends (a killed process's lock goes with
it, so a stale lock never blocks the next run). The lock file holds the pid of
its holder, which a refused run names. A lock file is removed when its lock
is given back; one left by a killed process is taken over by the next run.
"""

import fcntl
import os

from kzoo.errors import LockedError  # noqa: F401  (kzoo.locks.LockedError, as before)
from kzoo.io import open_nofollow

_HELD = {}  # path of the lock file (real folder) -> [fd, depth]


def _key(lockfile):
    return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(lockfile))), os.path.basename(lockfile))


def acquire(lockfile, what, hint):
    """Lock ``lockfile`` (created if missing) for this process, or raise :class:`LockedError`.

    ``what`` names the locked thing and ``hint`` what to do instead, for the
    message. A symbolic link at the lock's name, or a lock file that is not a
    regular file of the user's, is refused (:class:`kzoo.errors.UnsafePathError`)
    and never written. Taking a lock this process already holds is a no-op (counted:
    release it as many times). The lock file exists only while a process holds
    it (or after that process was killed; the next run takes it over).
    """
    path = _key(lockfile)
    if path in _HELD:
        _HELD[path][1] += 1
        return path
    for _ in range(100):
        # never through a link planted at the lock's name, only a regular file of the user (else UnsafePathError)
        fd = open_nofollow(path, os.O_RDWR | os.O_CREAT, f"the lock file of {what}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                pid = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise LockedError(f"{what} is in use by another kzoo run (pid {pid}); {hint}") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder removed the file as we opened it: lock the new one
    else:
        raise LockedError(f"{what}: could not take the lock {path}; {hint}")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[path] = [fd, 1]
    return path


def lock_beside(target, what, hint):
    """Lock the hidden file ``.NAME.lock`` next to ``target`` (a path that may be replaced or not exist yet)."""
    target = os.path.abspath(target)
    return acquire(os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.lock"), what, hint)


def release(lockfile):
    """Give back a lock taken with :func:`acquire`; its file is removed (while still locked, so no race)."""
    path = _key(lockfile)
    held = _HELD.get(path)
    if held is None:
        return
    held[1] -= 1
    if held[1] <= 0:
        del _HELD[path]
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(held[0])  # closing the descriptor drops the flock


def holds(lockfile):
    """Whether this process holds ``lockfile``."""
    return _key(lockfile) in _HELD


def scoped(fn):
    """Decorator: the locks ``fn`` takes are given back when it returns or raises."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = {path: held[1] for path, held in _HELD.items()}
        try:
            return fn(*args, **kwargs)
        finally:
            for path in list(_HELD):
                for _ in range(_HELD[path][1] - before.get(path, 0)):
                    release(path)

    return wrapper
