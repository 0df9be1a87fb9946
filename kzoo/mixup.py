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

A model is split at a named layer of its functional graph: the sub-model from
the input to that layer's output (the head) and the sub-model from that output
to the logits (the tail) share the model's layers and variables. Every mixed
pass is stateless (``kzoo.core.call_without_updates``): batch-norm statistics
are updated by the clean pass only. The paper does not say which pass updates
them (its implementation trains on the mixed pass alone); kzoo keeps the
architecture's rule that perturbed or mixed passes never update them. By
default the batch-norm layers after the mixing point normalize the mixed batch
with the clean batch's statistics (``batch_norm="clean"``, see ManifoldMixup).

Targets are class indices (as kzoo.data yields them) or one-hot / probability
rows of width num_classes; anything else is rejected with a clear error when
the train step is traced, before any update.
"""

from kzoo.errors import InvalidArgumentError
import keras
import numpy as np
from keras import ops

from kzoo import backend as kb
from kzoo import ops as kops
from kzoo.core import Regularizer, call_without_updates
from kzoo.errors import SplitError

INPUT = "input"


# --------------------------------------------------------------------------
# Splitting a functional model at a named layer
# --------------------------------------------------------------------------


def _single(tensors, what, model):
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if len(tensors) != 1:
        raise SplitError(f"manifold mixup needs a model with one {what}; {model.name} has {len(tensors)}")
    return tensors[0]


def _graph_ends(model):
    if not isinstance(model, keras.Model):
        raise SplitError(f"manifold mixup needs a keras.Model, got {type(model).__name__}")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise SplitError(
            f"{model.name} is not a functional Keras model (a subclassed model has no layer graph to split "
            "at a hidden layer); build it with the functional API or keras.Sequential, or use "
            "InputMixup / layers=['input'], which needs no split"
        )
    return _single(inputs, "input", model), _single(outputs, "output", model)


def split_model(model, layer):
    """``(head, tail)``: sub-models input -> ``layer``'s output and that output -> logits.

    They share ``model``'s layers and variables. ``layer == "input"`` gives
    ``(None, model)``. Raises :class:`SplitError` (a ValueError) naming the
    valid layers when ``layer`` does not exist or the graph cannot be split
    there (e.g. inside a residual block, where the tail also needs tensors
    from before the split).
    """
    if layer == INPUT:
        if isinstance(model, keras.Model) and model.built:
            return None, model
        raise SplitError(f"{getattr(model, 'name', model)!r} is not built: call it on data first")
    inp, out = _graph_ends(model)
    try:
        target = model.get_layer(layer)
    except ValueError:
        raise SplitError(
            f"{model.name} has no layer named {layer!r}; layers where it can be mixed: "
            f"{', '.join(mixable_layers(model))}"
        ) from None
    try:
        hidden = target.output
    except (AttributeError, ValueError, RuntimeError):
        raise SplitError(
            f"layer {layer!r} of {model.name} is used more than once (or has several outputs); "
            f"mix at one of: {', '.join(mixable_layers(model))}"
        ) from None
    if isinstance(hidden, (list, tuple)):
        raise SplitError(f"layer {layer!r} of {model.name} has several outputs; mix at a single-output layer")
    if hidden is out:
        raise SplitError(f"layer {layer!r} is {model.name}'s output (the logits); mix at an earlier layer")
    try:
        head = keras.Model(inp, hidden, name=f"{model.name}_to_{layer}")
        tail = keras.Model(hidden, out, name=f"{model.name}_from_{layer}")
    except ValueError:
        raise SplitError(
            f"{model.name} cannot be split at {layer!r}: the layers after it also read tensors from "
            f"before it (a skip connection crosses it); mix at one of: {', '.join(mixable_layers(model))}"
        ) from None
    return head, tail


def mixable_layers(model):
    """Names of the layers of ``model`` where mixing is possible, ``"input"`` first."""
    names = [INPUT]
    try:
        inp, out = _graph_ends(model)
    except SplitError:
        return names
    for lyr in model.layers:
        if isinstance(lyr, keras.layers.InputLayer):
            continue
        try:
            hidden = lyr.output
            if isinstance(hidden, (list, tuple)) or hidden is out or hidden is inp:
                continue
            keras.Model(hidden, out)
        except (AttributeError, ValueError, RuntimeError):
            continue
        names.append(lyr.name)
    return names


# --------------------------------------------------------------------------
# Batch normalization of the mixed pass
# --------------------------------------------------------------------------


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


def call_with_batch_statistics_of(model, x_stats, x, slots=None):
    """``model(x)`` with every batch-norm layer normalizing by the batch statistics of ``x_stats``.

    One stateless training-mode pass over ``x_stats`` with the moving statistics
    set to zero returns ``(1 - momentum) * batch statistic`` as their update,
    which gives the statistics exactly; ``x`` then runs in inference mode with
    them in place of the moving statistics. Nothing is updated. Gradients flow
    through both passes (as through the batch statistics of training-mode batch
    norm). Layers other than batch norm (dropout, noise) run in inference mode
    for ``x``.
    """
    slots = _batch_norm_slots(model) if slots is None else slots
    trainable = [v.value for v in model.trainable_variables]
    moving = [v.value for v in model.non_trainable_variables]
    zeroed = list(moving)
    for i, _ in slots:
        zeroed[i] = ops.zeros_like(moving[i])
    _, updated = model.stateless_call(trainable, zeroed, x_stats, training=True)
    stats = list(moving)
    for i, momentum in slots:
        stats[i] = updated[i] / (1.0 - momentum)
    out, _ = model.stateless_call(trainable, stats, x, training=False)
    return out


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


def _target_error(detail):
    return ValueError(
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
            uniformly per batch. A comma-separated string is accepted.
        per_example: one λ per example instead of one per batch.
        consistency: maximum weight of the semi-supervised consistency term
            (0: supervised Manifold Mixup; > 0 needs labeled + unlabeled batches).
        unlabeled_alpha: α for mixing the unlabeled batch (default: ``alpha``;
            paper's semi-supervised runs: 2.0).
        rampup_steps: sigmoid ramp-up of ``consistency`` from 0 over this many
            steps (the paper: 40% of training).
        replace_supervised: the mixed cross-entropy replaces the clean one (the
            paper's objective). False adds it to the clean cross-entropy.
        batch_norm: how batch-norm layers after the mixing point normalize the
            mixed batch. "clean" (default): with the statistics of the clean
            batch at that layer (see :func:`call_with_batch_statistics_of`; one
            extra forward pass of the layers after the mixing point). "mixed":
            with the mixed batch's own statistics, as a plain training-mode pass
            does (the paper's implementation). Mixing a batch with a permutation
            of itself keeps its mean but shrinks its variance by up to half, so
            "mixed" re-scales every mixed point outward, to the norm of real
            points; on kzoo's batch-norm MLP this made mixup much worse (see
            benchmarks/RESULTS.md). Either way no statistics are updated.
    """

    name = "mixup"
    consistency_name = "mixup_consistency"

    def __init__(self, alpha=2.0, layers=(INPUT,), per_example=False, consistency=0.0, unlabeled_alpha=None,
                 rampup_steps=0, replace_supervised=True, batch_norm="clean"):
        super().__init__(rampup_steps=rampup_steps)
        if batch_norm not in ("clean", "mixed"):
            raise InvalidArgumentError(f"batch_norm must be 'clean' or 'mixed', got {batch_norm!r}")
        self.batch_norm = batch_norm
        self.alpha = _check_alpha("alpha", alpha)
        self.unlabeled_alpha = self.alpha if unlabeled_alpha is None else _check_alpha("unlabeled_alpha",
                                                                                         unlabeled_alpha)
        self.layers = _parse_layers(layers)
        self.per_example = bool(per_example)
        self.consistency = kops.check_positive("consistency", consistency, allow_zero=True)
        self.replace_supervised = bool(replace_supervised)
        self.supervised_weight = 0.0 if self.replace_supervised else 1.0
        self.weights = {self.name: 1.0}
        if self.consistency > 0:
            self.weights[self.consistency_name] = self.consistency
        self._splits = {}

    # -- the split network ---------------------------------------------------

    def check_network(self, network):
        self._tails(network)

    def _tails(self, network):
        key = id(network)
        if key not in self._splits:
            splits = []
            for layer in self.layers:
                head, tail = split_model(network, layer)
                splits.append((head, tail, _batch_norm_slots(tail) if self.batch_norm == "clean" else []))
            self._splits[key] = (network, splits)
        return self._splits[key][1]

    # -- mixing ----------------------------------------------------------------

    def sample(self, ctx, n, alpha):
        """``(λ, permutation, layer index)`` for one batch of ``n``: λ ~ Beta(α, α) (one, or one per
        example), the partner of example i is ``permutation[i]``, the layer is uniform over ``layers``."""
        seed = ctx.seed_generator
        lam = keras.random.beta((n,) if self.per_example else (), alpha, alpha, seed=seed, dtype="float32")
        perm = keras.random.shuffle(ops.arange(n), seed=seed)
        k = keras.random.randint((), 0, len(self.layers), seed=seed, dtype="int32") if len(self.layers) > 1 else 0
        return lam, perm, k

    def mix(self, ctx, x, targets, alpha):
        """Logits of ``x`` mixed at a random eligible layer, and the equally mixed ``targets``."""
        lam, perm, k = self.sample(ctx, ops.shape(x)[0], alpha)
        t_lam = ops.expand_dims(lam, -1) if self.per_example else lam
        mixed_targets = t_lam * targets + (1.0 - t_lam) * ops.take(targets, perm, axis=0)
        splits = self._tails(ctx.network)
        per_example = self.per_example

        def branch(head, tail, slots):
            def run(x, lam, perm):
                # forward to the mixing layer (with gradient), mix, continue to the logits;
                # stateless: batch-norm statistics are left to the clean pass
                h = x if head is None else call_without_updates(head, x, training=ctx.training)
                lam_h = ops.reshape(lam, (-1,) + (1,) * (len(h.shape) - 1)) if per_example else lam
                lam_h = ops.cast(lam_h, h.dtype)
                h_mix = lam_h * h + (1.0 - lam_h) * ops.take(h, perm, axis=0)
                if slots and ctx.training:
                    return call_with_batch_statistics_of(tail, h, h_mix, slots)
                return call_without_updates(tail, h_mix, training=ctx.training)
            return run

        branches = [branch(head, tail, slots) for head, tail, slots in splits]
        chosen = 0 if len(branches) == 1 else kb.concrete_int(k)
        if chosen is not None:  # one branch, or eager execution: run only the chosen one
            logits = branches[chosen](x, lam, perm)
        else:
            logits = ops.switch(k, branches, x, lam, perm)
        return logits, mixed_targets

    # -- the loss terms ----------------------------------------------------------

    def terms(self, ctx):
        num_classes = int(ctx.logits_l.shape[-1])
        y = as_probabilities(ctx.y_l, num_classes)
        logits, y_mix = self.mix(ctx, ctx.x_l, y, self.alpha)
        out = {self.name: ops.mean(kops.soft_cross_entropy_from_logits(y_mix, logits))}
        if self.consistency > 0:
            if ctx.x_u is None:
                raise InvalidArgumentError(
                    f"consistency={self.consistency} is semi-supervised mixup: it needs labeled + unlabeled "
                    "batches ({'labeled': x_l, 'unlabeled': x_u}, y_l) such as kzoo.data.semi_supervised "
                    "yields; use consistency=0 for supervised data"
                )
            pseudo = ops.stop_gradient(ops.softmax(ctx.logits_u, axis=-1))  # Algorithm 1, line 7
            logits_u, p_mix = self.mix(ctx, ctx.x_u, pseudo, self.unlabeled_alpha)
            out[self.consistency_name] = ops.mean(
                kops.probability_mse_from_logits(ops.stop_gradient(p_mix), logits_u))
        return out

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
            "layers": list(self.layers),
            "per_example": self.per_example,
            "consistency": self.consistency,
            "unlabeled_alpha": self.unlabeled_alpha,
            "replace_supervised": self.replace_supervised,
            "batch_norm": self.batch_norm,
            **super().get_config(),
        }


@keras.saving.register_keras_serializable(package="kzoo")
class InputMixup(ManifoldMixup):
    """Input mixup (Zhang et al., 2017): Manifold Mixup with the input as the only eligible layer.

    Semi-supervised with ``consistency > 0`` (the paper's Algorithm 3).
    """

    def __init__(self, alpha=1.0, per_example=False, consistency=0.0, unlabeled_alpha=None, rampup_steps=0,
                 replace_supervised=True, batch_norm="clean"):
        super().__init__(alpha=alpha, layers=(INPUT,), per_example=per_example, consistency=consistency,
                         unlabeled_alpha=unlabeled_alpha, rampup_steps=rampup_steps,
                         replace_supervised=replace_supervised, batch_norm=batch_norm)

    def get_config(self):
        config = super().get_config()
        config.pop("layers")
        return config
