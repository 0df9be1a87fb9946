"""kzoo's train step against a hand-written one doing the same math: the cost of the abstraction.

    python benchmarks/overhead.py --model mlp --json out.json        # KERAS_BACKEND picks the backend

The reference steps are what a user would write by hand in Keras, on the same
classifier, optimizer and batch shapes:

* TensorFlow: one ``tf.function(jit_compile=True)`` over ``tf.GradientTape``,
  the model's variables and ``optimizer.apply``;
* JAX: one ``jax.jit`` over a stateless step (``model.stateless_call``,
  ``jax.value_and_grad``, ``optimizer.stateless_apply``) whose state stays on
  the device between steps;
* PyTorch: an eager step as Keras' own torch trainer writes it (the model's
  calls, ``backward()``, ``optimizer.apply`` under ``torch.no_grad()``); kzoo's
  step runs eager there too (``jit_compile`` "auto", which is eager on torch).

The math of each reference step is that of kzoo's method with its defaults:

* ``supervised``: cross-entropy of the labeled batch (160 inputs), Adam;
* ``vat``: 32 labeled + 128 unlabeled; one clean training-mode pass over both
  together (it alone updates the batch-norm statistics); one finite-difference
  power iteration (ξ floored at sqrt(float32 eps)·||x||, as
  ``kzoo.vat.finite_difference_step``), one perturbed pass at ε = 1 whose
  batch-norm updates are discarded; cross-entropy + KL; Adam;
* ``manifold-mixup``: kzoo's ``ManifoldMixup()`` with its defaults (160
  labeled inputs; the layers its ``"auto"`` rule picks, input/block1/block2 on
  kzoo's networks, and ``batch_norm="paper"``), the paper's step: λ ~ Beta(2, 2),
  a random permutation and a random eligible layer, one training-mode pass over
  the batch mixed there
  (it alone updates the batch-norm statistics), soft cross-entropy on the mixed
  targets; Adam. The hand-written step is the cheapest a user can write: the
  layer, λ and the permutation are drawn on the host and one step is compiled
  per layer (head, blend, tail), so the compiled step holds exactly one
  forward-backward; ``input-mixup`` (``InputMixup()``, its defaults) is the same
  with the input as the only layer (λ ~ Beta(1, 1)). The other modes, measured
  with ``--equal-images``: ``manifold-mixup-clean`` / ``-mixed`` and
  ``input-mixup-clean`` (``batch_norm="clean"`` / ``"mixed"``: a clean pass
  besides the mixed one).

Both sides are fed batches drawn from the same in-memory arrays: kzoo through
``model.fit`` on ``kzoo.data`` streams (what its users do), the reference by
a Python loop over a pool of ready numpy batches. The timer is
``timing.interleaved_ms_per_step``: every step function runs ``--steps`` steps
in turn in each round, and the ratios are medians of per-round ratios.

``--equal-images`` instead times kzoo's methods against kzoo's supervised
step on 160 labeled inputs (VAT: 32 + 128; its cost at equal images per step;
the mixup steps on the same 160), and reports each method's compile time (the
first ``fit``: build, trace, compile, the warm-up steps, less those steps at the
timed speed; run with ``KZOO_JAX_CACHE_DIR=off`` so that JAX compiles) after a
throwaway supervised model has absorbed the process's one-time costs.
"""

import argparse
import os
import statistics
import sys

from timing import emit, interleaved_ms_per_step, median_ratio

MODELS = ("mlp", "conv_small", "conv_large")
N_LABELED, N_UNLABELED = 32, 128
EPSILON, XI, MIX_ALPHA = 1.0, 1e-6, 2.0


def build_classifier(model, seed=0):
    import keras

    import kzoo

    keras.utils.set_random_seed(seed)
    if model == "mlp":
        return kzoo.models.mlp(input_shape=(64,), num_classes=10)
    return getattr(kzoo.models, model)(input_shape=(32, 32, 3), num_classes=10)


