"""Latent-space VAT (:mod:`kzoo.lvat`): registry entries, the builder from hyperparameters, pretraining
of the VAE / Glow transformers (``kzoo pretrain vae|glow``)."""

from kzoo.errors import InvalidArgumentError
import numpy as np

from kzoo.errors import ConfigError
from kzoo.methods.registry import (RAMPUP, Hyperparameter, Method, Pretrainer, alpha, epsilon, register,
                                   register_pretrainer)


def build_regularizer(kind, hp):
    """The LVAT regularizer of method ``lvat-KIND`` from its resolved hyperparameters."""
    from kzoo.lvat import LVAT, load_transformer

    path = hp.get("transformer")
    if not path:
        raise InvalidArgumentError(f"lvat-{kind} needs --transformer PATH: a {kind} saved by "
                         f"`kzoo pretrain {kind} --dataset DATASET --export PATH`")
    try:
        transformer = load_transformer(path, kind)
    except (FileNotFoundError, ImportError) as e:
        raise InvalidArgumentError(str(e)) from e
    reg = LVAT(transformer, epsilon=hp["epsilon"], alpha=hp["alpha"], xi=hp["xi"],
               power_iterations=hp["power_iterations"], rampup_steps=hp["rampup_steps"])
    reg.transformer_path = path
    if hp.get("entmin"):
        from kzoo.vat import EntropyMinimization

        reg = reg + EntropyMinimization(weight=hp["entmin"], rampup_steps=hp["rampup_steps"])
    return reg


def input_batches(x, batch_size, seed=0):
    """Endless shuffled batches of ``x`` alone (epoch by epoch), for ``fit`` of a transformer."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, "float32")
    batch_size = min(batch_size, len(x))
    while True:
        order = rng.permutation(len(x))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield (x[order[start:start + batch_size]],)


def pretrain(kind, ctx):
    """Train a VAE or Glow on ``ctx.dataset``'s training inputs (no labels), save it; returns metrics."""
    import keras
    from keras import ops

    from kzoo.export import save_keras_atomic
    from kzoo.lvat import VAE, Glow, _check_image_shape, _tfp, invertibility_error, num_bins_of, resolve_path

    try:
        _tfp()
    except ImportError as e:
        raise ConfigError(str(e)) from e
    ds, hp = ctx.dataset, ctx.hyperparameters
    try:
        shape = _check_image_shape(ds.input_shape, f"kzoo pretrain {kind}", sequences=kind == "vae")
        bins = num_bins_of(ds.x_train)
        if kind == "vae":
            model = VAE(shape, latent_dim=hp["latent_dim"], channels=hp["channels"], likelihood=hp["likelihood"],
                        num_bins=bins, seed=ctx.seed)
            lr = 1e-3
        else:
            model = Glow(shape, levels=hp["levels"], depth=hp["depth"], hidden_channels=hp["hidden_channels"],
                         num_bins=bins, seed=ctx.seed)
            lr = 1e-3
    except ValueError as e:
        raise ConfigError(str(e)) from e
    export = resolve_path(ctx.export)
    model.compile(optimizer=keras.optimizers.Adam(ctx.learning_rate or lr))
    if kind == "glow":
        model.initialize(ds.x_train[:512])
    ctx.fit(model, input_batches(ds.x_train, ctx.batch_size, ctx.seed))
    metrics = {"num_bins": bins, "latent_dim": int(model.latent_dim),
               "parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables))}
    if kind == "glow" or model.likelihood == "normal":
        metrics["train_bits_per_dim"] = model.bits_per_dim(ds.x_train)
        metrics["test_bits_per_dim"] = model.bits_per_dim(ds.x_test)
    metrics["test_max_reconstruction_error"] = invertibility_error(model, ds.x_test)
    x_test = np.asarray(ds.x_test, "float32")
    rec = ops.convert_to_numpy(model.reconstruct(ops.convert_to_tensor(x_test)))
    metrics["test_mean_l2_reconstruction_error"] = float(np.mean(np.sqrt(((rec - x_test) ** 2).reshape(len(x_test), -1).sum(1))))
    metrics["export"] = save_keras_atomic(model, export)
    return metrics


_LVAT_PAPER = "Osada et al., Regularization with Latent Space Virtual Adversarial Training"


def _lvat_builder(kind):
    return lambda hp: build_regularizer(kind, hp)


def _lvat_pretrainer(kind):
    return lambda ctx: pretrain(kind, ctx)


def _lvat_hyperparameters(grid):
    return (
        epsilon(1.0, help="LVAT: perturbation radius ε in the transformer's latent space (latent units)",
                grid=grid),
        alpha(),
        Hyperparameter("xi", 1e-6, "finite-difference step ξ of the power iteration", float, minimum=0.0,
                       exclusive_minimum=True),
        Hyperparameter("power_iterations", 1, "power iterations K", int, minimum=1, grid=(1, 2)),
        Hyperparameter("transformer", None, "LVAT: the saved transformer (kzoo pretrain vae|glow --export PATH)",
                       str),
        Hyperparameter("entmin", 0.0, "weight of entropy minimization added to LVAT (not in the LVAT paper)",
                       float, minimum=0.0, grid=(0.0, 1.0)),
        RAMPUP,
    )


# ε grids from the paper (Sec. 5.2.2): VAE {0.1, ..., 15} (1.5 and 1.0 chosen), Glow {0.5, 1.0, 1.5} (1.0).
register(Method(
    "lvat-vae", "Latent-space VAT through a pretrained VAE (Osada et al.); TensorFlow backend",
    _lvat_hyperparameters((0.25, 0.5, 1.0, 1.5, 3.0, 5.0)), _lvat_builder("vae"), paper=_LVAT_PAPER))
register(Method(
    "lvat-glow", "Latent-space VAT through a pretrained Glow (Osada et al.); TensorFlow backend",
    _lvat_hyperparameters((0.5, 1.0, 1.5)), _lvat_builder("glow"), paper=_LVAT_PAPER))
register_pretrainer(Pretrainer(
    "vae", "VAE transformer for lvat-vae (LVAT paper, Table 2, scaled to the input); TensorFlow backend",
    (Hyperparameter("latent_dim", 16, "VAE latent dimension (paper: 128 on 32x32x3)", int, minimum=1),
     Hyperparameter("channels", 32, "VAE channels of the first conv (paper: 128)", int, minimum=1),
     Hyperparameter("likelihood", "normal", "VAE likelihood p(x|z)", str, choices=("normal", "bernoulli"))),
    run=_lvat_pretrainer("vae"), paper=_LVAT_PAPER))
register_pretrainer(Pretrainer(
    "glow", "Glow transformer for lvat-glow (Kingma & Dhariwal); TensorFlow backend",
    (Hyperparameter("levels", 2, "Glow levels L (paper: 3 on 32x32)", int, minimum=1),
     Hyperparameter("depth", 4, "Glow steps per level K (paper: 22)", int, minimum=1),
     Hyperparameter("hidden_channels", 64, "Glow coupling network channels", int, minimum=1)),
    run=_lvat_pretrainer("glow"), paper=_LVAT_PAPER))
