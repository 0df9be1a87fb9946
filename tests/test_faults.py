"""Fault injection (issue 14): kill -9 at random points, damaged checkpoints, a full disk, two runs at once,
interrupted exports, and every bad input the issue lists.

Each case asserts the exit code (2 bad input, 3 failed run), the one-line message and what is left on disk.
With $KZOO_FAULTS_RECORD set (``benchmarks/run.py --sections faults``), each case that passes appends its
row (kind, case, outcome, message, what survived) to that JSON-lines file, from which RESULTS.md's table is
rendered.
"""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import BACKEND, REPO

from kzoo import callbacks as kcb
from kzoo import checkpoints as kck
from kzoo import cli, experiment
from kzoo import export as kexport

RUN = ["vat", "--labels", "20", "--batch-labeled", "8", "--batch-unlabeled", "16", "--seed", "3", "--quiet"]
ENV = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture
def record(request):
    """``record(kind=, case=, outcome=, message=, survived=)``: the case's row for RESULTS.md (kept if it passes)."""
    rows = []
    yield lambda **row: rows.append(row)
    path = os.environ.get("KZOO_FAULTS_RECORD")
    if path and rows and getattr(request.node, "rep_call_passed", False):
        with open(path, "a") as f:
            for row in rows:
                f.write(json.dumps({"test": request.node.name, "backend": BACKEND, **row}) + "\n")


