"""Tests for kzoo.core: the regularized train step, the wrapper and the mixin."""

import math

import keras
import numpy as np
import pytest
from conftest import bn_model, np_ce, np_entropy, tanh_mlp, tanh_mlp_np, to_np, weights64

import kzoo
from kzoo.core import Sum
from kzoo.regularizers import RPT, VAT, AdversarialTraining, EntropyMinimization


def _batch(n_l=8, n_u=24, dim=16, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x_l = rng.uniform(0, 1, (n_l, dim)).astype("float32")
    x_u = rng.uniform(0, 1, (n_u, dim)).astype("float32")
    y_l = rng.integers(0, classes, n_l).astype("int32")
    return x_l, y_l, x_u


def _changed(before, model):
    return any(not np.allclose(a, b) for a, b in zip(before, weights64(model)))


# ---------------------------------------------------------------------------
# fit on semi-supervised streams and on plain arrays
# ---------------------------------------------------------------------------


def test_fit_semi_supervised_stream_with_different_batch_sizes(digits, small_mlp):
    stream = kzoo.data.semi_supervised(digits["x_l"], digits["y_l"], digits["x_u"],
                                       batch_labeled=8, batch_unlabeled=24, seed=0)
    model = kzoo.Regularized(small_mlp, VAT(epsilon=1.0), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    before = weights64(small_mlp)
    hist = model.fit(stream, steps_per_epoch=4, epochs=3, verbose=0)
    assert {"loss", "vat", "accuracy"} <= set(hist.history)
    assert len(hist.history["loss"]) == 3
    assert all(np.isfinite(v) for v in hist.history["loss"] + hist.history["vat"])
    assert all(v > 0 for v in hist.history["vat"])
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert _changed(before, small_mlp)
    assert int(to_np(model.optimizer.iterations)) == 12


def test_fit_supervised_arrays(digits, small_mlp):
    model = kzoo.Regularized(small_mlp, VAT(epsilon=1.0), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    before = weights64(small_mlp)
    hist = model.fit(digits["x_l"], digits["y_l"], batch_size=16, epochs=3, verbose=0,
                     validation_data=(digits["x_test"], digits["y_test"]))
    assert set(hist.history) == {"loss", "vat", "accuracy", "val_loss", "val_accuracy"}
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert _changed(before, small_mlp)
    # 40 examples in batches of 16 -> 3 steps per epoch
    assert int(to_np(model.optimizer.iterations)) == 9


def test_without_regularizer_trains_as_supervised(seeded):
    clf = tanh_mlp(16, 8, 3)
    x_l, y_l, _ = _batch()
    f64 = tanh_mlp_np(clf)
    model = kzoo.Regularized(clf)
    model.compile(optimizer="sgd")
    logs = model.train_on_batch(x_l, y_l, return_dict=True)
    assert set(logs) == {"loss"}
    np.testing.assert_allclose(logs["loss"], np.mean(np_ce(y_l, f64(x_l))), rtol=1e-5)


# ---------------------------------------------------------------------------
# Batch norm: only the clean pass updates the statistics, exactly once
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reg",
    [
        lambda: VAT(epsilon=2.0, power_iterations=2),
        lambda: VAT(epsilon=2.0, hvp="exact"),
        lambda: RPT(epsilon=2.0) + AdversarialTraining(epsilon=0.5),
    ],
    ids=["vat_k2", "vat_exact", "rpt+adv"],
)
def test_batch_norm_statistics_updated_once_from_clean_pass(seeded, reg):
    clf = bn_model(momentum=0.5)
    x_l, y_l, x_u = _batch(8, 24)
    pre = keras.Model(clf.input, clf.get_layer("pre").output)
    acts = to_np(pre(np.concatenate([x_l, x_u]))).astype(np.float64)
    bn = clf.get_layer("bn")
    old_mean = to_np(bn.moving_mean).astype(np.float64)
    old_var = to_np(bn.moving_variance).astype(np.float64)
    model = kzoo.Regularized(clf, reg(), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    logs = model.train_on_batch({"labeled": x_l, "unlabeled": x_u}, y_l, return_dict=True)
    assert np.isfinite(logs["loss"])
    new_mean = to_np(bn.moving_mean).astype(np.float64)
    new_var = to_np(bn.moving_variance).astype(np.float64)
    # one update, over labeled + unlabeled, from the un-perturbed pre-BN activations
    np.testing.assert_allclose(new_mean, 0.5 * old_mean + 0.5 * acts.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new_var, 0.5 * old_var + 0.5 * acts.var(0), rtol=1e-4, atol=1e-5)


def test_batch_norm_supervised_batch(seeded):
    clf = bn_model(momentum=0.5)
    x_l, y_l, _ = _batch(16, 1)
    acts = to_np(keras.Model(clf.input, clf.get_layer("pre").output)(x_l)).astype(np.float64)
    model = kzoo.Regularized(clf, VAT(epsilon=2.0), seed=0)
    model.compile(optimizer="sgd")
    model.train_on_batch(x_l, y_l)
    bn = clf.get_layer("bn")
    np.testing.assert_allclose(to_np(bn.moving_mean), 0.5 * acts.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_np(bn.moving_variance), 0.5 + 0.5 * acts.var(0),
                               rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# evaluate / predict are those of the plain classifier
# ---------------------------------------------------------------------------


def test_evaluate_and_predict_match_plain_classifier(digits, small_mlp):
    model = kzoo.Regularized(small_mlp, VAT(epsilon=1.0), seed=0)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(digits["x_l"], digits["y_l"], batch_size=20, epochs=1, verbose=0)
    x, y = digits["x_test"], digits["y_test"]
    np.testing.assert_allclose(model.predict(x, verbose=0), small_mlp.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
    small_mlp.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    ours = model.evaluate(x, y, verbose=0, return_dict=True)
    plain = small_mlp.evaluate(x, y, verbose=0, return_dict=True)
    assert set(ours) == {"loss", "accuracy"}  # no regularizer term at evaluation
    assert len(model.evaluate(x, y, verbose=0)) == 2
    np.testing.assert_allclose(ours["loss"], plain["loss"], rtol=1e-5)
    np.testing.assert_allclose(ours["accuracy"], plain["accuracy"])
    # and both are the numpy values of the inference-mode logits
    logits = small_mlp.predict(x, verbose=0).astype(np.float64)
    np.testing.assert_allclose(ours["loss"], np.mean(np_ce(y, logits)), rtol=1e-4)
    np.testing.assert_allclose(ours["accuracy"], np.mean(logits.argmax(1) == y), atol=1e-6)


# ---------------------------------------------------------------------------
# The mixin: functional and subclassed models
# ---------------------------------------------------------------------------


class FunctionalVATModel(kzoo.RegularizerMixin, keras.Model):
    pass


class SubclassedVATModel(kzoo.RegularizerMixin, keras.Model):
    def __init__(self, num_classes=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.out = keras.layers.Dense(num_classes)

    def call(self, x, training=None):
        return self.out(self.hidden(x))


@pytest.mark.parametrize("kind", ["functional", "subclassed"])
def test_mixin_models_train_and_log_vat(seeded, kind):
    if kind == "functional":
        inp = keras.Input((16,))
        h = keras.layers.Dense(8, activation="tanh")(inp)
        model = FunctionalVATModel(inp, keras.layers.Dense(3)(h), regularizer=VAT(epsilon=1.0),
                                   seed=1)
    else:
        model = SubclassedVATModel(regularizer=VAT(epsilon=1.0), seed=1)
    assert model.network is model
    x_l, y_l, x_u = _batch(8, 24)
    model.compile(optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"])
    hist = model.fit(kzoo.data.semi_supervised(x_l, y_l, x_u, batch_labeled=8,
                                               batch_unlabeled=24, seed=0),
                     steps_per_epoch=2, epochs=2, verbose=0)
    assert {"loss", "vat", "accuracy"} <= set(hist.history)
    assert all(v > 0 for v in hist.history["vat"])
    assert int(to_np(model.optimizer.iterations)) == 4
    out = model.predict(x_l, verbose=0)
    assert out.shape == (8, 3)


def test_mixin_set_regularizer_before_compile_only(seeded):
    model = SubclassedVATModel()
    model.set_regularizer(EntropyMinimization(weight=0.5))
    model.compile(optimizer="sgd")
    x_l, y_l, x_u = _batch()
    logs = model.train_on_batch({"labeled": x_l, "unlabeled": x_u}, y_l, return_dict=True)
    assert set(logs) == {"loss", "entmin"}
    with pytest.raises(RuntimeError, match="before compile"):
        model.set_regularizer(VAT())


# ---------------------------------------------------------------------------
# Sums, weights and the ramp-up
# ---------------------------------------------------------------------------


def _numpy_parts(clf, x_l, y_l, x_u):
    f64 = tanh_mlp_np(clf)
    ce = np.mean(np_ce(y_l, f64(x_l)))
    ent = np.mean(np_entropy(f64(np.concatenate([x_l, x_u]))))
    return ce, ent


@pytest.mark.parametrize(
    "vat_ramp, ent_ramp, step",
    [(0, 0, 0), (1000, 1000, 0), (1000, 0, 0), (1000, 1000, 500)],
)
def test_sum_total_loss_is_weighted_sum(seeded, vat_ramp, ent_ramp, step):
    clf = tanh_mlp(16, 8, 3)
    x_l, y_l, x_u = _batch(8, 24)
    ce, ent = _numpy_parts(clf, x_l, y_l, x_u)
    alpha, w = 2.0, 0.5
    reg = VAT(epsilon=1.0, alpha=alpha, rampup_steps=vat_ramp) + EntropyMinimization(
        weight=w, rampup_steps=ent_ramp)
    assert isinstance(reg, Sum) and reg.loss_names == ("vat", "entmin")
    model = kzoo.Regularized(clf, reg, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    if step:
        model.optimizer.iterations.assign(step)
    logs = model.train_on_batch({"labeled": x_l, "unlabeled": x_u}, y_l, return_dict=True)
    assert set(logs) == {"loss", "vat", "entmin"}
    # logged terms are unweighted; entmin is the numpy mean entropy over l + u
    np.testing.assert_allclose(logs["entmin"], ent, rtol=1e-5)
    assert logs["vat"] > 0

    def ramp(n):
        return 1.0 if n == 0 else math.exp(-5.0 * (1.0 - min(step / n, 1.0)) ** 2)

    expect = ce + ramp(vat_ramp) * alpha * logs["vat"] + ramp(ent_ramp) * w * ent
    np.testing.assert_allclose(logs["loss"], expect, rtol=1e-5)
    # the regularizers matter: the supervised part alone is far from the total
    if vat_ramp == 0:
        assert logs["loss"] - ce > 0.1


def test_rampup_scales_regularizer_by_exp_minus_5_at_step_0(seeded):
    clf = tanh_mlp(16, 8, 3)
    x_l, y_l, x_u = _batch(8, 24)
    ce, ent = _numpy_parts(clf, x_l, y_l, x_u)
    model = kzoo.Regularized(clf, EntropyMinimization(weight=3.0, rampup_steps=1000))
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    logs = model.train_on_batch({"labeled": x_l, "unlabeled": x_u}, y_l, return_dict=True)
    np.testing.assert_allclose(logs["loss"] - ce, math.exp(-5.0) * 3.0 * ent, rtol=1e-3)


def test_sum_combinations_and_errors():
    s = VAT() + EntropyMinimization() + RPT()
    assert [type(p).__name__ for p in s.parts] == ["VAT", "EntropyMinimization", "RPT"]
    assert s.weights == {"vat": 1.0, "entmin": 1.0, "rpt": 1.0}
    assert "VAT(" in repr(s) and " + " in repr(s)
    with pytest.raises(ValueError, match="distinct"):
        VAT() + VAT(epsilon=2.0)
    with pytest.raises(TypeError):
        VAT() + 1.0
    with pytest.raises(TypeError):
        Sum([VAT(), "entmin"])


def test_seed_makes_steps_reproducible(seeded):
    x_l, y_l, x_u = _batch(8, 24)
    losses = []
    for seed in (5, 5, 6):
        keras.utils.set_random_seed(0)
        model = kzoo.Regularized(tanh_mlp(16, 8, 3), RPT(epsilon=3.0), seed=seed)
        model.compile(optimizer="sgd")
        losses.append(model.train_on_batch({"labeled": x_l, "unlabeled": x_u}, y_l,
                                           return_dict=True)["rpt"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert losses[0] != pytest.approx(losses[2], rel=1e-3)


# ---------------------------------------------------------------------------
# compile and argument checks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_compile_string_crossentropy_is_from_logits(seeded, name):
    clf = tanh_mlp(16, 8, 3)
    x_l, y_l, _ = _batch(8)
    logits = tanh_mlp_np(clf)(x_l)
    model = kzoo.Regularized(clf, VAT())
    model.compile(optimizer="sgd", loss=name)
    assert model.loss.from_logits is True
    y = y_l if name.startswith("sparse") else np.eye(3, dtype="float32")[y_l]
    got = model.evaluate(x_l, y, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(got, np.mean(np_ce(y_l, logits)), rtol=1e-5)


def test_default_loss_is_crossentropy_on_logits(seeded):
    model = kzoo.Regularized(tanh_mlp(16, 8, 3), VAT())
    model.compile()
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.loss.from_logits is True


def test_type_errors():
    clf = tanh_mlp(4, 4, 2)
    with pytest.raises(TypeError, match="keras.Model"):
        kzoo.Regularized("mlp", VAT())
    with pytest.raises(TypeError, match="keras.Model"):
        kzoo.Regularized(keras.layers.Dense(2), VAT())
    with pytest.raises(TypeError, match="regularizer"):
        kzoo.Regularized(clf, "vat")
    with pytest.raises(TypeError, match="regularizer"):
        kzoo.Regularized(clf, VAT)  # the class, not an instance
    with pytest.raises(TypeError, match="regularizer"):
        kzoo.Regularized(clf, keras.regularizers.L2(0.1))
    with pytest.raises(TypeError, match="regularizer"):
        SubclassedVATModel(regularizer=lambda ctx: 0.0)


def test_rampup_argument_checked():
    with pytest.raises(ValueError, match="rampup_steps"):
        kzoo.Regularizer(rampup_steps=-1)
    with pytest.raises(ValueError, match="rampup_steps"):
        kzoo.Regularizer(rampup_steps=None)
    with pytest.raises(NotImplementedError):
        kzoo.Regularizer().terms(None)


@pytest.mark.parametrize("policy", ["mixed_bfloat16"])
def test_vat_trains_under_mixed_precision_with_float32_losses(policy, digits):
    """The network computes in bfloat16; logits, divergences and the loss stay float32."""
    import kzoo

    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        clf = kzoo.models.mlp(input_shape=(64,), num_classes=10, hidden=(16,))
        assert clf.layers[1].compute_dtype == "bfloat16"
        model = kzoo.Regularized(clf, kzoo.regularizers.VAT(epsilon=1.0), seed=0)
        model.compile(optimizer="adam")
        stream = kzoo.data.semi_supervised(digits["x_l"], digits["y_l"], digits["x_u"], batch_labeled=8,
                                           batch_unlabeled=16, seed=0)
        logs = model.fit(stream, steps_per_epoch=3, epochs=1, verbose=0).history
        assert np.isfinite(logs["loss"][0]) and np.isfinite(logs["vat"][0]) and logs["vat"][0] > 0
    finally:
        keras.config.set_dtype_policy("float32")
class _Constant(kzoo.Regularizer):
    """A regularizer whose term is a constant and which rescales the clean loss."""

    def __init__(self, supervised_weight, value=0.25, name="const"):
        super().__init__()
        self.supervised_weight = supervised_weight
        self.value, self.name = value, name
        self.weights = {name: 1.0}
        self.checked = []

    def terms(self, ctx):
        return {self.name: keras.ops.convert_to_tensor(self.value)}

    def check_network(self, network):
        self.checked.append(network)


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_supervised_weight_scales_the_clean_loss_and_keeps_model_losses(weight):
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    out = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.1), name="logits")(inp)
    clf = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.arange(8) % 3
    reg = _Constant(weight)
    net = kzoo.Regularized(clf, reg)
    assert reg.checked == [clf]  # check_network runs at construction
    net.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = net.train_on_batch(x, y, return_dict=True)
    ce = float(np.mean(np_ce(y, to_np(clf(x)))))
    decay = 0.1 * float(np.sum(to_np(clf.get_layer("logits").kernel) ** 2))
    np.testing.assert_allclose(logs["loss"], weight * ce + decay + 0.25, rtol=1e-5)
    # a sum multiplies its parts' weights
    both = _Constant(weight) + _Constant(0.5, name="other")
    assert both.supervised_weight == weight * 0.5


# ---------------------------------------------------------------------------
# saving the wrapper: model.save / load_model resumes training exactly
# ---------------------------------------------------------------------------


def test_saved_regularized_model_resumes_training_exactly(digits, tmp_path):
    """Saving keeps classifier, regularizer, optimizer state and the random stream.

    The loaded model and the original, trained on the same next batches, end
    with the same weights: VAT's random directions come from the restored seed
    state (a fresh one would draw other directions and give other weights).
    """
    stream = kzoo.data.semi_supervised(digits["x_l"], digits["y_l"], digits["x_u"], batch_labeled=8,
                                       batch_unlabeled=16, seed=0, as_tf=False)
    batches = [next(stream) for _ in range(5)]

    def feed(bs):
        yield from bs
    keras.utils.set_random_seed(0)
    clf = kzoo.models.mlp(input_shape=(64,), num_classes=10, hidden=(16,))
    model = kzoo.Regularized(clf, VAT(epsilon=2.0, xi=1e-3) + EntropyMinimization(weight=0.5), seed=7)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    model.fit(feed(batches[:3]), steps_per_epoch=3, epochs=1, verbose=0)
    path = str(tmp_path / "regularized.keras")
    model.save(path)

    loaded = keras.models.load_model(path)
    assert isinstance(loaded, kzoo.Regularized)
    assert isinstance(loaded.regularizer, Sum)
    assert [p.get_config() for p in loaded.regularizer.parts] == [p.get_config() for p in model.regularizer.parts]
    assert int(to_np(loaded.optimizer.iterations)) == 3
    np.testing.assert_array_equal(to_np(loaded._kzoo_seed.state), to_np(model._kzoo_seed.state))
    np.testing.assert_allclose(loaded.predict(digits["x_test"], verbose=0),
                               model.predict(digits["x_test"], verbose=0), atol=1e-6)

    for m in (model, loaded):
        m.fit(feed(batches[3:]), steps_per_epoch=2, epochs=1, verbose=0)
    for a, b in zip(weights64(model.network), weights64(loaded.network)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_saving_needs_a_generator_path_for_manifold_gan(tmp_path, small_mlp):
    z = keras.Input((2,))
    generator = keras.Model(z, keras.layers.Dense(64, activation="sigmoid")(z), name="g")
    model = kzoo.Regularized(small_mlp, kzoo.regularizers.ManifoldGAN(generator, epsilon=1.0))
    model.compile()
    path = tmp_path / "m.keras"
    with pytest.raises(TypeError, match="in-memory generator.*kzoo pretrain dcgan"):
        model.save(str(path))
    assert not path.exists()
    # built from the generator's file, the model saves and loads with its regularizer
    generator.save(str(tmp_path / "g.keras"))
    model = kzoo.Regularized(small_mlp, kzoo.regularizers.ManifoldGAN(str(tmp_path / "g.keras"), epsilon=1.0))
    model.compile()
    model.save(str(path))
    loaded = keras.models.load_model(str(path))
    assert loaded.regularizer.generator_path == str(tmp_path / "g.keras")
    assert loaded.regularizer.epsilon == 1.0


@pytest.mark.skipif(kzoo.backend.name() != "jax", reason="Keras' JAX fit loop")
def test_jax_fit_state_is_stored_untracked_and_callbacks_still_sync_it(digits, small_mlp):
    """fit stores each step's state on the model; kzoo keeps it a plain dict (no per-step tracking walk),
    and a callback that syncs the state mid-fit still sees the weights of the steps done so far."""
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                seen["type"] = type(self.model._jax_state)
                kzoo.backend.sync_model_state(self.model)
                seen["weights"] = weights64(small_mlp)
                seen["steps"] = int(to_np(self.model.optimizer.iterations))

    model = kzoo.Regularized(small_mlp, VAT(epsilon=1.0), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = weights64(small_mlp)
    model.fit(digits["x_l"], digits["y_l"], batch_size=16, epochs=1, verbose=0, callbacks=[Probe()])
    assert seen["type"] is dict
    assert seen["steps"] == 2 and _changed(before, small_mlp)
    assert any(not np.allclose(a, b) for a, b in zip(seen["weights"], before))
    assert any(not np.allclose(a, b) for a, b in zip(seen["weights"], weights64(small_mlp)))  # one more step
