"""A leaderboard of methods on one dataset: tuned on validation folds, tested on paired seeds.

    kzoo compare --dataset digits --labels 30,100 --seeds 5 --out compare/
    kzoo compare supervised vat vat+entmin svc --grid vat:epsilon=0.5,1,2 --steps 500

For each label count L and each entry (a registered method, a named variant
such as ``vat+entmin``, ``METHOD:name=value,...`` with fixed settings, or a
scikit-learn baseline) the protocol is:

1. **Tuning** (only when the entry's grid has more than one point): every grid
   point is trained once per *validation fold* with :func:`kzoo.tuning.run_trial`.
   Fold f is the labeled set of seed ``seeds[0] + f`` (the same labeled set
   that seed's test run uses) minus a class-balanced validation split of
   V = max(classes, round(0.2 L)) of its examples, which also leave the
   unlabeled pool (kzoo.tuning's split). At 30 labels on 10 classes V = 10: each
   fold trains on 20 labels and is scored on 10, so one validation error is 10
   points; the ``folds`` (default 3) repeats pool 30 validation examples per
   grid point. The grid point with the lowest mean validation error wins (ties:
   mean validation NLL). The test set is never looked at.
2. **Testing**: the chosen setting is trained on all L labels for each seed
   (default 5: seeds 0-4) and tested. Seed s draws the same labeled set for
   every entry, so the difference to ``supervised`` is paired by seed; its 95%
   confidence interval is the t-interval over the per-seed differences.

The grid of an entry: ``--grid ENTRY:NAME=V1,V2`` when given, else the method
registry's grid for the dataset (each hyperparameter's declared ``grid``,
minus those the entry fixes). Every finished trial and seed is stored in
``OUT/cache/`` under a hash of its full configuration (method, resolved
hyperparameters, run settings, dataset, labels, seed, validation split,
protocol version, backend; the contents of files such as a pretrained
generator); a rerun reuses them, so a killed comparison resumes and a changed
setting re-runs. The summary goes to ``OUT/compare.json``, ``compare.md`` and
``compare.png`` (:mod:`kzoo.compare_report`).
"""

import contextlib
import dataclasses
import io
import json
import math
import os
import sys
import tempfile
import time
import types

from kzoo.baselines import BASELINES, fit_baseline
from kzoo.compare_cache import (PROTOCOL_VERSION, RUN_SETTINGS, _default_setting, _load, key_path,  # noqa: F401
                                resolved_settings, unit_key)  # (kzoo.compare.unit_key... public here too)
from kzoo.compare_report import Progress, mean_std, paired_ci, values_text  # noqa: F401  (public here too)
from kzoo.errors import COMMAND_ERRORS, ConfigError, fail
from kzoo.experiment import claim_folder, data_settings, locks, resolve_hyperparameters
from kzoo.io import check_writable_target, write_json_atomic

PROTOCOL = ("hyperparameters chosen by grid search on validation folds carved from the labeled set only: fold f "
            "is the labeled set of seed {first}+f minus a class-balanced validation split of V labels (also "
            "removed from the unlabeled pool), {folds} folds, lowest mean validation error wins (ties: mean "
            "validation NLL); the chosen setting is then trained on all labels for each seed and tested once "
            "per seed; seed s draws the same labeled set for every method; Δ to supervised is paired by seed "
            "with a 95% t-interval")
# named variants: (method, fixed hyperparameters, hyperparameters whose grid drops 0 (the "off" value),
# hyperparameters left out of the registry grid because they do nothing in this variant)
ALIASES = {
    "vat": ("vat", {"entmin": 0.0}, (), ()),
    "vat+entmin": ("vat", {"entmin": 1.0}, (), ()),
    # entropy minimization alone (Grandvalet & Bengio): VAT's entropy term with the LDS term off; its grid: entmin
    "entmin": ("vat", {"alpha": 0.0}, ("entmin",), ("epsilon", "power_iterations")),
    "gan-ssl": ("gan-ssl", {"manifold_gamma": 0.0, "ambient_gamma": 0.0}, (), ("epsilon", "eta")),
    "gan-ssl+manifold": ("gan-ssl", {"ambient_gamma": 0.0}, ("manifold_gamma",), ()),
    "gan-ssl+ambient": ("gan-ssl", {"manifold_gamma": 0.0}, ("ambient_gamma",), ("eta",)),
}
REFERENCE = "supervised"


