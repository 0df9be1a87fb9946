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
"""

import keras
from keras import ops

from kzoo import backend as kb
from kzoo import ops as kops
from kzoo.core import MultiOptimizer, StepOutput, call_without_updates, is_semi_supervised_batch, UNLABELED


def latent_dim_of(generator):
    shape = generator.input_shape
    if isinstance(shape, list) or len(shape) != 2:
        raise ValueError(f"the generator must take one flat latent vector (batch, dim); its input shape is {shape}")
    return int(shape[1])


def real_inputs(data):
    """The real examples of a batch: ``x``, ``(x, ...)`` or a semi-supervised batch's unlabeled part."""
    x = data[0] if isinstance(data, (tuple, list)) else data
    if is_semi_supervised_batch(x):
        x = x[UNLABELED]
    return x


class GAN(keras.Model):
    """Unconditional GAN: ``generator`` maps N(0, I) latents to inputs, ``discriminator`` maps inputs to a logit."""

    def __init__(self, generator, discriminator, seed=None, **kwargs):
        super().__init__(**kwargs)
        for name, net in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(net, keras.Model):
                raise TypeError(f"{name} must be a keras.Model, got {type(net).__name__}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim_of(generator)
        out = tuple(generator.output_shape[1:])
        expected = tuple(discriminator.input_shape[1:])
        if out != expected:
            raise ValueError(f"the generator's output shape {out} does not match the discriminator's input "
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
        return keras.random.normal((n, self.latent_dim), seed=self.seed_generator)

    def sample(self, n, batch_size=1024):
        """``n`` generated examples (inference mode) as a numpy array."""
        import numpy as np

        out = []
        for start in range(0, n, batch_size):
            z = self.sample_latent(min(batch_size, n - start))
            out.append(ops.convert_to_numpy(self.generator(z, training=False)))
        return np.concatenate(out)

    def train_step(self, *args):
        return kb.train_step_function()(self, *args)

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

    def _kzoo_compute(self, data):
        x = real_inputs(data)
        d_loss, g_loss, real, fake = self.adversarial_losses(x)
        terms = {"d_loss": d_loss, "g_loss": g_loss,
                 "d_real": ops.mean(ops.sigmoid(real)), "d_fake": ops.mean(ops.sigmoid(fake))}
        return StepOutput(d_loss + g_loss, x, None, None, None, terms)

    def _kzoo_update_metrics(self, out):
        for name, value in out.terms.items():
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}