def _popen(args, command="train", env=None):
    return subprocess.Popen([sys.executable, "-m", "kzoo", command] + args, env=env or ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _error_lines(err):
    """stderr without TensorFlow/XLA start-up chatter and kzoo warnings: what a failed command said."""
    noise = ("WARNING: All log messages", "I0000", "W0000", "E0000", "To enable the following")
    return [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(noise)
            and not ln.startswith("kzoo: warning:")]


def _one_line_error(err, rc, code):
    lines = _error_lines(err)
    assert rc == code, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("kzoo: error: "), err[-3000:]
    assert "Traceback" not in err
    return lines[0]


def _cli(capsys, argv):
    rc = cli.main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# ---------------------------------------------------------------------------------------------------------
# kill -9 at random points of training and checkpointing; a concurrent second run
# ---------------------------------------------------------------------------------------------------------


def test_kill9_at_random_points_then_the_same_command_resumes_exactly(tmp_path, record):
    """Several kill -9 at seeded random points (many land inside a checkpoint save: one every 2 steps); every
    kill leaves only complete, checksummed checkpoints; the same command then ends with the uninterrupted
    run's steps and test NLL."""
    steps, ckpt, out = 60, tmp_path / "ckpt", tmp_path / "m.json"
    args = RUN + ["--steps", str(steps), "--checkpoint-dir", str(ckpt), "--checkpoint-every", "2",
                  "--metrics-json", str(out)]
    rng = random.Random(14)
    kills, in_save, reached = [], 0, 0
    for _ in range(3):
        proc = _popen(args)
        target = reached + rng.randint(4, 12)
        deadline = time.monotonic() + 300
        try:
            while kcb.latest_checkpoint(str(ckpt))[0] < target and proc.poll() is None:
                assert time.monotonic() < deadline, "no progress within 300 s"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != -signal.SIGKILL:
            break  # finished before the kill landed
        in_save += any(e.startswith(".tmp-ckpt-") for e in os.listdir(ckpt))
        found = kck.complete_checkpoints(str(ckpt))
        assert found and all(kck.verify_checkpoint(p) is None for _, p in found)  # never a damaged one
        assert len(found) <= kck.KEEP + 1  # the newest and the previous (+1 if killed while pruning)
        assert not out.exists()
        reached = found[0][0]
        kills.append(reached)
    assert len(kills) >= 2 and kills == sorted(kills)

    resumed = _popen(args)
    _, err = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, err[-3000:]
    result = json.loads(out.read_text())
    assert result["train_steps"] == steps and result["hyperparameters"]["resumed_from_step"] >= kills[-1]
    assert sorted(os.listdir(ckpt)) == ["run.json"]  # checkpoints, their temporary folders and the lock: gone

    plain = experiment.run(method="vat", labels=20, steps=steps, batch_labeled=8, batch_unlabeled=16, seed=3,
                           verbose=0)
    assert result["test_nll"] == pytest.approx(plain["test_nll"], rel=1e-3)
    record(kind="fault", case=f"kill -9 at {len(kills)} seeded random points (checkpoint every 2 steps; "
                              f"{in_save} inside a save)",
           outcome="resumed, exit 0", message="(resumes silently from the last complete checkpoint)",
           survived=f"checkpoints of steps {kills}; same steps and test NLL as the uninterrupted run")


def test_a_checkpoint_killed_while_being_deleted_never_looks_complete(tmp_path, monkeypatch):
    """Pruning an old checkpoint (or clearing them) leaves the checkpoint names first, then deletes: a kill
    inside the delete leaves a stale temporary folder, never a half-deleted checkpoint that looks complete."""
    ck = tmp_path / "ckpt-000000004"
    ck.mkdir()
    (ck / kck.MANIFEST).write_text("{}")
    (ck / "model.weights.h5").write_text("weights")

    def killed(path, *args, **kwargs):
        raise KeyboardInterrupt  # the process dies inside the delete

    monkeypatch.setattr(kck.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        kck.discard(str(ck))
    assert kck.complete_checkpoints(str(tmp_path)) == []
    monkeypatch.undo()
    kck.remove_stale(str(tmp_path))
    assert os.listdir(tmp_path) == []


@pytest.mark.one_backend
def test_a_concurrent_second_run_is_refused_naming_the_first(tmp_path, record):
    ckpt = tmp_path / "ckpt"
    args = RUN + ["--steps", "100000", "--checkpoint-dir", str(ckpt), "--checkpoint-every", "20"]
    first = _popen(args)
    try:
        deadline = time.monotonic() + 300
        while kcb.latest_checkpoint(str(ckpt))[0] < 20:  # the first run trains and checkpoints
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-2000:]
            time.sleep(0.05)
        second = _popen(args)
        _, err = second.communicate(timeout=300)
        line = _one_line_error(err, second.returncode, 2)
        assert f"checkpoint folder {ckpt} is in use by another kzoo run (pid {first.pid})" in line
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()
        first.wait()
    found = kck.complete_checkpoints(str(ckpt))
    assert found and all(kck.verify_checkpoint(p) is None for _, p in found)
    record(kind="fault", case="a second `kzoo train` on the same --checkpoint-dir while the first trains",
           outcome="refused, exit 2", message=line.replace(str(ckpt), "DIR"),
           survived="the first run and its checkpoints")


# ---------------------------------------------------------------------------------------------------------
# damaged checkpoints
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def net(small_mlp):
    from kzoo.core import Regularized

    net = Regularized(small_mlp, None, seed=1)
    net.compile(optimizer="adam")
    net.optimizer.build(net.trainable_variables)
    return net


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(max(0, os.path.getsize(path) // 2))


@pytest.mark.parametrize("name", ["model.weights.h5", "state.npz", "meta.json", "manifest.json"])
def test_a_truncated_file_of_the_latest_checkpoint_falls_back_to_the_previous(tmp_path, net, name, record):
    kcb.save_checkpoint(net, str(tmp_path), 5)
    first = [keras.ops.convert_to_numpy(w).copy() for w in net.weights]
    net.weights[0].assign(net.weights[0] + 1.0)
    kcb.save_checkpoint(net, str(tmp_path), 10)
    _truncate(tmp_path / "ckpt-000000010" / name)
    said = []
    step, path = kcb._restore_or_fall_back(net, str(tmp_path), say=said.append)
    assert (step, os.path.basename(path)) == (5, "ckpt-000000005")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(net.weights[0]), first[0])
    assert len(said) == 1 and "step 10 is damaged" in said[0] and name in said[0]
    assert "previous complete checkpoint (step 5)" in said[0]
    # the damaged one is moved aside (kept for inspection), the previous one is untouched
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000005", "ckpt-000000010.corrupt"]
    assert kck.verify_checkpoint(path) is None
    record(kind="fault", case=f"truncated {name} in the latest checkpoint", outcome="falls back, warning",
           message=f"kzoo: warning: {said[0]}".replace(str(tmp_path), "DIR"),
           survived="the previous complete checkpoint (resumed from)")


def _dying_timer(at):
    timer = experiment._step_timer

    def make():
        class Dying(type(timer())):
            def on_train_batch_end(self, batch, logs=None):
                super().on_train_batch_end(batch, logs)
                if self.steps == at:
                    raise KeyboardInterrupt("killed")
        return Dying()
    return make


def test_damaged_checkpoints_through_the_command_line(tmp_path, monkeypatch, capsys, record):
    """The latest damaged: a warning and the run resumes from the previous one. All damaged: exit 3 naming the
    file and the command that starts over."""
    ckpt, out = tmp_path / "ckpt", tmp_path / "m.json"
    argv = ["train"] + RUN + ["--steps", "12", "--checkpoint-dir", str(ckpt), "--checkpoint-every", "3",
                              "--metrics-json", str(out)]
    monkeypatch.setattr(experiment, "_step_timer", _dying_timer(8))
    assert cli.main(argv) == 130  # interrupted after step 8 (as by Ctrl-C): checkpoints of steps 3 and 6
    capsys.readouterr()
    monkeypatch.undo()
    assert [s for s, _ in kck.complete_checkpoints(str(ckpt))] == [6, 3]
    _truncate(ckpt / "ckpt-000000006" / "model.weights.h5")
    rc, _, err = _cli(capsys, argv)
    assert rc == 0 and "Traceback" not in err
    warning = [ln for ln in err.splitlines() if ln.startswith("kzoo: warning:")]
    assert len(warning) == 1 and "step 6 is damaged" in warning[0] and "(step 3)" in warning[0]
    result = json.loads(out.read_text())
    assert result["hyperparameters"]["resumed_from_step"] == 3 and result["train_steps"] == 12
    assert sorted(os.listdir(ckpt)) == ["run.json"]

    out.unlink()
    monkeypatch.setattr(experiment, "_step_timer", _dying_timer(8))
    assert cli.main(argv) == 130  # interrupted after step 8 (as by Ctrl-C): checkpoints of steps 3 and 6
    capsys.readouterr()
    monkeypatch.undo()
    for step in (3, 6):
        _truncate(ckpt / f"ckpt-{step:09d}" / "state.npz")
    rc, _, err = _cli(capsys, argv)
    line = _one_line_error(err, rc, 3)
    assert "no complete checkpoint is left" in line and "ckpt-000000006/state.npz" in line
    assert f"rm -r {ckpt}" in line and "rerun the same command" in line
    assert sorted(os.listdir(ckpt)) == ["ckpt-000000003.corrupt", "ckpt-000000006.corrupt", "run.json"]
    assert not out.exists()
    record(kind="fault", case="every checkpoint damaged", outcome="exit 3",
           message=line.replace(str(ckpt), "DIR"), survived="the damaged checkpoints, moved aside")

    shutil.rmtree(ckpt)  # what the message says: the same command then starts over from step 0
    rc, _, err = _cli(capsys, argv)
    assert rc == 0 and json.loads(out.read_text())["train_steps"] == 12


# ---------------------------------------------------------------------------------------------------------
# a full disk while checkpointing
# ---------------------------------------------------------------------------------------------------------


def test_a_full_disk_while_checkpointing_stops_with_the_last_checkpoint_kept(tmp_path, monkeypatch, capsys,
                                                                              record):
    ckpt, out = tmp_path / "ckpt", tmp_path / "m.json"
    argv = ["train"] + RUN + ["--steps", "12", "--checkpoint-dir", str(ckpt), "--checkpoint-every", "3",
                              "--metrics-json", str(out)]
    real_savez, calls = np.savez, []

    def savez(file, *a, **k):  # the second checkpoint's writer finds the disk full midway
        calls.append(file)
        if len(calls) == 2:
            with open(file, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(file, *a, **k)

    monkeypatch.setattr(np, "savez", savez)
    rc, _, err = _cli(capsys, argv)
    line = _one_line_error(err, rc, 3)
    assert "could not write the checkpoint of step 6" in line and "no space left on device" in line
    assert "last complete checkpoint (step 3) is kept" in line
    assert sorted(os.listdir(ckpt)) == ["ckpt-000000003", "run.json"]  # no partial checkpoint, no lock
    assert kck.verify_checkpoint(str(ckpt / "ckpt-000000003")) is None and not out.exists()
    record(kind="fault", case="ENOSPC while writing a checkpoint (writer monkeypatched)", outcome="exit 3",
           message=line.replace(str(ckpt), "DIR"), survived="the last complete checkpoint (step 3)")

    # too little room for a whole checkpoint: refused before writing anything
    monkeypatch.setattr(np, "savez", real_savez)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1 << 30, (1 << 30) - 4096, 4096))
    rc, _, err = _cli(capsys, argv)
    line = _one_line_error(err, rc, 3)
    assert "MB free, a checkpoint needs about" in line and "(step 3) is kept" in line
    assert sorted(os.listdir(ckpt)) == ["ckpt-000000003", "run.json"]
    monkeypatch.undo()
    rc, _, err = _cli(capsys, argv)  # space again: the same command resumes and ends
    assert rc == 0 and json.loads(out.read_text())["hyperparameters"]["resumed_from_step"] == 3


@pytest.mark.one_backend
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_a_real_full_tmpfs_while_checkpointing(tmp_path, record):
    """The issue's case: a 20 MB tmpfs, a checkpoint every 20 steps: exit 3 (was a segfault, rc 139)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = _popen(["vat", "--steps", "100", "--checkpoint-dir", str(mnt / "ck"), "--checkpoint-every", "20",
                       "--quiet"])
        _, err = proc.communicate(timeout=400)
        line = _one_line_error(err, proc.returncode, 3)
        assert "no space left on device" in line
        found = kck.complete_checkpoints(str(mnt / "ck"))
        assert found and kck.verify_checkpoint(found[0][1]) is None
        assert not [e for e in os.listdir(mnt / "ck") if e.startswith(".tmp")]
        record(kind="fault", case="a real 20 MB tmpfs fills while checkpointing", outcome="exit 3",
               message=line.replace(str(mnt), "MNT"), survived=f"the checkpoint of step {found[0][0]}")
    finally:
        subprocess.run(["umount", str(mnt)])


# ---------------------------------------------------------------------------------------------------------
# locks
# ---------------------------------------------------------------------------------------------------------


def _holder(lockfile):
    """A process holding ``lockfile`` through kzoo.locks (no Keras: starts in a fraction of a second)."""
    code = ("import sys; from kzoo import locks; locks.acquire(sys.argv[1], 'x', 'y'); print('held', flush=True); "
            "sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, lockfile], env=ENV, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_a_locked_checkpoint_dir_or_export_target_is_refused(tmp_path, monkeypatch, capsys,
                                                                            record):
    import kzoo.core

    monkeypatch.setattr(kzoo.core.Regularized, "fit", lambda *a, **k: pytest.fail("fit was called"))
    ckpt, export = tmp_path / "ckpt", tmp_path / "model"
    ckpt.mkdir()
    holder = _holder(str(ckpt / ".lock"))
    try:
        rc, _, err = _cli(capsys, ["train"] + RUN + ["--steps", "5", "--checkpoint-dir", str(ckpt)])
        line = _one_line_error(err, rc, 2)
        assert f"checkpoint folder {ckpt} is in use by another kzoo run (pid {holder.pid})" in line
    finally:
        holder.communicate("")
    assert sorted(os.listdir(ckpt)) == [".lock"]  # the holder's lock file (a killed holder leaves it too)

    holder = _holder(str(tmp_path / ".model.lock"))
    try:
        # a SavedModel is refused on torch before any work (torch_xla): the ONNX export there
        fmt = "onnx" if BACKEND == "torch" else "saved_model"
        rc, _, err = _cli(capsys, ["train"] + RUN + ["--steps", "5", "--export", str(export), "--export-format", fmt])
        line2 = _one_line_error(err, rc, 2)
        assert f"export target {export} is in use by another kzoo run (pid {holder.pid})" in line2
        with pytest.raises(kexport.ExportError, match=f"pid {holder.pid}"):
            kexport.export_classifier(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), str(export),
                                      format=fmt)
    finally:
        holder.communicate("")
    assert not export.exists()
    record(kind="fault", case="a second run on a locked --checkpoint-dir", outcome="refused, exit 2",
           message=line.replace(str(ckpt), "DIR"), survived="the first run's folder, untouched")
    record(kind="fault", case="a second export to a locked --export target", outcome="refused, exit 2",
           message=line2.replace(str(export), "PATH"), survived="the first run's export")


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    from kzoo import locks

    holder = _holder(str(tmp_path / ".lock"))
    holder.kill()
    holder.wait()
    assert (tmp_path / ".lock").exists()
    locks.acquire(str(tmp_path / ".lock"), "x", "y")
    assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
    locks.release(str(tmp_path / ".lock"))
    assert not (tmp_path / ".lock").exists()


# ---------------------------------------------------------------------------------------------------------
# exports: an atomic replacement, what killed exports left behind, kill -9 during export
# ---------------------------------------------------------------------------------------------------------


def _stub_writer(content):
    def export(model, filepath, **kwargs):
        os.makedirs(os.path.join(filepath, "variables"))
        with open(os.path.join(filepath, "saved_model.pb"), "wb") as f:
            f.write(content)
    return export


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_an_export_killed_between_its_two_renames_is_recovered_by_the_next(tmp_path, monkeypatch, capsys,
                                                                           exchange, record):
    """What a kill left (the previous export in .tmp-export-NAME-*/previous, the path empty; empty temporary
    folders of killed exports) is put back and cleaned by the next export to that path."""
    dest = tmp_path / "model"
    (tmp_path / ".tmp-export-model-abcd1234" / "previous" / "variables").mkdir(parents=True)
    (tmp_path / ".tmp-export-model-abcd1234" / "previous" / "saved_model.pb").write_bytes(b"previous")
    (tmp_path / ".tmp-export-model-efgh5678" / "model").mkdir(parents=True)  # killed while writing
    (tmp_path / ".tmp-export-k2j4_9zq").mkdir()  # an older kzoo's empty leftover
    (tmp_path / ".tmp-export-other-abcd1234" / "model").mkdir(parents=True)  # another target's: not ours
    if not exchange:
        monkeypatch.setattr(kexport, "_exchange", lambda a, b: False)

    def failing(model, filepath, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    clf = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    monkeypatch.setattr(keras.Model, "export", failing)
    with pytest.raises(kexport.ExportError, match="previous export there is unchanged"):
        kexport.export_classifier(clf, str(dest))
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("kzoo: warning: an earlier export") and "was put back" in warning
    assert (dest / "saved_model.pb").read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == [".tmp-export-other-abcd1234", "model"]

    monkeypatch.setattr(keras.Model, "export", _stub_writer(b"new"))
    kexport.export_classifier(clf, str(dest))
    assert (dest / "saved_model.pb").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == [".tmp-export-other-abcd1234", "model"]
    if exchange:
        record(kind="fault", case="export killed between its two renames (the path left empty); "
                                  "stale .tmp-export-* folders",
               outcome="recovered by the next export, warning", message=warning.replace(str(tmp_path), "DIR"),
               survived="the previous export (put back), then the new one; stale folders removed")


@pytest.mark.one_backend
@pytest.mark.tensorflow_only
def test_kill9_during_exports_never_leaves_the_path_without_a_complete_model(tmp_path, record):
    dest = tmp_path / "model"
    code = ("import sys, keras; from kzoo.export import export_classifier\n"
            "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])\n"
            "for i in range(int(sys.argv[2])):\n"
            "    export_classifier(m, sys.argv[1]); print('exported', i, flush=True)\n")

    def complete():
        return (dest / "saved_model.pb").is_file() and (dest / "variables" / "variables.index").is_file()

    rng = random.Random(14)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code, str(dest), "50"], env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout.readline().startswith("exported"), "the first export did not complete"
            time.sleep(rng.uniform(0.0, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += proc.returncode == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert complete()  # the previous complete export is always at the path
    done = subprocess.run([sys.executable, "-c", code, str(dest), "1"], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["model"] and complete()  # leftovers cleaned, lock gone
    record(kind="fault", case=f"kill -9 at {kills} seeded random points of repeated exports to one path",
           outcome="path always holds a complete SavedModel",
           message="(the next export removes the killed ones' temporary folders)",
           survived="the previous export at every kill")


# ---------------------------------------------------------------------------------------------------------
# bad input: one line, exit code 2, before any work; or a warning where the input is legal but suspicious
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def no_training(monkeypatch):
    import kzoo.core

    monkeypatch.setattr(kzoo.core.Regularized, "fit", lambda *a, **k: pytest.fail("fit was called"))


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_bad_learning_rates_are_refused_before_training(value, capsys, no_training, record):
    rc, _, err = _cli(capsys, ["train"] + RUN + ["--steps", "5", "--learning-rate", value])
    line = _one_line_error(err, rc, 2)
    assert "learning_rate must be a finite number > 0" in line
    record(kind="bad input", case=f"--learning-rate {value}", outcome="exit 2", message=line,
           survived="nothing started")


def test_a_learning_rate_above_one_warns(tmp_path, capsys, no_training, record):
    (tmp_path / "d").mkdir()
    rc, _, err = _cli(capsys, ["train"] + RUN + ["--steps", "5", "--learning-rate", "10",
                                                 "--metrics-json", str(tmp_path / "d")])
    warning = [ln for ln in err.splitlines() if ln.startswith("kzoo: warning:")]
    assert len(warning) == 1 and "learning_rate=10 is above 1" in warning[0]
    record(kind="bad input", case="--learning-rate 10", outcome="warning", message=warning[0],
           survived="(legal: the run goes on)")


def test_metrics_json_pointing_at_a_folder_is_refused_before_training(tmp_path, capsys, no_training, record):
    folder = tmp_path / "out"
    folder.mkdir()
    rc, _, err = _cli(capsys, ["train"] + RUN + ["--steps", "5", "--metrics-json", str(folder)])
    line = _one_line_error(err, rc, 2)
    assert f"metrics file {folder} is an existing folder" in line and "metrics.json" in line
    assert os.listdir(folder) == []
    record(kind="bad input", case="--metrics-json pointing at a folder", outcome="exit 2 (before training)",
           message=line.replace(str(tmp_path), "DIR"), survived="the folder, untouched")


def test_too_few_labels_through_the_cli_do_not_suggest_an_api_only_option(capsys, no_training, record):
    rc, _, err = _cli(capsys, ["train"] + RUN[:1] + ["--labels", "5", "--steps", "5", "--quiet"])
    line = _one_line_error(err, rc, 2)
    assert "labels=5 < num_classes=10" in line and "balanced=False" not in line
    record(kind="bad input", case="--labels 5 on 10 classes", outcome="exit 2", message=line,
           survived="nothing started")


def test_an_unknown_keras_backend_is_one_line(tmp_path, record):
    out = subprocess.run([sys.executable, "-c", "import sys; from kzoo.cli import main; rc = main(sys.argv[1:]); "
                          "print('keras' in sys.modules); sys.exit(rc)", "train", "vat", "--steps", "5"],
                         env=dict(ENV, KERAS_BACKEND="foo"), capture_output=True, text=True, timeout=120)
    line = _one_line_error(out.stderr, out.returncode, 2)
    assert "KERAS_BACKEND=foo is not a backend kzoo runs on" in line and out.stdout.strip() == "False"
    record(kind="bad input", case="KERAS_BACKEND=foo", outcome="exit 2", message=line, survived="nothing started")


def _regularized(num_classes=10, activation=None):
    from kzoo.core import Regularized
    from kzoo.regularizers import VAT

    inp = keras.Input((64,))
    clf = keras.Model(inp, keras.layers.Dense(num_classes, activation=activation)(inp))
    net = Regularized(clf, VAT(), seed=0)
    net.compile(optimizer="adam")
    return net


def test_out_of_range_labels_through_a_stream_without_num_classes_are_refused(record):
    from kzoo import data as kdata

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 64), dtype=np.float32), np.arange(40) % 11  # a label 10 for 10 classes
    stream = kdata.semi_supervised(x, y, x, batch_labeled=8, batch_unlabeled=8, as_tf=False)
    with pytest.raises(ValueError) as e:
        _regularized().fit(stream, steps_per_epoch=1, epochs=1, verbose=0)
    msg = str(e.value)
    assert "\n" not in msg and "up to class index 10" in msg and "outputs 10 logits" in msg
    assert "num_classes=10" in msg
    record(kind="bad input", case="label 10 with 10 classes, kzoo.data.semi_supervised without num_classes",
           outcome="ValueError before the first step (both backends)", message=msg, survived="-")


def test_nan_inf_and_one_hot_in_plain_arrays_to_fit_are_refused(record):
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 64), dtype=np.float32), np.arange(16) % 10
    net = _regularized()
    cases = []
    for what, xx, yy, expect in [
        ("NaN in x", np.where(np.arange(64) == 3, np.nan, x).astype(np.float32), y, "NaN/inf"),
        ("inf in x", np.where(np.arange(64) == 3, np.inf, x).astype(np.float32), y, "NaN/inf"),
        ("one-hot y", x, np.eye(10, dtype=np.float32)[y], "argmax"),
        ("label 10 of 10 classes in y", x, np.where(np.arange(16) == 0, 10, y), "class index 10"),
    ]:
        with pytest.raises(ValueError, match=expect) as e:
            net.fit(xx, yy, epochs=1, verbose=0)
        assert "\n" not in str(e.value)
        cases.append((what, str(e.value)))
    assert not net.optimizer.built or int(net.optimizer.iterations) == 0  # nothing trained
    for what, msg in cases:
        record(kind="bad input", case=f"{what}, arrays to fit", outcome="ValueError before the first step",
               message=msg, survived="-")


def test_uint8_images_and_a_softmax_classifier_warn(record):
    from kzoo import data as kdata

    x = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1)).astype(np.uint8)
    y = np.arange(16) % 10
    with pytest.warns(UserWarning, match=r"values up to 2\d\d .*0\.\.255 pixels.*/ 255") as w:
        kdata.semi_supervised(x, y, x, batch_labeled=8, batch_unlabeled=8, as_tf=False)
    record(kind="bad input", case="uint8 0..255 images", outcome="warning", message=str(w[0].message),
           survived="(legal: the run goes on)")
    net = _regularized(activation="softmax")
    xf = np.random.default_rng(0).random((16, 64), dtype=np.float32)
    with pytest.warns(UserWarning, match="is a softmax: kzoo expects logits") as w:
        net.fit(xf, y, epochs=1, verbose=0)
    record(kind="bad input", case="a classifier ending in a softmax", outcome="warning",
           message=str(next(m.message for m in w if "softmax" in str(m.message))), survived="(legal)")


@pytest.mark.one_backend
@pytest.mark.parametrize("argv", [["nope"], ["vat", "--model", "nope"], ["vat", "--dataset", "nope"],
                                  ["vat", "--epsilon", "-1"], ["vat", "--learning-rate", "-1"],
                                  ["vat", "--nope-flag", "1"]],
                         ids=["method", "model", "dataset", "hyperparameter", "learning-rate", "flag"])
def test_argument_errors_come_before_keras_is_imported(argv, record):
    """Names (method, dataset, model, hyperparameters) and values are checked before Keras/TensorFlow is
    imported: the error comes within the interpreter's start-up, not 5-19 s later."""
    code = ("import sys\nfrom kzoo.cli import main\ntry:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    rc = e.code\nprint('keras' in sys.modules, 'tensorflow' in sys.modules)\nsys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, "train"] + argv, env=ENV, capture_output=True, text=True,
                         timeout=120)
    lines = [ln for ln in _error_lines(out.stderr) if "error: " in ln]  # (argparse prints its usage above)
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"], out.stdout
    record(kind="bad input", case=f"kzoo train {' '.join(argv)}", outcome="exit 2 before Keras is imported",
           message=lines[0], survived="nothing started")


# ---------------------------------------------------------------------------------------------------------
# issue 22: library errors are KzooErrors; integer inputs; NaN in a user's stream; NaN outputs; a failed write
# ---------------------------------------------------------------------------------------------------------


def test_library_calls_with_bad_values_raise_kzoo_errors(record):
    from kzoo import data as kdata
    from kzoo.errors import KzooError
    from kzoo.regularizers import RPT, VAT, EntropyMinimization

    x = np.zeros((20, 4), np.float32)
    y = np.arange(20) % 2
    for what, call, expect in [
        ("VAT(epsilon=0)", lambda: VAT(epsilon=0), "epsilon must be a finite number > 0"),
        ("RPT(epsilon=-1)", lambda: RPT(epsilon=-1), "epsilon must be a finite number > 0"),
        ("EntropyMinimization(weight=-1)", lambda: EntropyMinimization(weight=-1), "weight"),
        ("semi_supervised(batch_labeled=0)",
         lambda: kdata.semi_supervised(x, y, x, batch_labeled=0, batch_unlabeled=4, as_tf=False), "batch_labeled"),
    ]:
        with pytest.raises(KzooError, match=expect) as e:
            call()
        assert isinstance(e.value, ValueError) and "\n" not in str(e.value)  # still a ValueError, as before
        record(kind="bad input", case=what, outcome=f"{type(e.value).__name__} (a KzooError)",
               message=str(e.value), survived="-")


def _int_batches(dtype, semi):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (48, 64)).astype(dtype)
    y = np.arange(48) % 10
    if semi:
        return [({"labeled": x[i:i + 8], "unlabeled": x[i + 8:i + 24]}, y[i:i + 8]) for i in (0, 24)]
    return [(x[i:i + 16], y[i:i + 16]) for i in (0, 16, 32)]


