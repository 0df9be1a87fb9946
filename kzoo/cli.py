"""Command line: ``kzoo train|tune|compare|methods|datasets|pretrain|evaluate|bench`` (also ``python -m kzoo``).

The backend is chosen before Keras is imported, so ``--backend jax`` works on a
machine without TensorFlow.
"""

import argparse
import json
import os
import sys

from kzoo.checks import check_dataset, check_positive
from kzoo import extras
from kzoo.errors import COMMAND_ERRORS, EXIT_INTERRUPTED, ConfigError, KzooError, fail
from kzoo.io import check_writable_target, write_json_atomic


def _given_hyperparameters(args):
    from kzoo.methods.registry import given_hyperparameters  # imported when used: `kzoo --version` needs nothing

    return given_hyperparameters(args)


def _hyperparameter_flags(group, hyperparameters):
    from kzoo.methods.registry import hyperparameter_flags

    return hyperparameter_flags(group, hyperparameters)


_BACKENDS = extras.BACKENDS  # kzoo.backend.SUPPORTED_BACKENDS, known here before Keras is imported
_KERAS_COMMANDS = ("train", "tune", "compare", "pretrain", "evaluate")
_VERBOSE_HELP = "show TensorFlow's C++/absl log lines (hidden unless TF_CPP_MIN_LOG_LEVEL is set)"


def _check_extras(args):
    """MissingExtraError naming the extra for what ``args`` asks that is not installed (before any work)."""
    backend = os.environ.get("KERAS_BACKEND")
    if args.command == "tune":
        extras.require("keras_tuner", "tune", "kzoo tune")
    if args.command in ("train", "tune") and args.export is not None:
        extras.require_export_format(args.export_format, backend)
    method = getattr(args, "method", None) or (getattr(args, "model", None) if args.command == "pretrain" else None)
    if isinstance(method, str) and method.split("-")[0] == "lvat" or args.command == "pretrain" and \
            method in ("vae", "glow"):
        extras.require("tensorflow_probability", "lvat", f"{method} (latent VAT)")


