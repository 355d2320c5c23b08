"""Optimizers: each update rule against hand arithmetic, convergence, in-place updates, checkpoints."""

import copy
import math

import numpy as np
import pytest

from nnscratch.errors import ConfigError, ShapeError
from nnscratch.optimizers import (
    OPTIMIZERS, SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop, build_optimizer)

W0 = [1.0, -2.0, 0.5]
GRADS = [[0.5, 0.25, -1.0], [-0.2, 0.4, 3.0], [0.1, -0.6, 0.0]]


def run(opt, steps=len(GRADS)):
    params = {"W": np.array(W0)}
    for g in GRADS[:steps]:
        opt.update(params, {"W": np.array(g)})
    return params["W"]


# Reference rules, written element by element with Python floats (no NumPy), from the book.
def ref_sgd(lr):
    w = list(W0)
    for g in GRADS:
        w = [wi - lr * gi for wi, gi in zip(w, g)]
    return w


def ref_momentum(lr, mu):
    w, v = list(W0), [0.0] * 3
    for g in GRADS:
        v = [mu * vi - lr * gi for vi, gi in zip(v, g)]
        w = [wi + vi for wi, vi in zip(w, v)]
    return w


def ref_nesterov(lr, mu):
    w, v = list(W0), [0.0] * 3
    for g in GRADS:
        v = [mu * vi - lr * gi for vi, gi in zip(v, g)]
        w = [wi + mu * mu * vi - (1 + mu) * lr * gi for wi, vi, gi in zip(w, v, g)]
    return w


def ref_adagrad(lr):
    w, h = list(W0), [0.0] * 3
    for g in GRADS:
        h = [hi + gi * gi for hi, gi in zip(h, g)]
        w = [wi - lr * gi / (math.sqrt(hi) + 1e-7) for wi, gi, hi in zip(w, g, h)]
    return w


def ref_rmsprop(lr, rho):
    w, h = list(W0), [0.0] * 3
    for g in GRADS:
        h = [rho * hi + (1 - rho) * gi * gi for hi, gi in zip(h, g)]
        w = [wi - lr * gi / (math.sqrt(hi) + 1e-7) for wi, gi, hi in zip(w, g, h)]
    return w


def ref_adam(lr, b1, b2):
    w, m, v = list(W0), [0.0] * 3, [0.0] * 3
    for t, g in enumerate(GRADS, start=1):
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = [mi + (1 - b1) * (gi - mi) for mi, gi in zip(m, g)]
        v = [vi + (1 - b2) * (gi * gi - vi) for vi, gi in zip(v, g)]
        w = [wi - lr_t * mi / (math.sqrt(vi) + 1e-7) for wi, mi, vi in zip(w, m, v)]
    return w


@pytest.mark.parametrize("opt, expected", [
    (SGD(lr=0.1), ref_sgd(0.1)),
    (Momentum(lr=0.1, momentum=0.9), ref_momentum(0.1, 0.9)),
    (Nesterov(lr=0.1, momentum=0.8), ref_nesterov(0.1, 0.8)),
    (AdaGrad(lr=0.5), ref_adagrad(0.5)),
    (RMSprop(lr=0.05, decay_rate=0.9), ref_rmsprop(0.05, 0.9)),
    (Adam(lr=0.3, beta1=0.8, beta2=0.99), ref_adam(0.3, 0.8, 0.99)),
], ids=lambda x: type(x).__name__ if not isinstance(x, list) else "")
def test_update_rule_matches_hand_arithmetic(opt, expected):
    np.testing.assert_allclose(run(opt), expected, rtol=1e-12, atol=1e-12)


def test_first_steps_by_hand():
    # SGD: 1 - 0.1 * 0.5 = 0.95
    assert run(SGD(lr=0.1), steps=1)[0] == pytest.approx(0.95)
    # Momentum, two steps on the first weight: v1 = -0.05, w1 = 0.95; v2 = -0.045 + 0.02, w2 = 0.925
    assert run(Momentum(lr=0.1, momentum=0.9), steps=2)[0] == pytest.approx(0.925)
    # AdaGrad's first step is lr * sign(g) (up to eps): 1 - 0.5 = 0.5
    assert run(AdaGrad(lr=0.5), steps=1)[0] == pytest.approx(0.5, abs=1e-6)
    # Adam's first step is lr * sign(g) as well: 1 - 0.3 = 0.7
    assert run(Adam(lr=0.3), steps=1)[0] == pytest.approx(0.7, abs=1e-5)


def test_defaults_are_the_books():
    assert SGD().config == {"lr": 0.01}
    assert Momentum().config == {"lr": 0.01, "momentum": 0.9}
    assert Nesterov().config == {"lr": 0.01, "momentum": 0.9}
    assert AdaGrad().config == {"lr": 0.01}
    assert RMSprop().config == {"lr": 0.01, "decay_rate": 0.99}
    assert Adam().config == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_updates_in_place_and_keeps_dtype(name):
    opt = build_optimizer(name, lr=0.01)
    W = np.ones((3, 4), dtype=np.float32)
    b = np.zeros(4, dtype=np.float32)
    view = W[:, :2]  # e.g. a layer holding part of the same memory
    params = {"W": W, "b": b}
    grads = {"W": np.full((3, 4), 0.5, np.float32), "b": np.ones(4, np.float32)}
    opt.update(params, grads)
    assert params["W"] is W and params["b"] is b
    assert W.dtype == np.float32 and b.dtype == np.float32
    assert np.all(W < 1) and np.all(b < 0)
    assert np.array_equal(view, W[:, :2])
    assert np.all(grads["W"] == 0.5)  # gradients are not modified
    for slot in opt.state_dict()["slots"].values():
        assert all(arr.dtype == np.float32 for arr in slot.values())