def _fit_losses(batches):
    keras.utils.set_random_seed(0)
    net = _regularized()
    hist = net.fit((b for b in batches), steps_per_epoch=len(batches), epochs=1, verbose=0)
    return hist.history["loss"][-1], net


@pytest.mark.parametrize("semi", [False, True], ids=["supervised", "semi-supervised"])
@pytest.mark.parametrize("dtype", ["uint8", "int64"])
def test_integer_inputs_to_fit_are_cast_to_float(dtype, semi, record):
    """uint8/int64 inputs train exactly as the same values in float32 (both backends; the cast is decided
    when the step is traced)."""
    batches = _int_batches(dtype, semi)
    as_float = [(({k: v.astype(np.float32) for k, v in x.items()} if semi else x.astype(np.float32)), y)
                for x, y in batches]
    loss_int, net_int = _fit_losses(batches)
    loss_float, net_float = _fit_losses(as_float)
    assert np.isfinite(loss_int)
    np.testing.assert_allclose(loss_int, loss_float, rtol=1e-5)
    for a, b in zip(net_int.get_weights(), net_float.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    record(kind="bad input", case=f"{dtype} inputs to fit ({'semi-supervised' if semi else 'supervised'} batches)",
           outcome="cast to float32; trains as float inputs", message="-", survived="(legal)")


@pytest.mark.parametrize("where", ["unlabeled", "labeled"])
@pytest.mark.parametrize("verbose", [0, 2])
def test_a_nan_in_a_users_stream_stops_fit_naming_the_batch(where, verbose, record):
    from kzoo.errors import TrainingDiverged

    rng = np.random.default_rng(0)
    x = rng.random((48, 64), dtype=np.float32)
    y = np.arange(48) % 10

    def stream():
        for i in range(100):
            batch = {"labeled": x[:8].copy(), "unlabeled": x[8:40].copy()}
            if i == 3:
                batch[where][2, 5] = np.nan
            yield batch, y[:8]

    net = _regularized()
    with pytest.raises(TrainingDiverged) as e:
        net.fit(stream(), steps_per_epoch=20, epochs=2, verbose=verbose)
    msg = str(e.value)
    assert "\n" not in msg and "at batch 3 of epoch 1" in msg and "nan" in msg, msg
    # stopped within the epoch: Keras runs the check beside the loop (async), so a few steps may pass first, up
    # to the epoch's end with verbose=0 (on a loaded machine verbose=2 ran 2 steps on too)
    assert int(keras.ops.convert_to_numpy(net.optimizer.iterations)) <= 20
    record(kind="fault", case=f"a NaN in the {where} batch of a user's stream to Regularized.fit",
           outcome="TrainingDiverged (a KzooError) naming the batch", message=msg, survived="-")


def test_the_nan_stop_leaves_a_users_own_guard_alone():
    from kzoo.callbacks import NaNGuard, StopOnNonFinite

    guard = NaNGuard()
    args, kwargs = StopOnNonFinite.added_to((), {"callbacks": [guard]})
    assert kwargs["callbacks"] == [guard]
    args, kwargs = StopOnNonFinite.added_to((16, 1, 0, [keras.callbacks.TerminateOnNaN()]), {})
    assert len(args[3]) == 1 and "callbacks" not in kwargs
    args, kwargs = StopOnNonFinite.added_to((), {})
    assert [type(c) for c in kwargs["callbacks"]] == [StopOnNonFinite]
    assert StopOnNonFinite.async_safe  # Keras runs it beside the train loop: no sync per step


def _digits_keras(tmp_path, nan):
    import kzoo

    digits = kzoo.data.load("digits")
    inp = keras.Input(digits.x_train.shape[1:])
    clf = keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(inp)))
    if nan:
        kernel, bias = clf.layers[-1].get_weights()
        kernel[3, :] = np.nan
        clf.layers[-1].set_weights([kernel, bias])
    path = str(tmp_path / ("nan.keras" if nan else "ok.keras"))
    clf.save(path)
    return path


