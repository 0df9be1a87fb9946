"""The mixup family (Verma et al., "Manifold Mixup: Learning Better Representations
by Interpolating Hidden States", 2018; Zhang et al., "mixup", 2017).

* :class:`ManifoldMixup` -- pick one eligible layer k and one λ ~ Beta(α, α) per
  batch, run the batch to layer k, mix the hidden states of random pairs
  (h_mix = λ h_i + (1 - λ) h_j) and their one-hot targets the same way, and
  continue from h_mix to the logits (the paper's Eq. 1 and Algorithm 2). The
  cross-entropy on the mixed batch replaces the clean cross-entropy, as in the
  paper (``supervised_weight = 0``; ``replace_supervised=False`` adds it to
  the clean loss instead). Gradients flow through the layers before k.
* the semi-supervised variant (the paper's Algorithms 1 and 3): with
  ``consistency > 0`` and labeled + unlabeled batches, an unlabeled term is
  added: the mean squared difference between the softmax of the mixed
  unlabeled batch and the equally mixed, stop-gradient softmax pseudo-targets
  of the clean unlabeled batch, weighted by ``consistency`` and ramped from 0
  with the sigmoid schedule over ``rampup_steps``.
* :class:`InputMixup` -- the case where the input is the only eligible layer.

The mixed pass runs once through the model's functional graph
(:func:`mixed_forward`), blending the hidden states at the chosen layer and
passing every other layer's output through unchanged, so a compiled step holds
one forward-backward for any number of eligible layers. Eligible layers are
those where the graph can be split (:func:`kzoo.mixup_graph.split_model`: no skip
connection across it); by default (``layers="auto"``, :func:`auto_layers`) the input and
the outputs of the network's first two stages, the paper's choice.

By default the supervised step is the paper's (``batch_norm="paper"``): one
training-mode pass over the mixed batch, which alone updates batch norm (the
paper's implementation; the paper's text does not say which pass updates
them). Otherwise (the semi-supervised variant, ``replace_supervised=False``, or
``batch_norm="clean"``/``"mixed"`` asked for) the mixed pass is stateless and
the clean pass alone updates the statistics; with "clean" the batch-norm layers
after the mixing point normalize the mixed batch with the clean batch's
statistics (see ManifoldMixup).

Targets are class indices (as kzoo.data yields them) or one-hot / probability
rows of width num_classes; anything else is rejected with a clear error when
the train step is traced, before any update.
"""

import contextlib

import keras
import numpy as np
from keras import ops

from kzoo import backend as kb
from kzoo import ops as kops
from kzoo.core import Regularizer, as_float32
from kzoo.errors import InvalidArgumentError, SplitError
# auto_layers is public API here (README, "The layer rule": kzoo.mixup.auto_layers); the graph logic lives
# in kzoo.mixup_graph
from kzoo.mixup_graph import AUTO_RULE, INPUT, auto_layers, split_model
from kzoo.passes import check_decay, teacher_logits

AUTO = "auto"
BATCH_NORM_MODES = ("clean", "mixed", "paper")


# --------------------------------------------------------------------------
# One pass through the graph, mixing at an eligible layer
# --------------------------------------------------------------------------


def _contains_batch_norm(layer):
    if isinstance(layer, keras.layers.BatchNormalization):
        return True
    try:
        return any(isinstance(sub, keras.layers.BatchNormalization) for sub in layer._flatten_layers())
    except AttributeError:
        return False


def _batch_norm_slots(model):
    """``[(index in model.non_trainable_variables, momentum)]`` of the moving statistics of every
    batch-norm layer of ``model`` that normalizes with batch statistics in training mode."""
    try:
        layers = list(model._flatten_layers(include_self=False))
    except AttributeError:  # pragma: no cover - every Keras 3 layer has it
        layers = list(getattr(model, "layers", []))
    index = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    slots = []
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
            for var in (layer.moving_mean, layer.moving_variance):
                slots.append((index[id(var)], float(layer.momentum)))
    return slots