@dataclasses.dataclass
class Entry:
    """One row of the leaderboard: a method with fixed settings and a grid (or a baseline)."""

    label: str
    method: str
    fixed: dict = dataclasses.field(default_factory=dict)
    run: dict = dataclasses.field(default_factory=dict)
    grid: dict = dataclasses.field(default_factory=dict)
    baseline: bool = False

    def points(self):
        """Every grid point as a dict (one empty dict when nothing is tuned)."""
        import itertools

        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*(self.grid[n] for n in names))]

    def describe(self):
        return {"label": self.label, "method": self.method, "fixed": self.fixed, "run": self.run,
                "grid": {k: list(v) for k, v in self.grid.items()}}


# ----------------------------------------------------------------------------
# Entries and grids
# ----------------------------------------------------------------------------


def _convert_run_setting(name, value):
    default, kind = RUN_SETTINGS[name]
    try:
        converted = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be of type {kind.__name__}, got {value!r}") from None
    if kind in (int, float) and not (math.isfinite(converted) and converted > 0 or name == "decay_fraction"):
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    return converted


def registry_grid(method, dataset):
    """The method registry's grid for ``dataset``: a per-dataset grid when the registry has one, else each
    hyperparameter's declared ``grid``."""
    from kzoo import methods as kmethods
    from kzoo.tuning import default_grid

    per_dataset = getattr(kmethods, "dataset_grid", None)
    if per_dataset is not None:
        grid = per_dataset(method, dataset)
        if grid is not None:
            return {k: tuple(v) for k, v in grid.items()}
    return default_grid(method)


