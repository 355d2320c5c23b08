"""SimpleConvNet and DeepConvNet: backprop against float64 central differences on
tiny inputs, the book's shapes and names, the Model contract and input checks."""

import json

import numpy as np
import pytest

from nnscratch.calculus import numerical_gradient
from nnscratch.errors import ConfigError, ShapeError
from nnscratch.models.conv import DeepConvNet, SimpleConvNet


def numerical_gradients(loss, params, h=1e-5):
    """Central differences of loss() for every array of params (each perturbed in place)."""
    return {key: numerical_gradient(lambda _: loss(), p, h) for key, p in params.items()}


def assert_gradients_match(analytic, numeric):
    assert set(analytic) == set(numeric)
    for key in numeric:
        a, n = analytic[key], numeric[key]
        scale = max(np.max(np.abs(a)), np.max(np.abs(n)), 1e-8)
        assert np.max(np.abs(a - n)) / scale <= 1e-6, key


def tiny(n_filters):
    return {"filter_num": n_filters, "filter_size": 3, "pad": 1, "stride": 1}


def test_simple_convnet_gradient_matches_numerical():
    rng = np.random.default_rng(0)
    net = SimpleConvNet(input_dim=(2, 8, 8), conv_param={"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1},
                        hidden_size=6, output_size=4, weight_init_std=0.5, seed=1, dtype="float64")
    x = rng.standard_normal((3, 2, 8, 8))
    t = np.array([0, 3, 1])
    analytic = net.gradient(x, t)
    numeric = numerical_gradients(lambda: net.loss(x, t, train_flg=True), net.params)
    assert_gradients_match(analytic, numeric)


def test_floor_rule_models_with_sizes_that_do_not_tile():
    """A 3x3 / stride 2 / pad 1 convolution on 9x9 gives 5x5, pooling 2x2 then 2x2 (PyTorch's sizes)."""
    rng = np.random.default_rng(5)
    net = SimpleConvNet(input_dim=(1, 9, 9), conv_param={"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 2},
                        hidden_size=5, output_size=3, weight_init_std=0.5, seed=2, dtype="float64")
    assert net.params["W2"].shape == (2 * 2 * 2, 5)
    x = rng.standard_normal((2, 1, 9, 9))
    t = np.array([2, 0])
    assert_gradients_match(net.gradient(x, t),
                           numerical_gradients(lambda: net.loss(x, t, train_flg=True), net.params))
    # The book's DeepConvNet on 10x10 images: 10 -> 5 -> (pad 2) 7 -> 3 -> 1 after the three poolings.
    deep = DeepConvNet(input_dim=(1, 10, 10), seed=0)
    assert deep.params["W7"].shape == (64 * 1 * 1, 50)
    assert deep.predict(rng.random((3, 1, 10, 10), dtype=np.float32)).shape == (3, 10)


def test_deep_convnet_gradient_matches_numerical_with_dropout():
    rng = np.random.default_rng(2)
    net = DeepConvNet(input_dim=(1, 12, 12),
                      conv_param_1=tiny(2), conv_param_2=tiny(2), conv_param_3=tiny(3),
                      conv_param_4={"filter_num": 3, "filter_size": 3, "pad": 2, "stride": 1},
                      conv_param_5=tiny(4), conv_param_6=tiny(4),
                      hidden_size=6, output_size=3, dropout_ratio=0.3, seed=3, dtype="float64")
    x = rng.standard_normal((2, 1, 12, 12))
    t = np.array([[0, 0, 1], [1, 0, 0]], dtype=float)  # one-hot works as well as labels
    state = net.get_rng_state()  # the same dropout masks for every evaluation

    def loss():
        net.set_rng_state(state)
        return net.loss(x, t, train_flg=True)

    net.set_rng_state(state)
    analytic = net.gradient(x, t)
    numeric = numerical_gradients(loss, net.params)
    assert_gradients_match(analytic, numeric)
    # 12x12 -> pool 6 -> pad 2 gives 8 -> pool 4 -> pool 2: W7 has 4*2*2 rows.
    assert net.params["W7"].shape == (16, 6)


def test_input_gradient_matches_numerical():
    """dL/d(images) (saliency): forward in inference mode, then backward through every layer."""
    rng = np.random.default_rng(3)
    net = SimpleConvNet(input_dim=(1, 8, 8), conv_param={"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1},
                        hidden_size=5, output_size=3, weight_init_std=0.5, seed=2, dtype="float64")
    x = rng.standard_normal((2, 1, 8, 8))
    t = np.array([2, 0])
    assert net.layers["Conv1"].compute_input_grad is False  # training never needs it
    numeric = numerical_gradient(lambda _: net.loss(x, t, train_flg=False), x, 1e-5)
    assert_gradients_match({"x": net.input_gradient(x, t)}, {"x": numeric})
    assert net.layers["Conv1"].compute_input_grad is False  # switched back off
    assert net.input_gradient(x[0], t[0]).shape == (1, 8, 8)


def test_deep_convnet_has_the_book_architecture():
    net = DeepConvNet(seed=0)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {
        "W1": (16, 1, 3, 3), "b1": (16,), "W2": (16, 16, 3, 3), "b2": (16,),
        "W3": (32, 16, 3, 3), "b3": (32,), "W4": (32, 32, 3, 3), "b4": (32,),
        "W5": (64, 32, 3, 3), "b5": (64,), "W6": (64, 64, 3, 3), "b6": (64,),
        "W7": (64 * 4 * 4, 50), "b7": (50,), "W8": (50, 10), "b8": (10,),
    }
    assert all(v.dtype == np.float32 for v in net.params.values())
    # He initialisation: std sqrt(2 / fan_in)
    assert net.params["W6"].std() == pytest.approx(np.sqrt(2 / (64 * 9)), rel=0.05)
    assert net.params["W7"].std() == pytest.approx(np.sqrt(2 / 1024), rel=0.05)
    assert list(net.layers) == [
        "Conv1", "Relu1", "Conv2", "Pool1", "Relu2", "Conv3", "Relu3", "Conv4", "Pool2", "Relu4",
        "Conv5", "Relu5", "Conv6", "Pool3", "Relu6", "Affine1", "Relu7", "Dropout1", "Affine2", "Dropout2"]
    assert net.layers["Conv4"].pad == 2
    # The layers compute with the very arrays in params.
    assert net.layers["Conv1"].W is net.params["W1"] and net.layers["Affine2"].W is net.params["W8"]


def _book_order(net):
    """The layers in the book's order: each ReLU before the pooling that follows it."""
    names = list(net.layers)
    for i in [i for i, name in enumerate(names) if name.startswith("Pool")]:
        names[i], names[i + 1] = names[i + 1], names[i]  # Pool, Relu -> Relu, Pool
    assert names.index("Relu1") < names.index("Pool1")
    return {name: net.layers[name] for name in names}


@pytest.mark.parametrize("make", [
    lambda: SimpleConvNet(input_dim=(1, 10, 10), conv_param={"filter_num": 4, "filter_size": 3, "pad": 0,
                                                             "stride": 1}, hidden_size=7, seed=1, dtype="float64"),
    lambda: DeepConvNet(input_dim=(1, 12, 12), conv_param_1=tiny(2), conv_param_2=tiny(3), conv_param_3=tiny(3),
                        conv_param_4={"filter_num": 3, "filter_size": 3, "pad": 2, "stride": 1},
                        conv_param_5=tiny(4), conv_param_6=tiny(4), hidden_size=6, seed=3, dtype="float64"),
])
def test_relu_after_max_pooling_gives_the_book_order_values_and_gradients(make):
    """Max pooling and ReLU commute: pooling first gives bit-identical scores, loss and gradients."""
    rng = np.random.default_rng(8)
    net = make()
    x = rng.standard_normal((4,) + net.input_shape)
    x[0] = -np.abs(x[0])  # an image whose first maps are all negative: every window ties at 0 in the book's order
    t = np.array([1, 0, 3, 2])
    state = net.get_rng_state()
    ours = net.gradient(x, t), net.predict(x)
    net.layers = _book_order(net)
    net.set_rng_state(state)
    book = net.gradient(x, t), net.predict(x)
    for key in ours[0]:
        np.testing.assert_array_equal(ours[0][key], book[0][key], err_msg=key)
    np.testing.assert_array_equal(ours[1], book[1])


def test_simple_convnet_has_the_book_architecture():
    net = SimpleConvNet(seed=0)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (30 * 12 * 12, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}
    assert net.params["W2"].std() == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize("cls", [SimpleConvNet, DeepConvNet])
def test_model_contract(cls):
    rng = np.random.default_rng(4)
    net = cls(seed=5)
    x = rng.random((450, 1, 28, 28), dtype=np.float32)  # > one inference chunk
    t = rng.integers(0, 10, 450)
    scores = net.predict(x)
    kept_scores = scores.copy()
    assert scores.shape == (450, 10) and scores.dtype == np.float32
    np.testing.assert_allclose(scores[:7], net.predict(x[:7]), rtol=1e-5, atol=1e-6)
    assert net.predict(x[0]).shape == (10,)
    acc = net.accuracy(x, t, batch_size=128)
    assert acc == np.mean(scores.argmax(axis=1) == t)
    assert net.accuracy(x, np.eye(10, dtype=np.float32)[t]) == acc
    loss, grads = net.loss_and_gradient(x[:20], t[:20])
    assert np.isfinite(loss) and set(grads) == set(net.params)
    assert all(grads[k].shape == net.params[k].shape for k in grads)
    # gradient() hands out copies: a later step does not change them.
    first = net.gradient(x[:20], t[:20])
    kept = {k: v.copy() for k, v in first.items()}
    net.loss_and_gradient(x[20:40], t[20:40])
    assert all(np.array_equal(first[k], kept[k]) for k in first)
    assert not any(np.shares_memory(first[k], net.params[k]) for k in first)
    np.testing.assert_array_equal(scores, kept_scores)  # nothing since has written into them
    # config is JSON-able and rebuilds the same network (same seed, same weights)
    clone = cls(**json.loads(json.dumps(net.config)))
    for k in net.params:
        np.testing.assert_array_equal(clone.params[k], net.params[k])


def test_training_steps_reduce_the_loss():
    rng = np.random.default_rng(6)
    net = SimpleConvNet(input_dim=(1, 12, 12), conv_param={"filter_num": 4, "filter_size": 3, "pad": 0, "stride": 1},
                        hidden_size=10, output_size=2, weight_init_std=0.3, seed=0)
    t = rng.integers(0, 2, 40)
    x = 0.1 * rng.random((40, 1, 12, 12), dtype=np.float32)
    for i, label in enumerate(t):  # a bright bar in the top (0) or bottom (1) half
        x[i, 0, 2 + 6 * label, 2:10] = 1.0
    first = net.loss(x, t)
    for _ in range(30):
        _, grads = net.loss_and_gradient(x, t)
        for k in net.params:
            net.params[k] -= 0.1 * grads[k]
    assert net.loss(x, t) < 0.5 * first


def test_input_validation():
    net = DeepConvNet(seed=0)
    with pytest.raises(ShapeError, match=r"\(N, 1, 28, 28\)"):
        net.predict(np.zeros((2, 784), np.float32))
    with pytest.raises(ShapeError, match="floating-point"):
        net.predict(np.zeros((2, 1, 28, 28), np.uint8))
    with pytest.raises(ShapeError):
        net.accuracy(np.zeros((2, 1, 28, 28), np.float32), np.array([1, 2, 3]))
    with pytest.raises(ConfigError, match="conv_param_2"):
        DeepConvNet(conv_param_2={"filter_num": 16})
    with pytest.raises(ConfigError, match="do not fit input_dim"):
        DeepConvNet(input_dim=(1, 3, 3))  # the third 2x2 pooling meets a 1x1 map
    with pytest.raises(ConfigError, match="dropout_ratio"):
        DeepConvNet(dropout_ratio=1.0)
    with pytest.raises(ConfigError, match="dtype"):
        SimpleConvNet(dtype="int8")
    for bad in ("he", -0.01, 0, float("nan")):
        with pytest.raises(ConfigError, match="weight_init_std"):
            SimpleConvNet(weight_init_std=bad)


def test_save_and_load_round_trip(tmp_path):
    from nnscratch.io import load_model, save_model

    rng = np.random.default_rng(7)
    net = DeepConvNet(seed=8)
    x = rng.random((5, 1, 28, 28), dtype=np.float32)
    save_model(net, tmp_path / "deep.npz")
    loaded = load_model(tmp_path / "deep.npz")
    assert type(loaded) is DeepConvNet
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))


def test_filter_and_misclassified_plots(tmp_path):
    from PIL import Image

    from nnscratch.plots.conv import plot_filters, plot_filters_before_after, plot_misclassified

    rng = np.random.default_rng(9)
    net = SimpleConvNet(conv_param={"filter_num": 6, "filter_size": 5, "pad": 0, "stride": 1}, seed=0)
    before = net.params["W1"].copy()
    after = before + rng.standard_normal(before.shape).astype(np.float32)
    png = b"\x89PNG\r\n\x1a\n"
    figure = plot_filters(after, tmp_path / "filters.png", title="W1", ncols=4)
    shown = [ax.images[0].get_array() for ax in figure.axes if ax.images]
    assert len(shown) == 6 and len(figure.axes) == 8  # 2 rows of 4, the last two blank
    for k in range(6):
        np.testing.assert_array_equal(shown[k], after[k, 0])
    figure = plot_filters_before_after(before, after, tmp_path / "before_after.png")
    for subfigure, W in zip(figure.subfigs, (before, after)):
        shown = [ax.images[0].get_array() for ax in subfigure.axes if ax.images]
        assert len(shown) == 6
        for k in range(6):
            np.testing.assert_array_equal(shown[k], W[k, 0])
    for name in ("filters.png", "before_after.png"):
        assert (tmp_path / name).read_bytes()[:8] == png
    x = rng.random((30, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 30)
    path, wrong = plot_misclassified(net, x, t, tmp_path / "wrong.png", max_images=4)
    np.testing.assert_array_equal(wrong, np.flatnonzero(net.predict(x).argmax(axis=1) != t))
    assert path.read_bytes()[:8] == png
    # The captions of wrong predictions are drawn in red.
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert np.any((pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90))
    with pytest.raises(ShapeError):
        plot_filters_before_after(before, after[:3], tmp_path / "bad.png")
    with pytest.raises(ConfigError, match="channel"):
        plot_filters(after, channel=1)
    with pytest.raises(ConfigError, match="ncols"):
        plot_filters_before_after(before, after, ncols=0)
    with pytest.raises(ConfigError, match="max_images"):
        plot_misclassified(net, x, t, tmp_path / "none.png", max_images=0)
    with pytest.raises(ConfigError, match="nothing to show"):
        plot_misclassified(net, x[:1], net.predict(x[:1]).argmax(axis=1), tmp_path / "none.png")


def test_fast_layers_and_the_books_give_the_same_network_gradients():
    """A whole DeepConvNet (float64) with the book's convolution and pooling against the fast paths."""
    from nnscratch.layers.conv import Convolution, Pooling

    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 1, 12, 12))
    t = np.array([2, 0, 1])
    results = []
    for fast in (True, False):
        net = DeepConvNet(input_dim=(1, 12, 12), conv_param_1=tiny(2), conv_param_2=tiny(3), conv_param_3=tiny(3),
                          conv_param_4={"filter_num": 3, "filter_size": 3, "pad": 2, "stride": 1},
                          conv_param_5=tiny(4), conv_param_6=tiny(4), hidden_size=6, output_size=3,
                          seed=4, dtype="float64")
        for layer in net.layers.values():
            if isinstance(layer, (Convolution, Pooling)):
                layer.fast = fast
        results.append((net.gradient(x, t), net.predict(x), net.input_gradient(x, t)))
    (g_fast, y_fast, dx_fast), (g_book, y_book, dx_book) = results
    np.testing.assert_allclose(y_fast, y_book, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx_fast, dx_book, rtol=1e-10, atol=1e-12)
    for key in g_book:
        np.testing.assert_allclose(g_fast[key], g_book[key], rtol=1e-10, atol=1e-12, err_msg=key)
