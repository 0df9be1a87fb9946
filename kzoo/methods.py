"""The registry of trainable methods: what ``kzoo train``, ``kzoo tune`` and the benchmarks read.

Each :class:`Method` declares its hyperparameters (name, default, type, range,
help, a suggested tuning grid) and how to build its regularizer from them. The
command line makes one flag per declared hyperparameter (``mixup_alpha`` ->
``--mixup-alpha``), the tuner searches over them, and :func:`kzoo.experiment.run`
validates them before any work starts.

Importing this module needs neither Keras nor numpy: builders import their
method family's module when called, so the command line can pick the backend
first. A method family adds its entries with :func:`register` at the bottom of
this file (one block per family).

Two kinds of method:

* a regularizer on a classifier trained by ``kzoo.Regularized(...).fit``:
  ``build(hp) -> Regularizer or None`` (None: plain supervised);
* a method with its own training loop (the GAN family, whose classifier is a
  discriminator): ``train(ctx) -> classifier``, where ``ctx`` is a
  :class:`kzoo.experiment.RunContext`; ``build`` is then unused.
"""

import dataclasses
import math
import typing


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter of a method, with the range its paper allows.

    ``minimum``/``maximum`` bound the value (``exclusive_minimum``: strictly
    above ``minimum``); ``choices`` lists the allowed values of a categorical one;
    ``grid`` is a suggested set of values for ``kzoo tune``.
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
                    raise ValueError(f"{where} must be true or false, got {value!r}")
                return low in ("true", "1", "yes")
            return bool(value)
        try:
            converted = self.type(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be of type {self.type.__name__}, got {value!r}") from None
        if self.type is int and isinstance(value, float) and value != int(value):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        if self.choices is not None and converted not in self.choices:
            raise ValueError(f"{where} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if self.type in (int, float):
            if not math.isfinite(converted):
                raise ValueError(f"{where} must be finite, got {value!r}")
            if self.minimum is not None:
                low_ok = converted > self.minimum if self.exclusive_minimum else converted >= self.minimum
                if not low_ok:
                    op = ">" if self.exclusive_minimum else ">="
                    raise ValueError(f"{where} must be {op} {self.minimum}, got {value!r}")
            if self.maximum is not None and converted > self.maximum:
                raise ValueError(f"{where} must be <= {self.maximum}, got {value!r}")
        return converted


# run() settings a preset may set besides the method's hyperparameters
PRESET_RUN_SETTINGS = ("steps", "learning_rate")


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
            raise ValueError(f"{flags} does not apply to {self.name} (its hyperparameters: {takes})")
        return {hp.name: hp.check(given.get(hp.name, hp.default), self.name) for hp in self.hyperparameters}

    def is_semi_supervised(self, hp):
        return self.semi_supervised(hp) if callable(self.semi_supervised) else bool(self.semi_supervised)


@dataclasses.dataclass(frozen=True)
class Pretrainer:
    """A model trained without labels and saved for later runs (``kzoo pretrain NAME``).

    ``run(ctx) -> dict`` trains on ``ctx.dataset``'s training inputs, saves the
    model to ``ctx.export`` (atomically, Keras format) and returns its metrics
    (e.g. bits/dim); ``ctx`` is a :class:`kzoo.experiment.PretrainContext`.
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
        raise ValueError(f"pretrainer {pretrainer.name!r} is registered twice")
    PRETRAINERS[pretrainer.name] = pretrainer
    return pretrainer


def get_pretrainer(name):
    if name not in PRETRAINERS:
        valid = ", ".join(PRETRAINERS) or "none registered"
        raise ValueError(f"unknown model to pretrain {name!r}; valid: {valid}")
    return PRETRAINERS[name]


def register(method):
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    if (method.build is None) == (method.train is None):
        raise ValueError(f"method {method.name!r} needs exactly one of build= or train=")
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
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]


def all_hyperparameters(registry=None):
    """name -> Hyperparameter over every method (first declaration wins; types must agree)."""
    out = {}
    for method in (METHODS if registry is None else registry).values():
        for hp in method.hyperparameters:
            seen = out.get(hp.name)
            if seen is not None and seen.type is not hp.type:
                raise TypeError(f"hyperparameter {hp.name!r} has type {seen.type.__name__} in one "
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


# ----------------------------------------------------------------------------
# Supervised baseline and the VAT family (kzoo.vat)
# ----------------------------------------------------------------------------


def _no_regularizer(hp):
    return None


def _build_vat(hp):
    from kzoo import vat

    reg = vat.VAT(epsilon=hp["epsilon"], alpha=hp["alpha"], xi=hp["xi"],
                  power_iterations=hp["power_iterations"], rampup_steps=hp["rampup_steps"])
    if hp["entmin"]:
        reg = reg + vat.EntropyMinimization(weight=hp["entmin"], rampup_steps=hp["rampup_steps"])
    return reg


def _build_rpt(hp):
    from kzoo import vat

    return vat.RPT(epsilon=hp["epsilon"], alpha=hp["alpha"], rampup_steps=hp["rampup_steps"])


def _build_adversarial(hp):
    from kzoo import vat

    return vat.AdversarialTraining(epsilon=hp["epsilon"], alpha=hp["alpha"], norm=hp["adv_norm"],
                                   rampup_steps=hp["rampup_steps"])


RAMPUP = Hyperparameter("rampup_steps", 0, "sigmoid ramp-up of the regularizer weight over this many steps",
                        int, minimum=0)
_VAT_PAPER = "Miyato et al., Virtual Adversarial Training, TPAMI 2018"

register(Method("supervised", "cross-entropy on the labeled examples only", (), _no_regularizer,
                semi_supervised=False))
# ε for VAT/RPT on digits: 1.0, from a sweep over {1, 2, 3} on digits with 100
# labels (see benchmarks/RESULTS.md for how it was chosen).
register(Method(
    "vat", "Virtual Adversarial Training (Miyato et al.); --entmin W adds entropy minimization",
    (epsilon(1.0), alpha(),
     Hyperparameter("xi", 1e-6, "VAT finite-difference step ξ", float, minimum=0.0, exclusive_minimum=True),
     Hyperparameter("power_iterations", 1, "VAT power iterations K", int, minimum=1, grid=(1, 2)),
     Hyperparameter("entmin", 0.0, "VAT+EntMin: weight of entropy minimization", float, minimum=0.0,
                    grid=(0.0, 1.0)),
     RAMPUP),
    _build_vat, paper=_VAT_PAPER))
register(Method(
    "rpt", "Random Perturbation Training: VAT's smoothness term along random directions",
    (epsilon(1.0), alpha(), RAMPUP), _build_rpt, paper=_VAT_PAPER))
register(Method(
    "adversarial", "Adversarial training (Goodfellow et al.), --adv-norm l2|linf, labeled data",
    (epsilon(0.5, grid=(0.1, 0.25, 0.5, 1.0)), alpha(),
     Hyperparameter("adv_norm", "l2", "adversarial training norm", str, choices=("l2", "linf")),
     RAMPUP),
    _build_adversarial, semi_supervised=False, paper=_VAT_PAPER))


# ----------------------------------------------------------------------------
# Latent-space VAT (kzoo.lvat): LVAT-VAE, LVAT-Glow and their transformers
# ----------------------------------------------------------------------------

_LVAT_PAPER = "Osada et al., Regularization with Latent Space Virtual Adversarial Training"


def _lvat_builder(kind):
    def build(hp):
        from kzoo import lvat

        return lvat.build_regularizer(kind, hp)

    return build


def _lvat_pretrainer(kind):
    def run(ctx):
        from kzoo import lvat

        return lvat.pretrain(kind, ctx)

    return run


def _lvat_hyperparameters(grid):
    return (
        epsilon(1.0, help="LVAT: perturbation radius ε in the transformer's latent space (latent units)",
                grid=grid),
        alpha(),
        Hyperparameter("xi", 1e-6, "finite-difference step ξ of the power iteration", float, minimum=0.0,
                       exclusive_minimum=True),
        Hyperparameter("power_iterations", 1, "power iterations K", int, minimum=1, grid=(1, 2)),
        Hyperparameter("transformer", None, "LVAT: the saved transformer (kzoo pretrain vae|glow --export PATH)",
                       str),
        Hyperparameter("entmin", 0.0, "weight of entropy minimization added to LVAT (not in the LVAT paper)",
                       float, minimum=0.0, grid=(0.0, 1.0)),
        RAMPUP,
    )


# ε grids from the paper (Sec. 5.2.2): VAE {0.1, ..., 15} (1.5 and 1.0 chosen), Glow {0.5, 1.0, 1.5} (1.0).
register(Method(
    "lvat-vae", "Latent-space VAT through a pretrained VAE (Osada et al.); TensorFlow backend",
    _lvat_hyperparameters((0.25, 0.5, 1.0, 1.5, 3.0, 5.0)), _lvat_builder("vae"), paper=_LVAT_PAPER))
register(Method(
    "lvat-glow", "Latent-space VAT through a pretrained Glow (Osada et al.); TensorFlow backend",
    _lvat_hyperparameters((0.5, 1.0, 1.5)), _lvat_builder("glow"), paper=_LVAT_PAPER))
register_pretrainer(Pretrainer(
    "vae", "VAE transformer for lvat-vae (LVAT paper, Table 2, scaled to the input); TensorFlow backend",
    (Hyperparameter("latent_dim", 16, "VAE latent dimension (paper: 128 on 32x32x3)", int, minimum=1),
     Hyperparameter("channels", 32, "VAE channels of the first conv (paper: 128)", int, minimum=1),
     Hyperparameter("likelihood", "normal", "VAE likelihood p(x|z)", str, choices=("normal", "bernoulli"))),
    run=_lvat_pretrainer("vae"), paper=_LVAT_PAPER))
register_pretrainer(Pretrainer(
    "glow", "Glow transformer for lvat-glow (Kingma & Dhariwal); TensorFlow backend",
    (Hyperparameter("levels", 2, "Glow levels L (paper: 3 on 32x32)", int, minimum=1),
     Hyperparameter("depth", 4, "Glow steps per level K (paper: 22)", int, minimum=1),
     Hyperparameter("hidden_channels", 64, "Glow coupling network channels", int, minimum=1)),
    run=_lvat_pretrainer("glow"), paper=_LVAT_PAPER))
# ALI / BiGAN (kzoo.ali): semi-supervised K+1-way joint discriminator; unsupervised pretraining
# ----------------------------------------------------------------------------

_ALI_PAPER = "Dumoulin et al., Adversarially Learned Inference, ICLR 2017"


def _ali_hyperparameters():
    return (
        Hyperparameter("latent_dim", 0, "ALI latent size (0: the architecture's: 32 for images, 2 for 2-D data, "
                       "256 svhn, 64 cifar10)", int, minimum=0,
                       grid=(16, 32, 64)),
        Hyperparameter("beta1", 0.5, "ALI: Adam β1 of both players (paper 0.5)", float, minimum=0.0,
                       maximum=0.999, grid=(0.5, 0.8)),
        Hyperparameter("deterministic", False, "BiGAN: deterministic encoder instead of ALI's Gaussian one", bool),
        Hyperparameter("ali_arch", "auto", "ALI networks: auto (= mlp), conv (the paper's SVHN "
                       "model scaled down), mlp (flattened inputs), svhn / cifar10 (the paper's 32x32 models, "
                       "Tables 4 / 3)", str, choices=("auto", "conv", "mlp", "svhn", "cifar10")),
    )


def _train_ali_ssl(ctx):
    from kzoo import ali

    return ali.train_semi_supervised(ctx)


def _pretrain_ali(ctx):
    from kzoo import ali

    return ali.pretrain(ctx)


register(Method(
    "ali-ssl", "semi-supervised ALI: K+1-way joint discriminator D(x, z) is the classifier (z = encoder mean)",
    _ali_hyperparameters() + (
        Hyperparameter("unsup_weight", 1.0, "ALI-SSL: weight of the adversarial loss in the discriminator's",
                       float, minimum=0.0, grid=(0.3, 1.0, 3.0)),
    ),
    train=_train_ali_ssl, paper=_ALI_PAPER))
register_pretrainer(Pretrainer(
    "ali", "ALI/BiGAN encoder + decoder + joint discriminator, saved as .keras (kzoo.ali.load)",
    _ali_hyperparameters() + (
        Hyperparameter("ali_width", 1.0, "ALI: scale of every hidden size of the networks", float, minimum=0.0,
                       exclusive_minimum=True),
    ), run=_pretrain_ali, paper=_ALI_PAPER))
# GAN family (kzoo.gan): manifold regularization with GANs (Lecouat et al.), the
# feature-matching semi-supervised GAN (Salimans et al.), DCGAN pretraining
# ----------------------------------------------------------------------------

_MANIFOLD_PAPER = "Lecouat et al., Manifold regularization with GANs for semi-supervised learning (paper 000)"


def _train_gan_ssl(ctx):
    from kzoo import gan

    return gan.train_gan_ssl(ctx)


def _train_manifold(ctx):
    from kzoo import gan

    return gan.train_manifold(ctx)


def _pretrain_dcgan(ctx):
    from kzoo import gan

    return gan.pretrain_dcgan(ctx)


_ETA = Hyperparameter("eta", 1.0, "latent finite-difference step η of the manifold tangent (paper: 1)", float,
                      minimum=0.0, exclusive_minimum=True, grid=(0.1, 1.0))
_NORMALIZE = Hyperparameter("normalize", True, "manifold tangent r̄ = r/||r|| (true, the paper's default) or the "
                            "unnormalized r (false)", bool)
_GAN_ARCH = Hyperparameter("gan_arch", "auto", "GAN networks: conv (Tables A3/A4/A6 scaled to the image size), "
                           "mlp, or auto (conv for square images of 16×16 or more, else mlp)", str, choices=("auto", "conv", "mlp"))
_GAN_WIDTH = Hyperparameter("gan_width", 1.0, "channel/unit multiplier of the GAN networks", float, minimum=0.0,
                            exclusive_minimum=True)
_LATENT_DIM = Hyperparameter("latent_dim", 0, "generator latent size (0: 100 for large images, about half the "
                             "input size otherwise)", int, minimum=0)
# ε in input units: the paper's 20 is for 32×32×3 images in [-1, 1] (norm ~30-50); digits images
# (8×8 in [0, 1]) have norms ~4-5, so the default here is scaled down (see benchmarks/RESULTS.md).
register(Method(
    "gan-ssl", "semi-supervised feature-matching GAN (K+1-way discriminator = classifier, Salimans et al.) with "
    "optional manifold (--manifold-gamma) and ambient (--ambient-gamma) regularization",
    (Hyperparameter("manifold_gamma", 0.0, "manifold regularizer weight γ (paper: 1e-3; 0: off)", float,
                    minimum=0.0, grid=(0.0, 1e-3, 1e-2, 1e-1)),
     Hyperparameter("ambient_gamma", 0.0, "ambient regularizer weight (0: off)", float, minimum=0.0,
                    grid=(0.0, 1e-3, 1e-2)),
     epsilon(3.0, help="manifold/ambient step ε in input units (paper: 20 on 32×32×3 images)",
             grid=(1.0, 3.0, 10.0, 20.0)),
     _ETA, _NORMALIZE,
     Hyperparameter("unlabeled_weight", 1.0, "weight of the unsupervised K+1 loss", float, minimum=0.0),
     Hyperparameter("ema_decay", 0.999, "decay of the classifier's exponential moving average", float,
                    minimum=0.0, maximum=0.99999),
     Hyperparameter("weight_norm", True, "weight-normalized discriminator (Table A4)", bool),
     Hyperparameter("gan_discriminator", "conv_small", "conv discriminator of Table A4: conv_small (64/128 "
                    "channels, the paper's SVHN network) or conv_large (96/192, its CIFAR-10 network)", str,
                    choices=("conv_small", "conv_large")),
     _GAN_ARCH, _GAN_WIDTH, _LATENT_DIM),
    train=_train_gan_ssl, paper=_MANIFOLD_PAPER))
register(Method(
    "manifold", "manifold regularization (decoupled): any classifier + γ·E||f(g(z)) - f(g(z)+εr̄)||² with a frozen "
    "generator from `kzoo pretrain dcgan` (--generator PATH)",
    (Hyperparameter("generator", None, "generator saved by `kzoo pretrain dcgan` (.keras file)", str),
     Hyperparameter("gamma", 0.01, "manifold regularizer weight γ (paper, Table A8: 1e-4 with ε = 20; on digits "
                    "γ = 0.1 and 1 raised the error of the plain classifier)", float,
                    minimum=0.0, grid=(1e-3, 1e-2, 1e-1, 1.0)),
     epsilon(3.0, help="manifold step ε in input units (paper: 20 on 32×32×3 images)", grid=(1.0, 3.0, 10.0)),
     _ETA, _NORMALIZE, RAMPUP),
    train=_train_manifold, paper=_MANIFOLD_PAPER))
register_pretrainer(Pretrainer(
    "dcgan", "DCGAN (paper 000 Table A6, scaled to the input size; MLPs for 2-D data): the generator for "
    "`kzoo train manifold --generator`",
    (_GAN_ARCH, _GAN_WIDTH, _LATENT_DIM),
    run=_pretrain_dcgan, paper=_MANIFOLD_PAPER))
# The mixup family (kzoo.mixup): input mixup and Manifold Mixup, supervised and
# semi-supervised (Verma et al., Manifold Mixup, 2018; Zhang et al., mixup, 2017)
# ----------------------------------------------------------------------------


def _train_mixup(ctx):
    """``Regularized(classifier, ManifoldMixup(...)).fit``; the layer names are checked against the
    classifier and the ramp-up fraction turned into steps before training."""
    from kzoo import mixup
    from kzoo.core import Regularized
    from kzoo.experiment import ConfigError

    clf = ctx.make_classifier()
    try:
        reg = mixup.from_hyperparameters(ctx.hyperparameters, steps=ctx.steps)
        reg.check_network(clf)
    except ValueError as e:
        raise ConfigError(f"{ctx.method.name} on model {ctx.model}: {e}") from e
    ctx.info["regularizer"] = repr(reg)
    net = Regularized(clf, reg, seed=ctx.seed)
    net.compile(optimizer=ctx.optimizer(), metrics=["accuracy"], jit_compile=ctx.jit_compile)
    ctx.fit(net)
    return clf


def _mixup_alpha(default, grid):
    return Hyperparameter("mixup_alpha", default, "α of the mixing coefficient λ ~ Beta(α, α) (labeled batch)",
                          float, minimum=0.0, exclusive_minimum=True, grid=grid)


_MIX_LAYERS = Hyperparameter(
    "mix_layers", "input,block1,block2",
    "comma-separated eligible layer names (\"input\" = the input; kzoo models name block outputs block1, "
    "block2, ...); one is picked per batch", str, grid=("input", "input,block1,block2", "block1,block2"))
_PER_EXAMPLE = Hyperparameter("mix_per_example", False, "one λ per example instead of one per batch", bool)
_KEEP_CLEAN = Hyperparameter("mix_keep_clean", False, "keep the clean labeled cross-entropy beside the mixed "
                             "one (the paper: the mixed one replaces it)", bool, grid=(False, True))
_MIX_BN = Hyperparameter("mix_batch_norm", "clean",
                         "batch norm of the mixed pass: the clean batch's statistics (clean) or its own (mixed)",
                         str, choices=("clean", "mixed"))
_SSL_HP = (
    Hyperparameter("mixup_consistency", 30.0,
                   "max weight of the consistency term (MSE of class probabilities, mean over classes)",
                   float, minimum=0.0, exclusive_minimum=True, grid=(3.0, 10.0, 30.0, 100.0)),
    Hyperparameter("mixup_unlabeled_alpha", 2.0, "α of Beta(α, α) for mixing the unlabeled batch",
                   float, minimum=0.0, exclusive_minimum=True, grid=(0.5, 1.0, 2.0, 4.0)),
    Hyperparameter("mixup_rampup_fraction", 0.4,
                   "sigmoid ramp-up of the consistency weight over this fraction of training",
                   float, minimum=0.0, maximum=1.0, grid=(0.2, 0.4)),
)
_MIXUP_PAPER = "Verma et al., Manifold Mixup, 2018 (arXiv:1806.05236); Zhang et al., mixup, ICLR 2018"

register(Method(
    "mixup", "input mixup (Zhang et al.): cross-entropy on mixed inputs and targets, labeled data",
    (_mixup_alpha(1.0, (0.2, 0.5, 1.0, 2.0)), _PER_EXAMPLE, _MIX_BN, _KEEP_CLEAN),
    train=_train_mixup, semi_supervised=False, paper=_MIXUP_PAPER))
register(Method(
    "manifold-mixup", "Manifold Mixup (Verma et al.): mix hidden states of a random eligible layer, labeled data",
    (_mixup_alpha(2.0, (0.5, 1.0, 2.0, 4.0)), _MIX_LAYERS, _PER_EXAMPLE, _MIX_BN, _KEEP_CLEAN),
    train=_train_mixup, semi_supervised=False, paper=_MIXUP_PAPER))
register(Method(
    "mixup-ssl", "semi-supervised input mixup (Verma et al., Algorithm 3): mixed labeled CE + ramped "
    "consistency to mixed pseudo-targets",
    (_mixup_alpha(0.1, (0.1, 0.5, 1.0)), _PER_EXAMPLE, _MIX_BN, _KEEP_CLEAN) + _SSL_HP,
    train=_train_mixup, semi_supervised=True, paper=_MIXUP_PAPER))
register(Method(
    "manifold-mixup-ssl", "semi-supervised Manifold Mixup (Verma et al., Algorithm 1): mixed labeled CE + "
    "ramped consistency to mixed pseudo-targets",
    (_mixup_alpha(0.1, (0.1, 0.5, 1.0)), _MIX_LAYERS, _PER_EXAMPLE, _MIX_BN, _KEEP_CLEAN) + _SSL_HP,
    train=_train_mixup, semi_supervised=True, paper=_MIXUP_PAPER))


# ----------------------------------------------------------------------------
# Combinations (issue 15, item 5): kzoo's regularizers added up
# ----------------------------------------------------------------------------


def _train_vat_mixup(ctx):
    """VAT (+ EntMin) + semi-supervised mixup consistency on one classifier: ``Regularized(clf, sum)``."""
    from kzoo import mixup
    from kzoo.core import Regularized
    from kzoo.experiment import ConfigError

    hp = ctx.hyperparameters
    clf = ctx.make_classifier()
    reg = _build_vat(hp)
    try:
        mix = mixup.from_hyperparameters({**hp, "mix_keep_clean": True}, steps=ctx.steps)
        mix.check_network(clf)
    except ValueError as e:
        raise ConfigError(f"{ctx.method.name} on model {ctx.model}: {e}") from e
    reg = reg + mix
    ctx.info["regularizer"] = repr(reg)
    net = Regularized(clf, reg, seed=ctx.seed)
    net.compile(optimizer=ctx.optimizer(), metrics=["accuracy"], jit_compile=ctx.jit_compile)
    ctx.fit(net)
    return clf


register(Method(
    "vat-mixup", "VAT + entropy minimization + Manifold Mixup consistency on the unlabeled batch (kzoo's "
    "combination; the clean labeled cross-entropy is kept)",
    # one searched hyperparameter (its step costs about three VAT steps): the others keep VAT's and the paper's values
    tuple(dataclasses.replace(hp, grid=None) for hp in METHODS["vat"].hyperparameters + (
        _mixup_alpha(0.1, None), _MIX_LAYERS, _SSL_HP[1], _SSL_HP[2])) + (
        dataclasses.replace(_SSL_HP[0], default=10.0, grid=(3.0, 10.0, 30.0)),),
    train=_train_vat_mixup, paper=_VAT_PAPER + "; " + _MIXUP_PAPER))

from kzoo import method_presets  # noqa: E402,F401  (annotates the methods above with presets and warnings)
