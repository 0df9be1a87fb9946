"""Evaluate a trained classifier: error, NLL, calibration, robustness to white-box attacks.

    import kzoo.evaluate as ev
    ev.evaluate(clf, x_test, y_test, attack="fgsm", epsilon=0.03, value_range=(0.0, 1.0))
    # {"test_error": ..., "test_nll": ..., "ece": ..., "attack": "fgsm", "epsilon": 0.03,
    #  "adversarial_accuracy": ..., "adversarial_error": ...}

The classifier is anything that maps inputs to logits: a Keras model (any
backend) or a SavedModel exported by kzoo (loaded with :func:`load`, which
needs TensorFlow). The metrics are those of the Manifold Mixup paper (Verma et
al., 2018): test error, test negative log-likelihood, expected calibration error
(Guo et al., 2017: 15 equal-width confidence bins), accuracy under white-box
FGSM (Goodfellow et al., 2014: x + ε sign ∇_x CE) and PGD (Madry et al., 2017:
iterated signed steps projected on the L∞ ball; ``epsilon=None`` is the
unbounded search of the paper's Appendix F sanity check). Attacks stay inside
the inputs' value range (``value_range``; kzoo.data's Dataset.value_range).
The classifier runs in inference mode throughout.
"""

from kzoo.errors import InvalidArgumentError, NonFiniteValueError, UsageError
import math
import os

import numpy as np

ATTACKS = ("fgsm", "pgd")


# --------------------------------------------------------------------------
# Metrics on predicted probabilities (numpy, float64)
# --------------------------------------------------------------------------


