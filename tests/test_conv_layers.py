"""Convolution / pooling layers: im2col against its definition, backward against
central-difference gradients in float64, and ShapeErrors that name the sizes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central_differences import central_difference, rel_error
from nnscratch.calculus import numerical_gradient
from nnscratch.errors import ShapeError
from nnscratch.layers.conv import (AvgPooling, Convolution, Flatten, Pooling, col2im,
                                   conv_output_size, im2col)


def numerical_grad(f, x, h=1e-5):
    """Central differences of the scalar f() with respect to x (perturbed in place)."""
    return numerical_gradient(lambda _: f(), x, h)


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12)


def slow_im2col(x, fh, fw, stride, pad):
    """The definition: one row per output position, channel-major window contents."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - fh) // stride + 1
    ow = (w + 2 * pad - fw) // stride + 1
    rows = []
    for i in range(n):
        for a in range(oh):
            for b in range(ow):
                rows.append(xp[i, :, a * stride:a * stride + fh, b * stride:b * stride + fw].ravel())
    return np.array(rows)


def slow_col2im(col, shape, fh, fw, stride, pad):
    n, c, h, w = shape
    oh = (h + 2 * pad - fh) // stride + 1
    ow = (w + 2 * pad - fw) // stride + 1
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    r = 0
    for i in range(n):
        for a in range(oh):
            for b in range(ow):
                xp[i, :, a * stride:a * stride + fh, b * stride:b * stride + fw] += \
                    col[r].reshape(c, fh, fw)
                r += 1
    return xp[:, :, pad:pad + h, pad:pad + w]


GEOMETRIES = [  # (N, C, H, W, FH, FW, stride, pad)
    (2, 1, 5, 5, 3, 3, 1, 0),
    (2, 3, 6, 5, 3, 2, 1, 1),
    (1, 2, 7, 7, 3, 3, 2, 1),
    (3, 2, 6, 6, 2, 2, 2, 0),
    (2, 4, 4, 4, 3, 3, 1, 2),
    (1, 1, 9, 7, 5, 3, 2, 0),
    (2, 2, 4, 5, 2, 2, 1, 2),   # stride 1 with pad > FH-1: dx by col2im, not the flipped-filter path
    (1, 2, 5, 3, 3, 1, 1, 1),   # 3x1 kernel: pad fits the height but not the width (col2im path)
    (1, 3, 4, 4, 1, 1, 1, 0),   # 1x1 kernel
]


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_im2col_matches_definition(geom):
    n, c, h, w, fh, fw, s, p = geom
    x = np.random.default_rng(1).standard_normal((n, c, h, w))
    np.testing.assert_array_equal(im2col(x, fh, fw, s, p), slow_im2col(x, fh, fw, s, p))


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_col2im_adds_overlapping_windows(geom):
    n, c, h, w, fh, fw, s, p = geom
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c, h, w))
    col = rng.standard_normal(slow_im2col(x, fh, fw, s, p).shape)
    np.testing.assert_allclose(col2im(col, x.shape, fh, fw, s, p),
                               slow_col2im(col, x.shape, fh, fw, s, p), rtol=1e-12, atol=1e-12)
    # col2im(im2col(x)) multiplies each pixel by the number of windows covering it.
    ones = np.ones_like(x)
    cover = slow_col2im(slow_im2col(ones, fh, fw, s, p), x.shape, fh, fw, s, p)
    np.testing.assert_allclose(col2im(im2col(x, fh, fw, s, p), x.shape, fh, fw, s, p), x * cover,
                               rtol=1e-12, atol=1e-12)


def _check_layer_gradients(layer, x, rng):
    out = layer.forward(x)
    r = rng.standard_normal(out.shape)  # loss = sum(out * r), so dL/dout = r
    dx = layer.backward(r.copy())

    def loss():
        return float(np.sum(layer.forward(x) * r))

    assert rel_err(dx, numerical_grad(loss, x)) <= 1e-6
    for key, value in layer.params.items():
        layer.forward(x)
        layer.backward(r.copy())
        analytic = layer.grads[key].copy()
        assert analytic.shape == value.shape
        assert rel_err(analytic, numerical_grad(loss, value)) <= 1e-6, key


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_convolution_backward_matches_numerical_gradient(geom):
    n, c, h, w, fh, fw, s, p = geom
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c, h, w))
    layer = Convolution(rng.standard_normal((3, c, fh, fw)), rng.standard_normal(3), stride=s, pad=p)
    _check_layer_gradients(layer, x, rng)
    assert layer.W is layer.params["W"] and layer.dW is layer.grads["W"] and layer.db is layer.grads["b"]


