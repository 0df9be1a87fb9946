"""Why input mixup can hurt on digits: where mixed points land (issue 15, claim (d) diagnosis).

Mixup trains on x̃ = λ x_i + (1 − λ) x_j with the target λ y_i + (1 − λ) y_j. That target is right when the
segment between x_i and x_j stays off the data of other classes. This measures, on digits' training split, how
often it does not: for random pairs of training digits of different classes and λ ~ Beta(α, α), the class of
the mixed point's nearest real training digit (its 1-NN label, a proxy for what the data say there) against the
two classes the mixup target puts all its mass on. Pure numpy (no training): a few seconds.

    .venv/bin/python benchmarks/mixup_geometry.py        # prints the JSON that benchmarks/run.py stores
"""

import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(pairs=20_000, alphas=(0.2, 1.0, 2.0), seed=0):
    sys.path.insert(0, ROOT)
    from kzoo import data as kdata

    ds = kdata.load("digits", flatten=True)
    x = np.asarray(ds.x_train, dtype=np.float64).reshape(len(ds.x_train), -1)
    y = np.asarray(ds.y_train).astype(int)
    rng = np.random.default_rng(seed)
    sq = (x ** 2).sum(1)
    out = {"n_train": int(len(x)), "pairs": pairs, "dim": int(x.shape[1]), "rows": []}
    i = rng.integers(0, len(x), pairs)
    j = rng.integers(0, len(x), pairs)
    keep = y[i] != y[j]
    i, j = i[keep], j[keep]
    for alpha in alphas:
        lam = rng.beta(alpha, alpha, len(i))
        mixed = lam[:, None] * x[i] + (1 - lam[:, None]) * x[j]
        d = sq[None, :] - 2 * mixed @ x.T  # + |mixed|^2, constant per row
        d[np.arange(len(i)), i] = np.inf  # the two sources themselves are not neighbours
        d[np.arange(len(i)), j] = np.inf
        nn = y[np.argmin(d, axis=1)]
        major = np.where(lam >= 0.5, y[i], y[j])
        minor = np.where(lam >= 0.5, y[j], y[i])
        third = (nn != y[i]) & (nn != y[j])
        middle = np.abs(lam - 0.5) < 0.25  # λ in (0.25, 0.75): the target splits its mass
        out["rows"].append({
            "alpha": alpha,
            "nn_is_major": float(np.mean(nn == major)),
            "nn_is_minor": float(np.mean(nn == minor)),
            "nn_is_third": float(np.mean(third)),
            "middle_fraction": float(np.mean(middle)),
            "nn_is_third_middle": float(np.mean(third[middle])) if middle.any() else None,
            "mean_target_mass_on_nn_class": float(np.mean(np.where(nn == y[i], lam, 0.0)
                                                          + np.where(nn == y[j], 1 - lam, 0.0))),
        })
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
