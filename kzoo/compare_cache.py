"""The cache of ``kzoo compare``'s finished units: each trial or seed is one JSON file named by the
digest of everything that determines its result (:func:`unit_key`), so a rerun trains only what is missing
and a folder can hold several sections of a board (other backends and run settings) side by side."""

import hashlib
import json
import os

from kzoo.experiment import resolve_hyperparameters

PROTOCOL_VERSION = 1
# run() settings an entry may set (``METHOD:steps=600,learning_rate=3e-3``) and their defaults (run()'s)
RUN_SETTINGS = {"model": (None, str), "steps": (1000, int), "batch_labeled": (32, int),
                "batch_unlabeled": (128, int), "learning_rate": (1e-3, float), "decay_fraction": (1 / 3, float),
                "width": (1.0, float), "augment": (None, str)}


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _hashable(value):
    """A hyperparameter value for the key: an existing file is keyed by its contents too."""
    if isinstance(value, str) and os.path.isfile(value):
        return {"file": os.path.basename(value), "sha256": _file_digest(value)}
    if isinstance(value, str) and os.path.isdir(value):
        return {"folder": os.path.basename(value.rstrip("/"))}
    return value


def _preset(entry, context, labels):
    """The registry's preset for this dataset, model and label count (validation-chosen settings), if any."""
    from kzoo.methods import get as get_method

    from kzoo.networks import default_model

    model = entry.run.get("model", context["run"].get("model", default_model(context["dataset"])))
    preset = getattr(get_method(entry.method), "preset", None)
    return dict(preset(context["dataset"], labels, model)) if preset else {}


def resolved_settings(entry, context, labels, values):
    """``(hyperparameters, run settings)`` of one run, every value explicit: the grid point over the entry's
    fixed values over the registry's preset for the dataset over the method's defaults; run settings: the
    entry's over the comparison's over the preset's (steps, learning rate) over run()'s defaults."""
    preset = _preset(entry, context, labels)
    run = {k: entry.run.get(k, context["run"].get(k, preset.get(k, _default_setting(k, context["dataset"]))))
           for k in RUN_SETTINGS}
    given = {k: v for k, v in preset.items() if k not in RUN_SETTINGS}
    _, hp = resolve_hyperparameters(entry.method, {**given, **entry.fixed, **values})
    return hp, run


def _default_setting(name, dataset):
    """run()'s default of a run setting on ``dataset`` (the model: the dataset's default classifier)."""
    if name == "model":
        from kzoo.networks import default_model

        return default_model(dataset)
    return RUN_SETTINGS[name][0]


def unit_key(entry, kind, labels, seed, values, context):
    """Everything that determines one trial or seed's result (``values``: its grid point)."""
    if entry.baseline:
        hp, run = {**values}, None
    else:
        resolved, run = resolved_settings(entry, context, labels, values)
        from kzoo.methods import get as get_method

        neutral = {h.name: h.neutral for h in get_method(entry.method).hyperparameters if h.neutral is not None}
        hp = {k: _hashable(v) for k, v in resolved.items() if k not in neutral or v != neutral[k]}  # see neutral
    key = {"protocol": PROTOCOL_VERSION, "kind": kind, "method": entry.method, "hyperparameters": hp,
           "dataset": context["dataset"], "labels": int(labels), "seed": int(seed),
           "validation_labels": context["validation_labels"][labels] if kind == "trial" else 0,
           "backend": "scikit-learn" if entry.baseline else context["backend"]}
    if not entry.baseline:
        key["run"] = run
    return key


def _slug(text):
    return "".join(c if c.isalnum() or c in "+-." else "_" for c in text)[:60]


def key_path(cache, entry, key):
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return os.path.join(cache, f"{key['kind']}-{_slug(entry.label)}-L{key['labels']}-s{key['seed']}-{digest}.json")


def _load(path):
    try:
        with open(path) as f:  # NaN (an NLL LabelSpreading could not give, kzoo 0.1) reads as None: unknown
            return json.load(f, parse_constant=lambda name: None)
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------
