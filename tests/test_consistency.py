"""The EMA teacher (kzoo.passes), Mean Teacher and FixMatch (kzoo.consistency), VAT's ema_teacher option:
loss values against float64 numpy, the EMA math, tracking and saving, batch-norm statistics, training."""

import keras
import numpy as np
import pytest
from conftest import bn_model, np_ce, np_kl, np_softmax, tanh_mlp, tanh_mlp_np, to_np, weights64

import kzoo
from kzoo.core import StepContext
from kzoo.errors import InvalidArgumentError, UsageError
from kzoo.passes import EMATeacher, ema_decay_at
from kzoo.regularizers import VAT, FixMatch, ManifoldMixup, MeanTeacher


def _ctx(model, x_l, x_u=None, teacher=None, seed=3):
    y_l = keras.ops.convert_to_tensor(np.arange(len(x_l)) % 3)
    x_l = keras.ops.convert_to_tensor(x_l)
    logits_u = None
    if x_u is not None:
        x_u = keras.ops.convert_to_tensor(x_u)
        logits_u = model(x_u)
    return StepContext(model, x_l, y_l, x_u, model(x_l), logits_u, keras.random.SeedGenerator(seed),
                       teacher=teacher)


def _perturbed_teacher(model, decay=0.99, scale=0.3, seed=0):
    """An EMATeacher of ``model`` whose shadows are set away from the model's weights; its numpy twin."""
    teacher = EMATeacher(model, decay)
    rng = np.random.default_rng(seed)
    for shadow in teacher.shadows:
        shadow.assign(to_np(shadow) + scale * rng.normal(size=shadow.shape).astype("float32"))
    w1, b1, w2, b2 = [to_np(s).astype(np.float64) for s in teacher.shadows]
    return teacher, (lambda x: np.tanh(np.asarray(x, np.float64) @ w1 + b1) @ w2 + b2)


def _data(seed=1, n=12, d=16):
    return np.random.default_rng(seed).uniform(0, 1, (n, d)).astype("float32")


# ---------------------------------------------------------------------------
# The EMA teacher
# ---------------------------------------------------------------------------


def test_ema_update_matches_float64_recursion(seeded):
    model = tanh_mlp(16, 8, 3)
    teacher = EMATeacher(model, decay=0.9)
    expect = weights64(model)
    rng = np.random.default_rng(0)
    for step in range(1, 6):  # the student moves, then the teacher follows
        for v in model.trainable_variables:
            v.assign(to_np(v) + rng.normal(size=v.shape).astype("float32"))
        teacher.update(model, step)
        d = min(0.9, 1.0 - 1.0 / (step + 1))
        expect = [d * e + (1 - d) * w for e, w in zip(expect, weights64(model))]
    for shadow, e in zip(teacher.shadows, expect):
        np.testing.assert_allclose(to_np(shadow), e, rtol=1e-5, atol=1e-6)
    assert float(to_np(ema_decay_at(0.99, 1))) == pytest.approx(0.5)
    assert float(to_np(ema_decay_at(0.99, 10_000))) == pytest.approx(0.99)


def test_teacher_logits_are_the_shadow_network(seeded):
    model = tanh_mlp(16, 8, 3)
    teacher, f64 = _perturbed_teacher(model)
    x = _data()
    np.testing.assert_allclose(to_np(teacher.logits(model, keras.ops.convert_to_tensor(x))), f64(x),
                               rtol=1e-4, atol=1e-5)


