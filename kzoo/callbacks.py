"""Fault tolerance for long runs: step-exact checkpoints, divergence guard, TensorBoard.

:class:`TrainingGuard` is what ``kzoo train --checkpoint-dir DIR`` adds to every
``fit`` of a run (:meth:`kzoo.methods.context.RunContext.fit`). It plays the role of
``keras.callbacks.BackupAndRestore(save_freq=N)`` with three differences that a
killed run needs:

* it resumes at the exact optimizer step of the last checkpoint (Keras'
  callback resumes at the start of the interrupted epoch), so a killed and
  resumed run takes the same number of optimizer steps as an uninterrupted one;
* a checkpoint is one folder ``ckpt-STEP`` written under a temporary name,
  checksummed (``manifest.json``, written last) and renamed into place, so a
  SIGKILL while saving leaves the previous checkpoint intact, never a
  half-written one; the two newest are kept and a damaged newest one (a
  truncated file) is detected and skipped for the previous one
  (:mod:`kzoo.checkpoints`); a full disk stops the run with
  :class:`CheckpointError`, the earlier checkpoints intact; the state not in
  ``model.weights`` (random seed generators of the regularizers and dropout)
  is saved too;
* every step's logged losses are checked: a NaN or infinite loss stops training
  (:class:`TrainingDiverged`), and the last checkpoint written (from before the
  divergence: weights are checked finite before any save) is kept.

The data stream is not part of a checkpoint: on resume, ``RunContext.fit``
rebuilds it from the run's seed and skips the batches already consumed, so the
resumed run sees the batches the uninterrupted run would have seen.
"""

from kzoo.errors import InvalidArgumentError
import errno
import json
import math
import os
import shutil
import tempfile
import traceback
import zipfile

import keras
import numpy as np

from kzoo import backend as kb
from kzoo import interrupts
from kzoo.errors import NonFiniteLossError, TrainingDiverged  # noqa: F401  (kzoo.callbacks.TrainingDiverged, as before)
from kzoo.io import atomic_file
from kzoo.checkpoints import (  # noqa: F401  (the checkpoint file functions, kept importable from here)
    KEEP, MANIFEST, CheckpointError, clear_checkpoints, complete_checkpoints, discard, fsync, latest_checkpoint,
    lock_checkpoint_dir, move_aside, none_left, resumable_checkpoint, sha256, verify_checkpoint, write_error)
from kzoo.checkpoints import _FILES


def _scalar(value):
    value = getattr(value, "value", value)
    if hasattr(value, "detach"):  # a torch parameter requires grad, and numpy() refuses it
        value = value.detach()
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(keras.ops.convert_to_numpy(value) if not isinstance(value, np.ndarray) else value)


def _extra_variables(model):
    """Variables of ``model`` outside ``model.weights`` (seed generator states), in a stable order."""
    in_weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in in_weights]


def _state_nbytes(model):
    """Bytes of the model's and its optimizer's variables: about what a checkpoint of it takes on disk."""
    variables = list(model.variables) + list(getattr(model.optimizer, "variables", None) or [])
    return sum(int(np.prod(v.shape)) * np.dtype(getattr(v.dtype, "name", v.dtype)).itemsize for v in variables)


