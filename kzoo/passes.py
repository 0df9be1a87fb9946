"""Passes of a network that update none of its state, and the EMA teacher (one helper for every method).

* :func:`call_without_updates` -- ``model(x)`` discarding batch-norm (and every other) state update: the
  perturbed, augmented and mixed passes of the regularizers.
* :class:`EMATeacher` -- an exponential moving average of a network's variables (Tarvainen & Valpola, "Mean
  teachers are better role models", 2017): the teacher of Mean Teacher and the optional target network of
  VAT (``VAT(ema_teacher=0.99)``) and of the semi-supervised mixup consistency term
  (``ManifoldMixup(ema_teacher=0.99)``). A regularizer asks for one by setting ``ema_teacher`` to a decay;
  the model it trains (:class:`kzoo.core.RegularizerMixin`) then owns one ``EMATeacher`` layer,
  ``model.ema_teacher``: its variables are non-trainable Keras variables tracked by the model (saved with
  ``.keras`` files and checkpoints, threaded through JAX's stateless train step), updated after every
  optimizer step by the train step's ``train_step_after_apply`` hook. Regularizers read it through
  :func:`teacher_logits`.
"""

import keras
from keras import ops

from kzoo.errors import InvalidArgumentError, UsageError


def as_float32(logits):
    """Logits in float32: under a mixed-precision policy the network computes in bfloat16/float16,
    but softmax, divergences and losses are computed in float32 (as Keras' own losses do)."""
    return logits if logits.dtype == "float32" else ops.cast(logits, "float32")


def call_without_updates(model, x, training=True, frozen=False):
    """``model(x)`` that discards every state update (batch-norm statistics, ...).

    ``frozen=True`` also stops the gradient to ``model``'s trainable variables
    (it still flows to ``x``): the view of a network that another network's
    loss goes through, e.g. the discriminator inside the generator's loss of a
    GAN, so that one backward pass over the sum of both losses gives each
    network the gradient of its own loss only.
    """
    trainable = [v.value for v in model.trainable_variables]
    if frozen:
        trainable = [ops.stop_gradient(v) for v in trainable]
    non_trainable = [v.value for v in model.non_trainable_variables]
    out, _ = model.stateless_call(trainable, non_trainable, x, training=training)
    return out


# --------------------------------------------------------------------------
# The EMA teacher
# --------------------------------------------------------------------------


def check_decay(decay, what="ema_teacher"):
    """``decay`` as a float in [0, 1), or None (no teacher); a one-line error otherwise."""
    if decay is None or decay is False:
        return None
    try:
        value = float(decay)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value < 1.0:
        raise InvalidArgumentError(f"{what} is the EMA teacher's decay, a number in [0, 1) (e.g. 0.99 or 0.999), "
                                   f"got {decay!r}")
    return value


def common_decay(regularizers):
    """The one EMA decay that ``regularizers`` (summed) ask for, or None; an error when they ask for two."""
    decays = {r.ema_teacher for r in regularizers if getattr(r, "ema_teacher", None) is not None}
    if len(decays) > 1:
        raise InvalidArgumentError(f"regularizers in a sum share one EMA teacher: give them the same ema_teacher "
                                   f"decay, got {sorted(decays)}")
    return decays.pop() if decays else None


def _is_float(variable):
    return "float" in keras.backend.standardize_dtype(variable.dtype)


def ema_decay_at(decay, step):
    """The decay of the update after optimizer step ``step`` (1 for the first): min(decay, 1 - 1/(step + 1)).

    Mean Teacher's reference implementation: early on the teacher follows the student closely (the first
    update averages them equally), so that its random initialization does not linger for 1/(1 - decay) steps.
    """
    step = ops.cast(step, "float32")
    return ops.minimum(ops.convert_to_tensor(decay, "float32"), 1.0 - 1.0 / (step + 1.0))


