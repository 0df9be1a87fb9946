"""The classifiers of the papers: :mod:`kzoo.networks.classifiers`, under its old name ``kzoo.models``."""

from kzoo.networks.classifiers import (MODELS, conv_large, conv_manifold, conv_small, get, mlp,  # noqa: F401
                                       mnist1d_cnn, preact_resnet18, resnet1d, wide_resnet28_2)
from kzoo.networks.classifiers import __getattr__  # noqa: F401  (kzoo.models.VAE / Glow)
