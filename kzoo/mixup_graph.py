"""Where a functional network can be mixed (the mixup family's graph logic, :mod:`kzoo.mixup`).

* :func:`split_model` -- the sub-models input -> a named layer's output and that output -> logits,
  refused (:class:`SplitError`) where a skip connection crosses the layer.
* :func:`mixable_layers` -- every layer where the graph can be split, ``"input"`` first.
* :func:`auto_layers` -- the paper's eligible layers on any functional network (``layers="auto"``,
  :data:`AUTO_RULE`).
"""

import keras
import numpy as np

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
# The paper's eligible layers on any functional network (layers="auto")
# --------------------------------------------------------------------------

#: how many stages' outputs are eligible besides the input: the paper mixes at {input, output of stage 1,
#: output of stage 2} on PreActResNet (4 stages) and WideResNet-28 (3 stages), never the last stage's
AUTO_STAGES = 2
AUTO_RULE = ("input + the outputs of the first two stages (a stage: the weighted layers at one resolution, or "
             "one weighted layer on flat features), never the last stage's")


def _is_normalization(layer):
    return type(layer).__name__.endswith("Normalization")


def _is_weighted(layer):
    """A layer that computes with weights of its own (Dense, Conv, a nested model...), normalization aside."""
    try:
        return bool(layer.weights) and not _is_normalization(layer)
    except (AttributeError, ValueError):  # pragma: no cover - a layer without weights attribute
        return False


def _positions(layer):
    """Spatial positions of ``layer``'s output (None: flat features, unknown or several outputs)."""
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):
        return None
    if len(shape) <= 2:
        return None
    spatial = shape[2:] if getattr(layer, "data_format", "channels_last") == "channels_first" else shape[1:-1]
    if any(d is None for d in spatial):
        return None
    return int(np.prod(spatial))


def _producer(layer):
    try:
        return layer.input._keras_history[0]
    except (AttributeError, ValueError, RuntimeError, TypeError, IndexError):
        return None


def auto_layers(model):
    """``(layers, reason)``: the eligible layers the paper's rule gives on ``model``, and why no hidden
    layer is among them (None when one is).

    The rule (:data:`AUTO_RULE`): the network's weighted layers (those with weights of their own, normalization
    aside), without the classifier (the last one), are grouped into stages: on feature maps a stage runs on
    while the resolution holds (a new one starts at a weighted layer whose output has at most half the spatial
    positions of its stage's first: after a pooling or at a strided convolution, as a ResNet's or VGG's
    stages); on flat features every weighted layer is a stage (an MLP's hidden layers). A stage's output is
    the last point where the graph can be split (:func:`mixable_layers`) between its last weighted layer and
    the next stage's first layer with weights (a normalization layer fed by a merge or a pooling, such as a
    pre-activation block's, counts; one right after a weighted layer belongs to that layer). Eligible: the
    input and the outputs of the first ``min(2, stages - 1)`` stages that have one. On PreActResNet-18 this
    is the paper's {input, block1, block2}.
    """
    try:
        _graph_ends(model)
    except SplitError as e:
        return (INPUT,), str(e)
    cuts = set(mixable_layers(model)[1:])
    order = [lyr for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]
    weighted = [i for i, lyr in enumerate(order) if _is_weighted(lyr)]
    stages = []  # [[index of weighted layer, ...], ...]; start sizes beside
    starts = []
    for i in weighted[:-1]:  # the last weighted layer is the classifier
        size = _positions(order[i])
        if not stages or size is None or starts[-1] is None or 2 * size <= starts[-1]:
            stages.append([i])
            starts.append(size)
        else:
            stages[-1].append(i)
    chosen = []
    for s in range(min(AUTO_STAGES, len(stages) - 1)):
        last, nxt = stages[s][-1], stages[s + 1][0]
        end = nxt
        for j in range(last + 1, nxt):
            lyr, producer = order[j], _producer(order[j])
            after_weighted = _is_normalization(lyr) and producer is not None and _is_weighted(producer)
            if lyr.weights and not after_weighted:
                end = j
                break
        split = [order[j].name for j in range(last, end) if order[j].name in cuts]
        if split:
            chosen.append(split[-1])
    if chosen:
        return (INPUT, *chosen), None
    if len(stages) < 2:
        return (INPUT,), (f"{model.name} has {len(stages)} hidden stage{'s' if len(stages) != 1 else ''} before "
                          "its classifier and the last stage's output is never mixed (the paper's rule)")
    return (INPUT,), (f"{model.name} cannot be split after its first stages (a skip connection crosses "
                      f"them; it can be split at: {', '.join(mixable_layers(model))})")
