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

    def loss(self, x, t, train_flg=False):
        """Cross-entropy of the softmax of the scores; a single sample ``x`` (2,) with ``t`` (3,) works too."""
        if hasattr(x, "shape") and tuple(x.shape) == (2,):
            x = x[np.newaxis]
            t = np.asarray(t)
            t = t[np.newaxis] if t.ndim == 1 else t.reshape(1)
        return super().loss(x, t, train_flg)

    def _scores(self, x, train_flg):
        return x @ self.W

    def _loss(self, x, t, train_flg):
        return cross_entropy_error(softmax(self._scores(x, train_flg)), t)

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
        Samples whose pixel ``i`` is 0 are skipped: their loss does not
        change. About 100x faster than the loop for 784-50-10 on a batch of
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
        a1 = x @ W1 + b1  # (N, H)
        z1 = act(a1)
        scores = z1 @ W2 + b2
        p = softmax(scores)  # (N, C)

        def loss_change(delta_scores_dir, delta):
            """Sum over samples of L_n(s + delta * dir) - L_n(s), for many perturbations at once.

            ``delta`` (..., N) scales direction ``delta_scores_dir`` (..., N, C)
            or (..., 1, C); uses log(sum_c p_c exp(delta * dir_c)) written
            with log1p/expm1, exact for the small changes h makes.
            """
            moved = delta[..., None] * delta_scores_dir  # (..., N, C)
            lse_change = np.log1p(np.sum(p * np.expm1(moved), axis=-1))  # (..., N)
            return np.sum(lse_change - np.sum(onehot * moved, axis=-1), axis=-1)

        def central(plus, minus):
            return (plus - minus) / (2 * h) / n

        grads = {}
        # b2[k] moves score k of every sample by ±h.
        eye = np.eye(c)[:, None, :]  # (C, 1, C)
        ones = np.ones((c, n))
        grads["b2"] = central(loss_change(eye, h * ones), loss_change(eye, -h * ones))
        # W2[j, k] moves score k by ±h * z1[:, j].
        dz = np.broadcast_to(z1.T[:, None, :], (z1.shape[1], c, n))  # (H, C, N)
        eye_hc = np.eye(c)[None, :, None, :]  # (1, C, 1, C)
        grads["W2"] = central(loss_change(eye_hc, h * dz), loss_change(eye_hc, -h * dz))
        # b1[j] moves a1[:, j] by ±h; the scores move by (act(a1 ± h) - z1) * W2[j].
        w2_rows = W2[:, None, :]  # (H, 1, C)
        d_plus = (act(a1 + h) - z1).T  # (H, N)
        d_minus = (act(a1 - h) - z1).T
        grads["b1"] = central(loss_change(w2_rows, d_plus), loss_change(w2_rows, d_minus))
        # W1[i, j] moves a1[n, j] by ±h * x[n, i]. Samples with x[n, i] == 0 are unaffected
        # (blank pixels: most of an MNIST image), so only the (pixel, sample) pairs with
        # x[n, i] != 0 are visited, all hidden units j of a pair at once.
        pixel_idx, sample_idx = np.nonzero(x.T)  # pairs sorted by pixel
        n_hidden = W1.shape[1]
        target_dot_w2 = onehot @ W2.T  # (N, H): the loss's linear part per unit step of unit j
        diffs = np.empty((pixel_idx.size, n_hidden))
        block = max(1, 4_000_000 // (n_hidden * c))
        for start in range(0, pixel_idx.size, block):
            pairs = slice(start, start + block)
            rows = sample_idx[pairs]
            step = h * x[rows, pixel_idx[pairs]][:, None]  # (B, 1)
            a, z = a1[rows], z1[rows]  # (B, H)
            p_rows = p[rows][:, :, None]  # (B, C, 1)

            def pair_loss_change(d):
                """L_n(moved) - L_n for each pair and hidden unit: (B, H)."""
                lse = np.log1p(np.matmul(np.expm1(d[:, :, None] * W2), p_rows)[..., 0])
                return lse - d * target_dot_w2[rows]

            diffs[pairs] = pair_loss_change(act(a + step) - z) - pair_loss_change(act(a - step) - z)
        gW1 = np.zeros_like(W1)
        np.add.at(gW1, pixel_idx, diffs)
        grads["W1"] = gW1 / (2 * h) / n
        return {k: grads[k].astype(self.dtype) for k in ("W1", "b1", "W2", "b2")}