def test_convolution_forward_matches_direct_sum():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 6))
    W = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    out = Convolution(W, b, stride=1, pad=1).forward(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 4, 6, 6))
    for i in range(6):
        for j in range(6):
            expected[:, :, i, j] = np.einsum("nchw,fchw->nf", xp[:, :, i:i + 3, j:j + 3], W) + b
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_convolution_float32_stays_float32_and_first_layer_skips_dx():
    rng = np.random.default_rng(5)
    layer = Convolution(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), np.zeros(4, np.float32), pad=1)
    out = layer.forward(rng.standard_normal((2, 1, 8, 8)).astype(np.float32))
    assert out.dtype == np.float32 and out.shape == (2, 4, 8, 8)
    layer.compute_input_grad = False
    assert layer.backward(np.ones_like(out)) is None
    assert layer.dW.dtype == np.float32 and layer.dW.shape == (4, 1, 3, 3)


POOL_GEOMETRIES = [  # (N, C, H, W, PH, PW, stride, pad)
    (2, 3, 4, 4, 2, 2, 2, 0),   # tiled fast path
    (1, 2, 6, 6, 3, 3, 3, 0),   # tiled fast path, 3x3
    (2, 2, 5, 5, 3, 3, 1, 0),   # overlapping windows
    (1, 3, 6, 6, 2, 2, 2, 1),   # padded
    (2, 1, 7, 5, 3, 1, 2, 0),
    (2, 2, 5, 6, 3, 2, 1, 1),   # non-square window, padded, overlapping
]


@pytest.mark.parametrize("layer_cls", [Pooling, AvgPooling])
@pytest.mark.parametrize("geom", POOL_GEOMETRIES)
def test_pooling_forward_and_backward(layer_cls, geom):
    n, c, h, w, ph, pw, s, p = geom
    rng = np.random.default_rng(6)
    x = rng.standard_normal((n, c, h, w))
    layer = layer_cls(ph, pw, stride=s, pad=p)
    out = layer.forward(x)
    # The definition over each window: the maximum (padding never wins) or the
    # mean (zero padding counts).
    reduce, fill = (np.max, -np.inf) if layer_cls is Pooling else (np.mean, 0.0)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    rows = slow_im2col(xp.reshape(n * c, 1, h + 2 * p, w + 2 * p), ph, pw, s, 0)
    oh, ow = out.shape[2:]
    np.testing.assert_allclose(out, reduce(rows, axis=1).reshape(n, c, oh, ow), rtol=1e-12, atol=1e-12)
    _check_layer_gradients(layer, x, rng)


def test_max_pooling_sends_gradient_to_first_maximum_only():
    """Ties go to the first maximum in row-major order, like the book's argmax, on both paths."""
    layer = Pooling(2, 2, stride=2)  # tiled path
    layer.forward(np.zeros((1, 1, 2, 2)))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 1))), [[[[1.0, 0.0], [0.0, 0.0]]]])
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 2] = x[0, 0, 2, 1] = -1.0
    layer = Pooling(2, 2, stride=1)  # window path: each window's first 0 is its top-left pixel
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 2, 2))),
                                  [[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]])


