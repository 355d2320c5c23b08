"""NeuralNetClassifier: scikit-learn's own estimator checks, its tools, and MLPClassifier's rules."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnscratch.errors import ConfigError
from nnscratch.sklearn import ConvergenceWarning, NeuralNetClassifier


# scikit-learn's whole suite for a classifier, with no expected failures. (The
# pandas checks skip themselves when pandas is not installed.) Its generator of
# checks becomes a list, as pytest wants parametrize values.
_checks = parametrize_with_checks([
    NeuralNetClassifier(),  # the defaults
    NeuralNetClassifier(hidden_layer_sizes=(16, 16), activation="tanh", solver="momentum",
                        dropout=0.1, batchnorm=True, early_stopping=True, learning_rate_init=0.01, max_iter=100,
                        random_state=0),
    NeuralNetClassifier(model="two-layer", activation="logistic", alpha=0.0, hidden_layer_sizes=(16,),
                        learning_rate_init=0.01, max_iter=100, random_state=0),
]).mark
_checks = pytest.mark.parametrize(_checks.args[0], list(_checks.args[1]), **_checks.kwargs)


@_checks
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600], X[1400:] / 16.0, y[1400:]


def quiet(**params):
    """A small, fast classifier whose ConvergenceWarning does not clutter the output."""
    params = {"hidden_layer_sizes": (32,), "max_iter": 15, "batch_size": 50,
              "learning_rate_init": 0.01, "random_state": 0, **params}
    return NeuralNetClassifier(**params)


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_learns_digits_with_string_labels(digits):
    X, y, X_test, y_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = quiet(max_iter=30).fit(X, names[y])
    assert list(clf.classes_) == sorted(names)
    assert clf.n_features_in_ == 64
    assert clf.predict(X_test).dtype == names.dtype
    assert clf.score(X_test, names[y_test]) > 0.85
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X_test)).all()


def test_any_number_of_features_and_classes():
    X, y = make_blobs(n_samples=300, n_features=7, centers=13, cluster_std=0.5, random_state=1)
    clf = quiet(max_iter=80, hidden_layer_sizes=(20, 20)).fit(X, y + 100)
    assert clf.classes_.tolist() == list(range(100, 113))
    assert clf.model_.output_size == 13 and clf.model_.input_shape == (7,)
    assert clf.score(X, y + 100) > 0.9


def test_one_class_predicts_that_class():
    X = np.random.default_rng(0).normal(size=(5, 3))
    clf = quiet().fit(X, ["only"] * 5)
    assert clf.predict(X).tolist() == ["only"] * 5
    np.testing.assert_array_equal(clf.predict_proba(X), np.ones((5, 1)))


def test_pipeline_grid_search_and_cross_validation(digits):
    X, y, _, _ = digits
    pipe = make_pipeline(MinMaxScaler(), quiet(max_iter=10))
    search = GridSearchCV(pipe, {"neuralnetclassifier__hidden_layer_sizes": [(8,), (48,)]}, cv=3)
    search.fit(X * 16, y)
    assert search.best_params_ == {"neuralnetclassifier__hidden_layer_sizes": (48,)}
    scores = cross_val_score(quiet(max_iter=10), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.7


def test_same_random_state_same_network_and_clone_pickle(digits):
    X, y, X_test, _ = digits
    a = quiet(random_state=7, dropout=0.2).fit(X, y)
    b = clone(a).fit(X, y)
    c = quiet(random_state=8, dropout=0.2).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))
    assert not np.array_equal(a.predict_proba(X_test), c.predict_proba(X_test))
    assert a.loss_curve_ == b.loss_curve_
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict_proba(X_test), a.predict_proba(X_test))
    # A RandomState object works too, and is not consumed by the estimator's params.
    rs = np.random.RandomState(3)
    quiet(random_state=rs).fit(X, y)


def test_float32_and_float64_inputs_train_the_same_network(digits):
    X, y, X_test, _ = digits
    a = quiet().fit(X, y)
    b = quiet().fit(X.astype(np.float32), y)
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))


def test_uint8_pixels_become_float32_once_not_float64_first():
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(20000, 200), dtype=np.uint8)
    y = rng.integers(0, 3, size=20000)
    clf = quiet(hidden_layer_sizes=(8,), max_iter=1)
    clf.fit(X[:50], y[:50])
    tracemalloc.start()
    try:
        clf.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Before: a float64 copy (8 bytes a value) and then the Trainer's float32 one, 13 bytes a value
    # at the peak; now the float32 copy and the batches, about 5.
    assert peak / X.size < 8
    np.testing.assert_array_equal(clf.predict(X[:100]), clf.predict(X[:100].astype(np.float64)))


def test_unshuffled_sgd_epoch_matches_the_book_loop():
    """shuffle=False, solver='sgd': one epoch is the book's loop over batches in order."""
    from nnscratch.runs import RunSettings, build_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = rng.integers(0, 3, size=40)
    clf = NeuralNetClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.1,
                              alpha=0.0, batch_size=10, max_iter=1, shuffle=False,
                              random_state=3).fit(X, y)
    net = build_model(RunSettings(model="mlp", hidden=[8], seed=3), input_shape=(4,), n_classes=3)
    for start in range(0, 40, 10):
        grads = net.gradient(X[start:start + 10], y[start:start + 10])
        for key in net.params:
            net.params[key] -= np.float32(0.1) * grads[key]
    for key in net.params:
        np.testing.assert_allclose(clf.model_.params[key], net.params[key], rtol=1e-5, atol=1e-6)


