""".keras round trips with ``import kzoo`` as the only import, and regularizers through keras.saving.

Where the bug is about which modules were imported, the loading runs in a fresh
interpreter (the test process has imported all of kzoo already).
"""

import importlib
import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from conftest import BACKEND, REPO, to_np, weights64

import kzoo
from kzoo import serialization
from kzoo.core import Sum
from kzoo.ops import LinearDecay, StepDecay
from kzoo.regularizers import (RPT, VAT, AdversarialTraining, AmbientSmoothness, EntropyMinimization, InputMixup,
                               FixMatch, ManifoldMixup, MeanTeacher)


def _fresh(code, *args, timeout=300):
    """Run ``code`` in a new interpreter (same backend, this checkout first on the path); its last line, as JSON."""
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _data(n=48, dim=16, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, dim)).astype("float32"), (np.arange(n) % classes).astype("int32")


def _clf(dim=16, classes=3):
    inp = keras.Input((dim,))
    return keras.Model(inp, keras.layers.Dense(classes)(keras.layers.Dense(8, activation="tanh")(inp)))


# The loader in a fresh process: load, check, train on. argv: path, order of imports.
LOAD_AND_TRAIN = r"""
import json, sys
import numpy as np
path, order = sys.argv[1], sys.argv[2]
if order == "kzoo-first":
    import kzoo
    assert "keras" not in sys.modules, "import kzoo imported keras"
    import keras
elif order == "keras-first":
    import keras
    import kzoo
else:  # the command line's way: a numpy-only kzoo module, then keras imported by a kzoo module
    import kzoo.data
    assert "keras" not in sys.modules
    import kzoo.ops
    import keras
model = keras.models.load_model(path)
before = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
x = np.random.default_rng(1).uniform(0, 1, (48, 16)).astype("float32")
hist = model.fit(x, np.arange(48) % 3, batch_size=16, epochs=1, verbose=0)
after = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
reg = getattr(model, "regularizer", None)
print(json.dumps({"type": type(model).__name__, "regularizer": repr(reg), "losses": sorted(hist.history),
                  "lr": type(model.optimizer._learning_rate).__name__,
                  "changed": any(not np.allclose(a, b) for a, b in zip(before, after)),
                  "finite": bool(np.isfinite(hist.history["loss"][-1]))}))
"""


@pytest.mark.parametrize("order", ["kzoo-first", "keras-first", "cli"])
def test_a_regularized_model_with_a_sum_and_a_schedule_loads_in_a_fresh_process(tmp_path, order):
    x, y = _data()
    model = kzoo.Regularized(_clf(), VAT(epsilon=1.0) + EntropyMinimization(weight=0.5), seed=3)
    model.compile(optimizer=keras.optimizers.Adam(LinearDecay(1e-2, 100, 50)), metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "vat.keras")
    model.save(path)
    out = _fresh(LOAD_AND_TRAIN, path, order)
    assert out["type"] == "Regularized"
    assert out["regularizer"] == repr(model.regularizer)
    assert {"loss", "vat", "entmin", "accuracy"} <= set(out["losses"])
    assert out["lr"] == "LinearDecay" and out["changed"] and out["finite"]


def test_import_kzoo_does_not_import_keras_and_registers_when_keras_comes():
    out = _fresh(r"""
import json, sys
import kzoo
had = "keras" in sys.modules
import keras
reg = keras.saving.get_custom_objects()
print(json.dumps({"had": had, "names": sorted(k for k in reg if k.startswith("kzoo>")),
                  "kzoo_modules": sorted(m for m in sys.modules if m.startswith("kzoo.") and m != "kzoo.serialization")}))
""")
    assert out["had"] is False
    assert out["names"] == sorted(serialization.SERIALIZABLES)
    # registering imported nothing of kzoo but the standard-library-only backend choice (kzoo.extras, whose
    # errors are kzoo.errors'): stand-ins until first use
    assert set(out["kzoo_modules"]) <= {"kzoo.errors", "kzoo.extras"}


def test_the_table_of_serializables_matches_what_kzoo_registers():
    for module in set(serialization.SERIALIZABLES.values()):
        importlib.import_module(module)
    registered = {name: cls for name, cls in keras.saving.get_custom_objects().items() if name.startswith("kzoo>")}
    assert set(registered) == set(serialization.SERIALIZABLES)
    for name, cls in registered.items():
        assert isinstance(cls, type), f"{name} is still a stand-in after importing its module"
        assert keras.saving.get_registered_name(cls) == name


