"""Networks (layer 3): architectures only, no training logic.

* :mod:`kzoo.networks.classifiers` -- the papers' classifiers (also ``kzoo.models``);
* :mod:`kzoo.networks.gan` -- weight-normalized layers and the GAN architectures (paper 000);
* :mod:`kzoo.networks.ali` -- ALI / BiGAN encoders, decoders and joint discriminators;
* :mod:`kzoo.networks.flows`, :mod:`kzoo.networks.vae`, :mod:`kzoo.networks.glow` -- LVAT's transformers;
* :mod:`kzoo.networks.metrics` -- metrics of generator networks (MLCN, digits sample score).
"""

# the classifiers' names (kzoo.networks.classifiers.MODELS), here so that the command line checks --model
# before Keras is imported
CLASSIFIERS = ("mlp", "conv_small", "conv_large", "preact_resnet18", "wide_resnet28_2", "conv_manifold",
               "mnist1d_cnn", "resnet1d")
# the classifier a dataset trains by default (when no model is given); every other dataset: mlp
DEFAULT_MODELS = {"mnist1d": "mnist1d_cnn"}


def default_model(dataset):
    """The classifier ``dataset`` trains by default: ``mnist1d_cnn`` on MNIST-1D, else ``mlp``."""
    return DEFAULT_MODELS.get(str(dataset).strip().lower(), "mlp")
