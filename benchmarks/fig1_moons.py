"""Fig. 1 of the VAT paper (Miyato et al., TPAMI 2018), reproduced with kzoo.

8 labeled points (4 per class) and 1,000 unlabeled points of the 2-D two-moons
set; a small MLP trained with VAT (KL divergence). Row (I): p(y=1|x) on the
unlabeled points; row (II): LDS(x, θ) on the unlabeled points; columns: before
training and after 10, 50 and 1000 parameter updates.

    python benchmarks/fig1_moons.py [--backend tensorflow|jax] [--seed 0]
        [--epsilon 0.2] [--lr 0.03] [--out benchmarks/vat_fig1_moons.png]

``main(argv)`` returns the measured numbers (accuracy on the unlabeled points at
every stage, the same MLP trained without VAT for reference, mean LDS, ε,
seconds) so a benchmark driver can import and call it. Runs on CPU in about
10 s. With a fixed seed and backend the result is reproducible.
"""

import argparse
import os
import sys
import time

STAGES = (0, 10, 50, 1000)  # cumulative number of parameter updates per column
HIDDEN = (50,)  # the paper: "an NN classifier with one hidden layer with 50 hidden units"
N_LABELED = 8
LEARNING_RATE = 0.03
BATCH_UNLABELED = 1000  # every unlabeled point in every update
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vat_fig1_moons.png")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None,
                   help="Keras backend (default: $KERAS_BACKEND, else Keras' default)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the data, the labeled split, the initialisation and VAT's noise")
    p.add_argument("--epsilon", type=float, default=0.2,
                   help="VAT radius ε in input units (the moons span about [-1, 2] x [-0.5, 1])")
    p.add_argument("--lr", type=float, default=LEARNING_RATE, help="Adam learning rate")
    p.add_argument("--out", default=DEFAULT_OUT, help="output PNG")
    return p.parse_args(argv)


def _select_backend(backend):
    """Set KERAS_BACKEND before keras is imported; refuse a conflicting, already-loaded one."""
    if backend is None:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise SystemExit(
                f"keras is already imported with the {keras.backend.backend()!r} backend; "
                f"run in a fresh process to use --backend {backend}"
            )
        return
    os.environ["KERAS_BACKEND"] = backend


def _snapshot(clf, x, y, epsilon, seed):
    import keras
    import numpy as np

    import kzoo.vat

    logits = clf.predict(x, batch_size=len(x), verbose=0)
    p1 = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))[:, 1]
    lds = kzoo.vat.local_distributional_smoothness(
        clf, x, epsilon=epsilon, power_iterations=1, seed=seed)
    acc = float(np.mean((p1 > 0.5).astype(np.int32) == y))
    return p1, lds, acc


