"""GANs as Keras models trained with ``fit``: the adversarial core kzoo's GAN-based methods build on.

:class:`GAN` is the plain unconditional GAN (Goodfellow et al.) with the
non-saturating generator loss, for any generator ``z -> x`` and discriminator
``x -> one logit``. Both networks train in one step: the discriminator on
``-log σ(D(x)) - log(1 - σ(D(G(z))))`` and the generator on ``-log σ(D(G(z)))``,
through the discriminator seen frozen (:func:`kzoo.core.call_without_updates`),
so that a single backward pass over the sum of the two losses gives each network
the gradient of its own loss, and :class:`kzoo.MultiOptimizer` gives each its
own optimizer. The step itself is the backend's (``kzoo/backend``), shared with
every other kzoo model.

    gan = kzoo.gan.GAN(generator, discriminator)
    gan.compile(discriminator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                generator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    gan.fit(x_stream, steps_per_epoch=1000)      # batches of x, or (x, y) with y ignored
    samples = gan.sample(64)

On top of it (paper 000, Lecouat et al., "Manifold regularization with GANs for
semi-supervised learning"):

* :class:`SemiSupervisedGAN` -- Salimans et al.'s feature-matching GAN whose
  K+1-way discriminator is the classifier, with the paper's manifold and
  ambient regularizers (coupled);
* :class:`ManifoldGAN` / :class:`AmbientSmoothness` -- the same regularizers on
  any classifier, with a frozen pretrained generator (decoupled);
* re-exported here: the architectures of Tables A3/A4/A6 scaled to the input
  size and the weight normalization layers (:mod:`kzoo.networks.gan`), metrics
  (generator mean log condition number, a digits sample score;
  :mod:`kzoo.networks.metrics`) and the NaN guard callback (:mod:`kzoo.callbacks`).
  The ``gan-ssl`` / ``manifold`` / ``dcgan`` training loops are in :mod:`kzoo.methods.gan`.
"""

from kzoo.errors import ArgumentTypeError, InvalidArgumentError
import os

import keras
import numpy as np
from keras import ops

from kzoo import backend as kb
from kzoo import ops as kops
from kzoo.callbacks import NaNGuard, NonFiniteLossError  # noqa: F401  (kzoo.gan.NaNGuard, as before)
from kzoo.core import (LABELED, UNLABELED, MultiOptimizer, Regularizer, call_without_updates,
                       is_semi_supervised_batch)
from kzoo.networks.gan import (SSGAN_DISCRIMINATORS, WeightNormConv2D, WeightNormConv2DTranspose,  # noqa: F401
                               WeightNormDense, conv_discriminator, conv_generator, dcgan_pair, default_latent_dim,
                               latent_dim_of, mlp_discriminator, mlp_generator, output_activation, resolve_arch,
                               ssgan_discriminator, ssgan_pair)
from kzoo.networks.metrics import (digits_sample_score, digits_scorer, generator_jacobian,  # noqa: F401
                                   mean_log_condition_number)
from kzoo.train_step import StepOutput, TrainStep

LATENTS = ("normal", "uniform")


def real_inputs(data):
    """The real examples of a batch: ``x``, ``(x, ...)`` or a semi-supervised batch's unlabeled part."""
    x = data[0] if isinstance(data, (tuple, list)) else data
    if is_semi_supervised_batch(x):
        x = x[UNLABELED]
    return x


def sample_latent(n, dim, seed_generator, latent="normal"):
    """``n`` latent vectors: N(0, I) (``"normal"``) or U(-1, 1)^dim (``"uniform"``, Table A3)."""
    if latent == "uniform":
        return kb.uniform((n, dim), seed_generator, minval=-1.0, maxval=1.0)
    return kb.normal((n, dim), seed_generator)


