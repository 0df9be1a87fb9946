"""The files of a run's checkpoints: layout, checksums, verification, fall-back, lock (no Keras).

A checkpoint is a folder ``ckpt-STEP`` (written by
:func:`kzoo.callbacks.save_checkpoint`) holding ``model.weights.h5``,
``state.npz``, ``meta.json`` and, written last, ``manifest.json`` with the
size and sha256 of each of them. A folder without its manifest is incomplete
and ignored; a file that does not match its checksum marks the checkpoint
damaged, and a run resumes from the previous complete one (the two newest are
kept). The command line checks and locks a checkpoint folder with these
functions before Keras is imported.
"""

import errno
import hashlib
import json
import os
import re
import shutil

from kzoo.errors import CheckpointError  # noqa: F401  (kzoo.checkpoints.CheckpointError, as before)

_CKPT = re.compile(r"^ckpt-(\d+)$")
MANIFEST = "manifest.json"
_FILES = ("model.weights.h5", "state.npz", "meta.json")
KEEP = 2  # complete checkpoints kept: the newest and the one before, to fall back on if the newest is damaged


def complete_checkpoints(directory):
    """``[(step, path)]`` of the folder's complete checkpoints (manifest written), newest first (a symbolic
    link is not a checkpoint kzoo wrote: never followed)."""
    if not directory or not os.path.isdir(directory):
        return []
    found = []
    for entry in os.listdir(directory):
        m = _CKPT.match(entry)
        path = os.path.join(directory, entry)
        # a checkpoint of kzoo before checksums has meta.json and no manifest: still complete
        if m and not os.path.islink(path) and (os.path.isfile(os.path.join(path, MANIFEST)) or os.path.isfile(os.path.join(path, "meta.json"))):
            found.append((int(m.group(1)), path))
    return sorted(found, reverse=True)


def latest_checkpoint(directory):
    """``(step, path)`` of the newest complete checkpoint in ``directory``, or ``(0, None)`` (not verified:
    :func:`resumable_checkpoint` checks the checksums)."""
    found = complete_checkpoints(directory)
    return found[0] if found else (0, None)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checkpoint(path):
    """None if every file of the checkpoint at ``path`` matches its manifest, else what is wrong (one line)."""
    manifest = os.path.join(path, MANIFEST)
    if not os.path.isfile(manifest):  # written before checksums: loading it is the only check
        return None
    try:
        with open(manifest) as f:
            files = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{manifest} is unreadable ({type(e).__name__})"
    for name, want in files.items():
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            return f"{file} is missing"
        size = os.path.getsize(file)
        if size != want["bytes"]:
            return f"{file} has {size} bytes, its checksum manifest says {want['bytes']} (truncated?)"
        if sha256(file) != want["sha256"]:
            return f"{file} does not match its sha256 checksum"
    return None


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_error(directory, step, e):
    import gc
    import sys

    hook, sys.unraisablehook = sys.unraisablehook, lambda unraisable: None
    try:
        gc.collect()  # drop the failed writer's open h5py objects now, quietly (their close fails again)
    finally:
        sys.unraisablehook = hook
    reason = " ".join(str(e).split()) if not getattr(e, "strerror", None) else e.strerror
    if getattr(e, "errno", None) == errno.ENOSPC:
        reason = "no space left on device" + (f" ({e.strerror})" if e.strerror and "space" not in e.strerror
                                              else "")
    kept, path = latest_checkpoint(directory)
    where = (f"the last complete checkpoint (step {kept}) is kept in {path}; free space and rerun the same "
             "command to resume from it" if path else "no earlier checkpoint is there")
    return CheckpointError(f"could not write the checkpoint of step {step} in {directory}: {reason}; "
                           f"training stopped and {where}")


def resumable_checkpoint(directory, say=None):
    """``(step, path)`` of the newest checkpoint whose checksums match, or ``(0, None)`` if there is none.

    A damaged checkpoint is renamed ``ckpt-STEP.corrupt`` (kept for inspection,
    removed with the run's checkpoints when it completes) and the previous
    complete one is used, which ``say(message)`` reports. If checkpoints were
    there and all are damaged, :class:`CheckpointError` names the file and how to
    start over.
    """
    bad = []
    for step, path in complete_checkpoints(directory):
        problem = verify_checkpoint(path)
        if problem is None:
            if bad and say:
                say(f"the checkpoint at step {bad[-1][0]} is damaged ({bad[-1][1]}); it was moved aside to "
                    f"{bad[-1][2]} and the run resumes from the previous complete checkpoint (step {step})")
            return step, path
        bad.append((step, problem, move_aside(path)))
    if bad:
        raise none_left(directory, bad)
    return 0, None


def move_aside(path):
    aside = path + ".corrupt"
    shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(path, aside)
    except OSError:
        return path
    return aside


def none_left(directory, bad):
    step, problem, aside = bad[0]
    return CheckpointError(f"no complete checkpoint is left in {directory}: the one at step {step} is damaged "
                           f"({problem}; moved aside to {aside}); to start over from step 0, remove the folder "
                           f"(rm -r {directory}) and rerun the same command")


def discard(path):
    """Delete the checkpoint folder ``path`` so that a kill midway never leaves a half-deleted one that still
    looks complete: it leaves the checkpoint names first (one atomic rename to ``.tmp-ckpt-*``, which
    :func:`remove_stale` clears), then is deleted."""
    parent, name = os.path.split(os.path.normpath(path))
    trash = os.path.join(parent, f".tmp-ckpt-discard-{name}-{os.urandom(4).hex()}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def clear_checkpoints(directory):
    """Remove this run's checkpoints (after its outputs are written); the folder stays."""
    if directory and os.path.isdir(directory):
        for entry in os.listdir(directory):
            if _CKPT.match(entry):
                discard(os.path.join(directory, entry))
            elif entry.startswith(".tmp-ckpt-") or (entry.endswith(".corrupt") and _CKPT.match(entry[:-len(".corrupt")])):
                shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)


def remove_stale(directory):
    """Remove the temporary folders of saves that were killed midway (call with the folder's lock held)."""
    if directory and os.path.isdir(directory):
        for entry in os.listdir(directory):
            if entry.startswith(".tmp-ckpt-"):
                shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)


def lock_checkpoint_dir(directory):
    """Lock ``directory`` for this process (:mod:`kzoo.locks`); a second run on it is refused naming our pid."""
    from kzoo import locks

    return locks.acquire(os.path.join(directory, ".lock"), f"checkpoint folder {directory}",
                         "wait for it to end, or use another --checkpoint-dir")


