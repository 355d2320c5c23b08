"""NielsenNetwork against float64 central differences and against Nielsen's per-sample backprop."""

import json
import warnings

import numpy as np
import pytest

from nnscratch.errors import ConfigError, ShapeError
from nnscratch.models import MODELS, NielsenNetwork, build_model

from central_differences import central_difference, rel_error


def nielsen_backprop(weights, biases, x, y, cost):
    """Nielsen's ``backprop`` for ONE column-vector sample, written as in his book."""
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    activation, activations, zs = x, [x], []
    for b, w in zip(biases, weights):
        z = np.dot(w, activation) + b
        zs.append(z)
        activation = sig(z)
        activations.append(activation)
    delta = activations[-1] - y
    if cost == "quadratic":
        delta = delta * sig(zs[-1]) * (1 - sig(zs[-1]))
    nabla_b, nabla_w = [None] * len(biases), [None] * len(weights)
    nabla_b[-1], nabla_w[-1] = delta, np.dot(delta, activations[-2].T)
    for layer in range(2, len(weights) + 1):
        sp = sig(zs[-layer]) * (1 - sig(zs[-layer]))
        delta = np.dot(weights[-layer + 1].T, delta) * sp
        nabla_b[-layer], nabla_w[-layer] = delta, np.dot(delta, activations[-layer - 1].T)
    return nabla_b, nabla_w


def batch(rng, n, d, c, onehot=False):
    x = rng.random((n, d))
    labels = rng.integers(0, c, n)
    return x, (np.eye(c)[labels] if onehot else labels)


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
@pytest.mark.parametrize("lam", [0.0, 5.0])
def test_backprop_matches_central_differences(cost, lam):
    rng = np.random.default_rng(0)
    net = NielsenNetwork([6, 5, 4, 3], cost=cost, lam=lam, n_train=20, seed=1, dtype="float64")
    x, t = batch(rng, 7, 6, 3, onehot=(cost == "quadratic"))
    grads = net.gradient(x, t)
    for name, p in net.params.items():
        numeric = central_difference(lambda: net.loss(x, t), p)
        assert rel_error(grads[name], numeric) <= 1e-6, name


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_one_sgd_step_is_nielsens_update(cost):
    """w -> (1 - eta*lmbda/n) w - eta/m sum(nabla_w), b -> b - eta/m sum(nabla_b) (network2.update_mini_batch)."""
    rng = np.random.default_rng(1)
    eta, lmbda, n = 0.5, 5.0, 1000
    net = NielsenNetwork([8, 6, 4], cost=cost, lam=lmbda, n_train=n, seed=2, dtype="float64")
    x, labels = batch(rng, 5, 8, 4)
    weights = [w.copy() for w in net.weights]
    biases = [b.copy() for b in net.biases]
    sum_b = [np.zeros_like(b) for b in biases]
    sum_w = [np.zeros_like(w) for w in weights]
    for xi, li in zip(x, labels):
        y = np.zeros((4, 1))
        y[li] = 1
        db, dw = nielsen_backprop(weights, biases, xi.reshape(-1, 1), y, cost)
        sum_b = [s + d for s, d in zip(sum_b, db)]
        sum_w = [s + d for s, d in zip(sum_w, dw)]
    expected_w = [(1 - eta * lmbda / n) * w - eta / len(x) * s for w, s in zip(weights, sum_w)]
    expected_b = [b - eta / len(x) * s for b, s in zip(biases, sum_b)]

    _, grads = net.loss_and_gradient(x, labels)
    for name in net.params:
        net.params[name] -= eta * grads[name]  # plain SGD on the package's loss
    for got, want in zip(net.weights, expected_w):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    for got, want in zip(net.biases, expected_b):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_cost_values_and_l2_scaling():
    rng = np.random.default_rng(2)
    x, labels = batch(rng, 4, 5, 3)
    y = np.eye(3)[labels]
    for cost in ("quadratic", "cross-entropy"):
        plain = NielsenNetwork([5, 4, 3], cost=cost, seed=0, dtype="float64")
        reg = NielsenNetwork([5, 4, 3], cost=cost, lam=2.0, n_train=10, seed=0, dtype="float64")
        a = plain.predict(x)
        if cost == "quadratic":
            expected = np.mean(0.5 * np.sum((a - y) ** 2, axis=1))
        else:
            expected = np.mean(np.sum(-y * np.log(a) - (1 - y) * np.log(1 - a), axis=1))
        assert plain.loss(x, labels) == pytest.approx(expected, rel=1e-12)
        penalty = 0.5 * (2.0 / 10) * sum(np.sum(w ** 2) for w in plain.weights)
        assert reg.loss(x, labels) == pytest.approx(expected + penalty, rel=1e-12)


