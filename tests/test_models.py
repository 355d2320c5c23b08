"""Models: backprop against float64 central differences, boundary checks, config round trips."""

import json

import numpy as np
import pytest

from nnscratch.errors import ConfigError, ShapeError
from nnscratch.models import MODELS, SimpleNet, TwoLayerNet, build_model

from central_differences import central_difference
from central_differences import rel_error as reference_rel_error


def rel_error(analytic, numeric):
    # The floor covers parameters with no effect (a bias right before batch norm): backprop
    # gives rounding noise (~1e-17) there, central differences exactly 0.
    return reference_rel_error(analytic, numeric, floor=1e-8)


def assert_backprop_matches(model, x, t, tol=1e-6, before_loss=lambda: None):
    """Every gradient of ``model`` vs central differences of its training-mode loss."""
    before_loss()
    grads = model.gradient(x, t)
    assert set(grads) == set(model.params)

    def loss():
        before_loss()
        return model.loss(x, t, train_flg=True)

    for name, param in model.params.items():
        assert grads[name].shape == param.shape
        assert rel_error(grads[name], central_difference(loss, param)) <= tol, name


def data(rng, n, d, c, onehot=False):
    x = rng.standard_normal((n, d))
    labels = rng.integers(0, c, n)
    return x, (np.eye(c)[labels] if onehot else labels)


# ---------------------------------------------------------------- SimpleNet
BOOK_W = np.array([[0.47355232, 0.9977393, 0.84668094], [0.85557411, 0.03563661, 0.69422093]])


def test_simplenet_book_values():
    net = SimpleNet(BOOK_W)
    x = np.array([0.6, 0.9])
    np.testing.assert_allclose(net.predict(x), [1.05414809, 0.63071653, 1.1328074], rtol=1e-8)
    # The book prints 0.92806853663411326; the +1e-7 inside the log moves it by about 1e-7 / 0.395.
    assert net.loss(x, np.array([0, 0, 1])) == pytest.approx(0.92806853663411326 - 1e-7 / 0.39532, rel=1e-8)


@pytest.mark.parametrize("onehot", [False, True])
def test_simplenet_gradient(onehot):
    rng = np.random.default_rng(0)
    net = SimpleNet(seed=1)
    x, t = data(rng, 5, 2, 3, onehot)
    assert_backprop_matches(net, x, t)


def test_simplenet_seed_and_config():
    assert np.array_equal(SimpleNet(seed=3).W, SimpleNet(seed=3).W)
    net = SimpleNet(seed=3)
    clone = SimpleNet(**json.loads(json.dumps(net.config)))
    np.testing.assert_array_equal(clone.W, net.W)


# -------------------------------------------------------------- TwoLayerNet
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("onehot", [False, True])
def test_two_layer_net_backprop(activation, onehot):
    rng = np.random.default_rng(2)
    net = TwoLayerNet(6, 5, 4, weight_init_std=0.5, activation=activation, seed=0, dtype="float64")
    for b in (net.params["b1"], net.params["b2"]):
        b[...] = rng.standard_normal(b.shape) * 0.1
    x, t = data(rng, 7, 6, 4, onehot)
    assert_backprop_matches(net, x, t)


