"""LVAT paper recipe (Osada et al.): pretrain a transformer, then train a classifier with LVAT.

    python recipes/lvat.py                                   # digits, Glow, 100 labels: CPU minutes
    python recipes/lvat.py --transformer vae                 # LVAT-VAE
    python recipes/lvat.py --dataset svhn --full             # the paper's SSL setting (Sec. 5): Conv-Large,
                                                             # 1,000 labels, 48,000 updates, Glow L=3 K=22
    python recipes/lvat.py --dataset svhn --full --width 0.125 --glow-depth 2   # the same, shrunk (smoke test)

The transformer is pretrained once (``kzoo pretrain``) and reused: a second run
with the same ``--save`` path skips pretraining. ``--full`` uses the paper's
settings (Sec. 5.2): ε_lvat = 1.0 for Glow, 1.5 (SVHN) / 1.0 (CIFAR-10) for the
VAE; batches 32/128; Adam 1e-3 decayed linearly over the last 16,000 updates;
VAE latent 128 (Table 2), Glow K = 22, L = 3. Its data (SVHN, CIFAR-10) must be
prepared in a local TFDS folder (see ``kzoo datasets``); its pretraining and
training take GPU hours and have NOT been run here. LVAT needs the TensorFlow
backend (TensorFlow Probability).
"""

import argparse
import json
import os
import sys

from _common import add_run_options, checkpoint_subdir as _sub

PAPER = {  # test error (%), the paper's Table 3 (SSL, no augmentation)
    ("svhn", "glow"): 4.20, ("svhn", "vae"): 4.44, ("cifar10", "glow"): 9.94, ("cifar10", "vae"): 13.90,
}
FULL = {
    "svhn": dict(model="conv_large", labels=1000, batch_labeled=32, batch_unlabeled=128, steps=48_000,
                 decay_fraction=16_000 / 48_000),
    "cifar10": dict(model="conv_large", labels=4000, batch_labeled=32, batch_unlabeled=128, steps=200_000,
                    decay_fraction=16_000 / 200_000),
}
FULL_EPSILON = {("svhn", "vae"): 1.5, ("cifar10", "vae"): 1.0, ("svhn", "glow"): 1.0, ("cifar10", "glow"): 1.0}
FULL_PRETRAIN = {"vae": {"latent_dim": 128, "channels": 128}, "glow": {"levels": 3, "depth": 22}}
FULL_PRETRAIN_STEPS = {"vae": 300 * 73_257 // 256, "glow": 3200}
# what --width scales: the VAE's first-conv channels (paper: 128) and Glow's coupling channels (the paper
# gives none; kzoo's default 64)
WIDTH_SCALED = {"vae": ("channels", 128), "glow": ("hidden_channels", 64)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", choices=("digits", "svhn", "cifar10"))
    p.add_argument("--transformer", default="glow", choices=("glow", "vae"))
    p.add_argument("--full", action="store_true", help="the paper's models, schedule and label count")
    p.add_argument("--labels", type=int, default=None)
    p.add_argument("--epsilon", type=float, default=None, help="ε_lvat in latent units")
    p.add_argument("--steps", type=int, default=None, help="classifier updates")
    p.add_argument("--pretrain-steps", type=int, default=None)
    p.add_argument("--save", default=None, help="where the transformer is saved (default saved_models/KIND_DATASET)")
    p.add_argument("--width", type=float, default=None,
                   help="with --full: channel multiplier of the classifier (Conv-Large) and of the transformer's "
                        "channels (VAE 128, Glow coupling 64; paper: 1), to shrink the networks for smoke tests")
    p.add_argument("--glow-depth", type=int, default=None,
                   help="with --full: Glow steps per level K (paper: 22), to shrink Glow for smoke tests")
    add_run_options(p, jit=False, backend=False)  # LVAT: TensorFlow backend (TFP)
    args = p.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from kzoo.experiment import pretrain, run

    if args.full and args.dataset == "digits":
        p.error("--full applies to svhn and cifar10 (digits is the offline default)")
    for flag, value in (("--width", args.width), ("--glow-depth", args.glow_depth)):
        if value is not None and not args.full:
            p.error(f"{flag} shrinks the --full networks; the digits default has its own small ones")
        if value is not None and not value > 0:
            p.error(f"{flag} must be > 0, got {value}")
    if args.glow_depth is not None and args.transformer != "glow":
        p.error("--glow-depth applies to --transformer glow")
    kind, key = args.transformer, (args.dataset, args.transformer)
    save = args.save or os.path.join("saved_models", f"{kind}_{args.dataset}")
    if not os.path.isfile(save if save.endswith(".keras") else save + ".keras"):
        steps = args.pretrain_steps or (FULL_PRETRAIN_STEPS[kind] if args.full else 2000)
        hp = dict(FULL_PRETRAIN[kind]) if args.full else None
        if args.width is not None:
            name, base = WIDTH_SCALED[kind]
            hp[name] = max(1, int(round(base * args.width)))
        if args.glow_depth is not None:
            hp["depth"] = args.glow_depth
        info = pretrain(kind, dataset=args.dataset, steps=steps, seed=args.seed, data_dir=args.data_dir,
                        export=save, hyperparameters=hp, learning_rate=1e-4 if args.full and kind == "glow" else None,
                        checkpoint_dir=_sub(args.checkpoint_dir, "pretrain"))
        print(json.dumps({k: v for k, v in info.items() if "bits" in k or "error" in k}))
    cfg = dict(FULL[args.dataset]) if args.full else dict(model="mlp", labels=100, steps=1000)
    if args.labels:
        cfg["labels"] = args.labels
    if args.steps:
        cfg["steps"] = args.steps
    if args.width is not None:
        cfg["width"] = args.width
    epsilon = args.epsilon or (FULL_EPSILON[key] if args.full else 1.0)
    result = run(method=f"lvat-{kind}", dataset=args.dataset, seed=args.seed, transformer=save, epsilon=epsilon,
                 data_dir=args.data_dir, metrics_json=args.metrics_json,
                 checkpoint_dir=_sub(args.checkpoint_dir, "train"), **cfg)
    paper = PAPER.get(key) if args.full else None
    print(json.dumps({k: result[k] for k in ("method", "dataset", "labels", "test_error", "train_steps")}))
    print(f"kzoo: {100 * result['test_error']:.2f}% test error; paper: "
          + (f"{paper:.2f}% ({args.dataset}, the paper's setting)" if paper else "no number for this setting"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
