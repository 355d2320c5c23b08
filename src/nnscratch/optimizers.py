"""Parameter update rules of chapter 6: SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam.

Every optimizer follows the book's interface ``update(params, grads)``, where
both arguments are dicts of arrays with the same keys (``'W1'``, ``'b1'``, ...).
Unlike the book's code, the arrays in ``params`` are changed *in place*
(``params[key]`` is never rebound), so the layers that own those arrays see the
new values without any copying back.

The update rules are the book's (``common/optimizer.py``)::

    SGD       W <- W - lr * dW
    Momentum  v <- momentum * v - lr * dW;          W <- W + v
    Nesterov  v <- momentum * v - lr * dW;
              W <- W + momentum**2 * v - (1 + momentum) * lr * dW
    AdaGrad   h <- h + dW**2;                       W <- W - lr * dW / (sqrt(h) + 1e-7)
    RMSprop   h <- decay * h + (1 - decay) * dW**2; W <- W - lr * dW / (sqrt(h) + 1e-7)
    Adam      t <- t + 1; lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
              m <- m + (1 - beta1) * (dW - m);  v <- v + (1 - beta2) * (dW**2 - v)
              W <- W - lr_t * m / (sqrt(v) + 1e-7)

Checkpoints: ``state_dict()`` returns plain data (arrays, numbers and the
optimizer's name) and ``load_state_dict()`` restores it, so that training can
resume bit-exactly. ``config`` holds the constructor arguments:
``type(opt)(**opt.config)`` builds an equivalent fresh optimizer.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from .errors import ConfigError, ShapeError

__all__ = [
    "Optimizer",
    "SGD",
    "Momentum",
    "Nesterov",
    "AdaGrad",
    "RMSprop",
    "Adam",
    "OPTIMIZERS",
    "build_optimizer",
]


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_fraction(name: str, value) -> float:
    """A decay coefficient in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not (0.0 <= value < 1.0):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


