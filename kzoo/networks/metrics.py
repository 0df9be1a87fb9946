"""Metrics of generator networks, reusable by every generative model of kzoo (GAN, ALI, ...).
"""

from kzoo.errors import InvalidArgumentError
import functools

import keras
import numpy as np
from keras import ops

from kzoo import ops as kops
from kzoo.core import StepContext
from kzoo.networks.gan import latent_dim_of


def generator_jacobian(generator, z, training=False, chunk=2048):
    """Jacobians dG/dz at each row of ``z``: numpy array (n, input size, latent size), by forward mode.

    One JVP per chunk of up to ``chunk`` (z, basis direction) pairs instead of one per latent axis (with
    ``training=True`` batch-norm statistics would span a chunk of repeated rows: use inference mode).
    """
    z = np.asarray(z, "float32")
    n, nz = z.shape
    zs = np.repeat(z, nz, axis=0)  # row i·nz + j: z_i with direction e_j
    es = np.tile(np.eye(nz, dtype="float32"), (n, 1))
    cols = []
    for start in range(0, n * nz, chunk):
        zc = ops.convert_to_tensor(zs[start:start + chunk])
        m = int(zc.shape[0])

        def flat(zz, m=m):
            return ops.reshape(generator(zz, training=training), (m, -1))

        ec = ops.convert_to_tensor(es[start:start + chunk])
        cols.append(np.asarray(ops.convert_to_numpy(StepContext.jvp(flat, zc, ec)), np.float64))
    return np.concatenate(cols).reshape(n, nz, -1).transpose(0, 2, 1)


def mean_log_condition_number(generator, n=64, seed=0, latent="normal", training=False):
    """Generator mean log condition number (MLCN; paper 000 App. C, after Odena et al. 2018).

    For sampled z, J = dG/dz (input size × latent size) and the metric tensor
    M = JᵀJ; the condition number is λ_max(M) / λ_min(M) = (s_max / s_min)² with
    s the singular values of J. Returns the mean over ``n`` samples of its
    natural log (inf when J is rank deficient). Needs latent size <= input size.
    """
    nz = latent_dim_of(generator)
    nx = int(np.prod(generator.output_shape[1:]))
    if nz > nx:
        raise InvalidArgumentError(f"the latent size {nz} exceeds the output size {nx}: JᵀJ is singular and the condition "
                         "number is infinite for every z")
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, (n, nz)) if latent == "uniform" else rng.normal(size=(n, nz))
    jac = generator_jacobian(generator, z, training)
    # eigenvalues of M = JᵀJ (latent × latent, float64): 20× faster than the SVD of the tall J on 32×32×3
    lam = np.linalg.eigvalsh(np.matmul(jac.transpose(0, 2, 1), jac))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_cond = np.where(lam[:, 0] > 0, np.log(lam[:, -1]) - np.log(np.maximum(lam[:, 0], 1e-300)), np.inf)
    return float(np.mean(log_cond))


@functools.lru_cache(maxsize=2)
def digits_scorer(seed=0, steps=600):
    """A kzoo MLP trained (supervised, all 1,300 training labels) on digits: the scorer of
    :func:`digits_sample_score`. Cached per process; about 97% test accuracy."""
    from kzoo import data as kdata
    from kzoo.networks import classifiers

    ds = kdata.load("digits")
    clf = classifiers.mlp(input_shape=ds.input_shape, num_classes=10, hidden=(256, 128), name="digits_scorer")
    clf.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(seed)
    for _ in range(steps // 100):
        idx = rng.integers(0, len(ds.x_train), (100, 128))
        for i in idx:
            clf.train_on_batch(ds.x_train[i], ds.y_train[i])
    return clf


def digits_sample_score(x, seed=0):
    """Quality/diversity of generated 8×8 digits, scored by a kzoo digits classifier.

    NOT the Inception score: the same formula exp(E_x KL(p(y|x) || p(y))) but
    with :func:`digits_scorer` (an MLP trained on scikit-learn's digits) in
    place of Inception-v3; it ranges from 1 to 10 and only compares generators
    of 8×8 digits with each other (the real test images score about 9).
    Also returns the mean top-class confidence and the number of classes that
    are the top class of at least 1% of the samples.
    """
    x = np.asarray(x, "float32").reshape(-1, 8, 8, 1)
    logits = np.asarray(digits_scorer(seed).predict(x, verbose=0, batch_size=512), np.float64)
    log_p = kops.log_softmax_numpy(logits)
    p = np.exp(log_p)
    p_y = p.mean(0)
    kl = (p * (log_p - np.log(p_y + 1e-12))).sum(1)
    counts = np.bincount(p.argmax(1), minlength=10)
    return {"digits_score": float(np.exp(kl.mean())), "confidence": float(p.max(1).mean()),
            "classes_covered": int((counts >= 0.01 * len(x)).sum())}
