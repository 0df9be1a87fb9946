"""Startup on JAX: the first model build and the first train step, without and with kzoo's compilation cache.

    python benchmarks/startup.py --rounds 3 --json out.json

Keras on JAX compiles one random initializer per new variable shape, so the
first model built in a process spends seconds in XLA. kzoo turns on JAX's
persistent compilation cache (``KZOO_JAX_CACHE_DIR``, see
``kzoo.backend.jax.configure_compilation_cache``). Each round runs three fresh
processes in turn: cache off (what kzoo did before), cold (an empty cache
directory, created by that process) and warm (the directory the cold process
filled), so the load of a shared machine falls on the three alike. Each process
times, in order: importing Keras and kzoo, building ``kzoo.models.mlp`` on
64-dim inputs, building ``conv_small`` on 32x32x3, and the first ``fit`` step of
VAT on the mlp (the train step's compilation). Reported: medians over rounds
and every round's value.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from timing import emit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PROBE = r"""
import json, time
t0 = time.perf_counter()
import keras, numpy as np
import kzoo, kzoo.models
t1 = time.perf_counter()
keras.utils.set_random_seed(0)
mlp = kzoo.models.mlp(input_shape=(64,), num_classes=10)
t2 = time.perf_counter()
kzoo.models.conv_small(input_shape=(32, 32, 3), num_classes=10)
t3 = time.perf_counter()
model = kzoo.Regularized(mlp, kzoo.regularizers.VAT(epsilon=1.0), seed=0)
model.compile(optimizer="adam", jit_compile=True)
rng = np.random.default_rng(0)
x = {"labeled": rng.normal(size=(32, 64)).astype("float32"),
     "unlabeled": rng.normal(size=(128, 64)).astype("float32")}
y = rng.integers(0, 10, size=32)
model.train_on_batch(x, y)
t4 = time.perf_counter()
import jax
print("RESULT " + json.dumps({"import": t1 - t0, "mlp": t2 - t1, "conv_small": t3 - t2, "first_vat_step": t4 - t3,
                              "cache_dir": jax.config.jax_compilation_cache_dir}))
"""

STAGES = ("import", "mlp", "conv_small", "first_vat_step")


def probe(cache):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", KZOO_JAX_CACHE_DIR=cache)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=ROOT)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"startup probe failed:\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    modes = ("off", "cold", "warm")
    runs = {m: [] for m in modes}
    for r in range(args.rounds):
        tmp = tempfile.mkdtemp(prefix="kzoo-startup-")
        try:
            cache = os.path.join(tmp, "jax")
            for mode in modes:
                res = probe("off" if mode == "off" else cache)
                assert (res["cache_dir"] is None) == (mode == "off"), res
                runs[mode].append(res)
                print(f"round {r + 1}/{args.rounds} {mode}: " + ", ".join(f"{s} {res[s]:.2f}s" for s in STAGES)
                      + f" (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for mode in modes:
        rows.append({"cache": mode, **{s: statistics.median(x[s] for x in runs[mode]) for s in STAGES},
                     "per_round": {s: [x[s] for x in runs[mode]] for s in STAGES}})
    emit({"backend": "jax", "rounds": args.rounds, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
