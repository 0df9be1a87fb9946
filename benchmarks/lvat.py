"""LVAT measurements for benchmarks/run.py (sections lvat-transformers, lvat-speed, lvat-figures).

The transformers are pretrained once on the digits training inputs (no labels)
by ``kzoo pretrain`` and saved under saved_models/bench/; the accuracy rows
(ACCURACY["lvat"] in run.py) and every section here reuse them. Everything runs
on the TensorFlow backend (TensorFlow Probability).

    python benchmarks/lvat.py figures      # only the PNGs (pretrains the transformers if missing)
"""

import json
import os
import subprocess
import sys
import time

from timing import interleaved_ms_per_step, median_ratio

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
BENCH_DIR = os.path.join("saved_models", "bench")  # relative to ROOT, not committed
PRETRAIN = {  # kind -> kzoo pretrain arguments (CPU minutes on 2 cores)
    "vae": ["--steps", "2000", "--batch-size", "128"],
    "glow": ["--steps", "2000", "--batch-size", "128"],
}
EPSILON = {"vae": 1.0, "glow": 1.0}  # the paper's ε for LVAT-Glow (SVHN, CIFAR-10) and LVAT-VAE (CIFAR-10)
FIG_EXAMPLES = os.path.join(HERE, "lvat_examples.png")
FIG_DISTANCES = os.path.join(HERE, "lvat_distances.png")


def transformer_path(kind):
    return os.path.join(BENCH_DIR, f"{kind}_digits.keras")


def _env():
    return dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)


