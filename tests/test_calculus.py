"""nnscratch.calculus: numerical derivatives, gradients, gradient descent and their traps.

Expected numbers marked "seed" are copied from the printed output of the book's
chapter-4 notebook (seed 002), not produced by nnscratch.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch import gradient_descent, numerical_diff, numerical_gradient, numerical_gradient_batch
from nnscratch.errors import (
    ConfigError,
    DivergenceWarning,
    FunctionValueError,
    GradientInputError,
    GradientWarning,
    StepSizeError,
)


def function_1(x):
    return 0.01 * x**2 + 0.1 * x


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------- seed values


def test_numerical_diff_reproduces_the_seed_bit_for_bit():
    assert numerical_diff(function_1, 5) == 0.1999999999990898  # seed
    assert numerical_diff(function_1, 10) == 0.2999999999986347  # seed
    assert numerical_diff(lambda x0: x0 * x0 + 4.0**2.0, 3.0) == 6.00000000000378  # seed


@pytest.mark.parametrize(
    "point, expected",
    [([3.0, 4.0], "array([6., 8.])"), ([0.0, 2.0], "array([0., 4.])"), ([3.0, 0.0], "array([6., 0.])")],
)
def test_numerical_gradient_reproduces_the_seed(point, expected, no_warnings):
    assert repr(numerical_gradient(function_2, np.array(point))) == expected  # seed


@pytest.mark.parametrize(
    "lr, expected",
    [
        (0.1, "array([-6.11110793e-10,  8.14814391e-10])"),  # seed
        (10e-10, "array([-2.9999994,  3.9999992])"),  # seed (10e-10 is 1e-9)
    ],
)
def test_gradient_descent_reproduces_the_seed(lr, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        x = gradient_descent(function_2, init_x=np.array([-3.0, 4.0]), lr=lr, step_num=100)
    assert repr(x) == expected


def test_divergent_descent_warns_about_the_learning_rate_and_returns_the_seed_value():
    with pytest.warns(DivergenceWarning) as record:
        x = gradient_descent(function_2, init_x=np.array([-3.0, 4.0]), lr=10.0, step_num=100)
    assert repr(x) == "array([-2.58983747e+13, -1.29524862e+12])"  # seed
    message = str(record[0].message)
    print(message)
    assert "diverged with lr=10.0" in message
    assert "learning rate" in message and "too large" in message
    assert "x + h == x" in message  # why the seed's value froze at -2.6e13


def test_tiny_learning_rate_is_reported_as_barely_moving():
    with pytest.warns(DivergenceWarning, match=r"barely moved with lr=1e-10") as record:
        x = gradient_descent(function_2, init_x=np.array([-3.0, 4.0]), lr=1e-10, step_num=100)
    print(record[0].message)
    assert "too small" in str(record[0].message)
    np.testing.assert_allclose(x, [-3.0 * (1 - 2e-10) ** 100, 4.0 * (1 - 2e-10) ** 100], rtol=1e-12)


def test_healthy_descent_is_silent_and_converges(no_warnings):
    x = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=0.1, step_num=100)
    assert np.abs(x).max() < 1e-8


def test_descent_starting_at_the_minimum_is_silent(no_warnings):
    x = gradient_descent(function_2, np.array([0.0, 0.0]), lr=0.1)
    assert np.array_equal(x, [0.0, 0.0])


# ---------------------------------------------------------------- aliasing


class TinyNet:
    """The book's simpleNet: one weight matrix, softmax + cross-entropy loss."""

    def __init__(self, seed=0):
        self.W = np.random.default_rng(seed).standard_normal((2, 3))

    def loss(self, x, t):
        z = x @ self.W
        y = np.exp(z - z.max())
        y /= y.sum()
        return -np.log(y[t.argmax()])

    def analytic_gradient(self, x, t):
        z = x @ self.W
        y = np.exp(z - z.max())
        y /= y.sum()
        return np.outer(x, y - t)


