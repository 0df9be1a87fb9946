"""Modern consistency baselines (:mod:`kzoo.consistency`): Mean Teacher and FixMatch, registry entries.

Their augmentations (:class:`kzoo.data.augment1d.Augment`) run inside the train step on sequences
(MNIST-1D), flat vectors and images (digits): shifts are in steps (pixels), cut-outs a segment (a patch).
"""

from kzoo.errors import ConfigError
from kzoo.methods.registry import Hyperparameter, Method, fit_regularized, register

_MT_PAPER = "Tarvainen & Valpola, Mean teachers are better role models, NeurIPS 2017 (arXiv:1703.01780)"
_FIXMATCH_PAPER = "Sohn et al., FixMatch, NeurIPS 2020 (arXiv:2001.07685)"


def _steps(name, default, help, grid=None):
    return Hyperparameter(name, default, help, int, minimum=0, grid=grid)


def _amount(name, default, help, maximum=None, grid=None):
    return Hyperparameter(name, default, help, float, minimum=0.0, maximum=maximum, grid=grid)


EMA_TEACHER = Hyperparameter("ema_teacher", 0.99, "EMA decay of the teacher's weights (the paper: 0.99, then "
                             "0.999)", float, minimum=0.0, maximum=0.9999, grid=(0.99, 0.999))


def _augment(hp, prefix):
    from kzoo.data.augment1d import Augment

    return Augment(shift=hp[f"{prefix}_shift"], scale=hp.get(f"{prefix}_scale", 0.0),
                   noise=hp.get(f"{prefix}_noise", 0.0), cutout=hp.get(f"{prefix}_cutout", 0))


def _fit(ctx, reg):
    """``Regularized(classifier, reg).fit`` after checking the augmentations against the classifier's inputs."""
    clf = ctx.make_classifier()
    try:
        reg.check_network(clf)
    except ValueError as e:
        raise ConfigError(f"{ctx.method.name} on model {ctx.model}: {e}") from e
    return fit_regularized(ctx, clf, reg)


def build_mean_teacher(hp, steps=None):
    from kzoo.consistency import MeanTeacher

    fraction = hp["mt_rampup_fraction"]
    return MeanTeacher(weight=hp["mt_consistency"], decay=hp["ema_teacher"], augment=_augment(hp, "aug"),
                       rampup_steps=int(round(fraction * steps)) if steps else 0)


def build_fixmatch(hp):
    from kzoo.consistency import FixMatch

    return FixMatch(threshold=hp["fixmatch_threshold"], weight=hp["fixmatch_weight"],
                    weak=_augment(hp, "weak"), strong=_augment(hp, "strong"))


def _train_mean_teacher(ctx):
    try:
        reg = build_mean_teacher(ctx.hyperparameters, steps=ctx.steps)
    except ValueError as e:
        raise ConfigError(f"mean-teacher: {e}") from e
    return _fit(ctx, reg)


def _train_fixmatch(ctx):
    try:
        reg = build_fixmatch(ctx.hyperparameters)
    except ValueError as e:
        raise ConfigError(f"fixmatch: {e}") from e
    return _fit(ctx, reg)


register(Method(
    "mean-teacher", "Mean Teacher (Tarvainen & Valpola): MSE of class probabilities between the network on an "
    "augmented input and its EMA teacher, on labeled + unlabeled inputs",
    (Hyperparameter("mt_consistency", 10.0, "max weight of the consistency cost (MSE of class probabilities, "
                    "mean over classes)", float, minimum=0.0, grid=(1.0, 10.0, 100.0)),
     EMA_TEACHER,
     Hyperparameter("mt_rampup_fraction", 0.4, "sigmoid ramp-up of the consistency weight over this fraction of "
                    "training", float, minimum=0.0, maximum=1.0),
     _steps("aug_shift", 1, "random shift of the inputs, up to this many steps (pixels) each way"),
     _amount("aug_scale", 0.0, "random amplitude scaling by a factor in [1 - s, 1 + s]", maximum=0.99),
     _amount("aug_noise", 0.1, "Gaussian input noise of this standard deviation")),
    train=_train_mean_teacher, paper=_MT_PAPER))
register(Method(
    "fixmatch", "FixMatch (Sohn et al.): cross-entropy of strongly augmented unlabeled inputs to the confident "
    "pseudo-labels of weakly augmented ones; --batch-unlabeled sets µ",
    (Hyperparameter("fixmatch_threshold", 0.95, "confidence threshold τ of the pseudo-labels", float,
                    minimum=0.0, maximum=1.0, grid=(0.8, 0.95)),
     Hyperparameter("fixmatch_weight", 1.0, "weight λ_u of the unlabeled loss", float, minimum=0.0,
                    grid=(0.3, 1.0, 3.0)),
     _steps("weak_shift", 1, "weak augmentation: random shift up to this many steps (pixels) each way"),
     _steps("strong_shift", 2, "strong augmentation: random shift up to this many steps (pixels) each way"),
     _amount("strong_scale", 0.25, "strong augmentation: amplitude scaling by a factor in [1 - s, 1 + s]",
             maximum=0.99),
     _amount("strong_noise", 0.1, "strong augmentation: Gaussian noise of this standard deviation"),
     _steps("strong_cutout", 4, "strong augmentation: zero a random segment (patch) of this many steps")),
    train=_train_fixmatch, paper=_FIXMATCH_PAPER))
