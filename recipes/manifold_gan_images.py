"""Manifold regularization with GANs (paper 000, Lecouat et al.) at paper scale: CIFAR-10 and SVHN.

    python recipes/manifold_gan.py --dataset cifar10 --full --table 2                 # coupled, 4,000 labels
    python recipes/manifold_gan.py --dataset cifar10 --full --table 2 --regularizer none   # Improved GAN (ours)
    python recipes/manifold_gan.py --dataset cifar10 --full --table 1 --labels 1000   # + translation and flips
    python recipes/manifold_gan.py --dataset svhn --full --table 3                    # coupled, 1,000 labels
    python recipes/manifold_gan.py --dataset cifar10 --full --table 5                 # decoupled: DCGAN, then CNN

(``recipes/manifold_gan_images.py`` takes the same arguments; ``manifold_gan.py`` forwards
``--dataset cifar10|svhn`` here.)

Coupled (Tables 1-3): ``kzoo train gan-ssl``, Salimans et al.'s feature-matching GAN whose
K+1-way discriminator is the classifier, + γ·Ω_manifold (``--regularizer manifold``, the
default), nothing (``none``: the paper's "Improved GAN (ours)" row), the ambient regularizer
(``ambient``) or the unnormalized tangent (``unnormalized``; the paper gives no ε for it, so
``--epsilon`` is required). Generator Table A3 (uniform latent
100, 4×4×512 -> 5×5 transposed convs 256, 128, 3, weight-normalized output), discriminator Table A4
(weight norm, lReLU 0.2, dropout; Conv-Large 96/192 on CIFAR-10, Conv-Small 64/128 on SVHN),
Table A5: γ = 1e-3, ε = 20, η = 1, Adam(3e-4, β1 = 0.5), batches of 25 (CIFAR-10) / 50 (SVHN)
labeled + as many unlabeled and generated examples, 1,400 epochs with linear decay to 0 over the
last 200 (CIFAR-10) / 400 epochs without decay (SVHN); an epoch is one pass over the 50,000 /
73,257 unlabeled training images (as in Salimans et al.'s code), i.e. 2,800,000 / 586,400 updates.
The classifier evaluated is the exponential moving average of the discriminator's weights.

Decoupled (Table 5): a DCGAN (Table A6; Gaussian latent 100) is pretrained on the CIFAR-10
training images with ``kzoo.experiment.pretrain("dcgan")`` and saved atomically (``--save``;
reused when the file exists), then the CNN of Table A7 (``conv_manifold``) is trained on the
labeled examples with ``kzoo train manifold --generator`` (``--regularizer none``: the supervised
baseline). Table A8: γ = 1e-4, ε = 20, η = 1, Adam(3e-4, β1 = 0.9), batches of 100, 200 epochs,
no decay; an epoch is one pass over the labeled examples (the classifier sees no unlabeled image).

ε: the paper's images are in [-1, 1]; kzoo's are in [0, 1], so the paper's ε = 20 is ε = 10
here (the tangent r̄ has unit norm in input space). What this recipe does NOT match (and why) is
listed in ``recipes/README.md``. Data: a local TFDS folder (``kzoo datasets``, ``--data-dir``).
These runs take GPU hours to days and have NOT been run here; the numbers printed beside kzoo's
are the paper's.
"""

import argparse
import json
import math
import os
import sys

from _common import add_run_options, checkpoint_subdir, jit_compile, use_backend

TABLES = {1: "cifar10", 2: "cifar10", 3: "svhn", 5: "cifar10"}
DEFAULT_TABLE = {"cifar10": 2, "svhn": 3}
REGULARIZERS = ("manifold", "none", "ambient", "unnormalized")
COUPLED_TABLES = (1, 2, 3)