def test_book_idiom_differentiates_through_aliasing_and_restores_weights(no_warnings):
    net = TinyNet()
    x, t = np.array([0.6, 0.9]), np.array([0.0, 0.0, 1.0])
    before = net.W.copy()
    dW = numerical_gradient(lambda W: net.loss(x, t), net.W)
    np.testing.assert_allclose(dW, net.analytic_gradient(x, t), rtol=1e-6, atol=1e-9)
    assert net.W.tobytes() == before.tobytes()


def test_other_array_than_the_one_f_reads_warns_about_aliasing():
    net = TinyNet()
    x, t = np.array([0.6, 0.9]), np.array([0.0, 0.0, 1.0])
    a = np.array([[0.2, 0.1, -0.3], [0.12, -0.17, 0.088]])  # seed 004's stray array
    with pytest.warns(GradientWarning) as record:
        dW = numerical_gradient(lambda W: net.loss(x, t), a)
    message = str(record[0].message)
    print(message)
    assert np.array_equal(dW, np.zeros((2, 3)))
    assert "ignores its argument" in message
    assert "net.W" in message and "same object" in message


def test_non_contiguous_view_is_perturbed_through_to_its_base(no_warnings):
    big = np.random.default_rng(1).standard_normal((4, 6))
    weights = np.linspace(0.5, 2.0, big.size).reshape(big.shape)
    view = big[1:, ::2].T  # non-contiguous, transposed view
    assert not view.flags.c_contiguous and not view.flags.f_contiguous

    def loss(_ignored):
        return float(np.sum(weights * big**2))  # reads big, not its argument

    before = big.copy()
    grad = numerical_gradient(loss, view)
    expected = (2 * weights * before)[1:, ::2].T
    np.testing.assert_allclose(grad, expected, rtol=1e-7)
    assert big.tobytes() == before.tobytes()


def test_x_is_restored_exactly_even_when_f_raises():
    x = np.array([0.1, 0.2, 0.3])  # 0.1 + 1e-4 - 1e-4 != 0.1 in floats: saving matters
    before = x.tobytes()
    calls = []

    def exploding(v):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError):
        numerical_gradient(exploding, x)
    assert x.tobytes() == before


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 3), min_size=0, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_gradient_of_weighted_squares_matches_analytic(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=shape)
    c = rng.uniform(0.5, 2, size=shape)
    before = x.copy()
    grad = numerical_gradient(lambda v: np.sum(c * v**2), x)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    np.testing.assert_allclose(grad, 2 * c * before, rtol=1e-6, atol=1e-7)
    assert x.tobytes() == before.tobytes()


def test_float32_x_gives_float32_gradient():
    x = np.array([1.0, -2.0], dtype=np.float32)
    grad = numerical_gradient(lambda v: float(np.sum(v.astype(np.float64) ** 2)), x)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, [2.0, -4.0], rtol=1e-3)


def test_lists_are_accepted_as_a_new_float_array(no_warnings):
    np.testing.assert_allclose(numerical_gradient(function_2, [3, 4]), [6.0, 8.0])


# ---------------------------------------------------------------- input traps


def test_integer_x_is_rejected_with_an_explanation():
    x = np.array([3, 4])
    with pytest.raises(GradientInputError) as info:
        numerical_gradient(function_2, x)
    message = str(info.value)
    print(message)
    assert "int64" in message and "astype(np.float64)" in message and "3 + 0.0001" in message


def test_read_only_x_is_rejected():
    x = np.array([3.0, 4.0])
    x.flags.writeable = False
    with pytest.raises(GradientInputError, match="read-only"):
        numerical_gradient(function_2, x)


def test_non_scalar_f_is_rejected():
    with pytest.raises(FunctionValueError) as info:
        numerical_gradient(lambda v: v**2, np.array([1.0, 2.0]))
    print(info.value)
    assert "must return a scalar" in str(info.value) and "(2,)" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_f_is_rejected_naming_the_element(bad):
    def f(v):
        return bad if v[1] > 2.00005 else float(np.sum(v**2))

    with pytest.raises(FunctionValueError) as info:
        numerical_gradient(f, np.array([1.0, 2.0]))
    print(info.value)
    assert "x[1]" in str(info.value) and str(bad) in str(info.value)