def test_alpha_is_mlpclassifiers_penalty_per_batch():
    X, y = make_blobs(n_samples=100, n_features=2, random_state=0)
    clf = quiet(alpha=0.01, batch_size=50, max_iter=1).fit(X, y)
    assert clf.model_.config["weight_decay_lambda"] == pytest.approx(0.01 / 50)


@pytest.mark.parametrize("activation, layer", [("tanh", "tanh"), ("logistic", "sigmoid"), ("relu", "relu")])
def test_activation(activation, layer):
    X, y = make_blobs(n_samples=60, n_features=3, random_state=0)
    clf = quiet(activation=activation, max_iter=2).fit(X, y)
    assert clf.model_.config["activation"] == layer


def test_partial_fit_needs_classes_first_then_keeps_learning(digits):
    X, y, X_test, y_test = digits
    clf = quiet()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:300], y[:300], classes=np.arange(10))
    first = clf.score(X_test, y_test)
    for _ in range(10):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 11 and len(clf.loss_curve_) == 11
    assert clf.score(X_test, y_test) > first + 0.1
    with pytest.raises(ValueError, match=r"labels \[11\] that are not in the classes"):
        clf.partial_fit(X[:3], [1, 2, 11])
    with pytest.raises(ValueError, match="X has 63 features"):
        clf.partial_fit(X[:, :63], y)