def test_layers_accept_channels_last_views_from_each_other():
    """Convolution hands on an NCHW view of channels-last memory; a chain must still be right."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 2, 6, 6))
    c1 = Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), pad=1)
    pool = Pooling(2, 2, stride=2)
    c2 = Convolution(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2), pad=1)
    flat = Flatten()
    chain = [c1, pool, c2, flat]

    def forward():
        h = x
        for layer in chain:
            h = layer.forward(h)
        return h

    out = forward()
    assert out.shape == (2, 2 * 3 * 3)
    r = rng.standard_normal(out.shape)
    d = r
    for layer in reversed(chain):
        d = layer.backward(d)
    assert rel_err(d, numerical_grad(lambda: float(np.sum(forward() * r)), x)) <= 1e-6
    # Flatten keeps the book's C-major order.
    h = pool.forward(c1.forward(x))
    np.testing.assert_array_equal(Flatten().forward(h), np.ascontiguousarray(h).reshape(2, -1))


def test_shape_errors_name_the_sizes():
    rng = np.random.default_rng(9)
    conv = Convolution(rng.standard_normal((2, 3, 5, 5)), np.zeros(2))
    with pytest.raises(ShapeError, match="3 channels|expect 3"):
        conv.forward(rng.standard_normal((1, 1, 8, 8)))
    with pytest.raises(ShapeError, match="larger than the padded input height 4"):
        conv.forward(rng.standard_normal((1, 3, 4, 8)))
    # A stride that does not tile the input evenly leaves the last row and column out (floor rule).
    assert Convolution(rng.standard_normal((2, 3, 2, 2)), np.zeros(2), stride=2).forward(
        rng.standard_normal((1, 3, 5, 5))).shape == (1, 2, 2, 2)
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        conv.forward(rng.standard_normal((3, 8, 8)))
    assert Pooling(2, 2, stride=2).forward(rng.standard_normal((1, 1, 7, 7))).shape == (1, 1, 3, 3)
    with pytest.raises(ShapeError, match="b must have shape"):
        Convolution(rng.standard_normal((2, 3, 5, 5)), np.zeros(3))
    with pytest.raises(ShapeError, match="stride must be a positive integer"):
        Pooling(2, 2, stride=0)
    with pytest.raises(ShapeError, match="col must have shape"):
        col2im(np.zeros((5, 5)), (1, 1, 4, 4), 2, 2, 2)
    conv.forward(rng.standard_normal((1, 3, 8, 8)))
    with pytest.raises(ShapeError, match="dout must have"):
        conv.backward(np.zeros((1, 2, 3, 3)))


def test_conv_output_size():
    assert conv_output_size(28, 3, 1, 1) == 28
    assert conv_output_size(14, 3, 1, 2) == 16
    assert conv_output_size(28, 5) == 24
    # The book's and PyTorch's floor rule: 1 + (H + 2*pad - FH) // stride.
    assert conv_output_size(7, 2, 2) == 3
    assert conv_output_size(28, 3, 2, 1) == 14
    assert conv_output_size(5, 3, 3) == 1
    with pytest.raises(ShapeError, match="larger than the padded input"):
        conv_output_size(2, 3, 1)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
       fh=st.integers(1, 4), fw=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2))
def test_shape_logic_for_any_geometry(n, c, h, w, fh, fw, stride, pad):
    """Either the geometry fits and im2col/col2im match their definitions, or ShapeError says why."""
    x = np.random.default_rng(n * 100 + h * 10 + w).standard_normal((n, c, h, w))
    fits = all(f <= s + 2 * pad for s, f in ((h, fh), (w, fw)))
    if not fits:
        with pytest.raises(ShapeError, match="larger than the padded input"):
            im2col(x, fh, fw, stride, pad)
        return
    col = im2col(x, fh, fw, stride, pad)
    np.testing.assert_array_equal(col, slow_im2col(x, fh, fw, stride, pad))
    np.testing.assert_allclose(col2im(col, x.shape, fh, fw, stride, pad),
                               slow_col2im(col, x.shape, fh, fw, stride, pad), atol=1e-12)
    out = Convolution(np.ones((2, c, fh, fw)), np.zeros(2), stride=stride, pad=pad).forward(x)
    assert out.shape == (n, 2, (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1)


def _layers_for_reuse_checks(rng):
    return [
        Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), pad=1),
        Convolution(rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(3), stride=2),
        Pooling(2, 2, stride=2),           # tiled path
        Pooling(3, 3, stride=1, pad=1),    # window path
        AvgPooling(2, 2, stride=2),
        AvgPooling(3, 3, stride=1, pad=1),
    ]


@pytest.mark.parametrize("train_flg", [True, False])
def test_returned_arrays_are_not_overwritten_by_later_calls(train_flg):
    """Layers reuse scratch memory; nothing they hand out may change afterwards."""
    rng = np.random.default_rng(10)
    for layer in _layers_for_reuse_checks(rng):
        x1, x2 = rng.standard_normal((2, 2, 2, 6, 6))
        out1 = layer.forward(x1, train_flg)
        kept_out1 = out1.copy()
        dx1 = layer.backward(np.ones_like(out1))
        kept_dx1 = dx1.copy()
        out2 = layer.forward(x2, train_flg)
        dx2 = layer.backward(rng.standard_normal(out2.shape))
        np.testing.assert_array_equal(out1, kept_out1, err_msg=repr(layer))
        np.testing.assert_array_equal(dx1, kept_dx1, err_msg=repr(layer))
        assert not np.shares_memory(out1, out2) and not np.shares_memory(dx1, dx2)
        assert not np.shares_memory(out2, x2) and not np.shares_memory(dx2, x2)


def test_changing_the_output_or_input_in_place_does_not_change_backward():
    rng = np.random.default_rng(11)
    for layer in _layers_for_reuse_checks(rng):
        x = rng.standard_normal((2, 2, 6, 6))
        dout = rng.standard_normal(layer.forward(x).shape)
        expected = layer.backward(dout).copy()
        x_own = x.copy()
        out = layer.forward(x_own)
        out += 100.0          # e.g. a caller adding a bias in place
        x_own *= -1.0         # or reusing its input buffer
        np.testing.assert_array_equal(layer.backward(dout), expected, err_msg=repr(layer))


def test_backward_after_an_inference_forward():
    """Saliency maps run forward in inference mode, then backward: it must be exact."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 2, 5, 5))
    for layer in (Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), pad=1),
                  Pooling(3, 3, stride=2, pad=1), Pooling(5, 5, stride=5)):
        out = layer.forward(x, train_flg=False)
        r = rng.standard_normal(out.shape)
        dx = layer.backward(r)
        assert rel_err(dx, numerical_grad(lambda: float(np.sum(layer.forward(x, False) * r)), x)) <= 1e-6
        for key, value in layer.params.items():
            layer.forward(x, train_flg=False)
            layer.backward(r)
            analytic = layer.grads[key].copy()
            numeric = numerical_grad(lambda: float(np.sum(layer.forward(x, False) * r)), value)
            assert rel_err(analytic, numeric) <= 1e-6, key


