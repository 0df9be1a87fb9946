"""Class-balanced labeled / unlabeled splits and array validation (numpy)."""

from __future__ import annotations
from kzoo.errors import InvalidArgumentError

import weakref

import numpy as np

from kzoo.data.base import _check_int



# ---------------------------------------------------------------------------
# Labeled / unlabeled split
# ---------------------------------------------------------------------------


def _as_class_indices(y, name, num_classes=None):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise InvalidArgumentError(
            f"{name} looks one-hot with shape {y.shape}; pass 1-D integer "
            f"class indices instead, e.g. {name}.argmax(axis=1)")
    if y.ndim != 1:
        raise InvalidArgumentError(
            f"{name} must be 1-D integer class indices of shape (n,); got "
            f"shape {y.shape} (use {name}.reshape(-1) if it is (n, 1))")
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer)
                                   or np.issubdtype(y.dtype, np.floating)):
        raise InvalidArgumentError(f"{name} must hold integer class indices; got dtype "
                         f"{y.dtype}; convert with {name}.astype('int32')")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidArgumentError(
                f"{name} must hold integer class indices but {name}[{i}] = "
                f"{y[i]!r} is not a whole number; pass class indices, not "
                f"probabilities or soft labels")
    if y.size:
        lo, hi = y.min(), y.max()
        if lo < 0:
            raise InvalidArgumentError(f"{name} has negative class index {lo}; class "
                             f"indices must be >= 0")
        if num_classes is not None and hi >= num_classes:
            raise InvalidArgumentError(
                f"{name} has class index {int(hi)} but num_classes="
                f"{num_classes} (valid indices 0..{num_classes - 1}); fix "
                f"the labels or pass the right num_classes")
    return y.astype(np.int32)