def test_evaluate_refuses_a_model_with_nan_outputs(tmp_path, capsys, record):
    path = _digits_keras(tmp_path, nan=True)
    metrics = tmp_path / "m.json"
    rc, out, err = _cli(capsys, ["evaluate", path, "--limit", "50", "--metrics-json", str(metrics)])
    line = _one_line_error(err, rc, 3)
    assert "outputs are NaN or infinite on" in line and "of 50 test inputs" in line
    assert "error" not in out and not metrics.exists()
    record(kind="fault", case="kzoo evaluate on a model whose outputs are NaN", outcome="refused, exit 3",
           message=line, survived="no metrics written")


def test_the_metrics_json_is_strict_json(tmp_path):
    from kzoo.errors import KzooError
    from kzoo.io import write_json_atomic

    target = tmp_path / "m.json"
    target.write_text('{"old": 1}\n')
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(KzooError, match=r"b\[1\] is NaN or infinite") as e:
            write_json_atomic(str(target), {"a": 1.0, "b": [0.5, bad]})
        assert "\n" not in str(e.value)
    assert target.read_text() == '{"old": 1}\n'
    write_json_atomic(str(target), {"a": 1.0})
    assert json.loads(target.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}")) == {"a": 1.0}


def test_a_full_disk_writing_the_metrics_json_exits_3_and_keeps_the_export(tmp_path, monkeypatch, capsys, record):
    """Training, then the export, then the metrics JSON fails (ENOSPC at its rename): one line, exit 3, and the
    export written before is complete."""
    export, metrics = tmp_path / "model", tmp_path / "m.json"
    real_replace = os.replace

    def full(src, dst, *args, **kwargs):
        if os.fspath(dst).endswith("m.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    rc, _, err = _cli(capsys, ["train"] + RUN + ["--steps", "2", "--export", str(export), "--metrics-json",
                                                 str(metrics)])
    monkeypatch.undo()
    line = _one_line_error(err, rc, 3)
    assert f"could not write {metrics}: no space left on device" in line
    assert not metrics.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
    assert (export / "saved_model.pb").is_file() and (export / "variables").is_dir()  # the export, complete
    record(kind="fault", case="a full disk while writing --metrics-json", outcome="exit 3",
           message=line.replace(str(tmp_path), "DIR"), survived="the export, complete")


