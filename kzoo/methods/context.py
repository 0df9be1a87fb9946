"""What a method's training loop gets: :class:`RunContext` (``kzoo train``) and :class:`PretrainContext`
(``kzoo pretrain``), with the guarded ``fit`` (checkpoints, resume, divergence guard) they share.

:func:`kzoo.experiment.run` and :func:`kzoo.experiment.pretrain` build them after every argument is
checked; a method's ``train(ctx)`` / a pretrainer's ``run(ctx)`` only reads them and calls ``ctx.fit``.
"""

import dataclasses
import itertools
import math


def _epochs_for(steps, max_per_epoch=1000):
    """Split ``steps`` into equal epochs of at most ``max_per_epoch`` when possible."""
    if steps <= max_per_epoch:
        return 1
    for epochs in range(math.ceil(steps / max_per_epoch), 21):
        if steps % epochs == 0:
            return epochs
    return 1


def _skip_batches(stream, n):
    """``stream`` without its first ``n`` batches (a resumed run continues where the killed one stopped)."""
    if hasattr(stream, "skip") and hasattr(stream, "element_spec"):  # tf.data.Dataset
        return stream.skip(n)

    def rest():
        yield from itertools.islice(iter(stream), n, None)

    return rest()


@dataclasses.dataclass
class RunContext:
    """Everything a method's training loop gets: data, settings, hyperparameters.

    ``train(ctx)`` of a :class:`kzoo.methods.Method` returns the trained plain
    classifier (a Keras model from inputs to logits); ``ctx.callbacks`` (the step
    timer, and whatever the caller adds) must be passed to every ``fit`` it calls.
    The default loop, :func:`train_regularized`, is the one VAT and every other
    regularizer-on-a-classifier method use.

    ``x_val``/``y_val``: the validation split carved out of the labeled set
    (None without ``validation_labels``); the run evaluates the returned
    classifier on it. :meth:`fit` adds the fault-tolerance callback (checkpoints
    in ``checkpoint_dir``, resume, divergence guard) and TensorBoard logging; a
    method's loop gets them by calling ``ctx.fit`` once for its ``steps`` steps.
    The run builds everything inside its distribution scope (several devices).
    """

    method: object
    hyperparameters: dict
    dataset: object
    x_l: object
    y_l: object
    x_u: object
    model: str
    width: float
    steps: int
    batch_labeled: int
    batch_unlabeled: int
    seed: int
    learning_rate: float
    decay_fraction: float
    augment: object
    jit_compile: object
    verbose: int
    callbacks: list = dataclasses.field(default_factory=list)
    # filled in by the training loop for the result JSON
    info: dict = dataclasses.field(default_factory=dict)
    x_val: object = None
    y_val: object = None
    checkpoint_dir: object = None
    checkpoint_every: int = 100
    tensorboard: object = None
    is_chief: bool = True
    guards: list = dataclasses.field(default_factory=list)
    # the optimizer (see run(): optimizer, momentum, nesterov, weight_decay, lr_drops)
    optimizer_name: str = "adam"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_drops: tuple = ()

    @property
    def semi_supervised(self):
        return self.method.is_semi_supervised(self.hyperparameters)

    def make_classifier(self, **kwargs):
        """A fresh classifier of the run's model on the dataset's shapes (kzoo.models)."""
        from kzoo.networks import classifiers

        kw = {"input_shape": self.dataset.input_shape, "num_classes": self.dataset.num_classes}
        if self.model != "mlp":
            kw["width"] = self.width
        kw.update(kwargs)
        return classifiers.get(self.model, **kw)

    def stream(self, semi_supervised=None):
        """The run's endless batch stream (labeled + unlabeled, or labeled only)."""
        from kzoo import data as kdata

        semi = self.semi_supervised if semi_supervised is None else semi_supervised
        nc = self.dataset.num_classes
        if semi:
            return kdata.semi_supervised(self.x_l, self.y_l, self.x_u, batch_labeled=self.batch_labeled,
                                         batch_unlabeled=self.batch_unlabeled, num_classes=nc,
                                         seed=self.seed, augment=self.augment)
        return kdata.supervised(self.x_l, self.y_l, batch_size=self.batch_labeled, num_classes=nc,
                                seed=self.seed, augment=self.augment)

    def optimizer(self, learning_rate=None, **kwargs):
        """The run's optimizer: Adam (``kwargs`` go to it, e.g. ``beta_1``) or, with ``optimizer="sgd"``,
        SGD with ``momentum``/``nesterov`` and coupled L2 ``weight_decay`` (kzoo.ops.SGDWithL2).

        The learning rate decays linearly to 0 over the last ``decay_fraction`` of
        the steps or, with ``lr_drops``, is multiplied by 0.1 at each of those
        fractions of the steps (kzoo.ops.StepDecay).
        """
        import keras

        from kzoo.ops import LinearDecay, SGDWithL2, StepDecay

        lr = self.learning_rate if learning_rate is None else learning_rate
        if self.lr_drops:
            schedule = StepDecay(lr, drop_steps(self.lr_drops, self.steps))
        else:
            schedule = LinearDecay(lr, self.steps, int(round(self.decay_fraction * self.steps)))
        if self.optimizer_name == "sgd":
            return SGDWithL2(schedule, momentum=float(self.momentum), nesterov=bool(self.nesterov),
                             l2=float(self.weight_decay), **kwargs)
        return keras.optimizers.Adam(schedule, **kwargs)

    def fit(self, model, stream=None):
        """``model.fit`` (compiled, built) for ``steps`` optimizer steps in equal epochs, with the run's callbacks.

        With ``checkpoint_dir``: resumes from its latest checkpoint (weights,
        optimizer, seed state; the stream skips the batches already consumed)
        and checkpoints every ``checkpoint_every`` steps. Raises
        :class:`kzoo.callbacks.TrainingDiverged` when a loss became NaN/inf.
        """
        return _guarded_fit(self, model, self.stream() if stream is None else stream, is_chief=self.is_chief,
                            tensorboard=self.tensorboard)