def arrays(model, n=2048, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (64,) if model == "mlp" else (32, 32, 3)
    x = rng.normal(size=(n,) + shape).astype("float32")
    y = rng.integers(0, 10, size=n).astype("int32")
    return x, y


# --------------------------------------------------------------------------
# The math, once, in keras.ops (the backends differ only in how gradients are taken)
# --------------------------------------------------------------------------


def _kl(p_logits, q_logits):
    from keras import ops

    log_p = ops.log_softmax(p_logits, axis=-1)
    return ops.sum(ops.exp(log_p) * (log_p - ops.log_softmax(q_logits, axis=-1)), axis=-1)


def _unit(d):
    from keras import ops

    axes = tuple(range(1, len(d.shape)))
    scale = ops.max(ops.abs(d), axis=axes, keepdims=True)
    d = d / ops.where(scale > 0, scale, ops.ones_like(scale))
    return d / ops.sqrt(ops.maximum(ops.sum(ops.square(d), axis=axes, keepdims=True), 1e-12))


def _ce(y, logits):
    from keras import ops

    return -ops.mean(ops.take_along_axis(ops.log_softmax(logits, axis=-1), ops.expand_dims(y, -1), axis=-1))


def vat_loss(clean, perturbed, grad, x_l, y, x_u, noise):
    """Cross-entropy + VAT's KL term; ``clean(x)`` updates the statistics, ``perturbed(x)`` does not,
    ``grad(fn, r)`` is a stop-gradient ∇_r fn(r)."""
    import numpy as np
    from keras import ops

    x = ops.concatenate([x_l, x_u], axis=0)
    logits = clean(x)
    loss = _ce(y, logits[:N_LABELED])
    p = ops.stop_gradient(logits)
    axes = tuple(range(1, len(x.shape)))
    norm = ops.sqrt(ops.sum(ops.square(x), axis=axes, keepdims=True))
    step = ops.maximum(XI, float(np.sqrt(np.finfo("float32").eps)) * norm)
    d = grad(lambda r: ops.sum(_kl(p, perturbed(x + r))), step * _unit(noise))
    return loss + ops.mean(_kl(p, perturbed(x + EPSILON * _unit(d))))


def mixup_loss(mixed_pass, x, y, lam, perm):
    """Soft cross-entropy of ``mixed_pass(x, λ, perm)``, the logits of the batch mixed at one layer."""
    from keras import ops

    onehot = ops.one_hot(y, 10)
    targets = lam * onehot + (1.0 - lam) * ops.take(onehot, perm, axis=0)
    logits = mixed_pass(x, lam, perm)
    return -ops.mean(ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1))


def split(net, name):
    """``(head, tail)`` sub-models around layer ``name`` sharing ``net``'s layers (head None at the input)."""
    import keras

    if name == "input":
        return None, net
    hidden = net.get_layer(name).output
    return keras.Model(net.inputs, hidden), keras.Model(hidden, net.outputs)


def blend(h, lam, perm):
    from keras import ops

    return lam * h + (1.0 - lam) * ops.take(h, perm, axis=0)


def host_mixing(layers, alpha, n, rng):
    """The layer index, λ and permutation of one hand-written mixup step, drawn on the host."""
    import numpy as np

    return (int(rng.integers(len(layers))), np.asarray(rng.beta(alpha, alpha), "float32"),
            rng.permutation(n).astype("int32"))


# --------------------------------------------------------------------------
# Reference steps per backend
# --------------------------------------------------------------------------


