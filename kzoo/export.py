"""Export a trained classifier as a TensorFlow SavedModel, atomically.

The served model is the plain classifier: its ``serve`` endpoint and
``serving_default`` signature map inputs to logits; no regularizer, optimizer or
training state is in the graph. The model is written to a temporary folder next
to the destination and moved into place only when complete, so an interrupted
export never leaves a half-written model where the final one should be, and a
previous export at the same path survives until the new one is whole.
"""

import errno
import os
import shutil
import tempfile

import keras


class ExportError(RuntimeError):
    pass


def _check_destination(filepath):
    filepath = os.path.abspath(os.fspath(filepath))
    parent = os.path.dirname(filepath)
    if os.path.exists(filepath) and not os.path.isdir(filepath):
        raise ExportError(f"cannot export to {filepath}: a file (not a SavedModel folder) is there")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the export folder {parent}: {e.strerror}") from e
    if not os.access(parent, os.W_OK):
        raise ExportError(f"cannot export to {filepath}: {parent} is not writable")
    return filepath, parent


def export_classifier(model, filepath, format="tf_saved_model", verbose=False, **kwargs):
    """Write ``model`` to ``filepath`` as a SavedModel; returns the absolute path."""
    if format != "tf_saved_model":
        raise ValueError(f"kzoo exports format='tf_saved_model' only, got {format!r}")
    if not model.built:
        raise ExportError("the model is not built: call it on data (or train it) before exporting")
    try:
        import tensorflow  # noqa: F401  (SavedModels are a TensorFlow format)
    except ImportError as e:
        raise ExportError(
            "exporting a SavedModel needs TensorFlow; install it (pip install tensorflow) "
            "or save the Keras model with model.save('model.keras')"
        ) from e
    filepath, parent = _check_destination(filepath)
    try:
        tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
    except OSError as e:
        raise ExportError(f"cannot export to {filepath}: {e.strerror} in {parent}") from e
    staged = os.path.join(tmp, "model")
    try:
        keras.Model.export(model, staged, format=format, verbose=verbose, **kwargs)
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
    from kzoo.experiment import atomic_file

    with atomic_file(filepath, ".keras") as tmp:
        model.save(tmp)
    return filepath
