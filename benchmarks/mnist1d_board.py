"""The MNIST-1D leaderboard (issue 24): run the sections declared in benchmarks/grids/mnist1d.json.

    .venv/bin/python benchmarks/mnist1d_board.py                  # train what is missing, then render
    .venv/bin/python benchmarks/mnist1d_board.py --only-cached    # render what is stored, train nothing
    .venv/bin/python benchmarks/mnist1d_board.py --sections core --labels 400

The grids are read from the committed declaration, never from here. Every section is one `kzoo compare`
command; all share the cache OUT/cache/ (a killed board resumes where it stopped: finished trials and seeds are
reused). Label counts run in the declared ``label_order`` (400 first: the targets), each over every section in
turn; after each (section, label count) the section's NAME.json/.md/.png in OUT are rendered again from the
cache over all its label counts, so they always show everything finished so far.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GRIDS = os.path.join(HERE, "grids", "mnist1d.json")


def load_declaration(path=GRIDS):
    with open(path) as f:
        return json.load(f)


def _split_args(args):
    """A section's arguments as (entries, options): the entries come before the first option."""
    first = next((i for i, a in enumerate(args) if a.startswith("--")), len(args))
    return args[:first], args[first:]


def compare_argv(decl, section, labels, only_cached=False):
    """The `kzoo compare` arguments of ``section`` at ``labels`` (a list of label counts)."""
    entries, options = _split_args(section["args"])
    out = decl["out"]
    outputs = [] if labels != section["labels"] else [
        x for ext, flag in (("json", "--results-json"), ("md", "--results-md"), ("png", "--plot"))
        for x in (flag, os.path.join(out, f"{section['name']}.{ext}"))]
    if not outputs:  # a pass over one label count: its summary goes to a scratch folder outside the repository
        scratch = os.environ.get("KZOO_BOARD_SCRATCH") or os.path.join(tempfile.gettempdir(), "kzoo-mnist1d-board")
        outputs = [x for ext, flag in (("json", "--results-json"), ("md", "--results-md"), ("png", "--plot"))
                   for x in (flag, os.path.join(scratch, f"{section['name']}-L{labels[0]}.{ext}"))]
    return (["compare"] + entries + ["--dataset", decl["dataset"], "--labels", ",".join(map(str, labels))]
            + decl["common"] + options + ["--out", out, "--backend", section["backend"]] + outputs
            + (["--only-cached"] if only_cached else []))


def _env(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _kzoo(argv, backend):
    print(f"[{time.strftime('%H:%M:%S')}] kzoo {' '.join(argv)}", flush=True)
    return subprocess.run([sys.executable, "-m", "kzoo"] + argv, env=_env(backend), cwd=ROOT).returncode


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", default=None, help="comma-separated section names (default: all, declared order)")
    p.add_argument("--labels", default=None, help="comma-separated label counts (default: the declared order)")
    p.add_argument("--only-cached", action="store_true", help="render what is stored, train nothing")
    p.add_argument("--declaration", default=GRIDS)
    args = p.parse_args(argv)
    decl = load_declaration(args.declaration)
    names = args.sections.split(",") if args.sections else [s["name"] for s in decl["sections"]]
    sections = [s for s in decl["sections"] if s["name"] in names]
    order = [int(v) for v in args.labels.split(",")] if args.labels else list(decl["label_order"])
    order += sorted({n for s in sections for n in s["labels"]} - set(order)) if not args.labels else []
    failed = 0
    if not args.only_cached:
        for n in order:
            for section in sections:
                if n not in section["labels"]:
                    continue
                for pre in section.get("pretrain", ()):
                    target = pre[pre.index("--export") + 1]
                    if not os.path.exists(os.path.join(ROOT, target)):
                        failed += _kzoo(["pretrain"] + pre + ["--dataset", decl["dataset"], "--quiet"],
                                        section["backend"]) != 0
                failed += _kzoo(compare_argv(decl, section, [n]), section["backend"]) != 0
                failed += _kzoo(compare_argv(decl, section, section["labels"], only_cached=True) + ["--quiet"],
                                section["backend"]) != 0
    else:
        for section in sections:
            failed += _kzoo(compare_argv(decl, section, section["labels"], only_cached=True) + ["--quiet"],
                            section["backend"]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
