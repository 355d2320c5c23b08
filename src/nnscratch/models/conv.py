"""Convolutional networks of the book: SimpleConvNet (7.5) and DeepConvNet (8.1).

Both are :class:`~nnscratch.models.base.LayerModel` s, so parameters are
named the book's way (``W1``, ``b1``, ... numbered over convolution and affine
layers together) and ``predict`` / ``loss`` / ``accuracy`` / ``gradient`` /
``loss_and_gradient`` follow the Model contract. Inputs are images of shape
``(N, C, H, W)`` (``load_mnist(flatten=False)``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..layers import Affine, Dropout, Relu
from ..layers.conv import Convolution, Pooling, conv_output_size
from .base import LayerModel, resolve_dtype

__all__ = ["SimpleConvNet", "DeepConvNet"]

# Inference runs in chunks of this many images: activations grow with the
# batch (the first 28x28x16 maps take 50 kB per image, kept twice), and the
# book's convolution (Convolution.fast = False) unrolls 450 kB per image.
_INFERENCE_CHUNK = 200

_CONV_KEYS = ("filter_num", "filter_size", "pad", "stride")


def _positive(value, name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (0 if allow_zero else 1):
        kind = "non-negative" if allow_zero else "positive"
        raise ConfigError(f"{name} must be a {kind} integer, got {value!r}")
    return int(value)


def _input_dim(input_dim) -> tuple:
    try:
        dims = tuple(input_dim)
    except TypeError:
        dims = ()
    if len(dims) != 3:
        raise ConfigError(f"input_dim must be (C, H, W), e.g. (1, 28, 28), got {input_dim!r}")
    return tuple(_positive(d, "input_dim entries") for d in dims)


def _conv_param(param, name: str) -> dict:
    if not isinstance(param, dict) or set(param) != set(_CONV_KEYS):
        raise ConfigError(f"{name} must be a dict with keys {list(_CONV_KEYS)}, got {param!r}")
    return {
        "filter_num": _positive(param["filter_num"], f"{name}['filter_num']"),
        "filter_size": _positive(param["filter_size"], f"{name}['filter_size']"),
        "pad": _positive(param["pad"], f"{name}['pad']", allow_zero=True),
        "stride": _positive(param["stride"], f"{name}['stride']"),
    }


class _ConvModel(LayerModel):
    """A LayerModel that runs inference in chunks, bounding the im2col memory."""

    def _scores(self, x, train_flg):
        if train_flg or x.shape[0] <= _INFERENCE_CHUNK:
            return super()._scores(x, train_flg)
        chunks = []
        for start in range(0, x.shape[0], _INFERENCE_CHUNK):
            chunks.append(super()._scores(x[start:start + _INFERENCE_CHUNK], False))
        return np.concatenate(chunks)


class SimpleConvNet(_ConvModel):
    """The book's ``Conv1 -> Relu1 -> Pool1 -> Affine1 -> Relu2 -> Affine2 -> SoftmaxWithLoss`` (7.5).

    ``self.layers`` runs ``Pool1`` before ``Relu1``: max pooling and ReLU
    commute (``max(relu(a), relu(b)) == relu(max(a, b))``, gradients
    included), and ReLU on the pooled maps touches a quarter of the values.

    Parameters
    ----------
    input_dim : (C, H, W)
        Shape of one image, (1, 28, 28) for MNIST.
    conv_param : dict
        ``filter_num`` (30), ``filter_size`` (5), ``pad`` (0), ``stride`` (1).
    hidden_size, output_size : int
        100 and 10 in the book.
    weight_init_std : float
        Initial weights are ``weight_init_std * standard normal`` (book: 0.01).
    seed : int, optional
        Seed of the initial weights.
    dtype : 'float32' (default) or 'float64'

    ``params``: ``W1`` (FN, C, FS, FS), ``b1`` (FN,), ``W2`` (FN*PH*PW, hidden),
    ``b2``, ``W3`` (hidden, output), ``b3``. Pooling is 2x2 with stride 2.
    """

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param=None, hidden_size=100, output_size=10, weight_init_std=0.01,
                 *, seed=None, dtype="float32"):
        super().__init__()
        if conv_param is None:
            conv_param = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
        input_dim = _input_dim(input_dim)
        conv_param = _conv_param(conv_param, "conv_param")
        hidden_size = _positive(hidden_size, "hidden_size")
        output_size = _positive(output_size, "output_size")
        self.dtype = resolve_dtype(dtype)
        self.input_shape = input_dim
        self.output_size = output_size
        c, h, w = input_dim
        fn, fs = conv_param["filter_num"], conv_param["filter_size"]
        try:
            oh = conv_output_size(h, fs, conv_param["stride"], conv_param["pad"], axis="height")
            ow = conv_output_size(w, fs, conv_param["stride"], conv_param["pad"], axis="width")
            ph = conv_output_size(oh, 2, 2, 0, axis="height")
            pw = conv_output_size(ow, 2, 2, 0, axis="width")
        except ValueError as exc:
            raise ConfigError(f"conv_param {conv_param} does not fit input_dim {input_dim}: {exc}") from exc
        if isinstance(weight_init_std, bool) or not isinstance(weight_init_std, (int, float, np.integer, np.floating)) \
                or not 0 < weight_init_std < np.inf:
            raise ConfigError(f"weight_init_std must be a positive number, got {weight_init_std!r}")
        rng = np.random.default_rng(seed)
        std = float(weight_init_std)
        dt = self.dtype

        def normal(*shape):
            return (std * rng.standard_normal(shape)).astype(dt)

        self.layers = {
            "Conv1": Convolution(normal(fn, c, fs, fs), np.zeros(fn, dt),
                                 conv_param["stride"], conv_param["pad"]),
            "Pool1": Pooling(2, 2, stride=2),  # before Relu1: same values, a quarter of the work
            "Relu1": Relu(),
            "Affine1": Affine(normal(fn * ph * pw, hidden_size), np.zeros(hidden_size, dt)),
            "Relu2": Relu(),
            "Affine2": Affine(normal(hidden_size, output_size), np.zeros(output_size, dt)),
        }
        self._register_layers()  # also skips the first layer's unused dL/d(images)
        self.config = {
            "input_dim": list(input_dim),
            "conv_param": conv_param,
            "hidden_size": hidden_size,
            "output_size": output_size,
            "weight_init_std": std,
            "seed": seed,
            "dtype": dt.name,
        }


_DEEP_DEFAULTS = (
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
)


class DeepConvNet(_ConvModel):
    """The book's deep CNN (8.1): three blocks of conv-relu-conv-relu-pool, then
    ``Affine -> Relu -> Dropout -> Affine -> Dropout -> SoftmaxWithLoss``.

    Parameters
    ----------
    input_dim : (C, H, W)
        (1, 28, 28) for MNIST.
    conv_param_1 ... conv_param_6 : dict
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` of each convolution;
        the book's defaults are 16, 16, 32, 32, 64, 64 filters of 3x3 with
        pad 1 (pad 2 for the fourth, which makes 14x14 maps 16x16 so that
        the last pooling gives 4x4).
    hidden_size, output_size : int
        50 and 10 in the book.
    dropout_ratio : float
        Probability of dropping an activation in both dropout layers (0.5).
    seed : int, optional
        Seeds the initial weights and the dropout masks.
    dtype : 'float32' (default) or 'float64'

    Weights use He initialisation, ``sqrt(2 / fan_in)`` times a standard
    normal; biases start at zero. Pooling is 2x2 with stride 2; in
    ``self.layers`` it comes before the block's second ReLU (max pooling and
    ReLU commute, and ReLU then touches a quarter of the values).
    ``params``: ``W1``..``W6`` filters, ``W7`` (64*4*4, hidden), ``W8``
    (hidden, output) and the biases ``b1``..``b8``.
    """

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param_1=None, conv_param_2=None, conv_param_3=None,
                 conv_param_4=None, conv_param_5=None, conv_param_6=None,
                 hidden_size=50, output_size=10, *, dropout_ratio=0.5, seed=None, dtype="float32"):
        super().__init__()
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        conv_params = [_conv_param(dict(default) if p is None else p, f"conv_param_{i}")
                       for i, (p, default) in enumerate(zip(given, _DEEP_DEFAULTS), start=1)]
        input_dim = _input_dim(input_dim)
        hidden_size = _positive(hidden_size, "hidden_size")
        output_size = _positive(output_size, "output_size")
        if isinstance(dropout_ratio, bool) or not isinstance(dropout_ratio, (int, float, np.integer, np.floating)) \
                or not 0 <= dropout_ratio < 1:
            raise ConfigError(f"dropout_ratio must be in [0, 1), got {dropout_ratio!r}")
        self.dtype = resolve_dtype(dtype)
        self.input_shape = input_dim
        self.output_size = output_size
        dt = self.dtype
        weight_rng, dropout_seed_1, dropout_seed_2 = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))

        def he(shape, fan_in):
            return (np.sqrt(2.0 / fan_in) * weight_rng.standard_normal(shape)).astype(dt)

        self.layers = {}
        c, h, w = input_dim
        try:
            for i, p in enumerate(conv_params, start=1):
                fn, fs = p["filter_num"], p["filter_size"]
                h = conv_output_size(h, fs, p["stride"], p["pad"], axis="height")
                w = conv_output_size(w, fs, p["stride"], p["pad"], axis="width")
                self.layers[f"Conv{i}"] = Convolution(he((fn, c, fs, fs), c * fs * fs),
                                                      np.zeros(fn, dt), p["stride"], p["pad"])
                c = fn
                if i % 2 == 0:
                    h = conv_output_size(h, 2, 2, 0, axis="height")
                    w = conv_output_size(w, 2, 2, 0, axis="width")
                    self.layers[f"Pool{i // 2}"] = Pooling(2, 2, stride=2)  # before the ReLU: same values
                self.layers[f"Relu{i}"] = Relu()
        except ValueError as exc:
            raise ConfigError(f"the convolution parameters do not fit input_dim {input_dim}: {exc}") from exc
        features = c * h * w
        self.layers["Affine1"] = Affine(he((features, hidden_size), features), np.zeros(hidden_size, dt))
        self.layers["Relu7"] = Relu()
        self.layers["Dropout1"] = Dropout(dropout_ratio, rng=dropout_seed_1)
        self.layers["Affine2"] = Affine(he((hidden_size, output_size), hidden_size), np.zeros(output_size, dt))
        self.layers["Dropout2"] = Dropout(dropout_ratio, rng=dropout_seed_2)
        self._register_layers()  # also skips the first layer's unused dL/d(images)
        self.config = {
            "input_dim": list(input_dim),
            **{f"conv_param_{i}": p for i, p in enumerate(conv_params, start=1)},
            "hidden_size": hidden_size,
            "output_size": output_size,
            "dropout_ratio": float(dropout_ratio),
            "seed": seed,
            "dtype": dt.name,
        }
