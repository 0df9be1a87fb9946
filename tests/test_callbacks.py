"""Fault tolerance: divergence guard, checkpoints, exports that fail midway (kill -9 and resume: test_faults.py)."""

import errno
import json
import os

import keras
import numpy as np
import pytest

from kzoo import callbacks as kcb
from kzoo import experiment, methods
from kzoo.core import Regularizer


class _NanAfter(Regularizer):
    """0 until optimizer step ``at``, NaN from then on."""

    def __init__(self, at):
        super().__init__()
        self.at = at
        self.weights = {"bomb": 1.0}

    def terms(self, ctx):
        return {}

    def weighted_loss(self, ctx, step):
        value = keras.ops.where(keras.ops.greater_equal(step, self.at), float("nan"), 0.0)
        return value, {"bomb": value}


@pytest.fixture
def bomb_method(monkeypatch):
    spec = methods.Method("bomb", "NaN from step 12 on", (), lambda hp: _NanAfter(12), semi_supervised=False)
    monkeypatch.setitem(methods.METHODS, "bomb", spec)
    return spec


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, bomb_method):
    ckpt, out = tmp_path / "ckpt", tmp_path / "m.json"
    with pytest.raises(kcb.TrainingDiverged) as e:
        experiment.run(method="bomb", labels=20, steps=40, batch_labeled=8, checkpoint_dir=str(ckpt),
                       checkpoint_every=5, metrics_json=str(out), verbose=0)
    msg = str(e.value)
    # iterations 0..11 are finite; the 13th step (iterations == 12) is the first NaN
    assert "at optimizer step 13" in msg and "last good checkpoint (step 10)" in msg and str(ckpt) in msg
    assert "nan" in msg
    assert kcb.latest_checkpoint(str(ckpt))[0] == 10
    assert not out.exists()
    # the kept checkpoint is good: every saved array (weights, optimizer state) is finite
    import h5py

    with h5py.File(os.path.join(kcb.latest_checkpoint(str(ckpt))[1], "model.weights.h5")) as f:
        arrays = []
        f.visititems(lambda n, o: arrays.append(np.asarray(o)) if isinstance(o, h5py.Dataset) else None)
    assert arrays and all(np.all(np.isfinite(a)) for a in arrays)


