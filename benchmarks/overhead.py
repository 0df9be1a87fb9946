"""kzoo's train step against a hand-written one doing the same math: the cost of the abstraction.

    python benchmarks/overhead.py --model mlp --json out.json        # KERAS_BACKEND picks the backend

The reference steps are what a user would write by hand in Keras, on the same
classifier, optimizer and batch shapes:

* TensorFlow: one ``tf.function(jit_compile=True)`` over ``tf.GradientTape``,
  the model's variables and ``optimizer.apply``;
* JAX: one ``jax.jit`` over a stateless step (``model.stateless_call``,
  ``jax.value_and_grad``, ``optimizer.stateless_apply``) whose state stays on
  the device between steps.

The math of each reference step is that of kzoo's method with its defaults:

* ``supervised``: cross-entropy of the labeled batch (160 inputs), Adam;
* ``vat``: 32 labeled + 128 unlabeled; one clean training-mode pass over both
  together (it alone updates the batch-norm statistics); one finite-difference
  power iteration (ξ floored at sqrt(float32 eps)·||x||, as
  ``kzoo.vat.finite_difference_step``), one perturbed pass at ε = 1 whose
  batch-norm updates are discarded; cross-entropy + KL; Adam;
* ``manifold-mixup``: kzoo's ``ManifoldMixup(batch_norm="mixed")`` (160
  labeled inputs): a clean training-mode pass (statistics; no gradient, its
  loss is replaced), λ ~ Beta(2, 2), a random permutation and a random mixing
  layer (a ``switch`` over the eligible layers when compiled), one stateless
  mixed pass, soft cross-entropy on the mixed targets; Adam.

Both sides are fed batches drawn from the same in-memory arrays: kzoo through
``model.fit`` on ``kzoo.data`` streams (what its users do), the reference by
a Python loop over a pool of ready numpy batches. The timer is
``timing.interleaved_ms_per_step``: every step function runs ``--steps`` steps
in turn in each round, and the ratios are medians of per-round ratios.

``--equal-images`` instead times kzoo's VAT (32 + 128) against kzoo's
supervised step on 160 labeled inputs (VAT's cost at equal images per step).
"""

import argparse
import os
import statistics
import sys

from timing import emit, interleaved_ms_per_step, median_ratio

MIX_LAYERS = {"mlp": ("input", "block1", "block2"), "conv_small": ("input", "drop1", "drop2"),
              "conv_large": ("input", "drop1", "drop2")}
N_LABELED, N_UNLABELED = 32, 128
EPSILON, XI, MIX_ALPHA = 1.0, 1e-6, 2.0
NO_TF_MIXUP = ("not compiled on TensorFlow: λ ~ Beta(α, α) is drawn with tf.random.stateless_gamma "
               "(keras.random.beta), which has no XLA kernel, so jit_compile=True fails for kzoo's step and "
               "for a hand-written one alike")


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


def mixup_loss(clean, mixed_pass, x, y, lam, perm, k):
    """Soft cross-entropy of the batch mixed at layer ``k``; ``clean`` only updates the statistics."""
    from keras import ops

    clean(x)
    onehot = ops.one_hot(y, 10)
    targets = lam * onehot + (1.0 - lam) * ops.take(onehot, perm, axis=0)
    logits = mixed_pass(x, lam, perm, k)
    return -ops.mean(ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1))


def _mixing_branches(net, layers, values):
    """One function per eligible layer: ``(x, λ, perm) -> logits`` of the batch mixed there (stateless)."""
    import keras
    from keras import ops

    def branch(name):
        if name == "input":
            head, tail = None, net
        else:
            hidden = net.get_layer(name).output
            head, tail = keras.Model(net.inputs, hidden), keras.Model(hidden, net.outputs)

        def run(x, lam, perm):
            tv, ntv = values()
            h = x if head is None else _stateless(head, net, tv, ntv, x)
            h = lam * h + (1.0 - lam) * ops.take(h, perm, axis=0)
            return _stateless(tail, net, tv, ntv, h)
        return run

    return [branch(name) for name in layers]