# The paper's test error (%) as (mean, std or None) -- NOT kzoo's numbers. (table, labels) -> {regularizer: ...}.
# Table 1: CIFAR-10 with 4×4 translations and flips (the paper has no unregularized GAN row with augmentation);
# Tables 2 (CIFAR-10) and 3 (SVHN): no augmentation; Table 5: decoupled CNN + DCGAN (IS 6.68), no augmentation.
PAPER = {
    (1, 1000): {"manifold": (13.71, 0.23)},
    (1, 2000): {"manifold": (12.99, 0.39)},
    (1, 4000): {"manifold": (11.79, 0.25)},
    (2, 1000): {"none": (17.50, 0.34), "ambient": (16.98, 0.36), "unnormalized": (18.09, None),
                "manifold": (16.37, 0.42)},
    (2, 2000): {"none": (16.80, 0.07), "ambient": (15.99, 0.14), "unnormalized": (15.8, None),
                "manifold": (15.25, 0.35)},
    (2, 4000): {"none": (15.5, 0.35), "ambient": (14.75, 0.37), "unnormalized": (14.40, 0.21),
                "manifold": (14.34, 0.17)},
    (3, 500): {"none": (6.13, 0.41), "manifold": (5.67, 0.11)},
    (3, 1000): {"none": (4.9, 0.10), "manifold": (4.63, 0.11)},
    (5, 1000): {"none": (41.65, 3.12), "manifold": (38.76, 1.81)},
    (5, 2000): {"none": (32.46, 0.52), "manifold": (29.44, 0.45)},
    (5, 4000): {"none": (25.01, 1.29), "manifold": (23.5, 1.20)},
}
PAPER_ROWS = {  # how the paper names each row
    "coupled": {"manifold": "Manifold (ours)", "none": "Improved GAN (ours)", "ambient": "Ambient (ours)",
                "unnormalized": "Manifold reg. unnormalized (ours)"},
    "decoupled": {"manifold": "+ manifold (IS: 6.68)", "none": "Supervised (ours)"},
}
DEFAULT_LABELS = {1: 4000, 2: 4000, 3: 1000, 5: 4000}

TRAIN_SIZE = {"cifar10": 50_000, "svhn": 73_257}
PAPER_EPSILON = 20.0  # Tables A5 and A8, for images in [-1, 1]
EPSILON = PAPER_EPSILON / 2  # the same step for kzoo's images in [0, 1]

# Table A5 (coupled; Tables A3/A4 networks).
COUPLED = {
    "cifar10": dict(batch=25, epochs=1400, decay_epochs=200, gan_discriminator="conv_large"),
    "svhn": dict(batch=50, epochs=400, decay_epochs=0, gan_discriminator="conv_small"),
}
COUPLED_HP = dict(manifold_gamma=1e-3, eta=1.0, gan_arch="conv", latent_dim=100, weight_norm=True)
COUPLED_LR = 3e-4  # Adam β1 = 0.5 (kzoo's gan-ssl optimizers)

# Table A8 (decoupled CNN, Table A7) and the DCGAN of Table A6.
DECOUPLED = dict(model="conv_manifold", batch=100, epochs=200, learning_rate=3e-4, gamma=1e-4, eta=1.0)
# The paper gives no DCGAN training schedule; Radford et al.'s Adam(2e-4, β1 = 0.5), batches of 64,
# 25 epochs of the 50,000 CIFAR-10 training images (about 20,000 updates) is ours.
DCGAN = dict(steps=20_000, batch_size=64, learning_rate=2e-4, hyperparameters=dict(gan_arch="conv", latent_dim=100))


def coupled_config(dataset, labels, regularizer, augment):
    """run() keyword arguments of the coupled experiment (Tables 1-3)."""
    c = COUPLED[dataset]
    per_epoch = math.ceil(TRAIN_SIZE[dataset] / c["batch"])
    hp = dict(COUPLED_HP, gan_discriminator=c["gan_discriminator"], epsilon=EPSILON)
    if regularizer == "none":
        hp["manifold_gamma"] = 0.0
    elif regularizer == "ambient":
        hp.update(manifold_gamma=0.0, ambient_gamma=COUPLED_HP["manifold_gamma"])
    elif regularizer == "unnormalized":
        hp["normalize"] = False
    return dict(method="gan-ssl", dataset=dataset, labels=labels, steps=c["epochs"] * per_epoch,
                batch_labeled=c["batch"], batch_unlabeled=c["batch"], learning_rate=COUPLED_LR,
                decay_fraction=c["decay_epochs"] / c["epochs"], augment="translate,flip" if augment else None,
                hyperparameters=hp)


