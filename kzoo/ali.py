"""ALI / BiGAN (Dumoulin et al., Adversarially Learned Inference, ICLR 2017; Donahue et al., BiGAN).

Three networks play one adversarial game:

* the encoder ``G_z(x)``: two outputs ``[mean, log_std]`` (ALI's stochastic
  encoder, sampled with the reparametrization ``z = μ + σ·ε``, paper eq. 2), or
  one output ``z`` (BiGAN's deterministic encoder);
* the decoder ``G_x(z)``, fed with ``z ~ N(0, I)``;
* the joint discriminator ``D(x, z)``, a model with two inputs ``[x, z]``
  outputting logits: one logit for unsupervised ALI, ``K`` logits for the
  semi-supervised ``K+1``-way discriminator (paper §4.3, after Salimans et al.:
  the fake class's logit is fixed at 0, so ``D(real) = Σ_k e^{l_k} / (Σ_k e^{l_k} + 1)``
  and the real/fake logit is ``logsumexp(l)``).

The discriminator minimizes ``-log D(x, G_z(x)) - log(1 - D(G_x(z), z))`` (plus,
semi-supervised, the cross-entropy of the labeled pairs ``(x_l, G_z(x_l))``);
encoder and decoder -- together "the generator", one optimizer group -- minimize
the non-saturating loss of §2.3, ``-log(1 - D(x, G_z(x))) - log D(G_x(z), z)``.
As in :class:`kzoo.gan.GAN`, the generator's loss sees the discriminator frozen
(:func:`kzoo.core.call_without_updates`) and the discriminator's loss sees the
generator's outputs through a stop-gradient, so ONE backward pass over the sum
gives each network the gradient of its own loss; :class:`kzoo.MultiOptimizer`
gives each group its own optimizer, and the step is the backend's.

    enc, dec, disc = kzoo.ali.networks_2d()
    ali = kzoo.ali.ALI(enc, dec, disc, seed=0)
    ali.compile(discriminator_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.8),
                generator_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.8))
    ali.fit(x, batch_size=100, epochs=10)
    samples, recon = ali.sample(1000), ali.reconstruct(x[:100])

The paper's own 32×32 models (Appendix A): ``networks_paper("svhn")`` (Table 4) and
``networks_paper("cifar10")`` (Table 3, maxout discriminator); ``recipes/ali.py --full``
trains them with the paper's optimizer, batch size and epochs. The networks live in
:mod:`kzoo.networks.ali` (also importable from here); the ``ali-ssl`` / ``ali`` training
loops and figures in :mod:`kzoo.methods.ali`.

Semi-supervised: give a discriminator with ``K`` logits and train on the
``({"labeled": x_l, "unlabeled": x_u}, y_l)`` batches of :mod:`kzoo.data`;
``ali.classifier()`` is then the plain classifier ``x -> D(x, mean of G_z(x))``.
"""


from kzoo.errors import ArgumentTypeError, InvalidArgumentError
import keras
import numpy as np
from keras import layers, ops

from kzoo import backend as kb
from kzoo import ops as kops
from kzoo import serialization
from kzoo.callbacks import NaNGuard
from kzoo.checks import check_positive
from kzoo.core import LABELED, UNLABELED, MultiOptimizer, call_without_updates, is_semi_supervised_batch
from kzoo.networks.ali import (ARCHITECTURES, LOG_STD, PAPER_MODELS, ChannelMaxout, Maxout,  # noqa: F401  (kzoo.ali.X)
                               networks_cifar10, networks_conv, networks_for, networks_mlp, networks_paper,
                               networks_svhn, x_discriminator_mlp)
from kzoo.train_step import StepOutput, TrainStep

# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


def _shape(t):
    return tuple(None if d is None else int(d) for d in t)