def test_warm_start_continues_where_fit_ended(digits):
    X, y, _, _ = digits
    clf = quiet(warm_start=True, max_iter=5).fit(X, y)
    after_five = clf.loss_curve_[-1]
    clf.fit(X, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10
    cold = quiet(max_iter=5).fit(X, y)
    assert cold.n_iter_ == 5
    # Continuing from a trained network, the next epoch's loss is near the last one, far
    # below a fresh start's first epoch.
    assert clf.loss_curve_[5] < 0.5 * cold.loss_curve_[0]
    assert clf.loss_curve_[5] < 1.5 * after_five
    clf.set_params(hidden_layer_sizes=(16,))
    with pytest.raises(ConfigError, match="warm_start=False"):
        clf.fit(X, y)


def test_a_warm_started_fit_validates_on_the_same_held_out_samples(digits, monkeypatch):
    import nnscratch.sklearn as module

    X, y, _, _ = digits
    held_out = []

    def recording_split(*arrays, **kwargs):
        parts = module_split(*arrays, **kwargs)
        held_out.append(parts[1].copy())  # the validation images
        return parts

    module_split = module.train_test_split
    monkeypatch.setattr(module, "train_test_split", recording_split)
    clf = quiet(warm_start=True, early_stopping=True, max_iter=2).fit(X, y)
    clf.fit(X, y)
    # Before: the second fit drew a new split, validating on images the first fit had trained on.
    assert len(held_out) == 2
    np.testing.assert_array_equal(held_out[0], held_out[1])


@pytest.mark.parametrize("early_stopping", [False, True])
def test_tol_and_n_iter_no_change_stop_like_mlpclassifier(early_stopping):
    from sklearn.neural_network import MLPClassifier

    X, y = make_blobs(n_samples=100, n_features=2, random_state=0)
    # Epoch 1 improves on nothing (infinity); no later epoch improves by 1e9, so the count
    # of epochs without improvement passes n_iter_no_change=2 at epoch 4.
    params = dict(tol=1e9, n_iter_no_change=2, max_iter=50, early_stopping=early_stopping)
    reference = MLPClassifier(**params).fit(X, y)
    clf = quiet(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.n_iter_ == reference.n_iter_ == 4 and len(clf.loss_curve_) == 4
    if early_stopping:
        assert clf.best_loss_ is None and len(clf.validation_scores_) == 4
    else:
        assert clf.best_loss_ == min(clf.loss_curve_) and clf.validation_scores_ is None


def test_reaching_max_iter_warns():
    X, y = make_blobs(n_samples=100, n_features=2, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    assert any(issubclass(w.category, ConvergenceWarning) and "max_iter" in str(w.message) for w in caught)
    from sklearn.exceptions import ConvergenceWarning as SklearnWarning
    assert issubclass(ConvergenceWarning, SklearnWarning)


def test_early_stopping_keeps_the_best_validation_epoch(digits):
    X, y, _, _ = digits
    clf = quiet(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, max_iter=200,
                learning_rate_init=0.01).fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ < 200
    assert clf.best_validation_score_ == max(scores) and clf.best_loss_ is None
    # It stopped because the last n_iter_no_change + 1 epochs did not beat the best before them by tol.
    best_before = max(scores[:-4])
    assert all(s < best_before + clf.tol for s in scores[-4:])
    # At least 2 samples are held out, whatever the fraction: 10 samples are enough, 2 are not.
    assert quiet(early_stopping=True, validation_fraction=0.01).fit(X[:10], y[:10]).n_iter_ >= 1
    with pytest.raises(ValueError, match="early_stopping needs at least 3 samples"):
        quiet(early_stopping=True).fit(X[:2], y[:2])


def test_dropout_zero_is_no_dropout_for_every_model(digits):
    """A grid over dropout [0, 0.2] works: 0 was refused ("dropout must lie in (0, 1)")."""
    X, y, X_test, _ = digits
    none = quiet(max_iter=2).fit(X, y)
    zero = quiet(max_iter=2, dropout=0.0).fit(X, y)
    np.testing.assert_array_equal(zero.predict_proba(X_test), none.predict_proba(X_test))
    assert "use_dropout" not in zero.model_.config or not zero.model_.config["use_dropout"]
    quiet(model="two-layer", alpha=0.0, dropout=0, max_iter=1).fit(X, y)
    search = GridSearchCV(quiet(max_iter=2), {"dropout": [0, 0.2]}, cv=2).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 2


def test_a_validation_fraction_that_leaves_nothing_to_train_on_says_so(digits):
    X, y, _, _ = digits
    # Before: "early_stopping needs at least 3 samples ..., got 30 samples".
    with pytest.raises(ValueError, match=r"validation_fraction=0.999 of 30 samples holds out 30 and leaves "
                                         r"none to train on: give a smaller validation_fraction"):
        quiet(early_stopping=True, validation_fraction=0.999).fit(X[:30], y[:30])


def test_cnn_models_take_rows_as_images(digits):
    X, y, X_test, y_test = digits
    clf = quiet(model="simple-cnn", alpha=0.0, max_iter=10).fit(X, y)
    assert clf.image_shape_ == (1, 8, 8) and clf.model_.input_shape == (1, 8, 8)
    assert clf.score(X_test, y_test) > 0.6
    clf = quiet(model="simple-cnn", alpha=0.0, max_iter=1, image_shape=(2, 8, 8)).fit(np.hstack([X, X]), y)
    assert clf.model_.input_shape == (2, 8, 8)
    with pytest.raises(ConfigError, match="does not fit input_dim"):
        quiet(model="simple-cnn", alpha=0.0, image_shape=(4, 4, 4)).fit(X, y)
    with pytest.raises(ConfigError, match="needs image_shape"):
        quiet(model="simple-cnn", alpha=0.0).fit(X[:, :60], y)
    with pytest.raises(ConfigError, match="holds 48 values, X has 64"):
        quiet(model="deep-cnn", alpha=0.0, image_shape=(3, 4, 4)).fit(X, y)


@pytest.mark.parametrize("params, message", [
    ({"solver": "lbfgs"}, "solver must be one of"),
    ({"hidden_layer_sizes": (0,)}, "^hidden_layer_sizes must be integers from 1"),
    ({"hidden_layer_sizes": "wide"}, "hidden_layer_sizes must be an int or a tuple"),
    ({"learning_rate_init": -1.0}, "learning_rate_init must be a positive number"),
    ({"model": "resnet"}, "model must be one of"),
    ({"model": "simple-cnn"}, r"give alpha=0 with model='simple-cnn'"),
    ({"model": "two-layer", "alpha": 0, "batchnorm": True}, "batchnorm: model two-layer"),
    ({"activation": "identity"}, "activation must be one of"),
    ({"activation": "tanh", "model": "two-layer"}, "not available with model='two-layer'"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1 or 'auto'"),
    ({"validation_fraction": 1.0}, r"validation_fraction must lie in \(0, 1\)"),
    ({"max_iter": 0}, "max_iter must be an integer >= 1"),
    # Before: "epochs must be ...", from the Trainer, after the network was built.
    ({"max_iter": 10**6}, "^max_iter must be an integer of at least 1 and at most 100,000, got 1000000"),
    ({"verbose": -1}, "verbose must be True, False or an integer >= 0"),
    ({"dropout": 1.5}, "dropout must lie in"),
    # Refused before anything is allocated: 10 billion weights would never fit.
    ({"hidden_layer_sizes": (100_000, 100_000)}, "makes 10,000,[0-9,]+ parameters; NeuralNetClassifier trains at most"),
])
def test_bad_parameters_are_one_line_errors_naming_the_parameter(params, message):
    X, y = make_blobs(n_samples=20, n_features=4, random_state=0)
    with pytest.raises(ConfigError, match=message) as info:
        NeuralNetClassifier(**params).fit(X, y)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)  # what scikit-learn's tools expect of bad parameters


@pytest.mark.parametrize("model", ["simple-cnn", "deep-cnn"])
def test_a_cnn_too_large_for_memory_is_refused_before_allocating(model):
    # 100x100 pictures: SimpleConvNet flattens 69,120 values into its hidden layer, so 100,000
    # units are 6.9 billion weights. Before, only the fully connected models were counted and
    # this was a MemoryError from NumPy (or, for a size that fits, gigabytes allocated).
    X = np.zeros((4, 100 * 100), dtype=np.float32)
    with pytest.raises(ConfigError, match=r"makes [0-9,]+ parameters; NeuralNetClassifier trains at most") as info:
        NeuralNetClassifier(model=model, alpha=0.0, hidden_layer_sizes=(100_000,)).fit(X, [0, 1, 0, 1])
    count = int(str(info.value).split(" makes ")[1].split(" ")[0].replace(",", ""))
    # The count is the network's: a small one built for real has the same formula's value.
    small = NeuralNetClassifier(model=model, alpha=0.0, hidden_layer_sizes=(7,), max_iter=1).fit(
        np.zeros((4, 16 * 16)), [0, 1, 0, 1])
    from nnscratch.sklearn import _parameter_count

    assert sum(p.size for p in small.model_.params.values()) == _parameter_count(
        small._settings(4)[0], (1, 16, 16), 2)
    assert count > 100_000 * 1_000


def test_silent_unless_verbose(capsys):
    X, y = make_blobs(n_samples=40, n_features=2, random_state=0)
    quiet(max_iter=3).fit(X, y)
    quiet(max_iter=3, verbose=0).fit(X, y)  # an int, as MLPClassifier takes (was a ConfigError)
    assert capsys.readouterr().out == ""
    quiet(max_iter=1, verbose=1).fit(X, y)
    assert capsys.readouterr().out.startswith("Iteration 1, loss = ")
    quiet(max_iter=3, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2", "Iteration 3"]


def test_fitted_network_saves_and_loads(tmp_path, digits):
    from nnscratch import load_model, save_model

    X, y, X_test, _ = digits
    clf = quiet(batchnorm=True).fit(X, y)
    path = save_model(clf.model_, tmp_path / "digits.npz")
    loaded = load_model(path)
    scores = loaded.predict(X_test.astype(np.float32))
    np.testing.assert_array_equal(clf.classes_[scores.argmax(axis=1)], clf.predict(X_test))


def test_import_nnscratch_loads_no_sklearn_and_a_missing_one_is_a_one_line_error():
    code = "import sys, nnscratch; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
    # sys.modules[name] = None makes `import sklearn` fail as if it were not installed.
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from nnscratch.errors import MissingExtraError\n"
            "try:\n    from nnscratch.sklearn import NeuralNetClassifier\n"
            "except MissingExtraError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("pip install 'nnscratch[sklearn]' (or 'nnscratch[all]')"), out
    assert "NeuralNetClassifier needs the sklearn package" in out.stdout
    assert len(out.stdout.strip().splitlines()) == 1


def test_log_proba_stays_finite_where_proba_underflows():
    X, y = make_blobs(n_samples=60, n_features=2, centers=[[-1, -1], [1, 1]], cluster_std=0.1, random_state=0)
    clf = quiet(max_iter=30).fit(X, y)
    far = np.array([[-2000.0, -2000.0], [2000.0, 2000.0]])
    proba, log_proba = clf.predict_proba(far), clf.predict_log_proba(far)
    assert (proba == 0).any()  # exp of a score thousands below the best underflows to 0.0
    assert np.isfinite(log_proba).all()
    np.testing.assert_allclose(np.exp(log_proba), proba, atol=1e-12)


def test_values_beyond_float32_are_refused_in_words():
    X, y = make_blobs(n_samples=30, n_features=4, random_state=0)
    # Finite in float64, infinite in the float32 the network trains in. Before: "ShapeError:
    # x_train holds 1 NaN or infinite values; clean the data" about data that had none.
    X[0, 0] = 1e39
    with pytest.raises(ValueError, match=r"^X holds values up to 1e\+39, beyond float32's 3.4e\+38: "
                                         r"NeuralNetClassifier trains in float32; scale X"):
        quiet().fit(X, y)


def test_rows_whose_scores_overflow_are_an_error_not_nan_probabilities():
    X, y = make_blobs(n_samples=30, n_features=4, random_state=0)
    clf = quiet(max_iter=2).fit(X, y)
    huge = np.vstack([X[:2], np.full((1, 4), 1e308)])
    # Before: predict_proba gave a row of NaN (no warning in words) and predict its first class.
    for method in (clf.predict_proba, clf.predict_log_proba, clf.predict):
        with pytest.raises(ValueError, match=r"^X rows \[2\] make the network's scores overflow"):
            method(huge)
    np.testing.assert_allclose(clf.predict_proba(np.full((2, 4), 1e300)).sum(axis=1), 1.0)


def test_divergence_is_one_error_in_the_estimators_terms_and_leaves_it_unfitted():
    from sklearn.exceptions import NotFittedError

    from nnscratch.errors import TrainingDivergedError

    X, y = make_blobs(n_samples=200, n_features=20, centers=3, center_box=(-100, 100), random_state=0)
    clf = NeuralNetClassifier(solver="sgd", learning_rate_init=1.0, max_iter=5, random_state=0)
    with pytest.raises(TrainingDivergedError, match=r"solver='sgd', learning_rate_init=1: give a smaller "
                                                    r"learning_rate_init \(e.g. 0.1\)") as info:
        clf.fit(X, y)
    assert "--lr" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_a_refit_that_fails_leaves_the_estimator_unfitted(digits):
    from sklearn.exceptions import NotFittedError

    X, y, _, _ = digits
    clf = quiet(max_iter=1).fit(X, y)
    clf.set_params(model="simple-cnn", alpha=0.0, image_shape=(4, 4, 4))
    with pytest.raises(ConfigError, match="does not fit"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)