def decoupled_config(labels, regularizer, generator):
    """run() keyword arguments of the decoupled experiment (Table 5)."""
    d = DECOUPLED
    common = dict(dataset="cifar10", labels=labels, model=d["model"], steps=d["epochs"] * math.ceil(labels / d["batch"]),
                  batch_labeled=d["batch"], batch_unlabeled=d["batch"], learning_rate=d["learning_rate"],
                  decay_fraction=0.0)
    if regularizer == "none":
        return dict(common, method="supervised", hyperparameters={})
    return dict(common, method="manifold",
                hyperparameters=dict(generator=generator, gamma=d["gamma"], epsilon=EPSILON, eta=d["eta"]))


def default_save(width):
    suffix = "" if width == 1.0 else f"_w{width:g}"
    return os.path.join("saved_models", f"dcgan_cifar10{suffix}.keras")


def pretrain_dcgan(save, width, steps, seed, data_dir, verbose=1, checkpoint_dir=None):
    """Pretrain the Table A6 DCGAN once (saved atomically by kzoo.experiment.pretrain); reuse it if it exists."""
    from kzoo import experiment

    if os.path.isfile(save):
        print(f"reusing the DCGAN generator {save} (delete it to pretrain again)")
        return None
    hp = dict(DCGAN["hyperparameters"], gan_width=width)
    info = experiment.pretrain("dcgan", dataset="cifar10", steps=steps or DCGAN["steps"],
                               batch_size=DCGAN["batch_size"], learning_rate=DCGAN["learning_rate"], seed=seed,
                               data_dir=data_dir, export=save, hyperparameters=hp, verbose=verbose,
                               checkpoint_dir=checkpoint_dir)
    print(json.dumps({k: info[k] for k in ("model", "dataset", "steps", "train_seconds", "export", "mlcn")
                      if k in info}))
    return info


def _paper_rows(table, labels, regularizer):
    kind = "decoupled" if table == 5 else "coupled"
    numbers = PAPER[(table, labels)]
    parts = []
    for r in [regularizer] + [r for r in ("none", "manifold") if r != regularizer]:
        if r in numbers:
            mean, std = numbers[r]
            parts.append(f"{PAPER_ROWS[kind][r]} {mean:.2f}" + (f" ± {std:.2f}%" if std is not None else "%"))
        elif r == regularizer:
            parts.append(f"{PAPER_ROWS[kind][r]}: no number in the paper")
    return parts


def paper_line(table, labels, regularizer):
    """The paper's error for this run's row and its baseline row (at the paper's label counts if not this one)."""
    if (table, labels) in PAPER:
        return f"paper (Table {table}, {TABLES[table]}, {labels} labels): " + \
            "; ".join(_paper_rows(table, labels, regularizer))
    counts = sorted(n for t, n in PAPER if t == table)
    return (f"paper (Table {table}, {TABLES[table]}): no number for {labels} labels; "
            + "; ".join(f"with {n} labels: " + ", ".join(_paper_rows(table, n, regularizer)) for n in counts))


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=("cifar10", "svhn"))
    p.add_argument("--full", action="store_true", help="the paper's networks, schedule and hyperparameters "
                   "(required: CIFAR-10 and SVHN have no small offline setting)")
    p.add_argument("--table", type=int, choices=sorted(TABLES), default=None,
                   help="1 (CIFAR-10, augmented), 2 (CIFAR-10), 3 (SVHN): coupled; 5 (CIFAR-10): decoupled "
                        "(default: 2 for cifar10, 3 for svhn)")
    p.add_argument("--regularizer", choices=REGULARIZERS, default="manifold",
                   help="manifold (default); none (the paper's unregularized baseline row); ambient, "
                        "unnormalized (coupled only)")
    p.add_argument("--labels", type=int, default=None, help="labeled examples (paper: 1000/2000/4000 on "
                   "CIFAR-10, 500/1000 on SVHN; default 4000 / 1000)")
    p.add_argument("--steps", type=int, default=None, help="override the number of updates")
    p.add_argument("--pretrain-steps", type=int, default=None, help=f"Table 5: DCGAN updates (default "
                   f"{DCGAN['steps']})")
    p.add_argument("--save", default=None, help="Table 5: the DCGAN generator's .keras file (default "
                   "saved_models/dcgan_cifar10.keras; reused when it exists)")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier of every network (paper: 1)")
    p.add_argument("--gamma", type=float, default=None, help="override γ of the regularizer")
    p.add_argument("--epsilon", type=float, default=None, help=f"override ε (input units of images in [0, 1]; "
                   f"default {EPSILON:g}, the paper's {PAPER_EPSILON:g} in [-1, 1])")
    add_run_options(p)
    return p


