"""Export a trained classifier for serving (SavedModel or ONNX), atomically.

The served model is the plain classifier: it maps inputs to logits; no
regularizer, optimizer or training state is in the graph. ``format`` is passed
to Keras' own ``Model.export``:

* ``"tf_saved_model"`` (alias ``"saved_model"``): a SavedModel folder, with a
  ``serve`` endpoint and a ``serving_default`` signature (needs TensorFlow);
* ``"keras"``: one ``.keras`` file (``model.save``), written atomically; the format that works on
  every backend;
* ``"onnx"``: one self-contained ``.onnx`` file that onnxruntime runs (Keras
  converts with tf2onnx on TensorFlow, jax2onnx on JAX: ``pip install kzoo[onnx]``).

``version=N`` writes the model repository layout of TF Serving
(``DIR/N/saved_model.pb``) and of Triton for ONNX (``DIR/N/model.onnx``): the
other versions in DIR stay, and a server watching DIR picks up N when it
appears whole.

The model is written to a temporary folder next to the destination
(``.tmp-export-NAME-*``) and moved into place only when
complete, so an interrupted export never leaves a half-written model where the
final one should be. A previous export at the same path is swapped out in one
atomic step (``renameat2(RENAME_EXCHANGE)`` on Linux), so there is no moment
when the path holds no model; where the swap is not available it takes two
renames, and the next export to that path puts back a previous export that a
kill between them left in ``.tmp-export-NAME-*/previous``. Every export removes
the temporary folders that killed exports to its path left behind. The target
is locked (:mod:`kzoo.locks`) while it is written: a second process exporting
to the same path is refused, naming the first one's pid.
"""

from kzoo.errors import InvalidArgumentError
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile

import keras
import numpy as np

from kzoo.errors import ExportError  # noqa: F401  (kzoo.export.ExportError, as before)
from kzoo.io import atomic_file, check_not_link


FORMATS = ("tf_saved_model", "onnx", "keras")  # keras: one .keras file (model.save), on every backend
_ALIASES = {"saved_model": "tf_saved_model", "savedmodel": "tf_saved_model"}
ONNX_FILENAME = "model.onnx"  # the file's name inside a versioned folder (Triton's layout)


def check_format(format):
    """The Keras export format for ``format`` (``saved_model`` is ``tf_saved_model``); ValueError otherwise."""
    fmt = _ALIASES.get(format, format)
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"export format must be one of saved_model (tf_saved_model), onnx, keras; got "
                                   f"{format!r}")
    return fmt


def check_version(version):
    """``None`` or a serving version number: an integer >= 1 (TF Serving's version folders)."""
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise InvalidArgumentError(f"the export version must be an integer >= 1 (the DIR/<version>/ folder), got {version!r}")
    return int(version)


def _saved_model_on_torch():
    """Why a SavedModel cannot come from the torch backend here (None on the other backends)."""
    if keras.backend.backend() != "torch":
        return None
    return ("a SavedModel cannot be exported from the torch backend: Keras exports torch models through "
            "torch_xla, which kzoo does not install; export ONNX (--export-format onnx), save a .keras file, "
            "or train with --backend tensorflow or jax")


def export_path(filepath, format="tf_saved_model", version=None):
    """Where an export lands: ``filepath``, or ``filepath/N`` (SavedModel) / ``filepath/N/model.onnx`` (ONNX).

    Checked before any work: a SavedModel on the torch backend is refused here (one line)."""
    if check_format(format) == "tf_saved_model" and _saved_model_on_torch():
        raise InvalidArgumentError(_saved_model_on_torch())
    filepath = os.path.abspath(os.fspath(filepath))
    version = check_version(version)
    if version is None:
        return filepath
    folder = os.path.join(filepath, str(version))
    return os.path.join(folder, ONNX_FILENAME) if check_format(format) == "onnx" else folder


def _check_destination(filepath, is_file):
    parent = os.path.dirname(filepath)
    check_not_link(filepath, "export destination")  # a link planted there is refused, never replaced or followed
    if os.path.exists(filepath) and os.path.isdir(filepath) == is_file:
        what = "a folder (an ONNX export is one file)" if is_file else "a file (not a SavedModel folder)"
        raise ExportError(f"cannot export to {filepath}: {what} is there")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the export folder {parent}: {e.strerror}") from e
    if not os.access(parent, os.W_OK):
        raise ExportError(f"cannot export to {filepath}: {parent} is not writable")
    return filepath, parent


