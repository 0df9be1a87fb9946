"""Training core: regularizers plug into ``model.fit`` through a custom train step.

Two ways in, one implementation:

* ``kzoo.Regularized(classifier, regularizer)`` wraps any Keras classifier that
  outputs logits;
* ``class M(kzoo.RegularizerMixin, keras.Model)`` makes a model its own
  regularized trainer (functional or subclassed).

A train batch is either ``(x, y)`` (supervised) or
``({"labeled": x_l, "unlabeled": x_u}, y_l)`` (semi-supervised, labeled and
unlabeled batches of any sizes), as produced by :mod:`kzoo.data`. The clean
pass runs once over labeled and unlabeled inputs together and is the only pass
that updates batch-norm statistics (unless a ``single_pass`` regularizer's own
pass replaces it); regularizers run perturbed passes through
:meth:`StepContext.forward`, which uses batch statistics in training mode but
discards every state update.
"""

from kzoo.errors import ArgumentTypeError, InvalidArgumentError, UsageError
import dataclasses

import keras
from keras import ops

from kzoo import backend as kb
from kzoo import ops as kops
from kzoo import passes, serialization
from kzoo.passes import as_float32, call_without_updates  # noqa: F401  (kzoo.core.as_float32, as before)
from kzoo.train_step import StepOutput, TrainStep
from kzoo.ops import MultiOptimizer  # noqa: F401  (kzoo.core.MultiOptimizer, kzoo.MultiOptimizer)

kb.check_backend()

LABELED, UNLABELED = "labeled", "unlabeled"


def is_semi_supervised_batch(x):
    return isinstance(x, dict) and set(x.keys()) == {LABELED, UNLABELED}


# --------------------------------------------------------------------------
# Regularizer interface
# --------------------------------------------------------------------------


class Regularizer:
    """Base class: a regularizer is its paper's hyperparameters plus ``terms``.

    Subclasses implement ``terms(ctx) -> {name: scalar}`` (unweighted values,
    logged as they are; means over the step's batch in plain ``keras.ops``, not
    Keras ``Loss`` objects, which pre-scale for tf.distribute replicas) and set ``self.weights`` (name -> coefficient). The
    total loss is ``supervised + ramp(step) * sum(weight * term)`` where
    ``ramp`` is the sigmoid ramp-up over ``rampup_steps`` (0: none).

    ``supervised_weight`` scales the clean supervised loss on the labeled
    batch (1: kept as it is). A regularizer whose own term replaces that loss
    (mixup's cross-entropy on mixed examples) sets it to 0: the clean pass then
    still runs (batch-norm statistics, metrics, pseudo-targets) but adds nothing
    to the loss and gets no gradient; the model's own losses (weight decay) are
    kept. ``check_network(network)`` validates the regularizer against the
    classifier it will train (e.g. that a named layer exists) before training.
    ``ema_teacher`` (a decay in [0, 1), or None): the model keeps an EMA teacher
    of the network for it (:class:`kzoo.passes.EMATeacher`, read with ``ctx.teacher``).
    """

    supervised_weight = 1.0
    #: True: ``single_pass_loss(ctx, step) -> (loss, terms, logits, y)`` replaces the clean pass and
    #: ``weighted_loss``; its own training-mode pass is the step's only one (mixup's batch_norm="paper")
    single_pass = False
    ema_teacher = None

    def __init__(self, rampup_steps=0):
        if rampup_steps is None or rampup_steps < 0:
            raise InvalidArgumentError(f"rampup_steps must be >= 0, got {rampup_steps!r}")
        self.rampup_steps = int(rampup_steps)
        self.weights = {}

    @property
    def loss_names(self):
        return tuple(self.weights)

    def terms(self, ctx):
        raise NotImplementedError

    def weighted_loss(self, ctx, step):
        """``(weighted sum, {name: unweighted value})`` for one batch."""
        values = self.terms(ctx)
        ramp = kops.sigmoid_rampup(step, self.rampup_steps)
        total = 0.0
        for name, value in values.items():
            total = total + self.weights[name] * value
        return ramp * total, values

    def check_network(self, network):
        """Raise a ValueError when this regularizer cannot train ``network`` (default: no check)."""

    def begin_training(self, network):
        """Called by ``fit`` before training ``network`` (e.g. to say once what it will do; default: nothing)."""

    def get_config(self):
        return {"rampup_steps": self.rampup_steps}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def serialize(self):
        """``keras.saving.serialize_keras_object(self)``, after checking that this regularizer can be saved.

        ``get_config`` returns the constructor's arguments, ``from_config`` rebuilds it; kzoo's classes are
        registered with ``keras.saving`` (a class of your own loads when registered or passed in
        ``custom_objects``). A regularizer holding a model in memory (LVAT's transformer, the manifold
        regularizer's generator) can be saved only when built from that model's ``.keras`` path; it raises
        a TypeError saying so otherwise.
        """
        return keras.saving.serialize_keras_object(self)

    def __add__(self, other):
        return Sum([self, other])

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="kzoo")
class Sum(Regularizer):
    """Several regularizers applied together (e.g. ``VAT(...) + EntropyMinimization()``)."""

    def __init__(self, parts):
        super().__init__()
        flat = []
        for part in parts:
            if not isinstance(part, Regularizer):
                raise ArgumentTypeError(f"can only add kzoo regularizers, got {type(part).__name__}")
            flat.extend(part.parts if isinstance(part, Sum) else [part])
        names = [n for p in flat for n in p.loss_names]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"regularizers in a sum must have distinct loss names, got {names}")
        self.parts = flat
        self.weights = {n: w for p in flat for n, w in p.weights.items()}
        self.supervised_weight = 1.0
        self.ema_teacher = passes.common_decay(flat)  # one teacher per model, shared by the parts
        for part in flat:
            self.supervised_weight *= float(part.supervised_weight)

    def check_network(self, network):
        for part in self.parts:
            part.check_network(network)

    def begin_training(self, network):
        for part in self.parts:
            part.begin_training(network)

    def terms(self, ctx):
        out = {}
        for part in self.parts:
            out.update(part.terms(ctx))
        return out

    def weighted_loss(self, ctx, step):
        total, values = 0.0, {}
        for part in self.parts:
            t, v = part.weighted_loss(ctx, step)
            total = total + t
            values.update(v)
        return total, values

    def get_config(self):
        return {"parts": [p.serialize() for p in self.parts]}

    @classmethod
    def from_config(cls, config):
        return cls([deserialize(p) for p in config["parts"]])

    def __repr__(self):
        return " + ".join(repr(p) for p in self.parts)