class GAN(TrainStep, keras.Model):
    """Unconditional GAN: ``generator`` maps N(0, I) latents to inputs, ``discriminator`` maps inputs to a logit."""

    def __init__(self, generator, discriminator, seed=None, latent="normal", **kwargs):
        super().__init__(**kwargs)
        if latent not in LATENTS:
            raise InvalidArgumentError(f"latent must be one of {', '.join(LATENTS)}, got {latent!r}")
        self.latent = latent
        for name, net in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(net, keras.Model):
                raise ArgumentTypeError(f"{name} must be a keras.Model, got {type(net).__name__}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim_of(generator)
        out = tuple(generator.output_shape[1:])
        expected = tuple(discriminator.input_shape[1:])
        if out != expected:
            raise InvalidArgumentError(f"the generator's output shape {out} does not match the discriminator's input "
                             f"shape {expected}")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss", "d_real", "d_fake")}
        self.built = generator.built and discriminator.built

    def compile(self, discriminator_optimizer="adam", generator_optimizer="adam", **kwargs):
        optimizer = MultiOptimizer({
            "discriminator": (discriminator_optimizer, self.discriminator),
            "generator": (generator_optimizer, self.generator),
        })
        super().compile(optimizer=optimizer, **kwargs)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, z, training=None):
        return self.generator(z, training=training)

    def sample_latent(self, n):
        return sample_latent(n, self.latent_dim, self.seed_generator, self.latent)

    def sample(self, n, batch_size=1024):
        """``n`` generated examples (inference mode) as a numpy array."""
        import numpy as np

        out = []
        for start in range(0, n, batch_size):
            z = self.sample_latent(min(batch_size, n - start))
            out.append(ops.convert_to_numpy(self.generator(z, training=False)))
        return np.concatenate(out)

    def adversarial_losses(self, x):
        """``(discriminator loss, generator loss, D(x) logits, D(G(z)) logits)``, each loss a batch mean."""
        z = self.sample_latent(ops.shape(x)[0])
        x_fake = self.generator(z, training=True)
        real = self.discriminator(x, training=True)
        fake = self.discriminator(ops.stop_gradient(x_fake), training=True)
        fake_for_g = call_without_updates(self.discriminator, x_fake, frozen=True)
        d_loss = ops.mean(kops.gan_discriminator_loss(real, fake))
        g_loss = ops.mean(kops.gan_generator_loss(fake_for_g))
        return d_loss, g_loss, real, fake

    def train_step_loss(self, data):
        x = real_inputs(data)
        d_loss, g_loss, real, fake = self.adversarial_losses(x)
        terms = {"d_loss": d_loss, "g_loss": g_loss,
                 "d_real": ops.mean(ops.sigmoid(real)), "d_fake": ops.mean(ops.sigmoid(fake))}
        # a loss of its own (no compile loss): scaled per replica under tf.distribute, like the core's
        return StepOutput(kb.scale_loss_for_distribution(d_loss + g_loss), x, None, None, None, terms)


# --------------------------------------------------------------------------
# Manifold and ambient regularization (paper 000 §3), written once
# --------------------------------------------------------------------------


def check_regularizer_hyperparameters(gamma, epsilon, eta=None, gamma_name="gamma"):
    """γ >= 0, ε > 0, η > 0 as floats; ValueError naming the bad one."""
    gamma = kops.check_positive(gamma_name, gamma, allow_zero=True)
    epsilon = kops.check_positive("epsilon", epsilon)
    if eta is not None:
        eta = kops.check_positive("eta", eta)
    return gamma, epsilon, eta


def manifold_tangent(generate, z, eta, seed_generator, normalized=True):
    """``(g(z), r̄)``: samples and the stochastic finite-difference tangent r = g(z + η δ) - g(z).

    δ ~ N(0, I); r̄ = r / ||r|| per example (``normalized``, the paper's default)
    or r itself. Both are constants for the training gradient (the generator
    is not trained by the regularizer). ``generate`` maps latents to inputs; it
    is called once on [z, z + η δ] so that both halves see the same
    normalization statistics.
    """
    n = z.shape[0] if z.shape[0] is not None else ops.shape(z)[0]
    delta = kb.normal(ops.shape(z), seed_generator, dtype=z.dtype)
    both = ops.stop_gradient(generate(ops.concatenate([z, z + eta * delta], axis=0)))
    x, x_eta = both[:n], both[n:]
    r = x_eta - x
    return x, (kops.l2_normalize(r) if normalized else r)


def ambient_direction(x, seed_generator):
    """δ̄ = δ / ||δ||, δ ~ N(0, I) of ``x``'s shape (the ambient regularizer's direction)."""
    return kops.l2_normalize(kb.normal(ops.shape(x), seed_generator, dtype=x.dtype))


def smoothness_penalty(classify, x, r):
    """Per-example ||f(x) - f(x + r)||² on logits; the gradient flows through both passes.

    ``classify`` runs once on [x, x + r] (both halves share batch statistics
    and no state is updated when it is a :func:`kzoo.core.call_without_updates` view).
    """
    n = x.shape[0] if x.shape[0] is not None else ops.shape(x)[0]
    logits = classify(ops.concatenate([x, x + r], axis=0))
    return kops.squared_l2_distance(logits[:n], logits[n:])


