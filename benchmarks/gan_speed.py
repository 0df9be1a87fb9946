"""Step time of the coupled semi-supervised GAN with and without the manifold / ambient regularizers.

    KERAS_BACKEND=jax .venv/bin/python benchmarks/gan_speed.py --rounds 7 --json out.json

One process; the configurations (plain, + manifold, + ambient) are compiled and
warmed up, then timed in alternation for ``--rounds`` rounds of ``--steps``
steps each, and each configuration's median ms/step is reported with its ratio
to the plain feature-matching GAN step, so that load from other processes on a
shared machine affects every configuration alike.
"""

import argparse
import statistics
import sys

from timing import emit, interleaved_ms_per_step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    import keras

    from kzoo import data as kdata
    from kzoo import gan as kgan

    ds = kdata.load("digits")
    x_l, y_l, x_u = kdata.labeled_split(ds.x_train, ds.y_train, 100, num_classes=10, seed=0)
    configs = {"plain": {}, "+ manifold": {"manifold_gamma": 1e-2}, "+ ambient": {"ambient_gamma": 1e-2},
               "+ manifold + ambient": {"manifold_gamma": 1e-2, "ambient_gamma": 1e-2}}
    models, streams = {}, {}
    for name, kw in configs.items():
        keras.utils.set_random_seed(0)
        gen, clf = kgan.ssgan_pair(ds.input_shape, 10, value_range=ds.value_range)
        model = kgan.SemiSupervisedGAN(gen, clf, epsilon=3.0, seed=0, **kw)
        model.compile(discriminator_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
                      generator_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
        streams[name] = kdata.semi_supervised(x_l, y_l, x_u, batch_labeled=32, batch_unlabeled=128, seed=0)
        model.fit(streams[name], steps_per_epoch=args.steps, epochs=1, verbose=0)  # compile + warm up
        models[name] = model
    times = interleaved_ms_per_step(models, streams, args.rounds, args.steps)
    base = statistics.median(times["plain"])
    rows = [{"config": name, "ms_per_step": statistics.median(t), "ratio": statistics.median(t) / base,
             "all_ms_per_step": t} for name, t in times.items()]
    out = {"backend": keras.backend.backend(), "rounds": args.rounds, "steps_per_round": args.steps, "rows": rows}
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