@dataclasses.dataclass
class StepContext:
    """What a regularizer sees of one train step.

    ``logits_l`` / ``logits_u`` are the clean training-mode logits (with
    gradient); ``x_u`` / ``logits_u`` are None in supervised use. ``teacher``: the
    model's EMA teacher (:func:`kzoo.passes.teacher_logits`) or None.
    """

    network: keras.Model
    x_l: object
    y_l: object
    x_u: object
    logits_l: object
    logits_u: object
    seed_generator: object
    training: bool = True
    teacher: object = None

    def forward(self, x):
        """Logits of a perturbed input (training mode by default), in float32; no state is updated."""
        return as_float32(call_without_updates(self.network, x, training=self.training))

    def inputs(self, which):
        """``(x, clean logits)`` for ``which`` in {"all", "labeled", "unlabeled"}.

        "all" is labeled + unlabeled, or the labeled batch alone in supervised use.
        """
        if which == LABELED or self.x_u is None:
            return self.x_l, self.logits_l
        if which == UNLABELED:
            return self.x_u, self.logits_u
        x = ops.concatenate([self.x_l, self.x_u], axis=0)
        return x, ops.concatenate([self.logits_l, self.logits_u], axis=0)

    @staticmethod
    def grad(fn, r):
        """∇_r fn(r), constant for the training gradient (backend-specific)."""
        return kb.grad_wrt(fn, r)

    @staticmethod
    def jvp(fn, x, v):
        """Jacobian-vector product J_fn(x) v, constant for the training gradient."""
        return kb.jvp(fn, x, v)


# --------------------------------------------------------------------------
# The mixin and the wrapper
# --------------------------------------------------------------------------

_FROM_LOGITS = {"sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
                "categorical_crossentropy": keras.losses.CategoricalCrossentropy}


