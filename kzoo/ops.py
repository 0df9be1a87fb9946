"""Shared math for every regularizer: divergences, normalizations, schedules.

Everything here is written once in ``keras.ops`` so it runs unchanged on the
TensorFlow and JAX backends. Regularizer families import from here instead of
re-deriving a KL or a per-example normalization of their own.
"""

import math

import keras
from keras import ops

# --------------------------------------------------------------------------
# Divergences on logits
# --------------------------------------------------------------------------


def kl_from_logits(p_logits, q_logits):
    """Per-example KL(p || q) between the categorical distributions given by logits.

    Computed from log-softmax on both sides (never from probabilities) so that
    it stays finite and exact for confident predictions.
    """
    log_p = ops.log_softmax(p_logits, axis=-1)
    log_q = ops.log_softmax(q_logits, axis=-1)
    return ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)


def entropy_from_logits(logits):
    """Per-example entropy H(p) of softmax(logits), in nats."""
    log_p = ops.log_softmax(logits, axis=-1)
    return -ops.sum(ops.exp(log_p) * log_p, axis=-1)


def cross_entropy_from_logits(labels, logits):
    """Per-example cross-entropy for integer class labels."""
    return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def soft_cross_entropy_from_logits(targets, logits):
    """Per-example cross-entropy -sum_c t_c log softmax(logits)_c for soft targets ``t``.

    The loss of mixup on interpolated one-hot targets (Zhang et al., 2017).
    """
    return -ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1)


def probability_mse_from_logits(target_probs, logits):
    """Per-example mean over classes of (softmax(logits) - target_probs)^2.

    The consistency loss of Mean Teacher / semi-supervised mixup (Tarvainen &
    Valpola, 2017; Verma et al., Algorithms 1 and 3).
    """
    return ops.mean(ops.square(ops.softmax(logits, axis=-1) - target_probs), axis=-1)


# --------------------------------------------------------------------------
# Per-example normalizations of perturbations
# --------------------------------------------------------------------------


def _per_example_axes(x):
    return tuple(range(1, len(x.shape)))


def l2_normalize(d, epsilon=1e-12):
    """Scale every example of ``d`` to unit L2 norm (over all non-batch axes).

    The input is first divided by its per-example max-abs value, as in the
    reference VAT implementation, so that tiny gradients (of order 1e-20 when
    the finite difference step is small) do not underflow when squared.
    """
    axes = _per_example_axes(d)
    # Divide by the max-abs value itself (not max + epsilon, which swamps
    # inputs below ~1e-12): afterwards the largest component is exactly 1, so
    # the squared norm is >= 1 and ``epsilon`` only guards all-zero examples.
    scale = ops.max(ops.abs(d), axis=axes, keepdims=True)
    d = d / ops.where(scale > 0, scale, ops.ones_like(scale))
    return d / ops.sqrt(ops.maximum(ops.sum(ops.square(d), axis=axes, keepdims=True), epsilon))


def linf_normalize(d):
    """Sign of ``d``: the steepest ascent direction under an L∞ constraint."""
    return ops.sign(d)


def per_example_l2_norm(x):
    return ops.sqrt(ops.sum(ops.square(x), axis=_per_example_axes(x)))


# --------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------


def sigmoid_rampup(step, rampup_steps):
    """Mean Teacher's ramp-up weight exp(-5 (1 - t)^2), t = step / rampup_steps in [0, 1].

    ``step`` may be a tensor (the optimizer's iteration counter) or a number.
    ``rampup_steps <= 0`` means no ramp-up (weight 1).
    """
    if rampup_steps is None or rampup_steps <= 0:
        return 1.0
    t = ops.clip(ops.cast(step, "float32") / float(rampup_steps), 0.0, 1.0)
    return ops.exp(-5.0 * ops.square(1.0 - t))


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, then linear decay to zero over the last ``decay_steps``.

    The schedule of the VAT paper's experiments (Appendix C and D).
    """

    def __init__(self, learning_rate, total_steps, decay_steps):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.decay_steps = int(min(max(decay_steps, 0), total_steps))

    def __call__(self, step):
        if self.decay_steps == 0:
            return ops.convert_to_tensor(self.learning_rate, "float32")
        start = float(self.total_steps - self.decay_steps)
        step = ops.cast(step, "float32")
        frac = ops.clip((step - start) / float(self.decay_steps), 0.0, 1.0)
        return self.learning_rate * (1.0 - frac)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "decay_steps": self.decay_steps,
        }


def check_positive(name, value, allow_zero=False):
    """Raise a ValueError naming the hyperparameter when it is out of range."""
    ok = value is not None and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)
