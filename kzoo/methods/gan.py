"""The GAN family (:mod:`kzoo.gan`): training loops of ``gan-ssl`` and ``manifold``, ``kzoo pretrain dcgan``,
sample grids, and their registry entries."""

import math

import numpy as np

from kzoo.errors import ConfigError
from kzoo.methods.plots import pyplot, save_figure
from kzoo.methods.registry import (RAMPUP, Hyperparameter, Method, Pretrainer, epsilon, fit_regularized, register,
                                   register_pretrainer)


def save_image_grid(images, path, ncols=10, title=None):
    """Save images (n, h, w, c) in [0, 1] as a PNG grid, atomically."""
    plt = pyplot()
    images = np.asarray(images)
    n = len(images)
    nrows = int(math.ceil(n / ncols))
    h, w = images.shape[1:3]
    grid = np.ones((nrows * (h + 1) + 1, ncols * (w + 1) + 1, images.shape[3]))
    for i, img in enumerate(np.clip(images, 0.0, 1.0)):
        r, c = divmod(i, ncols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = img
    fig, ax = plt.subplots(figsize=(ncols * 0.5 + 0.5, nrows * 0.5 + 0.5))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray_r" if grid.shape[-1] == 1 else None,
              interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)
    path = save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------
# Training loops of the registered methods (kzoo.methods) and the pretrainer
# --------------------------------------------------------------------------


def train_gan_ssl(ctx):
    """``kzoo train gan-ssl``: the coupled semi-supervised GAN; returns the EMA classifier."""
    from kzoo.gan import NaNGuard, SemiSupervisedGAN, latent_dim_of, resolve_arch, ssgan_pair

    hp = ctx.hyperparameters
    ds = ctx.dataset
    try:
        gen, clf = ssgan_pair(ds.input_shape, ds.num_classes, arch=hp["gan_arch"], width=hp["gan_width"],
                              latent_dim=hp["latent_dim"] or None, weight_norm=hp["weight_norm"],
                              value_range=ds.value_range, discriminator=hp["gan_discriminator"])
    except ValueError as e:
        raise ConfigError(str(e)) from e
    model = SemiSupervisedGAN(gen, clf, manifold_gamma=hp["manifold_gamma"], ambient_gamma=hp["ambient_gamma"],
                              epsilon=hp["epsilon"], eta=hp["eta"], normalized=hp["normalize"],
                              unlabeled_weight=hp["unlabeled_weight"], ema_decay=hp["ema_decay"], seed=ctx.seed)
    model.compile(discriminator_optimizer=ctx.optimizer(beta_1=0.5), generator_optimizer=ctx.optimizer(beta_1=0.5),
                  jit_compile=ctx.jit_compile)
    ctx.callbacks.append(NaNGuard())
    ctx.fit(model)
    ctx.info.update({"latent_dim": latent_dim_of(gen), "arch": resolve_arch(hp["gan_arch"], ds.input_shape),
                     "classifier": "EMA of the discriminator"})
    ctx.info["model"] = "discriminator (Table A4)" if ctx.info["arch"] == "conv" else "discriminator (MLP)"
    ctx.gan = model  # for callers that want the generator (recipes, benchmarks)
    return model.ema_classifier()


def train_manifold(ctx):
    """``kzoo train manifold --generator PATH``: a classifier regularized with a frozen pretrained generator."""
    from kzoo.gan import ManifoldGAN, NaNGuard, check_generator_matches, load_generator

    hp = ctx.hyperparameters
    if not hp["generator"]:
        raise ConfigError("manifold needs --generator PATH: a generator saved by "
                            "`kzoo pretrain dcgan --dataset DATASET --export PATH.keras`")
    try:
        generator = load_generator(hp["generator"])
        check_generator_matches(generator, ctx.dataset.input_shape)
        reg = ManifoldGAN(generator, epsilon=hp["epsilon"], eta=hp["eta"], gamma=hp["gamma"],
                          normalized=hp["normalize"], rampup_steps=hp["rampup_steps"])
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from e
    ctx.callbacks.append(NaNGuard())
    return fit_regularized(ctx, ctx.make_classifier(), reg)


def pretrain_dcgan(ctx):
    """``kzoo pretrain dcgan``: a plain GAN (Table A6 scaled, or MLPs for flat data); saves the generator."""
    import keras

    from kzoo import data as kdata
    from kzoo.export import save_keras_atomic
    from kzoo.gan import GAN, NaNGuard, dcgan_pair, digits_sample_score, latent_dim_of, mean_log_condition_number

    hp = ctx.hyperparameters
    ds = ctx.dataset
    try:
        gen, disc = dcgan_pair(ds.input_shape, arch=hp["gan_arch"], width=hp["gan_width"],
                               latent_dim=hp["latent_dim"] or None, value_range=ds.value_range)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    gan = GAN(gen, disc, seed=ctx.seed)
    lr = ctx.learning_rate or 1e-3  # on digits 1e-3 for 4,000 steps beat 2e-4 for 6,000 (digits sample score 6.7 vs 4.4)
    gan.compile(discriminator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5),
                generator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5))
    stream = kdata.supervised(ds.x_train, ds.y_train, batch_size=ctx.batch_size, seed=ctx.seed)
    ctx.callbacks.append(NaNGuard())
    history = ctx.fit(gan, stream)
    save_keras_atomic(gen, ctx.export)
    metrics = {k: float(v[-1]) for k, v in history.history.items()}
    metrics["latent_dim"] = latent_dim_of(gen)
    if latent_dim_of(gen) <= int(np.prod(ds.input_shape)):
        metrics["mlcn"] = mean_log_condition_number(gen, seed=ctx.seed)
    if ds.name == "digits":
        metrics.update(digits_sample_score(gan.sample(1000)))
    return metrics


