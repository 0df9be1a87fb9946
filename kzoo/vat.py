"""The VAT family (Miyato et al., "Virtual Adversarial Training", TPAMI 2018).

* :class:`VAT` -- local distributional smoothness with the virtual adversarial
  direction found by K power iterations of finite differences (Algorithm 1).
* :class:`RPT` -- the same smoothness term along a random direction (R^(0)).
* :class:`AdversarialTraining` -- Goodfellow et al.'s adversarial training with
  an L2 (Eq. 3) or L∞ (Eq. 4) constraint; supervised.
* :class:`EntropyMinimization` -- conditional entropy of p(y|x) (Eq. 18), the
  add-on of VAT+EntMin.
"""

from kzoo.errors import InvalidArgumentError
import keras
import numpy as np
from keras import ops

from kzoo import backend as kb
from kzoo import ops as kops
from kzoo.core import LABELED, UNLABELED, Regularizer
from kzoo.passes import check_decay, teacher_logits

_INPUTS = ("all", LABELED, UNLABELED)


def _check_inputs(inputs):
    if inputs not in _INPUTS:
        raise InvalidArgumentError(f"inputs must be one of {_INPUTS}, got {inputs!r}")
    return inputs


def smoothness(ctx, x, logits, r):
    """Per-example KL(p(y|x) || p(y|x + r)) with the clean side held constant (Eq. 5)."""
    return kops.kl_from_logits(ops.stop_gradient(logits), ctx.forward(x + r))


def finite_difference_step(x, xi, relative_floor=True):
    """Per-example finite-difference step ξ, shaped to broadcast against ``x``.

    In float32, ``x + ξ d`` with the paper's ξ = 1e-6 and a unit-norm ``d``
    spread over many input dimensions moves each component by less than the
    rounding of ``x`` itself: the perturbation is lost and the power iteration
    returns noise (or zeros). With ``relative_floor`` the step is raised to
    sqrt(machine epsilon) · ||x||, the textbook finite-difference step, which
    keeps the direction accurate while staying in the linear regime.
    """
    axes = tuple(range(1, len(x.shape)))
    xi = ops.convert_to_tensor(xi, dtype=x.dtype)
    if not relative_floor:
        return xi
    eps = float(np.finfo(keras.backend.standardize_dtype(x.dtype)).eps)
    norm = ops.sqrt(ops.sum(ops.square(ops.stop_gradient(x)), axis=axes, keepdims=True))
    return ops.maximum(xi, np.sqrt(eps) * norm)


def power_iteration(ctx, x, logits, xi, iterations, seed_generator, hvp="finite_difference",
                    relative_xi_floor=True, perturbed=None):
    """Approximate the dominant eigenvector of the Hessian of KL(p(x) || p(x + r)) at r=0.

    ``perturbed(r)``: the logits of the input perturbed by ``r`` (default
    ``ctx.forward(x + r)``, VAT); ``x`` is then the point ``r`` lives at and
    whose shape it has, e.g. LVAT's latent z with
    ``perturbed = lambda r: ctx.forward(Dec(z + r))``.

    ``hvp="finite_difference"`` is the paper's Eq. (13): H d ≈ ∇_r D(r)|_{r=ξd} / ξ,
    with ξ floored as in :func:`finite_difference_step`.
    ``hvp="exact"`` computes H d exactly as J^T (diag(p) - p p^T) J d -- the
    Hessian of the KL at r = 0 -- with one Jacobian-vector and one
    vector-Jacobian product: the ξ → 0 limit of the finite difference.
    Returns unit-norm directions (per example), constant for the outer gradient.
    """
    p_logits = ops.stop_gradient(logits)
    d = kb.normal(ops.shape(x), seed_generator, dtype=x.dtype)
    if hvp == "exact":
        # the Jacobian of r -> logits at r = 0 (for VAT: of ctx.forward at x)
        fn, at = (ctx.forward, x) if perturbed is None else (perturbed, ops.zeros_like(x))
        p = ops.softmax(p_logits, axis=-1)
        for _ in range(iterations):
            d = kops.l2_normalize(d)
            u = ctx.jvp(fn, at, d)
            w = ops.stop_gradient(p * u - p * ops.sum(p * u, axis=-1, keepdims=True))
            d = ctx.grad(lambda z: ops.sum(w * fn(z)), at)
        return kops.l2_normalize(d)
    if perturbed is None:
        def perturbed(r):
            return ctx.forward(x + r)
    step = finite_difference_step(x, xi, relative_xi_floor)
    for _ in range(iterations):
        d = step * kops.l2_normalize(d)

        def divergence(r):
            return ops.sum(kops.kl_from_logits(p_logits, perturbed(r)))

        d = ctx.grad(divergence, d)
    return kops.l2_normalize(d)


