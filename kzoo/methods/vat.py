"""The supervised baseline and the VAT family (:mod:`kzoo.vat`): registry entries and builders."""

from kzoo.methods.registry import RAMPUP, Hyperparameter, Method, alpha, epsilon, register

def _no_regularizer(hp):
    return None


def _build_vat(hp):
    from kzoo import vat

    reg = vat.VAT(epsilon=hp["epsilon"], alpha=hp["alpha"], xi=hp["xi"],
                  power_iterations=hp["power_iterations"], rampup_steps=hp["rampup_steps"],
                  ema_teacher=hp.get("ema_teacher") or None)
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
     RAMPUP,
     Hyperparameter("ema_teacher", 0.0, "EMA decay of a teacher network whose prediction is the target (0: "
                    "none, the paper's VAT; e.g. 0.99)", float, minimum=0.0, maximum=0.9999, neutral=0.0)),
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