def test_max_pooling_windows_larger_than_256_pixels():
    """Window positions once lived in a uint8: a maximum at position 288 of a 17x17 window was lost."""
    x = np.zeros((1, 1, 18, 18))
    x[0, 0, 16, 16] = 5.0
    layer = Pooling(17, 17, stride=1)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 5.0))
    dx = layer.backward(np.ones_like(out))
    expected = np.zeros_like(x)
    expected[0, 0, 16, 16] = 4.0  # all four windows hold that pixel
    np.testing.assert_array_equal(dx, expected)


def test_float32_stays_float32_through_every_layer():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    for layer in _layers_for_reuse_checks(np.random.default_rng(14)):
        if layer.params:  # a float32 twin of the float64 convolution
            layer = Convolution(layer.W.astype(np.float32), layer.b.astype(np.float32),
                                stride=layer.stride, pad=layer.pad)
        out = layer.forward(x)
        dx = layer.backward(np.ones_like(out))
        assert out.dtype == dx.dtype == np.float32, repr(layer)
        assert all(g.dtype == np.float32 for g in layer.grads.values())
    assert im2col(x, 3, 3).dtype == np.float32
    assert col2im(np.ones((16, 18), np.float32), x.shape, 3, 3).dtype == np.float32


def test_non_contiguous_inputs_give_the_same_results():
    rng = np.random.default_rng(15)
    base = rng.standard_normal((2, 6, 12, 3))
    x = base.transpose(0, 3, 1, 2)[:, :, :, ::2]  # (2, 3, 6, 6), neither C- nor F-ordered
    assert not x.flags.c_contiguous and not x.flags.f_contiguous
    for layer in (Convolution(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2), stride=1, pad=1),
                  Pooling(2, 2, stride=2), Pooling(3, 3, stride=3), AvgPooling(3, 3, stride=1)):
        out = layer.forward(x)
        # Same values up to summation order (the memory order may change it).
        np.testing.assert_allclose(out, layer.forward(np.ascontiguousarray(x)), rtol=1e-12, atol=1e-12)
        dout = rng.standard_normal(out.shape)
        dx = layer.backward(dout)
        layer.forward(x)
        np.testing.assert_allclose(dx, layer.backward(np.asfortranarray(dout)), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(im2col(x, 3, 3, 1, 1), slow_im2col(x, 3, 3, 1, 1))


def test_im2col_returns_a_new_writable_array():
    x = np.random.default_rng(16).standard_normal((1, 1, 3, 3))
    col = im2col(x, 1, 1)
    assert col.flags.writeable and not np.shares_memory(col, x)
    col[:] = 0
    assert np.count_nonzero(x) == 9


def test_more_shape_errors_name_the_sizes():
    assert im2col(np.zeros((1, 1, 6, 5)), 2, 2, stride=2, pad=1).shape == (4 * 3, 4)
    with pytest.raises(ShapeError, match=r"window width 4 is larger than the padded input width 3"):
        AvgPooling(1, 4).forward(np.zeros((1, 1, 5, 3)))
    with pytest.raises(ShapeError, match=r"pad 2 must be smaller than the window 2x2"):
        Pooling(2, 2, stride=2, pad=2)
    for args in [(28, 3, 0), (28, 3, 1, -1), (28, 0), (0, 3)]:
        with pytest.raises(ShapeError, match="must be a (positive|non-negative) integer"):
            conv_output_size(*args)
    with pytest.raises(ShapeError, match=r"x has 1 channels \(shape \(1, 1, 8, 8\)\) but the filters W \(2, 3, 5, 5\)"):
        Convolution(np.zeros((2, 3, 5, 5)), np.zeros(2)).forward(np.zeros((1, 1, 8, 8)))


@st.composite
def fitting_geometry(draw, max_kernel=3, max_pad=3, pad_below_kernel=False):
    """(h, w, kh, kw, stride, pad) where the window tiles the padded input exactly.

    Built from the output size backwards, so every draw fits (filtering random
    sizes would throw most of them away and trip Hypothesis' health check).
    """
    stride = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    oh, ow = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padded_h, padded_w = (oh - 1) * stride + kh, (ow - 1) * stride + kw
    pad_limit = min(max_pad, (padded_h - 1) // 2, (padded_w - 1) // 2)  # keeps h, w >= 1
    if pad_below_kernel:
        pad_limit = min(pad_limit, min(kh, kw) - 1)
    pad = draw(st.integers(0, pad_limit))
    return padded_h - 2 * pad, padded_w - 2 * pad, kh, kw, stride, pad


# Some geometries place every window on padding (e.g. a 1x1 input, pad 1, stride 2): the
# output is then b alone and numerical_gradient rightly warns that W changes nothing.
@pytest.mark.filterwarnings("ignore::nnscratch.errors.GradientWarning")
@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 2), geometry=fitting_geometry(), seed=st.integers(0, 99))
def test_convolution_gradients_for_any_geometry_that_fits(c, geometry, seed):
    """Both dx paths (flipped filters at stride 1 with pad < kernel, col2im otherwise), any shape."""
    h, w, fh, fw, stride, pad = geometry
    rng = np.random.default_rng(seed)
    layer = Convolution(rng.standard_normal((2, c, fh, fw)), rng.standard_normal(2), stride=stride, pad=pad)
    _check_layer_gradients(layer, rng.standard_normal((2, c, h, w)), rng)


