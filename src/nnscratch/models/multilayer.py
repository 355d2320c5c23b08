"""MultiLayerNet: a fully connected network of any depth (book 6.1-6.4, ``multi_layer_net_extend.py``)."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ConfigError
from ..layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid, Tanh
from .base import LayerModel, resolve_dtype

__all__ = ["MultiLayerNet"]

_ACTIVATION_LAYERS = {"relu": Relu, "sigmoid": Sigmoid, "tanh": Tanh}
# Names of the scale of the initial weights: std = sqrt(gain / fan_in).
_INIT_GAINS = {"he": 2.0, "relu": 2.0, "xavier": 1.0, "sigmoid": 1.0}


class MultiLayerNet(LayerModel):
    """Fully connected network with optional batch norm, dropout and weight decay (book ch. 6).

    Each hidden layer is ``Affine -> [BatchNorm] -> activation -> [Dropout]``;
    the last is an ``Affine`` giving the scores, followed by softmax with
    cross-entropy.

    Parameters
    ----------
    input_size : int
    hidden_size_list : list of int
        Widths of the hidden layers, e.g. ``[100, 100, 100]``.
    output_size : int
    activation : 'relu' (default), 'sigmoid' or 'tanh'
    weight_init_std : 'he' (default), 'xavier' or a number
        'he' (alias 'relu') draws weights with std ``sqrt(2 / fan_in)``,
        'xavier' (alias 'sigmoid') with ``sqrt(1 / fan_in)``; a number is
        used as the std of every layer. Biases start at 0.
    weight_decay_lambda : float
        L2 weight decay: ``0.5 * lambda * sum(W**2)`` over every ``W`` is
        added to the loss, and ``lambda * W`` to its gradient.
    use_dropout : bool
    dropout_ratio : float
        Probability of dropping a hidden activation (inverted dropout).
    use_batchnorm : bool
    seed : int, optional
        Seeds the initial weights and the dropout masks.
    dtype : 'float32' (default) or 'float64'

    ``params``: ``W1``/``b1`` ... ``W{L}``/``b{L}`` (``L = len(hidden_size_list) + 1``)
    and, with batch norm, ``gamma1``/``beta1`` ... for the hidden layers;
    ``buffers``: ``running_mean1``/``running_var1`` ...
    """

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std="he", weight_decay_lambda=0.0, use_dropout=False,
                 dropout_ratio=0.5, use_batchnorm=False, *, seed=None, dtype="float32"):
        super().__init__()
        if isinstance(hidden_size_list, (str, bytes, dict)) or not hasattr(hidden_size_list, "__iter__"):
            hint = (f" (one hidden layer: [{hidden_size_list}])"
                    if isinstance(hidden_size_list, (int, np.integer)) and not isinstance(hidden_size_list, bool) else "")
            raise ConfigError(f"hidden_size_list must be a list of layer sizes, e.g. [100, 100], "
                              f"got {hidden_size_list!r}{hint}")
        sizes = [input_size, *list(hidden_size_list), output_size]
        for i, size in enumerate(sizes):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                what = "input_size" if i == 0 else "output_size" if i == len(sizes) - 1 else "hidden_size_list"
                raise ConfigError(f"{what} must hold positive integers, got {size!r}")
        sizes = [int(s) for s in sizes]
        if activation not in _ACTIVATION_LAYERS:
            raise ConfigError(f"activation must be one of {sorted(_ACTIVATION_LAYERS)}, got {activation!r}")
        if isinstance(weight_init_std, str):
            if weight_init_std.lower() not in _INIT_GAINS:
                raise ConfigError(f"weight_init_std must be 'he', 'xavier' or a positive number, got {weight_init_std!r}")
        elif not isinstance(weight_init_std, numbers.Real) or not weight_init_std > 0:
            raise ConfigError(f"weight_init_std must be 'he', 'xavier' or a positive number, got {weight_init_std!r}")
        self.dtype = resolve_dtype(dtype)
        self.input_shape = (sizes[0],)
        self.output_size = sizes[-1]
        self.hidden_size_list = sizes[1:-1]

        rng = np.random.default_rng(seed)
        n_hidden = len(self.hidden_size_list)
        dropout_rngs = rng.spawn(n_hidden) if use_dropout else []
        for idx in range(1, len(sizes)):
            fan_in, fan_out = sizes[idx - 1], sizes[idx]
            if isinstance(weight_init_std, str):
                std = np.sqrt(_INIT_GAINS[weight_init_std.lower()] / fan_in)
            else:
                std = float(weight_init_std)
            if getattr(self, "_copying", False):  # Model.astype: load_params sets the weights
                W = np.empty((fan_in, fan_out), dtype=self.dtype)
            else:
                W = (std * rng.standard_normal((fan_in, fan_out))).astype(self.dtype)
            self.layers[f"Affine{idx}"] = Affine(W, np.zeros(fan_out, dtype=self.dtype))
            if idx == len(sizes) - 1:
                break
            if use_batchnorm:
                self.layers[f"BatchNorm{idx}"] = BatchNormalization(
                    np.ones(fan_out, dtype=self.dtype), np.zeros(fan_out, dtype=self.dtype),
                    running_mean=np.zeros(fan_out, dtype=self.dtype),
                    running_var=np.ones(fan_out, dtype=self.dtype))
            self.layers[f"Activation_function{idx}"] = _ACTIVATION_LAYERS[activation]()
            if use_dropout:
                self.layers[f"Dropout{idx}"] = Dropout(dropout_ratio, rng=dropout_rngs[idx - 1])
        self._register_layers(weight_decay_lambda)
        self.config = {
            "input_size": sizes[0],
            "hidden_size_list": list(self.hidden_size_list),
            "output_size": sizes[-1],
            "activation": activation,
            "weight_init_std": weight_init_std if isinstance(weight_init_std, str) else float(weight_init_std),
            "weight_decay_lambda": float(weight_decay_lambda),
            "use_dropout": bool(use_dropout),
            "dropout_ratio": float(dropout_ratio),
            "use_batchnorm": bool(use_batchnorm),
            "seed": seed,
            "dtype": self.dtype.name,
        }