def reference_tensorflow(method, net, optimizer, layers, alpha):
    import keras
    import numpy as np
    import tensorflow as tf

    optimizer.build(net.trainable_variables)

    def perturbed(x):
        tv, ntv = [v.value for v in net.trainable_variables], [v.value for v in net.non_trainable_variables]
        return net.stateless_call(tv, ntv, x, training=True)[0]

    def grad(fn, r):
        with tf.GradientTape() as tape:
            tape.watch(r)
            value = fn(r)
        return tf.stop_gradient(tape.gradient(value, r))

    def make_step(k=None):
        head, tail = split(net, layers[k]) if k is not None else (None, None)

        def mixed_pass(x, lam, perm):  # training mode, statistics updated: the paper's one pass
            h = x if head is None else head(x, training=True)
            return tail(blend(h, lam, perm), training=True)

        @tf.function(jit_compile=True)
        def step(x_l, y, x_u, seed, lam, perm):
            with tf.GradientTape() as tape:
                if method == "supervised":
                    loss = _ce(y, net(x_l, training=True))
                elif method == "vat":
                    x_all = tf.concat([x_l, x_u], axis=0)
                    noise = tf.random.stateless_normal(tf.shape(x_all), seed, alg="philox")  # as kzoo draws
                    loss = vat_loss(lambda x: net(x, training=True), perturbed, grad, x_l, y, x_u, noise)
                else:
                    loss = mixup_loss(mixed_pass, x_l, y, lam, perm)
            grads = tape.gradient(loss, net.trainable_variables)
            optimizer.apply(grads, net.trainable_variables)
            return loss
        return step

    mixing = "mixup" in method
    steps_by_layer = [make_step(k) for k in range(len(layers))] if mixing else [make_step()]
    counter, rng = [0], np.random.default_rng(0)

    def run(batches, steps, layer=None):
        for _ in range(steps):
            x_l, y, x_u = batches[counter[0] % len(batches)]
            k, lam, perm = host_mixing(layers, alpha, len(x_l), rng)
            k = k if mixing and layer is None else (layer or 0)
            steps_by_layer[k](x_l, y, x_u, tf.constant([0, counter[0]], dtype=tf.int32), lam, perm)
            counter[0] += 1
        keras.ops.convert_to_numpy(optimizer.iterations.value)  # wait for the last step

    run.layers = len(steps_by_layer)
    return run


def _stateless(sub, net, tv, ntv, x):
    """``sub(x)`` in training mode with ``net``'s values ``tv``/``ntv``: (output, ``ntv`` with sub's updates)."""
    ids = {id(v): i for i, v in enumerate(net.trainable_variables)}
    nids = {id(v): i for i, v in enumerate(net.non_trainable_variables)}
    out, new = sub.stateless_call([tv[ids[id(v)]] for v in sub.trainable_variables],
                                  [ntv[nids[id(v)]] for v in sub.non_trainable_variables], x, training=True)
    ntv = list(ntv)
    for v, value in zip(sub.non_trainable_variables, new):
        ntv[nids[id(v)]] = value
    return out, ntv


def reference_jax(method, net, optimizer, layers, alpha):
    import functools

    import jax
    import numpy as np

    optimizer.build(net.trainable_variables)
    state = [[v.value for v in net.trainable_variables], [v.value for v in net.non_trainable_variables],
             [v.value for v in optimizer.variables]]
    splits = [split(net, name) for name in layers]

    def grad(fn, r):
        return jax.lax.stop_gradient(jax.grad(fn)(r))

    @functools.partial(jax.jit, static_argnums=7)
    def step(state, x_l, y, x_u, key, lam, perm, k):
        tv, ntv, ov = state

        def loss_fn(tv):
            new = {}

            def clean(x):
                logits, new["ntv"] = net.stateless_call(tv, ntv, x, training=True)
                return logits

            def perturbed(x):
                return net.stateless_call(tv, ntv, x, training=True)[0]

            def mixed_pass(x, lam, perm):  # training mode, statistics updated: the paper's one pass
                head, tail = splits[k]
                h, moved = (x, ntv) if head is None else _stateless(head, net, tv, ntv, x)
                logits, new["ntv"] = _stateless(tail, net, tv, moved, blend(h, lam, perm))
                return logits

            if method == "supervised":
                loss = _ce(y, clean(x_l))
            elif method == "vat":
                noise = jax.random.normal(key, (x_l.shape[0] + x_u.shape[0],) + x_l.shape[1:])
                loss = vat_loss(clean, perturbed, grad, x_l, y, x_u, noise)
            else:
                loss = mixup_loss(mixed_pass, x_l, y, lam, perm)
            return loss, new["ntv"]

        (loss, ntv), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv)
        tv, ov = optimizer.stateless_apply(ov, grads, tv)
        return [tv, ntv, ov], loss

    mixing = "mixup" in method
    box = {"state": state, "key": jax.random.PRNGKey(0), "rng": np.random.default_rng(0)}

    def run(batches, steps, layer=None):
        for i in range(steps):
            x_l, y, x_u = batches[i % len(batches)]
            box["key"], key = jax.random.split(box["key"])
            k, lam, perm = host_mixing(layers, alpha, len(x_l), box["rng"])
            k = k if mixing and layer is None else (layer or 0)
            box["state"], loss = step(box["state"], x_l, y, x_u, key, lam, perm, k)
        jax.block_until_ready(box["state"])

    run.layers = len(layers) if mixing else 1
    return run


