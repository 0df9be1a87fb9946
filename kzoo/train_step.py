"""The train-step contract between a kzoo model and kzoo/backend: :class:`TrainStep`, the mixin of every
kzoo model that trains with ``fit`` (:class:`kzoo.core.RegularizerMixin`, the GANs, ALI, the LVAT
transformers), and :class:`StepOutput`, what its loss hook returns."""

import typing

from kzoo import backend as kb


class StepOutput(typing.NamedTuple):
    """Result of one batch's loss computation (a pytree, as JAX needs)."""

    loss: object
    x: object
    y: object
    y_pred: object
    sample_weight: object
    terms: dict


class TrainStep:
    """Mixin: a Keras model that trains with ``fit`` through kzoo's backend train step.

    Keras calls ``train_step``; this hands the model to the active backend's
    step (``kzoo/backend/tensorflow.py`` or ``jax.py``: ``train_step(model, ...)``),
    which computes one gradient, applies the optimizer and calls the model's two
    hooks, the whole contract between a model and the backends:

    * ``train_step_loss(data) -> StepOutput``: the loss of one batch, with
      gradient. It runs inside the backend's gradient scope (``tf.GradientTape``,
      or ``jax.value_and_grad`` over a ``keras.StatelessScope``), so it may read
      and assign variables (batch-norm statistics, seed generators, moving
      averages) exactly as in eager code. A loss that is not ``compile``'s own
      must be scaled with :func:`kzoo.backend.scale_loss_for_distribution`.
    * ``train_step_after_apply()``: called after the optimizer applied the
      gradient (it may assign non-trainable variables: the EMA teacher's update).
    * ``train_step_metrics(out) -> logs``: update the metric trackers from the
      :class:`StepOutput` and return the logs dict of the step. The default
      updates ``self.trackers[name]`` (name -> ``keras.metrics.Mean``) with each
      of ``out.terms`` and logs every tracker's result.

    Users: :class:`RegularizerMixin` (so :class:`Regularized`), :class:`kzoo.gan.GAN`
    and :class:`kzoo.gan.SemiSupervisedGAN`, :class:`kzoo.ali.ALI`, the LVAT
    transformers (:mod:`kzoo.networks.flows`). Put it before ``keras.Model`` in
    the bases: ``class M(TrainStep, keras.Model)``.
    """

    def train_step(self, *args):
        return kb.train_step_function()(self, *args)

    def train_step_loss(self, data):
        raise NotImplementedError(f"{type(self).__name__} must implement train_step_loss(data) -> StepOutput")

    def train_step_after_apply(self):
        """After the optimizer step (default: nothing)."""

    def train_step_metrics(self, out):
        trackers = self.trackers
        for name, value in out.terms.items():
            trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in trackers.items()}
