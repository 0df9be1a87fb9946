"""``kzoo bench``: step time and peak memory of every method on one model and batch shape.

    kzoo bench --methods supervised,vat --model conv_small --width 0.25 --dataset synthetic32 \
        --backends tensorflow,jax --jit true,false --precision float32,mixed_bfloat16 \
        --json bench.json --markdown bench.md

Each (backend, jit, precision, method) runs in a fresh process (a process holds
one Keras backend, one dtype policy, and its own peak memory), trains through
:func:`kzoo.experiment.run` on the chosen data for ``--warmup + --steps`` steps and
reports the steady-state steps per second after the first (compiling) step.
``keras`` is a reference row: the same classifier trained by a plain
``keras.Model.fit`` on the same labeled batches, to show what kzoo's own train
step costs. Ratios are to ``supervised`` of the same configuration. A method
that needs an argument it has no default for (a pretrained transformer or
generator path) is run only when ``--hp METHOD.NAME=VALUE`` supplies it, and is
otherwise reported as skipped with the reason.
"""

from kzoo.errors import InvalidArgumentError
import argparse
import json
import os
import resource
import subprocess
import sys
import time

from kzoo.checks import check_dataset
from kzoo.io import write_json_atomic, write_text_atomic

KERAS_REFERENCE = "keras"


def _peak_memory():
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        import keras

        if keras.backend.backend() == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform != "cpu" and hasattr(dev, "memory_stats"):
                stats = dev.memory_stats() or {}
                if "peak_bytes_in_use" in stats:
                    out["peak_device_mb"] = stats["peak_bytes_in_use"] / 2**20
    except Exception:  # memory statistics are best effort
        pass
    return out


def _keras_reference(cfg):
    """The classifier of the run trained by plain ``keras.Model.fit`` on the same labeled batches."""
    import keras

    from kzoo import data as kdata
    from kzoo import experiment, models

    ds = kdata.load(cfg["dataset"], seed=0)
    kw = {"input_shape": ds.input_shape, "num_classes": ds.num_classes}
    if cfg["model"] != "mlp":
        kw["width"] = cfg["width"]
    keras.utils.set_random_seed(0)
    clf = models.get(cfg["model"], **kw)
    clf.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=cfg["jit"])
    stream = kdata.supervised(ds.x_train, ds.y_train, batch_size=cfg["batch_labeled"] + cfg["batch_unlabeled"],
                              seed=0)
    timer = experiment._step_timer()
    clf.fit(stream, steps_per_epoch=cfg["warmup"] + cfg["steps"], epochs=1, verbose=0, callbacks=[timer],
            shuffle=False)
    return (timer.steps - 1) / (timer.end - timer.first_step_end)


def worker(cfg):
    """One measurement in this process (KERAS_BACKEND already set); returns a row."""
    import keras

    keras.config.set_dtype_policy(cfg["precision"])
    from kzoo import experiment

    row = {k: cfg[k] for k in ("backend", "jit", "precision", "method")}
    t0 = time.perf_counter()
    if cfg["method"] == KERAS_REFERENCE:
        sps = _keras_reference(cfg)
    else:
        # "same batches": supervised-style methods see batch_labeled + batch_unlabeled labeled inputs
        spec = experiment.get_method(cfg["method"])
        semi = spec.is_semi_supervised(spec.resolve(cfg["hp"]))
        batch_l = cfg["batch_labeled"] if semi else cfg["batch_labeled"] + cfg["batch_unlabeled"]
        result = experiment.run(method=cfg["method"], dataset=cfg["dataset"], labels=cfg["labels"],
                                model=cfg["model"], width=cfg["width"], steps=cfg["warmup"] + cfg["steps"],
                                batch_labeled=batch_l, batch_unlabeled=cfg["batch_unlabeled"],
                                jit_compile=cfg["jit"], hyperparameters=cfg["hp"], verbose=0)
        sps = result["steps_per_second"]
    row.update(steps_per_second=sps, ms_per_step=1000.0 / sps, wall_seconds=time.perf_counter() - t0,
               **_peak_memory())
    return row


def _needs(method, hp):
    """The reason ``method`` cannot run with ``hp``, or None."""
    from kzoo.methods import get

    spec = get(method)
    for h in spec.hyperparameters:
        if h.default is None and hp.get(h.name) is None:
            return f"needs {h.flag} (pass --hp {method}.{h.name}=VALUE)"
    return None


def _parse_hp(items):
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot:
            raise InvalidArgumentError(f"--hp takes METHOD.NAME=VALUE, got {item!r}")
        out.setdefault(method, {})[name.replace("-", "_")] = value
    return out


