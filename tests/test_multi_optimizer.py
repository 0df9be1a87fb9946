"""kzoo.MultiOptimizer: each network's gradient of its own loss, each group's own optimizer."""

import keras
import numpy as np
import pytest
from keras import ops

import kzoo
from kzoo.core import call_without_updates
from kzoo.train_step import StepOutput, TrainStep


class Scalar(keras.layers.Layer):
    """y = w * x with one scalar weight."""

    def __init__(self, init, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.w = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.init), name="w")

    def call(self, x):
        return self.w * x


class TwoPlayer(TrainStep, keras.Model):
    """A toy game with a closed-form gradient per player.

    Player A minimizes L_A = (a - b)^2 (b frozen), player B minimizes
    L_B = (b - 3)^2 + a*b (a frozen). One pass over L_A + L_B with frozen views.
    """

    def __init__(self):
        super().__init__()
        inp = keras.Input((1,))
        self.a = keras.Model(inp, Scalar(2.0, name="a")(inp), name="player_a")
        inp = keras.Input((1,))
        self.b = keras.Model(inp, Scalar(-1.0, name="b")(inp), name="player_b")

    def call(self, x):
        return self.a(x) + self.b(x)

    def train_step_loss(self, data):
        one = ops.ones((1, 1))
        a, b = self.a(one), self.b(one)
        a_frozen, b_frozen = call_without_updates(self.a, one, frozen=True), call_without_updates(self.b, one, frozen=True)
        loss_a = ops.sum(ops.square(a - b_frozen))
        loss_b = ops.sum(ops.square(b - 3.0) + a_frozen * b)
        return StepOutput(loss_a + loss_b, one, None, a, None, {"loss_a": loss_a, "loss_b": loss_b})

    def train_step_metrics(self, out):
        return {k: v for k, v in out.terms.items()}


@pytest.mark.parametrize("as_list", [False, True], ids=["layers", "variable-lists"])
def test_each_group_gets_the_gradient_of_its_own_loss_and_its_own_optimizer(as_list):
    model = TwoPlayer()
    model.build((None, 1))
    owners = (list(model.a.trainable_variables), list(model.b.trainable_variables)) if as_list else (model.a, model.b)
    opt = kzoo.MultiOptimizer({"a": (keras.optimizers.SGD(0.1), owners[0]),
                               "b": (keras.optimizers.SGD(0.01), owners[1])})
    model.compile(optimizer=opt)
    x = np.zeros((1, 1), "float32")
    model.fit(x, x, epochs=1, batch_size=1, verbose=0)
    a0, b0 = 2.0, -1.0
    # dL_A/da = 2(a - b) = 6; dL_B/db = 2(b - 3) + a = -6  (by hand)
    assert float(model.a.weights[0].numpy()) == pytest.approx(a0 - 0.1 * 6.0, abs=1e-6)
    assert float(model.b.weights[0].numpy()) == pytest.approx(b0 - 0.01 * (-6.0), abs=1e-6)
    assert int(opt.iterations.numpy()) == 1
    assert int(opt.optimizers["a"].iterations.numpy()) == 1
    # every member's state is the optimizer's state (JAX threads it through fit)
    paths = {v.path for v in opt.variables}
    assert {v.path for m in opt.optimizers.values() for v in m.variables} <= paths
    assert not {v.path for v in model.trainable_variables} & paths  # model weights are not optimizer state


def test_adam_members_keep_their_own_moments_over_several_steps():
    """Two steps of per-group Adam equal two steps of separate Adams on the hand-computed gradients."""
    model = TwoPlayer()
    model.build((None, 1))
    model.compile(optimizer=kzoo.MultiOptimizer({"a": (keras.optimizers.Adam(0.1), model.a),
                                                 "b": (keras.optimizers.Adam(0.05, beta_1=0.5), model.b)}))
    x = np.zeros((2, 1), "float32")
    model.fit(x, x, epochs=1, batch_size=1, verbose=0)  # two steps


    # simultaneous updates: both gradients at the same point each step
    a, b = 2.0, -1.0
    ma = va = mb = vb = 0.0
    for t in (1, 2):
        ga, gb = 2 * (a - b), 2 * (b - 3) + a
        ma, va = 0.9 * ma + 0.1 * ga, 0.999 * va + 0.001 * ga * ga
        mb, vb = 0.5 * mb + 0.5 * gb, 0.999 * vb + 0.001 * gb * gb
        a = a - 0.1 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * ma / (np.sqrt(va) + 1e-7)
        b = b - 0.05 * np.sqrt(1 - 0.999 ** t) / (1 - 0.5 ** t) * mb / (np.sqrt(vb) + 1e-7)
    assert float(model.a.weights[0].numpy()) == pytest.approx(a, abs=1e-5)
    assert float(model.b.weights[0].numpy()) == pytest.approx(b, abs=1e-5)


def test_a_variable_outside_every_group_is_a_clear_error():
    model = TwoPlayer()
    model.build((None, 1))
    model.compile(optimizer=kzoo.MultiOptimizer({"a": (keras.optimizers.SGD(0.1), model.a)}))
    x = np.zeros((1, 1), "float32")
    with pytest.raises(ValueError, match="belongs to no group"):
        model.fit(x, x, epochs=1, batch_size=1, verbose=0)


def test_bad_groups_are_rejected():
    with pytest.raises(ValueError, match="non-empty dict"):
        kzoo.MultiOptimizer({})
    with pytest.raises(ValueError, match="must be \\(optimizer"):
        kzoo.MultiOptimizer({"a": keras.optimizers.SGD()})
