"""Manifold Mixup against input mixup on MNIST-1D with a plain user CNN, kzoo's defaults only (issue 27).

    KERAS_BACKEND=jax python benchmarks/mnist1d_mixup.py --json benchmarks/results/mnist1d-mixup.json

The network is what a user writes, with no kzoo layer names: the MNIST-1D paper's CNN (Greydanus, 2020),
Conv1D(25, 5, stride 2, relu) -> Conv1D(25, 3, stride 2, relu) -> Conv1D(25, 3, stride 2, relu) -> Flatten ->
Dense(10) ("same" padding: 40 -> 20 -> 10 -> 5 positions, as the paper's PyTorch model with padding 1).
Data: ``mnist1d.data.make_dataset(get_dataset_args())`` (the paper's generator, all 4,000 training labels,
1,000 test). Training as in the MNIST-1D paper: Adam at 1e-2, batches of 100, ``--steps`` steps.

The regularizers are kzoo's with their defaults and nothing else: ``ManifoldMixup()`` (α = 2, ``layers``
chosen by the paper's rule on this network, ``batch_norm="paper"``) and ``InputMixup()`` (α = 1), plus the
same network without a regularizer. Seed s draws the initial weights, the batches and the mixing for every
method alike, so the differences are paired by seed. Test error is measured once per run, at the end.
"""

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def plain_cnn():
    import keras
    from keras import layers

    inputs = keras.Input(shape=(40,))
    h = layers.Reshape((40, 1))(inputs)
    h = layers.Conv1D(25, 5, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv1D(25, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv1D(25, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Flatten()(h)
    return keras.Model(inputs, layers.Dense(10)(h), name="mnist1d_user_cnn")


def one_run(method, seed, data, steps, batch):
    import keras
    import numpy as np

    import kzoo

    keras.utils.set_random_seed(seed)
    net = plain_cnn()
    reg = {"supervised": None, "manifold-mixup": kzoo.regularizers.ManifoldMixup(),
           "input-mixup": kzoo.regularizers.InputMixup()}[method]
    model = kzoo.Regularized(net, reg, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    x, y = data["x"].astype("float32"), data["y"].astype("int32")
    t = time.perf_counter()
    model.fit(kzoo.data.supervised(x, y, batch_size=batch, seed=seed), steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - t
    logits = net.predict(data["x_test"].astype("float32"), batch_size=1000, verbose=0)
    error = float(np.mean(np.argmax(logits, axis=1) != data["y_test"]))
    out = {"method": method, "seed": seed, "test_error": error, "train_seconds": seconds}
    if reg is not None:
        out["layers"] = list(reg.layers)
        out["batch_norm"] = reg.batch_norm
        out["regularizer"] = repr(reg)
    return out


def _interval(diffs):
    """Mean and 95% t-interval half-width of paired differences."""
    from scipy import stats

    mean = statistics.mean(diffs)
    if len(diffs) < 2:
        return mean, float("nan")
    return mean, float(stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5)


def summarize(runs, methods, seeds):
    by = {(r["method"], r["seed"]): r["test_error"] for r in runs}
    summary = {}
    for m in methods:
        errs = [by[(m, s)] for s in seeds]
        summary[m] = {"mean": statistics.mean(errs), "sd": statistics.stdev(errs) if len(errs) > 1 else 0.0,
                      "errors": errs}
    pairs = {}
    for a, b in (("manifold-mixup", "input-mixup"), ("manifold-mixup", "supervised"), ("input-mixup", "supervised")):
        if a in methods and b in methods:
            diffs = [by[(a, s)] - by[(b, s)] for s in seeds]
            mean, half = _interval(diffs)
            pairs[f"{a} - {b}"] = {"diffs": diffs, "mean": mean, "ci95": [mean - half, mean + half]}
    return summary, pairs


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--methods", default="manifold-mixup,input-mixup,supervised")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from mnist1d.data import get_dataset_args, make_dataset

    from kzoo.io import write_json_atomic

    data = make_dataset(get_dataset_args())
    methods = args.methods.split(",")
    runs = []
    load = [os.getloadavg()[0]]
    for seed in args.seeds:  # seed by seed, every method in turn
        for method in methods:
            runs.append(one_run(method, seed, data, args.steps, args.batch))
            print(f"{method} seed {seed}: test error {100 * runs[-1]['test_error']:.2f}% "
                  f"({runs[-1]['train_seconds']:.0f} s)", file=sys.stderr, flush=True)
    load.append(os.getloadavg()[0])
    summary, pairs = summarize(runs, methods, args.seeds)
    out = {"description": __doc__.split("\n\n")[0], "backend": keras.backend.backend(), "steps": args.steps,
           "batch": args.batch, "optimizer": "Adam(1e-2)", "seeds": args.seeds,
           "train_size": int(len(data["y"])), "test_size": int(len(data["y_test"])),
           "runs": runs, "summary": summary, "paired": pairs, "load_average": load}
    for m, s in summary.items():
        print(f"{m}: {100 * s['mean']:.2f} ± {100 * s['sd']:.2f}% test error", file=sys.stderr)
    for k, v in pairs.items():
        print(f"{k}: {100 * v['mean']:+.2f} points, 95% CI [{100 * v['ci95'][0]:+.2f}, {100 * v['ci95'][1]:+.2f}]",
              file=sys.stderr)
    if args.json:
        write_json_atomic(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
