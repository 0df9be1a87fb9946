"""Shared math for every regularizer: divergences, normalizations, schedules.

Everything here is written once in ``keras.ops`` so it runs unchanged on the
TensorFlow and JAX backends. Regularizer families import from here instead of
re-deriving a KL or a per-example normalization of their own.
"""

from kzoo.errors import InvalidArgumentError
import math

import keras
import numpy as np
from keras import ops

from kzoo import backend as kb
from kzoo.checks import check_positive  # noqa: F401  (kzoo.ops.check_positive, as before)

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


def softplus(x):
    """log(1 + exp(x)), stable for large |x|."""
    return ops.softplus(x)


def gan_discriminator_loss(real_logits, fake_logits):
    """Per-example -log σ(D(x)) - log(1 - σ(D(G(z)))) on logits (Goodfellow et al.).

    ``real_logits`` and ``fake_logits`` have one logit per example (any shape
    with the batch first; the extra axes are summed).
    """
    return _sum_nonbatch(ops.softplus(-real_logits)) + _sum_nonbatch(ops.softplus(fake_logits))


def gan_generator_loss(fake_logits):
    """Per-example non-saturating generator loss -log σ(D(G(z))) (ALI paper §2.3, GAN paper §3)."""
    return _sum_nonbatch(ops.softplus(-fake_logits))


def kplus1_unlabeled_loss(real_logits, fake_logits):
    """Per-example unsupervised loss of a K+1-way discriminator (Salimans et al., 2016, §5).

    The discriminator outputs K class logits l; the fake class's logit is fixed
    at 0, so D(x) = p(real | x) = Z / (Z + 1) with Z = Σ_k exp(l_k): a binary GAN
    discriminator whose logit is logsumexp(l). The loss is the mean of the
    real and fake halves, 0.5 · [-log D(x) - log(1 - D(G(z)))], as in the
    reference implementation. Returns a scalar (each half is a batch mean, so
    ``real_logits`` and ``fake_logits`` may have different batch sizes).
    """
    real = ops.logsumexp(real_logits, axis=-1)
    fake = ops.logsumexp(fake_logits, axis=-1)
    return 0.5 * (ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake)))


def feature_matching_loss(real_features, fake_features):
    """Salimans et al.'s generator loss: mean over units of (E f(x) - E f(G(z)))², features flattened."""
    real = ops.reshape(real_features, (ops.shape(real_features)[0], -1))
    fake = ops.reshape(fake_features, (ops.shape(fake_features)[0], -1))
    return ops.mean(ops.square(ops.mean(real, axis=0) - ops.mean(fake, axis=0)))


def squared_l2_distance(a, b):
    """Per-example ||a - b||² over all non-batch axes."""
    return ops.sum(ops.square(a - b), axis=tuple(range(1, len(a.shape))))


def _sum_nonbatch(x):
    return ops.sum(x, axis=tuple(range(1, len(x.shape)))) if len(x.shape) > 1 else x


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


def sample_beta(shape, alpha, beta, seed, candidates=8):
    """X ~ Beta(alpha, beta), float32, from one uniform draw (:func:`kzoo.backend.uniform`) and ``keras.ops`` only.

    No sampling kernel of the backend, so it compiles wherever the rest of a train step does (TensorFlow's
    gamma sampler has no XLA kernel), and one draw instead of several (each random draw is a
    separately compiled counter-based generator: about a second of XLA compile time apiece on a CPU).
    X = G_a / (G_a + G_b), taken as a sigmoid of log G_a - log G_b (exact 0 and 1 only where float32
    rounds there, never 0/0). Each log G: Marsaglia and Tsang (2000) at shape alpha + 1 with
    ``candidates`` proposals (normals by the inverse CDF of the uniforms), the first accepted one kept
    (each is accepted with probability > 0.95 at shape >= 1: all 8 rejected with probability < 1e-10,
    when the mode is used), then the boost G(alpha) = G(alpha + 1) U^(1/alpha), in logs so that small
    alpha does not underflow.
    """
    shape = tuple(shape)
    k = int(candidates)
    u = kb.uniform((2, 2 * k + 1) + shape, seed, minval=1e-30, maxval=1.0, dtype="float32")
    alphas = np.reshape(np.array([alpha, beta], "float32"), (2, 1) + (1,) * len(shape))
    d = alphas + np.float32(2.0 / 3.0)
    c = 1.0 / np.sqrt(9.0 * d)
    # tensors, not numpy arrays: a numpy array on the left of an operator refuses a torch tensor
    alphas, d, c = (ops.convert_to_tensor(a) for a in (alphas, d, c))
    z = np.float32(math.sqrt(2.0)) * ops.erfinv(2.0 * u[:, :k] - 1.0)  # N(0, 1), ±inf at the ends: rejected
    v = ops.power(1.0 + c * z, 3.0)
    safe_v = ops.maximum(v, 1e-30)
    accept = ops.logical_and(v > 0, ops.log(u[:, k:2 * k]) < 0.5 * ops.square(z) + d - d * safe_v
                             + d * ops.log(safe_v))
    first = ops.argmax(ops.cast(accept, "int32"), axis=1)
    chosen = ops.squeeze(ops.take_along_axis(safe_v, ops.expand_dims(first, 1), axis=1), 1)
    chosen = ops.where(ops.any(accept, axis=1), chosen, 1.0)
    log_g = ops.log(d[:, 0] * chosen) + ops.log(u[:, 2 * k]) / alphas[:, 0]
    return ops.sigmoid(log_g[0] - log_g[1])