def _parser():
    from kzoo.data import DATASETS  # numpy-only import
    from kzoo.methods import METHODS, PRETRAINERS, all_hyperparameters

    p = argparse.ArgumentParser(prog="kzoo", description="Regularized semi-supervised training in Keras 3.")
    p.add_argument("--version", "-V", action="store_true", help="print kzoo's version and exit")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("bench", help="step time and peak memory per method, backend, jit and precision",
                   add_help=False)
    m = sub.add_parser("methods", help="list the training methods")
    m.add_argument("--verbose", "-v", action="store_true", help="also list each method's hyperparameters")
    d = sub.add_parser("datasets", help="list the datasets and whether each is available offline")
    d.add_argument("--data-dir", default=None, help="TFDS data folder (default: $KZOO_DATA_DIR, $TFDS_DATA_DIR, ~/tensorflow_datasets)")
    d.add_argument("--export", default=None, metavar="NAME",
                   help="write the prepared TFDS set NAME as DATA_DIR/kzoo_npz/NAME.npz, which kzoo then reads "
                        "without TensorFlow (e.g. on a JAX-only GPU machine)")

    t = sub.add_parser("train", help="train a classifier with a regularizer, evaluate it, export it")
    t.add_argument("method", help=f"one of: {', '.join(METHODS)}")
    t.add_argument("--dataset", default="digits", help=f"one of: {', '.join(DATASETS)} (default digits)")
    t.add_argument("--labels", type=int, default=100, help="number of labeled training examples (class-balanced)")
    t.add_argument("--model", default=None, help="mlp, conv_small, conv_large, preact_resnet18, wide_resnet28_2, "
                   "conv_manifold, mnist1d_cnn or resnet1d (kzoo.models; default mnist1d_cnn on mnist1d, else mlp)")
    t.add_argument("--width", type=float, default=None,
                   help="width multiplier of the model (default 1, or the method's preset)")
    t.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the method's preset for "
                   "the dataset, else 1000)")
    t.add_argument("--batch-labeled", type=int, default=32)
    t.add_argument("--batch-unlabeled", type=int, default=128)
    t.add_argument("--seed", type=int, default=0, help="seed of the labeled subset, initialization and noise")
    t.add_argument("--backend", choices=_BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND, else the installed one, tensorflow when both are)")
    t.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    g = t.add_argument_group("method hyperparameters (each applies to the methods that declare it; "
                             "default: the method's own, see `kzoo methods --verbose`)")
    _hyperparameter_flags(g, all_hyperparameters())
    t.add_argument("--learning-rate", type=float, default=None,
                   help="Adam learning rate (default: the method's preset for the dataset, else 1e-3)")
    t.add_argument("--no-preset", dest="preset", action="store_false",
                   help="ignore the method's validation-chosen preset for the dataset (see `kzoo methods -v`): "
                   "its plain defaults, 1000 steps, learning rate 1e-3")
    t.add_argument("--decay-fraction", type=float, default=1 / 3,
                   help="linear learning-rate decay over this last fraction of training")
    t.add_argument("--augment", default=None, help="translate, flip or translate,flip (image data)")
    t.add_argument("--data-dir", default=None, help="TFDS data folder for mnist/cifar10/cifar100/svhn")
    t.add_argument("--download", action="store_true",
                   help="let TFDS download and prepare a dataset missing from the data folder (needs network; "
                   "off by default)")
    t.add_argument("--split", dest="splits", action="append", default=None, metavar="ROLE=TFDS_SPLIT",
                   help="TFDS splits: train=..., test=..., validation=... (e.g. --split train=train[:90%%] "
                   "--split validation=train[90%%:]); a validation split is reported as val_error/val_nll")
    t.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto")
    t.add_argument("--metrics-json", default=None, help="write the run's metrics to this JSON file")
    t.add_argument("--export", default=None, help="export the trained classifier here (a SavedModel folder, "
                   "an .onnx file with --export-format onnx, a .keras file with --export-format keras)")
    t.add_argument("--export-format", choices=("saved_model", "tf_saved_model", "onnx", "keras"),
                   default="tf_saved_model",
                   help="saved_model (TensorFlow SavedModel, default; needs TensorFlow), onnx (one file for "
                   "onnxruntime; pip install \"kzoo[onnx]\") or keras (a .keras file, on every backend)")
    t.add_argument("--export-version", type=int, default=None, metavar="N",
                   help="write --export DIR as a model repository: DIR/N/ (TF Serving; DIR/N/model.onnx for "
                   "ONNX, Triton's layout), other versions kept")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    f = t.add_argument_group("long runs and several devices")
    f.add_argument("--checkpoint-dir", default=None,
                   help="checkpoint here; rerunning the same command after a crash or kill resumes from it")
    f.add_argument("--checkpoint-every", type=int, default=None, help="optimizer steps between checkpoints "
                   "(default steps/20)")
    f.add_argument("--distribution", default=None, choices=("mirrored", "data-parallel", "multi-worker"),
                   help="several devices: mirrored (TensorFlow), data-parallel (JAX), multi-worker (TensorFlow, "
                   "$TF_CONFIG)")
    f.add_argument("--devices", type=int, default=None, help="number of devices (CPU-only: logical CPU devices)")
    f.add_argument("--tensorboard", default=None, metavar="DIR", help="log every loss term and metric here")
    f.add_argument("--validation-labels", type=int, default=0,
                   help="hold out this many of the labeled examples and report the validation error")

    from kzoo.tuning import add_parser as _add_tune_parser

    _add_tune_parser(sub, t)
    from kzoo.compare import add_parser as _add_compare_parser

    _add_compare_parser(sub).add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)

    q = sub.add_parser("pretrain", help="train a generative model without labels (VAE, Glow, GAN...) and save it")
    q.add_argument("model", help=f"one of: {', '.join(PRETRAINERS) or '(none yet)'}")
    q.add_argument("--dataset", default="digits", help=f"one of: {', '.join(DATASETS)} (default digits)")
    q.add_argument("--steps", type=int, default=2000, help="optimizer steps")
    q.add_argument("--batch-size", type=int, default=128)
    q.add_argument("--learning-rate", type=float, default=None, help="(default: the model's own)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--backend", choices=_BACKENDS, default=None)
    q.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    q.add_argument("--data-dir", default=None, help="TFDS data folder for mnist/cifar10/cifar100/svhn")
    q.add_argument("--export", required=True, help="where to save the trained model (Keras format)")
    q.add_argument("--metrics-json", default=None, help="write the training metrics to this JSON file")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.add_argument("--checkpoint-dir", default=None,
                   help="checkpoint here; rerunning the same command after a crash or kill resumes from it")
    q.add_argument("--checkpoint-every", type=int, default=None, help="optimizer steps between checkpoints "
                   "(default steps/20)")
    _hyperparameter_flags(q.add_argument_group("model hyperparameters"), all_hyperparameters(PRETRAINERS))

    e = sub.add_parser("evaluate", help="test error, NLL, calibration error (ECE) and accuracy under "
                                        "FGSM/PGD of a saved classifier")
    e.add_argument("path", help="a SavedModel folder exported by kzoo (TensorFlow backend) or a .keras file")
    e.add_argument("--dataset", default="digits", help=f"test set: one of {', '.join(DATASETS)} (default digits)")
    e.add_argument("--attack", choices=("none", "fgsm", "pgd"), default="none", help="white-box attack (default none)")
    e.add_argument("--epsilon", type=float, default=None,
                   help="L∞ radius in input units (FGSM: required; PGD: default none, the unbounded search)")
    e.add_argument("--pgd-steps", type=int, default=200, help="PGD iterations (default 200, the paper's)")
    e.add_argument("--pgd-step-size", type=float, default=0.01, help="PGD step size (default 0.01, the paper's)")
    e.add_argument("--pgd-random-start", action="store_true", help="start PGD at a random point of the ε-ball")
    e.add_argument("--ece-bins", type=int, default=15, help="confidence bins of the ECE (default 15)")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--limit", type=int, default=None, help="evaluate the first N test examples only")
    e.add_argument("--backend", choices=_BACKENDS, default=None,
                   help="Keras backend (default: tensorflow for a SavedModel folder, else $KERAS_BACKEND)")
    e.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    e.add_argument("--data-dir", default=None, help="TFDS data folder for mnist/cifar10/cifar100/svhn")
    e.add_argument("--metrics-json", default=None, help="also write the metrics to this JSON file")
    return p