def test_two_layer_net_shapes_dtype_and_seed():
    net = TwoLayerNet(784, 50, 10, seed=0)
    assert {k: v.shape for k, v in net.params.items()} == {
        "W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    assert all(v.dtype == np.float32 for v in net.params.values())
    assert abs(float(net.params["W1"].std()) - 0.01) < 0.001
    assert not net.params["b1"].any()
    twin = TwoLayerNet(784, 50, 10, seed=0)
    for name in net.params:
        np.testing.assert_array_equal(net.params[name], twin.params[name])
    assert not np.array_equal(TwoLayerNet(784, 50, 10, seed=1).params["W1"], net.params["W1"])
    rng = np.random.default_rng(0)
    x = rng.random((3, 784))  # float64 input is cast to the model's float32
    y = net.predict(x)
    assert y.shape == (3, 10) and y.dtype == np.float32
    assert net.predict(x[0]).shape == (10,)
    loss, grads = net.loss_and_gradient(x, np.array([1, 2, 3]))
    assert isinstance(loss, float) and all(g.dtype == np.float32 for g in grads.values())


def test_two_layer_net_params_drive_the_layers():
    net = TwoLayerNet(4, 3, 2, seed=0, dtype="float64")
    assert net.params["W1"] is net.layers["Affine1"].W
    x = np.ones((1, 4))
    net.params["b2"][...] = [5.0, -5.0]  # in-place, as an optimizer does
    assert net.predict(x)[0, 0] > net.predict(x)[0, 1]


def element_loop_gradient(net, x, t, h=1e-4):
    """The book's method: move each parameter element by ±h and run the whole network."""
    grads = {}
    for name, param in net.params.items():
        grads[name] = central_difference(lambda: net.loss(x, t), param, h)
    return grads


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("onehot", [False, True])
def test_fast_numerical_gradient_equals_element_loop(activation, onehot):
    rng = np.random.default_rng(4)
    net = TwoLayerNet(12, 6, 5, weight_init_std=0.5, activation=activation, seed=1, dtype="float64")
    net.params["b1"][...] = rng.standard_normal(6) * 0.1
    x, t = data(rng, 9, 12, 5, onehot)
    x[:, 3] = 0  # a pixel that is blank in every sample
    fast = net.numerical_gradient(x, t)
    slow = element_loop_gradient(net, x, t)
    for name in net.params:
        assert fast[name].shape == net.params[name].shape
        np.testing.assert_allclose(fast[name], slow[name], rtol=0, atol=1e-8, err_msg=name)
    assert not fast["W1"][3].any()
    # And both agree with backprop.
    backprop = net.gradient(x, t)
    for name in net.params:
        assert rel_error(backprop[name], fast[name]) < 1e-6


def test_numerical_gradient_returns_model_dtype():
    net = TwoLayerNet(8, 4, 3, seed=0)
    g = net.numerical_gradient(np.random.default_rng(0).random((5, 8), dtype=np.float32), np.arange(5) % 3)
    assert all(v.dtype == np.float32 for v in g.values())


# ---------------------------------------------------------- boundary checks
def test_wrong_input_shape_names_expected_shape():
    net = TwoLayerNet(784, 10, 10, seed=0)
    with pytest.raises(ShapeError, match=r"x must have shape \(N, 784\), got shape \(5, 28, 28\).*reshape"):
        net.predict(np.zeros((5, 28, 28), np.float32))
    with pytest.raises(ShapeError, match=r"\(N, 784\), got shape \(5, 100\)"):
        net.loss(np.zeros((5, 100), np.float32), np.zeros(5, int))
    with pytest.raises(ShapeError, match=r"floating-point.*\(N, 784\).*uint8"):
        net.accuracy(np.zeros((5, 784), np.uint8), np.zeros(5, int))
    with pytest.raises(ShapeError, match="at least one sample"):
        net.predict(np.zeros((0, 784), np.float32))


def test_wrong_labels_are_named():
    net = TwoLayerNet(4, 3, 10, seed=0)
    x = np.zeros((5, 4), np.float32)
    with pytest.raises(ShapeError, match=r"t must have shape \(5,\).*got shape \(4,\)"):
        net.loss(x, np.zeros(4, int))
    with pytest.raises(ShapeError, match=r"labels must lie in 0\.\.9, got values from 0 to 10"):
        net.gradient(x, np.array([0, 1, 2, 3, 10]))
    with pytest.raises(ShapeError, match=r"one-hot rows must have shape \(5, 10\), got shape \(5, 9\)"):
        net.accuracy(x, np.zeros((5, 9)))
    with pytest.raises(ShapeError, match="integers"):
        net.loss(x, np.zeros(5))


def test_accuracy_in_batches_with_labels_or_onehot():
    rng = np.random.default_rng(5)
    net = TwoLayerNet(6, 5, 3, weight_init_std=1.0, seed=0, dtype="float64")
    x = rng.standard_normal((23, 6))
    predicted = np.argmax(net.predict(x), axis=1)
    t = predicted.copy()
    t[:7] = (t[:7] + 1) % 3  # 7 wrong out of 23
    for batch_size in (1, 4, 23, 1000):
        assert net.accuracy(x, t, batch_size=batch_size) == pytest.approx(16 / 23)
    assert net.accuracy(x, np.eye(3)[t]) == pytest.approx(16 / 23)
    with pytest.raises(ConfigError, match="batch_size"):
        net.accuracy(x, t, batch_size=0)


def test_constructor_errors():
    with pytest.raises(ConfigError, match="hidden_size must be a positive integer"):
        TwoLayerNet(784, 0, 10)
    with pytest.raises(ConfigError, match="activation"):
        TwoLayerNet(784, 5, 10, activation="swish")
    with pytest.raises(ConfigError, match="dtype"):
        TwoLayerNet(784, 5, 10, dtype="int32")


# ------------------------------------------------------- registry / config
def test_registry_rebuilds_from_json_config():
    net = TwoLayerNet(20, 7, 10, weight_init_std=0.1, seed=42)
    record = json.loads(json.dumps({"class": type(net).__name__, "config": net.config}))
    assert MODELS[record["class"]] is TwoLayerNet
    clone = build_model(record["class"], record["config"])
    for name in net.params:
        np.testing.assert_array_equal(clone.params[name], net.params[name])
    with pytest.raises(ConfigError, match="unknown model class 'Nope'; known: .*TwoLayerNet"):
        build_model("Nope", {})
    with pytest.raises(ConfigError, match="does not fit TwoLayerNet"):
        build_model("TwoLayerNet", {"input_size": 3})


def test_load_params_in_place_and_astype():
    net = TwoLayerNet(5, 4, 3, seed=0)
    other = TwoLayerNet(5, 4, 3, seed=1)
    W1 = net.params["W1"]
    net.load_params(other.params)
    assert net.params["W1"] is W1
    np.testing.assert_array_equal(W1, other.params["W1"])
    with pytest.raises(ShapeError, match=r"params\['W2'\] must have shape \(4, 3\)"):
        net.load_params({**other.params, "W2": np.zeros((3, 3))})
    with pytest.raises(ShapeError, match=r"missing \['b2'\]"):
        net.load_params({k: v for k, v in other.params.items() if k != "b2"})
    wide = net.astype("float64")
    assert wide.params["W1"].dtype == np.float64 and wide.config["dtype"] == "float64"
    np.testing.assert_array_equal(wide.params["W1"], W1.astype(np.float64))


# ------------------------------------------------------------ MultiLayerNet
from nnscratch.models import MultiLayerNet  # noqa: E402


def small_multilayer(**kwargs):
    return MultiLayerNet(5, [6, 4], 3, seed=0, dtype="float64", **kwargs)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_multilayer_backprop_per_activation(activation):
    rng = np.random.default_rng(10)
    net = small_multilayer(activation=activation, weight_init_std="xavier")
    for name, p in net.params.items():
        if name.startswith("b"):
            p[...] = rng.standard_normal(p.shape) * 0.1
    x, t = data(rng, 6, 5, 3)
    assert_backprop_matches(net, x, t)


def test_multilayer_backprop_with_batchnorm_and_weight_decay():
    rng = np.random.default_rng(11)
    net = small_multilayer(use_batchnorm=True, weight_decay_lambda=0.3)
    for name, p in net.params.items():
        if name.startswith(("gamma", "beta")):
            p[...] = rng.uniform(0.5, 1.5, p.shape)
    x, t = data(rng, 8, 5, 3, onehot=True)
    assert_backprop_matches(net, x, t)


def test_multilayer_backprop_with_dropout_fixed_masks():
    rng = np.random.default_rng(12)
    net = small_multilayer(use_dropout=True, dropout_ratio=0.3, activation="tanh")
    state = net.get_rng_state()
    x, t = data(rng, 7, 5, 3)
    assert_backprop_matches(net, x, t, before_loss=lambda: net.set_rng_state(state))


def test_multilayer_names_and_structure():
    net = MultiLayerNet(784, [100, 50, 20], 10, use_batchnorm=True, use_dropout=True, seed=0)
    assert sorted(net.params) == sorted(
        [f"W{i}" for i in range(1, 5)] + [f"b{i}" for i in range(1, 5)]
        + [f"gamma{i}" for i in range(1, 4)] + [f"beta{i}" for i in range(1, 4)])
    assert sorted(net.buffers) == sorted([f"running_mean{i}" for i in range(1, 4)]
                                         + [f"running_var{i}" for i in range(1, 4)])
    assert list(net.layers)[:4] == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1"]
    assert net.params["W3"].shape == (50, 20) and net.params["gamma2"].shape == (50,)
    assert net.buffers["running_mean1"] is net.layers["BatchNorm1"].running_mean
    # He initialisation: std sqrt(2 / fan_in).
    assert abs(float(net.params["W1"].std()) - np.sqrt(2 / 784)) < 0.05 * np.sqrt(2 / 784)
    net_x = MultiLayerNet(784, [100], 10, weight_init_std="xavier", seed=0)
    assert abs(float(net_x.params["W2"].std()) - np.sqrt(1 / 100)) < 0.1 * np.sqrt(1 / 100)
    net_n = MultiLayerNet(784, [100], 10, weight_init_std=0.01, seed=0)
    assert abs(float(net_n.params["W1"].std()) - 0.01) < 0.001


def test_multilayer_weight_decay_in_loss():
    rng = np.random.default_rng(13)
    plain = small_multilayer()
    decayed = small_multilayer(weight_decay_lambda=0.5)
    x, t = data(rng, 4, 5, 3)
    penalty = 0.25 * sum(float(np.sum(plain.params[f"W{i}"] ** 2)) for i in (1, 2, 3))
    assert decayed.loss(x, t) == pytest.approx(plain.loss(x, t) + penalty, rel=1e-12)


def test_multilayer_batchnorm_running_stats_used_in_eval():
    rng = np.random.default_rng(14)
    net = small_multilayer(use_batchnorm=True)
    x, t = data(rng, 10, 5, 3)
    before = net.predict(x)
    net.loss_and_gradient(x, t)  # a training step updates the running stats
    assert not np.allclose(net.buffers["running_mean1"], 0)
    assert not np.allclose(net.predict(x), before)
    np.testing.assert_array_equal(net.predict(x), net.predict(x))  # eval is deterministic


def test_multilayer_dropout_seeded_and_off_at_test_time():
    rng = np.random.default_rng(15)
    x, t = data(rng, 6, 5, 3)
    a = small_multilayer(use_dropout=True)
    b = small_multilayer(use_dropout=True)
    ga, gb = a.gradient(x, t), b.gradient(x, t)
    for name in ga:
        np.testing.assert_array_equal(ga[name], gb[name])
    assert not np.array_equal(a.gradient(x, t)["W1"], ga["W1"])  # new masks each step
    np.testing.assert_array_equal(a.predict(x), small_multilayer().predict(x))


def test_multilayer_config_round_trip():
    net = MultiLayerNet(12, [8, 8], 10, activation="tanh", weight_init_std=0.05, weight_decay_lambda=0.1,
                        use_dropout=True, dropout_ratio=0.2, use_batchnorm=True, seed=7)
    clone = build_model("MultiLayerNet", json.loads(json.dumps(net.config)))
    assert clone.config == net.config
    for name in net.params:
        np.testing.assert_array_equal(clone.params[name], net.params[name])
    assert clone.get_rng_state() == net.get_rng_state()


@pytest.mark.parametrize("kwargs,match", [
    ({"activation": "elu"}, "activation"),
    ({"weight_init_std": "lecun"}, "weight_init_std"),
    ({"weight_init_std": -1.0}, "weight_init_std"),
    ({"weight_decay_lambda": -0.1}, "weight_decay_lambda"),
    ({"use_dropout": True, "dropout_ratio": 1.5}, "dropout_ratio"),
])
def test_multilayer_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        small_multilayer(**kwargs)
    with pytest.raises(ConfigError, match="hidden_size_list"):
        MultiLayerNet(5, [3, 0], 2)


def test_float32_end_to_end_through_every_layer_kind():
    rng = np.random.default_rng(16)
    for activation in ("relu", "sigmoid", "tanh"):
        net = MultiLayerNet(10, [8, 6], 4, activation=activation, weight_decay_lambda=0.01,
                            use_dropout=True, use_batchnorm=True, seed=0)
        x = rng.standard_normal((5, 10)).astype(np.float32)
        t = rng.integers(0, 4, 5)
        assert net.predict(x).dtype == np.float32
        loss, grads = net.loss_and_gradient(x, t)
        assert np.isfinite(loss)
        assert all(g.dtype == np.float32 for g in grads.values())
        assert all(b.dtype == np.float32 for b in net.buffers.values())
    assert net.lastLayer is net.last_layer


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=0, max_size=4))
def test_input_validation_accepts_exactly_batches_of_the_input_shape(shape):
    net = MultiLayerNet(6, [3], 2, seed=0)
    x = np.zeros(shape, dtype=np.float32)
    valid = len(shape) == 2 and shape[1] == 6 and shape[0] >= 1
    single = tuple(shape) == (6,)
    if valid or single:
        assert net.predict(x).shape == ((shape[0], 2) if valid else (2,))
    else:
        with pytest.raises(ShapeError, match=r"\(N, 6\)|at least one sample"):
            net.predict(x)