class Optimizer:
    """Base class: learning rate, per-parameter state ("slots") and checkpointing.

    Subclasses name their state arrays in ``slot_names`` (Momentum keeps
    ``v``, AdaGrad ``h``, Adam ``m`` and ``v``) and implement ``_step``.
    Slots are created on the first ``update`` with ``np.zeros_like`` of each
    parameter, so they have its shape, dtype and array type.

    Attributes
    ----------
    lr : float
        Learning rate; may be changed between updates (learning-rate schedules).
    iterations : int
        Number of ``update`` calls so far (Adam's ``t``; the book's ``iter``).
    """

    name = "optimizer"
    slot_names: tuple[str, ...] = ()
    eps = 1e-7  # the book's constant that keeps 1 / sqrt(h) finite

    def __init__(self, lr: float):
        self.lr = lr
        self.iterations = 0
        self._slots: dict[str, dict[str, np.ndarray]] | None = None
        self._scratch: dict[str, np.ndarray] = {}

    # -- hyper-parameters -------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = _check_positive("lr", value)

    @property
    def config(self) -> dict:
        """Constructor keyword arguments (JSON-able)."""
        return {"lr": self.lr}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"

    # -- the update -------------------------------------------------------
    def update(self, params: dict, grads: dict) -> None:
        """Apply one step to ``params`` in place.

        Parameters
        ----------
        params : dict of str -> ndarray
            The arrays to update (mutated in place, never rebound).
        grads : dict of str -> ndarray
            The gradient of the loss for every key of ``params``, same shapes.
        """
        self._check(params, grads)
        if self._slots is None:
            self._slots = {slot: {key: np.zeros_like(p) for key, p in params.items()}
                           for slot in self.slot_names}
        self.iterations += 1
        self._step(params, grads)

    def _check(self, params: dict, grads: dict) -> None:
        for key, p in params.items():
            if not isinstance(p, np.ndarray):
                raise ConfigError(
                    f"params[{key!r}] must be an ndarray so it can be updated in place, "
                    f"got {type(p).__name__}; wrap numbers with np.array(...)")
            g = grads.get(key)
            if g is None:
                raise ConfigError(f"grads has no entry for parameter {key!r} "
                                  f"(grads keys: {sorted(grads)})")
            if g.shape != p.shape:
                raise ShapeError(f"grads[{key!r}] must have shape {p.shape} like params[{key!r}], "
                                 f"got {g.shape}")
        if self._slots is not None and self.slot_names:
            slots = self._slots[self.slot_names[0]]
            if slots.keys() != params.keys():
                raise ConfigError(
                    f"{type(self).__name__} was used with parameters {sorted(slots)} and now gets "
                    f"{sorted(params)}; use one optimizer per model")

    def _buffer(self, key: str, like: np.ndarray) -> np.ndarray:
        """A scratch array shaped like ``like`` (reused between steps, not state)."""
        buf = self._scratch.get(key)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = np.empty_like(like)
            self._scratch[key] = buf
        return buf

    def _step(self, params: dict, grads: dict) -> None:
        raise NotImplementedError

    # -- checkpoints ------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: plain numbers, strings and array copies.

        Layout: ``{"name": str, "config": {kwarg: number}, "lr": float,
        "iterations": int, "slots": {slot: {param key: ndarray}}}``; ``slots``
        is ``{}`` before the first update (and always for SGD).
        """
        slots = {} if self._slots is None else {
            slot: {key: arr.copy() for key, arr in arrays.items()}
            for slot, arrays in self._slots.items()}
        return {"name": self.name, "config": dict(self.config), "lr": self.lr,
                "iterations": self.iterations, "slots": slots}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict()`` returned (arrays are copied)."""
        try:
            name, config, lr = state["name"], state["config"], state["lr"]
            iterations, slots = state["iterations"], state["slots"]
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not an optimizer state dict (missing {exc})") from None
        if name != self.name:
            raise ConfigError(f"state of a {name!r} optimizer cannot be loaded into {self.name!r}")
        if slots and set(slots) != set(self.slot_names):
            raise ConfigError(f"optimizer state has slots {sorted(slots)}, "
                              f"{self.name!r} needs {sorted(self.slot_names)}")
        self._load_config(dict(config))
        self.lr = lr
        self.iterations = int(iterations)
        if slots:
            self._slots = {slot: {key: np.array(arr, copy=True) for key, arr in slots[slot].items()}
                           for slot in self.slot_names}
        else:
            self._slots = None

    def _load_config(self, config: dict) -> None:
        try:
            fresh = type(self)(**config)  # validates every value
        except TypeError as exc:
            raise ConfigError(f"bad {self.name!r} config in optimizer state: {exc}") from None
        for key in config:
            setattr(self, key, getattr(fresh, key))

    def _slot(self, slot: str):
        return None if self._slots is None else self._slots[slot]


class SGD(Optimizer):
    """Stochastic gradient descent: ``W <- W - lr * dW``.

    Parameters
    ----------
    lr : float, default 0.01
        Learning rate (> 0).
    """

    name = "sgd"

    def __init__(self, lr: float = 0.01):
        super().__init__(lr)

    def _step(self, params, grads):
        lr = self.lr
        for key, p in params.items():
            step = np.multiply(grads[key], lr, out=self._buffer(key, p))
            p -= step


class Momentum(Optimizer):
    """SGD with momentum: ``v <- momentum * v - lr * dW; W <- W + v``.

    Parameters
    ----------
    lr : float, default 0.01
    momentum : float, default 0.9
        Fraction of the previous velocity kept, in [0, 1).
    """

    name = "momentum"
    slot_names = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        super().__init__(lr)
        self.momentum = _check_fraction("momentum", momentum)

    @property
    def config(self):
        return {"lr": self.lr, "momentum": self.momentum}

    @property
    def v(self):
        """Velocity per parameter (the book's ``self.v``); None before the first update."""
        return self._slot("v")

    def _step(self, params, grads):
        lr, mu = self.lr, self.momentum
        for key, p in params.items():
            v = self._slots["v"][key]
            step = np.multiply(grads[key], lr, out=self._buffer(key, p))
            v *= mu
            v -= step
            p += v