def check_args(p, args):
    """Every invalid combination is an argparse error before any work."""
    if not args.full:
        p.error(f"{args.dataset} runs need --full (the paper's setting); the small offline defaults of "
                "recipes/manifold_gan.py are circles, moons and digits")
    table = args.table if args.table is not None else DEFAULT_TABLE[args.dataset]
    if TABLES[table] != args.dataset:
        p.error(f"Table {table} is a {TABLES[table]} experiment; use --dataset {TABLES[table]} "
                f"(or --table {DEFAULT_TABLE[args.dataset]} for {args.dataset})")
    if table == 5 and args.regularizer in ("ambient", "unnormalized"):
        p.error(f"--regularizer {args.regularizer} is a coupled (Tables 1-3) variant; Table 5 takes manifold or none")
    if table != 5:
        for flag, value in (("--pretrain-steps", args.pretrain_steps), ("--save", args.save)):
            if value is not None:
                p.error(f"{flag} applies to --table 5 (the decoupled experiment's DCGAN)")
    if table == 5 and args.regularizer == "none" and args.pretrain_steps is not None:
        p.error("--pretrain-steps: the supervised baseline (--regularizer none) uses no DCGAN")
    if args.regularizer == "unnormalized" and args.epsilon is None:
        p.error("--regularizer unnormalized needs --epsilon: the paper gives no ε for the unnormalized tangent "
                "(ε multiplies r = g(z + ηδ) - g(z) itself; ε = 1 evaluates f at g(z + ηδ))")
    for flag, value in (("--gamma", args.gamma), ("--epsilon", args.epsilon)):
        if args.regularizer == "none" and value is not None:
            p.error(f"{flag}: --regularizer none trains without a regularizer")
    for flag, value in (("--labels", args.labels), ("--steps", args.steps), ("--pretrain-steps", args.pretrain_steps)):
        if value is not None and value < 1:
            p.error(f"{flag} must be >= 1, got {value}")
    for flag, value in (("--width", args.width), ("--gamma", args.gamma), ("--epsilon", args.epsilon)):
        if value is not None and not value > 0:
            p.error(f"{flag} must be > 0, got {value}")
    if args.save is not None and not args.save.endswith(".keras"):
        args.save += ".keras"
    return table


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    table = check_args(p, args)
    use_backend(args)
    from kzoo import experiment

    labels = args.labels or DEFAULT_LABELS[table]
    if table == 5:
        save = args.save or default_save(args.width)
        cfg = decoupled_config(labels, args.regularizer, save)
        cfg["width"] = args.width
        hp_gamma = "gamma"
    else:
        cfg = coupled_config(args.dataset, labels, args.regularizer, augment=table == 1)
        cfg["hyperparameters"]["gan_width"] = args.width
        hp_gamma = "ambient_gamma" if args.regularizer == "ambient" else "manifold_gamma"
    hp = cfg["hyperparameters"]
    if args.gamma is not None:
        hp[hp_gamma] = args.gamma
    if args.epsilon is not None:
        hp["epsilon"] = args.epsilon
    if args.steps:
        cfg["steps"] = args.steps
    try:  # the run's own checks before the DCGAN's pretraining (hours on a GPU)
        experiment.resolve_hyperparameters(cfg["method"], hp)
        experiment._check_writable_target(args.metrics_json, "metrics file")
    except ValueError as e:
        p.error(str(e))
    if table == 5 and args.regularizer == "manifold":
        pretrain_dcgan(save, args.width, args.pretrain_steps, args.seed, args.data_dir,
                       checkpoint_dir=checkpoint_subdir(args.checkpoint_dir, "pretrain"))
    jit = jit_compile(args)
    result = experiment.run(seed=args.seed, data_dir=args.data_dir, metrics_json=args.metrics_json,
                            jit_compile=jit, checkpoint_dir=checkpoint_subdir(args.checkpoint_dir, "train"), **cfg)
    print(json.dumps({k: result[k] for k in ("method", "dataset", "labels", "test_error", "train_steps")}))
    print(f"kzoo: {100 * result['test_error']:.2f}% test error ({args.regularizer}); "
          + paper_line(table, labels, args.regularizer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