def save_checkpoint(model, directory, step, keep=KEEP):
    """Write ``model``'s weights, optimizer and seed state as ``directory/ckpt-STEP``, atomically.

    The files are written to a temporary folder, checksummed into ``manifest.json``
    (written last) and renamed into place; then only the ``keep`` newest
    checkpoints stay. A failed write (a full disk) raises :class:`CheckpointError`
    and leaves the earlier checkpoints as they were.
    """
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, f"ckpt-{int(step):09d}")
    try:
        free = shutil.disk_usage(directory).free
        need = _state_nbytes(model) + (1 << 20)
        if free < need:  # refuse before writing: h5py can crash the process when the disk fills mid-write
            raise OSError(errno.ENOSPC, f"{free / 2**20:.1f} MB free, a checkpoint needs about "
                                        f"{need / 2**20:.1f} MB")
        tmp = tempfile.mkdtemp(prefix=".tmp-ckpt-", dir=directory)
    except OSError as e:
        raise write_error(directory, step, e) from None
    try:
        model.save_weights(os.path.join(tmp, "model.weights.h5"))
        extra = _extra_variables(model)
        np.savez(os.path.join(tmp, "state.npz"), *[_scalar(v) for v in extra])
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump({"step": int(step), "extra": [v.path for v in extra]}, f)
        files = {}
        for name in _FILES:
            file = os.path.join(tmp, name)
            fsync(file)
            files[name] = {"bytes": os.path.getsize(file), "sha256": sha256(file)}
        with open(os.path.join(tmp, MANIFEST), "w") as f:  # last: a checkpoint without it is incomplete
            json.dump({"step": int(step), "files": files}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(final):
            discard(final)
        os.rename(tmp, final)
        fsync(directory)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        error = write_error(directory, step, e)
        # HDF5 that failed mid-write can crash the interpreter at exit: the command line then exits at once
        error.hard_exit = any("h5py" in frame.filename for frame in traceback.extract_tb(e.__traceback__))
        raise error from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old_step, path in complete_checkpoints(directory)[keep:]:  # older checkpoints, once the new one is in place
        if old_step < step:
            discard(path)
    return final


def _restore_or_fall_back(model, directory, say=None):
    """Restore the newest checkpoint that verifies and loads; ``(step, path)`` or ``(0, None)``."""
    bad = []
    while True:
        step, path = resumable_checkpoint(directory, say)
        if path is None:
            if bad:
                raise none_left(directory, bad)
            return 0, None
        try:
            return restore_checkpoint(model, path), path
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            if "written by another model" in str(e):
                raise
            problem = f"{path} cannot be loaded: " + " ".join(str(e).split())[:200]
            bad.append((step, problem, move_aside(path)))
            if say:
                say(f"the checkpoint at step {step} is damaged ({problem}); it was moved aside")


def restore_checkpoint(model, path):
    """Load a checkpoint written by :func:`save_checkpoint` into the compiled ``model``; returns its step."""
    if not model.built:
        raise InvalidArgumentError("the model must be built (called on a batch) before a checkpoint can be restored")
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(path, "model.weights.h5"))
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    extra = _extra_variables(model)
    with np.load(os.path.join(path, "state.npz")) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    # by position: the paths of seed generators carry name counters (seed_generator_3) that differ
    # between processes, and between models built one after another in one process
    if len(values) != len(extra) or any(tuple(np.shape(a)) != tuple(v.shape) for a, v in zip(values, extra)):
        raise InvalidArgumentError(f"the checkpoint {path} holds {len(values)} random-state variables "
                         f"({', '.join(meta['extra']) or 'none'}) but the model has {len(extra)} "
                         f"({', '.join(v.path for v in extra) or 'none'}): it was written by another model")
    for v, value in zip(extra, values):
        v.assign(value)
    return int(meta["step"])