def local_distributional_smoothness(model, x, epsilon=1.0, xi=1e-6, power_iterations=1, seed=0,
                                    training=False, batch_size=1024):
    """Per-example LDS(x) = KL(p(y|x) || p(y|x + r_vadv)) of a trained ``model`` (Eq. 5).

    The quantity VAT minimizes; the heat maps of the paper's Fig. 1. Inference
    mode by default; returns a numpy array of shape (len(x),).
    """
    from kzoo.core import StepContext

    seed_generator = keras.random.SeedGenerator(seed)
    out = []
    for start in range(0, len(x), batch_size):
        xb = ops.convert_to_tensor(np.asarray(x[start:start + batch_size], dtype="float32"))
        ctx = StepContext(model, xb, None, None, None, None, seed_generator, training=training)
        logits = ctx.forward(xb)
        d = power_iteration(ctx, xb, logits, xi, power_iterations, seed_generator)
        out.append(ops.convert_to_numpy(smoothness(ctx, xb, logits, epsilon * d)))
    return np.concatenate(out)


@keras.saving.register_keras_serializable(package="kzoo")
class VAT(Regularizer):
    """Virtual adversarial training: α · E[KL(p(y|x) || p(y|x + r_vadv))].

    Args:
        epsilon: radius ε of the L2 ball of the virtual adversarial perturbation
            (in input units).
        alpha: weight α of the LDS term (the paper fixes α = 1).
        xi: finite-difference step ξ of the power iteration (paper: 1e-6).
        power_iterations: K >= 1.
        inputs: "all" (labeled + unlabeled, the paper's setting), "labeled" or
            "unlabeled".
        hvp: "finite_difference" (the paper's) or "exact" (see :func:`power_iteration`).
        relative_xi_floor: raise ξ per example to sqrt(eps)·||x|| so that the
            finite difference survives float32 rounding (see
            :func:`finite_difference_step`); False uses ξ literally.
        rampup_steps: sigmoid ramp-up of α over this many steps (0: none).
        ema_teacher: an EMA decay (e.g. 0.99): the clean prediction p(y|x), VAT's target, comes
            from an EMA teacher of the network (:class:`kzoo.passes.EMATeacher`, Mean Teacher's)
            instead of the network itself; None: the paper's VAT.
    """

    name = "vat"

    def __init__(
        self,
        epsilon=1.0,
        alpha=1.0,
        xi=1e-6,
        power_iterations=1,
        inputs="all",
        hvp="finite_difference",
        relative_xi_floor=True,
        rampup_steps=0,
        ema_teacher=None,
    ):
        super().__init__(rampup_steps=rampup_steps)
        self.epsilon = kops.check_positive("epsilon", epsilon)
        self.alpha = kops.check_positive("alpha", alpha, allow_zero=True)
        self.xi = kops.check_positive("xi", xi)
        if not isinstance(power_iterations, int) or power_iterations < 1:
            raise InvalidArgumentError(
                f"power_iterations (K) must be an integer >= 1, got {power_iterations!r}; "
                "K = 0 is random perturbation training: use kzoo.regularizers.RPT"
            )
        if hvp not in ("finite_difference", "exact"):
            raise InvalidArgumentError(f"hvp must be 'finite_difference' or 'exact', got {hvp!r}")
        self.power_iterations = power_iterations
        self.inputs = _check_inputs(inputs)
        self.hvp = hvp
        self.relative_xi_floor = bool(relative_xi_floor)
        self.ema_teacher = check_decay(ema_teacher)
        self.weights = {self.name: self.alpha}

    def adversarial_direction(self, ctx, x, logits):
        return power_iteration(
            ctx, x, logits, self.xi, self.power_iterations, ctx.seed_generator, self.hvp,
            self.relative_xi_floor,
        )

    def terms(self, ctx):
        x, logits = ctx.inputs(self.inputs)
        if self.ema_teacher is not None:  # the target p(y|x) from the EMA teacher
            logits = teacher_logits(ctx, x)
        r_adv = self.epsilon * self.adversarial_direction(ctx, x, logits)
        return {self.name: ops.mean(smoothness(ctx, x, logits, r_adv))}

    def get_config(self):
        return {
            "epsilon": self.epsilon,
            "alpha": self.alpha,
            "xi": self.xi,
            "power_iterations": self.power_iterations,
            "inputs": self.inputs,
            "hvp": self.hvp,
            "relative_xi_floor": self.relative_xi_floor,
            **({"ema_teacher": self.ema_teacher} if self.ema_teacher is not None else {}),
            **super().get_config(),
        }


