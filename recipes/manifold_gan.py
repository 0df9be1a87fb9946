"""Manifold regularization with GANs (paper 000, Lecouat et al.): the 2-D and digits experiments.

    python recipes/manifold_gan.py                      # two circles, one label per class (Figs. A3/A11)
    python recipes/manifold_gan.py --dataset moons
    python recipes/manifold_gan.py --dataset digits     # coupled gan-ssl + manifold on digits, samples grid
    python recipes/manifold_gan.py --full               # the paper's 2-D networks (6 × 384 ReLU), longer
    python recipes/manifold_gan.py --dataset cifar10 --full --table 2   # paper scale: Tables 1-3 and 5, see
                                                        # recipes/manifold_gan_images.py (forwarded there)

2-D (decoupled, paper App. B "unknown manifold"): a GAN is trained on the
unlabeled points only; a separate MLP classifier sees one labeled point per
class and is regularized by ``kzoo.regularizers.ManifoldGAN`` with the GAN's
frozen generator (ε = 0.15, η = 0.01, γ = 6: the paper's 2-D setting, Fig. A11).
The same classifier without the regularizer is the baseline; on circles a third
one is regularized with the exact manifold (App. B, Fig. A2) as a reference. Writes a PNG with
both decision boundaries, the labeled points and the generator's samples.
The paper trained its 2-D GANs with consensus optimization; kzoo uses the plain
non-saturating GAN (kzoo.gan.GAN), so the generator can leave gaps or bridges
between the manifolds -- see the printed sample-fit numbers and the figure.

digits (coupled): ``kzoo train gan-ssl --manifold-gamma ...``; writes a grid
of generated digits (PNG) and prints test error, MLCN and the digits sample
score (a kzoo digits classifier's score, not the Inception score).
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# The plain GAN oscillates on two circles; 1e-4 decayed to 1e-5 over 8,000 steps with 256-unit networks
# settled best of the few settings tried (see benchmarks/RESULTS.md for how well it fits).
SMALL_2D = dict(gan_hidden=(256, 256, 256), clf_hidden=(64, 64, 64), gan_steps=8000, clf_steps=1500, latent_dim=2,
                gan_lr=1e-4)
FULL_2D = dict(gan_hidden=(384,) * 6, clf_hidden=(384,) * 6, gan_steps=10000, clf_steps=2000, latent_dim=2,
               gan_lr=2e-4)


def known_circles_generator(factor=0.5):
    """The exact two-circles manifold as a "generator" (paper App. B, known manifold, Fig. A2).

    z = (z0, z1): angle π·z0 on the outer circle (z1 > 0) or the inner one
    (z1 < 0, a steep tanh switch). The reference that separates what the
    regularizer can do from what a learned GAN gives it.
    """
    import keras
    import numpy as np
    from keras import ops

    class Circles(keras.layers.Layer):
        def call(self, z):
            r = (1 + factor) / 2 + (1 - factor) / 2 * ops.tanh(50.0 * z[:, 1:2])
            a = np.pi * z[:, 0:1]
            return ops.concatenate([r * ops.cos(a), r * ops.sin(a)], axis=1)

    z = keras.Input((2,))
    return keras.Model(z, Circles()(z), name="known_circles")


def train_2d(dataset="circles", seed=0, full=False, epsilon=0.15, eta=0.01, gamma=6.0, png=None, verbose=0,
             known_manifold=None):
    """Decoupled manifold regularization on a 2-D set with one label per class; returns the metrics.

    ``known_manifold`` (default: True for circles) adds a third classifier
    regularized with the exact manifold (:func:`known_circles_generator`).
    """
    import keras
    import numpy as np

    import kzoo
    from kzoo import data as kdata
    from kzoo import gan as kgan

    if known_manifold is None:
        known_manifold = dataset == "circles"

    cfg = FULL_2D if full else SMALL_2D
    ds = kdata.load(dataset, seed=seed)
    x_l, y_l, x_u = kdata.labeled_split(ds.x_train, ds.y_train, ds.num_classes, num_classes=ds.num_classes,
                                        seed=seed)
    keras.utils.set_random_seed(seed)
    gen = kgan.mlp_generator((2,), cfg["latent_dim"], hidden=cfg["gan_hidden"])
    disc = kgan.mlp_discriminator((2,), 1, hidden=cfg["gan_hidden"])
    gan = kgan.GAN(gen, disc, seed=seed)
    lr = keras.optimizers.schedules.PolynomialDecay(cfg["gan_lr"], cfg["gan_steps"], cfg["gan_lr"] / 10)
    gan.compile(discriminator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5),
                generator_optimizer=keras.optimizers.Adam(lr, beta_1=0.5))
    gan.fit(kdata.supervised(x_u, np.zeros(len(x_u), "int32"), batch_size=256, seed=seed),
            steps_per_epoch=cfg["gan_steps"], epochs=1, verbose=verbose, callbacks=[kgan.NaNGuard()])
    samples = gan.sample(2000)
    # how well the generator covers the data: distance of each sample to its nearest training point
    dist = np.sqrt(((samples[:, None, :] - x_u[None, :1000, :]) ** 2).sum(-1)).min(1)
    out = {"dataset": dataset, "seed": seed, "labels_per_class": 1, "epsilon": epsilon, "eta": eta,
           "gamma": gamma, "gan_steps": cfg["gan_steps"], "classifier_steps": cfg["clf_steps"],
           "samples_within_0.1_of_data": float((dist < 0.1).mean()),
           "mlcn": kgan.mean_log_condition_number(gen, seed=seed)}
    classifiers = {}
    regs = [("supervised", None), ("manifold", kgan.ManifoldGAN(gen, epsilon=epsilon, eta=eta, gamma=gamma))]
    if known_manifold:
        regs.append(("known_manifold", kgan.ManifoldGAN(known_circles_generator(), epsilon=epsilon, eta=eta,
                                                        gamma=gamma, latent="uniform")))
    for name, reg in regs:
        keras.utils.set_random_seed(seed)
        clf = kzoo.models.mlp(input_shape=(2,), num_classes=ds.num_classes, hidden=cfg["clf_hidden"],
                              batch_norm=False, name=name)
        model = kzoo.Regularized(clf, reg, seed=seed)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.fit(kdata.semi_supervised(x_l, y_l, x_u, batch_labeled=len(x_l), batch_unlabeled=128, seed=seed),
                  steps_per_epoch=cfg["clf_steps"], epochs=1, verbose=verbose, callbacks=[kgan.NaNGuard()])
        pred = np.asarray(clf.predict(ds.x_test, verbose=0)).argmax(1)
        out[f"{name}_accuracy"] = float((pred == ds.y_test).mean())
        classifiers[name] = clf
    if png:
        _plot_2d(png, ds, x_l, y_l, samples, classifiers, out)
        out["png"] = png
    return out


def _plot_2d(path, ds, x_l, y_l, samples, classifiers, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    lo, hi = ds.x_test.min(0) - 0.3, ds.x_test.max(0) + 0.3
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype("float32")
    fig, axes = plt.subplots(1, 1 + len(classifiers), figsize=(4.4 * (1 + len(classifiers)), 4.2))
    ax = axes[0]
    ax.scatter(ds.x_test[:, 0], ds.x_test[:, 1], s=3, c="lightgray", label="data")
    ax.scatter(samples[:800, 0], samples[:800, 1], s=3, c="tab:red", alpha=0.5, label="GAN samples")
    ax.set_title(f"GAN samples ({100 * out['samples_within_0.1_of_data']:.0f}% within 0.1 of the data)", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    for ax, (name, clf) in zip(axes[1:], classifiers.items()):
        p = np.asarray(clf.predict(grid, verbose=0, batch_size=4096))
        p = np.exp(p - p.max(1, keepdims=True))
        p = (p / p.sum(1, keepdims=True))[:, 1].reshape(gx.shape)
        ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1)
        ax.scatter(ds.x_test[:, 0], ds.x_test[:, 1], s=2, c=np.where(ds.y_test == 1, "tab:red", "tab:blue"))
        ax.scatter(x_l[:, 0], x_l[:, 1], s=120, c=np.where(y_l == 1, "tab:red", "tab:blue"), marker="*",
                   edgecolors="k")
        title = {"supervised": "no regularizer", "manifold": "GAN manifold",
                 "known_manifold": "exact manifold (reference)"}[name]
        ax.set_title(f"{title}: {100 * out[name + '_accuracy']:.1f}% test accuracy", fontsize=9)
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{out['dataset']}, one labeled point per class (stars); decoupled manifold regularization "
                 f"(γ={out['gamma']:g}, ε={out['epsilon']:g}, η={out['eta']:g}) with a GAN trained on the unlabeled "
                 "points", fontsize=9)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def digits(seed=0, steps=1000, labels=100, manifold_gamma=1e-2, png=None, verbose=1):
    """Coupled gan-ssl (+ manifold) on digits; writes a samples grid; returns the metrics."""
    import keras  # noqa: F401

    from kzoo import gan as kgan
    from kzoo.experiment import RunContext, run  # noqa: F401
    from kzoo.methods import gan as gan_loops

    captured = {}
    original = gan_loops.train_gan_ssl

    def capture(ctx):  # keep the trained GAN (run() returns only the classifier's metrics)
        clf = original(ctx)
        captured["gan"] = ctx.gan
        return clf

    gan_loops.train_gan_ssl = capture
    try:
        result = run(method="gan-ssl", dataset="digits", labels=labels, steps=steps, seed=seed,
                     manifold_gamma=manifold_gamma, verbose=verbose)
    finally:
        gan_loops.train_gan_ssl = original
    gan = captured["gan"]
    samples = gan.sample(1000)
    out = {"test_error": result["test_error"], "labels": labels, "steps": steps, "manifold_gamma": manifold_gamma,
           "mlcn": kgan.mean_log_condition_number(gan.generator, seed=seed, latent="uniform"),
           **kgan.digits_sample_score(samples)}
    if png:
        gan_loops.save_image_grid(samples[:100], png, ncols=10,
                                  title=f"gan-ssl{' + manifold' if manifold_gamma else ''} on digits ({labels} labels, "
                                        f"{steps} steps): {100 * result['test_error']:.1f}% test error")
        out["png"] = png
    return out


IMAGE_DATASETS = ("cifar10", "svhn")  # paper scale: recipes/manifold_gan_images.py


def main(argv=None):
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--dataset", default="circles")
    if peek.parse_known_args(argv)[0].dataset in IMAGE_DATASETS:
        sys.path.insert(0, HERE)
        import manifold_gan_images

        return manifold_gan_images.main(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="circles", choices=("circles", "moons", "digits") + IMAGE_DATASETS,
                   help="cifar10, svhn: the paper's Tables 1-3 and 5 (see recipes/manifold_gan_images.py --help)")
    p.add_argument("--full", action="store_true", help="paper-scale networks and schedules")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gamma", type=float, default=None, help="regularizer weight (2-D: 6; digits: 1e-2)")
    p.add_argument("--png", default=None, help="where to write the figure (default: recipes/out/...)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None)
    args = p.parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    png = args.png or os.path.join(HERE, "out", f"manifold_gan_{args.dataset}.png")
    if args.dataset == "digits":
        steps = 6000 if args.full else 1000
        out = digits(args.seed, steps=steps, manifold_gamma=1e-2 if args.gamma is None else args.gamma, png=png)
    else:
        out = train_2d(args.dataset, args.seed, args.full, gamma=6.0 if args.gamma is None else args.gamma, png=png,
                       verbose=1)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