def test_nan_without_checkpoint_dir_is_reported_by_the_cli(bomb_method, capsys):
    from kzoo import cli

    assert cli.main(["train", "bomb", "--labels", "20", "--steps", "30", "--batch-labeled", "8", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("kzoo: error: training diverged") and "no checkpoint was written" in err


def test_checkpoint_folder_of_another_run_is_refused_before_training(tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "run.json").write_text(json.dumps({"method": "vat", "steps": 999}))
    os.makedirs(ckpt / "ckpt-000000010")
    (ckpt / "ckpt-000000010" / "meta.json").write_text("{}")
    import kzoo.core

    monkeypatch.setattr(kzoo.core.Regularized, "fit", lambda *a, **k: pytest.fail("fit was called"))
    with pytest.raises(experiment.ConfigError, match="holds a run with other settings.*steps"):
        experiment.run(method="vat", labels=20, steps=5, checkpoint_dir=str(ckpt), verbose=0)


def test_checkpoint_is_atomic_and_keeps_the_previous_one(tmp_path, small_mlp):
    from kzoo.core import Regularized

    net = Regularized(small_mlp, None, seed=1)
    net.compile(optimizer="adam")
    net.optimizer.build(net.trainable_variables)
    kcb.save_checkpoint(net, str(tmp_path), 5)
    first = [np.array(keras.ops.convert_to_numpy(w)) for w in net.weights]
    net.weights[0].assign(net.weights[0] + 1.0)
    net._kzoo_seed.state.assign(np.array([7, 9], dtype=net._kzoo_seed.state.dtype))
    kcb.save_checkpoint(net, str(tmp_path), 10)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000005", "ckpt-000000010"]  # the previous one is kept
    kcb.save_checkpoint(net, str(tmp_path), 10)  # saved again: replaced, and still two
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000005", "ckpt-000000010"]
    manifest = json.loads((tmp_path / "ckpt-000000010" / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["meta.json", "model.weights.h5", "state.npz"]
    assert kcb.verify_checkpoint(str(tmp_path / "ckpt-000000010")) is None
    # a save interrupted before its rename leaves only a hidden temporary folder, which is ignored
    os.makedirs(tmp_path / ".tmp-ckpt-dead")
    assert kcb.latest_checkpoint(str(tmp_path))[0] == 10
    net.weights[0].assign(first[0])
    net._kzoo_seed.state.assign(np.array([0, 0], dtype=net._kzoo_seed.state.dtype))
    assert kcb.restore_checkpoint(net, kcb.latest_checkpoint(str(tmp_path))[1]) == 10
    np.testing.assert_allclose(keras.ops.convert_to_numpy(net.weights[0]), first[0] + 1.0)
    assert list(keras.ops.convert_to_numpy(net._kzoo_seed.state)) == [7, 9]  # seed state outside weights


def _failing_export(written):
    def export(model, path, **kwargs):
        os.makedirs(path)
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"partial")
        written.append(path)
        raise OSError(errno.ENOSPC, "No space left on device")

    return export


def test_export_on_a_full_disk_fails_clearly_and_leaves_no_partial_savedmodel(tmp_path, monkeypatch, small_mlp):
    from kzoo.export import ExportError, export_classifier

    written = []
    monkeypatch.setattr(keras.Model, "export", _failing_export(written))
    dest = tmp_path / "model"
    with pytest.raises(ExportError, match="disk is full.*nothing was left at that path"):
        export_classifier(small_mlp, str(dest))
    assert written and not dest.exists() and os.listdir(tmp_path) == []

    dest.mkdir()  # a previous export survives a failed one
    (dest / "saved_model.pb").write_bytes(b"previous")
    with pytest.raises(ExportError, match="previous export there is unchanged"):
        export_classifier(small_mlp, str(dest))
    assert (dest / "saved_model.pb").read_bytes() == b"previous" and os.listdir(tmp_path) == ["model"]


def test_export_failure_after_training_is_a_clear_cli_error(tmp_path, monkeypatch, capsys):
    from kzoo import cli

    monkeypatch.setattr(keras.Model, "export", _failing_export([]))
    rc = cli.main(["train", "supervised", "--labels", "20", "--steps", "2", "--batch-labeled", "8", "--quiet",
                   "--export", str(tmp_path / "m"), "--metrics-json", str(tmp_path / "m.json")]
                  # a SavedModel is refused on torch before training (torch_xla): the ONNX path there
                  + (["--export-format", "onnx"] if keras.backend.backend() == "torch" else []))
    assert rc == 3
    assert "disk is full" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_tensorboard_logs_every_loss_term_and_metric(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    experiment.run(method="vat", labels=20, steps=4, batch_labeled=8, batch_unlabeled=16, entmin=1.0,
                   tensorboard=str(tmp_path), verbose=0)
    tags = set()
    for root, _, files in os.walk(tmp_path):
        if any("tfevents" in f for f in files):
            acc = event_accumulator.EventAccumulator(root, size_guidance={"tensors": 0, "scalars": 0})
            acc.Reload()
            tags |= set(acc.Tags()["tensors"]) | set(acc.Tags()["scalars"])
    for name in ("loss", "vat", "entmin", "accuracy"):
        assert f"epoch_{name}" in tags and f"batch_{name}" in tags, (name, sorted(tags))


def test_nan_guard_stops_with_a_clear_message_and_keeps_the_last_good_weights(tmp_path):
    from conftest import linear_model

    clf = linear_model(input_dim=2, num_classes=2)
    clf.compile(optimizer=keras.optimizers.SGD(0.1),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def batches():
        for i in range(100):
            x = np.full((4, 2), np.nan if i == 3 else 1.0, "float32")
            yield x, np.zeros(4, "int32")

    ckpt = str(tmp_path / "good.weights.h5")
    guard = kcb.NaNGuard(every=1, filepath=ckpt)
    with pytest.raises(kcb.NonFiniteLossError, match="non-finite loss at training step 4.*restored to those of step 3"):
        clf.fit(batches(), steps_per_epoch=10, epochs=1, verbose=0, callbacks=[guard])
    assert all(np.isfinite(w).all() for w in clf.get_weights())
    assert guard.good_step == 3
    again = linear_model(input_dim=2, num_classes=2)
    again.load_weights(ckpt)
    for a, b in zip(again.get_weights(), clf.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_tensorboard_logs_validation_metrics_and_loss_terms_at_every_epoch(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing import event_accumulator

    from kzoo.methods import context

    monkeypatch.setattr(context, "_epochs_for", lambda steps: 2)  # 2 epochs of 3 steps
    result = experiment.run(method="vat", labels=30, validation_labels=10, steps=6, batch_labeled=8,
                            batch_unlabeled=16, entmin=1.0, tensorboard=str(tmp_path), verbose=0, test=False)
    points = {}
    for sub in ("train", "validation"):
        acc = event_accumulator.EventAccumulator(str(tmp_path / sub), size_guidance={"tensors": 0})
        acc.Reload()
        for tag in acc.Tags()["tensors"]:
            points[f"{sub}/{tag}"] = [(e.step, float(np.asarray(tf_value(e)))) for e in acc.Tensors(tag)]
    for name in ("train/epoch_loss", "train/epoch_vat", "train/epoch_entmin", "validation/epoch_error",
                 "validation/epoch_nll"):
        assert [s for s, _ in points.get(name, [])] == [0, 1], (name, sorted(points))
    # the last epoch's validation point is the run's reported validation error of the trained classifier
    assert points["validation/epoch_error"][-1][1] == pytest.approx(result["val_error"], abs=1e-6)
    assert points["validation/epoch_nll"][-1][1] == pytest.approx(result["val_nll"], rel=1e-4)


def tf_value(event):
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(event.tensor_proto)
