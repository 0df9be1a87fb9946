"""The registry of trainable methods: what ``kzoo train``, ``kzoo tune`` and the benchmarks read.

Each :class:`Method` declares its hyperparameters (name, default, type, range,
help, a suggested tuning grid) and how to build its regularizer from them. The
command line makes one flag per declared hyperparameter (``mixup_alpha`` ->
``--mixup-alpha``), the tuner searches over them, and :func:`kzoo.experiment.run`
validates them before any work starts.

Importing this module needs neither Keras nor numpy: builders import their
method family's module when called, so the command line can pick the backend
first. Each family registers its entries with :func:`register` in its glue
module ``kzoo/methods/FAMILY.py``, which :mod:`kzoo.methods` imports (the list
of families in ``kzoo/methods/__init__.py`` is the registry's table of contents).

Two kinds of method:

* a regularizer on a classifier trained by ``kzoo.Regularized(...).fit``:
  ``build(hp) -> Regularizer or None`` (None: plain supervised);
* a method with its own training loop (the GAN family, whose classifier is a
  discriminator): ``train(ctx) -> classifier``, where ``ctx`` is a
  :class:`kzoo.methods.context.RunContext`; ``build`` is then unused.
"""

from kzoo.errors import ArgumentTypeError, InvalidArgumentError
import dataclasses
import math
import typing