class EMATeacher(keras.layers.Layer):
    """An exponential moving average of every float variable of a network (weights and batch-norm statistics).

    ``EMATeacher(network, decay)`` starts as a copy of ``network``'s variables. ``update(network, step)``
    sets each shadow θ' ← d θ' + (1 - d) θ with d = :func:`ema_decay_at` (decay, step); ``logits(network, x)``
    is the network's pass with the shadows in place of its variables, discarding every state update (the
    teacher never changes batch-norm statistics) and without gradient. The network itself is not held (it
    is passed in), so the model tracks its variables once; the shadows are in the order of
    ``network.trainable_variables + network.non_trainable_variables`` (non-float ones, seed states, are
    not averaged: the teacher pass uses the network's own).
    """

    def __init__(self, network=None, decay=0.99, **kwargs):
        kwargs.setdefault("name", "ema_teacher")
        super().__init__(trainable=False, **kwargs)
        self.decay = check_decay(decay)
        self.shadows = []
        if network is not None:
            for i, v in enumerate(list(network.trainable_variables) + list(network.non_trainable_variables)):
                if _is_float(v):
                    shadow = self.add_weight(shape=tuple(v.shape), dtype=v.dtype, initializer="zeros",
                                             trainable=False, aggregation="mean", name=f"shadow_{i}")
                    shadow.assign(ops.copy(v.value))  # a buffer of its own (JAX donates each)
                    self.shadows.append(shadow)
        self._count = None if network is None else len(network.trainable_variables) + \
            len(network.non_trainable_variables)
        self.built = True

    def _pairs(self, network):
        """``[(variable, its shadow or None)]`` over ``network``'s variables in stateless_call's order; a model that
        is its own network (a RegularizerMixin model) holds the shadows too: they are passed through, unshadowed."""
        variables = list(network.trainable_variables) + list(network.non_trainable_variables)
        own = {id(s) for s in self.shadows}
        if len(variables) - sum(id(v) in own for v in variables) != self._count:
            raise UsageError(f"this EMA teacher shadows a network of {self._count} variables, not "
                             f"{network.name} ({len(variables) - len(own)}): build the model before training it")
        shadows = iter(self.shadows)
        return [(v, next(shadows) if _is_float(v) and id(v) not in own else None) for v in variables]

    def update(self, network, step):
        """One EMA step after optimizer step ``step`` (a tensor or a number, 1 for the first step)."""
        d = ema_decay_at(self.decay, step)
        for v, shadow in self._pairs(network):
            if shadow is not None:
                d_v = ops.cast(d, shadow.dtype)
                shadow.assign(d_v * shadow.value + (1.0 - d_v) * ops.cast(v.value, shadow.dtype))

    def logits(self, network, x, training=True):
        """The teacher's logits of ``x`` (float32, no gradient, no state update)."""
        values = [v.value if shadow is None else shadow.value for v, shadow in self._pairs(network)]
        n = len(network.trainable_variables)
        out, _ = network.stateless_call(values[:n], values[n:], x, training=training)
        return ops.stop_gradient(as_float32(out))

    def get_config(self):
        return {**super().get_config(), "decay": self.decay}


def teacher_logits(ctx, x, training=None):
    """The EMA teacher's logits of ``x`` in a train step (``ctx``: a :class:`kzoo.core.StepContext`), by default
    in the step's mode (training: batch statistics of ``x``, nothing updated)."""
    if ctx.teacher is None:
        raise UsageError("this regularizer reads an EMA teacher, but the model has none: train it with "
                         "kzoo.Regularized or a RegularizerMixin model (they make one when the regularizer's "
                         "ema_teacher is set)")
    return ctx.teacher.logits(ctx.network, x, training=ctx.training if training is None else training)


def attach(model):
    """Give ``model`` (a RegularizerMixin model) the EMA teacher its regularizer asks for, once its network is
    built: ``model.ema_teacher``, a tracked layer. A no-op when there is nothing to do or it is not built yet."""
    reg = getattr(model, "regularizer", None)
    decay = None if reg is None else getattr(reg, "ema_teacher", None)
    try:
        network = model.network
    except AttributeError:  # Regularized before its classifier is set
        return None
    current = getattr(model, "ema_teacher", None)
    if decay is None or not network.built or not network.variables:
        return current
    if current is None or current.decay != decay:
        model.ema_teacher = EMATeacher(network, decay)
    return model.ema_teacher