def permute_rows(x, perm):
    """``x[perm]`` along the first axis, for ``perm`` a permutation of its rows.

    Its gradient gathers with the inverse permutation instead of the scatter-add a general gather
    differentiates to: the same values, and about 2-3% of a Manifold Mixup step on CPU on both backends
    (benchmarks/overhead.py, mlp), where every eligible layer's rows are permuted.
    """
    perm = ops.convert_to_tensor(perm, "int32")

    @ops.custom_gradient
    def permuted(rows):
        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            return ops.take(upstream, ops.argsort(perm), axis=0)

        return ops.take(rows, perm, axis=0), grad

    return permuted(x)


@keras.saving.register_keras_serializable(package="kzoo")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, then linear decay to zero over the last ``decay_steps``.

    The schedule of the VAT paper's experiments (Appendix C and D).
    """

    def __init__(self, learning_rate, total_steps, decay_steps):
        if total_steps < 1:
            raise InvalidArgumentError(f"total_steps must be >= 1, got {total_steps}")
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
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps, "decay_steps": self.decay_steps}


@keras.saving.register_keras_serializable(package="kzoo")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate multiplied by ``factor`` at each of ``boundaries`` (optimizer steps).

    The "divide by 10 at epochs e1, e2, ..." schedule of SGD-trained ResNets
    (Manifold Mixup paper, Appendices C and E): ``learning_rate * factor ** k``
    where k is the number of boundaries <= step (a repeated boundary counts twice).
    """

    def __init__(self, learning_rate, boundaries, factor=0.1):
        boundaries = [int(b) for b in boundaries]
        if any(b < 1 for b in boundaries) or boundaries != sorted(boundaries):
            raise InvalidArgumentError(f"boundaries must be non-decreasing optimizer steps >= 1, got {boundaries}")
        if not (math.isfinite(factor) and factor > 0):
            raise InvalidArgumentError(f"factor must be a finite number > 0, got {factor!r}")
        self.learning_rate = float(learning_rate)
        self.boundaries = boundaries
        self.factor = float(factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        k = 0.0
        for b in self.boundaries:
            k = k + ops.cast(ops.greater_equal(step, float(b)), "float32")
        return self.learning_rate * ops.power(self.factor, k)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "boundaries": list(self.boundaries), "factor": self.factor}


@keras.saving.register_keras_serializable(package="kzoo")
class SGDWithL2(keras.optimizers.SGD):
    """SGD (with momentum) on the gradient of ``loss + l2/2 * ||w||^2``: ``g + l2 * w`` enters the momentum.

    The "weight decay" of PyTorch's SGD and of the papers trained with it
    (coupled L2). Keras' own ``weight_decay`` is decoupled (``w -= lr * wd * w``
    outside the momentum), which with momentum m decays about 1 / (1 - m) times
    less for the same coefficient. Applies to every trainable variable.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2=0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        self.l2 = check_positive("l2", l2, allow_zero=True)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = ops.add(ops.cast(gradient, variable.dtype),
                               ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def log_softmax_numpy(logits):
    """log softmax over the last axis of ``logits`` in float64 numpy (metrics computed outside the graph)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# --------------------------------------------------------------------------
