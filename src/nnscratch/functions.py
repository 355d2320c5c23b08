"""Activation and loss functions as pure NumPy functions (book chapters 3-4).

Every function keeps the floating dtype it is given (float32 in, float32 out)
and never warns about overflow, however large ``|x|`` is. Integer or boolean
inputs are computed in float64, as NumPy would.

Losses follow the book's conventions:

* :func:`cross_entropy_error` takes *probabilities* ``y`` (e.g. a softmax
  output) and, like the book, adds ``1e-7`` inside the log so that a
  probability of exactly 0 gives a large finite loss instead of ``inf``. The
  layer :class:`nnscratch.layers.SoftmaxWithLoss` does not need that guard: it
  works from the scores with :func:`log_softmax`, which is exact and finite.
* :func:`mean_squared_error` is the book's ``0.5 * sum((y - t)**2)`` (a sum, not
  a mean over the batch).
"""

from __future__ import annotations

import numpy as np

from .errors import ShapeError

__all__ = [
    "step_function",
    "sigmoid",
    "sigmoid_grad",
    "relu",
    "relu_grad",
    "tanh",
    "identity",
    "softmax",
    "log_softmax",
    "cross_entropy_error",
    "mean_squared_error",
]

#: Added to probabilities inside the log by :func:`cross_entropy_error` (the book's ``delta``).
CROSS_ENTROPY_EPS = 1e-7


def _as_float_array(x, name: str = "x") -> np.ndarray:
    """``x`` as an ndarray of a floating dtype (ints and bools become float64)."""
    x = np.asarray(x)
    if x.dtype.kind == "f":
        return x
    if x.dtype.kind in "biu":
        return x.astype(np.float64)
    raise ShapeError(f"{name} must be an array of numbers, got dtype {x.dtype}")


def _scalar_if_0d(a: np.ndarray):
    return a[()] if a.ndim == 0 else a


def step_function(x):
    """Step function: 1 where ``x > 0``, else 0 (book 3.2.2).

    Returns an array of ``x``'s floating dtype (float64 for integer input).
    """
    x = _as_float_array(x)
    return _scalar_if_0d((x > 0).astype(x.dtype))


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, without overflow for any ``x``.

    Uses ``exp(-|x|)``, which lies in ``(0, 1]``: ``1 / (1 + e)`` for
    ``x >= 0`` and ``e / (1 + e)`` for ``x < 0``. This is exact to rounding
    in both tails, where the textbook formula overflows (``x << 0``).
    """
    x = _as_float_array(x)
    e = np.exp(-np.abs(x))
    return _scalar_if_0d(np.where(x >= 0, 1 / (1 + e), e / (1 + e)))


def sigmoid_grad(x):
    """Derivative of :func:`sigmoid`: ``sigmoid(x) * (1 - sigmoid(x))``."""
    s = sigmoid(x)
    return (1 - s) * s


def relu(x):
    """Rectified linear unit ``max(0, x)``."""
    x = _as_float_array(x)
    return _scalar_if_0d(np.maximum(x, 0))


def relu_grad(x):
    """Derivative of :func:`relu`: 1 where ``x > 0``, else 0 (0 at the kink)."""
    return step_function(x)


def tanh(x):
    """Hyperbolic tangent (``np.tanh``, which never overflows)."""
    x = _as_float_array(x)
    return _scalar_if_0d(np.tanh(x))


def identity(x):
    """Identity function, the output activation for regression (book 3.5)."""
    return x


def rowwise_max(x: np.ndarray) -> np.ndarray:
    """``x.max(axis=-1, keepdims=True)`` of an (N, C) batch of scores, faster.

    NumPy reduces many short rows slowly; the maxima of the columns of the
    transposed copy are the same numbers (3x faster for (100, 10)), so
    softmax and the losses built on it keep every bit.
    """
    if x.ndim != 2:
        return np.max(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x.T).max(axis=0)[:, np.newaxis]


def softmax(x):
    """Softmax over the last axis: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array of shape (C,) or (N, C)
        Scores; one row per sample for a batch.

    Returns
    -------
    ndarray of the same shape and dtype; every row sums to 1.

    Subtracting each row's maximum (book 3.5.2) keeps ``exp`` from
    overflowing: the largest exponent is 0.
    """
    x = _as_float_array(x)
    shifted = x - rowwise_max(x)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(x):
    """``log(softmax(x))`` over the last axis, computed without ``log(0)``.

    ``x - max - log(sum(exp(x - max)))``: finite for any finite scores, so
    losses built on it need no ``+1e-7`` guard.
    """
    x = _as_float_array(x)
    shifted = x - rowwise_max(x)
    # np.add.reduce is np.sum without its Python wrapper (the same sum, less per-call time).
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))


def check_targets(y: np.ndarray, t, name: str = "t") -> np.ndarray:
    """``t`` as an array of targets for scores or probabilities ``y`` of shape (N, C).

    Returns ``t`` unchanged when it is one-hot (soft targets too) of ``y``'s
    shape, or integer labels of shape (N,) in ``0..C-1``; anything else
    raises ShapeError naming both accepted shapes. Shared by
    :func:`cross_entropy_error` and :class:`nnscratch.layers.SoftmaxWithLoss`.
    """
    t = t if hasattr(t, "shape") else np.asarray(t)
    n, c = y.shape
    if t.shape == y.shape:
        return t
    if t.shape == (n,) and t.dtype.kind in "iu":
        if n and (np.minimum.reduce(t) < 0 or np.maximum.reduce(t) >= c):  # t.min(), t.max()
            raise ShapeError(
                f"{name} holds labels outside 0..{c - 1} (got min {t.min()}, max {t.max()})"
            )
        return t
    raise ShapeError(
        f"{name} must be one-hot of shape {y.shape} or integer labels of shape ({n},), "
        f"got shape {t.shape} and dtype {t.dtype}"
    )


def cross_entropy_error(y, t):
    """Cross-entropy error, averaged over the batch (book 4.2.4).

    Parameters
    ----------
    y : array of shape (C,) or (N, C)
        Predicted probabilities (e.g. a softmax output).
    t : array
        One-hot targets of ``y``'s shape (soft targets work too), or integer
        labels of shape (N,) (a scalar label for 1-D ``y``).

    Returns
    -------
    Scalar of ``y``'s dtype: ``-sum(t * log(y + 1e-7)) / N``. One-hot targets
    and the equivalent labels give the same value.
    """
    y = _as_float_array(y, "y")
    t = np.asarray(t)
    if y.ndim == 1:
        y = y.reshape(1, -1)
        t = t.reshape(1, -1) if t.ndim == 1 else t.reshape(1)
    if y.ndim != 2:
        raise ShapeError(f"y must have shape (C,) or (N, C), got shape {y.shape}")
    t = check_targets(y, t)
    n = y.shape[0]
    if t.shape == y.shape:
        return -np.sum(t.astype(y.dtype, copy=False) * np.log(y + CROSS_ENTROPY_EPS)) / n
    return -np.sum(np.log(y[np.arange(n), t] + CROSS_ENTROPY_EPS)) / n


def mean_squared_error(y, t):
    """The book's squared error ``0.5 * sum((y - t)**2)`` (summed, not averaged; book 4.2.1).

    ``y`` and ``t`` must have the same shape.
    """
    y = _as_float_array(y, "y")
    t = np.asarray(t)
    if t.shape != y.shape:
        raise ShapeError(f"t must have the shape of y {y.shape}, got shape {t.shape}")
    return 0.5 * np.sum((y - t.astype(y.dtype, copy=False)) ** 2)