@settings(max_examples=25, deadline=None)
@given(layer_cls=st.sampled_from([Pooling, AvgPooling]), c=st.integers(1, 2),
       # pad < window: max pooling refuses windows made only of padding
       geometry=fitting_geometry(max_pad=2, pad_below_kernel=True), seed=st.integers(0, 99))
def test_pooling_gradients_for_any_geometry_that_fits(layer_cls, c, geometry, seed):
    h, w, ph, pw, stride, pad = geometry
    rng = np.random.default_rng(seed)
    _check_layer_gradients(layer_cls(ph, pw, stride=stride, pad=pad), rng.standard_normal((2, c, h, w)), rng)


# --------------------------------------------------------------------------
# the floor rule: strides that do not tile the padded input evenly


@st.composite
def any_geometry(draw, max_kernel=3, max_pad=2, pad_below_kernel=False):
    """(h, w, kh, kw, stride, pad) where the window fits at least once, tiling evenly or not.

    The padded size is ``(out - 1) * stride + kernel + rest`` with a remainder
    ``rest`` in ``0..stride-1`` that no window covers.
    """
    stride = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    oh, ow = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rest_h, rest_w = draw(st.integers(0, stride - 1)), draw(st.integers(0, stride - 1))
    padded_h, padded_w = (oh - 1) * stride + kh + rest_h, (ow - 1) * stride + kw + rest_w
    pad_limit = min(max_pad, (padded_h - 1) // 2, (padded_w - 1) // 2)
    if pad_below_kernel:
        pad_limit = min(pad_limit, min(kh, kw) - 1)
    pad = draw(st.integers(0, pad_limit))
    return padded_h - 2 * pad, padded_w - 2 * pad, kh, kw, stride, pad


def _check_against_central_differences(layer, x, rng):
    """dx and every parameter gradient of sum(out * r) against float64 central differences."""
    out = layer.forward(x)
    r = rng.standard_normal(out.shape)
    dx = layer.backward(r.copy())

    def loss():
        return float(np.sum(layer.forward(x) * r))

    assert rel_error(dx, central_difference(loss, x)) <= 1e-6
    for key, value in layer.params.items():
        layer.forward(x)
        layer.backward(r.copy())
        analytic = layer.grads[key].copy()
        assert rel_error(analytic, central_difference(loss, value)) <= 1e-6, key
    return out, dx


@pytest.mark.filterwarnings("ignore::nnscratch.errors.GradientWarning")
@settings(max_examples=30, deadline=None)
@given(c=st.integers(1, 2), geometry=any_geometry(), seed=st.integers(0, 99))
def test_convolution_floor_rule_for_strides_that_do_not_tile(c, geometry, seed):
    h, w, fh, fw, stride, pad = geometry
    rng = np.random.default_rng(seed)
    layer = Convolution(rng.standard_normal((2, c, fh, fw)), rng.standard_normal(2), stride=stride, pad=pad)
    x = rng.standard_normal((2, c, h, w))
    out, dx = _check_against_central_differences(layer, x, rng)
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    assert out.shape == (2, 2, oh, ow)
    # Input rows and columns that no window reaches get no gradient.
    np.testing.assert_array_equal(dx[:, :, (oh - 1) * stride + fh - pad:, :], 0)
    np.testing.assert_array_equal(dx[:, :, :, (ow - 1) * stride + fw - pad:], 0)


@settings(max_examples=30, deadline=None)
@given(layer_cls=st.sampled_from([Pooling, AvgPooling]), c=st.integers(1, 2),
       geometry=any_geometry(max_pad=2, pad_below_kernel=True), seed=st.integers(0, 99))
def test_pooling_floor_rule_for_strides_that_do_not_tile(layer_cls, c, geometry, seed):
    h, w, ph, pw, stride, pad = geometry
    rng = np.random.default_rng(seed)
    out, _ = _check_against_central_differences(layer_cls(ph, pw, stride=stride, pad=pad),
                                                rng.standard_normal((2, c, h, w)), rng)
    assert out.shape == (2, c, (h + 2 * pad - ph) // stride + 1, (w + 2 * pad - pw) // stride + 1)


@pytest.mark.parametrize("h", [7, 9])
def test_tiled_max_pooling_ignores_the_last_odd_row_and_column(h):
    rng = np.random.default_rng(h)
    x = rng.standard_normal((2, 3, h, h))
    layer = Pooling(2, 2, stride=2)
    out = layer.forward(x)
    k = h // 2
    expected = x[:, :, :2 * k, :2 * k].reshape(2, 3, k, 2, k, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(out, expected)
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx[:, :, -1, :], 0)
    np.testing.assert_array_equal(dx[:, :, :, -1], 0)
    assert dx.sum() == out.size


def test_strided_downsampling_convolution_matches_the_direct_sum():
    """The usual 3x3 / stride 2 / pad 1 step: 28x28 -> 14x14, as PyTorch and the book compute it."""
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 2, 28, 28))
    W = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    out = Convolution(W, b, stride=2, pad=1).forward(x)
    assert out.shape == (2, 3, 14, 14)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.empty((2, 3, 14, 14))
    for i in range(14):
        for j in range(14):
            expected[:, :, i, j] = np.einsum("nchw,fchw->nf", xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3], W) + b
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# the fast path against the book's algorithm


