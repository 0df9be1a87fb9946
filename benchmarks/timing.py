"""The benchmark scripts' one step timer: interleaved rounds, medians, ratios.

Every model lives in one process and was warmed up (compiled) by its caller.
Each round fits every model ``steps`` steps in turn and times it, so the load
of a shared machine falls on every method alike; the numbers to report are the
medians over rounds of ms/step and of the per-round ratio to a reference.
"""

import json
import statistics
import sys
import time


def interleaved_ms_per_step(models, streams, rounds, steps, log=False):
    """``{name: [ms per step, one value per round]}`` for ``models`` fed by ``streams`` (same keys).

    A model is a Keras model (trained by ``fit``) or a callable ``run(stream, steps)``
    that runs ``steps`` steps and returns when they are done (e.g. a hand-written step loop).
    """
    times = {name: [] for name in models}
    for r in range(rounds):
        for name, model in models.items():
            t = time.perf_counter()
            if hasattr(model, "fit"):
                model.fit(streams[name], steps_per_epoch=steps, epochs=1, verbose=0)
            else:
                model(streams[name], steps)
            times[name].append(1000 * (time.perf_counter() - t) / steps)
        if log:
            print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in times.items()),
                  file=sys.stderr, flush=True)
    return times


def median_ratio(times, name, reference):
    """Median over rounds of ``name``'s step time divided by ``reference``'s in the same round."""
    return statistics.median(a / b for a, b in zip(times[name], times[reference]))


def emit(out, path=None):
    """Write ``out`` as JSON to ``path``, or print it."""
    if path:
        with open(path, "w") as f:
            json.dump(out, f, indent=2)
    else:
        print(json.dumps(out, indent=2))