def test_numerical_diff_rejects_non_finite():
    with pytest.raises(FunctionValueError, match="non-finite"), np.errstate(invalid="ignore", divide="ignore"):
        numerical_diff(np.log, 0.0)


@pytest.mark.parametrize("h", [1e-50, 10e-50])
def test_tiny_h_is_rejected_with_the_book_explanation(h):
    with pytest.raises(StepSizeError) as info:
        numerical_diff(function_1, 5, h=h)
    message = str(info.value)
    print(message)
    assert "rounds back to 5.0" in message and "1e-4" in message
    with pytest.raises(StepSizeError):
        numerical_gradient(function_2, np.array([3.0, 4.0]), h=h)


def test_h_that_is_zero_in_float32_is_explained():
    with pytest.raises(StepSizeError, match="is 0 in float32"):
        numerical_gradient(function_2, np.array([3.0, 4.0], dtype=np.float32), h=1e-50)


@pytest.mark.parametrize("h", [0, -1e-4, np.nan, "0.001"])
def test_nonsense_h_is_rejected(h):
    with pytest.raises(StepSizeError, match="positive finite"):
        numerical_diff(function_1, 5, h=h)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_points_are_rejected(bad):
    with pytest.raises(GradientInputError, match=r"x\[1\] is (nan|inf)"):
        numerical_gradient(function_2, np.array([1.0, bad]))


def test_descent_from_a_noisy_minimum_is_silent(no_warnings):
    x0 = np.array([np.log(2.0), np.log(2.0)])  # minimum of exp(x) - 2x, not symmetric
    x = gradient_descent(lambda v: float(np.sum(np.exp(v) - 2 * v)), x0, lr=0.1)
    np.testing.assert_allclose(x, x0, atol=1e-7)


def test_gradient_descent_rejects_bad_learning_rates():
    with pytest.raises(ConfigError, match="lr"):
        gradient_descent(function_2, [1.0, 2.0], lr=-0.1)


# ---------------------------------------------------------------- descent options


def test_descent_leaves_init_x_alone_unless_in_place():
    init = np.array([-3.0, 4.0])
    x = gradient_descent(function_2, init, lr=0.1, step_num=10)
    assert np.array_equal(init, [-3.0, 4.0]) and x is not init
    y = gradient_descent(function_2, init, lr=0.1, step_num=10, in_place=True)
    assert y is init and np.array_equal(init, x)


def test_descent_in_place_follows_the_aliasing_idiom(no_warnings):
    net = TinyNet()
    x, t = np.array([0.6, 0.9]), np.array([0.0, 0.0, 1.0])
    start = net.loss(x, t)
    gradient_descent(lambda W: net.loss(x, t), net.W, lr=0.5, step_num=20, in_place=True)
    assert net.loss(x, t) < start


def test_descent_on_a_copy_with_an_aliasing_f_warns():
    net = TinyNet()
    x, t = np.array([0.6, 0.9]), np.array([0.0, 0.0, 1.0])
    with pytest.warns(GradientWarning, match="ignores its argument"):
        gradient_descent(lambda W: net.loss(x, t), net.W, lr=0.5, step_num=3)


def test_descent_path_has_every_step():
    x, path = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=0.1, step_num=20, return_path=True)
    assert path.shape == (21, 2)
    assert np.array_equal(path[0], [-3.0, 4.0]) and np.array_equal(path[-1], x)
    # for x0^2 + x1^2 each exact step multiplies x by (1 - 2 lr) = 0.8
    np.testing.assert_allclose(path[5], np.array([-3.0, 4.0]) * 0.8**5, rtol=1e-8)


def test_descent_that_overflows_stops_and_warns():
    with pytest.warns(DivergenceWarning, match="diverged"):
        with np.errstate(over="ignore", invalid="ignore"):
            x, path = gradient_descent(lambda v: np.exp(v[0] ** 2), np.array([2.0]), lr=5.0, return_path=True)
    assert not np.isfinite(x).all()
    assert len(path) <= 101