_MANIFOLD_PAPER = "Lecouat et al., Manifold regularization with GANs for semi-supervised learning (paper 000)"


_ETA = Hyperparameter("eta", 1.0, "latent finite-difference step η of the manifold tangent (paper: 1)", float,
                      minimum=0.0, exclusive_minimum=True, grid=(0.1, 1.0))
_NORMALIZE = Hyperparameter("normalize", True, "manifold tangent r̄ = r/||r|| (true, the paper's default) or the "
                            "unnormalized r (false)", bool)
_GAN_ARCH = Hyperparameter("gan_arch", "auto", "GAN networks: conv (Tables A3/A4/A6 scaled to the image size), "
                           "mlp, or auto (conv for square images of 16×16 or more, else mlp)", str, choices=("auto", "conv", "mlp"))
_GAN_WIDTH = Hyperparameter("gan_width", 1.0, "channel/unit multiplier of the GAN networks", float, minimum=0.0,
                            exclusive_minimum=True)
_LATENT_DIM = Hyperparameter("latent_dim", 0, "generator latent size (0: 100 for large images, about half the "
                             "input size otherwise)", int, minimum=0)
# ε in input units: the paper's 20 is for 32×32×3 images in [-1, 1] (norm ~30-50); digits images
# (8×8 in [0, 1]) have norms ~4-5, so the default here is scaled down (see benchmarks/RESULTS.md).
register(Method(
    "gan-ssl", "semi-supervised feature-matching GAN (K+1-way discriminator = classifier, Salimans et al.) with "
    "optional manifold (--manifold-gamma) and ambient (--ambient-gamma) regularization",
    (Hyperparameter("manifold_gamma", 0.0, "manifold regularizer weight γ (paper: 1e-3; 0: off)", float,
                    minimum=0.0, grid=(0.0, 1e-3, 1e-2, 1e-1)),
     Hyperparameter("ambient_gamma", 0.0, "ambient regularizer weight (0: off)", float, minimum=0.0,
                    grid=(0.0, 1e-3, 1e-2)),
     epsilon(3.0, help="manifold/ambient step ε in input units (paper: 20 on 32×32×3 images)",
             grid=(1.0, 3.0, 10.0, 20.0)),
     _ETA, _NORMALIZE,
     Hyperparameter("unlabeled_weight", 1.0, "weight of the unsupervised K+1 loss", float, minimum=0.0),
     Hyperparameter("ema_decay", 0.999, "decay of the classifier's exponential moving average", float,
                    minimum=0.0, maximum=0.99999),
     Hyperparameter("weight_norm", True, "weight-normalized discriminator (Table A4)", bool),
     Hyperparameter("gan_discriminator", "conv_small", "conv discriminator of Table A4: conv_small (64/128 "
                    "channels, the paper's SVHN network) or conv_large (96/192, its CIFAR-10 network)", str,
                    choices=("conv_small", "conv_large")),
     _GAN_ARCH, _GAN_WIDTH, _LATENT_DIM),
    train=lambda ctx: train_gan_ssl(ctx),  # late-bound: recipes wrap it
    paper=_MANIFOLD_PAPER))
register(Method(
    "manifold", "manifold regularization (decoupled): any classifier + γ·E||f(g(z)) - f(g(z)+εr̄)||² with a frozen "
    "generator from `kzoo pretrain dcgan` (--generator PATH)",
    (Hyperparameter("generator", None, "generator saved by `kzoo pretrain dcgan` (.keras file)", str),
     Hyperparameter("gamma", 0.01, "manifold regularizer weight γ (paper, Table A8: 1e-4 with ε = 20; on digits "
                    "γ = 0.1 and 1 raised the error of the plain classifier)", float,
                    minimum=0.0, grid=(1e-3, 1e-2, 1e-1, 1.0)),
     epsilon(3.0, help="manifold step ε in input units (paper: 20 on 32×32×3 images)", grid=(1.0, 3.0, 10.0)),
     _ETA, _NORMALIZE, RAMPUP),
    train=train_manifold, paper=_MANIFOLD_PAPER))
register_pretrainer(Pretrainer(
    "dcgan", "DCGAN (paper 000 Table A6, scaled to the input size; MLPs for 2-D data): the generator for "
    "`kzoo train manifold --generator`",
    (_GAN_ARCH, _GAN_WIDTH, _LATENT_DIM),
    run=pretrain_dcgan, paper=_MANIFOLD_PAPER))