def _check_converter(fmt):
    if fmt == "tf_saved_model" and _saved_model_on_torch():
        raise ExportError(_saved_model_on_torch())
    if fmt == "tf_saved_model":
        needed, hint = ["tensorflow"], "install it (pip install tensorflow)"
    else:
        # torch: Keras converts with torch.onnx itself
        converter = {"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "torch.onnx"}.get(keras.backend.backend())
        if converter is None:
            raise ExportError(f"ONNX export runs on the TensorFlow, JAX or torch backend, not "
                              f"{keras.backend.backend()!r}")
        needed, hint = ["onnx", converter], "pip install kzoo[onnx]"
    for module in needed:
        try:
            __import__(module)
        except ImportError as e:
            raise ExportError(
                f"exporting format={fmt!r} on the {keras.backend.backend()} backend needs {module}: {hint}; "
                "or save the Keras model with model.save('model.keras')"
            ) from e


def _ensure_called(model):
    """Keras' ONNX export needs a model that was called once; call it on zeros of its input shape."""
    if getattr(model, "_called", True):
        return
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and all(isinstance(d, int) for d in shape[1:]):
        model(np.zeros((1,) + tuple(shape[1:]), "float32"), training=False)


def export_classifier(model, filepath, format="tf_saved_model", verbose=False, version=None, **kwargs):
    """Write ``model`` to ``filepath`` (``version``: to ``filepath/N``) in ``format``; returns the absolute path."""
    fmt = check_format(format)
    try:
        version = check_version(version)
    except ValueError as e:
        raise ExportError(str(e)) from None
    if not model.built:
        raise ExportError("the model is not built: call it on data (or train it) before exporting")
    if fmt == "keras":
        if version is not None:
            raise ExportError("a version folder (DIR/N/) is for saved_model and onnx exports; a Keras export is "
                              "one .keras file")
        return save_keras_atomic(model, filepath)
    _check_converter(fmt)
    is_file = fmt == "onnx"
    filepath, parent = _check_destination(export_path(filepath, fmt, version), is_file)
    if is_file:
        _ensure_called(model)
    from kzoo import locks

    try:
        locks.lock_beside(filepath, f"export target {filepath}", "wait for it to end, or export elsewhere")
    except locks.LockedError as e:
        raise ExportError(str(e)) from None
    try:
        return _export_locked(model, filepath, parent, fmt, verbose, **kwargs)
    finally:
        locks.release(os.path.join(parent, f".{os.path.basename(filepath)}.lock"))


def _export_locked(model, filepath, parent, format, verbose, **kwargs):
    recover_interrupted_export(filepath)
    try:
        tmp = tempfile.mkdtemp(prefix=f"{_tmp_prefix(filepath)}", dir=parent)
    except OSError as e:
        raise ExportError(f"cannot export to {filepath}: {e.strerror} in {parent}") from e
    is_file = format == "onnx"
    staged = os.path.join(tmp, "model.onnx" if is_file else "model")
    try:
        keras.Model.export(model, staged, format=format, verbose=verbose, **kwargs)
        if is_file:
            _embed_external_data(staged)
        if os.path.exists(filepath) and _exchange(staged, filepath):
            pass  # the new model is at filepath, the previous one at staged (removed with tmp)
        else:
            old = None
            if os.path.exists(filepath):
                old = os.path.join(tmp, "previous")
                os.replace(filepath, old)
            try:
                os.replace(staged, filepath)
            except OSError:
                if old is not None:  # put the previous export back before tmp is removed
                    os.replace(old, filepath)
                raise
    except Exception as e:  # OSError, or TensorFlow's own errors while writing the SavedModel
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        full = getattr(e, "errno", None) == errno.ENOSPC or "no space left" in str(e).lower()
        hint = " (the disk is full: free space or export elsewhere)" if full else ""
        kept = " (the previous export there is unchanged)" if os.path.exists(filepath) else ""
        raise ExportError(f"export to {filepath} failed{hint}: {reason}; nothing was left at that path{kept}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return filepath


def _embed_external_data(path):
    """One self-contained ``.onnx`` file: jax2onnx writes larger weights to ``model.onnx.data`` beside it,
    which would not travel with the file; they are put back inside (ONNX's limit: 2 GB)."""
    folder = os.path.dirname(path)
    extra = [f for f in os.listdir(folder) if f != os.path.basename(path)]
    if not extra:
        return
    import onnx

    onnx.save_model(onnx.load(path), path, save_as_external_data=False)
    for name in extra:
        os.remove(os.path.join(folder, name))


_RENAME_EXCHANGE = 2


def _exchange(a, b):
    """Swap the folders (or files) ``a`` and ``b`` in one atomic step; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # not on this file system: two renames
    raise OSError(err, os.strerror(err), b)


def _tmp_prefix(filepath):
    return f".tmp-export-{os.path.basename(filepath)}-"


def recover_interrupted_export(filepath):
    """Clean what killed exports to ``filepath`` left; call with the target's lock held.

    A previous export that a kill between the two renames left in
    ``.tmp-export-NAME-*/previous`` is put back if ``filepath`` is missing (a
    warning says so); the temporary folders are removed. Folders of kzoo
    versions that did not name their target (``.tmp-export-XXXXXXXX``) are removed
    when they hold no previous export.
    """
    filepath = os.path.abspath(os.fspath(filepath))
    parent = os.path.dirname(filepath)
    if not os.path.isdir(parent):
        return
    ours = _tmp_prefix(filepath)
    for entry in sorted(os.listdir(parent)):
        path = os.path.join(parent, entry)
        mine = entry.startswith(ours) and len(entry) == len(ours) + 8
        legacy = re.fullmatch(r"\.tmp-export-[a-z0-9_]{8}", entry) is not None
        if not (mine or legacy) or os.path.islink(path) or not os.path.isdir(path):
            continue  # (a link is not a folder kzoo made: never followed)
        previous = os.path.join(path, "previous")
        if os.path.exists(previous):  # a SavedModel folder or an ONNX file
            if not mine:
                print(f"kzoo: warning: {path} holds an export that an interrupted replacement left; "
                      "it is left there for you to move back", file=sys.stderr)
                continue
            if not os.path.exists(filepath):
                os.replace(previous, filepath)
                print(f"kzoo: warning: an earlier export to {filepath} was interrupted between its two renames; "
                      f"the previous export was put back from {path}", file=sys.stderr)
        shutil.rmtree(path, ignore_errors=True)


def save_keras_atomic(model, filepath):
    """``model.save(filepath)`` (Keras format) through a temporary file and an atomic rename.

    An interrupted save never leaves a truncated model at ``filepath``, and a
    previous model there survives until the new one is complete.
    """
    filepath = os.path.abspath(os.fspath(filepath))
    if not filepath.endswith(".keras"):
        raise ExportError(f"Keras models are saved as .keras files; got {filepath!r}")
    parent = os.path.dirname(filepath)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the folder {parent}: {e.strerror}") from e
    with atomic_file(filepath, ".keras") as tmp:
        model.save(tmp)
    return filepath
