"""The book's first networks: SimpleNet (4.4.1) and TwoLayerNet (4.5 and 5.7)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functions import CROSS_ENTROPY_EPS, cross_entropy_error, relu, sigmoid, softmax
from ..layers import Affine, Relu, Sigmoid
from .base import LayerModel, Model, resolve_dtype

__all__ = ["SimpleNet", "TwoLayerNet"]


class SimpleNet(Model):
    """The book's ``simpleNet``: one 2x3 weight matrix, softmax and cross-entropy (book 4.4.1).

    Parameters
    ----------
    W : array of shape (2, 3), optional
        The weights; by default drawn from a standard normal (the book's
        ``np.random.randn(2, 3)``) with ``seed``.
    seed : int, optional
    dtype : 'float64' (default, like the book) or 'float32'

    ``loss`` is the book's ``cross_entropy_error(softmax(x @ W), t)``, with
    its ``+1e-7``; ``gradient`` is the exact gradient of that loss.
    """

    input_shape = (2,)
    output_size = 3

    def __init__(self, W=None, *, seed=None, dtype="float64"):
        super().__init__()
        self.dtype = resolve_dtype(dtype)
        if W is None:
            W = np.random.default_rng(seed).standard_normal((2, 3))
        W = np.array(W, dtype=self.dtype)
        if W.shape != (2, 3):
            raise ShapeError(f"W must have shape (2, 3), got shape {W.shape}")
        self.params = {"W": W}
        self.config = {"W": W.tolist(), "seed": seed, "dtype": self.dtype.name}

    @property
    def W(self):
        return self.params["W"]

    def predict(self, x, train_flg=False):
        """Scores ``x @ W``: shape (3,) for one sample of shape (2,), (N, 3) for a batch."""
        return super().predict(x, train_flg)

    def _scores(self, x, train_flg):
        return x @ self.W

    def _loss(self, x, t, train_flg):
        return cross_entropy_error(softmax(self._scores(x, train_flg)), t)

    def _batch_data_loss(self, x, t):
        return self._loss(x, t, False)

    def _loss_and_gradient(self, x, t):
        n = x.shape[0]
        y = softmax(self._scores(x, True))  # (N, 3)
        onehot = t if t.ndim == 2 else np.eye(3, dtype=self.dtype)[t]
        # d/dz of -sum_c t_c log(y_c + eps) = sum_c t_c y_c / (y_c + eps) * (y - e_c)
        weight = onehot * y / (y + CROSS_ENTROPY_EPS)  # (N, 3)
        dz = (y * weight.sum(axis=1, keepdims=True) - weight) / n
        loss = -np.sum(onehot * np.log(y + CROSS_ENTROPY_EPS)) / n
        return loss, {"W": x.T @ dz}


_ACTIVATIONS = {"relu": (Relu, relu), "sigmoid": (Sigmoid, sigmoid)}


class TwoLayerNet(LayerModel):
    """Two fully connected layers: ``Affine1 -> Relu1 -> Affine2 -> SoftmaxWithLoss`` (book 5.7).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        784, 50, 10 in the book.
    weight_init_std : float
        Weights are ``weight_init_std * standard normal``; biases start at 0.
    activation : 'relu' (book ch. 5, default) or 'sigmoid' (book ch. 4)
    seed : int, optional
        Seed of the initial weights.
    dtype : 'float32' (default) or 'float64'

    ``params``: ``'W1'`` (input_size, hidden_size), ``'b1'`` (hidden_size,),
    ``'W2'`` (hidden_size, output_size), ``'b2'`` (output_size,).
    ``gradient`` is backprop; :meth:`numerical_gradient` the central
    differences of chapter 4, vectorised.
    """

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, *,
                 activation="relu", seed=None, dtype="float32"):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("output_size", output_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.dtype = resolve_dtype(dtype)
        self.input_shape = (int(input_size),)
        self.output_size = int(output_size)
        self.activation = activation
        rng = np.random.default_rng(seed)
        std = float(weight_init_std)
        W1 = (std * rng.standard_normal((input_size, hidden_size))).astype(self.dtype)
        W2 = (std * rng.standard_normal((hidden_size, output_size))).astype(self.dtype)
        self.layers = {
            "Affine1": Affine(W1, np.zeros(hidden_size, dtype=self.dtype)),
            activation.capitalize() + "1": _ACTIVATIONS[activation][0](),
            "Affine2": Affine(W2, np.zeros(output_size, dtype=self.dtype)),
        }
        self._register_layers()
        self.config = {
            "input_size": int(input_size),
            "hidden_size": int(hidden_size),
            "output_size": int(output_size),
            "weight_init_std": std,
            "activation": activation,
            "seed": seed,
            "dtype": self.dtype.name,
        }

    def numerical_gradient(self, x, t, h=1e-4):
        """Central differences ``(L(p + h) - L(p - h)) / (2h)`` for every parameter (book 4.5).

        Returns the same numbers as perturbing each element in turn and
        running the whole network twice (the book's ``nditer`` loop), but
        computed together: changing ``W1[i, j]`` by ``±h`` only moves hidden
        unit ``j``'s pre-activation by ``±h * x[:, i]``, so the perturbed
        scores are the unperturbed ones plus a rank-1 change
        ``(act(a1 ± h x[:, i]) - z1)[:, j] * W2[j]``, and the change of the loss
        for every perturbation comes from one vectorised expression,
        ``log(sum_c p_c exp(ds_c)) - ds_t`` (in blocks, to bound memory).
        ``b1`` is handled as the weight of an extra input that is always 1;
        ``W2`` and ``b2`` move a single score each, which is elementwise.
        Samples whose pixel ``i`` is 0 are skipped: their loss does not
        change. Over 100x faster than the loop for 784-50-10 on a batch of
        100 (``bench/numerical_gradient.py``); the two agree to ~1e-11.
        Computed in float64 whatever the model's dtype; returned in the
        model's dtype.

        Parameters
        ----------
        x : ndarray of shape (N, input_size)
        t : labels (N,) or one-hot (N, output_size)
        h : float
            The difference step (the book's ``1e-4``).

        Returns
        -------
        dict with the keys and shapes of ``params``.
        """
        x, t = self._check_xt(x, t)
        if not h > 0:
            raise ConfigError(f"h must be positive, got {h!r}")
        act = _ACTIVATIONS[self.activation][1]
        f64 = np.float64
        x = x.astype(f64)
        W1, b1, W2, b2 = (self.params[k].astype(f64) for k in ("W1", "b1", "W2", "b2"))
        n, c = x.shape[0], self.output_size
        onehot = t.astype(f64) if t.ndim == 2 else np.eye(c)[t]  # (N, C)
        t_sum = onehot.sum(axis=1, keepdims=True)  # (N, 1): 1 for one-hot rows
        a1 = x @ W1 + b1  # (N, H)
        z1 = act(a1)
        scores = z1 @ W2 + b2
        p = softmax(scores)  # (N, C)

        grads = {}
        # The output layer: b2[k] and W2[j, k] move score k alone, of sample n by d[n, k]
        # (±h and ±h * z1[n, j]); the loss of sample n changes by
        # sum(t) log(1 + p_k (exp(d) - 1)) - t_k d, written with log1p/expm1 to stay exact for
        # tiny d (sum(t) is 1 for one-hot rows).
        def one_score_moved(d):
            return t_sum * np.log1p(p * np.expm1(d)) - onehot * d

        grads["b2"] = (one_score_moved(np.full_like(p, h)) - one_score_moved(np.full_like(p, -h))).sum(axis=0)
        step = h * z1.T[:, :, None]  # (H, N, 1)
        grads["W2"] = (one_score_moved(step) - one_score_moved(-step)).sum(axis=1)  # (H, C)

        # The hidden layer: W1[i, j] moves a1[n, j] by ±h * x[n, i], b1[j] by ±h (the weight of an
        # input that is always 1). All scores of sample n then move by d * W2[j] with
        # d = act(a1[n, j] ± step) - z1[n, j]. Samples with x[n, i] == 0 are unaffected (blank
        # pixels: most of an MNIST image), so only (input, sample) pairs with x[n, i] != 0 are
        # visited, every hidden unit of a pair at once.
        x1 = np.concatenate([x, np.ones((n, 1))], axis=1)  # (N, D + 1)
        input_idx, sample_idx = np.nonzero(x1.T)  # pairs, sorted by input
        n_hidden = W1.shape[1]
        target_dot_w2 = onehot @ W2.T  # (N, H)
        diffs = np.empty((input_idx.size, n_hidden))
        block = max(1, 4_000_000 // (n_hidden * c))
        for start in range(0, input_idx.size, block):
            pairs = slice(start, start + block)
            rows = sample_idx[pairs]
            step = h * x1[rows, input_idx[pairs]][:, None]  # (B, 1)
            a, z = a1[rows], z1[rows]  # (B, H)
            p_rows = p[rows][:, :, None]  # (B, C, 1)

            def all_scores_moved(d):
                """L_n(s + d W2[j]) - L_n(s) for each pair and hidden unit j: (B, H)."""
                lse = np.log1p(np.matmul(np.expm1(d[:, :, None] * W2), p_rows)[..., 0])
                return t_sum[rows] * lse - d * target_dot_w2[rows]

            diffs[pairs] = all_scores_moved(act(a + step) - z) - all_scores_moved(act(a - step) - z)
        sums = np.zeros((W1.shape[0] + 1, n_hidden))
        np.add.at(sums, input_idx, diffs)
        grads["W1"], grads["b1"] = sums[:-1], sums[-1]
        grads = {k: g / (2 * h) / n for k, g in grads.items()}
        return {k: grads[k].astype(self.dtype) for k in ("W1", "b1", "W2", "b2")}
