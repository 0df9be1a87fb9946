"""Manifold Mixup paper recipe (Verma et al., 2018): Table 1 (supervised) and Table 2 (semi-supervised).

    python recipes/manifold_mixup.py                                   # digits, 100 labels, MLP, CPU minutes
    python recipes/manifold_mixup.py --table 2                         # the same, semi-supervised (SSL) mixup
    python recipes/manifold_mixup.py --table 1 --dataset cifar10 --method manifold-mixup --full
    python recipes/manifold_mixup.py --table 1 --dataset cifar100 --method input-mixup --full
    python recipes/manifold_mixup.py --table 2 --dataset cifar10 --method manifold-mixup --full   # 4,000 labels
    python recipes/manifold_mixup.py --table 2 --dataset svhn --method input-mixup --full        # 1,000 labels

``--full`` uses the paper's settings. Table 1 (Sec. 5.1, Appendix C): PreActResNet-18
on all 50,000 CIFAR-10 / CIFAR-100 training images; SGD, momentum 0.9, weight
decay 1e-4, learning rate 0.1 multiplied by 0.1 at epochs 400 and 800 of 1,200;
input mixup α = 1; Manifold Mixup α = 2 at a layer drawn per batch from {input,
block1, block2} ("all layers": α = 6 and block3 too); batch size 100 (not in
the paper: the authors' released command). Table 2 (Appendix E): WRN-28-2,
4,000 CIFAR-10 / 1,000 SVHN labels; SGD with Nesterov momentum 0.9 (Nesterov:
the authors' released commands), L2 5e-4, learning rate 0.1 multiplied by 0.1 at
50%, 75% and 87.5% of training (CIFAR-10: 1,000 epochs of 450 updates; SVHN: 200
epochs of 660 updates); batches of 100 labeled + 100 unlabeled; labeled α = 0.1,
unlabeled α = 2; consistency weight 1 (CIFAR-10) / 2 (SVHN), sigmoid ramp-up
over the first 40% of the updates. Augmentation (the authors' data loaders): 2-pixel
translation, plus horizontal flips on CIFAR.

Not reproduced (see recipes/README.md): ZCA whitening of CIFAR-10 in Table 2
and per-channel input normalization (kzoo feeds [0, 1] pixels); the L1 term of
Appendix E; test error at the best validation epoch (kzoo scores the final
model); kzoo's consistency term is the MSE of class probabilities (the weights 1
and 2 are the paper's, for its own MSE). Batch norm of the mixed pass: kzoo's
``--mix-batch-norm clean`` by default; ``paper`` is what the authors' code does (one pass over the mixed
batch, supervised rows only).
Data must be prepared in a local TFDS folder (see ``kzoo datasets``).
"""

import argparse
import json
import math
import sys

from _common import add_run_options, jit_compile, use_backend

# The paper's test error (%) and test NLL (nats; None where the paper gives none), not kzoo's.
# Table 1: PreActResNet-18. CIFAR-100 input mixup is Zhang et al.'s number as Table 1b cites it.
# Table 2: WRN-28-2, mean ± std over 5 trials; the supervised rows are Oliver et al.'s (2018) as cited.
PAPER = {
    (1, "cifar10"): {"supervised": (5.12, 0.2646), "input-mixup": (3.50, 0.1945), "manifold-mixup": (2.89, 0.1407)},
    (1, "cifar100"): {"supervised": (24.68, 1.284), "input-mixup": (21.10, None), "manifold-mixup": (21.05, 0.913)},
    (2, "cifar10"): {"supervised": (20.26, None), "input-mixup": (10.71, None), "manifold-mixup": (10.26, None)},
    (2, "svhn"): {"supervised": (12.83, None), "input-mixup": (6.54, None), "manifold-mixup": (5.70, None)},
}
PAPER_STD = {
    (2, "cifar10"): {"supervised": 0.38, "input-mixup": 0.44, "manifold-mixup": 0.32},
    (2, "svhn"): {"supervised": 0.47, "input-mixup": 0.62, "manifold-mixup": 0.48},
}
PAPER_NOTE = {
    (1, "manifold-mixup-all"): "the paper's all-layers row (2.38%, NLL 0.0957, α = 6) is PreActResNet-152, "
                               "not PreActResNet-18",
}


