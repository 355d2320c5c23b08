"""Activations and losses: values from their definitions, dtypes, no overflow warnings."""

import math
import warnings

import numpy as np
import pytest

from nnscratch.errors import ShapeError
from nnscratch.functions import (
    cross_entropy_error,
    identity,
    log_softmax,
    mean_squared_error,
    relu,
    sigmoid,
    sigmoid_grad,
    softmax,
    step_function,
    tanh,
)

EXTREMES = np.array([-1e30, -1e4, -800.0, -100.0, -1.0, 0.0, 1.0, 100.0, 800.0, 1e4, 1e30])


@pytest.fixture
def strict_fp():
    """Overflow, invalid and divide-by-zero raise; any warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


def test_step_function_values():
    np.testing.assert_array_equal(step_function(np.array([-1.0, 0.0, 0.5, 3.0])), [0, 0, 1, 1])
    assert step_function(np.array([-2, 2])).dtype == np.float64


def test_sigmoid_matches_math_exp_where_that_is_finite():
    xs = np.linspace(-30, 30, 61)
    expected = np.array([1 / (1 + math.exp(-v)) for v in xs])
    np.testing.assert_allclose(sigmoid(xs), expected, rtol=1e-15, atol=0)
    assert sigmoid(0.0) == 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_extremes_without_warnings(strict_fp, dtype):
    y = sigmoid(EXTREMES.astype(dtype))
    assert y.dtype == dtype
    assert np.all(np.isfinite(y))
    assert y[0] == 0 and y[-1] == 1
    assert np.all(np.diff(y) >= 0)
    # Tail of the negative side is exp(x) to rounding, not flushed early.
    np.testing.assert_allclose(sigmoid(np.array([-100.0])), [math.exp(-100)], rtol=1e-14)


def test_sigmoid_grad_is_derivative():
    xs = np.linspace(-6, 6, 25)
    h = 1e-6
    numeric = (sigmoid(xs + h) - sigmoid(xs - h)) / (2 * h)
    np.testing.assert_allclose(sigmoid_grad(xs), numeric, rtol=1e-6)


def test_relu_tanh_identity():
    x = np.array([-2.0, -0.0, 0.5, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(relu(x), [0, 0, 0.5, 3.0])
    assert relu(x).dtype == np.float32
    np.testing.assert_allclose(tanh(x), np.tanh(x.astype(np.float64)), rtol=1e-6)
    assert tanh(x).dtype == np.float32
    assert identity(x) is x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_and_dtype(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7)).astype(dtype)
    y = softmax(x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    x64 = x.astype(np.float64)
    expected = np.exp(x64) / np.exp(x64).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-13)
    # One row as a 1-D vector gives the same as in the batch.
    np.testing.assert_allclose(softmax(x[2]), y[2], rtol=1e-6)


def test_softmax_book_example():
    a = np.array([0.3, 2.9, 4.0])
    np.testing.assert_allclose(softmax(a), [0.01821127, 0.24519181, 0.73659691], atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_huge_scores_without_warnings(strict_fp, dtype):
    x = np.array([[1010.0, 1000.0, 990.0], [-1e30, 0.0, 1e30], [5.0, 5.0, 5.0]], dtype=dtype)
    y = softmax(x)
    assert np.all(np.isfinite(y)) and y.dtype == dtype
    np.testing.assert_allclose(y[0], softmax(np.array([20.0, 10.0, 0.0])), rtol=1e-6)
    np.testing.assert_array_equal(y[1], [0, 0, 1])
    np.testing.assert_allclose(y[2], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(log_softmax(x)[0], [-4.5400e-05, -10.0000454, -20.0000454], rtol=1e-6, atol=1e-6)


def test_cross_entropy_book_example():
    t = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
    assert cross_entropy_error(np.array(y), np.array(t)) == pytest.approx(0.51082545709933802)
    y = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]
    assert cross_entropy_error(np.array(y), np.array(t)) == pytest.approx(2.3025840929945458)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_onehot_equals_labels(dtype):
    rng = np.random.default_rng(3)
    y = softmax(rng.standard_normal((8, 10))).astype(dtype)
    labels = rng.integers(0, 10, 8)
    onehot = np.eye(10, dtype=np.int64)[labels]
    a = cross_entropy_error(y, labels)
    b = cross_entropy_error(y, onehot)
    assert a.dtype == dtype and b.dtype == dtype
    assert a == pytest.approx(b, rel=1e-6 if dtype == np.float32 else 1e-14)
    expected = -np.mean(np.log(y.astype(np.float64)[np.arange(8), labels] + 1e-7))
    assert a == pytest.approx(expected, rel=1e-6)
    # A single sample with a scalar label.
    assert cross_entropy_error(y[0], labels[0]) == pytest.approx(-np.log(float(y[0, labels[0]]) + 1e-7), rel=1e-6)


def test_cross_entropy_of_zero_probability_is_finite(strict_fp):
    assert cross_entropy_error(np.array([[0.0, 1.0]]), np.array([0])) == pytest.approx(-np.log(1e-7))


def test_cross_entropy_rejects_bad_targets():
    y = softmax(np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"labels outside 0\.\.2"):
        cross_entropy_error(y, np.array([0, 1, 2, 3]))
    with pytest.raises(ShapeError, match=r"\(4, 3\).*\(4,\).*got shape \(5,\)"):
        cross_entropy_error(y, np.array([0, 1, 2, 1, 0]))


def test_mean_squared_error_book_example():
    t = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    assert mean_squared_error(y, t) == pytest.approx(0.09750000000000003)
    assert mean_squared_error(y.astype(np.float32), t).dtype == np.float32
    with pytest.raises(ShapeError, match="shape of y"):
        mean_squared_error(y, t[:5])


@pytest.mark.parametrize("shape", [(1, 1), (100, 10), (3, 1000), (7,), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rowwise_max_is_numpys_row_maximum_bit_for_bit(shape, dtype):
    from nnscratch.functions import rowwise_max

    x = (np.random.default_rng(len(shape)).standard_normal(shape) * 10).astype(dtype)
    m = rowwise_max(x)
    assert m.shape == x.shape[:-1] + (1,) and m.dtype == dtype
    np.testing.assert_array_equal(m, np.max(x, axis=-1, keepdims=True))
    x[0, ...] = np.nan
    assert np.isnan(rowwise_max(x).reshape(-1)[0])