class TrainingGuard(keras.callbacks.Callback):
    """Stop at ``total_steps`` optimizer steps, stop on a non-finite loss, checkpoint every ``every`` steps.

    ``initial_step`` is the optimizer step the run resumes from (0 for a fresh
    run). ``directory`` None: no checkpoints (the divergence guard still runs).
    ``write``: whether this process keeps its checkpoints (the chief of a
    multi-worker run; the other workers save to a scratch folder and delete it).
    """

    def __init__(self, total_steps, directory=None, every=100, initial_step=0, write=True):
        super().__init__()
        self.total_steps = int(total_steps)
        self.directory = directory
        self.every = max(1, int(every))
        self.step = int(initial_step)
        self.write = write
        self.diverged = None
        self.last_saved = None

    def _net(self):
        # self._model, not self.model: on JAX reading self.model syncs the whole
        # training state back to the variables, which is needed only to save.
        return self._model

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        for name, value in (logs or {}).items():
            try:
                v = float(_scalar(value))
            except (TypeError, ValueError):
                continue
            if not np.isfinite(v):
                self.diverged = (name, v, self.step)
                self._net().stop_training = True
                return
        interrupted = interrupts.pending() is not None
        last = self.step >= self.total_steps
        if self.directory and (self.step % self.every == 0 or last or interrupted):
            self._save()  # the last step too: an interrupt while exporting keeps the trained weights
            if self.diverged is not None:
                return
        if interrupted:
            self.interrupt()
        if last:
            self._net().stop_training = True

    def interrupt(self):
        """Raise :class:`kzoo.interrupts.Interrupted` for the signal that arrived during this step (Ctrl-C,
        SIGTERM), saying what was kept: the checkpoint of this step (written by :meth:`on_train_batch_end`)."""
        if self.directory and self.write and self.last_saved == self.step:
            detail = (f" after optimizer step {self.step}; its checkpoint is kept in {self.directory}: rerun the "
                      "same command to resume")
        elif self.directory:
            kept = latest_checkpoint(self.directory)[0]
            detail = (f" at optimizer step {self.step}; the checkpoint of step {kept} is kept in {self.directory}"
                      if kept else f" at optimizer step {self.step}")
        else:
            detail = f" at optimizer step {self.step} (no --checkpoint-dir: nothing was kept)"
        interrupts.stop(detail)

    def _save(self):
        model = self.model  # synced state on JAX
        if not all(np.all(np.isfinite(_scalar(w))) for w in model.trainable_weights):
            self.diverged = ("weights", float("nan"), self.step)
            model.stop_training = True
            return
        if self.write:
            save_checkpoint(model, self.directory, self.step)
            self.last_saved = self.step
        else:  # multi-worker: every worker saves (reading distributed variables is collective), only the chief keeps
            scratch = tempfile.mkdtemp(prefix="kzoo-worker-ckpt-")
            try:
                save_checkpoint(model, scratch, self.step)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    def check(self):
        """Raise :class:`TrainingDiverged` if training stopped on a non-finite value."""
        if self.diverged is None:
            return
        name, value, step = self.diverged
        kept = latest_checkpoint(self.directory)[0] if self.directory else 0
        where = (f"the last good checkpoint (step {kept}) is kept in {self.directory}" if kept
                 else "no checkpoint was written" + ("" if self.directory else " (no --checkpoint-dir)"))
        raise TrainingDiverged(
            f"training diverged: {name} became {value} at optimizer step {step}; training stopped and "
            f"{where}. Lower the learning rate or the regularizer's weight/radius and start again.")


class NaNGuard(keras.callbacks.Callback):
    """Stop training with a clear error on the first non-finite logged loss.

    Every ``every`` steps (and at the start) it keeps a copy of the model's
    weights in memory and, with ``filepath`` (a ``.weights.h5`` file), on disk
    (written to a temporary file and moved into place, so the last good
    checkpoint is never overwritten by a half-written or non-finite one). On a
    NaN/inf it restores the last good weights into the model and raises
    :class:`NonFiniteLossError` naming the step, the losses and where the good
    weights are, then ``hint`` (what to change). Models with their own training
    loop use it (the GAN family, ALI); :class:`TrainingGuard` is the run's
    guard with on-disk checkpoints that resume.
    """

    def __init__(self, every=100, filepath=None,
                 hint="Lower the learning rate or the regularizer weights (γ, ε) and train again."):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise InvalidArgumentError(f"every must be an integer >= 1, got {every!r}")
        if filepath is not None and not str(filepath).endswith(".weights.h5"):
            raise InvalidArgumentError(f"the NaN guard's checkpoint must be a .weights.h5 file, got {filepath!r}")
        self.every = every
        self.hint = hint
        self.filepath = None if filepath is None else os.path.abspath(os.fspath(filepath))
        self.good_step = None
        self._good = None
        self.step = 0

    def _snapshot(self):
        kb.sync_model_state(self.model)
        self._good = [np.array(v) for v in self.model.get_weights()]
        self.good_step = self.step
        if self.filepath:
            with atomic_file(self.filepath, ".weights.h5") as tmp:
                self.model.save_weights(tmp, overwrite=True)

    def on_train_begin(self, logs=None):
        self._snapshot()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        bad = {}
        for name, value in (logs or {}).items():
            try:
                v = float(np.asarray(value))
            except (TypeError, ValueError):
                continue
            if not math.isfinite(v):
                bad[name] = v
        if bad:
            kb.sync_model_state(self.model)
            self.model.set_weights(self._good)
            self.model.stop_training = True
            where = f"; also saved in {self.filepath}" if self.filepath else ""
            raise NonFiniteLossError(
                f"non-finite loss at training step {self.step} ({', '.join(f'{k}={v}' for k, v in bad.items())}); "
                f"training stopped and the model's weights were restored to those of step {self.good_step}"
                f"{where}. {self.hint}")
        if self.step % self.every == 0:
            self._snapshot()


