"""Every layer's backward against float64 central differences, and the params/grads contract."""

import numpy as np
import pytest

from nnscratch.errors import ConfigError, ShapeError
from nnscratch.layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid, SoftmaxWithLoss, Tanh

from central_differences import central_difference, rel_error


def away_from_zero(rng, shape):
    """Random values with |v| >= 0.05, so a ReLU kink is never within h."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.05, 1.5, size=shape)


def check_layer(layer, x, rng, forward=None, tol=1e-6):
    """Compare backward's dx and every grads entry with central differences of sum(out * G)."""
    forward = forward or (lambda: layer.forward(x, True))
    out = forward()
    g = rng.standard_normal(out.shape)
    loss = lambda: float(np.sum(forward() * g))  # noqa: E731
    forward()
    dx = layer.backward(g.copy())
    assert dx.shape == x.shape
    analytic = {k: v.copy() for k, v in layer.grads.items()}
    assert rel_error(dx, central_difference(loss, x)) <= tol
    for key, param in layer.params.items():
        assert rel_error(analytic[key], central_difference(loss, param)) <= tol, key


@pytest.mark.parametrize("x_shape", [(4, 6), (3, 2, 3), (2, 1, 2, 3)])
def test_affine_gradients_and_input_shape(x_shape):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    layer = Affine(W, b)
    x = rng.standard_normal(x_shape)
    out = layer.forward(x)
    np.testing.assert_allclose(out, x.reshape(x_shape[0], -1) @ W + b)
    check_layer(layer, x, rng)


def test_affine_params_and_grads_are_the_layer_arrays():
    rng = np.random.default_rng(1)
    W, b = rng.standard_normal((3, 2)), np.zeros(2)
    layer = Affine(W, b)
    assert layer.params["W"] is W is layer.W and layer.params["b"] is b is layer.b
    dW, db = layer.dW, layer.db
    assert layer.grads["W"] is dW and layer.grads["b"] is db
    x = rng.standard_normal((4, 3))
    layer.forward(x)
    layer.backward(np.ones((4, 2)))
    assert layer.dW is dW and layer.grads["W"] is dW  # written in place
    np.testing.assert_allclose(dW, x.T @ np.ones((4, 2)))
    W -= 0.5  # an optimizer's in-place update changes what the layer computes
    np.testing.assert_allclose(layer.forward(x), x @ W + b)


def test_affine_keeps_float32():
    rng = np.random.default_rng(2)
    layer = Affine(rng.standard_normal((4, 3)).astype(np.float32), np.zeros(3, np.float32))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    assert layer.forward(x).dtype == np.float32
    assert layer.backward(np.ones((5, 3), np.float32)).dtype == np.float32
    assert layer.dW.dtype == np.float32


def test_affine_rejects_wrong_width():
    layer = Affine(np.zeros((6, 2)), np.zeros(2))
    with pytest.raises(ShapeError, match=r"6 features per sample, got shape \(3, 5\)"):
        layer.forward(np.zeros((3, 5)))
    with pytest.raises(ShapeError, match="Affine needs"):
        Affine(np.zeros((6, 2)), np.zeros(3))


@pytest.mark.parametrize("layer_cls", [Relu, Sigmoid, Tanh])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 2, 2)])
def test_activation_gradients(layer_cls, shape):
    rng = np.random.default_rng(3)
    layer = layer_cls()
    x = away_from_zero(rng, shape)
    check_layer(layer, x, rng)
    assert layer.params == {} and layer.grads == {}


def test_relu_forward_values():
    x = np.array([[-1.0, 0.0, 2.0]], dtype=np.float32)
    layer = Relu()
    out = layer.forward(x)
    np.testing.assert_array_equal(out, [[0, 0, 2]])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(layer.backward(np.array([[5.0, 5.0, 5.0]])), [[0, 0, 5]])


@pytest.mark.parametrize("onehot", [False, True])
@pytest.mark.parametrize("n,c", [(1, 3), (6, 10)])
def test_softmax_with_loss_gradient(onehot, n, c):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, c)) * 3
    labels = rng.integers(0, c, n)
    t = np.eye(c)[labels] if onehot else labels
    layer = SoftmaxWithLoss()
    loss = layer.forward(x, t)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(n), labels])), rel=1e-12)
    dx = layer.backward()
    numeric = central_difference(lambda: layer.forward(x, t), x)
    assert rel_error(dx, numeric) <= 1e-6
    layer.forward(x, t)
    np.testing.assert_allclose(layer.backward(2.0), 2 * dx, rtol=1e-12)