def f(x, y):
    return x ** 2 / 20.0 + y ** 2


@pytest.mark.parametrize("name, lr, steps", [
    ("sgd", 0.95, 300), ("momentum", 0.1, 300), ("nesterov", 0.1, 300),
    ("adagrad", 1.5, 300), ("rmsprop", 0.1, 300), ("adam", 0.3, 300),
])
def test_converges_on_books_function(name, lr, steps):
    opt = build_optimizer(name, lr=lr)
    params = {"x": np.array(-7.0), "y": np.array(2.0)}
    for _ in range(steps):
        x, y = float(params["x"]), float(params["y"])
        opt.update(params, {"x": np.array(x / 10.0), "y": np.array(2.0 * y)})
    assert f(float(params["x"]), float(params["y"])) < 1e-2 * f(-7.0, 2.0)
    assert abs(float(params["x"])) < 1.0 and abs(float(params["y"])) < 0.2


def _plain_copy(state):
    """What a checkpoint file gives back: nested dicts, numbers, fresh array copies."""
    if isinstance(state, dict):
        return {k: _plain_copy(v) for k, v in state.items()}
    if isinstance(state, np.ndarray):
        return np.frombuffer(state.tobytes(), dtype=state.dtype).reshape(state.shape).copy()
    return copy.deepcopy(state)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_round_trip_continues_identically(name):
    rng = np.random.default_rng(1)
    grads = [{"W": rng.standard_normal((5, 3)).astype(np.float32),
              "b": rng.standard_normal(3).astype(np.float32)} for _ in range(6)]
    opt = build_optimizer(name, lr=0.05)
    params = {"W": np.ones((5, 3), np.float32), "b": np.zeros(3, np.float32)}
    for g in grads[:3]:
        opt.update(params, g)
    state = _plain_copy(opt.state_dict())
    saved_params = _plain_copy(params)

    for g in grads[3:]:
        opt.update(params, g)

    fresh = type(opt)(**opt.config)
    fresh.load_state_dict(state)
    for g in grads[3:]:
        fresh.update(saved_params, g)
    for key in params:
        assert np.array_equal(params[key], saved_params[key])
    assert fresh.iterations == opt.iterations == 6


def test_state_dict_is_a_copy_and_holds_only_plain_data():
    opt = Adam(lr=0.01)
    params = {"W": np.ones(3)}
    opt.update(params, {"W": np.ones(3)})
    state = opt.state_dict()
    state["slots"]["m"]["W"][:] = 99.0
    assert not np.any(opt.m["W"] == 99.0)

    def leaves(d):
        for v in d.values():
            yield from leaves(v) if isinstance(v, dict) else [v]
    assert all(isinstance(v, (np.ndarray, int, float, str)) for v in leaves(state))


def test_lr_change_is_kept_in_state():
    opt = Momentum(lr=0.1)
    opt.lr = 0.02
    other = Momentum()
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.02 and other.momentum == 0.9


def test_loading_state_of_another_optimizer_fails():
    with pytest.raises(ConfigError, match="adam"):
        SGD().load_state_dict(Adam().state_dict())
    with pytest.raises(ConfigError):
        SGD().load_state_dict({"lr": 0.1})


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), float("inf"), True, "0.1", None])
@pytest.mark.parametrize("cls", [SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam])
def test_invalid_lr_raises_config_error(cls, bad):
    with pytest.raises(ConfigError, match="lr"):
        cls(lr=bad)


def test_invalid_lr_assignment_and_coefficients():
    opt = SGD()
    with pytest.raises(ConfigError, match="lr"):
        opt.lr = float("nan")
    with pytest.raises(ConfigError, match="momentum"):
        Momentum(momentum=1.0)
    with pytest.raises(ConfigError, match="decay_rate"):
        RMSprop(decay_rate=-0.1)
    with pytest.raises(ConfigError, match="beta2"):
        Adam(beta2=1.5)


def test_build_optimizer_by_name():
    assert isinstance(build_optimizer("SGD", lr=0.1), SGD)
    assert isinstance(build_optimizer("Adam"), Adam)
    assert build_optimizer("momentum", lr=0.2, momentum=0.5).config == {"lr": 0.2, "momentum": 0.5}
    assert set(OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}
    with pytest.raises(ConfigError, match="unknown optimizer"):
        build_optimizer("lbfgs")
    with pytest.raises(ConfigError, match="bad arguments"):
        build_optimizer("sgd", momentum=0.9)


def test_bad_params_or_grads_are_named():
    opt = SGD()
    with pytest.raises(ConfigError, match="in place"):
        opt.update({"x": 1.0}, {"x": 0.5})
    with pytest.raises(ConfigError, match="'b'"):
        opt.update({"W": np.ones(2), "b": np.ones(2)}, {"W": np.ones(2)})
    with pytest.raises(ShapeError, match=r"\(2,\)"):
        opt.update({"W": np.ones(2)}, {"W": np.ones(3)})


def test_book_attribute_names():
    opt = Adam()
    assert opt.m is None and opt.iter == 0
    opt.update({"W": np.ones(2)}, {"W": np.ones(2)})
    assert opt.iter == 1 and opt.m["W"].shape == (2,) and opt.v["W"].shape == (2,)
    assert Momentum().v is None and AdaGrad().h is None