class StopOnNonFinite(keras.callbacks.Callback):
    """``fit``'s default guard on kzoo models: stop with :class:`TrainingDiverged` naming the batch whose loss
    (or a logged term) became NaN or infinite, e.g. a NaN in a user's stream, instead of training every weight
    to NaN silently.

    It only reads the step's logs and is ``async_safe``: Keras runs it beside the train loop, not in it, so it
    adds no synchronization per step; with ``verbose=0`` the loop may run on to the end of the epoch before
    the error comes (its message names the batch where the loss became NaN), with a per-step progress bar it
    comes at once. Added by :meth:`kzoo.RegularizerMixin.fit` unless a NaN guard of kzoo
    (:class:`NaNGuard`, :class:`TrainingGuard`) or ``keras.callbacks.TerminateOnNaN`` is passed.
    """

    async_safe = True
    GUARDS = ()  # (set below: the callbacks that make this one unneeded)

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            try:
                v = float(_scalar(value))
            except (TypeError, ValueError):
                continue
            if not math.isfinite(v):
                self._model.stop_training = True  # (self._model: reading self.model on JAX syncs the state)
                raise TrainingDiverged(
                    f"{name} became {v} at batch {batch} of epoch {self.epoch + 1} (counting from 0 and 1); "
                    "training stopped and the model's weights are no longer finite: check that batch's inputs "
                    "(labeled and unlabeled) for NaN/inf, or lower the learning rate or the regularizer's "
                    "weight/radius")

    @classmethod
    def added_to(cls, args, kwargs):
        """``fit``'s ``(args, kwargs)`` with this guard added to its callbacks (``callbacks`` is fit's 4th
        positional argument after ``x, y``) unless one of :attr:`GUARDS` is there."""
        args, kwargs = list(args), dict(kwargs)
        positional = len(args) > 3
        callbacks = list((args[3] if positional else kwargs.get("callbacks")) or [])
        if not any(isinstance(c, cls.GUARDS) for c in callbacks):
            callbacks.append(cls())
        if positional:
            args[3] = callbacks
        else:
            kwargs["callbacks"] = callbacks
        return tuple(args), kwargs


StopOnNonFinite.GUARDS = (StopOnNonFinite, NaNGuard, TrainingGuard, keras.callbacks.TerminateOnNaN)


class EpochMetrics(keras.callbacks.Callback):
    """Adds ``metrics(model)`` (e.g. the classifier's validation error and NLL) to each epoch's logs.

    Placed before ``keras.callbacks.TensorBoard`` in the callback list, whatever
    it adds is written with the epoch's loss terms (``val_*`` names under
    ``validation/``, as Keras writes fit's own validation).
    """

    def __init__(self, metrics):
        super().__init__()
        self._metrics = metrics

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self._metrics(self.model))


def tensorboard(log_dir, steps):
    """``keras.callbacks.TensorBoard``: every loss term and metric about 200 times per run (batch points)
    and at each epoch's end (with the validation metrics of :class:`EpochMetrics`, when given)."""
    return keras.callbacks.TensorBoard(log_dir=log_dir, update_freq=max(1, int(steps) // 200),
                                       write_graph=False, profile_batch=0)