def test_softmax_with_loss_onehot_equals_labels_and_float32():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 7)
    a, b = SoftmaxWithLoss(), SoftmaxWithLoss()
    la = a.forward(x, labels)
    lb = b.forward(x, np.eye(10, dtype=np.int64)[labels])
    assert la == pytest.approx(lb, rel=1e-6)
    assert la.dtype == np.float32 and b.backward().dtype == np.float32
    np.testing.assert_allclose(a.backward(), b.backward(), atol=1e-7)


@pytest.mark.parametrize("scale", [1.0, 50.0, 1e4])
def test_softmax_with_loss_agrees_with_log_softmax_and_softmax(scale):
    """The layer's one-exp loss and probabilities against the pure functions, labels and soft targets."""
    from nnscratch.functions import log_softmax, softmax

    rng = np.random.default_rng(int(scale))
    x = rng.standard_normal((9, 7)) * scale
    labels = rng.integers(0, 7, 9)
    soft = rng.random((9, 7))
    soft /= soft.sum(axis=1, keepdims=True)
    layer = SoftmaxWithLoss()
    assert layer.forward(x, labels) == pytest.approx(-np.mean(log_softmax(x)[np.arange(9), labels]), rel=1e-13)
    np.testing.assert_allclose(layer.y, softmax(x), rtol=1e-13, atol=1e-300)
    assert layer.forward(x, soft) == pytest.approx(-np.sum(soft * log_softmax(x)) / 9, rel=1e-13)


def test_softmax_with_loss_huge_scores_finite():
    x = np.array([[1e4, -1e4, 0.0]])
    layer = SoftmaxWithLoss()
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        assert layer.forward(x, np.array([1])) == pytest.approx(2e4)
        np.testing.assert_allclose(layer.backward(), [[1.0, -1.0, 0.0]])


@pytest.mark.parametrize("shape", [(6, 5), (3, 2, 4)])
def test_dropout_gradient_with_fixed_mask(shape):
    rng = np.random.default_rng(6)
    layer = Dropout(0.4, rng=0)
    x = rng.standard_normal(shape)

    def forward_same_mask():
        layer.rng = np.random.default_rng(123)
        return layer.forward(x, True)

    check_layer(layer, x, rng, forward=forward_same_mask)


def test_dropout_is_inverted_and_seedable():
    x = np.ones((200, 500), dtype=np.float32)
    out = Dropout(0.25, rng=7).forward(x, True)
    assert out.dtype == np.float32
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.75)
    np.testing.assert_array_equal(out, Dropout(0.25, rng=7).forward(x, True))
    assert Dropout(0.25, rng=7).forward(x, train_flg=False) is x
    with pytest.raises(ConfigError, match="dropout_ratio"):
        Dropout(1.0)


@pytest.mark.parametrize("shape", [(8, 5), (6, 2, 3), (4, 2, 2, 2)])
def test_batchnorm_gradients(shape):
    rng = np.random.default_rng(8)
    d = int(np.prod(shape[1:]))
    layer = BatchNormalization(rng.uniform(0.5, 2, d), rng.standard_normal(d))
    x = rng.standard_normal(shape) * 2 + 1
    check_layer(layer, x, rng)
    assert layer.dgamma is layer.grads["gamma"] and layer.dbeta is layer.grads["beta"]


def test_batchnorm_normalizes_and_tracks_running_stats():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((50, 4)) * 3 + 5
    rm, rv = np.zeros(4), np.ones(4)
    layer = BatchNormalization(np.ones(4), np.zeros(4), momentum=0.9, running_mean=rm, running_var=rv)
    out = layer.forward(x, True)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-6)
    assert layer.running_mean is rm and layer.buffers["running_var"] is rv  # updated in place
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var(axis=0))
    evaluated = layer.forward(x, False)
    np.testing.assert_allclose(evaluated, (x - rm) / np.sqrt(rv + 1e-6))
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=0), rtol=1e-14)  # eval mode leaves the stats alone