# ---------------------------------------------------------------- batch


def test_batch_gradient_over_a_grid_matches_the_analytic_field(no_warnings):
    X0, X1 = np.meshgrid(np.arange(-2, 2.0, 0.25), np.arange(-2, 2.0, 0.25))
    points = np.stack([X0, X1])  # (2, 16, 16)
    grad = numerical_gradient_batch(function_2, points)
    assert grad.shape == (2, 16, 16)
    np.testing.assert_allclose(grad[0], 2 * X0, atol=1e-8)
    np.testing.assert_allclose(grad[1], 2 * X1, atol=1e-8)


def test_batch_uses_2d_plus_1_calls_and_agrees_with_per_point():
    rng = np.random.default_rng(3)
    points = rng.uniform(-2, 2, size=(3, 50))
    before = points.copy()
    calls = []

    def f(v):
        calls.append(v.shape)
        return np.sin(v[0]) * v[1] + v[2] ** 3

    grad = numerical_gradient_batch(f, points)
    assert len(calls) == 2 * 3 + 1
    assert np.array_equal(points, before)
    per_point = numerical_gradient_batch(f, points, vectorized=False)
    np.testing.assert_allclose(grad, per_point, rtol=1e-12, atol=1e-12)
    analytic = np.stack([np.cos(points[0]) * points[1], np.sin(points[0]), 3 * points[2] ** 2])
    np.testing.assert_allclose(grad, analytic, rtol=1e-6, atol=1e-7)


def test_batch_with_an_f_that_reduces_the_batch_explains_the_convention():
    with pytest.raises(FunctionValueError) as info:
        numerical_gradient_batch(lambda v: np.sum(v**2), np.ones((2, 5)))
    print(info.value)
    assert "axis=0" in str(info.value) and "vectorized=False" in str(info.value)
    grad = numerical_gradient_batch(lambda v: np.sum(v**2), np.ones((2, 5)), vectorized=False)
    np.testing.assert_allclose(grad, 2 * np.ones((2, 5)))


def test_batch_constant_f_warns():
    with pytest.warns(GradientWarning):
        numerical_gradient_batch(lambda v: np.zeros(v.shape[1:]) + 2.0, np.ones((2, 4)))


def test_numerical_diff_is_elementwise_on_arrays_and_lists():
    np.testing.assert_allclose(numerical_diff(lambda v: v**3, [1.0, 2.0]), [3.0, 12.0], rtol=1e-7)
    np.testing.assert_allclose(numerical_diff(np.sin, np.linspace(0, 3, 7)), np.cos(np.linspace(0, 3, 7)), atol=1e-8)


def test_integer_start_of_a_descent_is_converted_or_rejected_never_truncated(no_warnings):
    # A private copy may be converted: the result is the float descent, not one stuck at integers.
    x = gradient_descent(function_2, np.array([-3, 4]), lr=0.1, step_num=100)
    assert x.dtype == np.float64
    assert repr(x) == "array([-6.11110793e-10,  8.14814391e-10])"  # seed, as from [-3.0, 4.0]
    # In place, an integer array cannot hold the steps: rejected with the reason.
    with pytest.raises(GradientInputError, match=r"int64.*astype\(np\.float64\)"):
        gradient_descent(function_2, np.array([-3, 4]), lr=0.1, in_place=True)


def test_tiny_h_at_zero_passes_the_rounding_check_but_the_warning_names_it():
    # At x = 0, x + 1e-50 != x, so h is not rejected; f = x0 + 1 cannot tell 1 + 1e-50 from 1.
    with pytest.warns(GradientWarning) as record:
        grad = numerical_gradient(lambda v: v[0] + 1.0, np.array([0.0]), h=1e-50)
    assert grad.tolist() == [0.0]
    message = str(record[0].message)
    print(message)
    assert "h=1e-50 is too small" in message and "1e-4" in message
