"""Fitting a straight line (and a linear model) by batch gradient descent.

This is the warm-up of seed 003: fit ``y = m x + b`` to 20 random points by
gradient descent on the mean squared error, stopping when the gradient norm
falls below ``epsilon``, and compare the answer with scikit-learn's
``LinearRegression`` (see ``examples/ch04_line_fit.py``). The gradient is the
analytic one -- for a quadratic loss there is no reason to pay for a numerical
gradient -- and every step is vectorised over the data points.

``fit_line`` sums the per-point terms left to right, exactly as the seed's
``for i in range(n)`` loop does, so the seed's printed values come out bit for
bit (NumPy's default pairwise summation would change the last digit).
``fit_linear`` is the same method for several features, using matrix
products.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from nnscratch.errors import ConfigError, ConvergenceWarning, ShapeError, TrainingDivergedError

__all__ = ["LineFit", "LinearFit", "fit_line", "fit_linear"]


@dataclass(frozen=True)
class LineFit:
    """Result of :func:`fit_line`.

    Attributes
    ----------
    m, b : float
        Slope and intercept of ``y = m x + b``.
    steps : int
        Gradient-descent steps taken.
    converged : bool
        True when the gradient norm fell below ``epsilon``; False when the
        step limit stopped the fit (a :class:`ConvergenceWarning` was issued).
    gradient_norm : float
        Norm of the last gradient computed.
    loss_history : ndarray of shape (steps,)
        Mean squared error at the parameters each step started from.
    """

    m: float
    b: float
    steps: int
    converged: bool
    gradient_norm: float
    loss_history: np.ndarray = field(repr=False)

    def predict(self, x):
        """``m * x + b`` for an array of inputs."""
        return self.m * np.asarray(x, dtype=np.float64) + self.b


@dataclass(frozen=True)
class LinearFit:
    """Result of :func:`fit_linear`: ``y = X @ weights + bias``.

    Attributes
    ----------
    weights : ndarray of shape (D,)
    bias : float
    steps, converged, gradient_norm, loss_history
        As in :class:`LineFit`.
    """

    weights: np.ndarray
    bias: float
    steps: int
    converged: bool
    gradient_norm: float
    loss_history: np.ndarray = field(repr=False)

    def predict(self, X):
        """``X @ weights + bias`` for X of shape (N, D) (or (N,) when D == 1)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        return X @ self.weights + self.bias


