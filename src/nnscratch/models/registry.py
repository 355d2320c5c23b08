"""Model classes by name, so a saved ``{"class": ..., "config": ...}`` can be rebuilt."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Model
from .multilayer import MultiLayerNet
from .nielsen import NielsenNetwork
from .simple import SimpleNet, TwoLayerNet

__all__ = ["MODELS", "build_model", "register_model"]

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
