"""VAT paper recipe (Miyato et al., TPAMI 2018): semi-supervised classification.

    python recipes/vat.py                                  # digits, 100 labels, MLP, CPU minutes
    python recipes/vat.py --dataset svhn --full            # Conv-Large, 1,000 labels (paper Table 4)
    python recipes/vat.py --dataset cifar10 --full --entmin 1.0   # VAT+EntMin, 4,000 labels

``--full`` uses the paper's settings (Appendix C/D): MNIST -- 1200-600-300-150
MLP, 100 labels, batches 64/256, 100,000 updates with linear decay after
50,000; SVHN / CIFAR-10 -- Conv-Large, 1,000 / 4,000 labels, batches 32/128,
48,000 updates with the learning rate (1e-3) decayed over the last 16,000,
2-pixel translation (+ flips on CIFAR-10). The paper selects ε on a validation
set and does not print the chosen values; the ε below (MNIST 0.3, SVHN 2.5,
CIFAR-10 8.0) are our starting points and have NOT been validated here (the data
is not available offline): tune them. The paper also applied ZCA to CIFAR-10,
which this recipe does not. Data must be prepared in a local TFDS folder (see
`kzoo datasets`).
"""

import argparse
import json
import os
import sys

PAPER = {  # test error (%), from the paper's Tables 3 and 4
    "mnist": {"vat": 1.36, "rpt": 6.81},
    "svhn": {"vat": 5.77, "vat+entmin": 4.28},
    "cifar10": {"vat": 14.82, "vat+entmin": 13.15},
}

FULL = {
    "mnist": dict(model="mlp", labels=100, batch_labeled=64, batch_unlabeled=256, steps=100_000,
                  decay_fraction=0.5, epsilon=0.3, augment=None),
    "svhn": dict(model="conv_large", labels=1000, batch_labeled=32, batch_unlabeled=128, steps=48_000,
                 decay_fraction=16_000 / 48_000, epsilon=2.5, augment="translate"),
    "cifar10": dict(model="conv_large", labels=4000, batch_labeled=32, batch_unlabeled=128, steps=48_000,
                    decay_fraction=16_000 / 48_000, epsilon=8.0, augment="translate,flip"),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", choices=("digits", "mnist", "svhn", "cifar10"))
    p.add_argument("--full", action="store_true", help="the paper's model, schedule and label count")
    p.add_argument("--method", default="vat", choices=("vat", "rpt"))
    p.add_argument("--entmin", type=float, default=None)
    p.add_argument("--steps", type=int, default=None, help="override the number of updates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--metrics-json", default=None)
    args = p.parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    from kzoo.experiment import run

    if args.full and args.dataset == "digits":
        p.error("--full applies to mnist, svhn and cifar10 (digits is the offline default)")
    cfg = dict(FULL[args.dataset]) if args.full else dict(model="mlp", labels=100, steps=1000)
    if args.steps:
        cfg["steps"] = args.steps
    result = run(method=args.method, dataset=args.dataset, seed=args.seed, entmin=args.entmin,
                 data_dir=args.data_dir, metrics_json=args.metrics_json, **cfg)
    key = args.method + ("+entmin" if args.entmin else "")
    paper = PAPER.get(args.dataset, {}).get(key)
    print(json.dumps({k: result[k] for k in ("method", "dataset", "labels", "test_error", "train_steps")}))
    print(f"kzoo: {100 * result['test_error']:.2f}% test error; paper: "
          + (f"{paper:.2f}% ({args.dataset}, the paper's setting)" if paper else "no number for this setting"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