def reference_torch(method, net, optimizer, layers, alpha):
    import keras
    import numpy as np
    import torch

    optimizer.build(net.trainable_variables)
    splits = [split(net, name) for name in layers]
    seed = keras.random.SeedGenerator(0)  # as kzoo draws on torch (kzoo.backend.torch.normal)

    def perturbed(x):
        tv, ntv = [v.value for v in net.trainable_variables], [v.value for v in net.non_trainable_variables]
        return net.stateless_call(tv, ntv, x, training=True)[0]

    def grad(fn, r):
        r = r.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(r), r)
        return g.detach()

    def step(x_l, y, x_u, lam, perm, k):
        net.zero_grad()
        if method == "supervised":
            loss = _ce(y, net(x_l, training=True))
        elif method == "vat":
            noise = keras.random.normal((x_l.shape[0] + x_u.shape[0],) + tuple(x_l.shape[1:]), seed=seed)
            loss = vat_loss(lambda x: net(x, training=True), perturbed, grad, x_l, y, x_u, noise)
        else:
            head, tail = splits[k]

            def mixed_pass(x, lam, perm):  # training mode, statistics updated: the paper's one pass
                h = x if head is None else head(x, training=True)
                return tail(blend(h, lam, perm), training=True)

            loss = mixup_loss(mixed_pass, x_l, y, lam, perm)
        loss.backward()
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in net.trainable_variables], net.trainable_variables)
        return loss

    mixing = "mixup" in method
    rng, tensor = np.random.default_rng(0), keras.ops.convert_to_tensor

    def run(batches, steps, layer=None):
        for i in range(steps):
            x_l, y, x_u = batches[i % len(batches)]
            k, lam, perm = host_mixing(layers, alpha, len(x_l), rng)
            k = k if mixing and layer is None else (layer or 0)
            step(tensor(x_l), tensor(y), tensor(x_u), tensor(lam), tensor(perm), k)

    run.layers = len(layers) if mixing else 1
    return run


# --------------------------------------------------------------------------
# kzoo's side, the batches, the timing
# --------------------------------------------------------------------------


def kzoo_model(method, model, layers):
    import kzoo
    from kzoo.mixup import ManifoldMixup

    reg = {"supervised": None, "vat": kzoo.regularizers.VAT(epsilon=EPSILON),
           "manifold-mixup": ManifoldMixup(alpha=MIX_ALPHA),  # the defaults: layers="auto", batch_norm="paper"
           "manifold-mixup-clean": ManifoldMixup(alpha=MIX_ALPHA, batch_norm="clean"),
           "manifold-mixup-mixed": ManifoldMixup(alpha=MIX_ALPHA, batch_norm="mixed"),
           "input-mixup": kzoo.mixup.InputMixup(),  # the defaults: α = 1, batch_norm="paper"
           "input-mixup-clean": kzoo.mixup.InputMixup(batch_norm="clean")}[method]
    m = kzoo.Regularized(build_classifier(model), reg, seed=0)
    if reg is not None and layers is not None:
        assert reg.layers in (tuple(layers), ("input",)), (reg.layers, layers)  # the reference mixes there too
    import keras

    # XLA on TensorFlow and JAX; eager on torch, as its reference (jit_compile=True there is torch.compile)
    m.compile(optimizer="adam", jit_compile=keras.backend.backend() != "torch")
    return m


def kzoo_stream(method, x, y):
    import kzoo

    n = N_LABELED + N_UNLABELED
    if method == "vat":
        return kzoo.data.semi_supervised(x[:512], y[:512], x[512:], batch_labeled=N_LABELED,
                                         batch_unlabeled=N_UNLABELED, seed=0)
    return kzoo.data.supervised(x, y, batch_size=n, seed=0)


def reference_batches(method, x, y, pool=8, seed=1):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(pool):
        if method == "vat":
            i, j = rng.choice(512, N_LABELED), 512 + rng.choice(len(x) - 512, N_UNLABELED)
            out.append((x[i], y[i], x[j]))
        else:
            i = rng.choice(len(x), N_LABELED + N_UNLABELED)
            out.append((x[i], y[i], x[i[:1]]))
    return out


