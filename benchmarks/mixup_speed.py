"""Step time of the mixup family relative to supervised training on the same batches.

    python benchmarks/mixup_speed.py --json out.json      # KERAS_BACKEND picks the backend (default jax)

Every model lives in this one process; each round runs ``--steps`` steps of every
method in turn and times them, and the reported numbers are medians over the
rounds (ms/step, and the per-round ratio to supervised), so that the load of a
shared machine falls on every method alike.
"""

import argparse
import os
import statistics
import sys

from timing import emit, interleaved_ms_per_step, median_ratio


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--steps", type=int, default=40, help="timed steps per method per round")
    p.add_argument("--batch-labeled", type=int, default=32)
    p.add_argument("--batch-unlabeled", type=int, default=128)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    import kzoo
    from kzoo.mixup import InputMixup, ManifoldMixup

    ds = kzoo.data.load("digits")
    x_l, y_l, x_u = kzoo.data.labeled_split(ds.x_train, ds.y_train, 100, num_classes=10, seed=0)
    total = args.batch_labeled + args.batch_unlabeled
    layers = ["input", "block1", "block2"]
    methods = {
        "supervised": (None, False),
        "input mixup": (InputMixup(alpha=1.0), False),
        "manifold mixup (batch_norm=clean)": (ManifoldMixup(alpha=2.0, layers=layers), False),
        "manifold mixup (batch_norm=mixed)": (ManifoldMixup(alpha=2.0, layers=layers, batch_norm="mixed"), False),
        "manifold mixup SSL (batch_norm=clean)": (ManifoldMixup(alpha=0.1, layers=layers, consistency=30.0,
                                                                unlabeled_alpha=2.0), True),
    }
    models, streams = {}, {}
    for name, (reg, semi) in methods.items():
        keras.utils.set_random_seed(0)
        if semi:
            streams[name] = kzoo.data.semi_supervised(x_l, y_l, x_u, batch_labeled=args.batch_labeled,
                                                      batch_unlabeled=args.batch_unlabeled, seed=0)
        else:  # the same labeled batches for every supervised method
            streams[name] = kzoo.data.supervised(ds.x_train, ds.y_train, batch_size=total, seed=0)
        model = kzoo.Regularized(kzoo.models.mlp(ds.input_shape, 10), reg, seed=0)
        model.compile(optimizer="adam", jit_compile=True)
        model.fit(streams[name], steps_per_epoch=10, epochs=1, verbose=0)  # compile + warm up
        models[name] = model
    times = interleaved_ms_per_step(models, streams, args.rounds, args.steps, log=True)
    rows = [{"method": name, "ms_per_step": statistics.median(times[name]),
             "ratio_to_supervised": median_ratio(times, name, "supervised"), "ms_per_round": times[name]}
            for name in methods]
    out = {"backend": keras.backend.backend(), "jit_compile": True, "rounds": args.rounds,
           "steps_per_round": args.steps, "batch": total, "batch_labeled": args.batch_labeled,
           "batch_unlabeled": args.batch_unlabeled, "rows": rows,
           "note": ("What a step computes: supervised, one forward-backward; Manifold Mixup with "
                    "batch_norm=mixed, kzoo's clean pass (forward only: its loss is replaced, but it "
                    "updates the batch-norm statistics and gives the logged accuracy) plus the mixed "
                    "forward-backward, i.e. about one extra forward over the paper's computation; "
                    "batch_norm=clean (the default) also runs the layers after the mixing point once more "
                    "on the clean batch for its statistics, with gradient. The SSL step sees 160 inputs "
                    "in three passes (clean, mixed labeled, mixed unlabeled) plus the statistics passes.")}
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