def expected_calibration_error(probs, labels, bins=15):
    """ECE = Σ_b (|B_b| / n) |accuracy(B_b) - mean confidence(B_b)|.

    Examples are binned by their confidence (max probability) into ``bins``
    equal-width bins of (0, 1]: bin b holds confidences in ((b-1)/bins, b/bins].
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise InvalidArgumentError(f"probs must be (n, num_classes) and labels (n,), got {probs.shape} and {labels.shape}")
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InvalidArgumentError(f"bins must be an integer >= 1, got {bins!r}")
    if len(labels) == 0:
        raise InvalidArgumentError("cannot compute a calibration error on zero examples")
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - conf[members].mean())
    return float(ece)


def classification_metrics(logits, labels, bins=15):
    """Test error, mean NLL (nats) and ECE of ``logits`` against class indices ``labels``."""
    from kzoo.ops import log_softmax_numpy

    log_p = log_softmax_numpy(logits)
    labels = np.asarray(labels)
    return {
        "test_error": float((log_p.argmax(axis=1) != labels).mean()),
        "test_nll": float(-log_p[np.arange(len(labels)), labels].mean()),
        "ece": expected_calibration_error(np.exp(log_p), labels, bins),
    }


# --------------------------------------------------------------------------
# The classifier as a function, and its input gradient
# --------------------------------------------------------------------------


def _call(model, x):
    try:
        return model(x, training=False)
    except TypeError:  # a plain callable
        return model(x)


def _loss_gradient(model):
    """A compiled ``(x, y) -> ∇_x Σ CE(y, model(x))`` (backend-specific pieces in kzoo.backend)."""
    from keras import ops

    from kzoo import backend as kb
    from kzoo import ops as kops

    def grad(x, y):
        return kb.grad_wrt(lambda z: ops.sum(kops.cross_entropy_from_logits(y, _call(model, z))), x)

    return kb.compile_function(grad)


def predict_logits(model, x, batch_size=256):
    from keras import ops

    out = []
    for start in range(0, len(x), batch_size):
        out.append(np.asarray(ops.convert_to_numpy(_call(model, ops.convert_to_tensor(x[start:start + batch_size])))))
    return np.concatenate(out).astype(np.float64)


def _check_attack_args(epsilon, value_range, x, allow_unbounded=False):
    if epsilon is None or (isinstance(epsilon, float) and math.isinf(epsilon)):
        if not allow_unbounded:
            raise InvalidArgumentError("FGSM needs a finite epsilon > 0")
        epsilon = None
    elif not (isinstance(epsilon, (int, float, np.floating)) and math.isfinite(epsilon) and epsilon > 0):
        raise InvalidArgumentError(f"epsilon must be a finite number > 0 (L∞ radius in input units), got {epsilon!r}")
    if value_range is None:
        value_range = (float(np.min(x)), float(np.max(x)))
    lo, hi = (float(v) for v in value_range)
    if not lo < hi:
        raise InvalidArgumentError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    return (None if epsilon is None else float(epsilon)), (lo, hi)


def _batches(x, y, batch_size):
    for start in range(0, len(x), batch_size):
        yield start, np.asarray(x[start:start + batch_size], "float32"), np.asarray(y[start:start + batch_size], "int32")


def fgsm(model, x, y, epsilon, value_range=None, batch_size=256):
    """FGSM adversarial examples clip(x + ε sign(∇_x CE(y, f(x))), low, high) (numpy float32)."""
    epsilon, (lo, hi) = _check_attack_args(epsilon, value_range, x)
    grad = _loss_gradient(model)
    out = np.empty(np.shape(x), "float32")
    for start, xb, yb in _batches(x, y, batch_size):
        g = np.asarray(grad(xb, yb))
        out[start:start + len(xb)] = np.clip(xb + epsilon * np.sign(g), lo, hi)
    return out


def pgd(model, x, y, epsilon, steps=200, step_size=0.01, value_range=None, random_start=False, seed=0,
        batch_size=256):
    """L∞ projected gradient descent (Madry et al.): ``steps`` signed steps of ``step_size``.

    After each step the example is projected on the ε-ball around x
    (``epsilon=None``: no ball, the unbounded search of the paper's Appendix F)
    and clipped to ``value_range``.
    """
    epsilon, (lo, hi) = _check_attack_args(epsilon, value_range, x, allow_unbounded=True)
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InvalidArgumentError(f"steps must be an integer >= 1, got {steps!r}")
    if not (math.isfinite(step_size) and step_size > 0):
        raise InvalidArgumentError(f"step_size must be > 0, got {step_size!r}")
    grad = _loss_gradient(model)
    rng = np.random.default_rng(seed)
    out = np.empty(np.shape(x), "float32")
    for start, xb, yb in _batches(x, y, batch_size):
        adv = xb.copy()
        if random_start and epsilon is not None:
            adv = np.clip(adv + rng.uniform(-epsilon, epsilon, adv.shape).astype("float32"), lo, hi)
        for _ in range(int(steps)):
            adv = adv + step_size * np.sign(np.asarray(grad(adv, yb)))
            if epsilon is not None:
                adv = np.clip(adv, xb - epsilon, xb + epsilon)
            adv = np.clip(adv, lo, hi).astype("float32")
        out[start:start + len(xb)] = adv
    return out


def _finite(logits, what):
    """``logits``, or :class:`NonFiniteValueError` when some are NaN/inf: metrics of such outputs (an error
    rate of argmax over NaN) would be reported as if they meant something."""
    bad = ~np.isfinite(logits).all(axis=tuple(range(1, logits.ndim)))
    if bad.any():
        raise NonFiniteValueError(
            f"the model's outputs are NaN or infinite on {int(bad.sum())} of {len(bad)} {what} (the first at "
            f"index {int(np.argmax(bad))}); no metrics reported: the model diverged or its weights are not "
            "finite, retrain it")
    return logits


def evaluate(model, x, y, attack=None, epsilon=None, value_range=None, pgd_steps=200, pgd_step_size=0.01,
             pgd_random_start=False, ece_bins=15, batch_size=256, seed=0):
    """Clean test error, NLL and ECE of ``model`` on ``(x, y)``, and accuracy under ``attack``.

    ``attack``: None, "fgsm" or "pgd" (``epsilon`` None for PGD: unbounded).
    ``value_range``: the inputs' (low, high), which attacks stay within
    (default: the range of ``x``).
    """
    if attack is not None and attack not in ATTACKS:
        raise InvalidArgumentError(f"attack must be one of {', '.join(ATTACKS)} (or None), got {attack!r}")
    x = np.asarray(x, "float32")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
        raise InvalidArgumentError(f"y must be integer class indices of shape ({len(x)},), got {y.dtype} {y.shape}")
    if attack is not None:
        epsilon, value_range = _check_attack_args(epsilon, value_range, x, allow_unbounded=attack == "pgd")
    result = classification_metrics(_finite(predict_logits(model, x, batch_size), "test inputs"), y, ece_bins)
    result["n"] = int(len(y))
    if attack is None:
        return result
    if attack == "fgsm":
        adv = fgsm(model, x, y, epsilon, value_range, batch_size)
    else:
        adv = pgd(model, x, y, epsilon, pgd_steps, pgd_step_size, value_range, pgd_random_start, seed, batch_size)
        result.update(pgd_steps=int(pgd_steps), pgd_step_size=float(pgd_step_size))
    adv_logits = _finite(predict_logits(model, adv, batch_size), f"{attack.upper()} examples")
    acc = float((adv_logits.argmax(axis=1) == y).mean())
    result.update(attack=attack, epsilon=epsilon, value_range=list(value_range), adversarial_accuracy=acc,
                  adversarial_error=1.0 - acc)
    return result


# --------------------------------------------------------------------------
# Loading what kzoo saved
# --------------------------------------------------------------------------


def load(path):
    """A classifier saved by kzoo: a SavedModel folder (``model.export``; needs the TensorFlow
    backend) or a ``.keras`` file (any backend). Returns a callable ``x -> logits``."""
    import keras

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no saved model at {path}")
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise InvalidArgumentError(f"{path} is a folder but not a SavedModel (no saved_model.pb)")
        if keras.backend.backend() != "tensorflow":
            raise UsageError(
                f"{path} is a TensorFlow SavedModel: evaluate it with KERAS_BACKEND=tensorflow "
                "(kzoo evaluate does so by default), or evaluate the Keras model in Python on any backend"
            )
        return keras.layers.TFSMLayer(path, call_endpoint="serve")
    if path.endswith(".keras"):
        return keras.saving.load_model(path, compile=False)
    raise InvalidArgumentError(f"{path} is neither a SavedModel folder nor a .keras file")


def check_inputs(model, x):
    """Raise a clear error when ``model`` does not take inputs shaped like ``x``."""
    try:
        out = np.asarray(predict_logits(model, np.asarray(x[:1], "float32")))
    except Exception as e:  # noqa: BLE001  (any failure here is a shape/dtype mismatch for the user)
        raise InvalidArgumentError(
            f"the model does not accept inputs of shape {tuple(np.shape(x)[1:])} (this dataset's): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from None
    if out.ndim != 2:
        raise InvalidArgumentError(f"the model must output logits of shape (batch, num_classes), got {out.shape}")
    return out.shape[1]
