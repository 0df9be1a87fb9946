"""One training run, end to end: what ``kzoo train`` and the benchmarks call.

dataset -> class-balanced labeled subset + unlabeled pool -> regularized
``fit`` -> test error / NLL -> optional SavedModel export and metrics JSON.
Every argument is checked before any data is loaded or any step is taken, and
outputs are written atomically at the end.
"""

import json
import math
import os
import tempfile
import time

import numpy as np

# name -> summary
METHODS = {
    "supervised": "cross-entropy on the labeled examples only",
    "vat": "Virtual Adversarial Training (Miyato et al.); --entmin W adds entropy minimization",
    "rpt": "Random Perturbation Training: VAT's smoothness term along random directions",
    "adversarial": "Adversarial training (Goodfellow et al.), --adv-norm l2|linf, labeled data",
}

# Per-method defaults; the papers' values where they transfer (α = 1, ξ = 1e-6,
# K = 1). ε for VAT/RPT on digits: 1.0, from a sweep over {1, 2, 3} on digits
# with 100 labels (see benchmarks/RESULTS.md for how it was chosen).
DEFAULTS = {
    "epsilon": {"vat": 1.0, "rpt": 1.0, "adversarial": 0.5},
    "alpha": 1.0,
    "xi": 1e-6,
    "power_iterations": 1,
    "entmin": 0.0,
    "adv_norm": "l2",
}


class ConfigError(ValueError):
    """A run's configuration is invalid; raised before any work starts."""


def build_regularizer(method, epsilon=None, alpha=None, xi=None, power_iterations=None,
                      entmin=None, adv_norm=None, rampup_steps=0):
    """The regularizer of ``method`` with its hyperparameters (None -> default)."""
    from kzoo import regularizers as R

    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    alpha = DEFAULTS["alpha"] if alpha is None else alpha
    entmin = DEFAULTS["entmin"] if entmin is None else entmin
    if method != "vat" and entmin:
        raise ConfigError("--entmin applies to vat only (VAT+EntMin)")
    eps = DEFAULTS["epsilon"].get(method) if epsilon is None else epsilon
    if method == "supervised":
        return None
    if method == "vat":
        reg = R.VAT(
            epsilon=eps,
            alpha=alpha,
            xi=DEFAULTS["xi"] if xi is None else xi,
            power_iterations=DEFAULTS["power_iterations"] if power_iterations is None else power_iterations,
            rampup_steps=rampup_steps,
        )
        if entmin:
            reg = reg + R.EntropyMinimization(weight=entmin, rampup_steps=rampup_steps)
        return reg
    if method == "rpt":
        return R.RPT(epsilon=eps, alpha=alpha, rampup_steps=rampup_steps)
    return R.AdversarialTraining(
        epsilon=eps, alpha=alpha, norm=adv_norm or DEFAULTS["adv_norm"], rampup_steps=rampup_steps
    )


def _check_writable_target(path, what):
    if path is None:
        return None
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    probe = parent
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK):
        raise ConfigError(f"{what} {path} cannot be written: {probe} is not a writable folder")
    if os.path.isfile(path) and what == "export folder":
        raise ConfigError(f"{what} {path} is an existing file, not a folder")
    return path


def write_json_atomic(path, payload):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _epochs_for(steps, max_per_epoch=1000):
    """Split ``steps`` into equal epochs of at most ``max_per_epoch`` when possible."""
    if steps <= max_per_epoch:
        return 1
    for epochs in range(math.ceil(steps / max_per_epoch), 21):
        if steps % epochs == 0:
            return epochs
    return 1


