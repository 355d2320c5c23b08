"""Convolution and pooling layers (book chapter 7), fast enough to train on a CPU.

Public shapes follow the book: images are ``(N, C, H, W)``, filters
``(FN, C, FH, FW)``, and :func:`im2col` returns ``(N*OH*OW, C*FH*FW)``.

Internally the layers work *channels-last*. A convolution unrolls a
channels-last input into ``(N*OH*OW, FH*FW*C)`` rows, so one matrix product
gives the output already in ``(N, OH, OW, FN)`` memory order; the layer hands
it on as an ``(N, FN, OH, OW)`` *view* (a transpose, no copy). The next layer
transposes back to channels-last for free, so a stack of conv / ReLU / pooling
layers never shuffles memory between layers. Callers only ever see NCHW
shapes; the memory order behind them is an implementation detail that NumPy's
strides keep honest: indexing, ufuncs and ``reshape`` see the NCHW values. Such
an output is not C-contiguous (``out.flags.c_contiguous`` is False); call
``np.ascontiguousarray(out)`` only where raw NCHW memory is needed.

Arrays the layers hand out (outputs, ``dx``) are always new; the layers keep
no view of them, nor of their inputs in training mode, so changing either in
place cannot change a later ``backward``. Gradients live in the layer's
``grads`` arrays and are overwritten by the next ``backward``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConfigError, ShapeError
from .core import Layer, _grad_property, _param_property

__all__ = [
    "conv_output_size",
    "im2col",
    "col2im",
    "Convolution",
    "Pooling",
    "AvgPooling",
    "Flatten",
    "set_num_threads",
    "get_num_threads",
]


# --------------------------------------------------------------------------
# shape arithmetic and validation


def _positive_int(value, name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ShapeError(f"{name} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ShapeError(f"{name} must be a {kind} integer, got {value}")
    return int(value)


def conv_output_size(size: int, filter_size: int, stride: int = 1, pad: int = 0,
                     *, axis: str = "height") -> int:
    """Output length of a sliding window: ``1 + (size + 2*pad - filter_size) // stride``.

    The book's formula and PyTorch's rule: when the stride does not tile the
    padded input evenly, the last rows (columns) that do not fill a whole
    window are left out (a 3x3 window with stride 2 and pad 1 takes 28 to
    14), and the gradient they receive is zero.

    Raises
    ------
    ShapeError
        If a size is not a positive integer (``pad``: non-negative), or if the
        window is larger than the padded input (it does not fit even once).
    """
    size = _positive_int(size, f"input {axis}")
    filter_size = _positive_int(filter_size, f"window {axis}")
    stride = _positive_int(stride, "stride")
    pad = _positive_int(pad, "pad", allow_zero=True)
    padded = size + 2 * pad
    if filter_size > padded:
        raise ShapeError(
            f"window {axis} {filter_size} is larger than the padded input {axis} "
            f"{padded} (input {size} + 2*pad {pad})")
    return (padded - filter_size) // stride + 1


def _check_images(x, name: str = "x") -> np.ndarray:
    if not hasattr(x, "ndim") or not hasattr(x, "dtype"):
        raise ShapeError(f"{name} must be an array of shape (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ShapeError(f"{name} must have shape (N, C, H, W), got shape {tuple(x.shape)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ShapeError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    return x


def _check_dout(dout, expected_shape: tuple, layer: str) -> np.ndarray:
    if tuple(dout.shape) != tuple(expected_shape):
        raise ShapeError(
            f"{layer}.backward: dout must have the forward output's shape "
            f"{tuple(expected_shape)}, got {tuple(dout.shape)}")
    return dout


# --------------------------------------------------------------------------
# channels-last building blocks (used by the layers)


def _pad_nhwc(x: np.ndarray, pad: int, fill: float = 0.0, pad_w: int | None = None) -> np.ndarray:
    """Copy ``(N, H, W, C)`` into ``(N, H+2*pad, W+2*pad_w, C)`` with a border of ``fill``."""
    ph, pw = pad, (pad if pad_w is None else pad_w)
    if ph == 0 and pw == 0:
        return x
    n, h, w, c = x.shape
    out = np.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype, like=x)
    out[:, :ph] = fill
    out[:, h + ph:] = fill
    out[:, ph:h + ph, :pw] = fill
    out[:, ph:h + ph, w + pw:] = fill
    out[:, ph:h + ph, pw:w + pw] = x
    return out


def _windows_nhwc(xp: np.ndarray, fh: int, fw: int, stride: int) -> np.ndarray:
    """Read-only view ``(N, OH, OW, FH, FW, C)`` of every window of a padded NHWC array."""
    win = sliding_window_view(xp, (fh, fw), axis=(1, 2))  # (N, H', W', C, FH, FW)
    if stride > 1:
        win = win[:, ::stride, ::stride]
    return win.transpose(0, 1, 2, 4, 5, 3)


def _im2col_nhwc(xp: np.ndarray, fh: int, fw: int, stride: int, out: np.ndarray | None = None) -> np.ndarray:
    """Rows ``(N*OH*OW, FH*FW*C)`` of a padded channels-last input (one copy).

    ``out``, if given, is a C-contiguous array of that many elements to fill.
    """
    win = _windows_nhwc(xp, fh, fw, stride)
    n, oh, ow = win.shape[:3]
    if out is None:
        return win.reshape(n * oh * ow, -1)
    col = out.reshape(n * oh * ow, -1)
    np.copyto(col.reshape(win.shape), win)
    return col


def _col2im_nhwc(col: np.ndarray, padded_shape: tuple, fh: int, fw: int,
                 stride: int) -> np.ndarray:
    """Adjoint of :func:`_im2col_nhwc`: add every row back onto its window.

    ``col`` is ``(N, OH, OW, FH, FW, C)`` (or reshapeable to it); returns the
    padded ``(N, Hp, Wp, C)`` array. One vectorised add per kernel offset.
    """
    n, hp, wp, c = padded_shape
    oh = (hp - fh) // stride + 1
    ow = (wp - fw) // stride + 1
    col = col.reshape(n, oh, ow, fh, fw, c)
    out = np.zeros(padded_shape, dtype=col.dtype, like=col)
    for i in range(fh):
        for j in range(fw):
            out[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :] += col[:, :, :, i, j, :]
    return out


def _channels_last(x: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(N, H, W, C)`` view (no copy)."""
    return x.transpose(0, 2, 3, 1)


