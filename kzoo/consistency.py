"""Consistency baselines: Mean Teacher (Tarvainen & Valpola, 2017) and FixMatch (Sohn et al., 2020).

* :class:`MeanTeacher` -- weight · E[mean_c (softmax(student(A(x)))_c - softmax(teacher(A'(x)))_c)²]: the
  student on an augmented input against the EMA teacher (:class:`kzoo.passes.EMATeacher`) on another
  augmentation of it, ramped up with the sigmoid schedule over ``rampup_steps``.
* :class:`FixMatch` -- λ_u · (1/µB) Σ 1[max_c q_c ≥ τ] CE(argmax q, p(y | S(u))) with q = softmax of the
  prediction on a weakly augmented unlabeled input W(u) (a constant: stop-gradient), S a strong
  augmentation; µ is the ratio of the unlabeled to the labeled batch size. The fraction of the unlabeled
  batch above the threshold is logged as ``fixmatch_mask``.

The augmented passes are training-mode passes that update no batch-norm statistics (the clean pass alone
does, as for every kzoo regularizer); augmentations are :class:`kzoo.data.augment1d.Augment` (sequences,
flat vectors and images).
"""

import keras
from keras import ops

from kzoo import ops as kops
from kzoo.core import LABELED, UNLABELED, Regularizer
from kzoo.data.augment1d import STRONG, WEAK, as_augment
from kzoo.errors import InvalidArgumentError
from kzoo.passes import check_decay, teacher_logits

_INPUTS = ("all", LABELED, UNLABELED)


def _check_augment_for(augment, network):
    shape = getattr(network, "input_shape", None)
    if isinstance(shape, (tuple, list)) and shape and not isinstance(shape[0], (tuple, list)):
        augment.check_shape(tuple(shape), f"{network.name}'s inputs")


@keras.saving.register_keras_serializable(package="kzoo")
class MeanTeacher(Regularizer):
    """Mean Teacher: consistency (MSE of class probabilities) with an EMA teacher of the network.

    Args:
        weight: maximum weight of the consistency cost (the paper: 1 to 100 with its mean over classes).
        decay: the teacher's EMA decay α (the paper: 0.99 early, 0.999 later in training).
        augment: the input augmentation :class:`~kzoo.data.augment1d.Augment` (or its config dict) drawn
            independently for the student and the teacher (the paper: Gaussian input noise, translations);
            None: both see the clean input, the student through the step's clean pass.
        inputs: "all" (labeled + unlabeled, the paper), "labeled" or "unlabeled".
        teacher_training: the teacher's pass in training mode (batch statistics, dropout; its updates
            discarded), as the paper's implementation; False: inference mode (its averaged statistics).
        rampup_steps: sigmoid ramp-up of the weight (the paper: the first 80 epochs).
    """

    name = "mean_teacher"

    def __init__(self, weight=1.0, decay=0.99, augment=None, inputs="all", teacher_training=True,
                 rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.weight = kops.check_positive("Mean Teacher consistency weight", weight, allow_zero=True)
        self.decay = check_decay(decay, "Mean Teacher's decay")
        if self.decay is None:
            raise InvalidArgumentError("Mean Teacher needs an EMA decay in [0, 1), e.g. 0.99, got None")
        self.ema_teacher = self.decay
        self.augment = as_augment(augment)
        if inputs not in _INPUTS:
            raise InvalidArgumentError(f"inputs must be one of {_INPUTS}, got {inputs!r}")
        self.inputs = inputs
        self.teacher_training = bool(teacher_training)
        self.weights = {self.name: self.weight}

    def check_network(self, network):
        _check_augment_for(self.augment, network)

    def terms(self, ctx):
        x, logits = ctx.inputs(self.inputs)
        if not self.augment.identity:
            logits = ctx.forward(self.augment(x, ctx.seed_generator))
        x_teacher = self.augment(x, ctx.seed_generator)
        target = ops.softmax(teacher_logits(ctx, x_teacher, training=self.teacher_training and ctx.training))
        return {self.name: ops.mean(kops.probability_mse_from_logits(target, logits))}

    def get_config(self):
        return {"weight": self.weight, "decay": self.decay, "augment": self.augment.get_config(),
                "inputs": self.inputs, "teacher_training": self.teacher_training, **super().get_config()}


@keras.saving.register_keras_serializable(package="kzoo")
class FixMatch(Regularizer):
    """FixMatch: cross-entropy of the strongly augmented unlabeled batch to the confident pseudo-labels of the
    weakly augmented one.

    Args:
        threshold: confidence threshold τ (the paper: 0.95).
        weight: λ_u, the weight of the unlabeled loss (the paper: 1).
        weak, strong: the augmentations (:class:`~kzoo.data.augment1d.Augment` or config dicts; defaults
            :data:`~kzoo.data.augment1d.WEAK` and :data:`~kzoo.data.augment1d.STRONG`). A weak
            augmentation that is the identity reads the step's clean pass instead of a pass of its own.
        rampup_steps: sigmoid ramp-up of λ_u (the paper: none).

    µ, the unlabeled batch's size over the labeled batch's (the paper: 7), is set by the data
    (``kzoo.data.semi_supervised(..., batch_unlabeled=µ·batch_labeled)``, ``--batch-unlabeled``).
    """

    name = "fixmatch"
    mask_name = "fixmatch_mask"

    def __init__(self, threshold=0.95, weight=1.0, weak=None, strong=None, rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.threshold = kops.check_positive("FixMatch threshold τ", threshold, allow_zero=True)
        if self.threshold > 1.0:
            raise InvalidArgumentError(f"FixMatch threshold τ is a probability in [0, 1], got {threshold!r}")
        self.weight = kops.check_positive("FixMatch weight λ_u", weight, allow_zero=True)
        self.weak = WEAK if weak is None else as_augment(weak)
        self.strong = STRONG if strong is None else as_augment(strong)
        # the mask rate is logged (a tracker per name) and weighs nothing
        self.weights = {self.name: self.weight, self.mask_name: 0.0}

    def check_network(self, network):
        _check_augment_for(self.weak, network)
        _check_augment_for(self.strong, network)

    def pseudo_labels(self, logits_weak):
        """``(labels, mask)`` of a batch of weak-augmentation logits: argmax and max-probability ≥ τ (constants)."""
        probs = ops.softmax(ops.stop_gradient(logits_weak), axis=-1)
        mask = ops.cast(ops.max(probs, axis=-1) >= self.threshold, "float32")
        return ops.argmax(probs, axis=-1), mask

    def terms(self, ctx):
        if ctx.x_u is None:
            raise InvalidArgumentError(
                "FixMatch is semi-supervised: it needs labeled + unlabeled batches ({'labeled': x_l, 'unlabeled': "
                "x_u}, y_l) such as kzoo.data.semi_supervised yields")
        x_u = ctx.x_u
        logits_weak = ctx.logits_u if self.weak.identity else ctx.forward(self.weak(x_u, ctx.seed_generator))
        labels, mask = self.pseudo_labels(logits_weak)
        logits_strong = ctx.forward(self.strong(x_u, ctx.seed_generator))
        loss = ops.mean(mask * kops.cross_entropy_from_logits(labels, logits_strong))
        return {self.name: loss, self.mask_name: ops.mean(mask)}

    def get_config(self):
        return {"threshold": self.threshold, "weight": self.weight, "weak": self.weak.get_config(),
                "strong": self.strong.get_config(), **super().get_config()}