def test_batchnorm_creates_running_stats_lazily_and_checks_width():
    layer = BatchNormalization(np.ones(3), np.zeros(3))
    assert layer.running_mean is None
    layer.forward(np.arange(6.0).reshape(2, 3), True)
    assert layer.running_mean.shape == (3,)
    with pytest.raises(ShapeError, match="3 features per sample"):
        layer.forward(np.zeros((2, 4)), True)
    with pytest.raises(ConfigError, match=r"momentum must be a number in \[0, 1\], got 1.5"):
        BatchNormalization(np.ones(3), np.zeros(3), momentum=1.5)


def test_affine_can_skip_the_input_gradient():
    rng = np.random.default_rng(10)
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    x, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    full, first = Affine(W.copy(), b.copy()), Affine(W.copy(), b.copy())
    first.compute_input_grad = False
    full.forward(x)
    first.forward(x)
    assert full.backward(dout) is not None and first.backward(dout) is None
    np.testing.assert_array_equal(first.dW, full.dW)
    np.testing.assert_array_equal(first.db, full.db)


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 2)])
def test_batchnorm_gradients_in_inference_mode(shape):
    rng = np.random.default_rng(11)
    d = int(np.prod(shape[1:]))
    layer = BatchNormalization(rng.uniform(0.5, 2, d), rng.standard_normal(d),
                               running_mean=rng.standard_normal(d), running_var=rng.uniform(0.5, 2, d))
    x = rng.standard_normal(shape)
    check_layer(layer, x, rng, forward=lambda: layer.forward(x, False))


def test_dropout_in_inference_mode_passes_gradients_through():
    layer = Dropout(0.5, rng=0)
    layer.forward(np.ones((3, 4)), True)  # a training pass leaves a mask behind
    layer.forward(np.ones((3, 4)), False)
    dout = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_softmax_with_loss_one_sample_as_a_1d_vector_like_the_book():
    # Book ch. 4: scores of one sample are a 1-D vector; the loss is that sample's,
    # not divided by the number of classes.
    x = np.array([0.3, 2.9, 4.0])
    expected = -np.log(np.exp(4.0) / np.exp(x).sum())  # 0.3057...
    for t in (np.array([0.0, 0.0, 1.0]), 2, np.array([2])):
        layer = SoftmaxWithLoss()
        assert layer.forward(x, t) == pytest.approx(expected, rel=1e-12)
        dx = layer.backward()
        assert dx.shape == (3,)
        np.testing.assert_allclose(dx, np.exp(x) / np.exp(x).sum() - [0, 0, 1], rtol=1e-12)


@pytest.mark.parametrize("t, match", [
    (np.array([2.0, 0.0]), "integer labels of shape \\(2,\\)"),
    (np.array([0, 3]), "labels outside 0..2"),
    (np.zeros((2, 4)), "one-hot of shape \\(2, 3\\)"),
])
def test_softmax_with_loss_rejects_bad_targets_by_name(t, match):
    with pytest.raises(ShapeError, match=match):
        SoftmaxWithLoss().forward(np.zeros((2, 3)), t)


def test_affine_takes_one_sample_as_a_1d_vector_like_the_book():
    rng = np.random.default_rng(12)
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    layer = Affine(W, b)
    x = rng.standard_normal(4)
    out = layer.forward(x)
    assert out.shape == (3,)
    np.testing.assert_allclose(out, x @ W + b)
    dout = rng.standard_normal(3)
    np.testing.assert_allclose(layer.backward(dout), W @ dout)
    np.testing.assert_allclose(layer.dW, np.outer(x, dout))
    np.testing.assert_allclose(layer.db, dout)


def test_softmax_with_loss_gradient_for_targets_that_are_not_one_hot():
    # Soft targets (label smoothing) and rows that do not sum to 1: backward must still be
    # the gradient of what forward returns.
    rng = np.random.default_rng(13)
    x = rng.standard_normal((5, 4)) * 2
    t = rng.uniform(0, 1, (5, 4))
    t[0] /= t[0].sum()
    layer = SoftmaxWithLoss()
    layer.forward(x, t)
    dx = layer.backward()
    assert rel_error(dx, central_difference(lambda: layer.forward(x, t), x)) <= 1e-6
