"""Command line: ``kzoo train|methods|datasets`` (also ``python -m kzoo``).

The backend is chosen before Keras is imported, so ``--backend jax`` works on a
machine without TensorFlow.
"""

import argparse
import json
import os
import sys


def _parser():
    from kzoo.data import DATASETS  # numpy-only import
    from kzoo.experiment import DEFAULTS, METHODS

    p = argparse.ArgumentParser(prog="kzoo", description="Regularized semi-supervised training in Keras 3.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("methods", help="list the training methods")
    d = sub.add_parser("datasets", help="list the datasets and whether each is available offline")
    d.add_argument("--data-dir", default=None, help="TFDS data folder (default: $KZOO_DATA_DIR, $TFDS_DATA_DIR, ~/tensorflow_datasets)")

    t = sub.add_parser("train", help="train a classifier with a regularizer, evaluate it, export it")
    t.add_argument("method", help=f"one of: {', '.join(METHODS)}")
    t.add_argument("--dataset", default="digits", help=f"one of: {', '.join(DATASETS)} (default digits)")
    t.add_argument("--labels", type=int, default=100, help="number of labeled training examples (class-balanced)")
    t.add_argument("--model", default="mlp", help="mlp, conv_small or conv_large (default mlp)")
    t.add_argument("--width", type=float, default=1.0, help="channel multiplier of the conv models")
    t.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    t.add_argument("--batch-labeled", type=int, default=32)
    t.add_argument("--batch-unlabeled", type=int, default=128)
    t.add_argument("--seed", type=int, default=0, help="seed of the labeled subset, initialization and noise")
    t.add_argument("--backend", choices=("tensorflow", "jax"), default=None,
                   help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    t.add_argument("--epsilon", type=float, default=None,
                   help=f"perturbation radius ε (defaults: {DEFAULTS['epsilon']})")
    t.add_argument("--alpha", type=float, default=None, help="regularizer weight α (default 1)")
    t.add_argument("--xi", type=float, default=None, help="VAT finite-difference step ξ (default 1e-6)")
    t.add_argument("--power-iterations", type=int, default=None, help="VAT power iterations K (default 1)")
    t.add_argument("--entmin", type=float, default=None, help="VAT+EntMin: weight of entropy minimization")
    t.add_argument("--adv-norm", choices=("l2", "linf"), default=None, help="adversarial training norm")
    t.add_argument("--rampup-steps", type=int, default=0, help="sigmoid ramp-up of the regularizer weight")
    t.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    t.add_argument("--decay-fraction", type=float, default=1 / 3,
                   help="linear learning-rate decay over this last fraction of training")
    t.add_argument("--augment", default=None, help="translate, flip or translate,flip (image data)")
    t.add_argument("--data-dir", default=None, help="TFDS data folder for mnist/cifar10/svhn")
    t.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto")
    t.add_argument("--metrics-json", default=None, help="write the run's metrics to this JSON file")
    t.add_argument("--export", default=None, help="export the trained classifier as a SavedModel here")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    if getattr(args, "backend", None):
        if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != args.backend:
            print("kzoo: --backend must be chosen before keras is imported", file=sys.stderr)
            return 2
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    if args.command == "methods":
        from kzoo.experiment import METHODS

        for name, summary in METHODS.items():
            print(f"{name:<12} {summary}")
        return 0
    if args.command == "datasets":
        from kzoo.data import list_datasets

        for row in list_datasets(args.data_dir):
            where = "offline" if row["offline"] else "not available here"
            print(f"{row['name']:<12} {where:<19} {row['description']}")
        return 0

    from kzoo.data import DatasetUnavailableError
    from kzoo.experiment import ConfigError, run

    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    try:
        result = run(
            method=args.method, dataset=args.dataset, labels=args.labels, model=args.model,
            steps=args.steps, batch_labeled=args.batch_labeled, batch_unlabeled=args.batch_unlabeled,
            seed=args.seed, epsilon=args.epsilon, alpha=args.alpha, xi=args.xi,
            power_iterations=args.power_iterations, entmin=args.entmin, adv_norm=args.adv_norm,
            rampup_steps=args.rampup_steps, learning_rate=args.learning_rate,
            decay_fraction=args.decay_fraction, width=args.width, augment=args.augment,
            data_dir=args.data_dir, jit_compile=jit, export=args.export,
            metrics_json=args.metrics_json, verbose=0 if args.quiet else 1,
        )
    except (ConfigError, DatasetUnavailableError) as e:
        print(f"kzoo: error: {e}", file=sys.stderr)
        return 2
    summary = {k: result[k] for k in ("method", "dataset", "labels", "seed", "backend", "model",
                                      "test_error", "test_nll", "train_steps", "train_seconds",
                                      "steps_per_second")}
    print(json.dumps(summary))
    print(f"{result['method']} on {result['dataset']} with {result['labels']} labels: "
          f"test error {100 * result['test_error']:.2f}%, NLL {result['test_nll']:.3f}, "
          f"{result['train_steps']} steps in {result['train_seconds']:.1f} s"
          + (f"; exported to {result['export']}" if result.get("export") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
