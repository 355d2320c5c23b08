"""Layer objects: ``forward(x, train_flg)`` / ``backward(dout)`` with their own params and grads.

``core`` holds the book's chapter 5-6 layers, ``conv`` those of chapter 7.
"""

from . import conv, core
from .conv import AvgPooling, Convolution, Flatten, Pooling, col2im, conv_output_size, im2col
from .core import Affine, BatchNormalization, Dropout, Layer, Relu, Sigmoid, SoftmaxWithLoss, Tanh

__all__ = core.__all__ + conv.__all__
