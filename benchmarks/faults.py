"""The ``faults`` section of RESULTS.md: the fault and bad-input matrix of tests/test_faults.py (issue 14).

``benchmarks/run.py --sections faults`` runs tests/test_faults.py on both backends
(as scripts/test does: cases marked one_backend in the TensorFlow pass only) with
$KZOO_FAULTS_RECORD set; every case that passes appends its row (kind, case,
outcome, message, what survived). The section stores the rows and the cases
that failed; :func:`render` writes the table.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def measure(args=None):
    rows, failed, counts = [], [], {}
    for backend in ("jax", "tensorflow"):
        record = os.path.join(HERE, f".faults-{backend}.jsonl")
        if os.path.exists(record):
            os.remove(record)
        cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "tests/test_faults.py"]
        if backend == "jax":
            cmd += ["-m", "not tensorflow_only and not one_backend"]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", KZOO_FAULTS_RECORD=record,
                   PYTHONPATH=ROOT)
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        failed += [f"{backend}: {ln[len('FAILED '):]}" for ln in out.stdout.splitlines() if ln.startswith("FAILED ")]
        summary = [ln for ln in out.stdout.splitlines() if " passed" in ln or " failed" in ln]
        counts[backend] = summary[-1].strip("= ") if summary else f"pytest exit {out.returncode}"
        if os.path.exists(record):
            with open(record) as f:
                rows += [json.loads(line) for line in f if line.strip()]
            os.remove(record)
    return {"rows": rows, "failed": failed, "pytest": counts}


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(sec, add):
    data = sec["data"]
    merged = {}
    for row in data["rows"]:
        key = (row["kind"], row["case"])
        entry = merged.setdefault(key, {**row, "backends": []})
        if row["backend"] not in entry["backends"]:
            entry["backends"].append(row["backend"])
    add("## Faults and bad input (issue 14)")
    add("")
    add("Every fault and bad input that `tests/test_faults.py` tries, on each backend it ran on, with the exit "
        "code (2 bad input, 3 failed run), the one line the user sees and what is left on disk. Written by "
        "`benchmarks/run.py --sections faults` from the test cases that passed (a case that fails is listed "
        "below the table instead). Paths are shortened to DIR/PATH.")
    add("")
    for kind, title in (("fault", "Faults tried"), ("bad input", "Bad inputs tried")):
        rows = [e for (k, _), e in merged.items() if k == kind]
        add(f"### {title} ({len(rows)})")
        add("")
        add("| case | backends | outcome | message | what survived |")
        add("|---|---|---|---|---|")
        for e in rows:
            add(f"| {_cell(e['case'])} | {', '.join(sorted(e['backends']))} | {_cell(e['outcome'])} | "
                f"{_cell(e['message'])} | {_cell(e['survived'])} |")
        add("")
    add(f"pytest: {'; '.join(f'{b}: {c}' for b, c in data['pytest'].items())}. Cases that failed: "
        + (", ".join(data["failed"]) if data["failed"] else "none") + ".")
    add("")
    took = f" ({sec['seconds'] / 60:.1f} min)" if sec.get("seconds") else ""
    add(f"_measured {sec['date']} by `{sec['command']}`{took}._")
    add("")
