"""Several devices: regularizer losses under replica splitting, distributed runs, two workers on loopback.

Each test runs in a child process: the devices (2 logical CPU devices for
TensorFlow, 2 host devices for JAX through XLA_FLAGS) must be set up before the
backend starts.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import BACKEND, REPO

from kzoo import backend as kb

EQUIVALENCE = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    from kzoo import backend as kb
    import keras
    backend = keras.backend.backend()
    kind = "mirrored" if backend == "tensorflow" else "data-parallel"
    assert kb.setup_devices(kind, 2) == 2  # before the backend's runtime starts
    import kzoo
    from kzoo import regularizers as R
    from kzoo.core import Regularizer

    class Probe(Regularizer):
        """Weight 0; logs the size of the labeled and unlabeled batch a replica sees."""
        def __init__(self):
            super().__init__()
            self.weights = {"n_l": 0.0, "n_u": 0.0}
        def terms(self, ctx):
            f = lambda x: keras.ops.cast(keras.ops.shape(x)[0], "float32")
            return {"n_l": f(ctx.x_l), "n_u": f(ctx.x_u)}

    rng = np.random.default_rng(0)
    x_l = rng.normal(size=(8, 6)).astype("float32")
    y_l = rng.integers(0, 3, 8).astype("int32")
    x_u = rng.normal(size=(16, 6)).astype("float32")
    keras.utils.set_random_seed(1)
    inp = keras.Input((6,))
    ref = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Dense(16, activation="tanh")(inp)))
    init = [np.array(keras.ops.convert_to_numpy(w)) for w in ref.weights]

    def regularizer(which):
        parts = {"at": R.AdversarialTraining(epsilon=0.3, alpha=0.5),
                 "entmin": R.EntropyMinimization(weight=0.7),
                 "vat": R.VAT(epsilon=0.5, alpha=1.5)}
        out = Probe()
        for name in which:
            out = out + parts[name]
        return out

    def data():
        batch = ({"labeled": x_l, "unlabeled": x_u}, y_l)
        if backend == "tensorflow":
            import tensorflow as tf
            return tf.data.Dataset.from_tensors(batch).repeat()
        def gen():
            while True:
                yield batch
        return gen()

    def one_step(scope, which):
        with scope:
            inp = keras.Input((6,))
            clf = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Dense(16, activation="tanh")(inp)))
            clf.set_weights(init)
            net = kzoo.Regularized(clf, regularizer(which) if which is not None else None, seed=5)
            net.compile(optimizer=keras.optimizers.SGD(1.0))
            hist = net.fit(data(), steps_per_epoch=1, epochs=1, verbose=0)
        grads = [(a - np.array(keras.ops.convert_to_numpy(w))).tolist() for a, w in zip(init, clf.weights)]
        return {"logs": {k: float(v[-1]) for k, v in hist.history.items()}, "grads": grads}

    which = sys.argv[1].split(",")
    out = {"single": one_step(kb.distribution_scope(None), which),
           "multi": one_step(kb.distribution_scope(kind, 2), which),
           "plain": one_step(kb.distribution_scope(None), None)}
    # the run() entry point with the same distribution, through the command line
    from kzoo import cli
    rc = cli.main(["train", "supervised", "--labels", "20", "--steps", "3", "--batch-labeled", "8",
                   "--batch-unlabeled", "16", "--distribution", kind, "--devices", "2", "--quiet",
                   "--metrics-json", sys.argv[2]])
    out["cli_rc"] = rc
    print("RESULT" + json.dumps(out))
''')


def _child(code, args, env_extra=None, timeout=400):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND=BACKEND, **(env_extra or {}))
    proc = subprocess.run([sys.executable, "-c", code] + args, capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


@pytest.mark.skipif(BACKEND == "torch", reason="kzoo trains on one device on the torch backend (no distribution)")
def test_regularizer_losses_and_gradients_equal_single_device_on_the_same_global_batch(tmp_path):
    """One SGD(lr=1) step on 2 devices = on 1 device: logged losses and the update (the gradient).

    TensorFlow's MirroredStrategy gives each replica half of the labeled and of the
    unlabeled batch and sums the replicas' gradients, so every loss term must be
    scaled by 1/replicas as Keras scales compile()'s loss. Regularizers drawing
    random directions (VAT) draw them per replica there, so the exact comparison
    on TensorFlow uses the deterministic ones (adversarial training, entropy
    minimization); JAX's DataParallel computes on the global (sharded) batch,
    where VAT's draws are the single device's, and is compared with VAT too.
    """
    which = "at,entmin" if BACKEND == "tensorflow" else "at,entmin,vat"
    metrics = tmp_path / "m.json"
    out = _child(EQUIVALENCE, [which, str(metrics)],
                 {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"} if BACKEND == "jax" else None)
    single, multi, plain = out["single"], out["multi"], out["plain"]
    # the batch was split: each TF replica saw half of it; JAX's step sees the global batch
    half = BACKEND == "tensorflow"
    assert multi["logs"]["n_l"] == (4.0 if half else 8.0) and multi["logs"]["n_u"] == (8.0 if half else 16.0)
    assert single["logs"]["n_l"] == 8.0 and single["logs"]["n_u"] == 16.0
    for name in ["loss", "adv", "entmin"] + (["vat"] if BACKEND == "jax" else []):
        # VAT's power iteration divides by a finite difference of float32 logits: the split batch's other
        # reduction order moves it by ~1e-4 relative on some CPUs (seen 1.1e-4), the other terms by < 1e-5
        rel = 1e-3 if name == "vat" else 1e-5
        assert multi["logs"][name] == pytest.approx(single["logs"][name], rel=rel, abs=1e-6), name
    for g1, g2, g0 in zip(single["grads"], multi["grads"], plain["grads"]):
        g1, g2, g0 = np.array(g1), np.array(g2), np.array(g0)
        np.testing.assert_allclose(g2, g1, rtol=1e-3 if BACKEND == "jax" else 1e-4,  # jax: with VAT (see above)
                                   atol=1e-5 if BACKEND == "jax" else 1e-6)
    # the regularizers change the gradient (so a wrong replica scaling could not pass unnoticed)
    assert max(np.abs(np.array(a) - np.array(b)).max() for a, b in zip(single["grads"], plain["grads"])) > 1e-2
    assert out["cli_rc"] == 0
    result = json.loads(metrics.read_text())
    assert result["distribution"] == {"kind": "mirrored" if BACKEND == "tensorflow" else "data-parallel",
                                      "devices": 2}
    assert result["train_steps"] == 3 and np.isfinite(result["test_nll"])


def test_distribution_is_checked_before_any_work(capsys):
    from kzoo import cli

    wrong = "data-parallel" if BACKEND == "tensorflow" else "mirrored"
    assert cli.main(["train", "vat", "--distribution", wrong, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"distribution {wrong!r} needs the" in err
    if BACKEND == "torch":
        assert "torch backend trains on one device" in err
    with pytest.raises(ValueError, match="--devices needs --distribution"):
        kb.check_distribution(None, 2)
    if BACKEND == "jax":  # this process has one host device: the error says how to get more
        with pytest.raises(ValueError, match="xla_force_host_platform_device_count=8"):
            kb.setup_devices("data-parallel", 8)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.tensorflow_only
def test_two_worker_processes_on_loopback_train_together(tmp_path):
    """MultiWorkerMirroredStrategy: two `kzoo train` processes, one cluster on 127.0.0.1."""
    if BACKEND != "tensorflow":
        pytest.skip("multi-worker training runs on TensorFlow's MultiWorkerMirroredStrategy")
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "kzoo", "train", "vat", "--labels", "20", "--steps", "4", "--batch-labeled",
             "8", "--batch-unlabeled", "16", "--distribution", "multi-worker", "--quiet",
             "--metrics-json", str(tmp_path / f"worker{i}.json"), "--checkpoint-dir", str(tmp_path / f"ck{i}"),
             "--checkpoint-every", "2"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    chief = json.loads((tmp_path / "worker0.json").read_text())
    assert chief["distribution"]["kind"] == "multi-worker" and chief["train_steps"] == 4
    assert not (tmp_path / "worker1.json").exists()  # only the chief writes outputs
    # both workers hold the same model: gradients were all-reduced across the two processes
    summaries = [json.loads(next(line for line in out.splitlines() if line.startswith("{"))) for out, _ in outs]
    assert summaries[0]["test_nll"] == pytest.approx(summaries[1]["test_nll"], rel=1e-6)
    assert not (tmp_path / "ck1").exists() or not any(n.startswith("ckpt-") for n in os.listdir(tmp_path / "ck1"))


def test_scale_loss_for_distribution_is_identity_on_one_device():
    x = keras.ops.convert_to_tensor(np.float32(3.0))
    assert kb.num_replicas() == 1
    assert float(keras.ops.convert_to_numpy(kb.scale_loss_for_distribution(x))) == 3.0
    assert float(keras.ops.convert_to_numpy(kb.unscale_loss_for_distribution(x))) == 3.0
