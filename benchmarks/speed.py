"""Step-time benchmark of each method against supervised training on the same batches.

Run in its own process per backend (a process holds one Keras backend):

    python benchmarks/speed.py --backend jax --jit true --json out.json

"Same batches": the supervised baseline trains on batch_labeled + batch_unlabeled
labeled examples, the same number of inputs as the regularized step sees.
"""

import argparse
import json
import os
import sys
import time


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=("tensorflow", "jax"), required=True)
    p.add_argument("--jit", choices=("true", "false"), default="true")
    p.add_argument("--methods", default="supervised,vat,vat+entmin,rpt,adversarial")
    p.add_argument("--steps", type=int, default=300, help="timed steps (after warm-up)")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--batch-labeled", type=int, default=32)
    p.add_argument("--batch-unlabeled", type=int, default=128)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    import kzoo
    from kzoo.experiment import build_regularizer

    ds = kzoo.data.load("digits")
    x_l, y_l, x_u = kzoo.data.labeled_split(ds.x_train, ds.y_train, 100, num_classes=10, seed=0)
    jit = args.jit == "true"
    total = args.batch_labeled + args.batch_unlabeled
    rows = []
    for method in args.methods.split(","):
        keras.utils.set_random_seed(0)
        base, _, extra = method.partition("+")
        reg = build_regularizer(base, entmin=1.0 if extra == "entmin" else None)
        semi = base in ("vat", "rpt")
        if semi:
            stream = kzoo.data.semi_supervised(x_l, y_l, x_u, batch_labeled=args.batch_labeled,
                                               batch_unlabeled=args.batch_unlabeled, seed=0)
        else:  # supervised and adversarial: labeled batches of the same total size
            stream = kzoo.data.supervised(ds.x_train, ds.y_train, batch_size=total, seed=0)
        model = kzoo.Regularized(kzoo.models.mlp(ds.input_shape, 10), reg, seed=0)
        model.compile(optimizer="adam", jit_compile=jit)
        model.fit(stream, steps_per_epoch=args.warmup, epochs=1, verbose=0)
        t = time.perf_counter()
        model.fit(stream, steps_per_epoch=args.steps, epochs=1, verbose=0)
        seconds = time.perf_counter() - t
        rows.append({"method": method, "steps_per_second": args.steps / seconds,
                     "ms_per_step": 1000 * seconds / args.steps})
        print(f"{method:<12} {rows[-1]['ms_per_step']:.2f} ms/step", file=sys.stderr)
    sup = next((r for r in rows if r["method"] == "supervised"), None)
    for r in rows:
        r["ratio_to_supervised"] = r["ms_per_step"] / sup["ms_per_step"] if sup else None
    out = {"backend": args.backend, "jit_compile": jit, "batch": [args.batch_labeled, args.batch_unlabeled],
           "model": "mlp (1200-600-300-150, BN)", "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    else:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
