"""All kzoo regularizers, by name: ``kzoo.regularizers.VAT(...)``.

Each method family lives in its own module (``kzoo.vat``, ...); this module is
the public namespace and the registry that the CLI and tuner read.
"""

from kzoo.core import Regularizer, Sum
from kzoo.vat import RPT, VAT, AdversarialTraining, EntropyMinimization
from kzoo.mixup import InputMixup, ManifoldMixup  # noqa: E402  (the mixup family)

__all__ = ["Regularizer", "Sum", "VAT", "RPT", "AdversarialTraining", "EntropyMinimization"]
__all__ += ["ManifoldMixup", "InputMixup"]
