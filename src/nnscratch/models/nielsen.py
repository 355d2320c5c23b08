"""NielsenNetwork: Nielsen's ``network.py`` / ``network2.py``, vectorised over the mini-batch.

Michael Nielsen, *Neural Networks and Deep Learning*, chapters 1-3. Every
layer, the output one included, is sigmoid; the cost is the quadratic cost
(chapter 1, ``network.py``) or the cross-entropy cost (chapter 3,
``network2.py``), with optional L2 regularisation.

Differences in layout, not in meaning:

* Nielsen stores ``weights[l]`` of shape (out, in) and column-vector
  ``biases[l]`` of shape (out, 1), and backpropagates one sample at a time.
  Here a mini-batch is one (N, in) matrix and ``params['W1']`` has shape
  (in, out) (``= weights[0].T``), ``params['b1']`` shape (out,). The
  :attr:`NielsenNetwork.weights` and :attr:`NielsenNetwork.biases`
  properties give Nielsen's layout as *views* of the same arrays.
* Nielsen's regularised cost is ``C = C0 + lmbda / (2 n) * sum(w**2)`` where
  ``n`` is the size of the *training set* (not of the mini-batch), and his
  update is ``w -> (1 - eta * lmbda / n) * w - eta / m * sum(nabla_w)``. The
  same follows from this network's loss, ``mean cost over the batch +
  0.5 * (lam / n_train) * sum(W**2)`` (biases are not regularised), with
  plain SGD at learning rate ``eta``: pass ``n_train`` = the number of
  training images (Nielsen's 50,000; 60,000 for the whole MNIST training set).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ConfigError
from ..functions import sigmoid
from .base import Model, resolve_dtype

__all__ = ["NielsenNetwork"]

_COSTS = ("quadratic", "cross-entropy")


class NielsenNetwork(Model):
    """Sigmoid network with quadratic or cross-entropy cost and L2 regularisation (Nielsen ch. 1-3).

    Parameters
    ----------
    sizes : list of int
        Neurons per layer, input first: ``[784, 30, 10]``.
    cost : 'cross-entropy' (default, ``network2.py``) or 'quadratic' (``network.py``)
    lam : float
        Nielsen's L2 regularisation parameter ``lmbda``.
    n_train : int
        Training-set size ``n`` that ``lam`` is divided by (see the module notes).
    weight_init : 'default' or 'large'
        'default' (network2): weights ~ N(0, 1/fan_in), biases ~ N(0, 1).
        'large' (network.py): weights and biases ~ N(0, 1).
    seed : int, optional
    dtype : 'float32' (default) or 'float64'

    ``predict`` returns the output activations (sigmoids in (0, 1)), ``loss``
    the chosen cost averaged over the batch plus the L2 term. Targets may be
    labels (turned into one-hot vectors, Nielsen's ``vectorized_result``) or
    one-hot rows.
    """

    scores_are_logits = False

    def __init__(self, sizes, cost="cross-entropy", lam=0.0, n_train=50000, weight_init="default", *,
                 seed=None, dtype="float32"):
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
            raise ConfigError(f"sizes must list at least two positive integers (input and output), got {sizes!r}")
        if cost not in _COSTS:
            raise ConfigError(f"cost must be 'quadratic' or 'cross-entropy', got {cost!r}")
        if not isinstance(lam, numbers.Real) or lam < 0:
            raise ConfigError(f"lam must be a number >= 0, got {lam!r}")
        if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train < 1:
            raise ConfigError(f"n_train must be a positive integer (the training-set size), got {n_train!r}")
        if weight_init not in ("default", "large"):
            raise ConfigError(f"weight_init must be 'default' or 'large', got {weight_init!r}")
        self.sizes = [int(s) for s in sizes]
        self.num_layers = len(self.sizes)
        self.cost = cost
        self.lam = float(lam)
        self.n_train = int(n_train)
        self.dtype = resolve_dtype(dtype)
        self.input_shape = (self.sizes[0],)
        self.output_size = self.sizes[-1]
        rng = np.random.default_rng(seed)
        for idx, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), 1):
            scale = 1.0 if weight_init == "large" else 1.0 / np.sqrt(fan_in)
            self.params[f"b{idx}"] = rng.standard_normal(fan_out).astype(self.dtype)
            self.params[f"W{idx}"] = (scale * rng.standard_normal((fan_in, fan_out))).astype(self.dtype)
        self.params = {k: self.params[k] for i in range(1, self.num_layers) for k in (f"W{i}", f"b{i}")}
        self.config = {
            "sizes": self.sizes,
            "cost": cost,
            "lam": self.lam,
            "n_train": self.n_train,
            "weight_init": weight_init,
            "seed": seed,
            "dtype": self.dtype.name,
        }

    # -------------------------------------------------- Nielsen's own view
    @property
    def weights(self) -> list:
        """Nielsen's ``weights``: list of (out, in) arrays, views of ``params['W1']``, ..."""
        return [self.params[f"W{i}"].T for i in range(1, self.num_layers)]

    @property
    def biases(self) -> list:
        """Nielsen's ``biases``: list of (out, 1) column vectors, views of ``params['b1']``, ..."""
        return [self.params[f"b{i}"].reshape(-1, 1) for i in range(1, self.num_layers)]

    def feedforward(self, a):
        """Nielsen's ``feedforward``: a column vector (in, 1) gives the output column (out, 1)."""
        a = np.asarray(a)
        return self.predict(a.reshape(1, -1)).reshape(-1, 1)

    # ------------------------------------------------------------ the maths
    def _layers(self):
        return [(self.params[f"W{i}"], self.params[f"b{i}"]) for i in range(1, self.num_layers)]

    def _forward(self, x):
        """Weighted inputs ``zs`` and activations (input first), each (N, size)."""
        activations, zs = [x], []
        for W, b in self._layers():
            z = activations[-1] @ W + b
            zs.append(z)
            activations.append(sigmoid(z))
        return zs, activations

    def _onehot(self, t):
        return t if t.ndim == 2 else np.eye(self.output_size, dtype=self.dtype)[t]

    def _cost(self, z, a, y):
        """Cost summed over outputs, averaged over the batch."""
        n = a.shape[0]
        if self.cost == "quadratic":
            return 0.5 * np.sum((a - y) ** 2) / n
        # -y log a - (1 - y) log(1 - a) with log a = -softplus(-z), log(1 - a) = -softplus(z):
        # finite even where a rounds to 0 or 1 (Nielsen needs np.nan_to_num there).
        return np.sum(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)) / n

    def _l2_penalty(self):
        if not self.lam:
            return 0.0
        return 0.5 * self.lam / self.n_train * sum(float(np.sum(W * W)) for W, _ in self._layers())

    def _scores(self, x, train_flg):
        return self._forward(x)[1][-1]

    def _batch_data_loss(self, x, t):
        zs, activations = self._forward(x)
        return self._cost(zs[-1], activations[-1], self._onehot(t))

    def _loss(self, x, t, train_flg):
        zs, activations = self._forward(x)
        return self._cost(zs[-1], activations[-1], self._onehot(t)) + self._l2_penalty()

    def _loss_and_gradient(self, x, t):
        y = self._onehot(t)
        n = x.shape[0]
        zs, activations = self._forward(x)
        loss = self._cost(zs[-1], activations[-1], y) + self._l2_penalty()
        a_out = activations[-1]
        delta = a_out - y  # (N, out): cross-entropy's delta, sigma'(z) cancels
        if self.cost == "quadratic":
            delta = delta * a_out * (1 - a_out)
        delta /= n
        grads = {}
        decay = self.lam / self.n_train
        layers = self._layers()
        for idx in range(len(layers), 0, -1):
            W, _ = layers[idx - 1]
            grads[f"W{idx}"] = activations[idx - 1].T @ delta
            if decay:
                grads[f"W{idx}"] += decay * W
            grads[f"b{idx}"] = delta.sum(axis=0)
            if idx > 1:
                a = activations[idx - 1]
                delta = (delta @ W.T) * a * (1 - a)  # sigma'(z) = a (1 - a)
        return loss, {k: grads[k] for k in self.params}