def _step_timer():
    """Keras callback: wall time of the run and of the steady state after the first step."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()
            self.first_step_end = None
            self.steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.first_step_end is None:
                self.first_step_end = time.perf_counter()

        def on_train_end(self, logs=None):
            self.end = time.perf_counter()

    return StepTimer()


def evaluate_classifier(classifier, x, y, batch_size=512):
    """Test error and mean negative log-likelihood (nats) of a logits classifier."""
    logits = classifier.predict(x, batch_size=batch_size, verbose=0)
    logits = np.asarray(logits, dtype=np.float64)
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    nll = float(-log_p[np.arange(len(y)), y].mean())
    error = float((logits.argmax(axis=1) != y).mean())
    return {"test_error": error, "test_nll": nll}


def run(
    method="vat",
    dataset="digits",
    labels=100,
    model="mlp",
    steps=1000,
    batch_labeled=32,
    batch_unlabeled=128,
    seed=0,
    epsilon=None,
    alpha=None,
    xi=None,
    power_iterations=None,
    entmin=None,
    adv_norm=None,
    rampup_steps=0,
    learning_rate=1e-3,
    decay_fraction=1 / 3,
    width=1.0,
    augment=None,
    data_dir=None,
    jit_compile="auto",
    export=None,
    metrics_json=None,
    verbose=1,
):
    """Train ``method`` on ``dataset`` with ``labels`` labeled examples; returns the metrics dict."""
    from kzoo import data as kdata
    from kzoo import models as kmodels

    # ---- validate everything before any work -------------------------------
    if dataset not in kdata.DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(kdata.DATASETS)}")
    if model not in kmodels.MODELS:
        raise ConfigError(f"unknown model {model!r}; valid models: {', '.join(kmodels.MODELS)}")
    for name, value in (("steps", steps), ("batch_labeled", batch_labeled),
                        ("batch_unlabeled", batch_unlabeled), ("labels", labels)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    if not 0 <= decay_fraction <= 1:
        raise ConfigError(f"decay_fraction must be in [0, 1], got {decay_fraction!r}")
    try:
        regularizer = build_regularizer(method, epsilon, alpha, xi, power_iterations, entmin,
                                        adv_norm, rampup_steps)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from e
    export = _check_writable_target(export, "export folder")
    metrics_json = _check_writable_target(metrics_json, "metrics file")

    import keras

    from kzoo.core import Regularized
    from kzoo.ops import LinearDecay

    ds = kdata.load(dataset, data_dir=data_dir, seed=seed)
    try:
        x_l, y_l, x_u = kdata.labeled_split(ds.x_train, ds.y_train, labels,
                                           num_classes=ds.num_classes, seed=seed)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    kmodels_kwargs = {"input_shape": ds.input_shape, "num_classes": ds.num_classes}
    if model != "mlp":
        kmodels_kwargs["width"] = width
    try:
        clf = kmodels.get(model, **kmodels_kwargs)
    except ValueError as e:
        raise ConfigError(str(e)) from e

    # ---- train ---------------------------------------------------------------
    keras.utils.set_random_seed(seed)
    semi = method not in ("supervised", "adversarial")
    if semi:
        stream = kdata.semi_supervised(x_l, y_l, x_u, batch_labeled=batch_labeled,
                                       batch_unlabeled=batch_unlabeled, num_classes=ds.num_classes,
                                       seed=seed, augment=augment)
    else:
        stream = kdata.supervised(x_l, y_l, batch_size=batch_labeled, num_classes=ds.num_classes,
                                  seed=seed, augment=augment)
    net = Regularized(clf, regularizer, seed=seed)
    lr = LinearDecay(learning_rate, steps, int(round(decay_fraction * steps)))
    net.compile(optimizer=keras.optimizers.Adam(lr), metrics=["accuracy"], jit_compile=jit_compile)
    epochs = _epochs_for(steps)
    timer = _step_timer()
    net.fit(stream, steps_per_epoch=steps // epochs, epochs=epochs, verbose=verbose,
            callbacks=[timer], shuffle=False)
    train_seconds = timer.end - timer.start
    steady = timer.end - timer.first_step_end
    result = {
        "method": method,
        "dataset": dataset,
        "labels": int(labels),
        "seed": int(seed),
        "backend": keras.backend.backend(),
        "model": model,
        "hyperparameters": {
            "regularizer": repr(regularizer) if regularizer is not None else None,
            "epsilon": getattr(regularizer, "epsilon", None),
            "alpha": alpha if alpha is not None else DEFAULTS["alpha"],
            "xi": xi if xi is not None else DEFAULTS["xi"],
            "power_iterations": power_iterations or DEFAULTS["power_iterations"],
            "entmin": entmin or 0.0,
            "adv_norm": adv_norm if method == "adversarial" else None,
            "rampup_steps": rampup_steps,
            "learning_rate": learning_rate,
            "decay_fraction": decay_fraction,
            "batch_labeled": batch_labeled,
            "batch_unlabeled": batch_unlabeled if semi else 0,
            "augment": augment,
            "jit_compile": jit_compile,
        },
        "train_steps": int(timer.steps),
        "train_seconds": round(train_seconds, 3),
        "steps_per_second": round((timer.steps - 1) / steady, 2) if timer.steps > 1 and steady > 0 else None,
    }
    if regularizer is not None and hasattr(regularizer, "parts"):
        result["hyperparameters"]["epsilon"] = regularizer.parts[0].epsilon
    result.update(evaluate_classifier(clf, ds.x_test, ds.y_test))

    # ---- outputs (atomic) ------------------------------------------------------
    if export:
        result["export"] = net.export(export)
    if metrics_json:
        write_json_atomic(metrics_json, result)
    return result
