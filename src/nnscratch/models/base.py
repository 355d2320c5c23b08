"""Shared model machinery: input checks, batched accuracy, backprop over a layer list.

Two classes:

* :class:`Model` -- the Model contract of docs/architecture.md plus the
  checks at the boundary. A subclass sets ``input_shape`` (one sample, e.g.
  ``(784,)`` or ``(1, 28, 28)``), ``output_size``, ``dtype``, ``params``,
  ``buffers`` and ``config`` and implements ``_scores``, ``_loss`` and
  ``_loss_and_gradient`` on already-checked arrays.
* :class:`LayerModel` -- a :class:`Model` that is an ordered dict of layers
  followed by :class:`~nnscratch.layers.SoftmaxWithLoss` (the book's
  ``self.layers`` / ``self.lastLayer``), with optional L2 weight decay.
  A subclass builds ``self.layers`` and calls :meth:`LayerModel._register_layers`;
  ``TwoLayerNet``, ``MultiLayerNet`` and the conv nets are written this way.

Labels ``t`` are integer class labels of shape (N,) or one-hot rows of
shape (N, output_size) everywhere.
"""

from __future__ import annotations

import copy

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functions import log_softmax
from ..layers import Dropout, SoftmaxWithLoss

__all__ = ["Model", "LayerModel", "resolve_dtype"]