def _both_paths(W, b, stride, pad, x, dout, compute_input_grad=True):
    """(out, dx, dW, db) of the book's path and of the fast path."""
    results = []
    for fast in (False, True):
        layer = Convolution(W.copy(), b.copy(), stride=stride, pad=pad)
        layer.fast = fast
        layer.compute_input_grad = compute_input_grad
        out = np.array(layer.forward(x))
        dx = layer.backward(dout.copy())
        results.append((out, dx, layer.dW.copy(), layer.db.copy()))
    return results


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), c=st.integers(1, 3), fn=st.integers(1, 3), geometry=any_geometry(max_pad=3),
       seed=st.integers(0, 99))
def test_fast_convolution_agrees_with_the_book_forward_and_backward(n, c, fn, geometry, seed):
    h, w, fh, fw, stride, pad = geometry
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((fn, c, fh, fw)), rng.standard_normal(fn)
    x = rng.standard_normal((n, c, h, w))
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    dout = rng.standard_normal((n, fn, oh, ow))
    book, fast = _both_paths(W, b, stride, pad, x, dout)
    for a, f in zip(book, fast):
        assert a.shape == f.shape
        np.testing.assert_allclose(f, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fast_convolution_chunks_and_threads_agree_with_the_book(threads, monkeypatch):
    """Many chunks (tiny chunk size), spread over threads: the same values as the book's path."""
    import nnscratch.layers.conv as conv

    monkeypatch.setattr(conv, "_CHUNK_BYTES", 3000)
    saved = conv.get_num_threads()
    conv.set_num_threads(threads)
    try:
        rng = np.random.default_rng(threads)
        W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
        x = rng.standard_normal((13, 3, 8, 8))
        dout = rng.standard_normal((13, 4, 8, 8))
        book, fast = _both_paths(W, b, 1, 1, x, dout)
        for a, f in zip(book, fast):
            np.testing.assert_allclose(f, a, rtol=1e-12, atol=1e-12)
        book, fast = _both_paths(W, b, 2, 1, x, rng.standard_normal((13, 4, 4, 4)), compute_input_grad=False)
        assert book[1] is None and fast[1] is None
        for a, f in zip(book[2:], fast[2:]):
            np.testing.assert_allclose(f, a, rtol=1e-12, atol=1e-12)
    finally:
        conv.set_num_threads(saved)


def test_set_num_threads_checks_its_argument():
    from nnscratch.errors import ConfigError
    from nnscratch.layers.conv import get_num_threads, set_num_threads

    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="number of threads must be an integer"):
            set_num_threads(bad)
    assert get_num_threads() >= 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), geometry=any_geometry(max_kernel=4, pad_below_kernel=True),
       ties=st.booleans(), seed=st.integers(0, 99))
