"""Layer objects: ``forward(x, train_flg)`` / ``backward(dout)`` with their own params and grads."""

from .core import (
    Affine,
    BatchNormalization,
    Dropout,
    Layer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
)

__all__ = [
    "Layer",
    "Affine",
    "Relu",
    "Sigmoid",
    "Tanh",
    "SoftmaxWithLoss",
    "Dropout",
    "BatchNormalization",
]

from .conv import AvgPooling, Convolution, Flatten, Pooling, col2im, im2col  # noqa: E402

__all__ += ["Convolution", "Pooling", "AvgPooling", "Flatten", "im2col", "col2im"]