class _Ref:
    """A reference step function that the interleaved timer can run like a model."""

    def __init__(self, run):
        self.run = run

    def __call__(self, stream, steps):
        self.run(stream, steps)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="mlp", choices=MODELS)
    p.add_argument("--methods", default="supervised,vat,manifold-mixup")
    p.add_argument("--equal-images", action="store_true",
                   help="kzoo's methods (VAT: 32+128) against kzoo's supervised step on 160 (no reference steps), "
                   "with compile times (set KZOO_JAX_CACHE_DIR=off so that they are measured)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=20, help="timed steps per step function per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    backend = keras.backend.backend()
    x, y = arrays(args.model)
    from kzoo.mixup import auto_layers

    layers = auto_layers(build_classifier(args.model))[0]  # where ManifoldMixup() mixes: the reference too
    methods = args.methods.split(",")
    runners, streams, compile_s = {}, {}, {}
    import time

    if args.equal_images:  # the process's one-time costs (backend start, first initializers) before timing
        kzoo_model("supervised", args.model, layers).fit(kzoo_stream("supervised", x, y), steps_per_epoch=1,
                                                         epochs=1, verbose=0)
    for method in methods:
        t = time.perf_counter()
        model = kzoo_model(method, args.model, layers)
        streams[f"kzoo {method}"] = kzoo_stream(method, x, y)
        model.fit(streams[f"kzoo {method}"], steps_per_epoch=args.warmup, epochs=1, verbose=0)
        runners[f"kzoo {method}"] = model
        compile_s[f"kzoo {method}"] = time.perf_counter() - t
        if args.equal_images:
            continue
        t = time.perf_counter()
        net = build_classifier(args.model)
        impl = {"tensorflow": reference_tensorflow, "jax": reference_jax, "torch": reference_torch}[backend]
        ref_layers, alpha = (("input",), 1.0) if method == "input-mixup" else (layers, MIX_ALPHA)
        ref = _Ref(impl(method, net, keras.optimizers.Adam(), ref_layers, alpha))
        streams[f"reference {method}"] = reference_batches(method, x, y)
        for layer in range(ref.run.layers):  # compile every layer's step before timing
            ref.run(streams[f"reference {method}"], args.warmup, layer=layer)
        runners[f"reference {method}"] = ref
        compile_s[f"reference {method}"] = time.perf_counter() - t
        print(f"built {method}: kzoo {compile_s[f'kzoo {method}']:.1f}s, reference "
              f"{compile_s[f'reference {method}']:.1f}s", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    times = interleaved_ms_per_step(runners, streams, args.rounds, args.steps, log=True)
    rows = []
    for method in methods:
        name = f"kzoo {method}"
        row = {"method": method, "kzoo_ms": statistics.median(times[name]), "kzoo_ms_per_round": times[name],
               "kzoo_first_fit_s": compile_s[name]}
        if args.equal_images:
            row["ratio_to_supervised"] = median_ratio(times, name, "kzoo supervised")
            row["ratio_per_round"] = [a / b for a, b in zip(times[name], times["kzoo supervised"])]
            # build + compile: the first fit less its warm-up steps at the timed speed
            row["compile_s"] = compile_s[name] - args.warmup * row["kzoo_ms"] / 1000.0
        else:
            ref = f"reference {method}"
            row.update({"reference_ms": statistics.median(times[ref]), "reference_ms_per_round": times[ref],
                        "reference_first_step_s": compile_s[ref], "ratio": median_ratio(times, name, ref),
                        "ratio_per_round": [a / b for a, b in zip(times[name], times[ref])]})
        rows.append(row)
    if args.equal_images and "supervised" in methods:
        for row in rows:
            row["compile_ratio_to_supervised"] = row["compile_s"] / rows[methods.index("supervised")]["compile_s"]
    emit({"backend": backend, "model": args.model, "equal_images": args.equal_images, "rounds": args.rounds,
          "steps_per_round": args.steps, "batch": [N_LABELED, N_UNLABELED], "mix_layers": list(layers),
          "rows": rows, "warmup_steps": args.warmup, "load_average": [load_before, os.getloadavg()[0]],
          "compilation_cache": os.environ.get("KZOO_JAX_CACHE_DIR", "default")}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