def deserialize(config, custom_objects=None):
    """The regularizer that :meth:`Regularizer.serialize` described (None stays None).

    Also reads the ``{"class_name": "kzoo.vat.VAT", "config": ...}`` form that
    kzoo 0.1 models were saved with.
    """
    if config is None:
        return None
    if isinstance(config, Regularizer):
        return config
    if not isinstance(config, dict):
        raise InvalidArgumentError(f"not a serialized kzoo regularizer: {config!r}")
    name = config.get("class_name", "")
    registered = serialization.registered_name(serialization.check_config(config))  # nothing unknown is loaded
    if registered is not None and "module" not in config and "registered_name" not in config:  # kzoo 0.1's form
        cls = serialization.lookup(registered)
        if not (isinstance(cls, type) and issubclass(cls, Regularizer)):
            raise InvalidArgumentError(f"{name!r} is not a kzoo regularizer class (saved by another kzoo version?)")
        inner = dict(config.get("config", {}))
        if cls is Sum:
            return Sum([deserialize(p, custom_objects) for p in inner["parts"]])
        return cls.from_config(inner)
    regularizer = keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
    if not isinstance(regularizer, Regularizer):
        raise InvalidArgumentError(f"{name!r} is not a kzoo regularizer (got {type(regularizer).__name__})")
    return regularizer


