"""PyTorch implementations of kzoo's backend-specific pieces (Keras' ``torch`` backend).

The train step is eager autograd, as Keras' own PyTorch trainer: the loss code
in ``kzoo.core`` runs as it does on TensorFlow (it reads and assigns variables
directly), ``backward()`` fills each trainable variable's ``.grad``, and the
optimizer applies the gradients under ``torch.no_grad()``. Perturbed passes go
through ``call_without_updates`` (``stateless_call``), which keeps batch-norm
statistics as they are on every backend.
"""

from kzoo.errors import InvalidArgumentError
import keras
import numpy as np
import torch


def grad_wrt(fn, r):
    # A leaf copy of r, so the gradient stops here (as stop_gradient on the other backends); only r's
    # gradient is computed (torch.autograd.grad, not backward): no variable's .grad is touched. The graph
    # is kept: fn may share part of it with the step's loss (a clean pass without stop_gradient).
    with torch.enable_grad():
        r = torch.as_tensor(r).detach().requires_grad_(True)
        value = fn(r)
        (g,) = torch.autograd.grad(value, r, retain_graph=True, allow_unused=True)
    return torch.zeros_like(r) if g is None else g.detach()


def jvp(fn, x, v):
    # Forward mode through the double-vjp identity: J v = d/du <J^T u, v>, plain reverse-mode autograd
    # (torch.func.jvp does not trace through Keras' variables). Constant for the outer gradient.
    with torch.enable_grad():
        x = torch.as_tensor(x).detach().requires_grad_(True)
        v = torch.as_tensor(v).detach()
        out = fn(x)
        u = torch.zeros_like(out, requires_grad=True)
        (vjp,) = torch.autograd.grad(out, x, grad_outputs=u, create_graph=True)
        (tangent,) = torch.autograd.grad(vjp, u, grad_outputs=v)
    return tangent.detach()


def uniform(shape, seed, minval, maxval, dtype):
    # Keras' own draw: a torch.Generator seeded from the SeedGenerator's state (which advances), so a
    # seed gives the same numbers on every run, not the same numbers as on TensorFlow or JAX.
    return keras.random.uniform(shape, minval, maxval, dtype=dtype, seed=seed)


def normal(shape, seed, mean, stddev, dtype):
    return keras.random.normal(shape, mean, stddev, dtype=dtype, seed=seed)


def compile_function(fn):
    # eager, as Keras' torch trainer runs by default (torch.compile costs more than it saves on a few calls)
    return fn


def _as_tensor(value):
    return keras.ops.convert_to_tensor(value) if isinstance(value, (np.ndarray, np.generic)) else value


def train_step(model, data):
    """One regularized optimizer step; ``model`` is a kzoo TrainStep model."""
    # train_on_batch hands numpy arrays through as they are (fit's loader gives tensors): the loss code
    # mixes them with tensors (x + r), which a numpy array on the left refuses
    data = keras.tree.map_structure(_as_tensor, data)
    model.zero_grad()  # torch.nn.Module.zero_grad: the .grad the previous step left
    out = model.train_step_loss(data)
    loss = out.loss
    if model.optimizer is not None:
        loss = model.optimizer.scale_loss(loss)
    variables = model.trainable_weights[:]
    if variables:
        loss.backward()
        gradients = [v.value.grad for v in variables]
        with torch.no_grad():
            model.optimizer.apply(gradients, variables)
    with torch.no_grad():
        model.train_step_after_apply()  # e.g. the EMA teacher's update, from the new weights
        return model.train_step_metrics(out)


# --------------------------------------------------------------------------
# Several devices: none on PyTorch (kzoo's distributions are tf.distribute and keras.distribution on JAX)
# --------------------------------------------------------------------------


def num_replicas():
    return 1


def scale_loss_for_distribution(value):
    return value


def unscale_loss_for_distribution(value):
    return value


def setup_devices(kind, devices=None):
    raise InvalidArgumentError(f"distribution {kind!r} is not available on the torch backend")


def distribution_scope(kind, devices=None):
    raise InvalidArgumentError(f"distribution {kind!r} is not available on the torch backend")


def is_chief():
    return True