def mixed_forward(model, x, mix=None, training=True, batch_norm_training=None, stateless=True, non_trainable=None):
    """``model(x)`` in one pass over its graph, with ``mix(h, name)`` applied to the input (name "input")
    and to the output of every layer of the functional ``model``.

    One graph for every mixing layer (the layer chosen at random is selected inside ``mix``), so a
    compiled step holds one forward and one backward pass, not one per eligible layer.
    ``batch_norm_training`` (default: ``training``) is the mode of the top-level layers that are or
    contain batch norm. ``stateless`` runs in a stateless scope that discards every update, with the
    model's current values or ``non_trainable`` (values of ``model.non_trainable_variables``) in place of
    its non-trainable ones; ``stateless=False`` runs statefully (training-mode batch norm updates its
    statistics). A model that is not functional takes ``mix`` at the input only and runs in
    ``batch_norm_training`` mode throughout.
    """
    mix = mix or (lambda h, name: h)
    bn_mode = training if batch_norm_training is None else batch_norm_training
    x = mix(x, INPUT)
    scope = None
    if stateless:  # every value mapped, so that an enclosing stateless train step's values are read
        if non_trainable is None:
            non_trainable = [v.value for v in model.non_trainable_variables]
        mapping = [(v, v.value) for v in model.trainable_variables] + list(zip(model.non_trainable_variables,
                                                                                non_trainable))
        scope = keras.StatelessScope(state_mapping=mapping)
    graph = getattr(model, "_run_through_graph", None) if getattr(model, "_nodes_by_depth", None) else None
    with scope if scope is not None else contextlib.nullcontext():
        if graph is None:
            return model.call(x, training=bn_mode) if scope is not None else model(x, training=bn_mode)

        def operation_fn(op):
            mode = bn_mode if _contains_batch_norm(op) else training

            def call(*args, **kwargs):
                if "training" in getattr(op, "_call_context_args", ()):
                    kwargs["training"] = mode
                return mix(op(*args, **kwargs), op.name)
            return call

        out = graph(model._standardize_inputs(x), operation_fn=operation_fn)
        return out[0] if isinstance(out, (list, tuple)) else out


def batch_statistics(model, x, slots=None):
    """The non-trainable values of ``model`` with each batch-norm layer's moving statistics replaced by
    the batch statistics of ``x`` (with gradient), from one stateless training-mode pass in which the
    moving statistics are set to zero: its update ``(1 - momentum) * batch statistic`` gives them exactly."""
    slots = _batch_norm_slots(model) if slots is None else slots
    trainable = [v.value for v in model.trainable_variables]
    moving = [v.value for v in model.non_trainable_variables]
    zeroed = list(moving)
    for i, _ in slots:
        zeroed[i] = ops.zeros_like(moving[i])
    _, updated = model.stateless_call(trainable, zeroed, x, training=True)
    stats = list(moving)
    for i, momentum in slots:
        stats[i] = updated[i] / (1.0 - momentum)
    return stats


def call_with_batch_statistics_of(model, x_stats, x, slots=None, mix=None, training=True):
    """``model(x)`` with every batch-norm layer normalizing by the batch statistics of ``x_stats``.

    Batch norm runs in inference mode with those statistics in place of the moving ones
    (:func:`batch_statistics`); the other layers (dropout, noise) in ``training`` mode, as in the
    functional ``model``'s training pass. Nothing is updated. Gradients flow through both passes (as
    through the batch statistics of training-mode batch norm). ``mix`` as :func:`mixed_forward`.
    """
    stats = batch_statistics(model, x_stats, slots)
    return mixed_forward(model, x, mix, training=training, batch_norm_training=False, non_trainable=stats)


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


def _target_error(detail):
    return InvalidArgumentError(
        f"mixup needs targets that are class indices (shape (batch,), integers) or one-hot rows "
        f"(shape (batch, num_classes)); {detail}"
    )


def as_probabilities(y, num_classes):
    """Targets as rows of class probabilities, for mixing (class indices -> one-hot)."""
    shape = tuple(y.shape)
    rank = len(shape)
    if rank == 2 and shape[-1] == 1:
        y, shape, rank = ops.squeeze(y, axis=-1), shape[:1], 1
    if rank == 1:
        dtype = keras.backend.standardize_dtype(y.dtype)
        if "int" not in dtype and dtype != "bool":
            if "float" not in dtype:
                raise _target_error(f"got dtype {dtype}")
        return ops.one_hot(ops.cast(y, "int32"), num_classes)
    if rank == 2:
        if shape[-1] != num_classes:
            raise _target_error(f"got rows of width {shape[-1]} for a model with {num_classes} classes")
        return ops.cast(y, "float32")
    raise _target_error(f"got shape {shape}")


