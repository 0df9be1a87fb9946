"""The registry of trainable methods and each family's glue (layer 5).

:mod:`kzoo.methods.registry` defines :class:`Method`, :class:`Hyperparameter`
and :class:`Pretrainer`; each family's glue module (``kzoo/methods/FAMILY.py``)
registers its methods with builders and training loops; :mod:`kzoo.methods.context`
is what a training loop gets (:class:`~kzoo.methods.context.RunContext`).

Adding a method: write ``kzoo/methods/NAME.py`` with its ``register(Method(...))``
entries and add it to the import of the families at the bottom of this file (see README,
"Add your own method").
Importing this package does not import Keras: builders and loops import their
family's math when called.
"""

from kzoo.methods.registry import (  # noqa: F401
    METHODS, PRESET_RUN_SETTINGS, PRETRAINERS, RAMPUP, Hyperparameter, Method, Preset, Pretrainer, all_hyperparameters,
    alpha, epsilon, fit_regularized, get, get_pretrainer, given_hyperparameters, hyperparameter_flags, register,
    register_pretrainer, train_regularized, annotate)

# The method families, in the order ``kzoo methods`` lists them: importing a glue module registers its methods.
from kzoo.methods import vat, lvat, ali, gan, mixup, consistency  # noqa: E402, F401, I001
# Validation-chosen presets and warnings of the methods above (kzoo.methods.presets, issue 15).
from kzoo.methods import presets  # noqa: E402, F401, I001