def pretrain(kind, force=False):
    """Pretrain ``kind`` on digits unless saved already; returns its pretraining metrics."""
    path = transformer_path(kind)
    metrics_path = os.path.join(ROOT, BENCH_DIR, f"{kind}_digits.json")
    if not force and os.path.isfile(os.path.join(ROOT, path)) and os.path.isfile(metrics_path):
        with open(metrics_path) as f:
            return json.load(f)
    cmd = [PY, "-m", "kzoo", "pretrain", kind, "--dataset", "digits", "--export", path,
           "--metrics-json", metrics_path, "--quiet", "--seed", "0"] + PRETRAIN[kind]
    t = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    print(f"  pretrained {kind} in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    with open(metrics_path) as f:
        return json.load(f)


def prepare():
    """Make sure both transformers exist (the accuracy rows need them)."""
    for kind in PRETRAIN:
        pretrain(kind)


def _child(function, *args):
    """Run ``function(*args)`` of this module in a TensorFlow child process; returns its JSON result."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import lvat; "
            "print('RESULT ' + json.dumps(getattr(lvat, sys.argv[2])(*json.loads(sys.argv[3]))))")
    out = subprocess.run([PY, "-c", code, HERE, function, json.dumps(list(args))], capture_output=True, text=True,
                         env=_env(), cwd=ROOT)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{function}{args} failed:\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


# ----------------------------------------------------------------------------
# lvat-transformers: bits/dim and invertibility
# ----------------------------------------------------------------------------


def invertibility(kind):
    """max |x - Dec(Enc(x))| over all of digits (train + test) and the mean L2 reconstruction error."""
    import numpy as np

    import kzoo
    from kzoo.lvat import invertibility_error, load_transformer

    ds = kzoo.data.load("digits")
    x = np.concatenate([ds.x_train, ds.x_test])
    model = load_transformer(transformer_path(kind), kind)
    rec = np.asarray(model.reconstruct(x))
    return {"max_abs_error_all_digits": invertibility_error(model, x),
            "mean_l2_reconstruction_error": float(np.mean(np.sqrt(((rec - x) ** 2).reshape(len(x), -1).sum(1)))),
            "dtype": str(rec.dtype)}


def measure_transformers(args):
    rows = {}
    for kind in PRETRAIN:
        t = time.time()
        metrics = pretrain(kind, force=True)
        metrics["wall_seconds"] = time.time() - t
        metrics.update(_child("invertibility", kind))
        rows[kind] = metrics
    return rows


def render_transformers(sec, add):
    data = sec["data"]
    add("## LVAT transformers on digits: bits/dim and invertibility")
    add("")
    add("`kzoo pretrain vae|glow --dataset digits` (TensorFlow backend, seed 0, Adam 1e-3, batch 128, "
        f"{data['glow']['steps']} steps each), trained on the 1,300 training images without labels. "
        "Dequantization: digits have 17 levels (k/16); the models are trained on (k + u)/17 with u ~ U(0, 1) "
        "per pixel, and bits/dim = −E[log p(x_deq)]/(64 ln 2) + log2 17 — an upper bound on the bits/dim of "
        "the discrete images (uniform: log2 17 = 4.09). For the VAE, log p is replaced by the ELBO (one "
        "posterior sample), a further upper bound. Averaged over 4 noise draws.")
    add("")
    add("| transformer | parameters | latent dim | train bits/dim | test bits/dim | max abs. x − Dec(Enc(x)) | "
        "mean L2 x − Dec(Enc(x)) | pretraining |")
    add("|---|---|---|---|---|---|---|---|")
    names = {"vae": "VAE (Normal likelihood, latent 16, channels 32)", "glow": "Glow (L=2, K=4, 64 channels)"}
    for kind, m in data.items():
        add(f"| {names.get(kind, kind)} | {m['parameters']:,} | {m['latent_dim']} | "
            f"{m.get('train_bits_per_dim', float('nan')):.3f} | {m.get('test_bits_per_dim', float('nan')):.3f} | "
            f"{m['max_abs_error_all_digits']:.2e} | {m['mean_l2_reconstruction_error']:.3g} | "
            f"{m['train_seconds']:.0f} s |")
    add("")
    g = data.get("glow")
    if g:
        ok = g["max_abs_error_all_digits"] <= 1e-4
        add(f"Glow invertibility on all 1,797 digits in float32: max |x − Dec(Enc(x))| = "
            f"{g['max_abs_error_all_digits']:.1e} (target ≤ 1e-4: {'met' if ok else 'NOT met'}). The VAE is "
            "not invertible: its reconstruction error is what LVAT-VAE's x_adv inherits (paper, Sec. 6.2).")
        add("")
    add(f"_{_stamp(sec)}._")
    add("")


# ----------------------------------------------------------------------------
# lvat-speed: LVAT step time relative to VAT on the same batches (interleaved)
# ----------------------------------------------------------------------------


def speed(rounds, steps, jit):
    import keras
    import numpy as np

    import kzoo
    from kzoo.experiment import build_regularizer

    ds = kzoo.data.load("digits")
    x_l, y_l, x_u = kzoo.data.labeled_split(ds.x_train, ds.y_train, 100, num_classes=10, seed=0)
    configs = {
        "vat": {},
        "lvat-vae": {"transformer": transformer_path("vae"), "epsilon": EPSILON["vae"]},
        "lvat-glow": {"transformer": transformer_path("glow"), "epsilon": EPSILON["glow"]},
    }
    models, streams = {}, {}
    for method, hp in configs.items():
        keras.utils.set_random_seed(0)
        model = kzoo.Regularized(kzoo.models.mlp(ds.input_shape, 10), build_regularizer(method, **hp), seed=0)
        model.compile(optimizer="adam", jit_compile=jit)
        stream = kzoo.data.semi_supervised(x_l, y_l, x_u, batch_labeled=32, batch_unlabeled=128, seed=0)
        model.fit(stream, steps_per_epoch=10, epochs=1, verbose=0)  # trace + warm up
        models[method], streams[method] = model, stream
    times = interleaved_ms_per_step(models, streams, rounds, steps)
    med = {m: float(np.median(v)) for m, v in times.items()}
    return {"jit_compile": jit, "rounds": rounds, "steps_per_round": steps,
            "rows": [{"method": m, "ms_per_step_median": med[m], "ratio_to_vat_median": median_ratio(times, m, "vat"),
                      "ms_per_step_all": times[m]} for m in configs]}


def measure_speed(args):
    prepare()
    rounds, steps = (3, 20) if getattr(args, "quick", False) else (5, 40)
    out = []
    for jit in (False, True):
        try:
            out.append(_child("speed", rounds, steps, jit))
        except RuntimeError as e:  # keep the other setting's numbers
            out.append({"jit_compile": jit, "error": str(e)[-500:], "rows": []})
    return out


def render_speed(sec, add):
    add("## LVAT speed: step time relative to VAT")
    add("")
    add("TensorFlow backend (LVAT needs TensorFlow Probability; on JAX it reports a clear error, see README), "
        "`kzoo.models.mlp` on digits, 32 labeled + 128 unlabeled inputs per step, K = 1, the same batches "
        "for every method. The methods are timed interleaved in one process (warm-up, then rounds of "
        "VAT, LVAT-VAE, LVAT-Glow, … ; medians over rounds, and the median of the per-round ratios), so the "
        "contention of the shared 2-core machine affects them alike. VAT is not measured on JAX here "
        "(see the speed section above for VAT on both backends).")
    add("")
    add("| jit_compile | method | ms/step (median) | ratio to VAT (median of rounds) | per-round ratios |")
    add("|---|---|---|---|---|")
    for res in sec["data"]:
        if res.get("error"):
            add(f"| {res['jit_compile']} | (failed: {res['error'].splitlines()[-1][:120]}) | | | |")
        vat = next((r["ms_per_step_all"] for r in res["rows"] if r["method"] == "vat"), None)
        for r in res["rows"]:
            per_round = ", ".join(f"{a / b:.2f}" for a, b in zip(r["ms_per_step_all"], vat)) if vat else ""
            add(f"| {res['jit_compile']} | {r['method']} | {r['ms_per_step_median']:.1f} | "
                f"{r['ratio_to_vat_median']:.2f} | {per_round} |")
    add("")
    add("Caveat: this was measured while the 2-core machine ran several other benchmarks (load average "
        "about 20), so even interleaved rounds disagree widely (see the per-round ratios); read the "
        "medians as rough: LVAT-VAE costs about 1.3× a VAT step and LVAT-Glow about 2× (both with and "
        "without XLA; the absolute times with XLA were slower here, but load changed between the two).")
    add("")
    add("An LVAT step adds to VAT's work one encoder pass, and the decoder twice (forward and backward in the "
        "power iteration, forward for x_adv) — for Glow the inverse flow, whose 1x1 convolutions solve "
        "triangular systems (TFP's ScaleMatvecLU) and whose many small ops dominate on CPU.")
    add("")
    add(f"_{_stamp(sec)}._")
    add("")


# ----------------------------------------------------------------------------
# lvat-figures: the paper's Figs. 2-4 on digits
# ----------------------------------------------------------------------------


def figures(n_show=10, seed=0):
    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import kzoo
    from kzoo import vat as kvat
    from kzoo.core import StepContext
    from kzoo.lvat import LVAT, adversarial_examples, load_transformer

    ds = kzoo.data.load("digits")
    keras.utils.set_random_seed(seed)
    # the classifier whose adversarial directions are shown: supervised on 100 labels (fast, fixed)
    x_l, y_l, _ = kzoo.data.labeled_split(ds.x_train, ds.y_train, 100, num_classes=10, seed=seed)
    clf = kzoo.models.mlp(ds.input_shape, 10)
    model = kzoo.Regularized(clf)
    model.compile(optimizer="adam")
    model.fit(kzoo.data.supervised(x_l, y_l, batch_size=32, seed=seed), steps_per_epoch=300, epochs=1, verbose=0)
    x = ds.x_test
    out, stats = {}, {}
    for kind in ("vae", "glow"):
        reg = LVAT(load_transformer(transformer_path(kind), kind), epsilon=EPSILON[kind])
        x_rec, x_adv, z, r = adversarial_examples(reg, clf, x, seed=seed)
        out[kind] = (x_rec, x_adv)
        flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
        d_adv = np.linalg.norm(flat(x) - flat(x_adv), axis=1)
        d_rec = np.linalg.norm(flat(x) - flat(x_rec), axis=1)
        stats[kind] = {"epsilon_latent": EPSILON[kind], "latent_r_norm_mean": float(np.linalg.norm(r, axis=1).mean()),
                       "x_adv_distance": {"mean": float(d_adv.mean()), "median": float(np.median(d_adv)),
                                          "p5": float(np.percentile(d_adv, 5)), "p95": float(np.percentile(d_adv, 95))},
                       "reconstruction_distance": {"mean": float(d_rec.mean()), "median": float(np.median(d_rec))},
                       "_d_adv": d_adv.tolist(), "_d_rec": d_rec.tolist()}
    # VAT's x + r_vat for comparison (paper Fig. 3 e, f), ε = 1.0 as kzoo's VAT default on digits
    gen = keras.random.SeedGenerator(seed)
    xt = keras.ops.convert_to_tensor(x[:n_show])
    ctx = StepContext(clf, xt, None, None, None, None, gen, training=False)
    d = kvat.power_iteration(ctx, xt, ctx.forward(xt), 1e-6, 1, gen)
    x_vat = np.asarray(xt + 1.0 * d)

    rows = [("x", x[:n_show]), ("VAE: Dec(Enc(x))", out["vae"][0][:n_show]),
            ("VAE: Dec(Enc(x)+r)", out["vae"][1][:n_show]), ("Glow: Dec(Enc(x))", out["glow"][0][:n_show]),
            ("Glow: Dec(Enc(x)+r)", out["glow"][1][:n_show]), ("VAT: x + r_vat", x_vat)]
    fig, axes = plt.subplots(len(rows), n_show, figsize=(n_show * 0.9, len(rows) * 1.0))
    for i, (label, imgs) in enumerate(rows):
        for j in range(n_show):
            ax = axes[i, j]
            ax.imshow(imgs[j, ..., 0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"LVAT on digits (test images): ε_lvat = {EPSILON['glow']} (latent units), VAT ε = 1.0",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(FIG_EXAMPLES, dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    bins = np.linspace(0, max(max(stats[k]["_d_adv"]) for k in stats) * 1.05, 40)
    axes[0].hist(stats["glow"]["_d_adv"], bins=bins, alpha=0.7, label="LVAT-Glow ||x − x_adv||")
    axes[0].hist(stats["vae"]["_d_adv"], bins=bins, alpha=0.6, label="LVAT-VAE ||x − x_adv||")
    axes[0].axvline(1.0, color="k", ls="--", lw=1, label="VAT: ||r_vat|| = ε = 1.0")
    axes[0].set_xlabel("L2 distance in input space (64 pixels in [0, 1])")
    axes[0].set_ylabel("test images")
    axes[0].legend(fontsize=8)
    axes[0].set_title("Fig. 2: perturbation magnitudes", fontsize=9)
    axes[1].hist(stats["vae"]["_d_adv"], bins=bins, alpha=0.7, label="||x − Dec(Enc(x) + r)||")
    axes[1].hist(stats["vae"]["_d_rec"], bins=bins, alpha=0.7, label="||x − Dec(Enc(x))|| (reconstruction)")
    axes[1].set_xlabel("L2 distance in input space")
    axes[1].legend(fontsize=8)
    axes[1].set_title("Fig. 4: LVAT-VAE, with and without the perturbation", fontsize=9)
    fig.tight_layout()
    fig.savefig(FIG_DISTANCES, dpi=110)
    plt.close(fig)
    for k in stats:
        stats[k].pop("_d_adv"), stats[k].pop("_d_rec")
    stats["classifier"] = "kzoo.models.mlp, supervised on 100 labels, 300 steps (seed 0)"
    stats["images"] = len(x)
    return stats


def measure_figures(args):
    prepare()
    return _child("figures")


def render_figures(sec, add):
    data = sec["data"]
    add("## LVAT adversarial examples on digits (the paper's Figs. 2–4)")
    add("")
    add("![LVAT examples](lvat_examples.png)")
    add("")
    add("Rows: test images x; the VAE's reconstruction Dec(Enc(x)) and LVAT-VAE's x_adv = Dec(Enc(x) + r_lvat); "
        "the same for Glow (whose reconstruction is x itself, up to 3e-6); VAT's x + r_vat. The directions are those of "
        f"a classifier ({data['classifier']}), ε_lvat = 1.0 in latent units.")
    add("")
    add("![LVAT distances](lvat_distances.png)")
    add("")
    add(f"Over the {data['images']} test images:")
    add("")
    add("| transformer | ‖r‖ (latent) | ‖x − x_adv‖: mean | median | 5%–95% | ‖x − Dec(Enc(x))‖: mean |")
    add("|---|---|---|---|---|---|")
    for kind in ("vae", "glow"):
        s = data[kind]
        d = s["x_adv_distance"]
        add(f"| {kind} | {s['latent_r_norm_mean']:.2f} | {d['mean']:.2f} | {d['median']:.2f} | "
            f"{d['p5']:.2f}–{d['p95']:.2f} | {s['reconstruction_distance']['mean']:.3g} |")
    add("")
    add("As in the paper's Fig. 2, a fixed latent radius gives input-space perturbations of varying "
        "size, unlike VAT's fixed ‖r_vat‖ = ε; on digits the spread is narrower than the paper's on SVHN and "
        "CIFAR-10. Glow's long tail (‖x − x_adv‖ up to ~5) is where the adversarial latent direction leaves "
        "the data and the inverse flow blows up; `Glow.decode` clips such images to the data range [0, 1] "
        "(without it about 1 test image in 10 decoded to inf/NaN and LVAT-Glow training diverged to NaN).")
    add("")
    add(f"_{_stamp(sec)}._")
    add("")


def _stamp(sec):
    took = f" ({sec['seconds'] / 60:.1f} min)" if sec.get("seconds") else ""
    return f"measured {sec['date']} by `{sec['command']}`{took}"


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "figures"
    prepare()
    print(json.dumps(_child(what) if what == "figures" else {}, indent=1))