def _check_options(func_name, lr, epsilon, max_steps):
    for name, value in (("lr", lr), ("epsilon", epsilon)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
            raise ConfigError(f"{func_name}: {name} must be a positive finite number, got {value!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or max_steps < 1:
        raise ConfigError(f"{func_name}: max_steps must be a positive integer, got {max_steps!r}")
    return float(lr), float(epsilon), int(max_steps)


def _as_data(func_name, name, values, ndim_allowed):
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{func_name}: {name} must be numbers, got {type(values).__name__}: {exc}") from None
    if arr.ndim not in ndim_allowed:
        want = " or ".join(f"{d}-D" for d in ndim_allowed)
        raise ShapeError(f"{func_name}: {name} must be a {want} array, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ShapeError(f"{func_name}: {name} is empty; at least one data point is needed")
    if not np.isfinite(arr).all():
        raise ShapeError(f"{func_name}: {name} contains NaN or inf; clean the data first")
    return arr


def _diverged(func_name, lr, step):
    return TrainingDivergedError(
        f"{func_name}: the parameters became NaN or infinite at step {step} with lr={lr!r}: "
        "the learning rate is too large for this data (each step overshoots the minimum). "
        "Try a learning rate about 10 times smaller, or scale the inputs to about [-1, 1]."
    )


def _not_converged(func_name, max_steps, norm, epsilon, lr):
    warnings.warn(
        f"{func_name} stopped at max_steps={max_steps} with gradient norm {norm:.3g}, not yet "
        f"below epsilon={epsilon!r}; the result is not converged (result.converged is False). "
        f"Raise max_steps, raise lr (now {lr!r}) if the loss is still falling slowly, or "
        "loosen epsilon.",
        ConvergenceWarning,
        stacklevel=3,
    )


def fit_line(x, y, *, m0=0.5, b0=0.0, lr=0.01, epsilon=1e-5, max_steps=100_000) -> LineFit:
    """Fit ``y = m x + b`` by batch gradient descent on the mean squared error.

    Each step computes (seed 003's update, over all N points at once)::

        dm = mean(2 b x + 2 m x**2 - 2 x y)     # d MSE / dm
        db = mean(2 b + 2 m x - 2 y)            # d MSE / db
        m -= lr * dm;  b -= lr * db

    and stops as soon as ``sqrt(dm**2 + db**2) < epsilon`` (the gradient of
    the step just taken).

    Parameters
    ----------
    x, y : array_like of shape (N,)
    m0, b0 : float
        Starting guess (the seed's 0.5 and 0).
    lr : float, default 0.01
        Learning rate (the seed's ``alpha``).
    epsilon : float, default 1e-5
        Stop when the gradient norm falls below this (the seed's ``0.1 ** 5``).
    max_steps : int, default 100_000
        Give up after this many steps: a :class:`ConvergenceWarning` says so
        and ``result.converged`` is False.

    Returns
    -------
    LineFit
        ``m``, ``b``, ``steps``, ``converged``, ``gradient_norm``, ``loss_history``.

    Raises
    ------
    ShapeError
        If x and y are not 1-D arrays of the same length, or hold NaN/inf.
    TrainingDivergedError
        If the parameters become NaN/inf (learning rate too large).
    """
    func_name = "fit_line"
    lr, epsilon, max_steps = _check_options(func_name, lr, epsilon, max_steps)
    x = _as_data(func_name, "x", x, (1,))
    y = _as_data(func_name, "y", y, (1,))
    if x.shape != y.shape:
        raise ShapeError(f"{func_name}: x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    n = x.shape[0]
    m, b = float(m0), float(b0)
    x_squared = x**2
    losses = []  # grows with the steps taken, not with max_steps (which may be huge)
    converged, norm, step = False, float("inf"), 0
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported as such below
        while step < max_steps:
            residual = m * x + b - y
            losses.append(float(np.mean(residual**2)))
            # cumsum is a left-to-right sum, like the seed's loop: its values to the last bit.
            dm = np.cumsum(2 * b * x + 2 * m * x_squared - 2 * x * y)[-1] / n
            db = np.cumsum(2 * b + 2 * m * x - 2 * y)[-1] / n
            m -= lr * dm
            b -= lr * db
            step += 1
            norm = float(np.sqrt(dm**2 + db**2))
            if not (np.isfinite(m) and np.isfinite(b)):
                raise _diverged(func_name, lr, step)
            if norm < epsilon:
                converged = True
                break
    if not converged:
        _not_converged(func_name, max_steps, norm, epsilon, lr)
    return LineFit(float(m), float(b), step, converged, norm, np.array(losses))


def fit_linear(X, y, *, w0=None, b0=0.0, lr=0.01, epsilon=1e-5, max_steps=100_000) -> LinearFit:
    """Fit ``y = X @ w + b`` by batch gradient descent on the mean squared error.

    The same method as :func:`fit_line` for D features: with ``r = X @ w + b - y``
    the gradient is ``dw = 2 X.T @ r / N`` and ``db = 2 mean(r)``; stop when
    ``sqrt(|dw|**2 + db**2) < epsilon``.

    Parameters
    ----------
    X : array_like of shape (N, D), or (N,) for one feature
    y : array_like of shape (N,)
    w0 : array_like of shape (D,), optional
        Starting weights (zeros by default).
    b0, lr, epsilon, max_steps
        As in :func:`fit_line`.

    Returns
    -------
    LinearFit
        ``weights`` (D,), ``bias``, ``steps``, ``converged``, ``gradient_norm``,
        ``loss_history``.
    """
    func_name = "fit_linear"
    lr, epsilon, max_steps = _check_options(func_name, lr, epsilon, max_steps)
    X = _as_data(func_name, "X", X, (1, 2))
    if X.ndim == 1:
        X = X[:, None]
    y = _as_data(func_name, "y", y, (1,))
    n, d = X.shape
    if y.shape[0] != n:
        raise ShapeError(f"{func_name}: X has {n} rows but y has {y.shape[0]} values")
    if w0 is None:
        w = np.zeros(d)
    else:
        w = np.array(w0, dtype=np.float64).reshape(-1)
        if w.shape != (d,):
            raise ShapeError(f"{func_name}: w0 must have shape ({d},) (one weight per column of X), got {np.shape(w0)}")
    b = float(b0)
    losses = []  # grows with the steps taken, not with max_steps (which may be huge)
    converged, norm, step = False, float("inf"), 0
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported as such below
        while step < max_steps:
            residual = X @ w + b - y  # (N,)
            losses.append(float(residual @ residual / n))
            dw = (2.0 / n) * (X.T @ residual)  # (D,)
            db = 2.0 * residual.mean()
            w -= lr * dw
            b -= lr * db
            step += 1
            norm = float(np.sqrt(dw @ dw + db**2))
            if not (np.isfinite(w).all() and np.isfinite(b)):
                raise _diverged(func_name, lr, step)
            if norm < epsilon:
                converged = True
                break
    if not converged:
        _not_converged(func_name, max_steps, norm, epsilon, lr)
    return LinearFit(w, float(b), step, converged, norm, np.array(losses))