def _evaluate(args):
    """``kzoo evaluate``: every argument checked before the model is loaded."""

    from kzoo.data import DATASETS

    if not os.path.exists(args.path):
        raise ConfigError(f"no saved model at {args.path}")
    check_dataset(args.dataset, DATASETS, error=ConfigError)
    attack = None if args.attack == "none" else args.attack
    if args.epsilon is not None:
        check_positive("--epsilon", args.epsilon, error=ConfigError)
    if attack == "fgsm" and args.epsilon is None:
        raise ConfigError("--attack fgsm needs --epsilon (the L∞ radius in input units, e.g. 0.03)")
    if attack is None and args.epsilon is not None:
        raise ConfigError("--epsilon applies to an attack: add --attack fgsm or --attack pgd")
    for name in ("pgd_steps", "ece_bins", "batch_size") + (("limit",) if args.limit is not None else ()):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    check_positive("--pgd-step-size", args.pgd_step_size, error=ConfigError)
    metrics_json = check_writable_target(args.metrics_json, "metrics file")

    from kzoo import data as kdata
    from kzoo import evaluate as kev

    ds = kdata.load(args.dataset, data_dir=args.data_dir)
    x, y = ds.x_test, ds.y_test
    if args.limit is not None:
        x, y = x[:args.limit], y[:args.limit]
    try:
        model = kev.load(args.path)
        classes = kev.check_inputs(model, x)
    except (ValueError, RuntimeError, OSError) as e:
        raise ConfigError(str(e)) from e
    if classes != ds.num_classes:
        raise ConfigError(f"the model outputs {classes} logits but {args.dataset} has {ds.num_classes} classes")
    result = kev.evaluate(model, x, y, attack=attack, epsilon=args.epsilon, value_range=ds.value_range,
                          pgd_steps=args.pgd_steps, pgd_step_size=args.pgd_step_size,
                          pgd_random_start=args.pgd_random_start, ece_bins=args.ece_bins,
                          batch_size=args.batch_size)
    result = {"model": os.path.abspath(args.path), "dataset": args.dataset, **result}
    if metrics_json:
        write_json_atomic(metrics_json, result)
    print(json.dumps(result))
    line = (f"{args.dataset} test ({result['n']} examples): error {100 * result['test_error']:.2f}%, "
            f"NLL {result['test_nll']:.3f}, ECE {100 * result['ece']:.2f}%")
    if attack:
        eps = "unbounded" if result["epsilon"] is None else f"ε={result['epsilon']:g}"
        line += f"; accuracy under {attack.upper()} ({eps}) {100 * result['adversarial_accuracy']:.2f}%"
    print(line)
    return 0


def main(argv=None):
    """``kzoo COMMAND ...``; returns the exit code (``kzoo.errors.EXIT_CODES``, the README's table)."""
    from kzoo import interrupts

    try:
        with interrupts.handling():  # Ctrl-C and SIGTERM: a final checkpoint, locks given back, one line
            return _main(argv)
    except KeyboardInterrupt as e:  # kzoo.interrupts.Interrupted: exit 128 + its signal (130 Ctrl-C, 143 SIGTERM)
        print(f"kzoo: {e}" if isinstance(e, interrupts.Interrupted) else "kzoo: interrupted", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_INTERRUPTED)