def _epochs_to_steps(epochs, examples, batch):
    return epochs * math.ceil(examples / batch)


_SGD = dict(optimizer="sgd", learning_rate=0.1, momentum=0.9)
FULL = {
    # Table 1: all training images labeled, 1,200 epochs of 500 updates, x0.1 at epochs 400 and 800
    (1, "cifar10"): dict(model="preact_resnet18", labels=50_000, batch_labeled=100, batch_unlabeled=100,
                         steps=_epochs_to_steps(1200, 50_000, 100), lr_drops=(1 / 3, 2 / 3), nesterov=False,
                         weight_decay=1e-4, augment="translate,flip", **_SGD),
    (1, "cifar100"): dict(model="preact_resnet18", labels=50_000, batch_labeled=100, batch_unlabeled=100,
                          steps=_epochs_to_steps(1200, 50_000, 100), lr_drops=(1 / 3, 2 / 3), nesterov=False,
                          weight_decay=1e-4, augment="translate,flip", **_SGD),
    # Table 2: epochs over the 45,000 / 65,932 unlabeled training images (the paper's train splits)
    (2, "cifar10"): dict(model="wide_resnet28_2", labels=4000, batch_labeled=100, batch_unlabeled=100,
                         steps=_epochs_to_steps(1000, 45_000, 100), lr_drops=(0.5, 0.75, 0.875), nesterov=True,
                         weight_decay=5e-4, augment="translate,flip", consistency=1.0, **_SGD),
    (2, "svhn"): dict(model="wide_resnet28_2", labels=1000, batch_labeled=100, batch_unlabeled=100,
                      steps=_epochs_to_steps(200, 65_932, 100), lr_drops=(0.5, 0.75, 0.875), nesterov=True,
                      weight_decay=5e-4, augment="translate", consistency=2.0, **_SGD),
}
# The offline default: what benchmarks/run.py's ACCURACY["mixup"] rows run (kzoo's defaults otherwise).
SMALL = dict(model="mlp", labels=100, steps=1000)

TABLE_DATASETS = {1: ("cifar10", "cifar100"), 2: ("cifar10", "svhn")}
TABLE_METHODS = {1: ("supervised", "input-mixup", "manifold-mixup", "manifold-mixup-all"),
                 2: ("supervised", "input-mixup", "manifold-mixup")}
PAPER_LAYERS = "input,block1,block2"  # Appendices C and E: the input, the 1st and the 2nd residual stage


def method_settings(table, method, full, dataset=None):
    """``(kzoo method name, its hyperparameters)`` of a table row; the paper's values with ``full``."""
    if method == "supervised":
        return "supervised", {}
    if table == 1:
        hp = {"input-mixup": dict(mixup_alpha=1.0),
              "manifold-mixup": dict(mixup_alpha=2.0, mix_layers=PAPER_LAYERS),
              "manifold-mixup-all": dict(mixup_alpha=6.0, mix_layers=PAPER_LAYERS + ",block3")}[method]
        return ("mixup" if method == "input-mixup" else "manifold-mixup"), hp
    hp = dict(mixup_alpha=0.1, mixup_unlabeled_alpha=2.0, mixup_rampup_fraction=0.4)
    if full:
        hp["mixup_consistency"] = FULL[(2, dataset)]["consistency"]
    if method == "manifold-mixup":
        hp["mix_layers"] = PAPER_LAYERS
    return ("mixup-ssl" if method == "input-mixup" else "manifold-mixup-ssl"), hp