class Nesterov(Momentum):
    """Nesterov's accelerated gradient in the book's form (common/optimizer.py).

    ``v <- momentum * v - lr * dW;  W <- W + momentum**2 * v - (1 + momentum) * lr * dW``

    Same parameters, velocity ``v`` and checkpoint layout as :class:`Momentum`;
    only the step differs.

    Parameters
    ----------
    lr : float, default 0.01
    momentum : float, default 0.9
    """

    name = "nesterov"

    def _step(self, params, grads):
        lr, mu = self.lr, self.momentum
        for key, p in params.items():
            v = self._slots["v"][key]
            buf = self._buffer(key, p)
            g = grads[key]
            v *= mu
            v -= np.multiply(g, lr, out=buf)
            p += np.multiply(v, mu * mu, out=buf)
            p -= np.multiply(g, (1 + mu) * lr, out=buf)


class AdaGrad(Optimizer):
    """AdaGrad: per-weight step sizes shrinking with the sum of squared gradients.

    ``h <- h + dW**2;  W <- W - lr * dW / (sqrt(h) + 1e-7)``

    Parameters
    ----------
    lr : float, default 0.01
    """

    name = "adagrad"
    slot_names = ("h",)

    def __init__(self, lr: float = 0.01):
        super().__init__(lr)

    @property
    def h(self):
        """Sum of squared gradients per parameter (the book's ``self.h``)."""
        return self._slot("h")

    def _step(self, params, grads):
        lr = self.lr
        for key, p in params.items():
            h = self._slots["h"][key]
            g = grads[key]
            buf = self._buffer(key, p)
            h += np.multiply(g, g, out=buf)
            _scaled_step(p, g, h, lr, self.eps, buf)


def _scaled_step(p, g, h, lr, eps, buf):
    """``p -= lr * g / (sqrt(h) + eps)`` with one scratch array."""
    np.sqrt(h, out=buf)
    buf += eps
    np.divide(g, buf, out=buf)
    buf *= lr
    p -= buf


