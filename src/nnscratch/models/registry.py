"""Model classes by name, so a saved ``{"class": ..., "config": ...}`` can be rebuilt."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Model
from .multilayer import MultiLayerNet
from .nielsen import NielsenNetwork
from .simple import SimpleNet, TwoLayerNet

__all__ = ["MODELS", "build_model", "register_model", "expected_param_shapes"]

#: class name -> class, for every network that can be saved and loaded.
MODELS: dict[str, type] = {
    "SimpleNet": SimpleNet,
    "TwoLayerNet": TwoLayerNet,
    "MultiLayerNet": MultiLayerNet,
    "NielsenNetwork": NielsenNetwork,
}


def register_model(cls: type) -> type:
    """Add ``cls`` to :data:`MODELS` under its class name (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ConfigError(f"only Model subclasses can be registered, got {cls!r}")
    MODELS[cls.__name__] = cls
    return cls


def build_model(class_name: str, config: dict) -> Model:
    """A new ``MODELS[class_name](**config)``; ConfigError naming the known classes otherwise."""
    cls = MODELS.get(class_name)
    if cls is None:
        raise ConfigError(f"unknown model class {class_name!r}; known: {', '.join(sorted(MODELS))}")
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a dict of constructor arguments, got {type(config).__name__}")
    try:
        return cls(**config)
    except TypeError as exc:
        raise ConfigError(f"config does not fit {class_name}: {exc}") from exc

from .conv import DeepConvNet, SimpleConvNet  # noqa: E402  (conv.py imports nothing from here)

MODELS.update({"SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet})


# --------------------------------------------------------------------------- shapes before building
# A model file names its class and constructor config; a forged config can declare a
# network of many gigabytes. These functions give the parameter shapes a config
# declares *without allocating anything*, so that a loader can compare them with the
# arrays actually stored before it builds the model.


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(value)
    return value


def _defaults(cls, config: dict) -> dict:
    import inspect

    merged = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
              if p.default is not inspect.Parameter.empty}
    merged.update(config)
    return merged


def _dense_shapes(sizes, batchnorm: bool = False):
    params, buffers = {}, {}
    for i in range(1, len(sizes)):
        params[f"W{i}"] = (sizes[i - 1], sizes[i])
        params[f"b{i}"] = (sizes[i],)
        if batchnorm and i < len(sizes) - 1:
            params[f"gamma{i}"] = params[f"beta{i}"] = (sizes[i],)
            buffers[f"running_mean{i}"] = buffers[f"running_var{i}"] = (sizes[i],)
    return params, buffers


def _window(size: int, filter_size: int, stride: int, pad: int) -> int:
    out = (size + 2 * pad - filter_size) // stride + 1 if stride > 0 else 0
    if out < 1:
        raise ValueError(size)
    return out


def _conv_shapes(c: dict, n_convs: int):
    from .conv import _DEEP_DEFAULTS

    channels, h, w = (_int(v) for v in c["input_dim"])
    params = {}
    if n_convs == 1:
        convs = [c["conv_param"] or {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}]
    else:
        convs = [c.get(f"conv_param_{i}") or default for i, default in enumerate(_DEEP_DEFAULTS, start=1)]
    for i, p in enumerate(convs, start=1):
        fn, fs, stride, pad = (_int(p[k]) for k in ("filter_num", "filter_size", "stride", "pad"))
        params[f"W{i}"], params[f"b{i}"] = (fn, channels, fs, fs), (fn,)
        h, w, channels = _window(h, fs, stride, pad), _window(w, fs, stride, pad), fn
        if n_convs == 1 or i % 2 == 0:
            h, w = _window(h, 2, 2, 0), _window(w, 2, 2, 0)
    hidden, output = _int(c["hidden_size"]), _int(c["output_size"])
    k = len(convs)
    params[f"W{k + 1}"], params[f"b{k + 1}"] = (channels * h * w, hidden), (hidden,)
    params[f"W{k + 2}"], params[f"b{k + 2}"] = (hidden, output), (output,)
    return params, {}


def expected_param_shapes(class_name: str, config: dict):
    """``(params, buffers)``: name -> shape of every array ``class_name(**config)`` would hold.

    Computed from the config alone, without allocating anything. Returns None when the
    class is not one of nnscratch's own or the config is malformed (then building the
    model raises its own ConfigError before allocating).
    """
    cls = MODELS.get(class_name)
    if cls is None or not isinstance(config, dict):
        return None
    try:
        c = _defaults(cls, config)
        if class_name == "SimpleNet":
            return {"W": (2, 3)}, {}
        if class_name == "TwoLayerNet":
            return _dense_shapes([_int(c["input_size"]), _int(c["hidden_size"]), _int(c["output_size"])])
        if class_name == "MultiLayerNet":
            hidden = c["hidden_size_list"]
            if not isinstance(hidden, (list, tuple)):
                return None
            return _dense_shapes([_int(c["input_size"]), *map(_int, hidden), _int(c["output_size"])],
                                 batchnorm=bool(c.get("use_batchnorm")))
        if class_name == "NielsenNetwork":
            if not isinstance(c["sizes"], (list, tuple)):
                return None
            return _dense_shapes([_int(v) for v in c["sizes"]])
        if class_name == "SimpleConvNet":
            return _conv_shapes(c, 1)
        if class_name == "DeepConvNet":
            return _conv_shapes(c, 6)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return None