@keras.saving.register_keras_serializable(package="kzoo")
class RPT(Regularizer):
    """Random perturbation training: the LDS term along r uniform on the ε-sphere (R^(0))."""

    name = "rpt"

    def __init__(self, epsilon=1.0, alpha=1.0, inputs="all", rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.epsilon = kops.check_positive("epsilon", epsilon)
        self.alpha = kops.check_positive("alpha", alpha, allow_zero=True)
        self.inputs = _check_inputs(inputs)
        self.weights = {self.name: self.alpha}

    def terms(self, ctx):
        x, logits = ctx.inputs(self.inputs)
        d = kb.normal(ops.shape(x), ctx.seed_generator, dtype=x.dtype)
        r = self.epsilon * kops.l2_normalize(d)
        return {self.name: ops.mean(smoothness(ctx, x, logits, r))}

    def get_config(self):
        return {"epsilon": self.epsilon, "alpha": self.alpha, "inputs": self.inputs, **super().get_config()}


@keras.saving.register_keras_serializable(package="kzoo")
class AdversarialTraining(Regularizer):
    """Adversarial training (Goodfellow et al.): α · CE(y, p(y | x + r_adv)) on labeled data.

    ``norm="l2"``: r_adv = ε g / ||g||_2; ``norm="linf"``: r_adv = ε sign(g),
    with g = ∇_x CE(y, p(y|x)).
    """

    name = "adv"

    def __init__(self, epsilon=1.0, alpha=1.0, norm="l2", rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.epsilon = kops.check_positive("epsilon", epsilon)
        self.alpha = kops.check_positive("alpha", alpha, allow_zero=True)
        if norm not in ("l2", "linf"):
            raise InvalidArgumentError(f"norm must be 'l2' or 'linf', got {norm!r}")
        self.norm = norm
        self.weights = {self.name: self.alpha}

    def terms(self, ctx):
        x, y = ctx.x_l, ctx.y_l

        def loss(r):
            return ops.sum(kops.cross_entropy_from_logits(y, ctx.forward(x + r)))

        g = ctx.grad(loss, ops.zeros_like(x))
        direction = kops.l2_normalize(g) if self.norm == "l2" else kops.linf_normalize(g)
        ce = kops.cross_entropy_from_logits(y, ctx.forward(x + self.epsilon * direction))
        return {self.name: ops.mean(ce)}

    def get_config(self):
        return {"epsilon": self.epsilon, "alpha": self.alpha, "norm": self.norm, **super().get_config()}


@keras.saving.register_keras_serializable(package="kzoo")
class EntropyMinimization(Regularizer):
    """Conditional entropy weight · E[H(p(y|x))] on labeled + unlabeled inputs (Eq. 18)."""

    name = "entmin"

    def __init__(self, weight=1.0, inputs="all", rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.weight = kops.check_positive("entmin weight", weight, allow_zero=True)
        self.inputs = _check_inputs(inputs)
        self.weights = {self.name: self.weight}

    def terms(self, ctx):
        _, logits = ctx.inputs(self.inputs)
        return {self.name: ops.mean(kops.entropy_from_logits(logits))}

    def get_config(self):
        return {"weight": self.weight, "inputs": self.inputs, **super().get_config()}
