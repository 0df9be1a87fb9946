"""kzoo: regularizers for semi-supervised and supervised learning in Keras 3.

    import kzoo
    clf = kzoo.models.mlp(input_shape=(64,), num_classes=10)
    model = kzoo.Regularized(clf, kzoo.regularizers.VAT(epsilon=1.0))
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(kzoo.data.semi_supervised(x_l, y_l, x_u), steps_per_epoch=100, epochs=10)
    model.export("saved_models/vat_digits")
"""

from kzoo.backend import SUPPORTED_BACKENDS, check_backend

check_backend()

from kzoo import data, models, ops, regularizers  # noqa: E402
from kzoo.core import Regularized, Regularizer, RegularizerMixin, StepContext  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Regularized",
    "RegularizerMixin",
    "Regularizer",
    "StepContext",
    "data",
    "models",
    "ops",
    "regularizers",
    "SUPPORTED_BACKENDS",
]