def _stateless(sub, net, tv, ntv, x):
    """``sub(x)`` in training mode with ``net``'s variable values ``tv``/``ntv``; updates discarded."""
    ids = {id(v): i for i, v in enumerate(net.trainable_variables)}
    nids = {id(v): i for i, v in enumerate(net.non_trainable_variables)}
    out, _ = sub.stateless_call([tv[ids[id(v)]] for v in sub.trainable_variables],
                                [ntv[nids[id(v)]] for v in sub.non_trainable_variables], x, training=True)
    return out


# --------------------------------------------------------------------------
# Reference steps per backend
# --------------------------------------------------------------------------


def reference_tensorflow(method, net, optimizer, layers):
    import keras
    import tensorflow as tf

    optimizer.build(net.trainable_variables)

    def values():
        return [v.value for v in net.trainable_variables], [v.value for v in net.non_trainable_variables]

    def perturbed(x):
        tv, ntv = values()
        return net.stateless_call(tv, ntv, x, training=True)[0]

    def grad(fn, r):
        with tf.GradientTape() as tape:
            tape.watch(r)
            value = fn(r)
        return tf.stop_gradient(tape.gradient(value, r))

    branches = _mixing_branches(net, layers, values)

    @tf.function(jit_compile=True)
    def step(x_l, y, x_u, seed):
        with tf.GradientTape() as tape:
            if method == "supervised":
                loss = _ce(y, net(x_l, training=True))
            elif method == "vat":
                x_all = tf.concat([x_l, x_u], axis=0)
                noise = tf.random.stateless_normal(tf.shape(x_all), seed)
                loss = vat_loss(lambda x: net(x, training=True), perturbed, grad, x_l, y, x_u, noise)
            else:
                s1, s2, s3 = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
                n = tf.shape(x_l)[0]
                g1 = tf.random.stateless_gamma((), s1, alpha=MIX_ALPHA)
                g2 = tf.random.stateless_gamma((), s2, alpha=MIX_ALPHA)
                lam = g1 / (g1 + g2)
                perm = tf.argsort(tf.random.stateless_uniform((n,), s3))
                k = tf.random.stateless_uniform((), s3, 0, len(layers), dtype=tf.int32)

                def mixed_pass(x, lam, perm, k):
                    return tf.switch_case(k, [lambda b=b: b(x, lam, perm) for b in branches])

                loss = mixup_loss(lambda x: tf.stop_gradient(net(x, training=True)), mixed_pass,
                                  x_l, y, lam, perm, k)
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply(grads, net.trainable_variables)
        return loss

    counter = [0]

    def run(batches, steps):
        for _ in range(steps):
            x_l, y, x_u = batches[counter[0] % len(batches)]
            step(x_l, y, x_u, tf.constant([0, counter[0]], dtype=tf.int32))
            counter[0] += 1
        keras.ops.convert_to_numpy(optimizer.iterations.value)  # wait for the last step

    return run


def reference_jax(method, net, optimizer, layers):
    import jax

    optimizer.build(net.trainable_variables)
    state = [[v.value for v in net.trainable_variables], [v.value for v in net.non_trainable_variables],
             [v.value for v in optimizer.variables]]
    current = {}

    def values():
        return current["tv"], current["ntv"]

    branches = _mixing_branches(net, layers, values)

    def grad(fn, r):
        return jax.lax.stop_gradient(jax.grad(fn)(r))

    @jax.jit
    def step(state, x_l, y, x_u, key):
        tv, ntv, ov = state

        def loss_fn(tv):
            current["tv"], current["ntv"] = tv, ntv
            new = {}

            def clean(x):
                logits, new["ntv"] = net.stateless_call(tv, ntv, x, training=True)
                return logits

            def perturbed(x):
                return net.stateless_call(tv, ntv, x, training=True)[0]

            if method == "supervised":
                loss = _ce(y, clean(x_l))
            elif method == "vat":
                noise = jax.random.normal(key, (x_l.shape[0] + x_u.shape[0],) + x_l.shape[1:])
                loss = vat_loss(clean, perturbed, grad, x_l, y, x_u, noise)
            else:
                k1, k2, k3 = jax.random.split(key, 3)
                lam = jax.random.beta(k1, MIX_ALPHA, MIX_ALPHA)
                perm = jax.random.permutation(k2, x_l.shape[0])
                k = jax.random.randint(k3, (), 0, len(layers))

                def mixed_pass(x, lam, perm, k):
                    return jax.lax.switch(k, branches, x, lam, perm)

                loss = mixup_loss(lambda x: jax.lax.stop_gradient(clean(x)), mixed_pass, x_l, y, lam, perm, k)
            return loss, new["ntv"]

        (loss, ntv), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv)
        tv, ov = optimizer.stateless_apply(ov, grads, tv)
        return [tv, ntv, ov], loss

    box = {"state": state, "key": jax.random.PRNGKey(0)}

    def run(batches, steps):
        for i in range(steps):
            x_l, y, x_u = batches[i % len(batches)]
            box["key"], key = jax.random.split(box["key"])
            box["state"], loss = step(box["state"], x_l, y, x_u, key)
        jax.block_until_ready(box["state"])

    return run