def parse_entry(text, dataset="digits", grids=None):
    """``vat``, ``vat+entmin``, ``svc`` or ``METHOD:name=value,...`` -> :class:`Entry` (ConfigError if bad)."""
    from kzoo.methods import METHODS

    text = text.strip()
    if text in BASELINES:
        grid = {k: tuple(v) for k, v in ((grids or {}).get(text) or BASELINES[text]).items()}
        return Entry(text, text, grid=grid, baseline=True)
    name, _, settings = text.partition(":")
    method, fixed, nonzero, drop = ALIASES.get(name, (name, {}, (), ()))
    if method not in METHODS:
        raise ConfigError(f"unknown method {name!r}; valid: {', '.join(list(METHODS) + list(ALIASES))} "
                          f"and the baselines {', '.join(BASELINES)}")
    spec, _ = resolve_hyperparameters(method)
    fixed, run = dict(fixed), {}
    for item in filter(None, (s.strip() for s in settings.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not eq:
            raise ConfigError(f"{text}: settings are NAME=VALUE, got {item!r}")
        if key in RUN_SETTINGS:
            run[key] = _convert_run_setting(key, value.strip())
            continue
        try:
            fixed[key] = spec.hyperparameter(key).check(value.strip(), method)
        except KeyError:
            raise ConfigError(f"{text}: {method} has no hyperparameter or run setting {key!r} (its "
                              f"hyperparameters: {', '.join(h.name for h in spec.hyperparameters) or 'none'})"
                              ) from None
        except ValueError as e:
            raise ConfigError(f"{text}: {e}") from None
    given = (grids or {}).get(text, (grids or {}).get(name))
    if given is not None:
        grid = {k: tuple(v) for k, v in given.items()}
    else:
        grid = {k: tuple(x for x in v if not (k in nonzero and not x))
                for k, v in registry_grid(method, dataset).items() if k not in fixed and k not in drop}
    clash = sorted(set(grid) & set(fixed))
    if clash:
        raise ConfigError(f"{text}: {', '.join(clash)} is both fixed and in its grid")
    for point in Entry(text, method, fixed, run, grid).points():
        resolve_hyperparameters(method, {**fixed, **point})  # every grid point is valid, before any work
    return Entry(text, method, fixed, run, grid)


def parse_grids(items):
    """``["vat:epsilon=0.5,1", "svc:C=1,10"]`` -> ``{"vat": {"epsilon": (0.5, 1.0)}, "svc": {"C": (1.0, 10.0)}}``."""
    from kzoo.tuning import parse_grid

    out = {}
    for item in items or ():
        entry, colon, rest = item.partition(":")
        if not colon or "=" not in rest:
            raise ConfigError(f"--grid takes ENTRY:NAME=V1,V2 (e.g. vat:epsilon=0.5,1,2), got {item!r}")
        if entry in BASELINES:
            name, _, values = rest.partition("=")
            if name not in BASELINES[entry]:
                raise ConfigError(f"--grid {entry}: no parameter {name!r} (its: {', '.join(BASELINES[entry])})")
            try:
                parsed = {name: tuple(float(v) for v in values.split(","))}
            except ValueError:
                raise ConfigError(f"--grid {item}: the values must be numbers") from None
            if name == "n_neighbors":
                parsed = {name: tuple(int(v) for v in parsed[name])}
        else:
            method = ALIASES.get(entry, (entry,))[0]
            resolve_hyperparameters(method)
            parsed = parse_grid(method, [rest])
        out.setdefault(entry, {}).update(parsed)
    return out


def default_entries(backend=None):
    """``supervised`` plus every semi-supervised method of the registry that can run here without a file
    argument (a pretrained generator or transformer): what ``kzoo compare`` runs when given no methods."""
    from kzoo.methods import METHODS

    names = [REFERENCE]
    for name, spec in METHODS.items():
        hp = spec.resolve()
        if name == REFERENCE or not spec.is_semi_supervised(hp):
            continue
        if any(h.type is str and h.default is None for h in spec.hyperparameters):
            continue  # needs a pretrained model (lvat-*, manifold): give it as METHOD:transformer=PATH
        names.append(name)
    return names


# ----------------------------------------------------------------------------
# Running one unit
# ----------------------------------------------------------------------------


def _run_settings(entry, context, labels, seed):
    kw = resolved_settings(entry, context, labels, {})[1]
    kw.update(dataset=context["dataset"], labels=int(labels), seed=int(seed), data_dir=context.get("data_dir"),
              jit_compile=context.get("jit_compile", "auto"))
    return kw


def _run_trial(entry, context, labels, seed, values):
    """One grid point on one validation fold, through :func:`kzoo.tuning.run_trial`."""
    from kzoo.tuning import run_trial

    with tempfile.TemporaryDirectory(prefix="kzoo-compare-") as tmp:
        fixed = {k: v for k, v in resolved_settings(entry, context, labels, values)[0].items() if k not in values}
        config = {"method": entry.method, "fixed": fixed, "executions": 1,
                  "validation_labels": context["validation_labels"][labels],
                  "run": _run_settings(entry, context, labels, seed), "directory": tmp}
        with contextlib.redirect_stdout(io.StringIO()):  # run_trial's own line; compare prints its own
            metrics = run_trial(config, f"{labels}-{seed}", values)
    return {"val_error": metrics["val_error"], "val_nll": metrics["val_nll"],
            "train_seconds": metrics["train_seconds"]}


def _run_seed(entry, context, labels, seed, values):
    from kzoo.experiment import run

    res = run(method=entry.method, hyperparameters=resolved_settings(entry, context, labels, values)[0], verbose=0,
              test=True,
              **_run_settings(entry, context, labels, seed))
    return {k: res[k] for k in ("test_error", "test_nll", "train_seconds", "train_steps")}


def run_unit(entry, context, kind, labels, seed, values):
    if entry.baseline:
        return fit_baseline(entry.method, values, context["data"], labels, seed,
                            context["validation_labels"][labels] if kind == "trial" else 0)
    return (_run_trial if kind == "trial" else _run_seed)(entry, context, labels, seed, values)


# ----------------------------------------------------------------------------
# The comparison
# ----------------------------------------------------------------------------


def _unit(entry, context, progress, cache, kind, labels, seed, values, only_cached):
    """The stored result of one unit, running it first when it is not stored (None: not run)."""
    key = unit_key(entry, kind, labels, seed, values, context)
    path = key_path(cache, entry, key)
    record = _load(path)
    if record is not None and record.get("key") == key:
        progress.skip(reused=True)
        return record
    if only_cached:
        return None
    t = time.time()
    try:
        result, status, error = run_unit(entry, context, kind, labels, seed, values), "ok", None
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as e:  # a failed run is a result: reported, kept (delete its file to retry)
        result, status, error = {}, "failed", (f"{type(e).__name__}: {e}".strip().splitlines() or ["?"])[0]
    record = {"key": key, "label": entry.label, "values": values, "status": status, "error": error,
              "seconds": round(time.time() - t, 2), **result}
    write_json_atomic(path, record)
    metric = "val" if kind == "trial" else "test"
    what = f"{entry.label} @{labels} " + (f"trial {values_text(values)} fold {seed}: " if kind == "trial"
                                          else f"seed {seed}: ")
    what += (f"{metric} error {100 * record[metric + '_error']:.2f}%" if status == "ok" else f"FAILED ({error})")
    progress.finished(what, record["seconds"])
    return record


def _choose(entry, trials_by_point):
    """The grid point with the lowest mean validation error over the folds (ties: mean NLL)."""
    from kzoo.tuning import best_trial

    rows = []
    for i, (values, recs) in enumerate(trials_by_point):
        ok = [r for r in recs if r["status"] == "ok"]
        full = len(ok) == len(recs) and recs
        rows.append({"trial_id": str(i), "hyperparameters": values, "status": "COMPLETED" if full else "FAILED",
                     "val_error": mean_std([r["val_error"] for r in ok])[0] if full else None,
                     "val_nll": mean_std([r["val_nll"] for r in ok if r.get("val_nll") is not None])[0]
                     if full else None,
                     "val_errors": [r.get("val_error") for r in recs], "failed": len(recs) - len(ok),
                     "seconds": round(sum(r.get("seconds") or 0 for r in recs), 1)})
    best = best_trial(rows)
    return rows, best


def _check(entries, dataset, labels, seeds, folds, validation_labels, data_dir):
    """Every input checked before any training; returns the loaded dataset and V per label count."""
    from kzoo import data as kdata
    from kzoo.experiment import _split, build_regularizer
    from kzoo.methods import get as get_method

    if dataset not in kdata.DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(kdata.DATASETS)}")
    if not labels or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in labels):
        raise ConfigError(f"labels must be integers >= 1, got {labels!r}")
    if not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1, got {seeds!r}")
    if not isinstance(folds, int) or folds < 1:
        raise ConfigError(f"folds must be an integer >= 1, got {folds!r}")
    ds = kdata.load(dataset, data_dir=data_dir)
    if ds.y_train is None or ds.y_test is None or len(ds.y_train) == 0 or not ds.num_classes:
        raise ConfigError(f"dataset {dataset} has no labels to compare methods on")
    val = {}
    for n in labels:
        v = validation_labels if validation_labels else max(ds.num_classes, round(0.2 * n))
        if not v < n or n - v < ds.num_classes:
            raise ConfigError(f"{n} labels are too few for a validation split of {v} (each fold needs at least "
                              f"one validation and one training label per class: at least {2 * ds.num_classes} "
                              "labels)")
        for f in range(folds):
            try:
                _split(ds, n, v, f)
            except ValueError as e:
                raise ConfigError(f"--labels {n} with a validation split of {v}: {e}") from None
        for s in range(seeds):
            try:
                _split(ds, n, 0, s)
            except ValueError as e:
                raise ConfigError(f"--labels {n}: {e}") from None
        val[n] = int(v)
    for entry in entries:
        if entry.baseline:
            continue
        spec = get_method(entry.method)
        for point in entry.points():
            _, hp = resolve_hyperparameters(entry.method, {**entry.fixed, **point})
            for h in spec.hyperparameters:
                if h.type is str and h.default is None and hp.get(h.name) is None:
                    raise ConfigError(f"{entry.label} needs {h.name} ({h.help}): give it as "
                                      f"{entry.method}:{h.name}=PATH")
                if h.type is str and h.default is None and not os.path.exists(hp[h.name]):
                    raise ConfigError(f"{entry.label}: {h.name} {hp[h.name]} does not exist")
            if spec.build is not None:
                build_regularizer(entry.method, **hp)  # e.g. LVAT on a backend without TensorFlow
    return ds, val


