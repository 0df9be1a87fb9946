"""Per-dataset presets and warnings of the registered methods (issue 15).

Presets are settings chosen on validation splits of the labeled set, never on
the test split; a warning says where a method did not beat supervised training.
The evidence of each is the benchmarks/RESULTS.md section it names.
(Imported by :mod:`kzoo.methods` after the families have registered.)
"""

from kzoo.methods.registry import Preset, annotate

_GRID_VAT = "RESULTS.md: Grid search: VAT on digits"
_SWEEPS = "RESULTS.md: Validation sweeps on digits"
_TABLE = "benchmarks/RESULTS.md, Semi-supervised digits table"
annotate("vat", [Preset("digits", {"epsilon": 1.0, "alpha": 1.0}, evidence=_GRID_VAT)])
annotate("manifold", [Preset("digits", {"gamma": 1e-3, "eta": 0.1, "epsilon": 3.0}, labels=100,
                             evidence="RESULTS.md: Grid search: GAN manifold regularization on digits")],
         warning="worse than supervised on digits with 100 labels, also at its validation-chosen setting (test "
                 "12.5% against 7.9%; " + _TABLE + " and its grid search)")
annotate("rpt", warning="worse than supervised on digits with 30 labels (34.3% against 18.4% test error, " + _TABLE
         + ")")
annotate("lvat-vae", warning="worse than supervised on digits (27.1% against 7.9% at 100 labels): the classifier "
         "turns flat off the labeled points; add --entmin (" + _TABLE + ", LVAT notes)")
annotate("lvat-glow", warning="worse than supervised on digits with 30 labels (54.4% against 18.4%): flat "
         "predictions off the labeled points; --entmin 1 fixes it (" + _TABLE + ", LVAT notes)")
_MIXUP_WARNING = ("worse than supervised on digits (MLP, 100 labels): test {test} against 7.9%, and on validation "
                  "also with α = 0.2 and the clean loss kept (" + _SWEEPS + ", sweep mixup)")
annotate("mixup", [Preset("digits", {"mixup_alpha": 0.2, "mix_keep_clean": True}, evidence=_SWEEPS)],
         warning=_MIXUP_WARNING.format(test="13.7%"))
annotate("manifold-mixup", [Preset("digits", {"mixup_alpha": 0.2, "mix_keep_clean": True}, evidence=_SWEEPS)],
         warning=_MIXUP_WARNING.format(test="10.9%"))
annotate("manifold-mixup-ssl", warning="not better than supervised on digits with 100 labels (test 9.3% against "
         "7.9%, " + _TABLE + ")")
annotate("vat-mixup", [Preset("digits", {"entmin": 0.0, "mixup_consistency": 10.0}, evidence=_SWEEPS)])