@keras.saving.register_keras_serializable(package="kzoo")
class ALI(TrainStep, keras.Model):
    """Adversarially learned inference: encoder, decoder and joint discriminator trained with ``fit``.

    ``encoder``: ``x -> [mean, log_std]`` (stochastic, ALI) or ``x -> z``
    (deterministic, BiGAN); ``decoder``: ``z -> x``; ``discriminator``:
    ``[x, z] -> logits`` (1 logit: unsupervised; ``K >= 2``: semi-supervised
    ``K+1``-way, the classifier). ``unsupervised_weight`` weighs the adversarial
    part of the discriminator's loss against its supervised cross-entropy.
    """

    def __init__(self, encoder, decoder, discriminator, unsupervised_weight=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        for name, net in (("encoder", encoder), ("decoder", decoder), ("discriminator", discriminator)):
            if not isinstance(net, keras.Model):
                raise ArgumentTypeError(f"{name} must be a keras.Model, got {type(net).__name__}")
            if not net.built:
                raise InvalidArgumentError(f"{name} must be built (a functional model, or call it once on data)")
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.unsupervised_weight = check_positive("unsupervised_weight", unsupervised_weight,
                                                          allow_zero=True)
        self._check_shapes()
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        names = ["d_loss", "g_loss", "d_real", "d_fake"]
        if self.num_classes:
            names += ["sup_loss", "accuracy"]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.built = True

    # -- shapes ---------------------------------------------------------------

    def _check_shapes(self):
        dec_in = self.decoder.input_shape
        if isinstance(dec_in, list) or len(dec_in) != 2:
            raise InvalidArgumentError(f"the decoder must take one flat latent vector (batch, dim); its input shape is {dec_in}")
        self.latent_dim = int(dec_in[1])
        enc_in = self.encoder.input_shape
        if isinstance(enc_in, list):
            raise InvalidArgumentError(f"the encoder must take one input x; its input shapes are {enc_in}")
        self.data_shape = _shape(enc_in[1:])
        outs = self.encoder.output_shape
        outs = [outs] if not isinstance(outs, list) else outs
        if len(outs) not in (1, 2):
            raise InvalidArgumentError(f"the encoder must output z (BiGAN) or [mean, log_std] (ALI); it has {len(outs)} outputs")
        self.stochastic = len(outs) == 2
        for what, shape in zip(("mean", "log_std") if self.stochastic else ("z",), outs):
            if _shape(shape[1:]) != (self.latent_dim,):
                raise InvalidArgumentError(
                    f"the encoder's {what} output has shape {_shape(shape[1:])} but the decoder takes latents of "
                    f"shape ({self.latent_dim},): make the encoder's output size equal the decoder's input size")
        dec_out = _shape(self.decoder.output_shape[1:])
        if dec_out != self.data_shape:
            raise InvalidArgumentError(f"the decoder's output shape {dec_out} does not match the encoder's input (data) shape "
                             f"{self.data_shape}")
        d_in = self.discriminator.input_shape
        if not isinstance(d_in, list) or len(d_in) != 2:
            raise InvalidArgumentError(f"the discriminator must take two inputs [x, z]; its input shape is {d_in}")
        if _shape(d_in[0][1:]) != self.data_shape or _shape(d_in[1][1:]) != (self.latent_dim,):
            raise InvalidArgumentError(f"the discriminator's inputs {[_shape(s[1:]) for s in d_in]} do not match "
                             f"[x {self.data_shape}, z ({self.latent_dim},)]")
        d_out = self.discriminator.output_shape
        if isinstance(d_out, list) or len(d_out) != 2 or d_out[1] is None or int(d_out[1]) < 1:
            raise InvalidArgumentError(f"the discriminator must output logits of shape (batch, 1) or (batch, K); got {d_out}")
        k = int(d_out[1])
        self.num_classes = k if k >= 2 else None

    def _check_data(self, x, what="training inputs"):
        got = _shape(x.shape[1:])
        if got != self.data_shape:
            raise InvalidArgumentError(f"the {what} have shape {got} per example but the encoder and decoder work on "
                             f"{self.data_shape}: reshape the data or build the networks for this shape")

    # -- compile / config -----------------------------------------------------

    def compile(self, discriminator_optimizer="adam", generator_optimizer="adam", **kwargs):
        # Encoder + decoder are one group (§2.3). They are handed over as a layer, not as a list of
        # variables: a list stored inside the MultiOptimizer would be tracked as optimizer variables,
        # and on JAX their stale copies would overwrite the updated weights after each step.
        optimizer = MultiOptimizer({
            "discriminator": (discriminator_optimizer, self.discriminator),
            "generator": (generator_optimizer, _Generator(self.encoder, self.decoder)),
        })
        super().compile(optimizer=optimizer, **kwargs)

    def get_config(self):
        return {"encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "unsupervised_weight": self.unsupervised_weight, "seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(serialization.check_config(config))  # a file names only kzoo's registered classes
        for key in ("encoder", "decoder", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        return None  # a MultiOptimizer is rebuilt by compile(), never serialized

    @property
    def metrics(self):
        return list(self.trackers.values())

    # -- the networks as functions -----------------------------------------------

    def _normal(self, shape, what):
        """Standard normal noise; ``what`` is "eps" (encoder) or "prior" (decoder input). Tests override it."""
        return kb.normal(shape, self.seed_generator)

    def _encode_from(self, out):
        if not self.stochastic:
            return out, out
        mean, log_std = out
        eps = self._normal(ops.shape(mean), "eps")
        return mean + ops.exp(log_std) * eps, mean

    def call(self, x, training=None):
        """The classifier's logits ``D(x, mean of G_z(x))`` (one real/fake logit when unsupervised)."""
        return self.discriminator([x, self._mean(self.encoder(x, training=training))], training=training)

    def _mean(self, out):
        return out[0] if self.stochastic else out

    def classifier(self, name="ali_classifier"):
        """A plain functional classifier ``x -> D(x, encoder mean)`` over the trained layers (for export)."""
        x = keras.Input(self.data_shape, name="x")
        logits = self.discriminator([x, self._mean(self.encoder(x))])
        return keras.Model(x, logits, name=name)

    def encode(self, x, sample=False, batch_size=1024):
        """Latents of ``x`` (inference mode): the encoder's mean, or a sample of ``q(z|x)`` if ``sample``."""
        x = np.asarray(x, dtype="float32")
        self._check_data(x, "inputs to encode")
        out = []
        for start in range(0, len(x), batch_size):
            enc = self.encoder(x[start:start + batch_size], training=False)
            z = self._encode_from(enc)[0] if sample else self._mean(enc)
            out.append(ops.convert_to_numpy(z))
        return np.concatenate(out) if out else np.zeros((0, self.latent_dim), "float32")

    def decode(self, z, batch_size=1024):
        z = np.asarray(z, dtype="float32")
        return np.concatenate([ops.convert_to_numpy(self.decoder(z[s:s + batch_size], training=False))
                               for s in range(0, len(z), batch_size)])

    def sample(self, n, batch_size=1024):
        """``n`` examples from the decoder's marginal ``p(x)`` (inference mode)."""
        z = ops.convert_to_numpy(self._normal((int(n), self.latent_dim), "prior"))
        return self.decode(z, batch_size)

    def reconstruct(self, x, sample=True):
        """``G_x(z)`` with ``z ~ q(z|x)`` (the paper's reconstructions, §4.1; the mean if not ``sample``)."""
        return self.decode(self.encode(x, sample=sample))

    def interpolate(self, x1, x2, steps=8):
        """Decodings of ``steps`` latents linearly between the encodings of ``x1`` and ``x2`` (§4.2).

        ``x1``/``x2``: batches of the same length ``n``; returns ``(n, steps, *data_shape)``.
        """
        if int(steps) < 2:
            raise InvalidArgumentError(f"steps must be >= 2, got {steps}")
        z1, z2 = self.encode(x1), self.encode(x2)
        t = np.linspace(0.0, 1.0, int(steps), dtype="float32")[None, :, None]
        z = (1 - t) * z1[:, None] + t * z2[:, None]
        x = self.decode(z.reshape(-1, self.latent_dim))
        return x.reshape((len(z1), int(steps)) + x.shape[1:])

    # -- the train step ------------------------------------------------------------

    def fit(self, x=None, *args, callbacks=None, **kwargs):
        """``keras.Model.fit`` that checks the data's shape first and stops with a clear error on NaN losses."""
        if isinstance(x, dict) and is_semi_supervised_batch(x):
            for key in (LABELED, UNLABELED):
                self._check_data(np.asarray(x[key]), f"{key} inputs")
        elif isinstance(x, np.ndarray):
            self._check_data(x)
        callbacks = list(callbacks or [])
        if not any(isinstance(c, NaNGuard) for c in callbacks):
            callbacks.append(StopOnNaN())
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        state = list({id(v): v for v in list(self.variables) + list(self.metrics_variables)
                      + list(getattr(self.optimizer, "variables", []))}.values())
        snapshot = [ops.convert_to_numpy(v) for v in state]
        try:
            return super().fit(x, *args, callbacks=callbacks, **kwargs)
        except Exception:
            # an error inside the first step (e.g. data of the wrong shape from a generator) can leave the
            # variables without values on some backends; put back what was there before this fit
            for v, value in zip(state, snapshot):
                try:
                    ops.convert_to_numpy(v)
                except Exception:
                    v.assign(value)
            raise

    def _real_logit(self, logits):
        # K+1-way discriminator with the fake logit fixed at 0: log D/(1-D) = logsumexp(l)
        return ops.logsumexp(logits, axis=-1) if self.num_classes else logits[:, 0]

    def train_step_loss(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if is_semi_supervised_batch(x):
            x_l, x_u = x[LABELED], x[UNLABELED]
            if not self.num_classes:
                raise InvalidArgumentError("labeled batches need a K-logit discriminator (num_classes >= 2); this ALI's "
                                 "discriminator outputs one logit (unsupervised): train it on x alone")
            self._check_data(x_l, "labeled inputs")
        else:
            x_l, x_u = None, x
            if self.num_classes and y is not None:
                raise InvalidArgumentError("a semi-supervised ALI trains on {'labeled': x_l, 'unlabeled': x_u}, y_l batches "
                                 "(kzoo.data.semi_supervised)")
        self._check_data(x_u)
        n_l = 0 if x_l is None else ops.shape(x_l)[0]
        x_real = x_u if x_l is None else ops.concatenate([x_l, x_u], axis=0)

        # one encoder pass over every real input (the only pass that updates its batch-norm statistics)
        z_hat, _ = self._encode_from(self.encoder(x_real, training=True))
        z = self._normal((ops.shape(x_u)[0], self.latent_dim), "prior")
        x_tilde = self.decoder(z, training=True)

        # discriminator's loss: the generator's outputs are constants here. Real and fake pairs go through
        # the discriminator as ONE batch (as in the authors' code), so a discriminator with batch norm
        # (the paper's SVHN D(x)) normalizes them with the same statistics.
        n_real = ops.shape(x_real)[0]
        d_logits = self.discriminator([ops.concatenate([x_real, ops.stop_gradient(x_tilde)], axis=0),
                                       ops.concatenate([ops.stop_gradient(z_hat), z], axis=0)], training=True)
        real_logits, fake_logits = d_logits[:n_real], d_logits[n_real:]
        real_u = self._real_logit(real_logits[n_l:])
        fake = self._real_logit(fake_logits)
        d_unsup = ops.mean(kops.gan_discriminator_loss(real_u, fake))
        terms = {}
        d_loss = self.unsupervised_weight * d_unsup
        if x_l is not None:
            logits_l = real_logits[:n_l]
            sup = ops.mean(kops.cross_entropy_from_logits(y, logits_l))
            d_loss = d_loss + sup
            terms["sup_loss"] = sup
            terms["accuracy"] = ops.mean(ops.cast(ops.equal(ops.argmax(logits_l, axis=-1),
                                                            ops.cast(y, "int32")), "float32"))

        # generator's loss (encoder + decoder), §2.3: the discriminator is frozen
        n_u = ops.shape(x_u)[0]
        g_logits = self._real_logit(call_without_updates(
            self.discriminator, [ops.concatenate([x_u, x_tilde], axis=0),
                                 ops.concatenate([z_hat[n_l:], z], axis=0)], frozen=True))
        real_g, fake_g = g_logits[:n_u], g_logits[n_u:]
        g_loss = ops.mean(kops.gan_generator_loss(fake_g) + kops.gan_generator_loss(-real_g))

        terms.update({"d_loss": d_loss, "g_loss": g_loss,
                      "d_real": ops.mean(ops.sigmoid(real_u)), "d_fake": ops.mean(ops.sigmoid(fake))})
        # a loss of its own (no compile loss): scaled per replica under tf.distribute, like the core's
        return StepOutput(kb.scale_loss_for_distribution(d_loss + g_loss), x_u, None, None, None, terms)


class _Generator(layers.Layer):
    """Encoder and decoder as one layer: the generator's optimizer group."""

    def __init__(self, encoder, decoder):
        super().__init__(name="ali_generator")
        self.encoder, self.decoder = encoder, decoder
        self.built = True


def StopOnNaN():
    """ALI's divergence guard: :class:`kzoo.callbacks.NaNGuard` with ALI's advice.

    On a NaN/inf loss it puts back the weights of the last good snapshot (taken
    every 100 steps) and raises :class:`kzoo.callbacks.NonFiniteLossError`.
    """
    return NaNGuard(hint="ALI training diverged: lower the learning rates (or raise Adam's epsilon), check the "
                         "inputs for NaN/inf, or initialize the weights with a smaller standard deviation.")


def save(ali, filepath):
    """Save an ALI (encoder, decoder, discriminator; no optimizer state) as a ``.keras`` file, atomically."""
    from kzoo.export import save_keras_atomic

    twin = ALI(ali.encoder, ali.decoder, ali.discriminator, unsupervised_weight=ali.unsupervised_weight,
               seed=ali.seed, name=ali.name)
    return save_keras_atomic(twin, filepath)


def load(filepath):
    """An ALI saved by :func:`save` (or ``kzoo pretrain ali``)."""
    model = keras.saving.load_model(filepath, compile=False)
    if not isinstance(model, ALI):
        raise ArgumentTypeError(f"{filepath} holds a {type(model).__name__}, not an ALI model")
    return model


# --------------------------------------------------------------------------
# Mode coverage (paper §4.5)
# --------------------------------------------------------------------------


def covered_modes(samples, centers=None, std=0.05, radius=None):
    """Number of mixture components that some sample is assigned to (paper §4.5).

    With equal priors and equal isotropic covariances, a sample's highest
    responsibility is its nearest center. ``radius`` (in units of ``std``)
    additionally requires the sample to lie within ``radius·std`` of it (a
    stricter count of well-placed samples; None: the paper's definition).
    """
    from kzoo.data import GAUSSIANS25_CENTERS

    centers = GAUSSIANS25_CENTERS if centers is None else np.asarray(centers)
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise InvalidArgumentError(f"samples must have shape (n, {centers.shape[1]}), got {samples.shape}")
    samples = samples[np.all(np.isfinite(samples), axis=1)]
    if len(samples) == 0:
        return 0
    d2 = ((samples[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    nearest = d2.argmin(1)
    if radius is not None:
        nearest = nearest[np.sqrt(d2.min(1)) <= radius * std]
    return int(len(np.unique(nearest)))