def manifold_penalty(classify, generate, z, epsilon, eta, seed_generator, normalized=True):
    """Ω = E ||f(g(z)) - f(g(z) + ε r̄)||² (per example), paper 000 §3."""
    x, r = manifold_tangent(generate, z, eta, seed_generator, normalized)
    return smoothness_penalty(classify, x, epsilon * r)


def ambient_penalty(classify, x, epsilon, seed_generator):
    """E ||f(x) - f(x + ε δ̄)||² (per example): the ambient regularizer (Kumar et al.)."""
    return smoothness_penalty(classify, ops.stop_gradient(x), epsilon * ambient_direction(x, seed_generator))


def load_generator(path):
    """A generator saved by ``kzoo pretrain dcgan`` (a ``.keras`` file); clear errors for bad paths."""
    if isinstance(path, keras.Model):
        return path
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"generator must be a keras.Model or the path of a saved one, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".keras"):
        path += ".keras"
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"generator file {path} does not exist; make one with "
                         f"`kzoo pretrain dcgan --dataset DATASET --export {path}`")
    model = keras.saving.load_model(path, compile=False)
    if not isinstance(model, keras.Model):
        raise InvalidArgumentError(f"{path} does not hold a Keras model")
    return model


def check_generator_matches(generator, input_shape):
    """Raise ValueError when the generator's output shape is not the classifier's input shape."""
    out = tuple(generator.output_shape[1:])
    expected = tuple(int(s) for s in input_shape)
    if out != expected:
        raise InvalidArgumentError(f"the generator outputs examples of shape {out} but the classifier takes {expected}; "
                         "use a generator trained on the same dataset (kzoo pretrain dcgan --dataset ...)")