def test_teacher_is_tracked_non_trainable_and_saved(seeded, tmp_path):
    clf = kzoo.models.mlp(input_shape=(16,), num_classes=3, hidden=(8,))
    model = kzoo.Regularized(clf, MeanTeacher(decay=0.99), seed=0)
    teacher = model.ema_teacher
    assert len(teacher.shadows) == len(clf.trainable_variables) + 2  # + batch norm's moving statistics
    ids = {id(v) for v in model.non_trainable_variables}
    assert all(id(s) in ids for s in teacher.shadows)
    assert not any(id(s) in {id(v) for v in model.trainable_variables} for s in teacher.shadows)
    model.compile(optimizer="adam")
    x = _data(n=16)
    model.fit(kzoo.data.semi_supervised(x[:8], np.arange(8) % 3, x[8:], batch_labeled=4, batch_unlabeled=4,
                                        num_classes=3), steps_per_epoch=3, epochs=1, verbose=0)
    shadows = [to_np(s) for s in teacher.shadows]
    assert not np.allclose(shadows[0], to_np(clf.trainable_variables[0]))  # a moving average, not a copy
    path = str(tmp_path / "mt.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(shadows, loaded.ema_teacher.shadows):
        np.testing.assert_array_equal(a, to_np(b))
    assert loaded.regularizer.get_config() == model.regularizer.get_config()


def test_teacher_follows_the_optimizer_steps(seeded):
    """After each optimizer step the teacher is d·teacher + (1 - d)·(the new weights)."""
    model = kzoo.Regularized(tanh_mlp(16, 8, 3), MeanTeacher(decay=0.5, weight=0.0), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = _data(n=8), np.arange(8) % 3
    before = [to_np(s).astype(np.float64) for s in model.ema_teacher.shadows]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    d = min(0.5, 1 - 1 / 2)
    for b, s, w in zip(before, model.ema_teacher.shadows, weights64(model.classifier)):
        np.testing.assert_allclose(to_np(s), d * b + (1 - d) * w, rtol=1e-5, atol=1e-6)


def test_decays_are_checked_and_shared():
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1\)"):
        VAT(ema_teacher=1.0)
    with pytest.raises(InvalidArgumentError, match="same ema_teacher"):
        VAT(ema_teacher=0.9) + MeanTeacher(decay=0.99)
    assert (VAT(ema_teacher=0.99) + MeanTeacher(decay=0.99)).ema_teacher == 0.99
    assert VAT().ema_teacher is None and "ema_teacher" not in VAT().get_config()


def test_reading_a_missing_teacher_says_how_to_get_one(seeded):
    model = tanh_mlp(16, 8, 3)
    with pytest.raises(UsageError, match="EMA teacher"):
        MeanTeacher().terms(_ctx(model, _data()))


# ---------------------------------------------------------------------------
# Loss values against float64 numpy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("inputs", ["all", "unlabeled"])
def test_mean_teacher_term_is_numpy_mse_of_softmaxes(seeded, inputs):
    model = tanh_mlp(16, 8, 3)
    teacher, teacher64 = _perturbed_teacher(model)
    x = _data()
    ctx = _ctx(model, x[:4], x[4:], teacher)
    value = float(to_np(MeanTeacher(inputs=inputs).terms(ctx)["mean_teacher"]))
    xs = x if inputs == "all" else x[4:]
    expect = np.mean(np.mean((np_softmax(tanh_mlp_np(model)(xs)) - np_softmax(teacher64(xs))) ** 2, axis=-1))
    assert expect > 1e-5
    np.testing.assert_allclose(value, expect, rtol=1e-3)


def test_fixmatch_pseudo_labels_mask_and_loss_against_numpy(seeded):
    model = tanh_mlp(16, 8, 3)
    for v in model.trainable_variables:  # confident predictions
        v.assign(to_np(v) * 4.0)
    x = _data(n=32)
    f64 = tanh_mlp_np(model)
    probs = np_softmax(f64(x[8:]))
    tau = float(np.median(probs.max(axis=1)))  # about half the batch passes
    reg = FixMatch(threshold=tau, weight=1.0, weak={}, strong={})  # identity augmentations: checkable in numpy
    out = {k: float(to_np(v)) for k, v in reg.terms(_ctx(model, x[:8], x[8:])).items()}
    mask = probs.max(axis=1) >= tau
    labels = probs.argmax(axis=1)
    assert 0 < mask.mean() < 1
    np.testing.assert_allclose(out["fixmatch_mask"], mask.mean(), rtol=1e-6)
    np.testing.assert_allclose(out["fixmatch"], np.mean(mask * np_ce(labels, f64(x[8:]))), rtol=1e-4)
    labels_k, mask_k = reg.pseudo_labels(keras.ops.convert_to_tensor(f64(x[8:]).astype("float32")))
    np.testing.assert_array_equal(to_np(labels_k), labels)
    np.testing.assert_array_equal(to_np(mask_k), mask.astype("float32"))


def test_fixmatch_gradient_flows_through_the_strong_pass_only(seeded):
    model = tanh_mlp(16, 8, 3)
    x = keras.ops.convert_to_tensor(_data(n=8))
    reg = FixMatch(threshold=0.0, weak={}, strong={})
    # d/dx of the loss at the weak input is zero: the pseudo-labels are constants
    g = kzoo.backend.grad_wrt(lambda xu: reg.terms(StepContext(model, x, None, xu, model(x), model(xu),
                                                               keras.random.SeedGenerator(0)))["fixmatch"], x)
    assert np.abs(to_np(g)).max() > 0  # through the strong pass (same input here)
    labels, _ = reg.pseudo_labels(model(x))
    np.testing.assert_array_equal(to_np(labels), np_softmax(to_np(model(x))).argmax(axis=1))


def test_vat_with_ema_teacher_target_is_numpy_kl(seeded):
    model = tanh_mlp(16, 8, 2)
    teacher, teacher64 = _perturbed_teacher(model)
    x = _data()
    reg = VAT(epsilon=0.5, ema_teacher=0.99)
    rng = np.random.default_rng(5)
    d = rng.normal(size=x.shape)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    reg.adversarial_direction = lambda ctx, xx, logits: keras.ops.convert_to_tensor(d.astype("float32"))
    value = float(to_np(reg.terms(_ctx(model, x[:4], x[4:], teacher))["vat"]))
    expect = np.mean(np_kl(teacher64(x), tanh_mlp_np(model)(x + 0.5 * d)))
    np.testing.assert_allclose(value, expect, rtol=1e-3)


def test_mixup_consistency_targets_from_the_teacher(seeded):
    """ManifoldMixup(ema_teacher=...): the pseudo-targets of the unlabeled batch are the teacher's."""
    model = tanh_mlp(16, 8, 3)
    teacher, teacher64 = _perturbed_teacher(model)
    x = _data()
    reg = ManifoldMixup(alpha=1.0, layers=["input"], consistency=1.0, ema_teacher=0.99)
    reg.sample = lambda ctx, n, alpha: (keras.ops.convert_to_tensor(1.0), keras.ops.arange(n, dtype="int32"), 0)
    value = float(to_np(reg.terms(_ctx(model, x[:4], x[4:], teacher))["mixup_consistency"]))
    # λ = 1: no mixing; the MSE between the student's and the teacher's softmax on the unlabeled batch
    expect = np.mean((np_softmax(tanh_mlp_np(model)(x[4:])) - np_softmax(teacher64(x[4:]))) ** 2)
    assert expect > 1e-5
    np.testing.assert_allclose(value, expect, rtol=1e-3)


# ---------------------------------------------------------------------------
# Batch norm, training
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: MeanTeacher(decay=0.9, augment={"noise": 0.5, "shift": 2}),
                                  lambda: FixMatch(threshold=0.0, strong={"noise": 0.5, "scale": 0.5}),
                                  lambda: VAT(epsilon=2.0, ema_teacher=0.9)],
                         ids=["mean-teacher", "fixmatch", "vat-ema"])
