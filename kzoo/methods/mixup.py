"""The mixup family (:mod:`kzoo.mixup`): input mixup and Manifold Mixup, supervised and semi-supervised
(Verma et al., Manifold Mixup, 2018; Zhang et al., mixup, 2017): the training loop and registry entries."""

from kzoo.errors import InvalidArgumentError
import dataclasses

from kzoo.errors import ConfigError
from kzoo.methods.registry import METHODS, Hyperparameter, Method, fit_regularized, register
from kzoo.methods.vat import _VAT_PAPER


def from_hyperparameters(hp, steps=None):
    """The regularizer of a registered mixup method (``kzoo.methods``) from its resolved hyperparameters.

    ``mixup_rampup_fraction`` (a fraction of training) becomes ``rampup_steps``
    with the run's ``steps``; ``mix_keep_clean`` keeps the clean cross-entropy
    beside the mixed one (``replace_supervised=False``). ``mix_layers`` "auto" is the paper's
    rule on the classifier (:func:`kzoo.mixup.auto_layers`); no ``mix_batch_norm``: the regularizer's
    default ("paper" when supervised and replacing, else "clean").
    """
    from kzoo.mixup import INPUT, ManifoldMixup

    layers = hp.get("mix_layers", INPUT)
    consistency = hp.get("mixup_consistency", 0.0) or 0.0
    fraction = hp.get("mixup_rampup_fraction", 0.0) or 0.0
    if consistency and fraction and not steps:
        raise InvalidArgumentError("the consistency ramp-up is a fraction of training: pass the run's steps")
    return ManifoldMixup(
        alpha=hp["mixup_alpha"], layers=layers, per_example=bool(hp.get("mix_per_example", False)),
        consistency=consistency, unlabeled_alpha=hp.get("mixup_unlabeled_alpha"),
        rampup_steps=int(round(fraction * steps)) if consistency and fraction else 0,
        batch_norm=hp.get("mix_batch_norm"),
        replace_supervised=not hp.get("mix_keep_clean", False),
        ema_teacher=hp.get("ema_teacher") or None,  # vat-mixup's --ema-teacher: one teacher for both terms
    )


def _train_mixup(ctx):
    """``Regularized(classifier, ManifoldMixup(...)).fit``; the layer names are checked against the
    classifier and the ramp-up fraction turned into steps before training."""
    clf = ctx.make_classifier()
    try:
        reg = from_hyperparameters(ctx.hyperparameters, steps=ctx.steps)
        reg.check_network(clf)
    except ValueError as e:
        raise ConfigError(f"{ctx.method.name} on model {ctx.model}: {e}") from e
    _report_mixing(ctx, reg, clf)
    return fit_regularized(ctx, clf, reg)


def _report_mixing(ctx, reg, clf):
    """The metrics JSON's record of where and how the run mixed (its hyperparameters)."""
    ctx.info["mix_layers_used"] = ",".join(reg.layers_for(clf))
    ctx.info["mix_batch_norm_used"] = reg.batch_norm


def _mixup_alpha(default, grid):
    return Hyperparameter("mixup_alpha", default, "α of the mixing coefficient λ ~ Beta(α, α) (labeled batch)",
                          float, minimum=0.0, exclusive_minimum=True, grid=grid)


_MIX_LAYERS = Hyperparameter(
    "mix_layers", "auto",
    "comma-separated eligible layer names (\"input\" = the input; kzoo models name block outputs block1, "
    "block2, ...), one picked per batch; auto: the paper's rule, the input and the outputs of the first two "
    "stages (input,block1,block2 on kzoo's models)", str, grid=("input", "input,block1,block2", "block1,block2"))
_PER_EXAMPLE = Hyperparameter("mix_per_example", False, "one λ per example instead of one per batch", bool)
_KEEP_CLEAN = Hyperparameter("mix_keep_clean", False, "keep the clean labeled cross-entropy beside the mixed "
                             "one (the paper: the mixed one replaces it)", bool, grid=(False, True))
# supervised methods: keeping the clean loss needs a clean pass, so not with their default mode (paper); no default
# grid over it (each of its settings would need a mode of its own), a grid may pair it with mix_batch_norm
_KEEP_CLEAN_SUP = dataclasses.replace(_KEEP_CLEAN, grid=None, help=_KEEP_CLEAN.help + "; needs --mix-batch-norm "
                                      "clean or mixed (the default, paper, has no clean pass)")
