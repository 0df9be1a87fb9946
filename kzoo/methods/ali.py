"""ALI / BiGAN (:mod:`kzoo.ali`): the ``ali-ssl`` training loop, ``kzoo pretrain ali`` and its figures,
and their registry entries."""

from kzoo.errors import InvalidArgumentError
import numpy as np

from kzoo.methods.plots import pyplot as _pyplot
from kzoo.methods.plots import save_figure as _save_figure
from kzoo.methods.registry import Hyperparameter, Method, Pretrainer, register, register_pretrainer

# --------------------------------------------------------------------------
# Figures: reconstructions and interpolations (images), Fig. 8-style scatter (2-D)
# --------------------------------------------------------------------------


def _tile(images, rows, cols):
    """(rows*cols, h, w, c) images -> one (rows*h, cols*w[, 3]) array with 1-pixel gaps (RGB kept in colour)."""
    h, w = images.shape[1:3]
    rgb = images.ndim == 4 and images.shape[-1] == 3
    out = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1) + ((3,) if rgb else ()))
    for i, img in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        out[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = np.clip(img if rgb else img.mean(-1), 0, 1)
    return out


def plot_images(model, x, path, n=32, steps=8, seed=0):
    """PNG of samples, reconstructions (odd columns: inputs, even: G_x(z), z ~ q(z|x)) and interpolations."""
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    x = np.asarray(x)[rng.permutation(len(x))]
    n = min(n, len(x) // 2 * 2)
    samples = model.sample(n)
    rec = model.reconstruct(x[:n])
    pairs = np.stack([x[:n], rec], 1).reshape((2 * n,) + x.shape[1:])
    k = min(6, len(x) // 2)
    inter = model.interpolate(x[:k], x[k:2 * k], steps)
    inter = np.concatenate([x[:k, None], inter, x[k:2 * k, None]], 1).reshape((-1,) + x.shape[1:])
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    for ax, img, title in zip(axes, (_tile(samples, n // 8, 8), _tile(pairs, 2 * n // 8, 8),
                                     _tile(inter, k, steps + 2)),
                              ("samples G_x(z), z ~ N(0, I)", "reconstructions (odd cols: x, even: G_x(G_z(x)))",
                               f"interpolations (ends: x1, x2; {steps} decoded latents between)")):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    path = _save_figure(fig, path)
    plt.close(fig)
    return path


def plot_2d(model, x, path, n=2000, seed=0, title=None, centers=None):
    """Fig. 8-style panels: data x ~ q(x), encodings G_z(x), reconstructions, samples G_x(z).

    Points are coloured by their nearest mixture component (``centers``,
    default the 25-Gaussian grid) so encodings and reconstructions can be traced.
    """
    from kzoo.data import GAUSSIANS25_CENTERS

    plt = _pyplot()
    centers = GAUSSIANS25_CENTERS if centers is None else np.asarray(centers)
    x = np.asarray(x)[np.random.default_rng(seed).permutation(len(x))[:n]]
    colour = ((x[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
    z = model.encode(x, sample=True)
    rec = model.decode(z)
    samples = model.sample(len(x))
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4))
    panels = [(x, colour, "data x ~ q(x)"), (z, colour, "encodings z ~ q(z|x)"),
              (rec, colour, "reconstructions G_x(G_z(x))"), (samples, None, "samples G_x(z), z ~ N(0, I)")]
    for ax, (pts, c, name) in zip(axes, panels):
        colours = {"c": c, "cmap": "tab20"} if c is not None else {"c": "k"}
        ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.6, **colours)
        if name != "encodings z ~ q(z|x)":
            ax.scatter(centers[:, 0], centers[:, 1], marker="+", c="r", s=30, linewidths=0.8)
            ax.set_xlim(-6, 6)
            ax.set_ylim(-6, 6)
        ax.set_title(name, fontsize=9)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title, fontsize=10)
    path = _save_figure(fig, path)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------
# Training loops of the registered method (ali-ssl) and pretrainer (ali)
# --------------------------------------------------------------------------


def _networks_name(arch, disc):
    from kzoo.networks.ali import PAPER_MODELS

    if arch in PAPER_MODELS:
        return f"paper {arch!r}, {PAPER_MODELS[arch]['table']}"
    return "conv" if "dx_conv1" in [layer.name for layer in disc.layers] else "mlp"


def train_semi_supervised(ctx):
    """``kzoo train ali-ssl``: the K+1-way joint discriminator is the classifier; returns it (plain)."""
    from kzoo.ali import ALI, networks_for

    hp, ds = ctx.hyperparameters, ctx.dataset
    enc, dec, disc = networks_for(ds.input_shape, latent_dim=hp["latent_dim"] or None, num_classes=ds.num_classes,
                                  deterministic=hp["deterministic"], width=ctx.width, architecture=hp["ali_arch"])
    model = ALI(enc, dec, disc, unsupervised_weight=hp["unsup_weight"], seed=ctx.seed)
    model.compile(discriminator_optimizer=ctx.optimizer(beta_1=hp["beta1"]),
                  generator_optimizer=ctx.optimizer(beta_1=hp["beta1"]), jit_compile=ctx.jit_compile)
    ctx.info["networks"] = (f"kzoo.ali.networks_{_networks_name(hp['ali_arch'], disc)} "
                            f"(latent {model.latent_dim}, {'deterministic' if not model.stochastic else 'Gaussian'} "
                            f"encoder; --model is not used)")
    ctx.info["latent_dim_used"] = model.latent_dim
    ctx.fit(model, ctx.stream(semi_supervised=True))
    return model.classifier()


def pretrain(ctx):
    """``kzoo pretrain ali``: unsupervised ALI on the dataset's training inputs; saved with :func:`save`.

    Also writes a PNG next to the export (2-D data: a Fig. 8-style scatter;
    images: samples, reconstructions and interpolations) and returns the test
    reconstruction error and, on gaussians25, the covered modes (§4.5).
    """
    import keras

    from kzoo import data as kdata
    from kzoo.ali import ALI, covered_modes, networks_for, save

    hp, ds = ctx.hyperparameters, ctx.dataset
    if len(ds.input_shape) not in (1, 3):
        raise InvalidArgumentError(f"ALI has networks for images and vectors; {ds.name} has inputs of shape {ds.input_shape}")
    # ``--export saved_models/ali_g25`` (the issue's spelling) means saved_models/ali_g25.keras
    export = ctx.export if str(ctx.export).endswith(".keras") else str(ctx.export) + ".keras"
    lr = 2e-4 if ctx.learning_rate is None else ctx.learning_rate
    enc, dec, disc = networks_for(ds.input_shape, latent_dim=hp["latent_dim"] or None,
                                  deterministic=hp["deterministic"], width=hp["ali_width"],
                                  architecture=hp["ali_arch"])
    model = ALI(enc, dec, disc, seed=ctx.seed)
    model.compile(discriminator_optimizer=keras.optimizers.Adam(lr, beta_1=hp["beta1"]),
                  generator_optimizer=keras.optimizers.Adam(lr, beta_1=hp["beta1"]))
    stream = kdata.supervised(ds.x_train, ds.y_train, batch_size=ctx.batch_size, num_classes=ds.num_classes,
                              seed=ctx.seed)  # labels are ignored by unsupervised ALI
    history = ctx.fit(model, stream).history
    save(model, export)
    metrics = {"export": export, "learning_rate": lr, "beta1": hp["beta1"], "batch_size": ctx.batch_size,
               "latent_dim": model.latent_dim, "networks": f"kzoo.ali.networks_{_networks_name(hp['ali_arch'], disc)}",
               **{k: float(v[-1]) for k, v in history.items()}}
    rec = model.reconstruct(ds.x_test, sample=False)
    metrics["test_reconstruction_mse"] = float(np.mean((rec - ds.x_test) ** 2))
    figure = export[: -len(".keras")] + ".png"
    if ds.name == "gaussians25":
        samples = model.sample(10_000)
        metrics["covered_modes"] = covered_modes(samples)
        metrics["covered_modes_3std"] = covered_modes(samples, radius=3)
        metrics["figure"] = plot_2d(model, ds.x_test, figure, title=f"ALI on gaussians25: "
                                    f"{metrics['covered_modes']}/25 modes covered (10,000 samples)")
    elif len(ds.input_shape) == 3:
        metrics["figure"] = plot_images(model, ds.x_test, figure)
    elif ds.input_shape == (2,):
        metrics["figure"] = plot_2d(model, ds.x_test, figure, centers=np.zeros((1, 2)))
    return metrics


_ALI_PAPER = "Dumoulin et al., Adversarially Learned Inference, ICLR 2017"


def _ali_hyperparameters():
    return (
        Hyperparameter("latent_dim", 0, "ALI latent size (0: the architecture's: 32 for images, 2 for 2-D data, "
                       "256 svhn, 64 cifar10)", int, minimum=0,
                       grid=(16, 32, 64)),
        Hyperparameter("beta1", 0.5, "ALI: Adam β1 of both players (paper 0.5)", float, minimum=0.0,
                       maximum=0.999, grid=(0.5, 0.8)),
        Hyperparameter("deterministic", False, "BiGAN: deterministic encoder instead of ALI's Gaussian one", bool),
        Hyperparameter("ali_arch", "auto", "ALI networks: auto (= mlp), conv (the paper's SVHN "
                       "model scaled down), mlp (flattened inputs), svhn / cifar10 (the paper's 32x32 models, "
                       "Tables 4 / 3)", str, choices=("auto", "conv", "mlp", "svhn", "cifar10")),
    )


register(Method(
    "ali-ssl", "semi-supervised ALI: K+1-way joint discriminator D(x, z) is the classifier (z = encoder mean)",
    _ali_hyperparameters() + (
        Hyperparameter("unsup_weight", 1.0, "ALI-SSL: weight of the adversarial loss in the discriminator's",
                       float, minimum=0.0, grid=(0.3, 1.0, 3.0)),
    ),
    train=train_semi_supervised, paper=_ALI_PAPER))
register_pretrainer(Pretrainer(
    "ali", "ALI/BiGAN encoder + decoder + joint discriminator, saved as .keras (kzoo.ali.load)",
    _ali_hyperparameters() + (
        Hyperparameter("ali_width", 1.0, "ALI: scale of every hidden size of the networks", float, minimum=0.0,
                       exclusive_minimum=True),
    ), run=pretrain, paper=_ALI_PAPER))