def resolve_dtype(dtype) -> np.dtype:
    """``dtype`` (a NumPy dtype or its name) as a floating ``np.dtype``, else ConfigError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from exc
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return resolved


def _central_differences(loss, param: np.ndarray, h: float, elements) -> np.ndarray:
    """``(loss() at p + h - loss() at p - h) / 2h`` for the given flat elements of ``param``.

    Each element is moved in place and restored bit for bit; elements not
    visited are NaN.
    """
    grad = np.full(param.shape, np.nan)
    gflat = grad.reshape(-1)
    for i in elements:
        idx = np.unravel_index(i, param.shape)  # tuple indexing writes through any view
        orig = param[idx]
        param[idx] = orig + h
        plus = loss()
        param[idx] = orig - h
        minus = loss()
        param[idx] = orig
        gflat[i] = (plus - minus) / (2 * h)
    return grad.astype(param.dtype, copy=False)


def _shape_text(sample_shape) -> str:
    return "(N, " + ", ".join(str(d) for d in sample_shape) + ")"


class Model:
    """Base class of every network (the Model contract).

    Attributes
    ----------
    params : dict[str, ndarray]
        Trainable arrays by stable names (``'W1'``, ``'b1'``, ...). The arrays
        are the ones the network computes with: update them in place.
    buffers : dict[str, ndarray]
        Non-trainable state worth saving (BatchNorm running statistics).
    config : dict
        JSON-able constructor keyword arguments: ``type(m)(**m.config)``
        builds a network of the same architecture.
    input_shape : tuple of int
        Shape of one sample, e.g. ``(784,)``.
    output_size : int
        Number of classes.
    dtype : numpy.dtype
        float32 (training) or float64 (gradient checks).
    """

    input_shape: tuple = ()
    output_size: int = 0
    dtype = np.dtype(np.float32)
    # True when predict() returns pre-softmax scores whose softmax cross-entropy is the
    # data loss; models with another cost (Nielsen's sigmoid outputs) set it False so
    # that reports use their data_loss() instead.
    scores_are_logits = True

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.config: dict = {}

    # ----------------------------------------------------------- validation
    def validate_input(self, x, name: str = "x") -> np.ndarray:
        """``x`` as an array of shape (N, *input_shape) in the model's dtype.

        Raises ShapeError naming the expected shape when the shape is wrong or
        the values are not floating point (e.g. raw uint8 pixels).
        """
        if not hasattr(x, "dtype"):
            x = np.asarray(x)
        if x.dtype.kind != "f":
            raise ShapeError(
                f"{name} must be a floating-point array of shape {_shape_text(self.input_shape)}, "
                f"got dtype {x.dtype} "
                f"(scale raw pixels to [0, 1], e.g. load_mnist(normalize=True))"
            )
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != tuple(self.input_shape):
            hint = ""
            if int(np.prod(x.shape[1:], dtype=np.int64)) == int(np.prod(self.input_shape, dtype=np.int64)):
                hint = f" (reshape with x.reshape(-1, {', '.join(map(str, self.input_shape))}))"
            raise ShapeError(f"{name} must have shape {_shape_text(self.input_shape)}, "
                             f"got shape {x.shape}{hint}")
        if x.shape[0] == 0:
            raise ShapeError(f"{name} must hold at least one sample, got shape {x.shape}")
        return x.astype(self.dtype, copy=False)

    def validate_labels(self, t, n: int, name: str = "t") -> np.ndarray:
        """``t`` checked against ``n`` samples: labels (N,) or one-hot (N, output_size).

        One-hot targets come back in the model's dtype, labels as integers.
        """
        c = self.output_size
        if not hasattr(t, "dtype"):
            t = np.asarray(t)
        if t.ndim == 1:
            if t.dtype.kind not in "iu":
                raise ShapeError(
                    f"{name} as labels must be integers of shape ({n},), got dtype {t.dtype}"
                )
            if t.shape[0] != n:
                raise ShapeError(f"{name} must have shape ({n},) (one label per sample of x), got shape {t.shape}")
            lo, hi = np.minimum.reduce(t), np.maximum.reduce(t)  # t.min(), t.max(), less per-call time
            if lo < 0 or hi >= c:
                raise ShapeError(f"{name} labels must lie in 0..{c - 1}, got values from {lo} to {hi}")
            return t
        if t.ndim == 2:
            if t.shape != (n, c):
                raise ShapeError(f"{name} as one-hot rows must have shape ({n}, {c}), got shape {t.shape}")
            if t.dtype.kind not in "biuf":
                raise ShapeError(f"{name} must be numeric, got dtype {t.dtype}")
            return t.astype(self.dtype, copy=False)
        raise ShapeError(
            f"{name} must be labels of shape ({n},) or one-hot rows of shape ({n}, {c}), got shape {t.shape}"
        )

    def _check_xt(self, x, t):
        if hasattr(x, "shape") and tuple(x.shape) == tuple(self.input_shape):
            # One sample, as the book's chapter 4 passes it: a batch of one, with its
            # label (a number) or its one-hot row (output_size,).
            x = x[np.newaxis]
            t = np.asarray(t)
            t = t[np.newaxis] if t.shape == (self.output_size,) else t.reshape(-1)
        x = self.validate_input(x)
        return x, self.validate_labels(t, x.shape[0])

    # ------------------------------------------------------- public contract
    def predict(self, x, train_flg=False):
        """Scores for a batch: ndarray of shape (N, output_size).

        A single sample of shape ``input_shape`` gives a 1-D array of scores.
        """
        if hasattr(x, "shape") and tuple(x.shape) == tuple(self.input_shape):
            return self.predict(x[np.newaxis], train_flg)[0]
        return self._scores(self.validate_input(x), train_flg)

    def loss(self, x, t, train_flg=False) -> float:
        """Loss on a batch (the training objective, regularisation included).

        A single sample of shape ``input_shape`` with a label or a one-hot
        row of shape (output_size,) works too (as do the other methods taking
        ``x`` and ``t``).
        """
        x, t = self._check_xt(x, t)
        return float(self._loss(x, t, train_flg))

    def loss_and_gradient(self, x, t):
        """One forward and one backward pass in training mode.

        Returns ``(loss, grads)``; ``grads`` has the keys of ``params``. Its
        arrays may be the network's own gradient buffers, overwritten by the
        next call: use them (e.g. ``optimizer.update(params, grads)``) before
        calling again, or use :meth:`gradient` for copies.
        """
        x, t = self._check_xt(x, t)
        loss, grads = self._loss_and_gradient(x, t)
        return float(loss), grads

    def gradient(self, x, t) -> dict:
        """Gradients of the training loss by backpropagation (fresh arrays, keys as ``params``)."""
        _, grads = self.loss_and_gradient(x, t)
        return {k: np.array(v, copy=True) for k, v in grads.items()}

    def numerical_gradient(self, x, t, h=1e-4, *, max_elements=None, seed=0) -> dict:
        """Central differences of the training-mode loss for every parameter (book 4.4).

        Each element is moved by ``±h`` in place and the whole network run
        twice, like the book's ``numerical_gradient(f, x)``; dropout draws
        the same masks for every evaluation, and parameters, random state
        and BatchNorm running statistics are as before when it returns.
        Slow (two passes per parameter): meant for checking backprop on a
        few samples, ideally on a float64 copy
        (:func:`nnscratch.models.gradient_check` does both).

        Parameters
        ----------
        x, t : a batch and its labels (N,) or one-hot (N, output_size)
        h : float
        max_elements : int, optional
            Difference at most this many randomly chosen elements of each
            parameter (``seed`` picks them); the others are NaN.

        Returns
        -------
        dict with the keys and shapes of ``params``.
        """
        x, t = self._check_xt(x, t)
        rng_state = self.get_rng_state()
        # Every training-mode pass moves BatchNorm's running statistics; put them back after.
        saved_buffers = {name: buffer.copy() for name, buffer in self.buffers.items()}

        def loss():
            self.set_rng_state(rng_state)
            return float(self._loss(x, t, True))

        chooser = np.random.default_rng(seed)
        grads = {}
        for name, param in self.params.items():
            elements = range(param.size)
            if max_elements is not None and param.size > int(max_elements):
                elements = np.sort(chooser.choice(param.size, size=int(max_elements), replace=False))
            grads[name] = _central_differences(loss, param, float(h), elements)
        self.set_rng_state(rng_state)
        for name, saved in saved_buffers.items():
            self.buffers[name][...] = saved
        return grads

    def accuracy(self, x, t, batch_size=1000) -> float:
        """Fraction of samples whose highest score is the true class.

        Evaluates ``batch_size`` samples at a time (inference mode), so memory
        stays bounded on the whole test set.
        """
        x, t = self._check_xt(x, t)
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        labels = t if t.ndim == 1 else np.argmax(t, axis=1)
        correct = 0
        for start in range(0, x.shape[0], int(batch_size)):
            stop = start + int(batch_size)
            y = self._scores(x[start:stop], False)
            correct += int(np.count_nonzero(np.argmax(y, axis=1) == labels[start:stop]))
        return correct / x.shape[0]

    def data_loss(self, x, t, batch_size=1000) -> float:
        """Mean loss of the predictions alone: inference mode, no regularisation term.

        The figure to report for a test set (``loss`` is the training
        objective: training mode, weight decay included). Evaluates
        ``batch_size`` samples at a time.
        """
        x, t = self._check_xt(x, t)
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        total = 0.0
        for start in range(0, x.shape[0], int(batch_size)):
            stop = start + int(batch_size)
            total += float(self._batch_data_loss(x[start:stop], t[start:stop])) * (min(stop, x.shape[0]) - start)
        return total / x.shape[0]

    def _batch_data_loss(self, x, t):
        """Mean softmax cross-entropy of the scores (override for other costs)."""
        log_p = log_softmax(self._scores(x, False).astype(np.float64))
        if t.ndim == 2:
            return -np.sum(t * log_p) / x.shape[0]
        return -np.mean(log_p[np.arange(x.shape[0]), t])

    # ------------------------------------------------------------ utilities
    def load_params(self, params: dict, buffers: dict | None = None) -> None:
        """Copy arrays into ``params`` (and ``buffers``) in place, checking names and shapes.

        Every name of ``params`` must be given; values are cast to the
        model's dtype. Arrays keep their identity, so layers and optimizers
        holding them see the new values.
        """
        for kind, own, given in (("params", self.params, params), ("buffers", self.buffers, buffers or {})):
            if kind == "params" and set(given) != set(own):
                missing, extra = sorted(set(own) - set(given)), sorted(set(given) - set(own))
                raise ShapeError(f"params do not match the model: missing {missing}, unexpected {extra}")
            for name, value in given.items():
                if name not in own:
                    raise ShapeError(f"{kind} has no entry {name!r} (expected one of {sorted(own)})")
                value = np.asarray(value)
                if value.shape != own[name].shape:
                    raise ShapeError(f"{kind}[{name!r}] must have shape {own[name].shape}, got shape {value.shape}")
                own[name][...] = value

    def get_rng_state(self) -> dict:
        """States of the random generators the network uses while training (dropout masks).

        JSON-able; :meth:`set_rng_state` restores them, so resumed training
        draws the same masks.
        """
        return {}

    def set_rng_state(self, state: dict) -> None:
        """Restore what :meth:`get_rng_state` returned."""

    def astype(self, dtype):
        """A copy of the network with every array in ``dtype`` (e.g. float64 for gradient checks)."""
        config = dict(self.config)
        config["dtype"] = resolve_dtype(dtype).name
        # load_params overwrites every parameter and buffer, so a model that honours
        # ``_copying`` (MultiLayerNet) skips drawing random initial weights.
        clone = type(self).__new__(type(self))
        clone._copying = True
        clone.__init__(**config)
        del clone._copying
        clone.load_params(self.params, self.buffers)
        clone.set_rng_state(copy.deepcopy(self.get_rng_state()))
        return clone

    @property
    def num_params(self) -> int:
        """Number of trainable numbers."""
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------- what subclasses implement
    def _scores(self, x, train_flg):
        raise NotImplementedError

    def _loss(self, x, t, train_flg):
        raise NotImplementedError

    def _loss_and_gradient(self, x, t):
        raise NotImplementedError


class LayerModel(Model):
    """A network made of ``self.layers`` (ordered dict name -> layer) and ``self.last_layer``.

    Subclasses build ``self.layers`` in their ``__init__`` (input to output,
    ending with the layer that produces the scores), then call
    :meth:`_register_layers`, which names the parameters the book's way:
    layers with a ``W`` are numbered in order (``W1``/``b1``, ``W2``/``b2``,
    ...; convolution and affine layers share the count), BatchNormalization
    layers separately (``gamma1``/``beta1``, ... with buffers
    ``running_mean1``/``running_var1``).

    ``weight_decay_lambda`` adds ``0.5 * lambda * sum(W**2)`` over every
    ``W`` parameter to the loss and ``lambda * W`` to its gradient (book 6.4.2).
    """

    weight_decay_lambda: float = 0.0

    def __init__(self):
        super().__init__()
        self.layers: dict = {}
        self.last_layer = SoftmaxWithLoss()

    @property
    def lastLayer(self):  # noqa: N802 -- the book's attribute name
        """The book's name for :attr:`last_layer` (the SoftmaxWithLoss layer)."""
        return self.last_layer

    def _register_layers(self, weight_decay_lambda: float = 0.0) -> None:
        first = next(iter(self.layers.values()), None)
        if hasattr(first, "compute_input_grad"):
            first.compute_input_grad = False  # dL/d(input) is never used: skip its matrix product
        self.weight_decay_lambda = float(weight_decay_lambda)
        if self.weight_decay_lambda < 0:
            raise ConfigError(f"weight_decay_lambda must be >= 0, got {weight_decay_lambda!r}")
        self._param_sources: dict[str, tuple] = {}  # model name -> (layer, layer key)
        n_weighted = n_norm = 0
        for layer in self.layers.values():
            layer_params = getattr(layer, "params", {})
            if "W" in layer_params:
                n_weighted += 1
                suffix = str(n_weighted)
            elif "gamma" in layer_params:
                n_norm += 1
                suffix = str(n_norm)
            else:
                suffix = ""
            for key in layer_params:
                self._param_sources[key + suffix] = (layer, key)
            for key, value in getattr(layer, "buffers", {}).items():
                self.buffers[key + suffix] = value
        self.params = {name: layer.params[key] for name, (layer, key) in self._param_sources.items()}
        self._decayed = [name for name, (_, key) in self._param_sources.items() if key == "W"]

    def _dropout_layers(self):
        return [layer for layer in self.layers.values() if isinstance(layer, Dropout)]

    def get_rng_state(self) -> dict:
        return {f"dropout{i}": layer.rng.bit_generator.state for i, layer in enumerate(self._dropout_layers(), 1)}

    def set_rng_state(self, state: dict) -> None:
        for i, layer in enumerate(self._dropout_layers(), 1):
            if f"dropout{i}" in state:
                layer.rng.bit_generator.state = copy.deepcopy(state[f"dropout{i}"])

    def _scores(self, x, train_flg):
        for layer in self.layers.values():
            x = layer.forward(x, train_flg)
        return x

    def input_gradient(self, x, t) -> np.ndarray:
        """dL/dx for a batch, in inference mode: which pixels would change the loss (saliency).

        Returns an array of ``x``'s shape (also for a single sample of
        ``input_shape``). Training never needs it, so the first layer
        normally skips it; this call turns it on for one pass.
        """
        single_sample = hasattr(x, "shape") and tuple(x.shape) == tuple(self.input_shape)
        x, t = self._check_xt(x, t)
        first = next(iter(self.layers.values()))
        saved = getattr(first, "compute_input_grad", None)
        if saved is not None:
            first.compute_input_grad = True
        try:
            self.last_layer.forward(self._scores(x, False), t)
            dout = self.last_layer.backward(1)
            for layer in reversed(self.layers.values()):
                dout = layer.backward(dout)
        finally:
            if saved is not None:
                first.compute_input_grad = saved
        return dout[0] if single_sample else dout

    def _weight_decay_loss(self) -> float:
        if not self.weight_decay_lambda:
            return 0.0
        params = self.params
        total = 0.0
        for name in self._decayed:
            w = params[name]
            total += float(np.add.reduce(np.square(w).reshape(-1)))  # np.sum(w ** 2), less per-call time
        return 0.5 * self.weight_decay_lambda * total

    def _loss(self, x, t, train_flg):
        y = self._scores(x, train_flg)
        return self.last_layer.forward(y, t) + self._weight_decay_loss()

    def _loss_and_gradient(self, x, t):
        loss = self._loss(x, t, True)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {name: layer.grads[key] for name, (layer, key) in self._param_sources.items()}
        if self.weight_decay_lambda:
            for name in self._decayed:
                grads[name] += self.weight_decay_lambda * self.params[name]
        return loss, grads
