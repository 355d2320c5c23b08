"""Fully connected layers, activations, dropout, batch norm and the softmax loss (book ch. 5-6).

Contract (docs/architecture.md): a layer has ``params`` and ``grads`` dicts
(same keys; ``{}`` when it has nothing to learn), ``forward(x, train_flg=True)``
caching what ``backward`` needs, and ``backward(dout)`` returning ``dL/dx``.
The arrays in ``params`` and ``grads`` *are* the layer's arrays: the book's
names (``W``, ``b``, ``dW``, ``db``, ``gamma``, ...) are properties reading
those dicts, and ``backward`` writes gradients into the preallocated
``grads`` arrays (``out=``), so an optimizer holding the dicts always sees
the current values. A gradient array is overwritten by the next ``backward``:
copy it if you want to keep it.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functions import check_targets, log_softmax, sigmoid

__all__ = [
    "Layer",
    "Affine",
    "Relu",
    "Sigmoid",
    "Tanh",
    "SoftmaxWithLoss",
    "Dropout",
    "BatchNormalization",
]


class Layer:
    """Base class: a layer with no parameters.

    Subclasses fill ``params`` (trainable arrays), ``grads`` (same keys, same
    shapes) and ``buffers`` (non-trainable state such as running statistics).
    """

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}

    def forward(self, x, train_flg=True):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __repr__(self):
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


def _param_property(key: str, doc: str):
    """A book-style attribute (``layer.W``) that reads and writes ``layer.params[key]``."""

    def get(self):
        return self.params[key]

    def set(self, value):
        self.params[key] = value
        grad = self.grads.get(key)
        if grad is None or grad.shape != value.shape or grad.dtype != value.dtype:
            self.grads[key] = np.zeros_like(value)

    return property(get, set, doc=doc)


def _grad_property(key: str, doc: str):
    def get(self):
        return self.grads[key]

    def set(self, value):
        self.grads[key] = value

    return property(get, set, doc=doc)


def _require_float(x, name: str = "x") -> np.ndarray:
    if not hasattr(x, "dtype") or x.dtype.kind != "f":
        kind = getattr(x, "dtype", type(x).__name__)
        raise ShapeError(f"{name} must be a floating-point array, got {kind}")
    return x


class Affine(Layer):
    """Fully connected layer ``out = x @ W + b`` (book 5.6).

    Parameters
    ----------
    W : ndarray of shape (D, M)
    b : ndarray of shape (M,)

    ``forward`` flattens an input of shape (N, d1, d2, ...) with
    ``d1 * d2 * ... == D`` to (N, D) (e.g. conv feature maps), and
    ``backward`` gives ``dx`` back in the input's shape. A network's first
    layer may set ``compute_input_grad = False``: nobody needs dL/d(images),
    and skipping it saves one of the two matrix products of ``backward``
    (``backward`` then returns None).
    """

    W = _param_property("W", "Weights, shape (D, M) (same array as ``params['W']``).")
    b = _param_property("b", "Biases, shape (M,) (same array as ``params['b']``).")
    dW = _grad_property("W", "dL/dW after ``backward`` (same array as ``grads['W']``).")
    db = _grad_property("b", "dL/db after ``backward`` (same array as ``grads['b']``).")

    def __init__(self, W, b):
        super().__init__()
        W = _require_float(W, "W")
        b = _require_float(b, "b")
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ShapeError(f"Affine needs W of shape (D, M) and b of shape (M,), got W {W.shape}, b {b.shape}")
        self.W = W
        self.b = b
        self.x = None  # (N, D): the flattened input
        self.original_x_shape = None
        self.compute_input_grad = True

    def forward(self, x, train_flg=True):
        self.original_x_shape = x.shape
        # A 1-D x is one sample, as in the book's chapter 3 (out is then 1-D too).
        x = x.reshape(1, -1) if x.ndim == 1 else x.reshape(x.shape[0], -1)  # (N, D)
        if x.shape[1] != self.W.shape[0]:
            raise ShapeError(
                f"Affine expects inputs with {self.W.shape[0]} features per sample, "
                f"got shape {self.original_x_shape}"
            )
        self.x = x
        out = x @ self.W  # (N, M)
        out += self.b  # in place: one (N, M) array per forward instead of two
        return out[0] if len(self.original_x_shape) == 1 else out

    def backward(self, dout):
        dout = dout.reshape(self.x.shape[0], -1)  # (N, M), also for a 1-D sample
        np.matmul(self.x.T, dout, out=self.dW)
        np.add.reduce(dout, axis=0, out=self.db)  # np.sum without its Python wrapper
        if not self.compute_input_grad:
            return None
        dx = dout @ self.W.T  # (N, D)
        return dx.reshape(self.original_x_shape)


class Relu(Layer):
    """``max(0, x)``; backward passes ``dout`` where ``x > 0`` (book 5.5.1)."""

    def __init__(self):
        super().__init__()
        self.mask = None  # True where the input was > 0

    def forward(self, x, train_flg=True):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class Sigmoid(Layer):
    """Logistic sigmoid; backward is ``dout * y * (1 - y)`` (book 5.5.2)."""

    def __init__(self):
        super().__init__()
        self.out = None

    def forward(self, x, train_flg=True):
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class Tanh(Layer):
    """Hyperbolic tangent; backward is ``dout * (1 - y**2)``."""

    def __init__(self):
        super().__init__()
        self.out = None

    def forward(self, x, train_flg=True):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out * self.out)


class SoftmaxWithLoss(Layer):
    """Softmax followed by the cross-entropy error, averaged over the batch (book 5.6.3).

    ``forward(x, t)`` takes scores ``x`` of shape (N, C) and targets ``t``,
    either one-hot (N, C) or integer labels (N,), and returns the scalar
    loss. A 1-D ``x`` of shape (C,) is one sample (with a one-hot ``t`` of
    shape (C,) or a single label), as in the book's chapter 4; ``backward``
    then returns shape (C,). The loss comes from
    :func:`nnscratch.functions.log_softmax`, so it is exact and finite
    without the book's ``+1e-7``; the gradient is exactly
    ``(softmax(x) - t) / N`` (``(softmax(x) * sum(t) - t) / N`` for target
    rows that do not sum to 1).
    """

    def __init__(self):
        super().__init__()
        self.loss = None
        self.y = None  # softmax output, (N, C)
        self.t = None  # one-hot (N, C) in x's dtype, or labels (N,)
        self.single_sample = False

    def forward(self, x, t):
        if not hasattr(t, "shape"):  # a label or a list; arrays (also of another backend) stay as they are
            t = np.asarray(t)
        self.single_sample = x.ndim == 1
        if self.single_sample:
            t = t.reshape(1, -1) if t.shape == x.shape else t.reshape(-1)
            x = x.reshape(1, -1)
        if x.ndim != 2:
            raise ShapeError(f"SoftmaxWithLoss expects scores of shape (N, C) or (C,), got shape {x.shape}")
        t = check_targets(x, t)
        n = x.shape[0]
        log_y = log_softmax(x)  # (N, C)
        self.y = np.exp(log_y)
        if t.shape == x.shape:
            t = t.astype(x.dtype, copy=False)
            self.loss = -np.sum(t * log_y) / n
        else:
            self.loss = -np.add.reduce(log_y[np.arange(n), t]) / n  # np.sum, less per-call time
        self.t = t
        return self.loss

    def backward(self, dout=1):
        n = self.y.shape[0]
        if self.t.shape == self.y.shape:
            # y * sum(t) - t: the exact gradient for any target rows; one-hot rows sum to 1.
            dx = self.y * self.t.sum(axis=1, keepdims=True) - self.t
        else:
            dx = self.y.copy()
            dx[np.arange(n), self.t] -= 1
        dx *= dout / n
        return dx[0] if self.single_sample else dx


class Dropout(Layer):
    """Dropout (Srivastava et al. 2014; book 6.4.3), in its *inverted* form.

    In training each activation is kept with probability ``1 - dropout_ratio``
    and the kept ones are scaled by ``1 / (1 - dropout_ratio)``; at test time
    (``train_flg=False``) the layer is the identity. The expected output is
    the same as the book's form (which instead multiplies by
    ``1 - dropout_ratio`` at test time), and a trained network predicts with
    no extra work.

    Parameters
    ----------
    dropout_ratio : float in [0, 1)
        Probability of dropping an activation.
    rng : numpy.random.Generator or int or None
        Source of the masks (a seed makes them reproducible).
    """

    def __init__(self, dropout_ratio=0.5, *, rng=None):
        super().__init__()
        if not 0 <= dropout_ratio < 1:
            raise ConfigError(f"dropout_ratio must be in [0, 1), got {dropout_ratio!r}")
        self.dropout_ratio = float(dropout_ratio)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.mask = None  # (shape of x): 0 or 1 / (1 - ratio)

    def forward(self, x, train_flg=True):
        if not train_flg:
            self.mask = None  # identity: backward passes dout through
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.dropout_ratio
        self.mask = keep * x.dtype.type(1.0 / (1.0 - self.dropout_ratio))
        return x * self.mask

    def backward(self, dout):
        return dout if self.mask is None else dout * self.mask


class BatchNormalization(Layer):
    """Batch normalization (Ioffe & Szegedy 2015; book 6.3).

    Parameters
    ----------
    gamma, beta : ndarray of shape (D,)
        Scale and shift.
    momentum : float
        Weight of the old value in the running statistics:
        ``running = momentum * running + (1 - momentum) * batch``.
    running_mean, running_var : ndarray of shape (D,), optional
        Statistics used when ``train_flg=False``. Left out, they are created
        (zeros and ones) on the first forward pass.

    As in the book, an input of shape (N, d1, d2, ...) is flattened to
    (N, D) with ``D = d1 * d2 * ...``: every feature (every pixel of every
    channel) gets its own statistics. The variance is the biased batch
    variance and ``eps = 1e-6`` (the book's ``10e-7``). The running
    statistics are updated in place, so ``buffers`` stays valid.
    """

    gamma = _param_property("gamma", "Scale, shape (D,) (same array as ``params['gamma']``).")
    beta = _param_property("beta", "Shift, shape (D,) (same array as ``params['beta']``).")
    dgamma = _grad_property("gamma", "dL/dgamma after ``backward``.")
    dbeta = _grad_property("beta", "dL/dbeta after ``backward``.")

    eps = 1e-6

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        super().__init__()
        gamma = _require_float(gamma, "gamma")
        beta = _require_float(beta, "beta")
        if gamma.ndim != 1 or beta.shape != gamma.shape:
            raise ShapeError(f"gamma and beta must have the same shape (D,), got {gamma.shape} and {beta.shape}")
        self.gamma = gamma
        self.beta = beta
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating)) or not 0 <= momentum <= 1:
            raise ConfigError(f"BatchNormalization momentum must be a number in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        if running_mean is not None:
            self.buffers["running_mean"] = running_mean
        if running_var is not None:
            self.buffers["running_var"] = running_var
        self.input_shape = None
        self.batch_size = None
        self.train_flg = True  # mode of the last forward, which backward differentiates
        self.xn = None  # normalized input, (N, D)
        self.std = None  # (D,)

    @property
    def running_mean(self):
        return self.buffers.get("running_mean")

    @property
    def running_var(self):
        return self.buffers.get("running_var")

    def forward(self, x, train_flg=True):
        self.input_shape = x.shape
        x = x.reshape(x.shape[0], -1)  # (N, D)
        if x.shape[1] != self.gamma.shape[0]:
            raise ShapeError(
                f"BatchNormalization expects {self.gamma.shape[0]} features per sample, got shape {self.input_shape}"
            )
        if "running_mean" not in self.buffers:
            self.buffers["running_mean"] = np.zeros_like(self.gamma)
        if "running_var" not in self.buffers:
            self.buffers["running_var"] = np.ones_like(self.gamma)
        self.train_flg = bool(train_flg)
        if train_flg:
            mu = x.mean(axis=0)
            xc = x - mu
            var = np.mean(xc * xc, axis=0)
            std = np.sqrt(var + self.eps)
            self.batch_size = x.shape[0]
            self.xn = xc / std
            self.std = std
            m = self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm *= m
            rm += (1 - m) * mu
            rv *= m
            rv += (1 - m) * var
            xn = self.xn
        else:
            self.std = np.sqrt(self.running_var + self.eps)
            self.xn = xn = (x - self.running_mean) / self.std
        return (self.gamma * xn + self.beta).reshape(self.input_shape)

    def backward(self, dout):
        dout = dout.reshape(dout.shape[0], -1)  # (N, D)
        np.sum(dout, axis=0, out=self.dbeta)
        np.sum(self.xn * dout, axis=0, out=self.dgamma)
        if not self.train_flg:
            # Inference: the running statistics are constants, so the layer is affine in x.
            return (dout * (self.gamma / self.std)).reshape(self.input_shape)
        n = self.batch_size
        # d/dx of gamma * (x - mean) / std, with mean and std depending on x.
        dx = (self.gamma / (n * self.std)) * (n * dout - self.dbeta - self.xn * self.dgamma)
        return dx.reshape(self.input_shape)