def test_predict_is_sigmoid_output_and_saturation_is_finite():
    net = NielsenNetwork([3, 2], cost="cross-entropy", weight_init="large", seed=0, dtype="float64")
    net.params["W1"][...] = [[1000.0, -1000.0], [0, 0], [0, 0]]
    net.params["b1"][...] = 0
    x = np.array([[1.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            np.testing.assert_array_equal(net.predict(x), [[1.0, 0.0]])
            assert net.loss(x, np.array([1])) == pytest.approx(2000.0)
            grads = net.gradient(x, np.array([1]))
    np.testing.assert_allclose(grads["b1"], [1.0, -1.0])


def test_nielsen_layout_views_and_feedforward():
    net = NielsenNetwork([784, 30, 10], seed=0)
    assert [w.shape for w in net.weights] == [(30, 784), (10, 30)]
    assert [b.shape for b in net.biases] == [(30, 1), (10, 1)]
    assert abs(float(net.params["W1"].std()) - 1 / np.sqrt(784)) < 0.1 / np.sqrt(784)
    net.weights[0][0, 0] = 7.0
    assert net.params["W1"][0, 0] == 7.0  # a view of the same array
    col = np.random.default_rng(0).random((784, 1)).astype(np.float32)
    out = net.feedforward(col)
    assert out.shape == (10, 1)
    np.testing.assert_allclose(out[:, 0], net.predict(col.T)[0])
    assert np.all((out > 0) & (out < 1))


def test_accuracy_uses_argmax_of_activations():
    rng = np.random.default_rng(3)
    net = NielsenNetwork([4, 6, 3], seed=0, dtype="float64")
    x = rng.random((20, 4))
    labels = np.argmax(net.predict(x), axis=1)
    labels[:5] = (labels[:5] + 1) % 3
    assert net.accuracy(x, labels, batch_size=7) == pytest.approx(15 / 20)


def test_config_round_trip_seed_and_registry():
    net = NielsenNetwork([10, 7, 4], cost="quadratic", lam=0.1, n_train=60000, weight_init="large", seed=5)
    assert MODELS["NielsenNetwork"] is NielsenNetwork
    clone = build_model("NielsenNetwork", json.loads(json.dumps(net.config)))
    for name in net.params:
        np.testing.assert_array_equal(clone.params[name], net.params[name])
    assert list(net.params) == ["W1", "b1", "W2", "b2"]


def test_errors():
    with pytest.raises(ConfigError, match="cost"):
        NielsenNetwork([4, 2], cost="hinge")
    with pytest.raises(ConfigError, match="sizes"):
        NielsenNetwork([4])
    with pytest.raises(ConfigError, match="lam"):
        NielsenNetwork([4, 2], lam=-1)
    with pytest.raises(ConfigError, match="n_train"):
        NielsenNetwork([4, 2], n_train=0)
    net = NielsenNetwork([784, 10, 10], seed=0)
    with pytest.raises(ShapeError, match=r"\(N, 784\), got shape \(2, 28, 28\)"):
        net.predict(np.zeros((2, 28, 28), np.float32))


def test_data_loss_leaves_out_the_l2_term():
    rng = np.random.default_rng(4)
    x, t = batch(rng, 9, 5, 3)
    for cost in ("quadratic", "cross-entropy"):
        plain = NielsenNetwork([5, 4, 3], cost=cost, seed=0, dtype="float64")
        reg = NielsenNetwork([5, 4, 3], cost=cost, lam=2.0, n_train=10, seed=0, dtype="float64")
        assert reg.data_loss(x, t, batch_size=4) == pytest.approx(plain.loss(x, t), rel=1e-12)