def check_targets(y, num_classes):
    """Numpy check of a label array before training: class indices in range, or one-hot rows."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
            raise _target_error(f"got non-integer values of dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise _target_error(f"got class indices outside 0..{num_classes - 1}")
        return y.astype("int32")
    if y.ndim == 2 and y.shape[1] == num_classes:
        if np.any(y < 0) or not np.allclose(y.sum(axis=1), 1.0, atol=1e-4):
            raise _target_error("got rows that are not probability vectors (non-negative, summing to 1)")
        return y.astype("float32")
    raise _target_error(f"got shape {y.shape}")


# --------------------------------------------------------------------------
# The regularizers
# --------------------------------------------------------------------------


def _parse_layers(layers):
    if layers is None or (isinstance(layers, str) and layers.strip() == AUTO):
        return layers if layers is None else AUTO
    if isinstance(layers, str):
        layers = [s.strip() for s in layers.split(",") if s.strip()]
    if layers is None:
        layers = []
    layers = list(layers)
    if not layers:
        raise InvalidArgumentError("the set of eligible mixing layers is empty; name at least one layer, e.g. "
                         "layers=['input'] (input mixup) or ['input', 'block1', 'block2']")
    for name in layers:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"mixing layers are given by layer name (str), got {name!r}")
    if AUTO in layers:
        raise InvalidArgumentError(f"layers='auto' picks the eligible layers itself: pass it alone, got {layers}")
    if len(set(layers)) != len(layers):
        raise InvalidArgumentError(f"mixing layers must be distinct, got {layers}")
    return tuple(layers)


def _check_alpha(name, value):
    try:
        ok = value is not None and np.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidArgumentError(f"{name} (α of Beta(α, α)) must be a finite number > 0, got {value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="kzoo")
class ManifoldMixup(Regularizer):
    """Manifold Mixup (Verma et al.): cross-entropy on batches mixed at a random eligible layer.

    Args:
        alpha: α of λ ~ Beta(α, α) for the labeled batch (paper: 2.0 supervised;
            0.1 for the labeled loss of its semi-supervised runs).
        layers: eligible layer names ("input" for the input), one chosen
            uniformly per batch (a comma-separated string is accepted), or
            "auto": the paper's rule on the network trained (:func:`auto_layers`:
            the input and the outputs of its first two stages; on kzoo's
            networks input, block1, block2), refusing (SplitError) a network
            where no hidden layer is eligible. Default (None): "auto", but such a
            network is mixed at the input only, with a warning saying why.
            The choice is printed once when training starts, and ``get_config``
            holds the chosen names.
        per_example: one λ per example instead of one per batch.
        consistency: maximum weight of the semi-supervised consistency term
            (0: supervised Manifold Mixup; > 0 needs labeled + unlabeled batches).
        unlabeled_alpha: α for mixing the unlabeled batch (default: ``alpha``;
            paper's semi-supervised runs: 2.0).
        rampup_steps: sigmoid ramp-up of ``consistency`` from 0 over this many
            steps (the paper: 40% of training).
        replace_supervised: the mixed cross-entropy replaces the clean one (the
            paper's objective). False adds it to the clean cross-entropy.
        batch_norm: how batch norm treats the mixed batch. Default (None):
            "paper" when the mixed loss is the step's only one (supervised,
            ``replace_supervised=True``), else "clean" (the semi-supervised
            variant's pseudo-targets need the clean pass). "clean":
            the layers after the mixing point normalize it with the statistics
            of the clean batch at that layer (:func:`call_with_batch_statistics_of`;
            one extra forward pass of the clean batch). "mixed": with the mixed
            batch's own statistics, as a plain training-mode pass does. Mixing a
            batch with a permutation of itself keeps its mean but shrinks its
            variance by up to half, so "mixed" re-scales every mixed point
            outward, to the norm of real points; on kzoo's batch-norm MLP this
            made mixup much worse (see benchmarks/RESULTS.md). With either, the
            clean pass alone updates the moving statistics. "paper": the
            paper's implementation, one training-mode pass over the mixed batch
            that normalizes with and updates its own statistics, and no clean
            pass: a step costs one forward-backward, as supervised training
            (needs ``replace_supervised=True`` and ``consistency=0``; the
            logged accuracy is that of the mixed batch against the label of
            each pair's larger weight). The default since issue 27 (before:
            "clean", about twice the cost of a supervised step).
        ema_teacher: an EMA decay (e.g. 0.99): the consistency term's pseudo-targets
            come from an EMA teacher of the network (:class:`kzoo.passes.EMATeacher`).
    """

    name = "mixup"
    consistency_name = "mixup_consistency"

    def __init__(self, alpha=2.0, layers=None, per_example=False, consistency=0.0, unlabeled_alpha=None,
                 rampup_steps=0, replace_supervised=True, batch_norm=None, ema_teacher=None):
        super().__init__(rampup_steps=rampup_steps)
        self.ema_teacher = check_decay(ema_teacher)
        if batch_norm is None:  # the paper's single pass wherever it applies
            batch_norm = "paper" if (not consistency and replace_supervised) else "clean"
        if batch_norm not in BATCH_NORM_MODES:
            raise InvalidArgumentError(f"batch_norm must be one of {', '.join(BATCH_NORM_MODES)}, got {batch_norm!r}")
        self.batch_norm = batch_norm
        self.alpha = _check_alpha("alpha", alpha)
        self.unlabeled_alpha = self.alpha if unlabeled_alpha is None else _check_alpha("unlabeled_alpha",
                                                                                         unlabeled_alpha)
        requested = _parse_layers(layers)
        #: None (auto, input mixup with a warning if nothing is eligible), "auto" (auto, else refuse) or names
        self.layers_requested = requested
        #: the eligible layers: the names given, or those chosen on the network last checked (None before)
        self.layers = requested if isinstance(requested, tuple) else None
        self._chosen = {}  # id(network) -> (network, layers, how they were chosen)
        self._announced = {}  # id(network) -> network
        self.per_example = bool(per_example)
        self.consistency = kops.check_positive("consistency", consistency, allow_zero=True)
        self.replace_supervised = bool(replace_supervised)
        if batch_norm == "paper" and (self.consistency > 0 or not self.replace_supervised):
            raise InvalidArgumentError(
                "batch_norm='paper' trains on one pass over the mixed batch alone: it needs the mixed loss to "
                "replace the clean one (replace_supervised=True, the default) and consistency=0; with a clean "
                "pass in the step use batch_norm='mixed' or 'clean'")
        self.supervised_weight = 0.0 if self.replace_supervised else 1.0
        self.single_pass = batch_norm == "paper"
        self.weights = {self.name: 1.0}
        if self.consistency > 0:
            self.weights[self.consistency_name] = self.consistency
        self._slots = {}

    # -- the network ---------------------------------------------------------

    def layers_for(self, network):
        """The eligible layers on ``network``: the names given, or those the paper's rule picks
        (:func:`auto_layers`, once per network; with the default, input mixup and a warning if no hidden
        layer is eligible; with layers="auto", a SplitError)."""
        if isinstance(self.layers_requested, tuple):
            return self.layers_requested
        if id(network) not in self._chosen:
            layers, reason = auto_layers(network)
            name = getattr(network, "name", type(network).__name__)
            if reason is not None and self.layers_requested == AUTO:
                raise SplitError(f"ManifoldMixup(layers='auto'): no hidden layer of {name} is eligible: {reason}; "
                                 "name the layers (layers=[...]) or use InputMixup")
            if reason is not None:
                import warnings

                warnings.warn(f"ManifoldMixup: no hidden layer of {name} is eligible ({reason}): it falls back "
                              "to input mixup (layers=['input']); name the layers to mix at, or pass "
                              "layers=['input'] / use InputMixup to silence this", UserWarning, stacklevel=4)
            self._chosen[id(network)] = (network, layers, "auto" if reason is None else "auto, input fallback")
        self.layers = self._chosen[id(network)][1]
        return self.layers

    def describe(self, network):
        """One line: where and how this regularizer mixes on ``network``."""
        layers = self.layers_for(network)
        how = ("given" if isinstance(self.layers_requested, tuple) else
               f"{self._chosen[id(network)][2]}: {AUTO_RULE}")
        passes = {"paper": "one mixed pass that updates batch norm (the paper's)",
                  "clean": "a clean pass + a mixed pass normalized with the clean batch's statistics",
                  "mixed": "a clean pass + a mixed pass normalized with its own statistics"}[self.batch_norm]
        return (f"{type(self).__name__} mixes at {', '.join(layers)} ({how}); batch_norm={self.batch_norm!r}: "
                f"{passes}")

    def check_network(self, network):
        """Every eligible layer must be a point where ``network`` can be split (SplitError otherwise)."""
        for layer in self.layers_for(network):
            split_model(network, layer)

    def begin_training(self, network):
        """Print :meth:`describe` once per network, when its training starts."""
        if id(network) not in self._announced:
            self._announced[id(network)] = network
            print("kzoo: " + self.describe(network), flush=True)

    def _batch_norm_slots(self, network):
        if id(network) not in self._slots:
            self._slots[id(network)] = (network, _batch_norm_slots(network))
        return self._slots[id(network)][1]

    # -- mixing ----------------------------------------------------------------

    def sample(self, ctx, n, alpha):
        """``(λ, permutation, layer index)`` for one batch of ``n``: λ ~ Beta(α, α) (one, or one per
        example), the partner of example i is ``permutation[i]``, the layer is uniform over the eligible ones."""
        layers = self.layers_for(ctx.network)
        seed = ctx.seed_generator
        lam = kops.sample_beta((n,) if self.per_example else (), alpha, alpha, seed)
        # the partners and the layer from one more draw (each random draw costs compile time). Not the same
        # draw as λ's: drawing all at once was measured 10% slower on TensorFlow conv_small (XLA, CPU)
        u = kb.uniform((n + 1,), seed, dtype="float32")
        perm = ops.cast(ops.argsort(u[:n]), "int32")
        if len(layers) == 1:
            return lam, perm, 0
        return lam, perm, ops.minimum(ops.cast(u[n] * len(layers), "int32"), len(layers) - 1)

    def mixed_logits(self, ctx, x, lam, perm, k, stateful=False):
        """Logits of ``x`` mixed with weight ``lam`` and partners ``perm`` at eligible layer ``k``.

        One pass through the network for any of the eligible layers (:func:`mixed_forward`). It discards
        its batch-norm updates unless ``stateful`` (batch_norm="paper", the step's only pass).
        """
        index = {name: i for i, name in enumerate(self.layers_for(ctx.network))}

        def blend(h, name):
            i = index.get(name)
            if i is None:
                return h
            if len(index) == 1 or (isinstance(k, int) and i == k):
                lam_i = lam
            elif isinstance(k, int):  # a fixed choice: mix there, nowhere else
                return h
            else:  # λ = 1 (h itself, exactly) at every eligible layer but the chosen one
                lam_i = ops.where(ops.equal(k, i), lam, ops.ones_like(lam))
            return self.pair_mix(h, lam_i, perm)

        net, training = ctx.network, ctx.training
        if self.batch_norm == "clean" and training and not stateful:
            logits = call_with_batch_statistics_of(net, x, x, self._batch_norm_slots(net), mix=blend)
        else:
            logits = mixed_forward(net, x, blend, training=training, stateless=not stateful)
        return as_float32(logits)

    def pair_mix(self, rows, lam, perm):
        """``λ rows + (1 - λ) rows[perm]`` (λ per example broadcast over the other axes)."""
        lam = ops.reshape(lam, (-1,) + (1,) * (len(rows.shape) - 1)) if self.per_example else lam
        lam = ops.cast(lam, rows.dtype)
        return lam * rows + (1.0 - lam) * kops.permute_rows(rows, perm)

    def _mixed_loss(self, ctx, x, targets, alpha, stateful=False):
        """``(loss, logits, λ, perm)``: soft cross-entropy of ``x`` mixed at a random eligible layer against the
        equally mixed ``targets`` (class indices or one-hot rows, see :func:`as_probabilities`)."""
        lam, perm, k = self.sample(ctx, ops.shape(x)[0], alpha)
        logits = self.mixed_logits(ctx, x, lam, perm, k, stateful=stateful)
        targets = as_probabilities(targets, int(logits.shape[-1]))
        loss = ops.mean(kops.soft_cross_entropy_from_logits(self.pair_mix(targets, lam, perm), logits))
        return loss, logits, lam, perm

    # -- the loss terms ----------------------------------------------------------

    def terms(self, ctx):
        out = {self.name: self._mixed_loss(ctx, ctx.x_l, ctx.y_l, self.alpha)[0]}
        if self.consistency > 0:
            if ctx.x_u is None:
                raise InvalidArgumentError(
                    f"consistency={self.consistency} is semi-supervised mixup: it needs labeled + unlabeled "
                    "batches ({'labeled': x_l, 'unlabeled': x_u}, y_l) such as kzoo.data.semi_supervised "
                    "yields; use consistency=0 for supervised data"
                )
            clean_u = ctx.logits_u if self.ema_teacher is None else teacher_logits(ctx, ctx.x_u)
            pseudo = ops.stop_gradient(ops.softmax(clean_u, axis=-1))  # Algorithm 1, line 7
            lam, perm, k = self.sample(ctx, ops.shape(ctx.x_u)[0], self.unlabeled_alpha)
            logits_u = self.mixed_logits(ctx, ctx.x_u, lam, perm, k)
            out[self.consistency_name] = ops.mean(
                kops.probability_mse_from_logits(ops.stop_gradient(self.pair_mix(pseudo, lam, perm)), logits_u))
        return out

    def single_pass_loss(self, ctx, step):
        """batch_norm="paper": the mixed labeled pass is the step's only one and updates batch norm (the
        paper's implementation); the metrics see its logits against the label of each pair's larger weight."""
        loss, logits, lam, perm = self._mixed_loss(ctx, ctx.x_l, ctx.y_l, self.alpha, stateful=True)
        y = ctx.y_l
        first = ops.reshape(lam >= 0.5, (-1,) + (1,) * (len(y.shape) - 1)) if self.per_example else lam >= 0.5
        return loss, {self.name: loss}, logits, ops.where(first, y, ops.take(y, perm, axis=0))

    def weighted_loss(self, ctx, step):
        """The labeled mixup loss at full weight; the consistency term ramped (Algorithm 1, line 10)."""
        values = self.terms(ctx)
        total = values[self.name]
        if self.consistency > 0:
            ramp = kops.sigmoid_rampup(step, self.rampup_steps)
            total = total + ramp * self.consistency * values[self.consistency_name]
        return total, values

    def get_config(self):
        return {
            "alpha": self.alpha,
            "layers": list(self.layers) if self.layers is not None else self.layers_requested,
            "per_example": self.per_example,
            "consistency": self.consistency,
            "unlabeled_alpha": self.unlabeled_alpha,
            "replace_supervised": self.replace_supervised,
            "batch_norm": self.batch_norm,
            **({"ema_teacher": self.ema_teacher} if self.ema_teacher is not None else {}),
            **super().get_config(),
        }


@keras.saving.register_keras_serializable(package="kzoo")
class InputMixup(ManifoldMixup):
    """Input mixup (Zhang et al., 2017): Manifold Mixup with the input as the only eligible layer.

    Semi-supervised with ``consistency > 0`` (the paper's Algorithm 3). ``batch_norm`` defaults as
    ManifoldMixup's: "paper" (one mixed pass, the cost of a supervised step) when supervised, else "clean".
    """

    def __init__(self, alpha=1.0, per_example=False, consistency=0.0, unlabeled_alpha=None, rampup_steps=0,
                 replace_supervised=True, batch_norm=None, ema_teacher=None):
        super().__init__(alpha=alpha, layers=(INPUT,), per_example=per_example, consistency=consistency,
                         unlabeled_alpha=unlabeled_alpha, rampup_steps=rampup_steps,
                         replace_supervised=replace_supervised, batch_norm=batch_norm, ema_teacher=ema_teacher)

    def get_config(self):
        config = super().get_config()
        config.pop("layers")
        return config