def _guarded_fit(ctx, model, stream, is_chief=True, tensorboard=None):
    """The fit of :class:`RunContext` and :class:`PretrainContext`: ``ctx.steps`` steps, resume, checkpoints."""
    from kzoo import callbacks as kcb
    from kzoo import interrupts

    epochs = _epochs_for(ctx.steps)
    per_epoch = ctx.steps // epochs
    start = 0
    if ctx.checkpoint_dir:
        start, path = kcb._restore_or_fall_back(model, ctx.checkpoint_dir, say=warn)
        if path is not None:
            ctx.info["resumed_from_step"] = start
            if ctx.verbose:
                print(f"kzoo: resuming from the checkpoint at step {start} in {ctx.checkpoint_dir}")
    guard = kcb.TrainingGuard(ctx.steps, ctx.checkpoint_dir, ctx.checkpoint_every, start, write=is_chief)
    ctx.guards.append(guard)
    if start >= ctx.steps:
        return None
    if start:
        stream = _skip_batches(stream, start)
    callbacks = list(ctx.callbacks) + [guard]
    if tensorboard:
        callbacks.append(kcb.tensorboard(tensorboard, ctx.steps))
    with interrupts.deferred():  # Ctrl-C / SIGTERM stop at the end of the current step, checkpointed there
        history = model.fit(stream, steps_per_epoch=per_epoch, epochs=epochs, initial_epoch=start // per_epoch,
                            verbose=ctx.verbose, callbacks=callbacks, shuffle=False)
    guard.check()
    if interrupts.pending() is not None:  # arrived after the last step (its checkpoint is written)
        guard.interrupt()
    return history


def warn(message):
    """A warning the user must see even with --quiet (one line on stderr)."""
    import sys

    print(f"kzoo: warning: {message}", file=sys.stderr, flush=True)


OPTIMIZERS = ("adam", "sgd")


def drop_steps(lr_drops, steps):
    """The optimizer steps at which ``lr_drops`` (fractions of ``steps``) multiply the learning rate by 0.1
    (in a very short run two drops may fall on the same step: it then multiplies by 0.01)."""
    return [max(1, int(round(float(f) * steps))) for f in lr_drops]


@dataclasses.dataclass
class PretrainContext:
    """What a :class:`kzoo.methods.Pretrainer` gets: unlabeled training inputs and settings.

    ``export`` is the checked destination; save with :func:`kzoo.export.save_keras_atomic`.
    """

    pretrainer: object
    hyperparameters: dict
    dataset: object
    steps: int
    batch_size: int
    learning_rate: object
    seed: int
    export: str
    verbose: int
    callbacks: list = dataclasses.field(default_factory=list)
    checkpoint_dir: object = None
    checkpoint_every: int = 100
    info: dict = dataclasses.field(default_factory=dict)
    guards: list = dataclasses.field(default_factory=list)

    def fit(self, model, stream):
        """``model.fit`` (compiled, built) for ``steps`` steps in equal epochs, with the run's callbacks.

        With ``checkpoint_dir`` it checkpoints and resumes like :meth:`RunContext.fit`.
        """
        return _guarded_fit(self, model, stream)