def labeled_split(x, y, n_labels, *, num_classes=None, seed=0, balanced=True,
                  unlabeled_includes_labeled=True):
    """Pick ``n_labels`` labeled examples; return ``(x_l, y_l, x_u)``.

    With ``balanced`` every class gets ``n_labels // K`` examples and the
    remainder goes one extra to the first classes of a seed-dependent class
    order; ``n_labels == len(x)`` labels every example (all the labels there
    are, as balanced as the data), in a seed-dependent order.  Choice is made
    by ``numpy.random.default_rng(seed)``: same seed, same subset.  ``x_u`` is
    every training input (labels dropped) when ``unlabeled_includes_labeled``
    (the VAT paper's setting), else the rest.
    """
    x = np.asarray(x)
    if x.ndim < 1:
        raise InvalidArgumentError("x must be an array of examples (n, ...); got a scalar")
    if num_classes is not None:
        num_classes = _check_int("num_classes", num_classes, 1)
    y = _as_class_indices(y, "y", num_classes)
    if len(x) != len(y):
        raise InvalidArgumentError(f"x and y must have the same length; got "
                         f"len(x)={len(x)} and len(y)={len(y)}")
    seed = _check_int("seed", seed, 0)
    if isinstance(n_labels, (bool, np.bool_)) or not isinstance(
            n_labels, (int, np.integer)):
        raise InvalidArgumentError(f"n_labels must be an integer; got {n_labels!r}")
    n_labels = int(n_labels)
    if n_labels < 1:
        raise InvalidArgumentError(f"n_labels={n_labels} gives an empty labeled set; "
                         f"pass n_labels >= 1")
    if n_labels > len(x):
        raise InvalidArgumentError(f"asked for {n_labels} labels but only {len(x)} "
                         f"examples exist; lower n_labels")
    if num_classes is None:
        num_classes = int(y.max()) + 1
    rng = np.random.default_rng(seed)

    if n_labels == len(x):  # every example: nothing to choose (balanced or not), e.g. MNIST-1D's 4000 labels
        chosen = rng.permutation(len(x))
    elif balanced:
        if n_labels < num_classes:
            raise InvalidArgumentError(
                f"a balanced split needs at least one label per class but "
                f"n_labels={n_labels} < num_classes={num_classes}; raise "
                f"n_labels or pass balanced=False")
        per_class = np.full(num_classes, n_labels // num_classes)
        per_class[rng.permutation(num_classes)[:n_labels % num_classes]] += 1
        chosen = []
        for c in range(num_classes):
            idx = np.flatnonzero(y == c)
            if per_class[c] > len(idx):
                raise InvalidArgumentError(
                    f"asked for {n_labels} labels ({per_class[c]} of class "
                    f"{c}) but only {len(idx)} examples of class {c} exist; "
                    f"lower n_labels or pass balanced=False")
            chosen.append(rng.choice(idx, per_class[c], replace=False))
        chosen = rng.permutation(np.concatenate(chosen))
    else:
        chosen = rng.choice(len(x), n_labels, replace=False)

    x_l, y_l = x[chosen], y[chosen]
    if unlabeled_includes_labeled:
        x_u = x
    else:
        keep = np.ones(len(x), dtype=bool)
        keep[chosen] = False
        x_u = x[keep]
    return x_l, y_l, x_u


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _check_inputs(x, name):
    x = np.asarray(x)
    if x.ndim < 2:
        raise InvalidArgumentError(
            f"{name} must have shape (n, ...features); got shape {x.shape} "
            f"(use {name}.reshape(-1, 1) for one scalar feature)")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise InvalidArgumentError(f"{name} must be numeric; got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.inexact):
        bad = ~np.isfinite(x)
        if bad.any():
            rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
            raise InvalidArgumentError(
                f"{name} contains {int(bad.sum())} NaN/inf values in "
                f"{len(rows)} example(s) (first at index {int(rows[0])}); "
                f"clean or drop those examples")
    return x


def validate_arrays(x_l, y_l, x_u=None, num_classes=None):
    """Check semi-supervised arrays before any work; raise ValueError.

    Returns ``(x_l, y_l, x_u)`` as numpy arrays with ``y_l`` as int32.
    """
    if num_classes is not None:
        num_classes = _check_int("num_classes", num_classes, 1)
    x_l = np.asarray(x_l)
    y_arr = np.asarray(y_l)
    if x_l.ndim >= 1 and y_arr.ndim >= 1 and len(x_l) != len(y_arr):
        raise InvalidArgumentError(f"x_l and y_l must have the same length; got "
                         f"len(x_l)={len(x_l)} and len(y_l)={len(y_arr)}")
    if x_l.ndim >= 1 and len(x_l) == 0:
        raise InvalidArgumentError("x_l / y_l are empty: the labeled set needs at "
                         "least one example")
    y_l = _as_class_indices(y_arr, "y_l", num_classes)
    x_l = _check_inputs(x_l, "x_l")
    if x_u is not None:
        x_u = np.asarray(x_u)
        if x_u.ndim >= 1 and len(x_u) == 0:
            return x_l, y_l, x_u
        if x_u.shape[1:] != x_l.shape[1:]:
            raise InvalidArgumentError(
                f"x_u examples have shape {x_u.shape[1:]} but x_l examples "
                f"have shape {x_l.shape[1:]}; both must come from the same "
                f"input space (same preprocessing / flatten setting)")
        x_u = _check_inputs(x_u, "x_u")
    return x_l, y_l, x_u


_STREAMS = weakref.WeakKeyDictionary()  # stream -> what was checked about its labels


def looks_like_raw_pixels(x):
    """Whether ``x`` looks like unscaled 0..255 pixels: nonnegative, largest value above 1 and at most 255, and
    (nearly) every value an integer. Standardized inputs (mean 0, values up to about 4, fractional) do not."""
    x = np.asarray(x)
    if x.size == 0 or not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        return False
    flat = x.reshape(-1)
    if flat.size > 100_000:  # a strided sample is enough to see the kind of values
        flat = flat[:: flat.size // 100_000]
    if np.issubdtype(flat.dtype, np.floating):
        flat = flat[np.isfinite(flat)]
        if flat.size == 0:
            return False
    lo, hi = float(flat.min()), float(flat.max())
    if lo < 0 or not 1 < hi <= 255:
        return False
    return bool(np.mean(flat == np.round(flat)) >= 0.95)


def warn_pixel_range(x, name):
    """Warn when ``x`` looks like 0..255 pixel values (:func:`looks_like_raw_pixels`): kzoo's radii assume
    [0, 1]. Inputs scaled otherwise (standardized, [-1, 1]...) draw no warning."""
    if not looks_like_raw_pixels(x):
        return
    x = np.asarray(x)
    hi = float(np.nanmax(x))
    import warnings

    warnings.warn(f"{name} holds values up to {hi:g} (dtype {x.dtype}), all whole numbers: it looks like 0..255 "
                  "pixels. kzoo's perturbation radii (VAT's epsilon, ...) assume inputs scaled to [0, 1]; on raw "
                  f"pixels the regularizer is close to 0. Scale first: {name} = {name}.astype('float32') / 255",
                  UserWarning, stacklevel=4)


def check_fit_data(x, y, num_logits, sparse_labels=True):
    """Checks of ``fit``'s data against the model: NaN/inf inputs, one-hot or out-of-range labels; ValueError.

    ``x``/``y`` as arrays are checked in full; a kzoo stream (:func:`semi_supervised`,
    :func:`supervised`) by the labels it was made from. ``num_logits``: the classifier's
    outputs (None: unknown). ``sparse_labels``: the loss takes class indices.
    """
    info = None
    try:
        info = _STREAMS.get(x)
    except TypeError:
        pass
    if info is not None:
        if num_logits and info["num_classes"] is None and info["max_label"] >= num_logits:
            raise InvalidArgumentError(f"the stream's labels go up to class index {info['max_label']} but the classifier "
                             f"outputs {num_logits} logits (class indices 0..{num_logits - 1}); fix the labels, "
                             f"or pass num_classes={num_logits} to kzoo.data.semi_supervised/supervised to check "
                             "them there")
        return
    arrays = x.items() if isinstance(x, dict) else [("x", x)]
    for name, value in arrays:
        if isinstance(value, np.ndarray):
            _check_inputs(value, name if name == "x" else f"x[{name!r}]")
            warn_pixel_range(value, name if name == "x" else f"x[{name!r}]")
    if isinstance(y, (np.ndarray, list)) and sparse_labels:
        _as_class_indices(y, "y", num_logits)


def check_fit(model, x, y, fit_kwargs=None, positional=0):
    """What ``fit`` of a kzoo model checks first: :func:`check_fit_data` against its classifier's logits, and a
    warning if the classifier ends in a softmax (kzoo's regularizers expect logits).

    ``fit_kwargs`` (``fit``'s keyword arguments, ``positional`` others before them): ``shuffle=False`` is set
    when ``x`` is a dataset or stream and no ``shuffle`` was given (it shuffles itself; Keras warns that it
    ignores ``shuffle=True`` there)."""
    if fit_kwargs is not None and "shuffle" not in fit_kwargs and positional < 7 and x is not None and \
            not isinstance(x, (list, tuple, dict)) and not hasattr(x, "__array__"):
        fit_kwargs["shuffle"] = False
    net = model.network
    out = getattr(net, "outputs", None)
    num_logits = int(out[0].shape[-1]) if out and out[0].shape[-1] is not None else None
    check_fit_data(x, y, num_logits, type(getattr(model, "loss", None)).__name__ == "SparseCategoricalCrossentropy")
    layer = net.layers[-1] if getattr(net, "layers", None) else None
    if type(layer).__name__ == "Softmax" or getattr(getattr(layer, "activation", None), "__name__", "") == "softmax":
        import warnings

        warnings.warn(f"the classifier's last layer ({layer.name}) is a softmax: kzoo expects logits, so the "
                      "regularizers compare probabilities and the VAT term is close to 0. Remove the softmax "
                      "(activation=None) and predict with keras.ops.softmax(model(x))", UserWarning, stacklevel=3)
