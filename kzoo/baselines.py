"""scikit-learn baselines for :mod:`kzoo.compare`: LabelSpreading (knn, rbf) and a labels-only SVC.

They are fitted on exactly the splits kzoo's runs use (same labeled set per
seed, same validation folds); LabelSpreading sees the same unlabeled pool,
transductively.
"""

import time

# grid of each baseline over its own parameters
BASELINES = {
    "labelspreading-knn": {"n_neighbors": (3, 5, 7, 10, 15)},
    "labelspreading-rbf": {"gamma": (0.5, 1.0, 2.0, 5.0, 10.0)},
    "svc": {"C": (1.0, 10.0, 100.0), "gamma": (0.01, 0.03, 0.1)},
}


def _model(name, params):
    from sklearn.semi_supervised import LabelSpreading
    from sklearn.svm import SVC

    if name == "labelspreading-knn":
        return LabelSpreading(kernel="knn", n_neighbors=int(params["n_neighbors"]), max_iter=200)
    if name == "labelspreading-rbf":
        return LabelSpreading(kernel="rbf", gamma=float(params["gamma"]), max_iter=200)
    return SVC(C=float(params["C"]), gamma=float(params["gamma"]))


def fit_baseline(name, values, ds, labels, seed, validation):
    """Fit baseline ``name`` with parameters ``values`` on the split kzoo's run of ``seed`` uses.

    ``validation`` > 0: the fold of :func:`kzoo.experiment._split` (validation
    examples out of the labeled set and the unlabeled pool), scored on its
    validation split (``val_error``/``val_nll``); 0: all ``labels`` labels,
    scored on the test set. NLL uses probabilities clipped at 1e-7 (None for the SVC).
    """
    import numpy as np

    from kzoo.experiment import _split

    x_l, y_l, x_u, x_val, y_val = _split(ds, labels, validation, seed)
    flat = lambda x: np.asarray(x, dtype=np.float64).reshape(len(x), -1)  # noqa: E731
    model = _model(name, values)
    t = time.time()
    if name == "svc":
        model.fit(flat(x_l), y_l)
    else:  # transductive, with the same unlabeled pool kzoo's methods see
        x = np.concatenate([flat(x_l), flat(x_u)])
        y = np.concatenate([np.asarray(y_l), -np.ones(len(x_u), dtype=int)])
        model.fit(x, y)
    x_eval, y_eval, prefix = (x_val, y_val, "val") if validation else (ds.x_test, ds.y_test, "test")
    nll = None  # the SVC has no probabilities (Platt scaling on 3 labels per class would be noise)
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(flat(x_eval)), dtype=np.float64)
        # LabelSpreading gives 0/0 = NaN rows for points its graph leaves unreached: no information, so the
        # uniform distribution (a finite NLL of log K, which keeps the tie-break on NLL well defined)
        proba[~np.isfinite(proba).all(axis=1)] = 1.0 / proba.shape[1]
        proba = np.clip(proba, 1e-7, 1.0)
        classes = list(model.classes_)
        y_idx = np.array([classes.index(c) if c in classes else -1 for c in y_eval])
        nll = float(-np.log(np.where(y_idx >= 0, proba[np.arange(len(y_eval)), np.maximum(y_idx, 0)], 1e-7)).mean())
    return {f"{prefix}_error": float((model.predict(flat(x_eval)) != y_eval).mean()), f"{prefix}_nll": nll,
            "train_seconds": round(time.time() - t, 3)}
