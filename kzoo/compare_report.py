"""The statistics and the outputs of :mod:`kzoo.compare`: paired confidence intervals, markdown, the PNG."""

from kzoo.errors import InvalidArgumentError
import math
import sys
import time

from kzoo import extras
from kzoo.io import atomic_file, write_text_atomic


def mean_std(values):
    """Mean and sample standard deviation (ddof=1; 0 for a single value); ``(None, None)`` when empty."""
    n = len(values)
    if not n:
        return None, None
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def paired_ci(a, b, confidence=0.95):
    """Mean of the paired differences ``a[i] - b[i]`` and its t confidence interval (scipy.stats.t).

    ``{"mean", "low", "high", "n"}``; ``low``/``high`` are None with fewer than two pairs.
    """
    from scipy import stats

    if len(a) != len(b):
        raise InvalidArgumentError(f"paired samples must have the same length, got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    mean, std = mean_std(diffs)
    if len(diffs) < 2:
        return {"mean": mean, "low": None, "high": None, "n": len(diffs)}
    half = float(stats.t.ppf((1 + confidence) / 2, len(diffs) - 1)) * std / math.sqrt(len(diffs))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(diffs)}


def summarize(rows, labels, reference):
    """Per label count and entry: mean ± std of test error and NLL, and the paired Δ to ``reference``."""
    out = {"results": {}, "best": {}}
    for n in labels:
        by_label = rows.get(n, {})
        ref = {s["seed"]: s for s in by_label.get(reference, {}).get("seeds", []) if s["status"] == "ok"}
        table = {}
        for label, row in by_label.items():
            ok = [s for s in row["seeds"] if s["status"] == "ok"]
            err_m, err_s = mean_std([s["test_error"] for s in ok])
            nll_m, nll_s = mean_std([s["test_nll"] for s in ok if s.get("test_nll") is not None])
            res = {**row, "n_seeds": len(ok), "failed_seeds": len(row["seeds"]) - len(ok),
                   "test_error_mean": err_m, "test_error_std": err_s, "test_nll_mean": nll_m, "test_nll_std": nll_s,
                   "delta_to_reference": None}
            if row["status"] == "ok" and ok and len(ok) < len(row["seeds"]):
                res["status"] = "partial"
            paired = [s for s in ok if s["seed"] in ref]
            if label != reference and paired:
                res["delta_to_reference"] = paired_ci([s["test_error"] for s in paired],
                                                      [ref[s["seed"]]["test_error"] for s in paired])
                res["delta_to_reference"]["seeds"] = [s["seed"] for s in paired]
            table[label] = res
        out["results"][str(n)] = table
        done = {k: v for k, v in table.items() if v["test_error_mean"] is not None}
        out["best"][str(n)] = min(done, key=lambda k: done[k]["test_error_mean"]) if done else None
    return out


def _pct(x):
    return "—" if x is None else f"{100 * x:.2f}"


def _setting(res):
    entry = res["entry"]
    parts = [f"{k}={v}" for k, v in (res.get("chosen") or {}).items()]
    return ", ".join(parts) if parts else ("—" if not entry["grid"] else "?")


def _cell(res):
    if res is None:
        return "not run"
    if res["test_error_mean"] is None:
        return {"failed": "FAILED", "not run": "not run"}.get(res["status"], res["status"])
    text = f"{_pct(res['test_error_mean'])} ± {_pct(res['test_error_std'])}"
    if res["status"] == "partial" or res.get("failed_seeds"):
        text += f" (n = {res['n_seeds']})"
    return text


def _delta(res):
    d = res.get("delta_to_reference") if res else None
    if not d:
        return "—"
    if d["low"] is None:
        return f"{100 * d['mean']:+.2f}"
    return f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"