def _unpad_to_nchw(xp: np.ndarray, pad: int, h: int, w: int) -> np.ndarray:
    """Padded ``(N, H+2*pad, W+2*pad, C)`` -> the ``(N, C, H, W)`` view of its inside."""
    return xp[:, pad:pad + h, pad:pad + w, :].transpose(0, 3, 1, 2)


# --------------------------------------------------------------------------
# the book's im2col / col2im (channel-major columns)


def im2col(input_data, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Unroll every filter window of a batch of images into one row.

    Parameters
    ----------
    input_data : ndarray of shape (N, C, H, W)
    filter_h, filter_w : int
        Window size.
    stride, pad : int
        Step between windows and zero padding on each side.

    Returns
    -------
    col : ndarray of shape (N*OH*OW, C*filter_h*filter_w)
        Row ``(n*OH + oh)*OW + ow`` holds window ``(oh, ow)`` of image ``n``,
        channel-major (``C``, then ``filter_h``, then ``filter_w``) as in the book.
    """
    x = _check_images(input_data, "input_data")
    fh = _positive_int(filter_h, "filter_h")
    fw = _positive_int(filter_w, "filter_w")
    stride = _positive_int(stride, "stride")
    pad = _positive_int(pad, "pad", allow_zero=True)
    n, c, h, w = x.shape
    oh = conv_output_size(h, fh, stride, pad, axis="height")
    ow = conv_output_size(w, fw, stride, pad, axis="width")
    xp = _pad_nhwc(_channels_last(x), pad)                  # (N, Hp, Wp, C)
    win = _windows_nhwc(xp, fh, fw, stride)                 # (N, OH, OW, FH, FW, C)
    # Always a new array, as the book's: reshaping the window view could hand
    # back a read-only view of input_data itself (1x1 windows).
    col = np.empty((n * oh * ow, c * fh * fw), dtype=x.dtype, like=x)
    np.copyto(col.reshape(n, oh, ow, c, fh, fw), win.transpose(0, 1, 2, 5, 3, 4))
    return col


def col2im(col, input_shape, filter_h: int, filter_w: int, stride: int = 1,
           pad: int = 0) -> np.ndarray:
    """Adjoint of :func:`im2col`: add each row back onto the pixels of its window.

    Where windows overlap, their contributions add up; padding is cut off.

    Parameters
    ----------
    col : ndarray of shape (N*OH*OW, C*filter_h*filter_w)
    input_shape : tuple (N, C, H, W)
        Shape of the images ``col`` was made from.

    Returns
    -------
    ndarray of shape (N, C, H, W)
    """
    if len(tuple(input_shape)) != 4:
        raise ShapeError(f"input_shape must be (N, C, H, W), got {tuple(input_shape)!r}")
    n, c, h, w = (int(v) for v in input_shape)
    fh = _positive_int(filter_h, "filter_h")
    fw = _positive_int(filter_w, "filter_w")
    stride = _positive_int(stride, "stride")
    pad = _positive_int(pad, "pad", allow_zero=True)
    oh = conv_output_size(h, fh, stride, pad, axis="height")
    ow = conv_output_size(w, fw, stride, pad, axis="width")
    if getattr(col, "ndim", None) != 2 or tuple(col.shape) != (n * oh * ow, c * fh * fw):
        raise ShapeError(
            f"col must have shape (N*OH*OW, C*FH*FW) = ({n * oh * ow}, {c * fh * fw}) "
            f"for input_shape {(n, c, h, w)}, got {tuple(getattr(col, 'shape', ()))}")
    col_nhwc = col.reshape(n, oh, ow, c, fh, fw).transpose(0, 1, 2, 4, 5, 3)
    padded = _col2im_nhwc(col_nhwc, (n, h + 2 * pad, w + 2 * pad, c), fh, fw, stride)
    return _unpad_to_nchw(padded, pad, h, w)


# --------------------------------------------------------------------------
# image chunks, optionally spread over a few threads

#: Bytes of unrolled input per chunk: small enough to stay in the CPU's cache
#: between im2col writing it and the matrix product reading it, large enough
#: that a multi-threaded BLAS does not spend its time starting and stopping.
_CHUNK_BYTES = 4 << 20

_num_threads = None  # set by set_num_threads or read from $NNSCRATCH_NUM_THREADS on first use
_pool = None


def set_num_threads(n: int) -> None:
    """Threads that share a convolution's image chunks (default 1).

    Also read from the environment variable ``NNSCRATCH_NUM_THREADS``. With
    more than one, limit NumPy's BLAS to one thread per product (e.g.
    ``OPENBLAS_NUM_THREADS=1`` or ``threadpoolctl.threadpool_limits(1)``), or
    the two kinds of threads compete for the same cores.
    """
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 64:
        raise ConfigError(f"number of threads must be an integer from 1 to 64, got {n!r}")
    if _pool is not None and n != _num_threads:
        _pool.shutdown(wait=True)
        _pool = None
    _num_threads = int(n)


def get_num_threads() -> int:
    """Threads the convolutions use (see :func:`set_num_threads`)."""
    if _num_threads is None:
        value = os.environ.get("NNSCRATCH_NUM_THREADS", "1").strip()
        try:
            set_num_threads(int(value))
        except (ValueError, ConfigError):
            raise ConfigError(f"NNSCRATCH_NUM_THREADS must be an integer from 1 to 64, got {value!r}") from None
    return _num_threads


def _for_chunks(work, n: int, chunk: int) -> int:
    """Call ``work(start, stop, worker)`` for the image chunks ``[start, stop)`` of ``range(n)``.

    With several threads, worker ``k`` (0, 1, ...) takes every chunk
    ``k, k + workers, ...``; NumPy releases the GIL in copies and matrix
    products, so they overlap. Returns the number of workers used.
    """
    starts = list(range(0, n, chunk))
    workers = min(get_num_threads(), len(starts))
    if workers == 1:
        for start in starts:
            work(start, min(start + chunk, n), 0)
        return 1
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads, thread_name_prefix="nnscratch-conv")

    def run(worker):
        for start in starts[worker::workers]:
            work(start, min(start + chunk, n), worker)

    for future in [_pool.submit(run, worker) for worker in range(workers)]:
        future.result()
    return workers


# --------------------------------------------------------------------------
# layers


class Convolution(Layer):
    """2-D convolution (cross-correlation, as in the book) of ``(N, C, H, W)`` images.

    Parameters
    ----------
    W : ndarray of shape (FN, C, FH, FW)
        Filters; kept by reference in ``params['W']``.
    b : ndarray of shape (FN,)
    stride, pad : int

    Notes
    -----
    Two implementations compute the same values (a test checks that they
    agree). ``fast = False`` selects the book's, :meth:`forward_book` /
    :meth:`backward_book`: one :func:`im2col` of the whole batch, one matrix
    product, and :func:`col2im` of ``dout @ W.T`` for ``dx``.

    The default fast path works channels-last, a few images at a time: each
    chunk's unrolled input (at most about 4 MB) is multiplied while it is still in
    the CPU's cache, instead of writing a 45 MB matrix and reading it back.
    Training keeps the padded input, not the unrolled one; backward unrolls
    each chunk again for ``dW`` (as cheap as reading the big matrix back).
    For stride 1, ``dx`` is the convolution of the zero-padded ``dout`` with
    the flipped filters (im2col + product again, no scatter-add); other
    strides use ``dout @ W.T`` and col2im. With one input channel (a
    network's first layer) the unrolled input is built transposed, from
    FH*FW slice copies, and kept for ``dW``. Chunks can be shared by a few
    threads (:func:`set_num_threads`). Set ``compute_input_grad = False`` on
    a network's first layer to skip the (unused) gradient with respect to
    the images.

    One layer object serves one caller at a time: it keeps state from
    forward to backward and reuses its scratch memory, also in inference,
    so threads sharing a network must take turns (``nnscratch serve`` holds
    a lock per model).
    """

    fast = True

    def __init__(self, W, b, stride: int = 1, pad: int = 0):
        W = np.asarray(W) if not hasattr(W, "ndim") else W
        b = np.asarray(b) if not hasattr(b, "ndim") else b
        if W.ndim != 4:
            raise ShapeError(f"W must have shape (FN, C, FH, FW), got {tuple(W.shape)}")
        if not (np.issubdtype(W.dtype, np.floating) and np.issubdtype(b.dtype, np.floating)):
            raise ShapeError(f"W and b must be floating-point arrays, got {W.dtype} and {b.dtype}")
        if b.shape != (W.shape[0],):
            raise ShapeError(f"b must have shape (FN,) = ({W.shape[0]},), got {tuple(b.shape)}")
        super().__init__()
        self.stride = _positive_int(stride, "stride")
        self.pad = _positive_int(pad, "pad", allow_zero=True)
        self.W = W
        self.b = b
        self.compute_input_grad = True
        # Reusable scratch arrays, one per worker thread, for a chunk's unrolled
        # input (forward, dW) or unrolled output gradient (dx).
        self._scratch = {}
        self._x_padded = None  # (N, Hp, Wp, C): what backward needs
        self._col_t = None     # one input channel: the transposed unrolled input, kept from forward
        self._x_shape = None
        self._out_shape = None
        self._book_cache = None  # (x, col, col_W) of forward_book

    W = _param_property("W", "Filters, shape (FN, C, FH, FW) (same array as ``params['W']``).")
    b = _param_property("b", "Biases, shape (FN,) (same array as ``params['b']``).")
    dW = _grad_property("W", "dL/dW after ``backward`` (same array as ``grads['W']``).")
    db = _grad_property("b", "dL/db after ``backward`` (same array as ``grads['b']``).")

    def _check_forward(self, x):
        x = _check_images(x)
        fn, c, fh, fw = self.params["W"].shape
        n, xc, h, w = x.shape
        if xc != c:
            raise ShapeError(
                f"Convolution: x has {xc} channels (shape {tuple(x.shape)}) but the filters "
                f"W {tuple(self.params['W'].shape)} expect {c}")
        oh = conv_output_size(h, fh, self.stride, self.pad, axis="height")
        ow = conv_output_size(w, fw, self.stride, self.pad, axis="width")
        self._x_shape = x.shape
        self._out_shape = (n, fn, oh, ow)
        return x

    def forward(self, x, train_flg: bool = True) -> np.ndarray:
        """x : (N, C, H, W) -> (N, FN, OH, OW)."""
        x = self._check_forward(x)
        get_num_threads()  # a bad NNSCRATCH_NUM_THREADS is an error at the first convolution, whatever its path
        return self._forward_fast(x) if self.fast else self.forward_book(x)

    def backward(self, dout) -> np.ndarray | None:
        """dout : (N, FN, OH, OW) -> dx : (N, C, H, W); fills ``grads['W']``, ``grads['b']``."""
        if self._x_padded is None and self._book_cache is None:
            raise RuntimeError("Convolution.backward needs a forward pass first "
                               "(each forward serves one backward)")
        _check_dout(dout, self._out_shape, "Convolution")
        return self._backward_fast(dout) if self._x_padded is not None else self.backward_book(dout)

    # -- the book's algorithm (section 7.4.3): the reference ----------------
    def forward_book(self, x) -> np.ndarray:
        """The book's forward: im2col of the whole batch, one product, a transpose."""
        FN, C, FH, FW = self.W.shape
        N, _, H, W = x.shape
        out_h = conv_output_size(H, FH, self.stride, self.pad)
        out_w = conv_output_size(W, FW, self.stride, self.pad, axis="width")

        self._x_shape, self._out_shape = x.shape, (N, FN, out_h, out_w)
        col = im2col(x, FH, FW, self.stride, self.pad)   # (N*OH*OW, C*FH*FW)
        col_W = self.W.reshape(FN, -1).T                 # (C*FH*FW, FN)
        out = col @ col_W + self.b
        out = out.reshape(N, out_h, out_w, -1).transpose(0, 3, 1, 2)

        self._book_cache = (x.shape, col, col_W)
        self._x_padded = self._col_t = None
        return out

    def backward_book(self, dout) -> np.ndarray | None:
        """The book's backward: db, dW = col.T @ dout, dx = col2im(dout @ col_W.T)."""
        x_shape, col, col_W = self._book_cache
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)

        self.db[...] = np.sum(dout, axis=0)
        self.dW[...] = (col.T @ dout).transpose(1, 0).reshape(FN, C, FH, FW)
        self._book_cache = None
        if not self.compute_input_grad:
            return None
        dcol = dout @ col_W.T
        return col2im(dcol, x_shape, FH, FW, self.stride, self.pad)

    # -- the fast path: channels-last, in cache-sized chunks of images ------
    def _chunk_images(self, per_image: int, itemsize: int) -> int:
        return max(1, _CHUNK_BYTES // (per_image * itemsize))

    def _scratch_for(self, worker: int, size: int, like: np.ndarray) -> np.ndarray:
        """A flat scratch array of ``size`` elements of ``like``'s dtype for one worker thread."""
        buf = self._scratch.get(worker)
        if buf is None or buf.size < size or buf.dtype != like.dtype:
            buf = self._scratch[worker] = np.empty(size, dtype=like.dtype, like=like)
        return buf[:size]

    def _forward_fast(self, x) -> np.ndarray:
        W, b = self.params["W"], self.params["b"]
        fn, c, fh, fw = W.shape
        n, fn, oh, ow = self._out_shape
        # Always a copy of the input (it is kept for backward), padded, channels-last.
        xp = _pad_nhwc(_channels_last(x), self.pad) if self.pad else _channels_last(x).copy()
        w2d = W.transpose(2, 3, 1, 0).reshape(fh * fw * c, fn)         # (FH*FW*C, FN)
        out = np.empty((n, oh, ow, fn), dtype=np.result_type(x, W), like=x)
        rows = oh * ow * fh * fw * c                                    # unrolled elements per image
        self._x_padded, self._book_cache = xp, None
        if c == 1:
            # One channel (a network's first layer): the transposed unrolled input
            # is FH*FW slice copies of whole rows, small enough to keep for dW.
            col_t = self._scratch_for(0, n * rows, x).reshape(fh, fw, n, oh, ow)
            for i in range(fh):
                for j in range(fw):
                    np.copyto(col_t[i, j], xp[:, i:i + self.stride * oh:self.stride,
                                              j:j + self.stride * ow:self.stride, 0])
            self._col_t = col_t.reshape(fh * fw, -1)                   # (FH*FW, N*OH*OW)
            out2d = out.reshape(-1, fn)
            np.matmul(self._col_t.T, w2d, out=out2d)
            out2d += b
            return out.transpose(0, 3, 1, 2)
        chunk = self._chunk_images(rows, x.itemsize)

        def work(start, stop, worker):
            col = _im2col_nhwc(xp[start:stop], fh, fw, self.stride,     # (k*OH*OW, FH*FW*C)
                               out=self._scratch_for(worker, (stop - start) * rows, x))
            out_chunk = out[start:stop].reshape(-1, fn)
            np.matmul(col, w2d, out=out_chunk)
            out_chunk += b                                              # while still in cache

        _for_chunks(work, n, chunk)
        return out.transpose(0, 3, 1, 2)

    def _backward_fast(self, dout) -> np.ndarray | None:
        W = self.params["W"]
        fn, c, fh, fw = W.shape
        n, _, h, w = self._x_shape
        _, _, oh, ow = self._out_shape
        xp, self._x_padded = self._x_padded, None  # each forward serves one backward
        dout_nhwc = np.ascontiguousarray(_channels_last(dout))          # (N, OH, OW, FN)
        dout2d = dout_nhwc.reshape(-1, fn)
        # Column sums as a matrix-vector product: ~10x faster than np.sum(axis=0) on (N*OH*OW, FN).
        np.matmul(np.ones(dout2d.shape[0], dtype=dout2d.dtype, like=dout2d), dout2d, out=self.grads["b"])

        rows = oh * ow * fh * fw * c
        partial = {}  # worker -> its sum of col.T @ dout over its chunks: dW as (FH*FW*C, FN)
        col_t, self._col_t = self._col_t, None
        if col_t is not None:
            partial[0] = col_t @ dout2d                                  # one channel: kept from forward
        p = self.pad
        # For stride 1, dx is the "full" convolution of dout with the flipped
        # filters, channels swapped: im2col + product per chunk, no scatter-add.
        flipped = self.compute_input_grad and self.stride == 1 and p <= fh - 1 and p <= fw - 1
        if flipped:
            w_flip = W[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(fh * fw * fn, c)
            dx = np.empty((n, h, w, c), dtype=dout2d.dtype, like=dout2d)
            drows = h * w * fh * fw * fn

        def work(start, stop, worker):
            if col_t is None:
                col = _im2col_nhwc(xp[start:stop], fh, fw, self.stride,  # (k*OH*OW, FH*FW*C)
                                   out=self._scratch_for(worker, (stop - start) * rows, xp))
                part = col.T @ dout2d[start * oh * ow:stop * oh * ow]
                partial[worker] = partial[worker] + part if worker in partial else part
            if flipped:  # the same chunk of dout, still in cache: padded, unrolled, multiplied
                dpad = _pad_nhwc(dout_nhwc[start:stop], fh - 1 - p, pad_w=fw - 1 - p)
                dcol = _im2col_nhwc(dpad, fh, fw, 1,                      # (k*H*W, FH*FW*FN)
                                    out=self._scratch_for(worker, (stop - start) * drows, dout2d))
                np.matmul(dcol, w_flip, out=dx[start:stop].reshape(-1, c))

        if col_t is None or flipped:
            _for_chunks(work, n, self._chunk_images(max(rows, drows) if flipped else rows, xp.itemsize))
        dw2d = sum(partial.values())
        np.copyto(self.grads["W"], dw2d.reshape(fh, fw, c, fn).transpose(3, 2, 0, 1))
        if not self.compute_input_grad:
            return None
        if flipped:
            return dx.transpose(0, 3, 1, 2)
        w2d = W.transpose(2, 3, 1, 0).reshape(fh * fw * c, fn)
        dcol = dout2d @ w2d.T                                           # (N*OH*OW, FH*FW*C)
        return _unpad_to_nchw(_col2im_nhwc(dcol, xp.shape, fh, fw, self.stride), p, h, w)


def _window_index_dtype(window_size: int):
    """Dtype for a position inside a window: one byte up to 16x16, more beyond."""
    return np.uint8 if window_size <= 256 else np.intp


class _Pool2d(Layer):
    """Shared machinery of max and average pooling over ``(N, C, H, W)``."""

    def __init__(self, pool_h: int, pool_w: int, stride: int = 1, pad: int = 0):
        super().__init__()
        self.pool_h = _positive_int(pool_h, "pool_h")
        self.pool_w = _positive_int(pool_w, "pool_w")
        self.stride = _positive_int(stride, "stride")
        self.pad = _positive_int(pad, "pad", allow_zero=True)
        self._x_shape = None
        self._out_shape = None

    def _prepare(self, x):
        x = _check_images(x)
        n, c, h, w = x.shape
        oh = conv_output_size(h, self.pool_h, self.stride, self.pad, axis="height")
        ow = conv_output_size(w, self.pool_w, self.stride, self.pad, axis="width")
        self._x_shape = x.shape
        self._out_shape = (n, c, oh, ow)
        # Non-overlapping windows (the usual 2x2/2) need no im2col: a reshape
        # exposes each window offset as a strided slice.
        self._tiled = self.pad == 0 and self.stride == self.pool_h == self.pool_w
        return x, oh, ow

    def _tiles(self, x_nhwc, oh, ow):
        """List of the ``pool_h*pool_w`` slices ``(N, OH, OW, C)``, one per window offset.

        Rows and columns past the last whole window are left out (floor rule).
        """
        n, _, _, c = x_nhwc.shape
        x_nhwc = np.ascontiguousarray(x_nhwc[:, :oh * self.pool_h, :ow * self.pool_w])
        xr = x_nhwc.reshape(n, oh, self.pool_h, ow, self.pool_w, c)
        return [xr[:, :, i, :, j, :] for i in range(self.pool_h) for j in range(self.pool_w)]

    def _dout_channels_last(self, dout) -> np.ndarray:
        """``dout`` checked against the last forward, as an ``(N, OH, OW, C)`` view."""
        name = type(self).__name__
        if self._x_shape is None:
            raise RuntimeError(f"{name}.backward needs a forward pass first")
        _check_dout(dout, self._out_shape, name)
        return _channels_last(dout)

    def _empty_tiled_dx(self, dout) -> np.ndarray:
        """Uninitialised dx as ``(N, OH, pool_h, OW, pool_w, C)``: slice ``[:, :, i, :, j, :]`` is offset (i, j)."""
        n, c, _, _ = self._x_shape
        _, _, oh, ow = self._out_shape
        return np.empty((n, oh, self.pool_h, ow, self.pool_w, c), dtype=dout.dtype, like=dout)

    def _dx_from_tiles(self, dx_tiled) -> np.ndarray:
        n, c, h, w = self._x_shape
        _, _, oh, ow = self._out_shape
        th, tw = oh * self.pool_h, ow * self.pool_w
        if (th, tw) == (h, w):
            return dx_tiled.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        dx = np.zeros((n, h, w, c), dtype=dx_tiled.dtype, like=dx_tiled)  # left-over rows: gradient 0
        dx[:, :th, :tw] = dx_tiled.reshape(n, th, tw, c)
        return dx.transpose(0, 3, 1, 2)

    def _dx_from_windows(self, dcol) -> np.ndarray:
        """dx from per-window gradients ``(N, OH, OW, pool_h, pool_w, C)``: overlaps add, padding is cut."""
        _, _, h, w = self._x_shape
        dxp = _col2im_nhwc(dcol, self._padded_shape, self.pool_h, self.pool_w, self.stride)
        return _unpad_to_nchw(dxp, self.pad, h, w)


class Pooling(_Pool2d):
    """Max pooling of ``(N, C, H, W)`` images (book chapter 7).

    The gradient of a window goes to its first maximum (row-major order), as
    the book's ``argmax`` does. Padding, if any, never wins (it is ``-inf``);
    ``pad`` must be smaller than the window, so that no window is all padding.

    ``fast = False`` selects the book's algorithm (:meth:`forward_book`,
    :meth:`backward_book`: im2col, the maximum of each row, col2im), the
    reference a test compares the default path with. The default path keeps
    only each window's argmax, channels-last; non-overlapping windows (the
    usual 2x2 / stride 2) need no im2col at all.
    """

    fast = True

    def __init__(self, pool_h: int, pool_w: int, stride: int = 1, pad: int = 0):
        super().__init__(pool_h, pool_w, stride, pad)
        if self.pad >= min(self.pool_h, self.pool_w):
            raise ShapeError(
                f"Pooling: pad {self.pad} must be smaller than the window {self.pool_h}x{self.pool_w}; "
                f"otherwise some windows hold only padding and their maximum is -inf")
        # Where each output's maximum is inside its window, (N, OH, OW, C): all
        # that backward needs. Never a view of the input or of the returned
        # output, so a caller changing either in place cannot corrupt backward.
        self._argmax = None
        self._book_cache = None

    def forward(self, x, train_flg: bool = True) -> np.ndarray:
        """x : (N, C, H, W) -> (N, C, OH, OW)."""
        x, oh, ow = self._prepare(x)
        self._book_cache = None
        if not self.fast:
            return self.forward_book(x)
        x_nhwc = _channels_last(x)
        n, _, _, c = x_nhwc.shape
        index_dtype = _window_index_dtype(self.pool_h * self.pool_w)
        if self._tiled:
            tiles = self._tiles(x_nhwc, oh, ow)
            out = tiles[0].copy()                                       # (N, OH, OW, C)
            argmax = np.zeros(out.shape, dtype=index_dtype, like=out)
            better = np.empty(out.shape, dtype=bool, like=out)
            for k, tile in enumerate(tiles[1:], start=1):
                # Strictly greater, so a tie stays with the earlier offset (as argmax).
                # k only grows, so "k where better, else keep" is a maximum: branch-free,
                # several times faster than a masked copy of a random mask.
                np.greater(tile, out, out=better)
                np.maximum(argmax, np.multiply(better, k, dtype=index_dtype), out=argmax)
                np.maximum(out, tile, out=out)
        else:
            xp = _pad_nhwc(x_nhwc, self.pad, fill=-np.inf)
            self._padded_shape = xp.shape
            win = _windows_nhwc(xp, self.pool_h, self.pool_w, self.stride)
            win = win.reshape(n, oh, ow, self.pool_h * self.pool_w, c)
            argmax = win.argmax(axis=3).astype(index_dtype)
            out = np.take_along_axis(win, argmax[:, :, :, None, :].astype(np.intp), axis=3)[:, :, :, 0]
        self._argmax = argmax
        return out.transpose(0, 3, 1, 2)

    def backward(self, dout) -> np.ndarray:
        """dout : (N, C, OH, OW) -> dx : (N, C, H, W)."""
        dout_nhwc = self._dout_channels_last(dout)                      # (N, OH, OW, C)
        if self._book_cache is not None:
            return self.backward_book(dout)
        if self._tiled:
            dx = self._empty_tiled_dx(dout)
            for k in range(self.pool_h * self.pool_w):
                i, j = divmod(k, self.pool_w)
                np.multiply(dout_nhwc, self._argmax == k, out=dx[:, :, i, :, j, :])
            return self._dx_from_tiles(dx)
        n, oh, ow, c = dout_nhwc.shape
        dcol = np.zeros((n, oh, ow, self.pool_h * self.pool_w, c), dtype=dout.dtype, like=dout)
        np.put_along_axis(dcol, self._argmax[:, :, :, None, :].astype(np.intp),
                          dout_nhwc[:, :, :, None, :], axis=3)
        return self._dx_from_windows(dcol)

    # -- the book's algorithm (section 7.4.4): the reference ----------------
    def forward_book(self, x) -> np.ndarray:
        """The book's forward: im2col, one row per window and channel, its max and argmax."""
        N, C, H, W = x.shape
        out_h = conv_output_size(H, self.pool_h, self.stride, self.pad)
        out_w = conv_output_size(W, self.pool_w, self.stride, self.pad, axis="width")
        # The book's im2col pads with zeros; -inf keeps padding from ever being the maximum.
        p = self.pad
        x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)

        col = im2col(x_pad, self.pool_h, self.pool_w, self.stride, 0)
        col = col.reshape(-1, self.pool_h * self.pool_w)
        arg_max = np.argmax(col, axis=1)
        out = np.max(col, axis=1)
        out = out.reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)

        self._x_shape, self._out_shape = x.shape, out.shape
        self._book_cache = (x_pad.shape, arg_max)
        return out

    def backward_book(self, dout) -> np.ndarray:
        """The book's backward: each window's gradient to its argmax, then col2im."""
        x_pad_shape, arg_max = self._book_cache
        dout = dout.transpose(0, 2, 3, 1)

        pool_size = self.pool_h * self.pool_w
        dmax = np.zeros((dout.size, pool_size), dtype=dout.dtype, like=dout)
        dmax[np.arange(arg_max.size), arg_max.flatten()] = dout.flatten()
        dmax = dmax.reshape(dout.shape + (pool_size,))
        dcol = dmax.reshape(dmax.shape[0] * dmax.shape[1] * dmax.shape[2], -1)
        dx = col2im(dcol, x_pad_shape, self.pool_h, self.pool_w, self.stride, 0)

        _, _, H, W = self._x_shape
        p = self.pad
        return dx[:, :, p:p + H, p:p + W]