def paper_line(table, dataset, method, full):
    """What the paper reports for this setting, as one line (or why there is nothing to compare)."""
    if not full:
        return "no number for this setting (the paper's are --full on CIFAR-10/100 and SVHN)"
    note = PAPER_NOTE.get((table, method))
    row = PAPER.get((table, dataset), {}).get(method)
    if row is None:
        return f"no number for this setting ({note})" if note else "no number for this setting"
    err, nll = row
    std = PAPER_STD.get((table, dataset), {}).get(method)
    arch = "PreActResNet-18" if table == 1 else "WRN-28-2"
    text = f"{err:.2f}%" + (f" ± {std:.2f}" if std is not None else "")
    if nll is not None:
        text += f", NLL {nll:.4f}"
    return f"{text} (Table {table}, {dataset}, {arch}, the paper's setting)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", type=int, default=1, choices=(1, 2),
                   help="1: supervised (PreActResNet-18), 2: semi-supervised (WRN-28-2)")
    p.add_argument("--dataset", default="digits", choices=("digits", "cifar10", "cifar100", "svhn"))
    p.add_argument("--method", default="manifold-mixup", choices=TABLE_METHODS[1],
                   help="a row of the table (manifold-mixup-all: Table 1's all-layers variant, α = 6)")
    p.add_argument("--full", action="store_true", help="the paper's model, schedule, batch sizes and labels")
    p.add_argument("--mix-batch-norm", choices=("clean", "mixed", "paper"), default="clean",
                   help="batch-norm statistics of the mixed pass (kzoo.mixup; the authors' code: paper)")
    p.add_argument("--steps", type=int, default=None, help="override the number of updates")
    p.add_argument("--labels", type=int, default=None, help="override the number of labels")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier of the ResNets (paper: 1)")
    add_run_options(p)
    args = p.parse_args(argv)
    if args.full and args.dataset == "digits":
        p.error("--full applies to cifar10, cifar100 (Table 1) and cifar10, svhn (Table 2); "
                "digits is the offline default")
    if args.dataset != "digits" and args.dataset not in TABLE_DATASETS[args.table]:
        p.error(f"Table {args.table} is on {' and '.join(TABLE_DATASETS[args.table])}, not {args.dataset}")
    if args.method not in TABLE_METHODS[args.table]:
        p.error(f"--method {args.method} is a Table 1 row; Table {args.table}'s are "
                f"{', '.join(TABLE_METHODS[args.table])}")
    for key in ("steps", "labels"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            p.error(f"--{key} must be >= 1")
    if args.width <= 0:
        p.error("--width must be > 0")
    use_backend(args)
    from kzoo.experiment import run, write_json_atomic

    cfg = dict(FULL[(args.table, args.dataset)]) if args.full else dict(SMALL)
    cfg.pop("consistency", None)
    for key in ("steps", "labels"):
        if getattr(args, key):
            cfg[key] = getattr(args, key)
    method, hp = method_settings(args.table, args.method, args.full, args.dataset)
    if method != "supervised":
        hp["mix_batch_norm"] = args.mix_batch_norm
    jit = jit_compile(args)
    result = run(method=method, dataset=args.dataset, seed=args.seed, width=args.width, jit_compile=jit,
                 data_dir=args.data_dir, metrics_json=args.metrics_json, checkpoint_dir=args.checkpoint_dir,
                 **cfg, **hp)
    paper = paper_line(args.table, args.dataset, args.method, args.full)
    result["recipe"] = {"table": args.table, "row": args.method, "full": args.full, "paper": paper}
    if args.metrics_json:
        write_json_atomic(args.metrics_json, result)
    print(json.dumps({k: result[k] for k in ("method", "dataset", "labels", "test_error", "test_nll",
                                             "train_steps")}))
    print(f"kzoo: {100 * result['test_error']:.2f}% test error, NLL {result['test_nll']:.4f}; paper: {paper}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
