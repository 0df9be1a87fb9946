"""Latent-space VAT (Osada et al., "Regularization with Latent Space Virtual Adversarial Training").

LVAT is VAT with the adversarial direction searched in the latent space of a
frozen generative model, the *transformer* (paper, Algorithm 2):

    z = Enc(x);  r = ε · (unit direction found by K power iterations through Dec);
    x_adv = Dec(z + r);  L = α · E[KL(f(x) || f(x_adv))]

* :class:`LVAT` -- the regularizer (ε in latent units);
* :class:`VAE` -- the paper's Table 2 VAE scaled to the input size (Normal
  posterior, Normal or Bernoulli likelihood, standard Normal prior);
* :class:`Glow` (:mod:`kzoo.networks.glow`) -- Kingma & Dhariwal's multi-scale flow: L levels of K steps
  (actnorm -> invertible 1x1 convolution (LU) -> affine coupling), squeeze and
  split between levels.

Both transformers are Keras models trained with ``fit`` (negative ELBO /
negative log-likelihood in bits per dimension) whose every parameter is a
Keras variable owned by a Keras layer; the probability math (distributions,
KL, sampling, bijector forward/inverse/log-det) is TensorFlow Probability's.
Both implement the transformer protocol LVAT uses: ``data_shape``,
``latent_dim``, ``encode(x) -> z`` (batch, latent_dim) and ``decode(z) -> x``,
and count their training steps (``trained_steps``) so that LVAT can warn about
an untrained one. Save them with :func:`kzoo.export.save_keras_atomic` (or
``model.save``) and load them with :func:`load_transformer`.

Backends: TensorFlow only (TensorFlow Probability); on JAX, building any of
them raises :class:`kzoo.backend.UnsupportedBackendError` saying so.

Dequantization: inputs in [0, 1] with ``num_bins`` levels (x = k / (num_bins - 1);
digits: 17) are trained on as x_deq = (k + u) / num_bins, u ~ U(0, 1)^D, so the
models are densities on [0, 1]^D and bits/dim = -E[log p(x_deq)] / (D ln 2) +
log2(num_bins), an upper bound on the bits/dim of the discrete data (for the VAE,
with the ELBO in place of log p: a further upper bound). ``encode`` uses the
bin centre (u = 1/2); ``decode`` maps back to the k / (num_bins - 1) scale, so
Glow's ``decode(encode(x))`` returns ``x``.
"""

from kzoo.errors import ArgumentTypeError, InvalidArgumentError
import functools
import os
import warnings

import keras
import numpy as np
from keras import ops

from kzoo import ops as kops
from kzoo.core import Regularizer, StepContext
from kzoo.networks.flows import (TRANSFORMERS, _check_image_shape, _tfp, _Transformer,  # noqa: F401  (kzoo.lvat.X)
                                 invertibility_error, num_bins_of)
from kzoo.networks.glow import (ActNorm, AffineCoupling, FlowStep, Glow, InvertibleConv1x1,  # noqa: F401
                                squeeze2d, unsqueeze2d)
from kzoo.networks.vae import VAE
from kzoo.vat import _check_inputs, power_iteration

# ------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------


def resolve_path(path):
    """A saved transformer's file: ``path`` itself, or ``path + ".keras"`` (folder-like names)."""
    path = os.fspath(path)
    if path.endswith(".keras"):
        return path
    return path + ".keras"


@functools.lru_cache(maxsize=8)
def _load(path, mtime):
    return keras.saving.load_model(path, compile=False)


def load_transformer(path, kind=None):
    """Load a VAE or Glow saved with ``model.save`` / ``kzoo pretrain``; ``kind``: "vae" or "glow" to check.

    The model is cached by path and modification time, so runs and grid
    searches in one process share it.
    """
    _tfp()
    given = os.fspath(path)
    path = given if os.path.isfile(given) else resolve_path(given)
    if not os.path.isfile(path):
        hint = f"train one with `kzoo pretrain {kind or 'glow'} --export {given}`"
        raise FileNotFoundError(f"no saved transformer at {given!r} (looked for {path!r}); {hint}")
    model = _load(os.path.abspath(path), os.path.getmtime(path))
    expected = {"vae": VAE, "glow": Glow}.get(kind)
    if expected is not None and not isinstance(model, expected):
        raise InvalidArgumentError(f"{path} holds a {type(model).__name__}, not a {expected.__name__} "
                         f"(lvat-{kind} needs a {kind} transformer)")
    if not isinstance(model, _Transformer):
        raise InvalidArgumentError(f"{path} holds a {type(model).__name__}, not a kzoo VAE or Glow")
    return model