def test_data_loss_is_the_unregularised_inference_loss_in_batches():
    rng = np.random.default_rng(17)
    x, t = data(rng, 23, 5, 3)
    plain = small_multilayer()
    decayed = small_multilayer(weight_decay_lambda=0.5)
    expected = plain.loss(x, t)
    for batch_size in (1, 5, 23, 100):
        assert decayed.data_loss(x, t, batch_size=batch_size) == pytest.approx(expected, rel=1e-12)
    assert decayed.data_loss(x, np.eye(3)[t]) == pytest.approx(expected, rel=1e-12)
    net = SimpleNet(BOOK_W)
    xs = rng.standard_normal((4, 2))
    assert net.data_loss(xs, np.array([0, 1, 2, 0]), batch_size=3) == pytest.approx(
        net.loss(xs, np.array([0, 1, 2, 0])), rel=1e-12)


def test_input_gradient_matches_central_differences():
    rng = np.random.default_rng(18)
    net = small_multilayer(use_batchnorm=True, activation="tanh")
    x, t = data(rng, 4, 5, 3)
    net.loss_and_gradient(x, t)  # running stats away from their start
    dx = net.input_gradient(x, t)
    assert dx.shape == x.shape
    assert rel_error(dx, central_difference(lambda: net.loss(x, t), x)) <= 1e-6
    assert net.layers["Affine1"].compute_input_grad is False  # training still skips it
    np.testing.assert_allclose(net.input_gradient(x[0], t[0]), net.input_gradient(x[:1], t[:1])[0], rtol=1e-12)