def test_batch_norm_statistics_come_from_the_clean_pass_only(seeded, make):
    """The augmented, strong and teacher passes leave the moving statistics as a supervised step does."""
    x = _data(n=24) * 3.0
    y = np.arange(8) % 3
    stats = []
    for reg in (None, make()):
        keras.utils.set_random_seed(0)
        clf = bn_model(16, 8, 3)
        model = kzoo.Regularized(clf, reg, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        batch = ({"labeled": x[:8], "unlabeled": x[8:]}, y)

        def stream():
            yield batch

        model.fit(stream(), steps_per_epoch=1, epochs=1, verbose=0)
        bn = clf.get_layer("bn")
        stats.append((to_np(bn.moving_mean), to_np(bn.moving_variance)))
    np.testing.assert_allclose(stats[1][0], stats[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[1][1], stats[0][1], rtol=1e-5, atol=1e-6)
    assert np.abs(stats[0][0]).max() > 1e-3  # the clean pass did update them


@pytest.mark.parametrize("method,hp", [("mean-teacher", {"mt_consistency": 1.0}),
                                       ("fixmatch", {"fixmatch_threshold": 0.5})])
def test_training_smoke_on_digits(method, hp):
    result = kzoo.experiment.run(method=method, dataset="digits", labels=50, steps=6, batch_labeled=16,
                                 batch_unlabeled=32, verbose=0, hyperparameters=hp)
    assert np.isfinite(result["test_error"]) and result["train_steps"] == 6


def test_registry_entries_and_bad_settings():
    from kzoo import methods

    mt, fm = methods.get("mean-teacher"), methods.get("fixmatch")
    assert mt.hyperparameter("ema_teacher").grid == (0.99, 0.999)
    assert fm.resolve({})["fixmatch_threshold"] == 0.95 and fm.is_semi_supervised(fm.resolve({}))
    with pytest.raises(InvalidArgumentError, match="ema_teacher"):
        mt.resolve({"ema_teacher": 1.0})
    with pytest.raises(kzoo.errors.ConfigError, match="shorter"):
        kzoo.experiment.run(method="fixmatch", dataset="digits", labels=50, steps=2, verbose=0,
                            hyperparameters={"strong_cutout": 8})


def test_sequences_train_with_augmentations(seeded):
    """(batch, 40, 1) sequences, a Conv1D classifier with batch norm: both baselines take a few steps."""
    inp = keras.Input((40, 1))
    h = keras.layers.Conv1D(4, 5, strides=2, name="conv")(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU()(h)
    out = keras.layers.Dense(10)(keras.layers.Flatten()(h))
    x = np.random.default_rng(0).normal(size=(48, 40, 1)).astype("float32")
    for reg in (MeanTeacher(decay=0.99, augment={"shift": 4, "scale": 0.2, "noise": 0.1}), FixMatch(threshold=0.0)):
        clf = keras.Model(inp, out)
        model = kzoo.Regularized(keras.models.clone_model(clf), reg, seed=0)
        model.compile(optimizer="adam")
        stream = kzoo.data.semi_supervised(x[:16], np.arange(16) % 10, x[16:], batch_labeled=8, batch_unlabeled=16,
                                           num_classes=10)
        history = model.fit(stream, steps_per_epoch=2, epochs=1, verbose=0).history
        assert all(np.isfinite(v[-1]) for v in history.values())
        assert reg.loss_names[0] in history


def test_vat_mixup_ema_teacher_sets_both_terms():
    from kzoo import methods
    from kzoo.methods.mixup import from_hyperparameters
    from kzoo.methods.vat import _build_vat

    hp = methods.get("vat-mixup").resolve({"ema_teacher": 0.99})
    assert from_hyperparameters({**hp, "mix_keep_clean": True}, steps=100).ema_teacher == 0.99
    assert _build_vat(hp).ema_teacher == 0.99
    assert _build_vat(methods.get("vat").resolve({})).ema_teacher is None


@keras.saving.register_keras_serializable(package="kzoo_tests")
class TeacherMixinModel(kzoo.RegularizerMixin, keras.Model):
    pass


def test_a_model_that_is_its_own_network_keeps_a_teacher(seeded, tmp_path):
    """RegularizerMixin: the network is the model, which also holds the teacher's shadows (not shadowed twice)."""
    inp = keras.Input((16,))
    model = TeacherMixinModel(inp, keras.layers.Dense(3)(keras.layers.Dense(8, activation="tanh")(inp)),
                        regularizer=MeanTeacher(decay=0.9, augment={"noise": 0.1}), seed=0)
    assert len(model.ema_teacher.shadows) == 4
    model.compile(optimizer="adam")
    x = _data(n=32)
    model.fit(kzoo.data.semi_supervised(x[:8], np.arange(8) % 3, x[8:], batch_labeled=4, batch_unlabeled=8,
                                        num_classes=3), steps_per_epoch=2, epochs=1, verbose=0)
    assert len(model.ema_teacher.shadows) == 4
    assert not np.allclose(to_np(model.ema_teacher.shadows[0]), to_np(model.trainable_variables[0]))
    path = str(tmp_path / "mixin.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(model.ema_teacher.shadows, loaded.ema_teacher.shadows):
        np.testing.assert_array_equal(to_np(a), to_np(b))