from kzoo.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter of a method, with the range its paper allows.

    ``minimum``/``maximum`` bound the value (``exclusive_minimum``: strictly
    above ``minimum``); ``choices`` lists the allowed values of a categorical one;
    ``grid`` is a suggested set of values for ``kzoo tune``. ``neutral``: for a
    hyperparameter added to a method after results were recorded, the value at
    which the method is exactly what it was before (e.g. ``ema_teacher=0``: no
    teacher); the keys of ``kzoo compare``'s cache leave it out at that value, so
    recorded results stay valid.
    """

    name: str
    default: typing.Any
    help: str
    type: type = float
    minimum: typing.Optional[float] = None
    exclusive_minimum: bool = False
    maximum: typing.Optional[float] = None
    choices: typing.Optional[tuple] = None
    grid: typing.Optional[tuple] = None
    neutral: typing.Any = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    def check(self, value, method):
        """``value`` converted to this hyperparameter's type; ValueError naming it when invalid."""
        where = f"{self.name} ({self.flag}) of {method}"
        if value is None:
            return None
        if self.type is bool:
            if isinstance(value, str):
                low = value.lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise InvalidArgumentError(f"{where} must be true or false, got {value!r}")
                return low in ("true", "1", "yes")
            return bool(value)
        try:
            converted = self.type(value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{where} must be of type {self.type.__name__}, got {value!r}") from None
        if self.type is int and isinstance(value, float) and value != int(value):
            raise InvalidArgumentError(f"{where} must be an integer, got {value!r}")
        if self.choices is not None and converted not in self.choices:
            raise InvalidArgumentError(f"{where} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if self.type in (int, float):
            if not math.isfinite(converted):
                raise InvalidArgumentError(f"{where} must be finite, got {value!r}")
            if self.minimum is not None:
                low_ok = converted > self.minimum if self.exclusive_minimum else converted >= self.minimum
                if not low_ok:
                    op = ">" if self.exclusive_minimum else ">="
                    raise InvalidArgumentError(f"{where} must be {op} {self.minimum}, got {value!r}")
            if self.maximum is not None and converted > self.maximum:
                raise InvalidArgumentError(f"{where} must be <= {self.maximum}, got {value!r}")
        return converted


# run() settings a preset may set besides the method's hyperparameters, with run()'s value without a preset
PRESET_RUN_SETTINGS = {"steps": 1000, "learning_rate": 1e-3, "width": 1.0}


@dataclasses.dataclass(frozen=True)
class Preset:
    """Validation-chosen ``settings`` (hyperparameters, :data:`PRESET_RUN_SETTINGS`) for one dataset and model;
    ``labels=None``: any label count (a preset for the run's exact count applies over it). Explicit arguments
    override a preset; ``evidence`` names the benchmarks/RESULTS.md section that holds the choice."""

    dataset: str
    settings: dict
    labels: typing.Optional[int] = None
    model: str = "mlp"
    evidence: str = ""

    def describe(self):
        where = f"{self.dataset}" + (f", {self.labels} labels" if self.labels is not None else "") + \
            f", model {self.model}"
        body = " ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"preset ({where}): {body}" + (f"  [{self.evidence}]" if self.evidence else "")


@dataclasses.dataclass(frozen=True)
class Method:
    """A trainable method: its paper, its hyperparameters, and how to build or train it.

    ``semi_supervised``: whether it trains on labeled + unlabeled batches (a
    bool, or a function of the resolved hyperparameters). ``presets``:
    validation-chosen settings per dataset (:class:`Preset`), applied by
    :func:`kzoo.experiment.run` under explicit arguments. ``warning``: a known
    limitation (e.g. not better than supervised training on digits), shown by
    ``kzoo methods -v``.
    """

    name: str
    summary: str
    hyperparameters: tuple = ()
    build: typing.Optional[typing.Callable] = None
    train: typing.Optional[typing.Callable] = None
    semi_supervised: typing.Union[bool, typing.Callable] = True
    paper: str = ""
    presets: tuple = ()
    warning: str = ""

    def preset(self, dataset, labels=None, model="mlp"):
        """The preset settings for a run (a dict, empty without a preset): the dataset-wide preset of
        ``model``, updated by the one for exactly ``labels`` labeled examples."""
        out = {}
        for p in sorted(self.presets, key=lambda p: p.labels is not None):
            if p.dataset == dataset and p.model == model and p.labels in (None, labels):
                out.update(p.settings)
        return out

    def preset_for_run(self, dataset, labels, model, explicit):
        """What the preset sets for a run: its settings whose value in ``explicit`` is missing or None."""
        return {k: v for k, v in self.preset(dataset, labels, model).items() if explicit.get(k) is None}

    def hyperparameter(self, name):
        for hp in self.hyperparameters:
            if hp.name == name:
                return hp
        raise KeyError(name)

    def resolve(self, given=None):
        """All hyperparameters: ``given`` (None values ignored) over the defaults, checked.

        Raises ValueError naming a hyperparameter this method does not take.
        """
        given = {k: v for k, v in (given or {}).items() if v is not None}
        names = [hp.name for hp in self.hyperparameters]
        unknown = sorted(set(given) - set(names))
        if unknown:
            flags = ", ".join("--" + u.replace("_", "-") for u in unknown)
            takes = ", ".join(hp.flag for hp in self.hyperparameters) or "none"
            raise InvalidArgumentError(f"{flags} does not apply to {self.name} (its hyperparameters: {takes})")
        return {hp.name: hp.check(given.get(hp.name, hp.default), self.name) for hp in self.hyperparameters}

    def is_semi_supervised(self, hp):
        return self.semi_supervised(hp) if callable(self.semi_supervised) else bool(self.semi_supervised)


@dataclasses.dataclass(frozen=True)
class Pretrainer:
    """A model trained without labels and saved for later runs (``kzoo pretrain NAME``).

    ``run(ctx) -> dict`` trains on ``ctx.dataset``'s training inputs, saves the
    model to ``ctx.export`` (atomically, Keras format) and returns its metrics
    (e.g. bits/dim); ``ctx`` is a :class:`kzoo.methods.context.PretrainContext`.
    """

    name: str
    summary: str
    hyperparameters: tuple = ()
    run: typing.Optional[typing.Callable] = None
    paper: str = ""

    hyperparameter = Method.hyperparameter
    resolve = Method.resolve


METHODS = {}
PRETRAINERS = {}


def register_pretrainer(pretrainer):
    if pretrainer.name in PRETRAINERS:
        raise InvalidArgumentError(f"pretrainer {pretrainer.name!r} is registered twice")
    PRETRAINERS[pretrainer.name] = pretrainer
    return pretrainer


def get_pretrainer(name):
    if name not in PRETRAINERS:
        valid = ", ".join(PRETRAINERS) or "none registered"
        raise InvalidArgumentError(f"unknown model to pretrain {name!r}; valid: {valid}")
    return PRETRAINERS[name]


def register(method):
    if method.name in METHODS:
        raise InvalidArgumentError(f"method {method.name!r} is registered twice")
    if (method.build is None) == (method.train is None):
        raise InvalidArgumentError(f"method {method.name!r} needs exactly one of build= or train=")
    for preset in method.presets:  # ValueError for an unknown or out-of-range hyperparameter
        method.resolve({k: v for k, v in preset.settings.items() if k not in PRESET_RUN_SETTINGS})
    METHODS[method.name] = method
    return method


def annotate(name, presets=(), warning=""):
    """Give the registered method ``name`` its per-dataset presets and warning (checked as register does)."""
    spec = dataclasses.replace(get(name), presets=tuple(presets), warning=warning)
    for preset in spec.presets:  # ValueError for an unknown or out-of-range hyperparameter
        spec.resolve({k: v for k, v in preset.settings.items() if k not in PRESET_RUN_SETTINGS})
    METHODS[name] = spec
    return spec


def get(name):
    if name not in METHODS:
        raise InvalidArgumentError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]


def all_hyperparameters(registry=None):
    """name -> Hyperparameter over every method (first declaration wins; types must agree)."""
    out = {}
    for method in (METHODS if registry is None else registry).values():
        for hp in method.hyperparameters:
            seen = out.get(hp.name)
            if seen is not None and seen.type is not hp.type:
                raise ArgumentTypeError(f"hyperparameter {hp.name!r} has type {seen.type.__name__} in one "
                                f"method and {hp.type.__name__} in {method.name}")
            out.setdefault(hp.name, hp)
    return out


# ----------------------------------------------------------------------------
# Shared hyperparameter declarations (ranges from the papers)
# ----------------------------------------------------------------------------


def epsilon(default, help="perturbation radius ε (input units)", grid=(0.5, 1.0, 2.0, 4.0)):
    return Hyperparameter("epsilon", default, help, float, minimum=0.0, exclusive_minimum=True, grid=grid)


def alpha(default=1.0, help="regularizer weight α", grid=(0.3, 1.0, 3.0)):
    return Hyperparameter("alpha", default, help, float, minimum=0.0, grid=grid)


RAMPUP = Hyperparameter("rampup_steps", 0, "sigmoid ramp-up of the regularizer weight over this many steps",
                        int, minimum=0)


# ----------------------------------------------------------------------------
# Hyperparameters on the command line (kzoo train / pretrain / tune)
# ----------------------------------------------------------------------------


def hyperparameter_flags(group, hyperparameters):
    """One ``--flag`` per hyperparameter (``name -> Hyperparameter``) in the argparse ``group``."""
    for hp in hyperparameters.values():
        kwargs = {"choices": hp.choices} if hp.choices else {}
        group.add_argument(hp.flag, dest=f"hp_{hp.name}", type=str if hp.type is bool else hp.type,
                           default=None, metavar=hp.name.upper(), help=hp.help, **kwargs)


def given_hyperparameters(args):
    """The hyperparameters given on the command line (parsed ``args``): name -> value."""
    return {k[3:]: v for k, v in vars(args).items() if k.startswith("hp_") and v is not None}


# ----------------------------------------------------------------------------
# The default training loop: a regularizer on a classifier
# ----------------------------------------------------------------------------


def fit_regularized(ctx, classifier, regularizer):
    """``kzoo.Regularized(classifier, regularizer)`` compiled with the run's optimizer and fit for the
    run's steps (``ctx``: a :class:`kzoo.methods.context.RunContext`); returns ``classifier``."""
    from kzoo.core import Regularized

    ctx.info["regularizer"] = repr(regularizer) if regularizer is not None else None
    try:
        net = Regularized(classifier, regularizer, seed=ctx.seed)
    except ValueError as e:  # the regularizer does not fit the classifier (e.g. LVAT's input shape)
        raise ConfigError(str(e)) from e
    net.compile(optimizer=ctx.optimizer(), metrics=["accuracy"], jit_compile=ctx.jit_compile)
    ctx.fit(net)
    return classifier


def train_regularized(ctx):
    """The default loop: ``kzoo.Regularized(classifier, regularizer).fit``; returns the classifier."""
    return fit_regularized(ctx, ctx.make_classifier(), ctx.method.build(ctx.hyperparameters))
