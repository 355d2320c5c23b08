"""Networks built from layers: predict, loss, accuracy, gradient (the Model contract)."""

from .base import LayerModel, Model
from .gradient_check import gradient_check
from .multilayer import MultiLayerNet
from .nielsen import NielsenNetwork
from .registry import MODELS, build_model, register_model
from .simple import SimpleNet, TwoLayerNet

__all__ = [
    "Model",
    "LayerModel",
    "MODELS",
    "build_model",
    "register_model",
    "SimpleNet",
    "TwoLayerNet",
    "MultiLayerNet",
    "NielsenNetwork",
    "gradient_check",
]

from .conv import DeepConvNet, SimpleConvNet  # noqa: E402

__all__ += ["SimpleConvNet", "DeepConvNet"]
