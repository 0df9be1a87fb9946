"""The LVAT transformers' common part: the protocol LVAT uses (encode / decode), checks, step counting.

:class:`kzoo.networks.vae.VAE` and :class:`kzoo.networks.glow.Glow` build on :class:`_Transformer`;
the probability math is TensorFlow Probability's (TensorFlow backend only).
"""

from kzoo.errors import InvalidArgumentError
import math

import keras
import numpy as np
from keras import ops

from kzoo import backend as kb
from kzoo.checks import check_int as _check_int
from kzoo.train_step import StepOutput, TrainStep


TRANSFORMERS = ("vae", "glow")


def _tfp():
    return kb.tfp("the LVAT transformers (kzoo.models.VAE / Glow) and the LVAT regularizer")


def _check_image_shape(input_shape, what, sequences=False):
    """``input_shape`` as a tuple: an image ``(height, width, channels)``, or with ``sequences`` also a sequence
    ``(steps, channels)``; InvalidArgumentError (one line) otherwise. Glow takes images only: on sequences
    (MNIST-1D) its error says why and what to use instead."""
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else ()
    if len(shape) == 2 and not sequences and "glow" in what.lower() and all(s >= 1 for s in shape):
        raise InvalidArgumentError(
            f"{what} needs image inputs (height, width, channels): Glow's squeeze and 2-D coupling layers have no "
            f"sequence form, and these inputs are sequences {shape}; use lvat-vae (kzoo pretrain vae) on "
            "sequence data such as mnist1d")
    if len(shape) == 2 and sequences and all(s >= 1 for s in shape):
        return shape
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise InvalidArgumentError(
            f"{what} needs image inputs: input_shape=(height, width, channels), got {input_shape!r}; "
            "load the data unflattened (kzoo.data.load(..., flatten=False))"
        )
    return shape


def num_bins_of(x, maximum=256):
    """Number of quantization levels of data in [0, 1] (distinct values; capped at ``maximum``)."""
    levels = np.unique(np.asarray(x)).size
    return int(min(max(levels, 2), maximum))


class _Transformer(TrainStep, keras.Model):
    """What VAE and Glow share: dequantization, the step counter, the kzoo train step, trackers."""

    def __init__(self, data_shape, num_bins, seed, **kwargs):
        super().__init__(**kwargs)
        _tfp()  # TensorFlow backend with TFP, or a clear error now
        self.data_shape = data_shape
        self.num_bins = _check_int("num_bins", num_bins, 2)
        self.seed = seed
        self.dims = int(np.prod(data_shape))
        self._seed_generator = keras.random.SeedGenerator(seed)
        self.trained_steps = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                             name="trained_steps", dtype="float32")

    # -- dequantization (see the module docstring) ------------------------------

    def _dequantize(self, x, noise):
        """x = k / (bins - 1) -> (k + u) / bins, u ~ U(0,1) (noise=True) or u = 1/2."""
        k = ops.cast(x, "float32") * (self.num_bins - 1)
        if noise:
            u = keras.random.uniform(ops.shape(k), seed=self._seed_generator)
        else:
            u = 0.5
        return (k + u) / self.num_bins

    def _quantized_scale(self, x_deq):
        """Inverse of the bin-centre map: (k + 1/2) / bins -> k / (bins - 1)."""
        return (x_deq * self.num_bins - 0.5) / (self.num_bins - 1)

    def _bits(self, nll_nats):
        """Bits/dim of the discrete data from -log p(x_deq) in nats per example."""
        return nll_nats / (self.dims * math.log(2.0)) + math.log2(self.num_bins)

    # -- training through kzoo's backend train step ---------------------------------

    def compile(self, optimizer="adam", jit_compile=False, **kwargs):
        """As ``keras.Model.compile``; XLA off by default (TFP's graphs compiled slower and ran slower
        with it on CPU: 33 vs 23 ms per Glow step on digits)."""
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    @property
    def metrics(self):
        return list(self._trackers.values())

    @property
    def trackers(self):  # the default TrainStep.train_step_metrics reads them here
        return self._trackers

    def _step_output(self, x, loss, terms):
        self.trained_steps.assign_add(1.0)
        return StepOutput(kb.scale_loss_for_distribution(loss), x, None, None, None, terms)

    @staticmethod
    def _inputs_of(data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return ops.cast(x, "float32")

    def bits_per_dim(self, x, batch_size=256, samples=4, seed=0):
        """Mean bits/dim of ``x`` (numpy, in [0, 1]) over ``samples`` draws of the noise."""
        gen = keras.random.SeedGenerator(seed)
        total, count = 0.0, 0
        for _ in range(samples):
            for start in range(0, len(x), batch_size):
                xb = ops.convert_to_tensor(np.asarray(x[start:start + batch_size], "float32"))
                nll = self._negative_log_likelihood(xb, gen)
                total += float(np.sum(ops.convert_to_numpy(self._bits(nll))))
                count += int(xb.shape[0])
        return total / count

    def reconstruct(self, x):
        """``decode(encode(x))``."""
        return self.decode(self.encode(x))


def invertibility_error(model, x, batch_size=512):
    """max |x - Dec(Enc(x))| over ``x``."""
    worst = 0.0
    for start in range(0, len(x), batch_size):
        xb = np.asarray(x[start:start + batch_size], "float32")
        rec = ops.convert_to_numpy(model.reconstruct(ops.convert_to_tensor(xb)))
        worst = max(worst, float(np.max(np.abs(rec - xb))))
    return worst