def markdown(rows):
    lines = ["| backend | jit | precision | method | steps/s | ms/step | ratio to supervised | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['backend']} | {r['jit']} | {r['precision']} | {r['method']} | — | — | "
                         f"skipped: {r['skipped']} | — |")
            continue
        ratio = r.get("ratio_to_supervised")
        lines.append(f"| {r['backend']} | {r['jit']} | {r['precision']} | {r['method']} | "
                     f"{r['steps_per_second']:.2f} | {r['ms_per_step']:.1f} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="kzoo bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", default="keras,supervised,vat", help="comma list; 'keras' is plain keras.Model.fit")
    p.add_argument("--model", default="mlp")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--dataset", default="digits", help="synthetic32 for 32x32x3 images")
    p.add_argument("--labels", type=int, default=100)
    p.add_argument("--batch-labeled", type=int, default=32)
    p.add_argument("--batch-unlabeled", type=int, default=128)
    p.add_argument("--steps", type=int, default=50, help="timed steps")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--backends", default="tensorflow,jax")
    p.add_argument("--jit", default="true", help="comma list of true/false")
    p.add_argument("--precision", default="float32", help="comma list of float32, mixed_bfloat16, mixed_float16")
    p.add_argument("--hp", action="append", help="METHOD.NAME=VALUE, e.g. lvat-glow.transformer=glow.keras")
    p.add_argument("--json", default=None)
    p.add_argument("--markdown", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        print("BENCH " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    from kzoo.data import DATASETS
    from kzoo.methods import METHODS

    methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in methods if m != KERAS_REFERENCE and m not in METHODS]
    if bad:
        p.error(f"unknown methods {bad}; valid: {KERAS_REFERENCE}, {', '.join(METHODS)}")
    check_dataset(args.dataset, DATASETS, error=p.error)
    backends = [b for b in args.backends.split(",") if b]
    if set(backends) - {"tensorflow", "jax", "torch"}:
        p.error("--backends takes tensorflow, jax and/or torch")
    jits = [{"true": True, "false": False}.get(j) for j in args.jit.split(",")]
    if None in jits:
        p.error("--jit takes true and/or false")
    precisions = [q for q in args.precision.split(",") if q]
    if set(precisions) - {"float32", "mixed_bfloat16", "mixed_float16"}:
        p.error("--precision takes float32, mixed_bfloat16 and/or mixed_float16")
    for name in ("steps", "warmup", "batch_labeled", "batch_unlabeled", "labels"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    try:
        hp = _parse_hp(args.hp)
    except ValueError as e:
        p.error(str(e))
    for method, given in hp.items():  # check hyperparameters before any run
        if method not in METHODS:
            p.error(f"--hp names unknown method {method!r}")
        try:
            METHODS[method].resolve(given)
        except ValueError as e:
            p.error(str(e))
    for target in (args.json, args.markdown):
        if target and not os.access(os.path.dirname(os.path.abspath(target)) or ".", os.W_OK):
            p.error(f"cannot write {target}")

    rows = []
    for backend in backends:
        for jit in jits:
            for precision in precisions:
                for method in methods:
                    base = {"backend": backend, "jit": jit, "precision": precision, "method": method}
                    reason = None if method == KERAS_REFERENCE else _needs(method, hp.get(method, {}))
                    if reason:
                        rows.append({**base, "skipped": reason})
                        continue
                    cfg = {**base, "dataset": args.dataset, "labels": args.labels, "model": args.model,
                           "width": args.width, "batch_labeled": args.batch_labeled,
                           "batch_unlabeled": args.batch_unlabeled, "steps": args.steps, "warmup": args.warmup,
                           "hp": hp.get(method, {})}
                    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
                    out = subprocess.run([sys.executable, "-m", "kzoo.bench", "--worker", json.dumps(cfg)],
                                         capture_output=True, text=True, env=env)
                    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
                    if line is None:
                        err = (out.stderr.strip().splitlines() or ["no output"])[-1]
                        rows.append({**base, "skipped": f"failed: {err[:200]}"})
                    else:
                        rows.append(json.loads(line[len("BENCH "):]))
                    r = rows[-1]
                    print(f"{backend:<10} jit={str(jit):<5} {precision:<14} {method:<18} "
                          + (f"{r['ms_per_step']:.1f} ms/step" if "skipped" not in r else r["skipped"]),
                          file=sys.stderr, flush=True)
    for r in rows:
        sup = next((s for s in rows if s["method"] == "supervised" and "skipped" not in s
                    and all(s[k] == r[k] for k in ("backend", "jit", "precision"))), None)
        if "skipped" not in r:
            r["ratio_to_supervised"] = r["ms_per_step"] / sup["ms_per_step"] if sup else None
    report = {"settings": {k: v for k, v in vars(args).items() if k != "worker"}, "rows": rows}
    if args.json:
        write_json_atomic(args.json, report)
    table = markdown(rows)
    if args.markdown:
        write_text_atomic(args.markdown, table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