class RegularizerMixin(TrainStep):
    """Adds a regularized ``train_step`` to a Keras model whose outputs are logits.

    Use as ``class M(kzoo.RegularizerMixin, keras.Model)``; pass
    ``regularizer=`` (and optionally ``seed=``) to the constructor or call
    :meth:`set_regularizer`. Without a regularizer the model trains as plain
    supervised learning. ``evaluate``, ``predict`` and ``export`` are those of
    the plain classifier.
    """

    def __init__(self, *args, regularizer=None, seed=None, **kwargs):
        super().__init__(*args, **kwargs)
        kb.check_backend()
        self._kzoo_seed = keras.random.SeedGenerator(seed)
        self._kzoo_seed_arg = seed
        self._kzoo_trackers = {}
        self.set_regularizer(regularizer)

    # -- configuration ------------------------------------------------------

    @property
    def network(self):
        """The plain classifier: what is trained, perturbed and exported."""
        return self

    def __dir__(self):
        # ``network`` is an alias (of the model itself, or of ``classifier``), not a child: Keras' saving walks
        # dir(model), and loading would follow model.network into itself without end (RecursionError)
        return [name for name in super().__dir__() if name != "network"]

    def get_config(self):
        """The model's own config plus the regularizer and seed (a functional model's config included)."""
        config = super().get_config()
        config["regularizer"] = None if self.regularizer is None else self.regularizer.serialize()
        config["seed"] = self._kzoo_seed_arg
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(serialization.check_config(config))  # a file names only kzoo's registered classes
        regularizer = deserialize(config.pop("regularizer", None), custom_objects)
        seed = config.pop("seed", None)
        if not all(key in config for key in ("layers", "input_layers", "output_layers")):
            # a subclassed model: its constructor takes its config, regularizer and seed, as Keras expects
            return super().from_config({**config, "regularizer": regularizer, "seed": seed})
        model = super().from_config(config, custom_objects=custom_objects)  # Keras rebuilds the functional graph
        model._kzoo_seed_arg = seed  # the seed generator's state itself is restored with the weights
        model.set_regularizer(regularizer)
        return model

    def set_regularizer(self, regularizer):
        if regularizer is not None and not isinstance(regularizer, Regularizer):
            raise ArgumentTypeError(
                "regularizer must be a kzoo.regularizers object (e.g. kzoo.regularizers.VAT()), "
                f"got {type(regularizer).__name__}"
            )
        if getattr(self, "optimizer", None) is not None and getattr(self, "_kzoo_trackers", None):
            if regularizer is None or set(regularizer.loss_names) != set(self._kzoo_trackers):
                raise UsageError("set the regularizer before compile(), not after")
        self.regularizer = regularizer
        names = regularizer.loss_names if regularizer is not None else ()
        self._kzoo_trackers = {n: keras.metrics.Mean(name=n) for n in names}
        passes.attach(self)  # the EMA teacher the regularizer asks for, once the network is built

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """As ``keras.Model.compile``; the loss defaults to cross-entropy on logits.

        kzoo classifiers output logits, so the string names of the cross-entropy
        losses are taken with ``from_logits=True``.
        """
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        elif isinstance(loss, str) and loss in _FROM_LOGITS:
            loss = _FROM_LOGITS[loss](from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    # The seed generator is kzoo's own attribute (a private name, which Keras' saving skips): save its
    # state beside the model's own variables, so that a loaded model continues the random stream.
    _SEED_KEY = "kzoo_seed_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_KEY] = ops.convert_to_numpy(self._kzoo_seed.state.value)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if self._SEED_KEY in keys:
            self._kzoo_seed.state.assign(store[self._SEED_KEY])
        super().load_own_variables({k: store[k] for k in keys if k != self._SEED_KEY})

    def get_compile_config(self):
        """Keras' compile config, with optimizers that load on every backend (:func:`kzoo.backend.portable_config`)."""
        return kb.portable_config(super().get_compile_config())

    def compile_from_config(self, config):
        """Recompile a loaded model (``compile`` is kzoo's own, so Keras leaves this to it)."""
        config = keras.saving.deserialize_keras_object(kb.portable_config(serialization.check_config(config)))
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        tracked = list(super().metrics)
        own = [m for m in self._kzoo_trackers.values() if all(m is not t for t in tracked)]
        return tracked + own

    def get_metrics_result(self):
        logs = super().get_metrics_result()
        if getattr(self, "_kzoo_evaluating", False):
            # Regularizer terms are computed by the train step only: evaluation
            # (and fit's validation) reports the plain classifier's metrics,
            # not the trackers' reset value.
            for name in self._kzoo_trackers:
                logs.pop(name, None)
        return logs

    def evaluate(self, *args, **kwargs):
        self._kzoo_evaluating = True
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self._kzoo_evaluating = False

    # Keras' JAX fit stores the step's state on the model after every step (``self._jax_state = {...}``,
    # for callbacks that sync it). Layer.__setattr__ would wrap that dict of arrays in tracked containers,
    # walking every array at every step: milliseconds per step on CPU, a tenth of a small model's step.
    # It holds arrays only (no variables or layers), so it is stored untracked.
    _UNTRACKED = frozenset({"_jax_state"})

    def __setattr__(self, name, value):
        if name in self._UNTRACKED:
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def __call__(self, inputs, *args, **kwargs):
        # Keras builds metrics from one symbolic train batch; answer a
        # semi-supervised batch with the logits of its labeled part.
        if is_semi_supervised_batch(inputs):
            inputs = inputs[LABELED]
        return super().__call__(inputs, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if not (kb.name() == "tensorflow" and kb._impl().symbolic_build(self, iterator, data_batch)):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        passes.attach(self)

    def fit(self, x=None, y=None, *args, **kwargs):
        """Keras' ``fit`` after :func:`kzoo.data.check_fit`; a NaN loss stops it naming the batch (StopOnNonFinite)."""
        from kzoo.callbacks import StopOnNonFinite
        from kzoo.data import check_fit

        check_fit(self, x, y, kwargs, len(args))  # also: no shuffle=True for a stream (it shuffles itself)
        if self.regularizer is not None:
            self.regularizer.begin_training(self.network)
        args, kwargs = StopOnNonFinite.added_to(args, kwargs)
        return super().fit(x, y, *args, **kwargs)

    # -- the train step (the hooks of :class:`TrainStep`) ------------------------

    def train_step_loss(self, data):
        """Backend-agnostic loss of one batch (runs inside the backend's train step)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x_l, x_u = (x[LABELED], x[UNLABELED]) if is_semi_supervised_batch(x) else (x, None)
        reg, step = self.regularizer, self.optimizer.iterations
        teacher = getattr(self, "ema_teacher", None)
        ctx, terms = StepContext(self.network, x_l, y, x_u, None, None, self._kzoo_seed, teacher=teacher), {}
        if reg is not None and reg.single_pass:  # the metrics see its logits and labels
            reg_loss, terms, logits_l, y = reg.single_pass_loss(ctx, step)
        elif x_u is not None:
            n_l = ops.shape(x_l)[0]
            logits = as_float32(self.network(ops.concatenate([x_l, x_u], axis=0), training=True))
            logits_l, ctx.logits_u = logits[:n_l], logits[n_l:]
        else:
            logits_l = as_float32(self.network(x_l, training=True))
        ctx.logits_l = logits_l
        weight = 1.0 if reg is None else float(reg.supervised_weight)
        clean_pred, clean_weight = logits_l, sample_weight
        if weight != 1.0:
            # The regularizer replaces (0) or rescales the clean loss: weight it
            # per example, so the model's own losses (weight decay) stay as they are.
            ones = ops.ones((ops.shape(logits_l)[0],), dtype=logits_l.dtype)
            clean_weight = weight * (ones if sample_weight is None else sample_weight)
            if weight == 0.0:
                clean_pred = ops.stop_gradient(logits_l)
        loss = self.compute_loss(x=x_l, y=y, y_pred=clean_pred, sample_weight=clean_weight, training=True)
        if reg is not None:
            if not reg.single_pass:
                reg_loss, terms = reg.weighted_loss(ctx, step)
            # compute_loss is scaled by 1/replicas under tf.distribute; the regularizer must be too,
            # so that the gradients summed over replicas are those of the global batch.
            loss = loss + kb.scale_loss_for_distribution(reg_loss)
        return StepOutput(loss, x_l, y, logits_l, sample_weight, terms)

    def train_step_after_apply(self):
        teacher = getattr(self, "ema_teacher", None)
        if teacher is not None:
            teacher.update(self.network, self.optimizer.iterations)

    def train_step_metrics(self, out):
        self._loss_tracker.update_state(kb.unscale_loss_for_distribution(out.loss),
                                        sample_weight=ops.shape(out.x)[0])
        for name, value in out.terms.items():
            self._kzoo_trackers[name].update_state(value)
        return self.compute_metrics(out.x, out.y, out.y_pred, sample_weight=out.sample_weight)

    # -- export -----------------------------------------------------------------

    def export(self, filepath, format="tf_saved_model", verbose=False, version=None, **kwargs):
        """Export the plain classifier (no regularizer), atomically: ``format`` "tf_saved_model"
        (or "saved_model") or "onnx", as Keras' ``export``; ``version=N`` writes ``filepath/N``
        (TF Serving's layout). See :mod:`kzoo.export`."""
        from kzoo.export import export_classifier

        return export_classifier(self._plain_classifier(), filepath, format=format,
                                 verbose=verbose, version=version, **kwargs)

    def _plain_classifier(self):
        """The network without kzoo's own state (the regularizer's seed generator).

        A functional mixin model is re-wrapped as a plain functional model over
        the same layers; a subclassed one is exported as it is (its seed state
        variable then travels along, unused by serving).
        """
        net = self.network
        if net is not self:
            return net
        try:
            inputs, outputs = self.inputs, self.outputs
            inputs = inputs[0] if len(inputs) == 1 else inputs
            outputs = outputs[0] if len(outputs) == 1 else outputs
            return keras.Model(inputs, outputs, name=self.name.lstrip("_") or "classifier")
        except (AttributeError, TypeError, ValueError):
            return self


@keras.saving.register_keras_serializable(package="kzoo")
class Regularized(RegularizerMixin, keras.Model):
    """Wrap ``classifier`` (a Keras model outputting logits) with a regularizer.

    >>> model = kzoo.Regularized(clf, kzoo.regularizers.VAT(epsilon=1.0))
    >>> model.compile(optimizer="adam", metrics=["accuracy"])
    >>> model.fit(kzoo.data.semi_supervised(x_l, y_l, x_u), steps_per_epoch=100, epochs=10)

    ``model.save("m.keras")`` (and ``keras.callbacks.ModelCheckpoint``) keeps
    the classifier, the regularizer's hyperparameters, its random state and the
    optimizer; ``keras.models.load_model`` resumes training from it. To serve,
    export: ``model.export(path)`` is the plain classifier.
    """

    def __init__(self, classifier, regularizer=None, seed=None, **kwargs):
        if not isinstance(classifier, keras.Model):
            raise ArgumentTypeError(
                f"classifier must be a keras.Model that outputs logits, got {type(classifier).__name__}"
            )
        super().__init__(regularizer=regularizer, seed=seed, **kwargs)
        self.classifier = classifier
        if regularizer is not None:  # e.g. LVAT's transformer input, mixup's layer names
            regularizer.check_network(classifier)
        if classifier.built:
            self.built = True
        passes.attach(self)

    @property
    def network(self):
        return self.classifier

    def get_config(self):
        return {"name": self.name, "seed": self._kzoo_seed_arg,
                "classifier": keras.saving.serialize_keras_object(self.classifier),
                "regularizer": None if self.regularizer is None else self.regularizer.serialize()}

    def save(self, filepath, *args, **kwargs):
        self.get_config()  # a regularizer that cannot be saved says so before a byte is written
        return super().save(filepath, *args, **kwargs)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(serialization.check_config(config))  # a file names only kzoo's registered classes
        classifier = keras.saving.deserialize_keras_object(config.pop("classifier"), custom_objects=custom_objects)
        return cls(classifier, deserialize(config.pop("regularizer", None), custom_objects), **config)

    def call(self, inputs, training=None):
        return self.classifier(inputs, training=training)

    def build(self, input_shape):
        if not self.classifier.built:
            self.classifier.build(input_shape)
        self.built = True
        passes.attach(self)