class AvgPooling(_Pool2d):
    """Average pooling of ``(N, C, H, W)`` images; zero padding counts in the average."""

    def forward(self, x, train_flg: bool = True) -> np.ndarray:
        """x : (N, C, H, W) -> (N, C, OH, OW)."""
        x, oh, ow = self._prepare(x)
        x_nhwc = _channels_last(x)
        scale = x.dtype.type(1.0 / (self.pool_h * self.pool_w))
        if self._tiled:
            tiles = self._tiles(x_nhwc, oh, ow)
            out = tiles[0].copy()
            for tile in tiles[1:]:
                out += tile
        else:
            xp = _pad_nhwc(x_nhwc, self.pad)
            self._padded_shape = xp.shape
            out = _windows_nhwc(xp, self.pool_h, self.pool_w, self.stride).sum(axis=(3, 4))
        out *= scale
        return out.transpose(0, 3, 1, 2)

    def backward(self, dout) -> np.ndarray:
        """dout : (N, C, OH, OW) -> dx : (N, C, H, W)."""
        ph, pw = self.pool_h, self.pool_w
        share = self._dout_channels_last(dout) * dout.dtype.type(1.0 / (ph * pw))  # (N, OH, OW, C)
        if self._tiled:
            dx = self._empty_tiled_dx(dout)
            dx[...] = share[:, :, None, :, None, :]
            return self._dx_from_tiles(dx)
        n, oh, ow, c = share.shape
        return self._dx_from_windows(np.broadcast_to(share[:, :, :, None, None, :], (n, oh, ow, ph, pw, c)))


class Flatten(Layer):
    """``(N, C, H, W)`` (or any ``(N, ...)``) -> ``(N, C*H*W)`` in C order, as the book's Affine does."""

    def __init__(self):
        super().__init__()
        self._x_shape = None

    def forward(self, x, train_flg: bool = True) -> np.ndarray:
        if getattr(x, "ndim", 0) < 2:
            raise ShapeError(f"Flatten: x must have shape (N, ...), got {tuple(getattr(x, 'shape', ()))}")
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout) -> np.ndarray:
        if self._x_shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        n = self._x_shape[0]
        if dout.shape[0] != n or dout.size != int(np.prod(self._x_shape)):
            raise ShapeError(
                f"Flatten.backward: dout must have shape ({n}, {int(np.prod(self._x_shape[1:]))}), "
                f"got {tuple(dout.shape)}")
        return dout.reshape(self._x_shape)