# Ctrl-C and SIGTERM (issue 22): a final checkpoint, the lock given back, one line, exit 130 / 143
# ---------------------------------------------------------------------------------------------------------


def test_sigterm_during_training_checkpoints_that_step_and_exits_143(tmp_path, monkeypatch, capsys, record):
    """SIGTERM arriving mid-training (here: while the checkpoint of step 2 is written) is held until the step
    in progress ends: that step is checkpointed, the lock given back, one line, exit 143; the same command
    then resumes from it."""
    ckpt, out = tmp_path / "ckpt", tmp_path / "m.json"
    args = ["train"] + RUN + ["--steps", "8", "--checkpoint-dir", str(ckpt), "--checkpoint-every", "2",
                              "--metrics-json", str(out)]
    real, sent = kcb.save_checkpoint, []

    def save_then_signal(model, directory, step, *a, **k):
        path = real(model, directory, step, *a, **k)
        if not sent:
            sent.append(step)
            os.kill(os.getpid(), signal.SIGTERM)
        return path

    monkeypatch.setattr(kcb, "save_checkpoint", save_then_signal)
    before = signal.getsignal(signal.SIGTERM)
    rc, _, err = _cli(capsys, args)
    assert signal.getsignal(signal.SIGTERM) == before  # the command's handlers are given back
    line = _one_line_error(err.replace("kzoo: interrupted", "kzoo: error: interrupted"), rc, 143)
    assert sent == [2] and "interrupted (SIGTERM) after optimizer step 3; its checkpoint is kept in" in line
    assert kck.latest_checkpoint(str(ckpt))[0] == 3 and ".lock" not in os.listdir(ckpt) and not out.exists()
    monkeypatch.setattr(kcb, "save_checkpoint", real)
    rc, _, err = _cli(capsys, args)
    assert rc == 0, err
    result = json.loads(out.read_text())
    assert result["train_steps"] == 8 and result["hyperparameters"]["resumed_from_step"] == 3
    record(kind="fault", case="SIGTERM during training (a scheduler or container stopping the run)",
           outcome="exit 143 after the step in progress", message=line.split("error: ", 1)[1].replace(
               str(ckpt), "DIR"), survived="a checkpoint of that step; the same command resumes from it")