# --------------------------------------------------------------------------
# kzoo's side, the batches, the timing
# --------------------------------------------------------------------------


def kzoo_model(method, model, layers):
    import kzoo
    from kzoo.mixup import ManifoldMixup

    reg = {"supervised": None, "vat": kzoo.regularizers.VAT(epsilon=EPSILON),
           "manifold-mixup": ManifoldMixup(alpha=MIX_ALPHA, layers=layers, batch_norm="mixed"),
           "manifold-mixup-clean": ManifoldMixup(alpha=MIX_ALPHA, layers=layers),
           "input-mixup": kzoo.mixup.InputMixup(alpha=1.0)}[method]
    m = kzoo.Regularized(build_classifier(model), reg, seed=0)
    m.compile(optimizer="adam", jit_compile=True)
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
    p.add_argument("--model", default="mlp", choices=tuple(MIX_LAYERS))
    p.add_argument("--methods", default="supervised,vat,manifold-mixup")
    p.add_argument("--equal-images", action="store_true",
                   help="kzoo's VAT (32+128) against kzoo's supervised step on 160 (no reference steps)")
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
    layers = MIX_LAYERS[args.model]
    methods = args.methods.split(",")
    skipped = {}
    if backend == "tensorflow":
        for method in [m for m in methods if "mixup" in m]:
            methods.remove(method)
            skipped[method] = NO_TF_MIXUP
    runners, streams, compile_s = {}, {}, {}
    import time

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
        impl = reference_tensorflow if backend == "tensorflow" else reference_jax
        ref = _Ref(impl(method, net, keras.optimizers.Adam(), layers))
        streams[f"reference {method}"] = reference_batches(method, x, y)
        ref(streams[f"reference {method}"], args.warmup)
        runners[f"reference {method}"] = ref
        compile_s[f"reference {method}"] = time.perf_counter() - t
        print(f"built {method}: kzoo {compile_s[f'kzoo {method}']:.1f}s, reference "
              f"{compile_s[f'reference {method}']:.1f}s", file=sys.stderr, flush=True)
    times = interleaved_ms_per_step(runners, streams, args.rounds, args.steps, log=True)
    rows = []
    for method in methods:
        name = f"kzoo {method}"
        row = {"method": method, "kzoo_ms": statistics.median(times[name]), "kzoo_ms_per_round": times[name],
               "kzoo_first_fit_s": compile_s[name]}
        if args.equal_images:
            row["ratio_to_supervised"] = median_ratio(times, name, "kzoo supervised")
            row["ratio_per_round"] = [a / b for a, b in zip(times[name], times["kzoo supervised"])]
        else:
            ref = f"reference {method}"
            row.update({"reference_ms": statistics.median(times[ref]), "reference_ms_per_round": times[ref],
                        "reference_first_step_s": compile_s[ref], "ratio": median_ratio(times, name, ref),
                        "ratio_per_round": [a / b for a, b in zip(times[name], times[ref])]})
        rows.append(row)
    emit({"backend": backend, "model": args.model, "equal_images": args.equal_images, "rounds": args.rounds,
          "steps_per_round": args.steps, "batch": [N_LABELED, N_UNLABELED], "mix_layers": list(layers),
          "rows": rows, "skipped": skipped}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
