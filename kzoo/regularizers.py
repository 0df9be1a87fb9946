"""All kzoo regularizers, by name: ``kzoo.regularizers.VAT(...)``.

Each method family lives in its own module (``kzoo.vat``, ...); this module is
the public namespace. The registry of trainable methods is ``kzoo.methods``.
"""

from kzoo.consistency import FixMatch, MeanTeacher
from kzoo.core import Regularizer, Sum
from kzoo.gan import AmbientSmoothness, ManifoldGAN  # GAN family (paper 000)
from kzoo.lvat import LVAT  # needs TensorFlow Probability when built (TensorFlow backend), not on import
from kzoo.mixup import InputMixup, ManifoldMixup
from kzoo.vat import RPT, VAT, AdversarialTraining, EntropyMinimization

__all__ = ["Regularizer", "Sum", "VAT", "RPT", "AdversarialTraining", "EntropyMinimization", "LVAT",
           "ManifoldGAN", "AmbientSmoothness", "ManifoldMixup", "InputMixup", "MeanTeacher", "FixMatch"]
