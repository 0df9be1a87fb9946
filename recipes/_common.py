"""What the paper recipes share: the options of a run and how they reach kzoo."""

import os

JIT = {"auto": "auto", "true": True, "false": False}


def add_run_options(p, jit=True, backend=True):
    """``--jit-compile``, ``--seed``, ``--backend``, ``--data-dir``, ``--metrics-json``, ``--checkpoint-dir``."""
    if jit:
        p.add_argument("--jit-compile", choices=tuple(JIT), default="auto")
    p.add_argument("--seed", type=int, default=0)
    if backend:
        p.add_argument("--backend", choices=("tensorflow", "jax"), default=None)
    p.add_argument("--data-dir", default=None, help="local TFDS folder (or its kzoo_npz/ export: kzoo datasets)")
    p.add_argument("--metrics-json", default=None, help="write the run's metrics and hyperparameters here")
    p.add_argument("--checkpoint-dir", default=None,
                   help="checkpoint the run here and resume it from there when the same command runs again")


def use_backend(args):
    """Select ``--backend`` before Keras is imported."""
    if getattr(args, "backend", None):
        os.environ["KERAS_BACKEND"] = args.backend


def jit_compile(args):
    return JIT[args.jit_compile]


def checkpoint_subdir(checkpoint_dir, stage):
    """``checkpoint_dir/stage`` ("pretrain", "train"), so that each stage of a recipe resumes its own run."""
    return None if checkpoint_dir is None else os.path.join(checkpoint_dir, stage)