def test_ctrl_c_during_the_export_keeps_the_trained_weights(tmp_path, monkeypatch, capsys, record):
    """The last step is checkpointed too: Ctrl-C while exporting (exit 130) loses no training; the same
    command resumes at the last step, trains nothing more and exports."""
    ckpt, export, out = tmp_path / "ckpt", tmp_path / "model", tmp_path / "m.json"
    args = ["train"] + RUN + ["--steps", "6", "--checkpoint-dir", str(ckpt), "--checkpoint-every", "100",
                              "--export", str(export), "--export-format", "onnx", "--metrics-json", str(out)]
    real = kexport.export_classifier

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(kexport, "export_classifier", interrupted)
    rc, _, err = _cli(capsys, args)
    assert rc == 130 and "kzoo: interrupted" in err, err
    assert kck.latest_checkpoint(str(ckpt))[0] == 6 and ".lock" not in os.listdir(ckpt)
    assert not export.exists() and not any(p.name.startswith(".model") for p in tmp_path.iterdir())
    monkeypatch.setattr(kexport, "export_classifier", real)
    rc, _, err = _cli(capsys, args)
    assert rc == 0, err
    result = json.loads(out.read_text())
    assert result["train_steps"] == 6 and result["hyperparameters"]["resumed_from_step"] == 6
    assert export.exists() and sorted(os.listdir(ckpt)) == ["run.json"]
    record(kind="fault", case="Ctrl-C while exporting", outcome="exit 130", message="kzoo: interrupted",
           survived="the checkpoint of the last step; the same command exports without training again")


