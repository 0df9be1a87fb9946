"""Steps per second of VAT training on 1 and 2 devices (one backend per process).

    KERAS_BACKEND=jax python benchmarks/scaling.py --json out.json
    KERAS_BACKEND=tensorflow python benchmarks/scaling.py --json out.json

On a CPU-only host the 2 devices are logical: TensorFlow splits the CPU into 2
logical devices (MirroredStrategy), JAX gets 2 host devices from
XLA_FLAGS=--xla_force_host_platform_device_count=2 (DataParallel). They share
the same cores, so this measures the overhead of replica splitting, not a
speed-up. With GPUs, the devices are GPUs. The 1- and 2-device models are
timed alternately in several rounds in one process (medians), so machine
contention affects both alike.
"""

import argparse
import json
import os
import sys
import time

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", required=True)
    args = p.parse_args()
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "jax":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_force_host_platform_device_count=2").strip()

    import keras
    import numpy as np

    from kzoo import backend as kb

    backend = keras.backend.backend()
    kind = "mirrored" if backend == "tensorflow" else "data-parallel"
    kb.setup_devices(kind, 2)

    import kzoo

    ds = kzoo.data.load("digits", flatten=True)
    x_l, y_l, x_u = kzoo.data.labeled_split(ds.x_train, ds.y_train, 100, num_classes=10, seed=0)

    def build(devices):
        def scope():
            return kb.distribution_scope(kind if devices > 1 else None, devices if devices > 1 else None)

        with scope():
            keras.utils.set_random_seed(0)
            clf = kzoo.models.mlp(input_shape=(64,), num_classes=10)
            net = kzoo.Regularized(clf, kzoo.regularizers.VAT(epsilon=1.0), seed=0)
            net.compile(optimizer="adam")
        return net, scope

    def timed_fit(net, scope, steps):
        stream = kzoo.data.semi_supervised(x_l, y_l, x_u, batch_labeled=32, batch_unlabeled=128, seed=0)
        with scope():
            t = time.perf_counter()
            net.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
            # wait until every step has finished (JAX dispatches asynchronously): the timing is then
            # complete, and the next model's steps never overlap this one's collectives
            [np.asarray(keras.ops.convert_to_numpy(v)) for v in net.trainable_variables]
            return time.perf_counter() - t

    nets = {d: build(d) for d in (1, 2)}
    for d, (net, scope) in nets.items():  # warm-up: compile
        timed_fit(net, scope, 5)
    times = {1: [], 2: []}
    for r in range(args.rounds):
        for d in ((1, 2) if r % 2 == 0 else (2, 1)):
            net, scope = nets[d]
            times[d].append(timed_fit(net, scope, args.steps))
            print(f"round {r} devices {d}: {args.steps / times[d][-1]:.1f} steps/s", file=sys.stderr, flush=True)
    if backend == "tensorflow":
        import tensorflow as tf

        devices = [d.name for d in tf.config.list_logical_devices()]
    else:
        import jax

        devices = [str(d) for d in jax.devices()]
    out = {"backend": backend, "distribution": kind, "steps": args.steps, "rounds": args.rounds,
           "devices": devices, "cpu_count": os.cpu_count(),
           "rows": [{"devices": d, "steps_per_second": args.steps / float(np.median(times[d])),
                     "all_steps_per_second": [args.steps / t for t in times[d]]} for d in (1, 2)]}
    out["ratio_2_to_1"] = out["rows"][1]["steps_per_second"] / out["rows"][0]["steps_per_second"]
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out))