# ------------------------------------------------------------------------------
# The regularizer
# ------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kzoo")
class LVAT(Regularizer):
    """Latent-space VAT: α · E[KL(f(x) || f(Dec(Enc(x) + r_lvat)))] (paper, Algorithm 2).

    Args:
        transformer: a trained :class:`VAE` or :class:`Glow` (or the path of a
            saved one), or any object with ``data_shape``, ``encode`` and ``decode``.
            It is never trained by the classifier's training.
        epsilon: radius ε of the perturbation in the latent space (latent units;
            the paper uses 1.0 for Glow, 1.0-1.5 for the VAE).
        alpha: weight α (the paper fixes 1).
        xi: finite-difference step ξ of the power iteration (in latent units),
            floored per example as in VAT (``relative_xi_floor``).
        power_iterations: K >= 1.
        inputs: "all" (labeled + unlabeled, the paper's), "labeled" or "unlabeled".
        rampup_steps: sigmoid ramp-up of α.
    """

    name = "lvat"

    def __init__(self, transformer, epsilon=1.0, alpha=1.0, xi=1e-6, power_iterations=1, inputs="all",
                 relative_xi_floor=True, rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.epsilon = kops.check_positive("epsilon (latent units)", epsilon)
        self.alpha = kops.check_positive("alpha", alpha, allow_zero=True)
        self.xi = kops.check_positive("xi", xi)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) or power_iterations < 1:
            raise InvalidArgumentError(f"power_iterations (K) must be an integer >= 1, got {power_iterations!r}")
        self.power_iterations = power_iterations
        self.inputs = _check_inputs(inputs)
        self.relative_xi_floor = bool(relative_xi_floor)
        _tfp()
        self.transformer_path = None
        if isinstance(transformer, (str, os.PathLike)):
            self.transformer_path = os.fspath(transformer)
            transformer = load_transformer(transformer)
        missing = [a for a in ("data_shape", "encode", "decode") if not hasattr(transformer, a)]
        if missing:
            raise ArgumentTypeError(f"transformer must be a trained kzoo.models.VAE or Glow (or have data_shape, encode "
                            f"and decode); {type(transformer).__name__} lacks {', '.join(missing)}")
        steps = getattr(transformer, "trained_steps", None)
        if steps is not None and float(ops.convert_to_numpy(steps)) == 0.0:
            warnings.warn(f"the transformer {getattr(transformer, 'name', '')!r} has not been trained (0 steps): "
                          "its latent space is random, so LVAT's perturbations are meaningless. Train it first "
                          "(transformer.fit(x) or `kzoo pretrain vae|glow`).", UserWarning, stacklevel=2)
        self.transformer = transformer
        self.weights = {self.name: self.alpha}

    # The transformer is held by this plain object (not a Keras layer), so a
    # kzoo.Regularized model does not track it: it is not among the trained
    # variables, and save/export never include it.

    def check_input_shape(self, input_shape):
        shape = tuple(int(s) for s in input_shape)
        if shape != tuple(self.transformer.data_shape):
            raise InvalidArgumentError(
                f"the transformer's input shape {tuple(self.transformer.data_shape)} does not match the "
                f"classifier's {shape}: LVAT decodes perturbed latents into classifier inputs, so both must "
                "take the same inputs (train the transformer on the classifier's data, unflattened images)"
            )

    def check_network(self, network):
        shape = getattr(network, "input_shape", None)
        if isinstance(shape, tuple) and len(shape) > 1 and all(s is not None for s in shape[1:]):
            self.check_input_shape(shape[1:])

    def adversarial(self, ctx, x, logits):
        """``(z, r_lvat, x_adv)`` for inputs ``x`` with clean logits ``logits`` (all constants)."""
        self.check_input_shape(x.shape[1:])
        z = ops.stop_gradient(self.transformer.encode(x))

        def perturbed(r):
            return ctx.forward(self.transformer.decode(z + r))

        d = power_iteration(ctx, z, logits, self.xi, self.power_iterations, ctx.seed_generator,
                            relative_xi_floor=self.relative_xi_floor, perturbed=perturbed)
        r = self.epsilon * d
        return z, r, ops.stop_gradient(self.transformer.decode(z + r))

    def terms(self, ctx):
        x, logits = ctx.inputs(self.inputs)
        _, _, x_adv = self.adversarial(ctx, x, logits)
        kl = kops.kl_from_logits(ops.stop_gradient(logits), ctx.forward(x_adv))
        return {self.name: ops.mean(kl)}

    def get_config(self):
        return {
            "transformer": self.transformer_path or f"<{type(self.transformer).__name__}>",
            "epsilon": self.epsilon,
            "alpha": self.alpha,
            "xi": self.xi,
            "power_iterations": self.power_iterations,
            "inputs": self.inputs,
            "relative_xi_floor": self.relative_xi_floor,
            **super().get_config(),
        }

    def serialize(self):
        if self.transformer_path is None:
            raise ArgumentTypeError(
                "cannot save a model whose LVAT regularizer holds an in-memory transformer: build it from the "
                "transformer's .keras file (LVAT(transformer='glow.keras', ...), as `kzoo pretrain glow|vae` writes "
                "it), or save only the classifier (model.network.save(...)) or export it (model.export(...))")
        return super().serialize()


def adversarial_examples(regularizer, classifier, x, seed=0, batch_size=512, training=False):
    """``(x_rec, x_adv, z, r)`` as numpy for inputs ``x``: Dec(Enc(x)) and Dec(Enc(x) + r_lvat).

    What the paper's Figs. 2-4 show; the classifier in inference mode by default.
    """
    seed_generator = keras.random.SeedGenerator(seed)
    out = {"x_rec": [], "x_adv": [], "z": [], "r": []}
    for start in range(0, len(x), batch_size):
        xb = ops.convert_to_tensor(np.asarray(x[start:start + batch_size], "float32"))
        ctx = StepContext(classifier, xb, None, None, None, None, seed_generator, training=training)
        z, r, x_adv = regularizer.adversarial(ctx, xb, ctx.forward(xb))
        out["x_rec"].append(ops.convert_to_numpy(regularizer.transformer.decode(z)))
        out["x_adv"].append(ops.convert_to_numpy(x_adv))
        out["z"].append(ops.convert_to_numpy(z))
        out["r"].append(ops.convert_to_numpy(r))
    return tuple(np.concatenate(out[k]) for k in ("x_rec", "x_adv", "z", "r"))