def markdown(summary, reference="supervised"):
    """The leaderboard: one table per label count, and the protocol it was measured with."""
    lines = [f"Protocol: {summary['protocol']}. Validation labels per fold: "
             + ", ".join(f"{v} of {n}" for n, v in summary["validation_labels"].items())
             + f". Backend `{summary['backend']}`; run settings " + ", ".join(
                 f"{k}={v}" for k, v in summary["run_settings"].items()) + " unless an entry says otherwise.", ""]
    for n in summary["labels"]:
        table = summary["results"][str(n)]
        best = summary["best"].get(str(n))
        lines += [f"**{n} labels** — test error (%) and NLL, mean ± std over seeds; Δ = paired difference in "
                  f"test error to {reference} (percentage points) with its 95% confidence interval.", "",
                  "| method | chosen setting | test error (%) | test NLL | Δ error vs " + reference + " [95% CI] |"
                  " tuning runs |",
                  "|---|---|---|---|---|---|"]
        for label, res in table.items():
            mark = "**" if label == best else ""
            nll = "—" if res["test_nll_mean"] is None else f"{res['test_nll_mean']:.3f} ± {res['test_nll_std']:.3f}"
            tuned = sum(len(t["val_errors"]) for t in res["trials"]) if res["trials"] else 0
            lines.append(f"| {mark}{label}{mark} | {_setting(res)} | {mark}{_cell(res)}{mark} | {nll} | "
                         f"{_delta(res)} | {tuned or '—'} |")
        failed = [f"{label}: {res.get('error') or next((s['error'] for s in res['seeds'] if s.get('error')), '')}"
                  for label, res in table.items() if res["status"] == "failed" or res.get("failed_seeds")]
        if failed:
            lines += ["", "Failures: " + "; ".join(failed) + "."]
        lines.append("")
    missing = sorted({label for t in summary["results"].values() for label, r in t.items()
                      if r["status"] in ("not run", "partial")})
    if missing:
        lines += [f"Not (fully) run yet: {', '.join(missing)}.", ""]
    return "\n".join(lines)


def write_markdown(path, summary):
    write_text_atomic(path, markdown(summary), suffix=".md")


def plot_target(path):
    """``path``, or None (with a note on stderr, before any work) when matplotlib is not installed: the JSON and
    markdown results do not need it."""
    if extras.installed("matplotlib"):
        return path
    print(f"kzoo compare: matplotlib is not installed, so {path} will not be drawn ({extras.install_hint('plots')}); "
          "the JSON and markdown results are written", file=sys.stderr)
    return None


def write_plot(path, summary):
    """One panel per label count, one horizontal bar per method: mean test error with ± std error bars (none
    when ``path`` is None: see :func:`plot_target`)."""
    if path is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_panels = len(summary["labels"])
    labels = list(dict.fromkeys(k for n in summary["labels"] for k in summary["results"][str(n)]))
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 0.35 * len(labels) + 1.5), squeeze=False,
                             sharey=True)
    for ax, n in zip(axes[0], summary["labels"]):
        table = summary["results"][str(n)]
        means = [100 * (table[k]["test_error_mean"] or 0.0) if k in table else 0.0 for k in labels]
        stds = [100 * (table[k]["test_error_std"] or 0.0) if k in table else 0.0 for k in labels]
        colors = ["#888888" if k == "supervised" else "#4c72b0" if table.get(k, {}).get("test_error_mean")
                  is not None else "#dddddd" for k in labels]
        ax.barh(range(len(labels)), means, xerr=stds, color=colors, capsize=3)
        expected = len(summary["seeds"])
        for i, k in enumerate(labels):
            res = table.get(k, {})
            if res.get("test_error_mean") is None:
                ax.text(0.5, i, "not run" if res.get("status") != "failed" else "failed", va="center", fontsize=8)
            elif res.get("n_seeds", expected) < expected:
                ax.text(means[i] + stds[i] + 0.3, i, f"{res['n_seeds']} of {expected} seeds", va="center",
                        fontsize=8)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("test error (%)")
        ax.set_title(f"{summary['dataset']}, {n} labels ({len(summary['seeds'])} seeds)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # the axes share y: invert once, the first method on top
    fig.tight_layout()
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


class Progress:
    """One line per finished unit: what, its result, elapsed time and an ETA from the units run so far."""

    def __init__(self, total, verbose):
        self.total, self.verbose = total, verbose
        self.done = self.ran = self.reused = 0
        self.start = time.time()
        self.ran_seconds = 0.0

    def skip(self, n=1, reused=False):
        """``n`` units need no run: stored already (``reused``) or not runnable (a failed tuning)."""
        self.done += n
        self.reused += n if reused else 0

    def finished(self, what, seconds):
        self.done += 1
        self.ran += 1
        self.ran_seconds += seconds
        if not self.verbose:
            return
        left = (self.total - self.done) * self.ran_seconds / self.ran
        print(f"kzoo compare [{self.done}/{self.total}] {what} ({seconds:.0f} s) | elapsed "
              f"{_duration(time.time() - self.start)}, ETA {_duration(left)}", flush=True)


def _duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def values_text(values):
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "defaults"
