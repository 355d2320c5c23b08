"""gradient_check: small for correct backprop, large for a broken one, model left untouched."""

import numpy as np
import pytest

from nnscratch.errors import ConfigError
from nnscratch.layers import Relu
from nnscratch.models import MultiLayerNet, NielsenNetwork, TwoLayerNet, gradient_check


def batch(rng, n, d, c):
    return rng.random((n, d)).astype(np.float32), rng.integers(0, c, n)


def test_two_layer_net_float32_is_checked_in_float64_without_touching_it():
    rng = np.random.default_rng(0)
    net = TwoLayerNet(30, 10, 5, weight_init_std=0.3, seed=0)
    before = {k: v.copy() for k, v in net.params.items()}
    x, t = batch(rng, 3, 30, 5)
    diffs, backprop, numerical = gradient_check(net, x, t, return_gradients=True)
    assert set(diffs) == {"W1", "b1", "W2", "b2"}
    assert max(diffs.values()) < 1e-6
    assert all(g.dtype == np.float64 for g in backprop.values())
    for k, v in net.params.items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, before[k])


def test_multilayer_with_batchnorm_dropout_and_decay():
    rng = np.random.default_rng(1)
    net = MultiLayerNet(8, [6, 5], 4, activation="tanh", weight_decay_lambda=0.1,
                        use_dropout=True, dropout_ratio=0.3, use_batchnorm=True, seed=3)
    x, t = batch(rng, 5, 8, 4)
    state = net.get_rng_state()
    diffs = gradient_check(net, x, t)
    assert set(diffs) == set(net.params)
    assert max(diffs.values()) < 1e-6
    assert net.get_rng_state() == state  # the original's dropout generators did not move


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_nielsen_network(cost):
    rng = np.random.default_rng(2)
    net = NielsenNetwork([7, 5, 3], cost=cost, lam=3.0, n_train=50, seed=0)
    x, t = batch(rng, 4, 7, 3)
    assert max(gradient_check(net, x, t).values()) < 1e-6


class LeakyBackwardRelu(Relu):
    """A ReLU whose backward forgets the mask: a plausible backprop bug."""

    def backward(self, dout):
        return dout


def test_broken_backward_is_caught():
    rng = np.random.default_rng(3)
    net = MultiLayerNet(6, [8], 3, weight_init_std=1.0, seed=0)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    t = rng.integers(0, 3, 4)
    assert max(gradient_check(net, x, t).values()) < 1e-6

    original_astype = MultiLayerNet.astype

    def astype_with_bug(self, dtype):
        clone = original_astype(self, dtype)
        clone.layers["Activation_function1"] = LeakyBackwardRelu()
        return clone

    MultiLayerNet.astype = astype_with_bug
    try:
        diffs = gradient_check(net, x, t)
    finally:
        MultiLayerNet.astype = original_astype
    assert diffs["W1"] > 1e-2 and diffs["b1"] > 1e-2
    assert diffs["W2"] < 1e-6  # the layer above the bug is still right


def test_bad_arguments():
    net = TwoLayerNet(4, 3, 2, seed=0)
    with pytest.raises(ConfigError, match="h must be positive"):
        gradient_check(net, np.zeros((2, 4), np.float32), np.array([0, 1]), h=0)
    with pytest.raises(ConfigError, match="nnscratch model"):
        gradient_check(object(), None, None)


def test_conv_net_through_the_generic_path():
    from nnscratch.models import SimpleConvNet

    rng = np.random.default_rng(4)
    net = SimpleConvNet(input_dim=(1, 6, 6), conv_param={"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1},
                        hidden_size=4, output_size=3, weight_init_std=0.5, seed=0)
    x = rng.random((2, 1, 6, 6)).astype(np.float32)
    diffs = gradient_check(net, x, rng.integers(0, 3, 2))
    assert set(diffs) == set(net.params)
    assert max(diffs.values()) < 1e-6


def test_max_elements_samples_each_parameter():
    rng = np.random.default_rng(5)
    net = MultiLayerNet(64, [20], 10, activation="sigmoid", seed=0)
    x, t = batch(rng, 3, 64, 10)
    diffs, backprop, numerical = gradient_check(net, x, t, max_elements=25, return_gradients=True)
    assert max(diffs.values()) < 1e-6
    assert np.count_nonzero(~np.isnan(numerical["W1"])) == 25
    assert np.count_nonzero(~np.isnan(numerical["b2"])) == 10  # small enough to do whole
    with pytest.raises(ConfigError, match="max_elements"):
        gradient_check(net, x, t, max_elements=0)


def test_generic_numerical_gradient_method_like_the_books():
    rng = np.random.default_rng(6)
    net = MultiLayerNet(6, [5], 3, use_dropout=True, dropout_ratio=0.4, seed=1, dtype="float64")
    x = rng.standard_normal((4, 6))
    t = np.eye(3)[rng.integers(0, 3, 4)]
    state = net.get_rng_state()
    before = {k: v.copy() for k, v in net.params.items()}
    numerical = net.numerical_gradient(x, t)
    assert net.get_rng_state() == state
    for k, v in net.params.items():
        np.testing.assert_array_equal(v, before[k])  # restored bit for bit
    net.set_rng_state(state)
    backprop = net.gradient(x, t)
    for k in net.params:
        scale = max(np.abs(backprop[k]).max(), 1e-3)
        assert np.abs(backprop[k] - numerical[k]).max() / scale < 1e-6, k
    sampled = net.numerical_gradient(x, t, max_elements=4)
    assert np.count_nonzero(~np.isnan(sampled["W1"])) == 4


def test_generic_numerical_gradient_leaves_batchnorm_running_stats_alone():
    rng = np.random.default_rng(7)
    net = MultiLayerNet(5, [4], 3, use_batchnorm=True, seed=2, dtype="float64")
    x = rng.standard_normal((6, 5))
    t = rng.integers(0, 3, 6)
    net.loss_and_gradient(x, t)  # running statistics away from their initial zeros and ones
    before = {k: v.copy() for k, v in net.buffers.items()}
    net.numerical_gradient(x, t)
    for name, value in net.buffers.items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