def test_the_command_handles_sigint_sigterm_sighup_and_keeps_ignored_ones_ignored():
    from kzoo import interrupts

    previous = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with interrupts.handling():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is interrupts._handler
            with pytest.raises(interrupts.Interrupted) as e:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
            assert e.value.exit_code == 143 and "interrupted (SIGTERM)" in str(e.value)
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)
                assert interrupts.pending() == signal.SIGINT  # held for the step's end
                with pytest.raises(interrupts.Interrupted) as e:
                    interrupts.stop(" after optimizer step 7")
            assert e.value.exit_code == 130 and interrupts.pending() is None
        assert signal.getsignal(signal.SIGTERM) == previous[signal.SIGTERM]
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@pytest.mark.one_backend  # process orchestration
def test_sigterm_to_a_training_process(tmp_path, record):
    """A real SIGTERM from outside: exit 143, one line naming the step, its checkpoint kept, the lock file
    gone; the same command resumes from that step and finishes."""
    ckpt, out = tmp_path / "ckpt", tmp_path / "m.json"
    args = RUN + ["--steps", "40", "--checkpoint-dir", str(ckpt), "--checkpoint-every", "1",
                  "--metrics-json", str(out)]
    proc = _popen(args)
    deadline = time.monotonic() + 300
    try:
        while kcb.latest_checkpoint(str(ckpt))[0] < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "no progress within 300 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = _error_lines(err)
    assert proc.returncode == 143 and len(lines) == 1 and "Traceback" not in err, err[-3000:]
    step = kcb.latest_checkpoint(str(ckpt))[0]
    assert lines[0].startswith(f"kzoo: interrupted (SIGTERM) after optimizer step {step}; its checkpoint is kept")
    assert not (ckpt / ".lock").exists() and not out.exists()
    resumed = _popen(args)
    _, err = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, err[-3000:]
    result = json.loads(out.read_text())
    assert result["train_steps"] == 40 and result["hyperparameters"]["resumed_from_step"] == step
    record(kind="fault", case="SIGTERM to a `kzoo train` process", outcome="exit 143",
           message=lines[0].replace(str(ckpt), "DIR"), survived=f"the checkpoint of step {step}; resumed from it")


# ---------------------------------------------------------------------------------------------------------
# A resume must match what it resumes (issue 22): backend, data, splits, a checkpoint's run.json; search and
# comparison folders: their settings and one run at a time
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.one_backend  # two backends in two processes
def test_a_resume_with_another_backend_data_or_method_is_refused(tmp_path, capsys, record):
    """A TensorFlow run stopped with checkpoints; resuming it with --backend jax, another --data-dir or
    --split, or from checkpoints whose run.json is gone (an RPT run on a VAT checkpoint) is refused in one
    line before anything is loaded; the same command still resumes."""
    ckpt = tmp_path / "ckpt"
    args = RUN + ["--steps", "400", "--checkpoint-dir", str(ckpt), "--checkpoint-every", "2"]
    proc = _popen(args + ["--backend", "tensorflow"])
    deadline = time.monotonic() + 300
    try:
        while kcb.latest_checkpoint(str(ckpt))[0] < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143 and kcb.latest_checkpoint(str(ckpt))[0] >= 2
    jax = subprocess.run([sys.executable, "-m", "kzoo", "train"] + args + ["--backend", "jax"], env=ENV,
                         capture_output=True, text=True, timeout=120)
    line = _one_line_error(jax.stderr, jax.returncode, 2)
    assert f"checkpoint folder {ckpt} holds a run with other settings (backend differ; backend: 'tensorflow' " \
        "there, 'jax' now)" in line
    lines = [line]
    for extra, want in ((["--data-dir", str(tmp_path)], "data_dir: None there"),
                        (["--split", "train=train[:90%]"], "splits differ")):
        rc, _, err = _cli(capsys, ["train"] + args + ["--backend", "tensorflow"] + extra)
        lines.append(_one_line_error(err, rc, 2))
        assert want in lines[-1]
    (ckpt / "run.json").unlink()
    rc, _, err = _cli(capsys, ["train", "rpt"] + args[1:] + ["--backend", "tensorflow"])
    lines.append(_one_line_error(err, rc, 2))
    assert f"checkpoint folder {ckpt} holds a run without its run.json" in lines[-1] and "rm -r" in lines[-1]
    assert kcb.latest_checkpoint(str(ckpt))[0] >= 2  # nothing was touched
    for case, ln in zip(("--backend jax resuming a TensorFlow run", "another --data-dir", "another --split",
                         "checkpoints without their run.json (rpt on a vat checkpoint)"), lines):
        record(kind="bad input", case=f"resume with {case}", outcome="refused, exit 2",
               message=ln.replace(str(tmp_path), "DIR"), survived="the checkpoints, untouched")