@locks.scoped  # the folder stays locked while the comparison lasts
def compare(methods=None, dataset="digits", labels=(30, 100), seeds=5, folds=3, validation_labels=None,
            grids=None, out="compare", results_json=None, results_md=None, plot=None, only_cached=False,
            data_dir=None, jit_compile="auto", verbose=1, **run_settings):
    """Compare ``methods`` on ``dataset`` at each label count (see the module docstring); returns the summary.

    ``methods``: entry names (default :func:`default_entries`; ``supervised``, the
    reference, is added when missing). ``grids``: ``{entry: {name: values}}``.
    ``run_settings``: run() settings for every entry (``steps``, ``model``, ...;
    an entry's own ``METHOD:steps=...`` wins). ``out``: the folder of the cache
    and of the outputs (default names ``compare.json|md|png`` there).
    ``only_cached``: report what is stored, run nothing.
    """
    import keras

    from kzoo import compare_report

    t0 = time.time()
    if set(run_settings) - set(RUN_SETTINGS):
        raise ConfigError(f"compare does not take {', '.join(sorted(set(run_settings) - set(RUN_SETTINGS)))}")
    run_settings = {k: _convert_run_setting(k, v) for k, v in run_settings.items() if v is not None}
    labels = [labels] if isinstance(labels, int) else list(labels)
    names = list(methods) if methods else default_entries()
    names = names if REFERENCE in names else [REFERENCE] + names
    if len(set(names)) != len(names):
        raise ConfigError(f"a method is listed twice: {', '.join(names)}")
    unused = sorted(set(grids or {}) - set(names) - {n.partition(":")[0] for n in names})
    if unused:
        raise ConfigError(f"--grid for {', '.join(unused)}, which is not among the methods compared")
    entries = [parse_entry(n, dataset, grids) for n in names]
    out = os.path.abspath(out)
    results_json = results_json or os.path.join(out, "compare.json")
    results_md = results_md or os.path.join(out, "compare.md")
    plot = compare_report.plot_target(plot or os.path.join(out, "compare.png"))  # None: no matplotlib (a note)
    for path, what in ((os.path.join(out, "cache", "probe"), "output folder"), (results_json, "results file"),
                       (results_md, "results file"), (plot or results_md, "plot file")):
        check_writable_target(path, what)
    ds, val = _check(entries, dataset, labels, seeds, folds, validation_labels, data_dir)
    # locked; another dataset, folds, validation split or data folder is refused. Entries, labels, seeds, run
    # settings and backends may vary (a board's sections share one cache): every unit's key holds them all.
    # A folder of kzoo 0.1 (a cache, no settings file) is adopted: its units are keyed the same way.
    cache, stamp = os.path.join(out, "cache"), os.path.join(out, "compare_settings.json")
    claim_folder(out, stamp, {"dataset": dataset, "folds": folds, "validation_labels": validation_labels,
                              **data_settings(data_dir, None)}, "comparison folder", "--out",
                 "the settings of the comparison there", in_use=os.path.isfile(stamp) and cache,
                 ignore=("backend", "run"))
    os.makedirs(cache, exist_ok=True)
    seed_list, fold_seeds = list(range(seeds)), list(range(folds))
    context = {"dataset": dataset, "data": ds, "data_dir": data_dir, "jit_compile": jit_compile,
               "validation_labels": val, "backend": keras.backend.backend(), "run": run_settings}
    total = sum((len(e.points()) * folds if len(e.points()) > 1 else 0) + seeds for e in entries) * len(labels)
    progress = Progress(total, verbose)
    if verbose:
        print(f"kzoo compare: {len(entries)} methods x {len(labels)} label counts on {dataset}, {seeds} seeds, "
              f"{folds} validation folds; {total} runs in all; cache {cache}", flush=True)
    rows = {}
    for n in labels:
        for entry in entries:
            points = entry.points()
            row = {"entry": entry.describe(), "trials": [], "chosen": None, "seeds": [], "status": "ok"}
            if len(points) > 1:
                by_point = [(p, [_unit(entry, context, progress, cache, "trial", n, f, p, only_cached)
                                 for f in fold_seeds]) for p in points]
                if any(r is None for _, recs in by_point for r in recs):
                    row["status"] = "not run"
                    progress.skip(seeds)
                    rows.setdefault(n, {})[entry.label] = row
                    continue
                row["trials"], best = _choose(entry, by_point)
                if best is None:
                    row["status"] = "failed"
                    row["error"] = next((r["error"] for _, recs in by_point for r in recs if r.get("error")), None)
                    progress.skip(seeds)
                    rows.setdefault(n, {})[entry.label] = row
                    continue
                chosen = best["hyperparameters"]
            else:
                chosen = points[0]
            row["chosen"] = chosen
            recs = [_unit(entry, context, progress, cache, "seed", n, s, chosen, only_cached) for s in seed_list]
            row["seeds"] = [dict({k: r.get(k) for k in ("status", "error", "test_error", "test_nll",
                                                          "train_seconds", "seconds")}, seed=s)
                            for s, r in zip(seed_list, recs) if r is not None]
            if any(r is None for r in recs):
                row["status"] = "partial" if row["seeds"] else "not run"
            rows.setdefault(n, {})[entry.label] = row
    summary = compare_report.summarize(rows, labels, REFERENCE)
    summary.update({
        "dataset": dataset, "labels": labels, "seeds": seed_list, "folds": fold_seeds,
        "validation_labels": {str(n): v for n, v in val.items()}, "backend": context["backend"],
        "protocol": PROTOCOL.format(first=0, folds=folds), "protocol_version": PROTOCOL_VERSION,
        "run_settings": {k: run_settings.get(k, _default_setting(k, dataset)) for k in RUN_SETTINGS},
        "entries": [e.describe() for e in entries], "seconds": round(time.time() - t0, 1), "cache": cache,
        "ran": progress.ran, "reused": progress.reused,
    })
    write_json_atomic(results_json, summary)
    compare_report.write_markdown(results_md, summary)
    compare_report.write_plot(plot, summary)
    summary["outputs"] = {k: v for k, v in (("json", results_json), ("markdown", results_md), ("plot", plot)) if v}
    return summary


