"""kzoo.experiment: configuration checks, outputs written atomically."""

import itertools
import json
import os

import numpy as np
import pytest

from kzoo import experiment, methods, regularizers


def test_build_regularizer_defaults_and_sum():
    assert experiment.build_regularizer("supervised") is None
    vat = experiment.build_regularizer("vat")
    assert isinstance(vat, regularizers.VAT)
    assert vat.epsilon == methods.get("vat").hyperparameter("epsilon").default == 1.0
    both = experiment.build_regularizer("vat", epsilon=0.5, entmin=2.0)
    assert both.loss_names == ("vat", "entmin") and both.weights == {"vat": 1.0, "entmin": 2.0}
    adv = experiment.build_regularizer("adversarial", adv_norm="linf", epsilon=0.1)
    assert adv.norm == "linf" and adv.epsilon == 0.1


def test_epochs_split_evenly():
    assert experiment._epochs_for(500) == 1
    assert experiment._epochs_for(3000) == 3
    assert 3001 % experiment._epochs_for(3001) == 0


def test_write_json_atomic_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    experiment.write_json_atomic(str(path), {"a": 1})
    with pytest.raises(TypeError):
        experiment.write_json_atomic(str(path), {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["r.json"]


def test_run_supervised_two_moons_learns():
    result = experiment.run(method="supervised", dataset="moons", labels=200, steps=1000,
                            batch_labeled=64, verbose=0)
    assert result["train_steps"] == 1000  # enough for batch-norm moving statistics (momentum 0.99)
    assert result["test_error"] < 0.2  # chance is 0.5


def test_sgd_optimizer_knobs_are_used_and_recorded(tmp_path):
    out = tmp_path / "m.json"
    result = experiment.run(method="supervised", dataset="moons", labels=20, steps=8, batch_labeled=8, verbose=0,
                            learning_rate=0.1, optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=5e-4,
                            lr_drops=(0.5, 0.75), metrics_json=str(out))
    hp = json.loads(out.read_text())["hyperparameters"]
    assert hp == result["hyperparameters"]
    assert (hp["optimizer"], hp["momentum"], hp["nesterov"], hp["weight_decay"]) == ("sgd", 0.9, True, 5e-4)
    assert hp["lr_drops"] == [0.5, 0.75] and hp["decay_fraction"] == 0.0  # the drops replace the linear decay
    assert experiment.drop_steps((0.5, 0.75, 0.875), 1000) == [500, 750, 875]
    assert experiment.drop_steps((0.5, 0.75, 0.875), 2) == [1, 2, 2]


def test_sgd_context_optimizer_is_coupled_l2_sgd_with_step_decay():
    import keras

    from kzoo import ops as kops

    ctx = experiment.RunContext(methods.get("supervised"), {}, None, None, None, None, "mlp", 1.0, 100, 8, 8, 0,
                                0.1, 0.0, None, False, 0, optimizer_name="sgd", momentum=0.9, nesterov=False,
                                weight_decay=1e-4, lr_drops=(0.4, 0.8))
    opt = ctx.optimizer()
    assert isinstance(opt, kops.SGDWithL2) and opt.l2 == 1e-4 and opt.momentum == 0.9
    assert opt._learning_rate.boundaries == [40, 80]
    ctx.optimizer_name, ctx.momentum, ctx.weight_decay, ctx.lr_drops = "adam", 0.0, 0.0, ()
    assert isinstance(ctx.optimizer(beta_1=0.5), keras.optimizers.Adam)


@pytest.mark.parametrize("kwargs,match", [
    ({"optimizer": "rmsprop"}, "valid optimizers: adam, sgd"),
    ({"optimizer": "sgd", "momentum": 1.0}, "momentum must be"),
    ({"optimizer": "sgd", "weight_decay": -1.0}, "weight_decay must be"),
    ({"weight_decay": 1e-4}, "apply to optimizer='sgd'"),
    ({"momentum": 0.9}, "apply to optimizer='sgd'"),
    ({"lr_drops": (0.75, 0.5)}, "increasing fractions"),
    ({"lr_drops": (0.5, 1.0)}, "increasing fractions"),
])
def test_bad_optimizer_settings_fail_before_any_work(kwargs, match, monkeypatch):
    from kzoo import data as kdata

    monkeypatch.setattr(kdata, "load", lambda *a, **k: pytest.fail("data was loaded"))
    with pytest.raises(experiment.ConfigError, match=match):
        experiment.run(method="supervised", dataset="moons", verbose=0, **kwargs)


def test_hyperparameters_are_checked_against_their_declared_ranges():
    spec = methods.get("vat")
    assert spec.resolve({"epsilon": "2.5", "power_iterations": 2})["epsilon"] == 2.5
    assert spec.resolve({"epsilon": None})["epsilon"] == 1.0  # None means the default
    with pytest.raises(ValueError, match=r"epsilon \(--epsilon\) of vat must be > 0"):
        spec.resolve({"epsilon": 0.0})
    with pytest.raises(ValueError, match="must be an integer"):
        spec.resolve({"power_iterations": 1.5})
    with pytest.raises(ValueError, match="--adv-norm does not apply to vat"):
        spec.resolve({"adv_norm": "l2"})
    with pytest.raises(ValueError, match="must be one of l2, linf"):
        methods.get("adversarial").resolve({"adv_norm": "l1"})
    with pytest.raises(experiment.ConfigError, match="valid methods"):
        experiment.build_regularizer("nope")


def test_every_registered_method_builds_with_its_defaults():
    for name, spec in methods.METHODS.items():
        hp = spec.resolve()
        assert set(hp) == {h.name for h in spec.hyperparameters}
        if spec.build is not None:
            if "transformer" in hp:  # LVAT: no default transformer; building says what is missing
                with pytest.raises(ValueError, match="needs --transformer"):
                    spec.build(hp)
                continue
            reg = spec.build(hp)
            assert reg is None or isinstance(reg, regularizers.Regularizer), name


def test_pretrain_runs_a_registered_pretrainer_and_saves_atomically(tmp_path, monkeypatch):
    import keras

    from kzoo.export import save_keras_atomic

    def run_autoencoder(ctx):
        x = ctx.dataset.x_train.reshape(len(ctx.dataset.x_train), -1)
        inp = keras.Input((x.shape[1],))
        model = keras.Model(inp, keras.layers.Dense(x.shape[1])(keras.layers.Dense(ctx.hyperparameters["units"])(inp)))
        model.compile(optimizer="adam", loss="mse")
        ctx.fit(model, (b for b in itertools.repeat((x[:ctx.batch_size], x[:ctx.batch_size]))))
        save_keras_atomic(model, ctx.export)
        return {"final_loss": float(model.evaluate(x, x, verbose=0))}

    spec = methods.Pretrainer("toy-ae", "toy autoencoder",
                              (methods.Hyperparameter("units", 4, "code size", int, minimum=1),), run_autoencoder)
    monkeypatch.setitem(methods.PRETRAINERS, "toy-ae", spec)
    with pytest.raises(experiment.ConfigError, match="units"):
        experiment.pretrain("toy-ae", export=str(tmp_path / "m.keras"), hyperparameters={"units": 0})
    with pytest.raises(experiment.ConfigError, match="unknown model to pretrain"):
        experiment.pretrain("nope", export=str(tmp_path / "m.keras"))
    out = experiment.pretrain("toy-ae", steps=3, batch_size=16, export=str(tmp_path / "m.keras"),
                              metrics_json=str(tmp_path / "m.json"), verbose=0)
    assert out["steps"] == 3 and out["final_loss"] > 0
    assert keras.models.load_model(out["export"]).output_shape == (None, 64)
    assert json.loads((tmp_path / "m.json").read_text())["model"] == "toy-ae"
    assert sorted(os.listdir(tmp_path)) == ["m.json", "m.keras"]  # no temporary files left


def test_pretrain_resumes_from_its_checkpoint_to_the_uninterrupted_model(tmp_path, monkeypatch):
    """A pretraining killed after a checkpoint, run again with the same arguments, ends with the weights
    of the run that was never interrupted (weights, optimizer and stream position resumed)."""
    import kzoo.gan as kgan
    from kzoo import callbacks as kcb
    from kzoo import experiment

    args = dict(dataset="moons", steps=6, batch_size=16, seed=1, verbose=0,
                hyperparameters={"gan_width": 0.1})
    plain = experiment.pretrain("dcgan", export=str(tmp_path / "plain.keras"), **args)

    ckpt, export = tmp_path / "ckpt", str(tmp_path / "resumed.keras")
    timer = experiment._step_timer

    def dying_timer():  # the process "dies" after its 5th step: checkpoints at steps 2 and 4 exist
        class Dying(type(timer())):
            def on_train_batch_end(self, batch, logs=None):
                super().on_train_batch_end(batch, logs)
                if self.steps == 5:
                    raise KeyboardInterrupt("killed")
        return Dying()

    monkeypatch.setattr(experiment, "_step_timer", dying_timer)
    with pytest.raises(KeyboardInterrupt):
        experiment.pretrain("dcgan", export=export, checkpoint_dir=str(ckpt), checkpoint_every=2, **args)
    assert kcb.latest_checkpoint(str(ckpt))[0] == 4 and not os.path.exists(export)
    monkeypatch.setattr(experiment, "_step_timer", timer)

    resumed = experiment.pretrain("dcgan", export=export, checkpoint_dir=str(ckpt), checkpoint_every=2, **args)
    assert resumed["resumed_from_step"] == 4 and "resumed_from_step" not in plain
    assert kcb.latest_checkpoint(str(ckpt)) == (0, None)  # removed once the model is saved
    g_plain, g_resumed = kgan.load_generator(plain["export"]), kgan.load_generator(export)
    for a, b in zip(g_plain.get_weights(), g_resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # a folder holding another pretraining's checkpoint is refused before any work
    os.makedirs(ckpt / "ckpt-000000002")
    (ckpt / "ckpt-000000002" / "meta.json").write_text("{}")
    with pytest.raises(experiment.ConfigError, match=r"other settings \(seed differ\)"):
        experiment.pretrain("dcgan", export=export, checkpoint_dir=str(ckpt), **{**args, "seed": 2})