TUNE = ["tune", "vat", "--grid", "epsilon=1,2", "--labels", "30", "--steps", "2", "--batch-labeled", "8",
        "--batch-unlabeled", "16", "--no-retrain", "--quiet"]


def test_search_and_comparison_folders_refuse_a_second_run_and_other_settings(tmp_path, capsys, no_training,
                                                                              record):
    search, board = tmp_path / "search", tmp_path / "board"
    compare = ["compare", "supervised", "--labels", "30", "--seeds", "1", "--steps", "2", "--out", str(board),
               "--quiet"]
    lines = []
    for argv, folder, what in ((TUNE + ["--directory", str(search)], search, "search folder"),
                               (compare, board, "comparison folder")):
        folder.mkdir()
        holder = _holder(str(folder / ".lock"))
        try:
            rc, _, err = _cli(capsys, argv)
            lines.append(_one_line_error(err, rc, 2))
            assert f"{what} {folder} is in use by another kzoo run (pid {holder.pid})" in lines[-1]
        finally:
            holder.communicate("")
    # results there, with the settings file of another backend or none
    other = "jax" if BACKEND == "tensorflow" else "tensorflow"
    (search / "oracle").mkdir()
    (search / "kzoo_tune.json").write_text(json.dumps({"method": "vat", "backend": other}))
    rc, _, err = _cli(capsys, TUNE + ["--directory", str(search)])
    lines.append(_one_line_error(err, rc, 2))
    assert f"backend: '{other}' there, '{BACKEND}' now" in lines[-1] and "--overwrite" in lines[-1]
    (search / "kzoo_tune.json").unlink()
    rc, _, err = _cli(capsys, TUNE + ["--directory", str(search)])
    lines.append(_one_line_error(err, rc, 2))
    assert "holds a run without its kzoo_tune.json" in lines[-1]
    (board / "cache").mkdir()
    (board / "cache" / "seed-x.json").write_text("{}")
    (board / "compare_settings.json").write_text(json.dumps({"dataset": "moons", "backend": other}))
    rc, _, err = _cli(capsys, compare)
    lines.append(_one_line_error(err, rc, 2))
    assert f"comparison folder {board} holds a run with other settings (dataset" in lines[-1]
    for case, ln in zip(("a second `kzoo tune` on one --directory", "a second `kzoo compare` on one --out",
                         "`kzoo tune` resuming a search of another backend",
                         "`kzoo tune` on a search folder without its settings file",
                         "`kzoo compare` resuming a comparison of another dataset"), lines):
        record(kind="bad input", case=case, outcome="refused, exit 2", message=ln.replace(str(tmp_path), "DIR"),
               survived="the folder, untouched")


# ---------------------------------------------------------------------------------------------------------
# More values refused before any work (issue 22)
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv,want", [
    (["--width", "2"], "the mlp has no width"),
    (["--width", "0"], "width must be a finite number > 0"),
    (["--width", "-1"], "width must be a finite number > 0"),
    (["--width", "nan"], "width must be a finite number > 0"),
    (["--model", "conv_small", "--width", "nan"], "width must be a finite number > 0"),
    (["--validation-labels", "15"], "leaves 5 of the 20 labels to train on, fewer than the 10 classes"),
], ids=["width-on-mlp", "width-0", "width-neg", "width-nan", "conv-width-nan", "validation-labels"])
@pytest.mark.parametrize("command", ["train", "tune"])
def test_widths_and_validation_splits_are_refused_before_training(command, argv, want, capsys, no_training,
                                                                  record):
    extra = ["--grid", "epsilon=1,2", "--no-retrain"] if command == "tune" else []
    rc, _, err = _cli(capsys, [command] + RUN + ["--steps", "5"] + argv + extra)
    line = _one_line_error(err, rc, 2)
    assert want in line
    record(kind="bad input", case=f"kzoo {command} {' '.join(argv)}", outcome="exit 2 (before training)",
           message=line, survived="nothing started")


@pytest.mark.parametrize("case", ["tensorboard-file", "tensorboard-unwritable", "metrics-long-name",
                                  "metrics-unwritable"])
def test_output_paths_that_cannot_be_written_are_refused_before_training(case, tmp_path, capsys, no_training,
                                                                         record):
    (tmp_path / "file").write_text("x")
    flag, path, want = {
        "tensorboard-file": ("--tensorboard", tmp_path / "file", "is an existing file, not a folder"),
        "tensorboard-unwritable": ("--tensorboard", "/proc/kzoo-tb", "/proc is not a writable folder"),
        "metrics-long-name": ("--metrics-json", tmp_path / ("m" * 300 + ".json"), "bytes a name may have"),
        "metrics-unwritable": ("--metrics-json", "/proc/kzoo/m.json", "/proc is not a writable folder"),
    }[case]
    rc, _, err = _cli(capsys, ["train"] + RUN + ["--steps", "5", flag, str(path)])
    line = _one_line_error(err, rc, 2)
    assert want in line
    assert (tmp_path / "file").read_text() == "x" and not os.path.exists("/proc/kzoo")
    shown = line.replace(str(tmp_path), "DIR").replace("m" * 300, "m…m")
    record(kind="bad input", case=f"{flag} {case.split('-', 1)[1].replace('-', ' ')}",
           outcome="exit 2 (before training)", message=shown, survived="nothing started")


def test_pretrain_to_a_file_that_is_not_keras_is_refused_before_training(tmp_path, capsys, record):
    rc, _, err = _cli(capsys, ["pretrain", "dcgan", "--steps", "2", "--export", str(tmp_path / "x.txt")])
    line = _one_line_error(err, rc, 2)
    assert "--export must name a .keras file" in line and os.listdir(tmp_path) == []
    record(kind="bad input", case="kzoo pretrain --export x.txt", outcome="exit 2 (before training)",
           message=line.replace(str(tmp_path), "DIR"), survived="nothing started")


def test_leftover_keras_tuner_variables_are_refused_by_a_plain_search(tmp_path, monkeypatch, capsys, no_training,
                                                                     record):
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    rc, _, err = _cli(capsys, TUNE + ["--directory", str(tmp_path / "s")])
    line = _one_line_error(err, rc, 2)
    assert "KERASTUNER_ORACLE_IP, KERASTUNER_TUNER_ID" in line and "unset KERASTUNER_ORACLE_IP" in line
    record(kind="bad input", case="KERASTUNER_* variables left in the environment of a plain `kzoo tune`",
           outcome="exit 2 (it waited forever)", message=line, survived="nothing started")