# ----------------------------------------------------------------------------
# Command line: kzoo compare
# ----------------------------------------------------------------------------


def add_parser(sub):
    c = sub.add_parser("compare", help="leaderboard: methods tuned on validation folds, tested on paired seeds",
                       description=__doc__.split("\n\n")[0])
    c.add_argument("methods", nargs="*", help="entries: a method, a variant (" + ", ".join(ALIASES) + "), "
                   "METHOD:name=value,... or a baseline (" + ", ".join(BASELINES) + "); default: supervised and "
                   "every semi-supervised method that needs no pretrained file")
    c.add_argument("--dataset", default="digits")
    c.add_argument("--labels", default="30,100", help="comma-separated label counts (default 30,100)")
    c.add_argument("--seeds", type=int, default=5, help="test runs per entry: seeds 0..N-1 (default 5)")
    c.add_argument("--folds", type=int, default=3, help="validation folds per grid point (default 3)")
    c.add_argument("--validation-labels", type=int, default=None,
                   help="labels per validation fold (default max(classes, 20%% of the labels))")
    c.add_argument("--grid", nargs="+", action="extend", default=[], metavar="ENTRY:NAME=V1,V2",
                   help="an entry's grid (default: the method registry's grid for the dataset)")
    for name, (default, kind) in RUN_SETTINGS.items():
        c.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                       help="run setting of every entry (default " + (
                           "the dataset's: mnist1d_cnn on mnist1d, else mlp" if name == "model" else str(default))
                       + ")")
    c.add_argument("--out", default="compare", help="cache and outputs (default ./compare)")
    c.add_argument("--results-json", default=None, help="default OUT/compare.json")
    c.add_argument("--results-md", default=None, help="default OUT/compare.md")
    c.add_argument("--plot", default=None, help="default OUT/compare.png")
    c.add_argument("--only-cached", action="store_true", help="report what is stored in OUT, train nothing")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default=None)
    c.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    return c


def main(args):
    try:
        try:
            labels = [int(v) for v in args.labels.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--labels takes comma-separated integers, got {args.labels!r}") from None
        summary = compare(methods=args.methods or None, dataset=args.dataset, labels=labels, seeds=args.seeds,
                          folds=args.folds, validation_labels=args.validation_labels, grids=parse_grids(args.grid),
                          out=args.out, results_json=args.results_json, results_md=args.results_md,
                          plot=args.plot, only_cached=args.only_cached, data_dir=args.data_dir,
                          jit_compile={"auto": "auto", "true": True, "false": False}[args.jit_compile],
                          verbose=0 if args.quiet else 1,
                          **{k: getattr(args, k) for k in RUN_SETTINGS})
    except COMMAND_ERRORS as e:  # one line; exit code 2 for bad input (kzoo.errors.EXIT_CODES)
        return fail(e)
    from kzoo.compare_report import markdown

    print(markdown(summary))
    print(f"wrote {', '.join(summary['outputs'].values())}")
    return 0


class _CallableModule(types.ModuleType):
    """``kzoo.compare(...)`` calls :func:`compare`; the module's other names stay reachable as attributes."""

    def __call__(self, *args, **kwargs):
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