class RMSprop(Optimizer):
    """RMSprop: AdaGrad with an exponential moving average of squared gradients.

    ``h <- decay_rate * h + (1 - decay_rate) * dW**2;  W <- W - lr * dW / (sqrt(h) + 1e-7)``

    Parameters
    ----------
    lr : float, default 0.01
    decay_rate : float, default 0.99
        Weight of the past in the moving average, in [0, 1).
    """

    name = "rmsprop"
    slot_names = ("h",)

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99):
        super().__init__(lr)
        self.decay_rate = _check_fraction("decay_rate", decay_rate)

    @property
    def config(self):
        return {"lr": self.lr, "decay_rate": self.decay_rate}

    @property
    def h(self):
        return self._slot("h")

    def _step(self, params, grads):
        lr, rho = self.lr, self.decay_rate
        for key, p in params.items():
            h = self._slots["h"][key]
            g = grads[key]
            buf = self._buffer(key, p)
            h *= rho
            np.multiply(g, g, out=buf)
            buf *= 1.0 - rho
            h += buf
            _scaled_step(p, g, h, lr, self.eps, buf)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) in the book's form with the bias correction folded into lr.

    Parameters
    ----------
    lr : float, default 0.001
    beta1 : float, default 0.9
        Decay of the first-moment (mean) estimate ``m``, in [0, 1).
    beta2 : float, default 0.999
        Decay of the second-moment estimate ``v``, in [0, 1).
    """

    name = "adam"
    slot_names = ("m", "v")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999):
        super().__init__(lr)
        self.beta1 = _check_fraction("beta1", beta1)
        self.beta2 = _check_fraction("beta2", beta2)

    @property
    def config(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2}

    @property
    def iter(self) -> int:
        """The book's name for the step counter ``t``."""
        return self.iterations

    @property
    def m(self):
        return self._slot("m")

    @property
    def v(self):
        return self._slot("v")

    def _step(self, params, grads):
        b1, b2, t = self.beta1, self.beta2, self.iterations
        lr_t = self.lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        flat = self._flat_state(params, grads)
        if flat is not None:
            # All parameters at once: the same element-wise operations as the loop below
            # (so the same bits), 16 NumPy calls per step instead of 12 per parameter.
            m, v, g, buf, steps = flat
            np.concatenate([grads[key].reshape(-1) for key in params], out=g)
            np.subtract(g, m, out=buf)
            buf *= 1.0 - b1
            m += buf
            np.multiply(g, g, out=buf)
            buf -= v
            buf *= 1.0 - b2
            v += buf
            np.sqrt(v, out=buf)
            buf += self.eps
            np.divide(m, buf, out=buf)
            buf *= lr_t
            for p, step in zip(params.values(), steps):
                p -= step
            return
        ms, vs, eps = self._slots["m"], self._slots["v"], self.eps
        for key, p in params.items():
            m, v = ms[key], vs[key]
            g = grads[key]
            buf = self._buffer(key, p)
            # m += (1 - b1) * (g - m)
            np.subtract(g, m, out=buf)
            buf *= 1.0 - b1
            m += buf
            # v += (1 - b2) * (g**2 - v)
            np.multiply(g, g, out=buf)
            buf -= v
            buf *= 1.0 - b2
            v += buf
            # p -= lr_t * m / (sqrt(v) + eps)
            _scaled_step(p, m, v, lr_t, eps, buf)

    def _flat_state(self, params, grads):
        """``(m, v, g, buf, steps)``: the slots as views of two flat arrays, scratch, views of ``buf``.

        None when the parameters or gradients differ in dtype (the loop then
        computes as before). Built on the first step (and again after the slot
        arrays were replaced, e.g. by ``load_state_dict``): the current slot
        values are copied into the flat arrays and the slots become views of them.
        """
        ms, vs = self._slots["m"], self._slots["v"]
        flat = getattr(self, "_flat", None)
        if flat is not None:
            keys, m_views, v_views, dtype, state = flat
            m, v, steps = state[0], state[1], state[4]
            # Still our views of m and v (a deep copy or pickle gives arrays of their own)?
            if keys == tuple(params) and all(
                    ms[k] is a and a.base is m and vs[k] is b and b.base is v
                    and grads[k].dtype == dtype and params[k].shape == step.shape
                    for k, a, b, step in zip(keys, m_views, v_views, steps)):
                return state
        dtype = next(iter(params.values())).dtype if params else None
        if (not params or any(p.dtype != dtype for p in params.values())
                or any(grads[k].dtype != dtype or ms[k].dtype != dtype or vs[k].dtype != dtype
                       or ms[k].shape != p.shape or vs[k].shape != p.shape for k, p in params.items())):
            self._flat = None
            return None
        keys = tuple(params)
        m = np.concatenate([ms[k].reshape(-1) for k in keys]).astype(dtype, copy=False)
        v = np.concatenate([vs[k].reshape(-1) for k in keys]).astype(dtype, copy=False)
        buf = np.empty_like(m)
        bounds = np.cumsum([0] + [params[k].size for k in keys])
        for k, lo, hi in zip(keys, bounds[:-1], bounds[1:]):
            ms[k] = m[lo:hi].reshape(params[k].shape)
            vs[k] = v[lo:hi].reshape(params[k].shape)
        steps = [buf[lo:hi].reshape(params[k].shape) for k, lo, hi in zip(keys, bounds[:-1], bounds[1:])]
        state = (m, v, np.empty_like(m), buf, steps)
        self._flat = (keys, [ms[k] for k in keys], [vs[k] for k in keys], dtype, state)
        return state


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam)
}


def build_optimizer(name: str, **kwargs) -> Optimizer:
    """Build an optimizer by name: ``build_optimizer('adam', lr=1e-3)``.

    Parameters
    ----------
    name : str
        One of ``OPTIMIZERS`` ('sgd', 'momentum', 'nesterov', 'adagrad',
        'rmsprop', 'adam'); case-insensitive, so the book's 'SGD' and 'Adam' work.
    **kwargs
        Constructor arguments of that optimizer (``lr``, ``momentum`` ...).
    """
    cls = OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for optimizer {name!r}: {exc}") from None