@keras.saving.register_keras_serializable(package="kzoo")
class ManifoldGAN(Regularizer):
    """Decoupled manifold regularization: γ · E ||f(g(z)) - f(g(z) + ε r̄)||² with a frozen generator.

    Args:
        generator: a Keras model z -> x (or the path of one saved by
            ``kzoo pretrain dcgan``). It is frozen (``trainable = False``), run in
            inference mode and never updated.
        epsilon: step ε along the tangent (input units; paper: 20 on 32×32 images in [-1, 1]).
        eta: latent step η of the finite difference (paper: 1).
        gamma: weight γ (paper, Table A8: 1e-4).
        normalized: r̄ = r / ||r|| (default) or the unnormalized r.
        batch_size: generated samples per step (default: the unlabeled batch size).
        latent: the generator's latent distribution, "normal" (DCGAN) or "uniform".
    """

    name = "manifold"

    def __init__(self, generator, epsilon=20.0, eta=1.0, gamma=1e-4, normalized=True, batch_size=None,
                 latent="normal", rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.gamma, self.epsilon, self.eta = check_regularizer_hyperparameters(gamma, epsilon, eta)
        if latent not in LATENTS:
            raise InvalidArgumentError(f"latent must be one of {', '.join(LATENTS)}, got {latent!r}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise InvalidArgumentError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}")
        self.generator_path = os.fspath(generator) if isinstance(generator, (str, os.PathLike)) else None
        self.generator = load_generator(generator)
        self.generator.trainable = False
        self.latent_dim = latent_dim_of(self.generator)
        self.normalized = bool(normalized)
        self.batch_size = batch_size
        self.latent = latent
        self.weights = {self.name: self.gamma}

    def _generate(self, z):
        return call_without_updates(self.generator, z, training=False, frozen=True)

    def terms(self, ctx):
        x_ref = ctx.x_u if ctx.x_u is not None else ctx.x_l
        check_generator_matches(self.generator, x_ref.shape[1:])
        n = self.batch_size or (x_ref.shape[0] if x_ref.shape[0] is not None else ops.shape(x_ref)[0])
        z = sample_latent(n, self.latent_dim, ctx.seed_generator, self.latent)
        omega = manifold_penalty(ctx.forward, self._generate, z, self.epsilon, self.eta, ctx.seed_generator,
                                 self.normalized)
        return {self.name: ops.mean(omega)}

    def get_config(self):
        return {"generator": self.generator_path or self.generator.name, "epsilon": self.epsilon, "eta": self.eta,
                "gamma": self.gamma, "normalized": self.normalized, "batch_size": self.batch_size,
                "latent": self.latent, **super().get_config()}

    def serialize(self):
        if self.generator_path is None:
            raise ArgumentTypeError(
                "cannot save a model whose ManifoldGAN regularizer holds an in-memory generator: build it from "
                "the generator's .keras file (ManifoldGAN(generator='dcgan.keras', ...), as `kzoo pretrain dcgan` "
                "writes it), or save only the classifier (model.network.save(...)) or export it (model.export(...))")
        return super().serialize()


@keras.saving.register_keras_serializable(package="kzoo")
class AmbientSmoothness(Regularizer):
    """Ambient regularization: γ · E ||f(x) - f(x + ε δ̄)||², δ ~ N(0, I), on the unlabeled inputs."""

    name = "ambient"

    def __init__(self, epsilon=20.0, gamma=1e-3, inputs="unlabeled", rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.gamma, self.epsilon, _ = check_regularizer_hyperparameters(gamma, epsilon)
        if inputs not in ("all", LABELED, UNLABELED):
            raise InvalidArgumentError(f"inputs must be 'all', 'labeled' or 'unlabeled', got {inputs!r}")
        self.inputs = inputs
        self.weights = {self.name: self.gamma}

    def terms(self, ctx):
        x, _ = ctx.inputs(self.inputs)
        return {self.name: ops.mean(ambient_penalty(ctx.forward, x, self.epsilon, ctx.seed_generator))}

    def get_config(self):
        return {"epsilon": self.epsilon, "gamma": self.gamma, "inputs": self.inputs, **super().get_config()}


# --------------------------------------------------------------------------
# The semi-supervised feature-matching GAN (Salimans et al.; paper 000 §4.2)
# --------------------------------------------------------------------------


def feature_layer_output(classifier, feature_layer=None):
    """The intermediate tensor feature matching uses: ``feature_layer`` (a name), the layer named
    ``features``, or the input of the classifier's last layer."""
    if feature_layer is not None:
        return classifier.get_layer(feature_layer).output
    try:
        return classifier.get_layer("features").output
    except ValueError:
        return classifier.layers[-1].input


class SemiSupervisedGAN(GAN):
    """Feature-matching semi-supervised GAN whose discriminator is the K-class classifier.

    K+1-way discriminator, implemented with the usual trick: the classifier
    outputs K logits and the fake class's logit is fixed at 0, so
    p(real | x) = Σ_k exp(l_k) / (Σ_k exp(l_k) + 1) (no extra output unit).

    Discriminator loss: cross-entropy on the labeled batch +
    ``unlabeled_weight`` · :func:`kzoo.ops.kplus1_unlabeled_loss` on unlabeled
    and generated batches, + γ_m · Ω_manifold (on generated samples, the
    tangent from the generator itself) + γ_a · Ω_ambient (on the unlabeled
    batch). Generator loss: feature matching on ``feature_layer`` (default: the
    layer named ``features``, else the input of the last layer). One backward
    pass; each network gets the gradient of its own loss (frozen views).

    The classifier's weights are averaged as an exponential moving average
    (own non-trainable variables, decay min(ema_decay, (1 + t) / (10 + t)) as
    TensorFlow's ExponentialMovingAverage with num_updates; updated with the
    weights each step starts from). :meth:`ema_classifier` is the classifier to
    evaluate and export.

    Batches: ``({"labeled": x_l, "unlabeled": x_u}, y_l)`` (kzoo.data.semi_supervised).
    """

    TRACKED = ("loss_lab", "loss_unl", "g_loss", "manifold", "ambient", "acc_lab")

    def __init__(self, generator, classifier, feature_layer=None, manifold_gamma=0.0, ambient_gamma=0.0,
                 epsilon=20.0, eta=1.0, normalized=True, unlabeled_weight=1.0, ema_decay=0.999,
                 latent="uniform", seed=None, **kwargs):
        super().__init__(generator, classifier, seed=seed, latent=latent, **kwargs)
        self.manifold_gamma, self.epsilon, self.eta = check_regularizer_hyperparameters(
            manifold_gamma, epsilon, eta, gamma_name="manifold_gamma")
        self.ambient_gamma = kops.check_positive("ambient_gamma", ambient_gamma, allow_zero=True)
        self.unlabeled_weight = kops.check_positive("unlabeled_weight", unlabeled_weight, allow_zero=True)
        if not (ema_decay is not None and 0.0 <= ema_decay < 1.0):
            raise InvalidArgumentError(f"ema_decay must be in [0, 1), got {ema_decay!r}")
        self.ema_decay = float(ema_decay)
        self.normalized = bool(normalized)
        trunk = keras.Model(classifier.inputs, [feature_layer_output(classifier, feature_layer),
                                                classifier.outputs[0]], name="trunk")
        object.__setattr__(self, "_trunk", trunk)  # a view of the classifier's layers, not tracked twice
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.TRACKED}
        self.ema_variables = [
            self.add_weight(shape=tuple(v.shape), initializer="zeros", trainable=False,
                            name="ema_" + v.path.replace("/", "_"))
            for v in classifier.trainable_variables
        ]
        for ema, v in zip(self.ema_variables, classifier.trainable_variables):
            ema.assign(np.array(ops.convert_to_numpy(v.value)))  # a copy: JAX must not see one buffer twice
        self.ema_steps = self.add_weight(shape=(), initializer="zeros", trainable=False, name="ema_steps")

    @property
    def classifier(self):
        return self.discriminator

    def _update_ema(self):
        t = self.ema_steps.value
        decay = ops.minimum(self.ema_decay, (1.0 + t) / (10.0 + t))
        for ema, v in zip(self.ema_variables, self.discriminator.trainable_variables):
            ema.assign(decay * ema.value + (1.0 - decay) * ops.stop_gradient(v.value))
        self.ema_steps.assign(t + 1.0)

    def ema_classifier(self):
        """A copy of the classifier carrying the moving-average weights (what to evaluate and export)."""
        clone = keras.models.clone_model(self.discriminator)
        for target, ema in zip(clone.trainable_variables, self.ema_variables):
            target.assign(np.array(ops.convert_to_numpy(ema.value)))
        for target, v in zip(clone.non_trainable_variables, self.discriminator.non_trainable_variables):
            target.assign(np.array(ops.convert_to_numpy(v.value)))
        return clone

    def _generate_frozen(self, z):
        return call_without_updates(self.generator, z, training=True, frozen=True)

    def _classify_view(self, x):
        return call_without_updates(self.discriminator, x, training=True)

    def train_step_loss(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if not is_semi_supervised_batch(x):
            raise InvalidArgumentError("SemiSupervisedGAN trains on semi-supervised batches "
                             "({'labeled': x_l, 'unlabeled': x_u}, y_l); use kzoo.data.semi_supervised")
        x_l, x_u = x[LABELED], x[UNLABELED]
        n_l = x_l.shape[0] if x_l.shape[0] is not None else ops.shape(x_l)[0]
        n_u = x_u.shape[0] if x_u.shape[0] is not None else ops.shape(x_u)[0]
        self._update_ema()
        z = self.sample_latent(n_u)
        x_fake = self.generator(z, training=True)
        feats_real, logits_real = self._trunk(ops.concatenate([x_l, x_u], axis=0), training=True)
        logits_l, logits_u, feats_u = logits_real[:n_l], logits_real[n_l:], feats_real[n_l:]
        _, logits_fake = self._trunk(ops.stop_gradient(x_fake), training=True)
        loss_lab = ops.mean(kops.cross_entropy_from_logits(y, logits_l))
        loss_unl = kops.kplus1_unlabeled_loss(logits_u, logits_fake)
        d_loss = loss_lab + self.unlabeled_weight * loss_unl
        terms = {"loss_lab": loss_lab, "loss_unl": loss_unl}
        if self.manifold_gamma > 0:
            omega = ops.mean(manifold_penalty(self._classify_view, self._generate_frozen, z, self.epsilon,
                                              self.eta, self.seed_generator, self.normalized))
            d_loss = d_loss + self.manifold_gamma * omega
            terms["manifold"] = omega
        if self.ambient_gamma > 0:
            omega = ops.mean(ambient_penalty(self._classify_view, x_u, self.epsilon, self.seed_generator))
            d_loss = d_loss + self.ambient_gamma * omega
            terms["ambient"] = omega
        feats_fake, _ = call_without_updates(self._trunk, x_fake, frozen=True)
        g_loss = kops.feature_matching_loss(ops.stop_gradient(feats_u), feats_fake)
        terms["g_loss"] = g_loss
        terms["acc_lab"] = ops.mean(ops.cast(ops.equal(ops.argmax(logits_l, axis=-1),
                                                       ops.cast(y, "int32")), "float32"))
        return StepOutput(kb.scale_loss_for_distribution(d_loss + g_loss), x_l, y, logits_l, None, terms)

    def train_step_metrics(self, out):
        super().train_step_metrics(out)
        return {name: self.trackers[name].result() for name in self.TRACKED if name in out.terms}
