"""kzoo.tuning.HyperModel on the user's own data and models, with keras-tuner's own tuners: ``tuner.search(x, y,
validation_data=..., callbacks=...)`` trains on what it is given, semi-supervised streams included; data the
classifier cannot take is refused in one line and stops the search."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo import tuning
from kzoo.hypermodel import UnusableDataError

keras_tuner = pytest.importorskip("keras_tuner")


def _data(n=60, d=5, k=3, seed=0):
    """Three well-separated Gaussian classes in 5 dimensions (not any built-in dataset's shape)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centers = 3.0 * rng.standard_normal((k, d))
    x = (centers[y] + 0.3 * rng.standard_normal((n, d))).astype("float32")
    return x, y.astype("int32")


def _builder(calls):
    def build(hp):
        calls.append(hp.Int("units", 4, 12, step=8))
        inp = keras.Input((5,))
        h = keras.layers.Dense(hp.get("units"), activation="relu")(inp)
        return keras.Model(inp, keras.layers.Dense(3)(h))

    return build


class _Counter(keras.callbacks.Callback):
    batches = epochs = 0
    models = set()

    def on_train_batch_end(self, batch, logs=None):
        type(self).batches += 1

    def on_epoch_end(self, epoch, logs=None):
        type(self).epochs += 1
        type(self).models.add(type(self.model).__name__)


def _np_error(model, x, y):
    logits = np.asarray(model.predict(x, verbose=0), np.float64)
    return float((logits.argmax(1) != y).mean())


def test_random_search_trains_the_users_model_on_the_users_arrays(tmp_path):
    x, y = _data()
    x_val, y_val = _data(30, seed=1)
    built = []
    hypermodel = tuning.HyperModel("vat", model=_builder(built), grid={"epsilon": [0.5, 2.0]})
    search = keras_tuner.RandomSearch(hypermodel, objective=tuning.objective(), max_trials=2,
                                      directory=str(tmp_path), project_name="p", seed=0)
    _Counter.batches = _Counter.epochs = 0
    _Counter.models = set()
    search.search(x, y, validation_data=(x_val, y_val), epochs=2, batch_size=20, callbacks=[_Counter()])
    trials = [t for t in search.oracle.trials.values() if t.status == "COMPLETED"]
    assert len(trials) == 2 and built  # the user's builder made every trial's model
    assert {t.hyperparameters.values["epsilon"] for t in trials} <= {0.5, 2.0}
    assert {"units"} < set(trials[0].hyperparameters.values)
    # the user's callback ran in every trial's fit: 2 epochs of 60/20 = 3 batches each
    assert _Counter.epochs == 2 * len(trials) and _Counter.batches == 2 * 3 * len(trials)
    assert _Counter.models == {"Regularized"}
    # the score is the validation error of the trained classifier, as numpy computes it from its logits
    best_trial = search.oracle.get_best_trials(1)[0]
    best = search.get_best_models(1)[0]
    assert best.input_shape == (None, 5)
    assert best_trial.score == pytest.approx(_np_error(best, x_val, y_val), abs=1e-9)
    assert {"val_nll", "val_loss", "val_accuracy"} <= set(best_trial.metrics.metrics)


def test_hyperband_on_a_semi_supervised_stream_with_a_fixed_model(tmp_path):
    x, y = _data()
    x_u, _ = _data(90, seed=2)
    x_val, y_val = _data(30, seed=1)
    inp = keras.Input((5,))
    fixed = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inp)))
    before = [w.copy() for w in fixed.get_weights()]
    hypermodel = tuning.HyperModel("vat", model=fixed, grid={"epsilon": [0.5, 1.0, 2.0]})
    search = keras_tuner.Hyperband(hypermodel, objective=tuning.objective(), max_epochs=2, factor=2,
                                   directory=str(tmp_path), project_name="p", seed=0)
    stream = kzoo.data.semi_supervised(x, y, x_u, batch_labeled=10, batch_unlabeled=20, num_classes=3)
    search.search(stream, validation_data=(x_val, y_val), steps_per_epoch=3)
    trials = [t for t in search.oracle.trials.values() if t.status == "COMPLETED"]
    assert trials and {t.hyperparameters.values["tuner/epochs"] for t in trials} <= {1, 2}
    assert all(0 <= t.score <= 1 for t in trials)
    for a, b in zip(fixed.get_weights(), before):  # every trial trained a clone; the user's model is untouched
        np.testing.assert_array_equal(a, b)
    best = search.get_best_models(1)[0]
    assert search.oracle.get_best_trials(1)[0].score == pytest.approx(_np_error(best, x_val, y_val), abs=1e-9)


def test_a_built_in_network_for_the_users_data():
    x, y = _data()
    x_val, y_val = _data(30, seed=1)
    hypermodel = tuning.HyperModel("vat", model="mlp", input_shape=(5,), num_classes=3, grid={"epsilon": [1.0]})
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert model.input_shape == (None, 5) and model.output_shape == (None, 3)
    result = hypermodel.fit(hp, model, x, y, validation_data=(x_val, y_val), epochs=1, batch_size=30)
    assert result["val_error"] == pytest.approx(_np_error(model, x_val, y_val), abs=1e-9)


@pytest.mark.parametrize("case", ["shape", "labels", "count", "no validation", "validation shape"])
def test_data_the_model_cannot_take_is_refused_in_one_line_and_stops_the_search(tmp_path, case):
    x, y = _data()
    x_val, y_val = _data(30, seed=1)
    kwargs = {"validation_data": (x_val, y_val)}
    expect = {"shape": r"x has examples of shape \(3,\) but the model takes inputs of shape \(5,\)",
              "labels": r"holds classes 0..6 but the model has 3 outputs",
              "count": "60 examples but 59 labels", "no validation": "give validation_data",
              "validation shape": r"validation_data has examples of shape \(4,\)"}[case]
    if case == "shape":
        x = np.zeros((50, 3), "float32")
        y = y[:50]
    elif case == "labels":
        y = (np.arange(60) % 7).astype("int32")
    elif case == "count":
        y = y[:59]
    elif case == "no validation":
        kwargs = {}
    else:
        kwargs = {"validation_data": (np.zeros((30, 4), "float32"), y_val)}
    hypermodel = tuning.HyperModel("vat", model=_builder([]), grid={"epsilon": [1.0, 2.0]})
    search = keras_tuner.RandomSearch(hypermodel, objective=tuning.objective(), max_trials=2,
                                      directory=str(tmp_path), project_name="p", seed=0)
    with pytest.raises(UnusableDataError, match=expect) as e:
        search.search(x, y, epochs=1, **kwargs)
    assert "\n" not in str(e.value) and isinstance(e.value, kzoo.errors.ConfigError)
    assert len(search.oracle.trials) == 1  # stopped at the first trial, not retried


def test_a_users_model_needs_the_users_data():
    hypermodel = tuning.HyperModel("vat", model=_builder([]), grid={"epsilon": [1.0]})
    hp = keras_tuner.HyperParameters()
    with pytest.raises(UnusableDataError, match=r"tuner.search\(x, y, validation_data"):
        hypermodel.fit(hp, hypermodel.build(hp))
    with pytest.raises(kzoo.errors.ConfigError, match="input_shape and num_classes together"):
        tuning.HyperModel("vat", input_shape=(5,), grid={"epsilon": [1.0]})