def _main(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["--version"], ["-V"]):  # before the parser, which imports Keras
        from kzoo import __version__

        print(f"kzoo {__version__}")
        return 0
    if argv[:1] == ["bench"]:  # its own parser: kzoo bench --help
        from kzoo.bench import main as bench_main

        return bench_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "evaluate" and args.backend is None and os.path.isdir(args.path):
        args.backend = "tensorflow"  # a SavedModel is a TensorFlow graph
    if getattr(args, "backend", None):
        if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != args.backend:
            print("kzoo: --backend must be chosen before keras is imported", file=sys.stderr)
            return 2
        os.environ["KERAS_BACKEND"] = args.backend
    elif args.command in _KERAS_COMMANDS and "keras" not in sys.modules and \
            os.environ.get("KERAS_BACKEND", "tensorflow") not in _BACKENDS:
        print(f"kzoo: error: KERAS_BACKEND={os.environ['KERAS_BACKEND']} is not a backend kzoo runs on; set "
              f"KERAS_BACKEND to {' or '.join(_BACKENDS)}, or pass --backend", file=sys.stderr)
        return 2
    if args.command in _KERAS_COMMANDS:
        # the installed backend (TensorFlow when both are) unless chosen; what the command needs, named by its
        # extra, before any work; then Keras, without TensorFlow's start-up log lines unless --verbose
        try:
            extras.choose_backend(getattr(args, "backend", None))
            _check_extras(args)
        except KzooError as e:
            return fail(e)
        # Keras is imported where first needed, after the names and values are checked (kzoo.experiment), and
        # quietly (the import hook of kzoo/__init__); --verbose imports it now, with TensorFlow's lines
        if getattr(args, "verbose", False):
            extras.import_keras(verbose=True, with_tensorflow=True)
    if (getattr(args, "devices", None) or 0) > 1 and "jax" not in sys.modules:
        # JAX on a CPU-only host: N host devices must be asked for before jax is imported
        flag = f"--xla_force_host_platform_device_count={args.devices}"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()

    if args.command == "methods":
        from kzoo.methods import METHODS

        for name, spec in METHODS.items():
            print(f"{name:<20} {spec.summary}")
            if args.verbose:
                for hp in spec.hyperparameters:
                    print(f"{'':<22}{hp.flag:<20} default {hp.default!r:<10} {hp.help}")
                for preset in spec.presets:
                    print(f"{'':<22}{preset.describe()}")
                if spec.warning:
                    print(f"{'':<22}warning: {spec.warning}")
        if args.verbose:
            print("\nthe evidence in brackets names a section of benchmarks/RESULTS.md, which is in kzoo's "
                  "source tree and source distribution (pip download --no-deps --no-binary kzoo kzoo), not in "
                  "the installed wheel")
        return 0
    if args.command == "datasets":
        from kzoo.data import DatasetUnavailableError, export_npz, list_datasets

        if args.export:
            try:
                print(f"wrote {export_npz(args.export, args.data_dir)}")
            except (DatasetUnavailableError, ValueError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            return 0

        for row in list_datasets(args.data_dir):
            where = "offline" if row["offline"] else "not available here"
            print(f"{row['name']:<12} {where:<19} {row['description']}")
        return 0

    from kzoo.experiment import run

    if args.command == "tune":
        from kzoo.tuning import main as tune_main

        return tune_main(args)
    if args.command == "compare":
        from kzoo.compare import main as compare_main

        return compare_main(args)
    jit = {"auto": "auto", "true": True, "false": False}[getattr(args, "jit_compile", "auto")]  # pretrain has none
    try:
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "pretrain":
            from kzoo.experiment import pretrain

            result = pretrain(args.model, dataset=args.dataset, steps=args.steps, batch_size=args.batch_size,
                              learning_rate=args.learning_rate, seed=args.seed, data_dir=args.data_dir,
                              export=args.export, metrics_json=args.metrics_json,
                              hyperparameters=_given_hyperparameters(args), verbose=0 if args.quiet else 1,
                              checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every)
            print(json.dumps(result, default=str))
            return 0
        hp = _given_hyperparameters(args)
        result = run(
            method=args.method, dataset=args.dataset, labels=args.labels, model=args.model,
            steps=args.steps, batch_labeled=args.batch_labeled, batch_unlabeled=args.batch_unlabeled,
            seed=args.seed, hyperparameters=hp, learning_rate=args.learning_rate,
            decay_fraction=args.decay_fraction, width=args.width, augment=args.augment,
            data_dir=args.data_dir, jit_compile=jit, export=args.export, export_format=args.export_format,
            export_version=args.export_version, download=args.download, splits=args.splits,
            metrics_json=args.metrics_json, verbose=0 if args.quiet else 1,
            checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every,
            distribution=args.distribution, devices=args.devices, tensorboard=args.tensorboard,
            validation_labels=args.validation_labels, preset=args.preset,
        )
    except COMMAND_ERRORS as e:
        # 2: bad input; 3: a diverged run (the message says which checkpoint or weights were kept), a failed
        # export or checkpoint write
        code = fail(e)
        if getattr(e, "hard_exit", False):  # a failed HDF5 write can crash the interpreter's exit (rc 139)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
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
