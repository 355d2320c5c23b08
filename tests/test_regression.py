"""nnscratch.regression: line and linear fits by gradient descent (seed 003).

Expected values marked "seed" are copied from seed 003's printed output.
"""

import random
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from nnscratch import fit_line, fit_linear
from nnscratch.errors import ConvergenceWarning, ShapeError, TrainingDivergedError


def seed_data():
    """Seed 003's data: random.seed(42), 20 points, x then y drawn alternately."""
    rng = random.Random(42)
    xs, ys = [], []
    for _ in range(20):
        xs.append(rng.random())
        ys.append(rng.random())
    return xs, ys


def reference_line_descent(xs, ys, m, b, lr=0.01, epsilon=1e-5):
    """Plain-Python statement of the seed's rule, written independently, for the step count."""
    n = len(xs)
    steps = 0
    while True:
        gm = gb = 0.0
        for xi, yi in zip(xs, ys):
            gm += 2 * b * xi + 2 * m * xi**2 - 2 * xi * yi
            gb += 2 * b + 2 * m * xi - 2 * yi
        gm, gb = gm / n, gb / n
        m, b = m - lr * gm, b - lr * gb
        steps += 1
        if (gm**2 + gb**2) ** 0.5 < epsilon:
            return m, b, steps


def test_seed_data_starts_like_the_seed_printout():
    xs, ys = seed_data()
    # the seed's printed lists are garbled after a few entries; their first values agree
    assert xs[:6] == [0.6394267984578837, 0.27502931836911926, 0.7364712141640124,
                      0.8921795677048454, 0.4219218196852704, 0.21863797480360336]  # seed
    assert ys[:6] == [0.025010755222666936, 0.22321073814882275, 0.6766994874229113,
                      0.08693883262941615, 0.029797219438070344, 0.5053552881033624]  # seed


def test_fit_line_reproduces_the_seed_bit_for_bit():
    xs, ys = seed_data()
    result = fit_line(xs, ys)
    assert result.m == 0.23606845773749743  # seed
    assert result.b == 0.27746866427140193  # seed
    assert result.converged
    _, _, steps = reference_line_descent(xs, ys, 0.5, 0.0)
    assert result.steps == steps
    assert result.gradient_norm < 1e-5
    assert result.loss_history.shape == (result.steps,)
    assert np.all(np.diff(result.loss_history) <= 0)  # small lr on a convex loss: monotone


def test_fit_line_agrees_with_least_squares_and_scikit_learn():
    xs, ys = seed_data()
    x, y = np.array(xs), np.array(ys)
    sk = LinearRegression().fit(x[:, None], y)
    np.testing.assert_allclose(sk.coef_[0], 0.2359993, atol=5e-8)  # seed
    np.testing.assert_allclose(sk.intercept_, 0.27751048, atol=5e-9)  # seed
    (m_ls, b_ls), *_ = np.linalg.lstsq(np.column_stack([x, np.ones_like(x)]), y, rcond=None)
    np.testing.assert_allclose([m_ls, b_ls], [sk.coef_[0], sk.intercept_], rtol=1e-10)

    loose = fit_line(xs, ys)  # the seed's tolerance: close, not equal
    assert abs(loose.m - m_ls) < 1e-3 and abs(loose.b - b_ls) < 1e-3
    tight = fit_line(xs, ys, epsilon=1e-10, max_steps=1_000_000, lr=0.5)
    np.testing.assert_allclose([tight.m, tight.b], [m_ls, b_ls], atol=1e-8)


def test_fit_linear_with_one_feature_matches_fit_line():
    xs, ys = seed_data()
    line = fit_line(xs, ys)
    linear = fit_linear(np.array(xs)[:, None], ys, w0=[0.5])
    assert linear.weights.shape == (1,)
    np.testing.assert_allclose([linear.weights[0], linear.bias], [line.m, line.b], rtol=1e-12)
    assert abs(linear.steps - line.steps) <= 1


def test_fit_linear_several_features_agrees_with_closed_form_and_scikit_learn():
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, size=(200, 3))
    y = X @ np.array([1.5, -2.0, 0.25]) + 0.7 + 0.05 * rng.standard_normal(200)
    fit = fit_linear(X, y, lr=0.1, epsilon=1e-10, max_steps=200_000)
    assert fit.converged
    sk = LinearRegression().fit(X, y)
    np.testing.assert_allclose(fit.weights, sk.coef_, atol=1e-8)
    np.testing.assert_allclose(fit.bias, sk.intercept_, atol=1e-8)
    coef, *_ = np.linalg.lstsq(np.column_stack([X, np.ones(200)]), y, rcond=None)
    np.testing.assert_allclose(np.append(fit.weights, fit.bias), coef, atol=1e-8)
    np.testing.assert_allclose(fit.predict(X[:5]), sk.predict(X[:5]), atol=1e-7)


def test_step_limit_gives_a_convergence_warning_and_an_honest_result():
    xs, ys = seed_data()
    with pytest.warns(ConvergenceWarning) as record:
        result = fit_line(xs, ys, max_steps=50)
    message = str(record[0].message)
    print(message)
    assert "max_steps=50" in message and "not converged" in message
    assert not result.converged and result.steps == 50 and result.gradient_norm >= 1e-5


def test_too_large_learning_rate_raises_naming_it():
    xs, ys = seed_data()
    with pytest.raises(TrainingDivergedError) as info:
        fit_line(np.array(xs) * 100, ys, lr=1.0)
    print(info.value)
    assert "lr=1.0" in str(info.value) and "too large" in str(info.value)


def test_data_shapes_are_checked():
    with pytest.raises(ShapeError, match="same length, got 3 and 2"):
        fit_line([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ShapeError, match="NaN"):
        fit_line([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ShapeError, match="w0 must have shape"):
        fit_linear(np.ones((4, 2)), np.ones(4), w0=[1.0])


def test_a_healthy_fit_is_silent():
    xs, ys = seed_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_line(xs, ys)
