"""nnscratch: deep learning from scratch in NumPy, for handwritten digits.

The book's names are importable from here (``numerical_gradient``,
``TwoLayerNet``, ``load_mnist``, ``SGD`` ...). Submodules are imported on first
use so that ``import nnscratch`` stays fast and never pulls in matplotlib.
"""

from importlib import import_module

__version__ = "0.1.0"

# name -> submodule that defines it (a package re-exports from its own modules).
_EXPORTS: dict[str, str] = {
    "numerical_diff": "calculus",
    "numerical_gradient": "calculus",
    "numerical_gradient_batch": "calculus",
    "gradient_descent": "calculus",
    "fit_line": "regression",
    "fit_linear": "regression",
    "compile_expression": "expressions",
    "read_idx": "datasets",
    "write_idx": "datasets",
    "load_mnist": "datasets",
    "load_dataset": "datasets",
    "download_dataset": "datasets",
    "show_digit": "datasets",
    "step_function": "functions",
    "sigmoid": "functions",
    "relu": "functions",
    "tanh": "functions",
    "identity": "functions",
    "softmax": "functions",
    "cross_entropy_error": "functions",
    "mean_squared_error": "functions",
    "Affine": "layers",
    "Relu": "layers",
    "Sigmoid": "layers",
    "Tanh": "layers",
    "SoftmaxWithLoss": "layers",
    "Dropout": "layers",
    "BatchNormalization": "layers",
    "Convolution": "layers",
    "Pooling": "layers",
    "AvgPooling": "layers",
    "Flatten": "layers",
    "im2col": "layers",
    "col2im": "layers",
    "SimpleNet": "models",
    "TwoLayerNet": "models",
    "MultiLayerNet": "models",
    "NielsenNetwork": "models",
    "SimpleConvNet": "models",
    "DeepConvNet": "models",
    "gradient_check": "models",
    "SGD": "optimizers",
    "Momentum": "optimizers",
    "Nesterov": "optimizers",
    "AdaGrad": "optimizers",
    "RMSprop": "optimizers",
    "Adam": "optimizers",
    "build_optimizer": "optimizers",
    "Trainer": "training",
    "Augmenter": "augment",
    "History": "training",
    "StepDecay": "training",
    "CosineDecay": "training",
    "save_model": "io",
    "load_model": "io",
    "load_pretrained": "io",
    "save_checkpoint": "io",
    "load_checkpoint": "io",
    "prepare_digit": "imaging",
    "RunSettings": "runs",
    "train_run": "runs",
    "NeuralNetClassifier": "sklearn",
}
# Names whose module needs an optional extra: importable by name, but left out of
# `from nnscratch import *` so that a core-only install can star-import.
_OPTIONAL = {"NeuralNetClassifier"}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nnscratch' has no attribute {name!r}")
    value = getattr(import_module(f"nnscratch.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(set(_EXPORTS) - _OPTIONAL)