def test_fast_max_pooling_agrees_with_the_book_forward_and_backward(n, c, geometry, ties, seed):
    h, w, ph, pw, stride, pad = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    if ties:  # few distinct values: both must send each window's gradient to its first maximum
        x = np.round(x)
    oh, ow = (h + 2 * pad - ph) // stride + 1, (w + 2 * pad - pw) // stride + 1
    dout = rng.standard_normal((n, c, oh, ow))
    results = []
    for fast in (False, True):
        layer = Pooling(ph, pw, stride=stride, pad=pad)
        layer.fast = fast
        results.append((np.array(layer.forward(x)), layer.backward(dout.copy())))
    (out_book, dx_book), (out_fast, dx_fast) = results
    np.testing.assert_array_equal(out_fast, out_book)
    np.testing.assert_array_equal(dx_fast, dx_book)
    assert out_fast.shape == (n, c, oh, ow) and dx_fast.shape == x.shape


@pytest.mark.parametrize("size,window", [(8, 2), (7, 2), (9, 3), (6, 3)])
def test_tiled_max_pooling_agrees_with_the_book(size, window):
    rng = np.random.default_rng(size)
    x = np.round(rng.standard_normal((2, 3, size, size)))  # ties in most windows
    results = []
    for fast in (False, True):
        layer = Pooling(window, window, stride=window)
        layer.fast = fast
        out = np.array(layer.forward(x))
        results.append((out, layer.backward(np.arange(out.size, dtype=float).reshape(out.shape))))
    assert layer._tiled
    for book, fast in zip(*results):
        np.testing.assert_array_equal(fast, book)