def test_one_sample_as_a_1d_vector_like_the_book():
    # Book ch. 4: net.loss(x, t) with x of shape (784,) and t a label or a one-hot row.
    rng = np.random.default_rng(19)
    for net in (TwoLayerNet(6, 5, 4, weight_init_std=0.5, seed=0, dtype="float64"),
                small_multilayer(use_batchnorm=True)):
        c = net.output_size
        x, labels = data(rng, 1, net.input_shape[0], c)
        batch_loss = net.loss(x, labels)
        batch_grads = net.gradient(x, labels)
        for t in (int(labels[0]), np.eye(c)[labels[0]]):
            assert net.loss(x[0], t) == pytest.approx(batch_loss, rel=1e-12)
            grads = net.gradient(x[0], t)
            for name in net.params:
                np.testing.assert_allclose(grads[name], batch_grads[name], rtol=1e-12, atol=1e-15)
    net = SimpleNet(BOOK_W)
    assert net.loss(np.array([0.6, 0.9]), 2) == net.loss(np.array([0.6, 0.9]), np.array([0, 0, 1]))


def test_fast_numerical_gradient_with_soft_targets():
    rng = np.random.default_rng(20)
    net = TwoLayerNet(7, 5, 3, weight_init_std=0.5, activation="sigmoid", seed=2, dtype="float64")
    x = rng.standard_normal((4, 7))
    t = rng.uniform(0, 1, (4, 3))  # rows summing to anything, as a loss of soft targets allows
    fast = net.numerical_gradient(x, t)
    slow = element_loop_gradient(net, x, t)
    backprop = net.gradient(x, t)
    for name in net.params:
        np.testing.assert_allclose(fast[name], slow[name], rtol=0, atol=1e-8, err_msg=name)
        assert rel_error(backprop[name], slow[name]) < 1e-6, name