class MixinModel(kzoo.RegularizerMixin, keras.Model):
    pass


def test_a_regularizer_mixin_model_loads_without_recursion_and_trains_on(tmp_path):
    x, y = _data()
    inp = keras.Input((16,))
    model = MixinModel(inp, keras.layers.Dense(3)(keras.layers.Dense(8, activation="tanh")(inp)),
                        regularizer=VAT(epsilon=1.0, xi=1e-3), seed=5)
    model.compile(optimizer=keras.optimizers.SGD(StepDecay(0.1, [2, 4])))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "mixin.keras")
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects={"MixinModel": MixinModel})
    assert isinstance(loaded, MixinModel)
    assert repr(loaded.regularizer) == repr(model.regularizer)
    assert isinstance(loaded.optimizer._learning_rate, StepDecay)
    assert loaded.optimizer._learning_rate.get_config() == model.optimizer._learning_rate.get_config()
    np.testing.assert_array_equal(to_np(loaded._kzoo_seed.state), to_np(model._kzoo_seed.state))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    # both train on from the same state to the same weights (same batches, same restored random stream)
    for m in (model, loaded):
        m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(weights64(model), weights64(loaded)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _regularizers():
    return [VAT(epsilon=2.0, xi=1e-3, inputs="unlabeled"), RPT(epsilon=0.5), AdversarialTraining(epsilon=0.1),
            EntropyMinimization(weight=0.3), AmbientSmoothness(epsilon=3.0), InputMixup(alpha=0.5),
            ManifoldMixup(alpha=2.0, layers=["hidden"]), VAT(epsilon=1.0) + EntropyMinimization(),
            Sum([RPT(epsilon=1.0), AmbientSmoothness()]), VAT(epsilon=1.0, ema_teacher=0.99),
            ManifoldMixup(alpha=0.1, consistency=10.0, ema_teacher=0.999),
            MeanTeacher(weight=3.0, decay=0.999, augment={"shift": 2, "noise": 0.1}, inputs="unlabeled"),
            FixMatch(threshold=0.9, weak={"shift": 1}, strong={"shift": 4, "cutout": 2})]


@pytest.mark.parametrize("regularizer", _regularizers(), ids=repr)
def test_every_regularizer_round_trips_through_keras_saving(regularizer):
    config = keras.saving.serialize_keras_object(regularizer)
    json.dumps(config)  # what a .keras file holds
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is type(regularizer) and repr(again) == repr(regularizer)
    assert again.weights == regularizer.weights
    assert kzoo.core.deserialize(regularizer.serialize()).get_config() == regularizer.get_config()


def test_manifold_gan_and_lvat_round_trip_from_their_files(tmp_path):
    z = keras.Input((2,))
    generator = keras.Model(z, keras.layers.Dense(16, activation="sigmoid")(z), name="g")
    generator.save(str(tmp_path / "g.keras"))
    reg = kzoo.regularizers.ManifoldGAN(str(tmp_path / "g.keras"), epsilon=1.0)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(reg))
    assert again.generator_path == reg.generator_path and again.get_config() == reg.get_config()
    if BACKEND != "tensorflow":
        return  # LVAT needs TensorFlow Probability on the TensorFlow backend
    vae = kzoo.models.VAE(input_shape=(8, 8, 1), latent_dim=4, channels=8, num_bins=17, seed=0)
    vae(np.zeros((2, 8, 8, 1), "float32"))
    vae.save(str(tmp_path / "vae.keras"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an untrained transformer
        lvat = kzoo.regularizers.LVAT(str(tmp_path / "vae.keras"), epsilon=1.5)
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(lvat))
    assert type(again) is type(lvat) and again.get_config() == lvat.get_config()


def test_models_saved_by_kzoo_0_1_still_load():
    old = {"class_name": "kzoo.core.Sum", "config": {"parts": [
        {"class_name": "kzoo.vat.VAT", "config": {"epsilon": 2.0, "rampup_steps": 0}},
        {"class_name": "kzoo.vat.EntropyMinimization", "config": {"weight": 0.5, "rampup_steps": 0}}]}}
    reg = kzoo.core.deserialize(old)
    assert repr(reg) == repr(VAT(epsilon=2.0) + EntropyMinimization(weight=0.5))


class Smoothness(kzoo.Regularizer):
    """A user's own regularizer: mean squared logits on the unlabeled batch, weighted."""

    def __init__(self, weight=0.1, rampup_steps=0):
        super().__init__(rampup_steps=rampup_steps)
        self.weight = weight
        self.weights = {"smooth": weight}

    def terms(self, ctx):
        _, logits = ctx.inputs("all")
        return {"smooth": keras.ops.mean(keras.ops.square(logits))}

    def get_config(self):
        return {"weight": self.weight, **super().get_config()}


@keras.saving.register_keras_serializable(package="tests")
class RegisteredSmoothness(Smoothness):
    pass


@pytest.mark.parametrize("registered", [False, True], ids=["custom_objects", "registered"])
def test_a_users_own_regularizer_loads(tmp_path, registered):
    x, y = _data()
    reg = (RegisteredSmoothness if registered else Smoothness)(weight=0.25)
    model = kzoo.Regularized(_clf(), reg + VAT(epsilon=1.0))
    model.compile()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "own.keras")
    model.save(path)
    if not registered:
        with pytest.raises(TypeError, match="Smoothness"):
            keras.models.load_model(path)
    loaded = keras.models.load_model(path, custom_objects=None if registered else {"Smoothness": Smoothness})
    assert type(loaded.regularizer.parts[0]) is type(reg) and loaded.regularizer.parts[0].weight == 0.25
    hist = loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(hist.history["smooth"][-1])