_MIX_BN_HELP = ("batch norm of the mixed pass: its own statistics and it alone updates them, no clean pass (paper: "
                "one forward-backward a step, as supervised training; needs the mixed loss to replace the clean "
                "one), the clean batch's statistics (clean: one more pass), or its own (mixed)")
_MIX_BN = Hyperparameter("mix_batch_norm", "paper", _MIX_BN_HELP, str, choices=("clean", "mixed", "paper"))
# the semi-supervised variants need the clean pass (their pseudo-targets): "paper" is not available to them
_MIX_BN_SSL = Hyperparameter("mix_batch_norm", "clean", _MIX_BN_HELP.replace(
    "paper: ", "paper, supervised variants only: "), str, choices=("clean", "mixed"))
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
    (_mixup_alpha(1.0, (0.2, 0.5, 1.0, 2.0)), _PER_EXAMPLE, _MIX_BN, _KEEP_CLEAN_SUP),
    train=_train_mixup, semi_supervised=False, paper=_MIXUP_PAPER))
register(Method(
    "manifold-mixup", "Manifold Mixup (Verma et al.): mix hidden states of a random eligible layer, labeled data",
    (_mixup_alpha(2.0, (0.5, 1.0, 2.0, 4.0)), _MIX_LAYERS, _PER_EXAMPLE, _MIX_BN, _KEEP_CLEAN_SUP),
    train=_train_mixup, semi_supervised=False, paper=_MIXUP_PAPER))
register(Method(
    "mixup-ssl", "semi-supervised input mixup (Verma et al., Algorithm 3): mixed labeled CE + ramped "
    "consistency to mixed pseudo-targets",
    (_mixup_alpha(0.1, (0.1, 0.5, 1.0)), _PER_EXAMPLE, _MIX_BN_SSL, _KEEP_CLEAN) + _SSL_HP,
    train=_train_mixup, semi_supervised=True, paper=_MIXUP_PAPER))
register(Method(
    "manifold-mixup-ssl", "semi-supervised Manifold Mixup (Verma et al., Algorithm 1): mixed labeled CE + "
    "ramped consistency to mixed pseudo-targets",
    (_mixup_alpha(0.1, (0.1, 0.5, 1.0)), _MIX_LAYERS, _PER_EXAMPLE, _MIX_BN_SSL, _KEEP_CLEAN) + _SSL_HP,
    train=_train_mixup, semi_supervised=True, paper=_MIXUP_PAPER))


# ----------------------------------------------------------------------------
# Combinations (issue 15, item 5): kzoo's regularizers added up
# ----------------------------------------------------------------------------


def _train_vat_mixup(ctx):
    """VAT (+ EntMin) + semi-supervised mixup consistency on one classifier: ``Regularized(clf, sum)``."""
    from kzoo.methods.vat import _build_vat

    hp = ctx.hyperparameters
    clf = ctx.make_classifier()
    reg = _build_vat(hp)
    try:
        mix = from_hyperparameters({**hp, "mix_keep_clean": True}, steps=ctx.steps)
        mix.check_network(clf)
    except ValueError as e:
        raise ConfigError(f"{ctx.method.name} on model {ctx.model}: {e}") from e
    _report_mixing(ctx, mix, clf)
    return fit_regularized(ctx, clf, reg + mix)


register(Method(
    "vat-mixup", "VAT (+ EntMin with --entmin) + Manifold Mixup consistency on the unlabeled batch (kzoo's "
    "combination; the clean labeled cross-entropy is kept)",
    # one searched hyperparameter (its step costs about three VAT steps): the others keep VAT's and the paper's values
    tuple(dataclasses.replace(hp, grid=None) for hp in METHODS["vat"].hyperparameters + (
        _mixup_alpha(0.1, None), _MIX_LAYERS, _SSL_HP[1], _SSL_HP[2])) + (
        dataclasses.replace(_SSL_HP[0], default=10.0, grid=(3.0, 10.0, 30.0)),),
    train=_train_vat_mixup, paper=_VAT_PAPER + "; " + _MIXUP_PAPER))