# Several optimizers in one train step (GANs: discriminator, generator, encoder)
# --------------------------------------------------------------------------


class MultiOptimizer(keras.optimizers.Optimizer):
    """One Keras optimizer made of several, each owning a group of variables.

    >>> opt = kzoo.MultiOptimizer({"discriminator": (keras.optimizers.Adam(3e-4, beta_1=0.5), disc),
    ...                            "generator": (keras.optimizers.Adam(3e-4, beta_1=0.5), gen)})
    >>> model.compile(optimizer=opt)

    A group's variables are given as a list of variables or as a layer/model
    (its trainable variables when the optimizer is built). Every trainable
    variable of the trained model must belong to exactly one group. The train
    step computes one gradient (of the sum of the networks' losses, each
    network's loss seeing the others through :func:`kzoo.core.call_without_updates` with
    ``frozen=True``) and this optimizer hands each variable's gradient to the
    optimizer of its group. Because it is a single ``keras.optimizers.Optimizer``
    whose ``variables`` are all its members' variables, ``fit`` on JAX threads
    every member's state through the stateless train step, and checkpoints
    save and restore all of them.

    ``iterations`` counts train steps (each member also counts its own, for
    its learning-rate schedule).
    """

    def __init__(self, groups, name="multi_optimizer"):
        super().__init__(learning_rate=0.0, name=name)
        if not isinstance(groups, dict) or not groups:
            raise InvalidArgumentError("groups must be a non-empty dict: name -> (optimizer, variables or layer)")
        # Set past Optimizer.__setattr__: its tracker would adopt the variables of a
        # group given as a list as this optimizer's own state, and on JAX the stale
        # copies threaded through fit would then overwrite the trained weights.
        object.__setattr__(self, "groups", {})
        for group, spec in groups.items():
            try:
                optimizer, owner = spec
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"group {group!r} must be (optimizer, variables or layer), got {spec!r}") from None
            optimizer = keras.optimizers.get(optimizer)
            if isinstance(optimizer, MultiOptimizer):
                raise InvalidArgumentError("MultiOptimizer groups cannot be MultiOptimizers")
            if optimizer.loss_scale_factor is not None or optimizer.gradient_accumulation_steps:
                raise InvalidArgumentError(f"group {group!r}: loss scaling and gradient accumulation are not supported "
                                 "inside a MultiOptimizer")
            self.groups[group] = (optimizer, owner)
        self._owner_of = {}

    @property
    def optimizers(self):
        return {g: opt for g, (opt, _) in self.groups.items()}

    def _group_variables(self, owner):
        if isinstance(owner, (list, tuple)):
            return list(owner)
        return list(owner.trainable_variables)

    def build(self, variables):
        if self.built:
            return
        members = {}
        for group, (optimizer, owner) in self.groups.items():
            for v in self._group_variables(owner):
                key = self._var_key(v)
                if key in members:
                    raise InvalidArgumentError(f"variable {v.path} is in groups {members[key]!r} and {group!r}; "
                                     "each variable must have one optimizer")
                members[key] = group
        by_group = {g: [] for g in self.groups}
        for v in variables:
            group = members.get(self._var_key(v))
            if group is None:
                raise InvalidArgumentError(
                    f"trainable variable {v.path} belongs to no group of {self.name} "
                    f"(groups: {', '.join(self.groups)}); add its layer to a group or make it non-trainable"
                )
            by_group[group].append(v)
            self._owner_of[self._var_key(v)] = group
        for group, (optimizer, _) in self.groups.items():
            if by_group[group] and not optimizer.built:
                optimizer.build(by_group[group])
        super().build(variables)

    @property
    def variables(self):
        own = self._variables[:]
        for optimizer, _ in self.groups.values():
            own.extend(optimizer.variables)
        return own

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                self.build(trainable_variables)
        routed = {g: ([], []) for g in self.groups}
        for grad, var in zip(grads, trainable_variables):
            if grad is None:
                continue
            g_list, v_list = routed[self._owner_of[self._var_key(var)]]
            g_list.append(grad)
            v_list.append(var)
        for group, (g_list, v_list) in routed.items():
            if v_list:
                self.groups[group][0].apply(g_list, v_list)
        self._iterations.assign_add(1)

    def update_step(self, gradient, variable, learning_rate):  # every update goes through apply()
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError("a MultiOptimizer is not serialized; rebuild it when loading the model")