def test_kzoo_evaluate_accepts_a_regularized_keras_file(tmp_path):
    digits = kzoo.data.load("digits")
    inp = keras.Input(digits.x_train.shape[1:])
    clf = keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(inp)))
    model = kzoo.Regularized(clf, VAT(epsilon=1.0) + EntropyMinimization())
    model.compile(optimizer=keras.optimizers.Adam(LinearDecay(1e-3, 10, 5)))
    model.fit(digits.x_train[:64], digits.y_train[:64], epochs=1, verbose=0)
    path = str(tmp_path / "vat.keras")
    model.save(path)
    code = ("import json, sys\nfrom kzoo.cli import main\nsys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": REPO, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code, "evaluate", path, "--limit", "50", "--backend", BACKEND],
                          capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[0])
    logits = model.predict(digits.x_test[:50], verbose=0)
    assert result["n"] == 50
    assert result["test_error"] == pytest.approx(float((logits.argmax(1) != digits.y_test[:50]).mean()))


# The other backends' loader: load the .keras file (compiled), predict (argv: path, inputs .npy)
LOAD_ON_ANOTHER_BACKEND = r"""
import json, sys
import numpy as np
import kzoo, keras
model = keras.models.load_model(sys.argv[1])
logits = np.asarray(keras.ops.convert_to_numpy(model.predict(np.load(sys.argv[2]), verbose=0)), np.float64)
print(json.dumps({"backend": keras.backend.backend(), "regularizer": repr(model.regularizer),
                  "optimizer": type(model.optimizer).__module__, "logits": logits.tolist()}))
"""


@pytest.mark.skipif(BACKEND != "torch", reason="trains on torch and loads on the other two (once, in the torch pass)")
def test_a_model_trained_on_torch_loads_on_jax_and_tensorflow_with_equal_predictions(tmp_path):
    x, y = _data()
    inp = keras.Input((16,))
    h = keras.layers.BatchNormalization()(keras.layers.Dense(8, activation="tanh")(inp))
    model = kzoo.Regularized(keras.Model(inp, keras.layers.Dense(3)(h)), VAT(epsilon=1.0) + EntropyMinimization(),
                             seed=3)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    path, inputs = str(tmp_path / "torch.keras"), str(tmp_path / "x.npy")
    model.save(path)
    np.save(inputs, x)
    want = np.asarray(model.predict(x, verbose=0), np.float64)
    procs = {}
    for backend in ("jax", "tensorflow"):  # both at once: each is a fresh interpreter
        env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        procs[backend] = subprocess.Popen([sys.executable, "-c", LOAD_ON_ANOTHER_BACKEND, path, inputs], env=env,
                                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for backend, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        out = json.loads(stdout.strip().splitlines()[-1])
        assert out["backend"] == backend and out["regularizer"] == repr(model.regularizer)
        # the optimizer is the loading backend's own (Keras' torch Adam names its torch module in the file)
        assert "torch" not in out["optimizer"], out["optimizer"]
        # the same weights, batch-norm statistics included (inference mode), to float32 rounding
        np.testing.assert_allclose(out["logits"], want, rtol=1e-5, atol=1e-5)