def _plot(out, x_u, x_l, y_l, snaps, epsilon, lr, backend, seed, sup_acc):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap, PowerNorm

    pred_cmap = LinearSegmentedColormap.from_list(
        "purple_grey_green", ["#6a1b9a", "#b0b0b0", "#1b8a3a"])
    lds_cmap = LinearSegmentedColormap.from_list("grey_blue", ["#d4d4d4", "#6baed6", "#08306b"])
    # One scale for all columns (so the growth of LDS is visible); square-root
    # so that the moderate values next to the few largest ones stay visible.
    lds_max = max(float(np.max(s["lds"])) for s in snaps)
    lds_norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=lds_max)

    fig, axes = plt.subplots(2, len(snaps), figsize=(4.1 * len(snaps), 6.3),
                             constrained_layout=True)
    labels = ["(1) before training"] + [f"({i + 2}) after {s['updates']} updates"
                                        for i, s in enumerate(snaps[1:])]
    pad = 0.15
    xlim = (x_u[:, 0].min() - pad, x_u[:, 0].max() + pad)
    ylim = (x_u[:, 1].min() - pad, x_u[:, 1].max() + pad)
    for j, s in enumerate(snaps):
        ax = axes[0, j]
        sc0 = ax.scatter(x_u[:, 0], x_u[:, 1], c=s["p1"], cmap=pred_cmap, vmin=0.0, vmax=1.0,
                         s=9, linewidths=0)
        ax.set_title(f"{labels[j]}\nacc. on unlabeled = {100 * s['accuracy']:.1f}%", fontsize=10)
        ax = axes[1, j]
        order = np.argsort(s["lds"])  # draw the high-LDS points on top
        sc1 = ax.scatter(x_u[order, 0], x_u[order, 1], c=s["lds"][order], cmap=lds_cmap,
                         norm=lds_norm, s=9, linewidths=0)
        ax.set_title(f"max LDS = {s['lds'].max():.3g}, mean = {s['lds'].mean():.3g}", fontsize=10)
        for ax in axes[:, j]:
            for cls, colour, marker in ((0, "#6a1b9a", "o"), (1, "#1b8a3a", "s")):
                m = y_l == cls
                ax.scatter(x_l[m, 0], x_l[m, 1], c=colour, marker=marker, s=110,
                           edgecolors="black", linewidths=1.6, zorder=5,
                           label=f"labeled y={cls}")
            ax.set_xlim(*xlim)
            ax.set_ylim(*ylim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=8)
    axes[0, 0].set_ylabel("(I)  p(y=1 | x)", fontsize=11)
    axes[1, 0].set_ylabel("(II)  LDS(x, θ)", fontsize=11)
    axes[0, 0].legend(loc="lower left", fontsize=8, framealpha=0.9)
    cb = fig.colorbar(sc0, ax=axes[0, :], shrink=0.85, pad=0.01)
    cb.set_label("p(y=1 | x)")
    cb = fig.colorbar(sc1, ax=axes[1, :], shrink=0.85, pad=0.01)
    cb.set_label("LDS(x, θ) (KL), square-root scale,\nsame in all columns")
    fig.suptitle(
        "VAT paper Fig. 1, kzoo reproduction: two moons, 8 labeled (4 per class) + 1,000 unlabeled points\n"
        f"MLP 2-{'-'.join(map(str, HIDDEN))}-2 (ReLU), VAT with KL, ε = {epsilon:g}, α = 1, K = 1, "
        f"Adam lr {lr:g}, full batch; final accuracy on the unlabeled points = "
        f"{100 * snaps[-1]['accuracy']:.1f}% (same MLP without VAT: {100 * sup_acc:.1f}%)   "
        f"[backend {backend}, seed {seed}]",
        fontsize=11)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    _select_backend(args.backend)
    t0 = time.perf_counter()

    import keras
    import numpy as np

    import kzoo

    backend = keras.backend.backend()
    keras.utils.set_random_seed(args.seed)
    ds = kzoo.data.load("moons", seed=args.seed)
    x_l, y_l, x_u = kzoo.data.labeled_split(ds.x_train, ds.y_train, N_LABELED, num_classes=2,
                                            seed=args.seed)
    y_u = ds.y_train  # x_u is every training input (the paper's setting); labels only to score

    clf = kzoo.models.mlp(input_shape=(2,), num_classes=2, hidden=HIDDEN, batch_norm=False,
                          name="mlp_fig1")
    model = kzoo.Regularized(clf, kzoo.regularizers.VAT(epsilon=args.epsilon, alpha=1.0),
                             seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(args.lr))
    snaps_init = [w.copy() for w in clf.get_weights()]
    snaps, done = [], 0
    for stage, updates in enumerate(STAGES):
        if updates > done:
            # A fresh, seeded stream per stage: fit pulls more batches from a
            # generator than it trains on, so sharing one generator between the
            # fit calls skipped batches and made runs irreproducible.
            stream = kzoo.data.semi_supervised(
                x_l, y_l, x_u, batch_labeled=N_LABELED, batch_unlabeled=BATCH_UNLABELED,
                seed=args.seed * len(STAGES) + stage, as_tf=False)
            model.fit(stream, steps_per_epoch=updates - done, epochs=1, shuffle=False,
                      verbose=0)
            done = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
            if done != updates:
                raise RuntimeError(f"expected {updates} optimizer updates, got {done}")
        p1, lds, acc = _snapshot(clf, x_u, y_u, args.epsilon, args.seed)
        snaps.append({"updates": updates, "p1": p1, "lds": lds, "accuracy": acc})
        print(f"after {updates:4d} updates: accuracy on unlabeled {100 * acc:5.1f}%  "
              f"LDS mean {lds.mean():.4f} max {lds.max():.4f}", flush=True)

    # Reference: the same MLP from the same initialisation, trained for as many
    # updates on the 8 labeled points alone (no VAT).
    keras.utils.set_random_seed(args.seed)
    sup = kzoo.models.mlp(input_shape=(2,), num_classes=2, hidden=HIDDEN, batch_norm=False,
                          name="mlp_fig1_supervised")
    same_init = all(np.array_equal(a, b) for a, b in zip(sup.get_weights(), snaps_init))
    plain = kzoo.Regularized(sup, None, seed=args.seed)
    plain.compile(optimizer=keras.optimizers.Adam(args.lr))
    plain.fit(kzoo.data.supervised(x_l, y_l, batch_size=N_LABELED, seed=args.seed, as_tf=False),
              steps_per_epoch=STAGES[-1], epochs=1, shuffle=False, verbose=0)
    sup_acc = float(np.mean(np.argmax(sup.predict(x_u, batch_size=len(x_u), verbose=0), -1) == y_u))
    print(f"supervised only (no VAT, {STAGES[-1]} updates, same init: {same_init}): accuracy on "
          f"unlabeled {100 * sup_acc:5.1f}%", flush=True)

    _plot(args.out, x_u, x_l, y_l, snaps, args.epsilon, args.lr, backend, args.seed, sup_acc)
    seconds = time.perf_counter() - t0
    print(f"epsilon {args.epsilon:g}, backend {backend}, seed {args.seed}: final accuracy on "
          f"the 1,000 unlabeled points {100 * snaps[-1]['accuracy']:.1f}% "
          f"({seconds:.1f} s); wrote {args.out}")
    return {
        "benchmark": "vat_fig1_moons",
        "backend": backend,
        "seed": args.seed,
        "epsilon": args.epsilon,
        "learning_rate": args.lr,
        "updates": list(STAGES),
        "accuracy": {s["updates"]: s["accuracy"] for s in snaps},
        "final_accuracy": snaps[-1]["accuracy"],
        "supervised_only_accuracy": sup_acc,
        "lds_mean": {s["updates"]: float(np.mean(s["lds"])) for s in snaps},
        "seconds": seconds,
        "out": args.out,
    }


if __name__ == "__main__":
    main()
