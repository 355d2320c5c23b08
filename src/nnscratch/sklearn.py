"""A scikit-learn estimator: nnscratch's networks behind ``fit`` / ``predict``.

:class:`NeuralNetClassifier` takes :class:`sklearn.neural_network.MLPClassifier`'s
parameters where they mean the same and trains an nnscratch network (an MLP,
the book's ``TwoLayerNet`` or one of its CNNs) with nnscratch's Trainer, so it
works in ``Pipeline``, ``GridSearchCV``, ``cross_val_score``, ``clone`` and
pickle like any scikit-learn classifier::

    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from nnscratch.sklearn import NeuralNetClassifier

    X, y = load_digits(return_X_y=True)
    clf = NeuralNetClassifier(hidden_layer_sizes=(100,), random_state=0)
    cross_val_score(clf, X / 16, y, cv=5).mean()   # ~0.94

It is a general estimator: any number of features and of classes, labels of
any type (strings too). The trained network is ``clf.model_`` (an ordinary
nnscratch model: ``nnscratch.save_model(clf.model_, "digits.npz")``).

Needs scikit-learn: ``pip install 'nnscratch[sklearn]'``.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from dataclasses import replace

import numpy as np

from nnscratch.extras import require

require("sklearn", "sklearn", "NeuralNetClassifier")

# `nnscratch.sklearn` is this module; imports are absolute, so these are scikit-learn's.
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from sklearn.utils.multiclass import check_classification_targets, unique_labels  # noqa: E402
from sklearn.utils.validation import check_is_fitted, validate_data  # noqa: E402

from nnscratch import errors  # noqa: E402
from nnscratch.errors import ConfigError, TrainingDivergedError  # noqa: E402
from nnscratch.functions import log_softmax, softmax  # noqa: E402
from nnscratch.runs import RunSettings, build_model, build_optimizer, fit, parameter_count  # noqa: E402

__all__ = ["NeuralNetClassifier", "ConvergenceWarning"]

MODELS = ("mlp", "two-layer", "simple-cnn", "deep-cnn")
# RunSettings' field names -> this estimator's parameter names, for its error messages.
_PARAMETER_NAMES = {"model": "model", "hidden": "hidden_layer_sizes", "batch_size": "batch_size",
                    "optimizer": "solver", "lr": "learning_rate_init", "weight_decay": "alpha",
                    "dropout": "dropout", "batchnorm": "batchnorm", "epochs": "max_iter"}
# MLPClassifier's names -> nnscratch's; 'identity' has no layer here.
ACTIVATIONS = {"relu": "relu", "logistic": "sigmoid", "sigmoid": "sigmoid", "tanh": "tanh"}
MODEL_ACTIVATIONS = {"mlp": ("relu", "sigmoid", "tanh"), "two-layer": ("relu", "sigmoid"),
                     "simple-cnn": ("relu",), "deep-cnn": ("relu",)}
# Inputs of these dtypes are used as they are; others are converted to the first.
_INPUT_DTYPES = (np.float32, np.float64)
# predict / predict_proba run the network on this many samples at a time.
_PREDICT_CHUNK = 4096
# Bigger fully connected networks are refused before any allocation: training holds the
# weights, their gradients and Adam's two moments, 16 bytes a parameter (3.2 GB here).
MAX_PARAMETERS = 200_000_000


class ConvergenceWarning(errors.ConvergenceWarning, _SklearnConvergenceWarning):
    """``max_iter`` epochs ended before the loss (or validation score) stopped improving.

    Both nnscratch's and scikit-learn's ``ConvergenceWarning``: a filter on either catches it.
    """


class NeuralNetClassifier(ClassifierMixin, BaseEstimator):
    """Neural-network classifier trained by nnscratch, in scikit-learn's conventions.

    Parameters mirror :class:`sklearn.neural_network.MLPClassifier` where they
    mean the same; ``model``, ``dropout``, ``batchnorm`` and ``image_shape`` are
    nnscratch's.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Widths of the hidden layers. ``model='two-layer'`` and the CNNs have one
        fully connected hidden layer: give one size.
    activation : {'relu', 'logistic', 'tanh'}, default 'relu'
        Hidden activation ('sigmoid' is an alias of 'logistic'). 'tanh' needs
        ``model='mlp'``; the CNNs use ReLU.
    solver : {'adam', 'sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop'}, default 'adam'
        nnscratch's optimizer names.
    alpha : float, default 0.0001
        L2 penalty with MLPClassifier's scaling: ``0.5 * alpha * sum(W**2) / batch_size``
        is added to each mini-batch's mean loss (nnscratch's ``weight_decay =
        alpha / batch_size``). Only ``model='mlp'`` has weight decay: other models
        need ``alpha=0``.
    batch_size : int or 'auto', default 'auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``. Larger values are
        clipped to the number of samples.
    learning_rate_init : float or None, default 0.001
        Learning rate, MLPClassifier's default for every solver. None takes
        nnscratch's usual rate for the solver (``nnscratch train``'s: sgd 0.1,
        momentum, nesterov and adagrad 0.01, adam and rmsprop 0.001). nnscratch's
        'sgd' is plain SGD (no momentum): it wants a larger rate than 0.001.
    max_iter : int, default 200
        Maximum number of epochs of ``fit`` (at most 100,000).
    shuffle : bool, default True
        Reshuffle the samples every epoch.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights, the shuffling, dropout and the validation
        split: the same int gives the same fitted network.
    tol : float, default 1e-4
        Improvement below ``tol`` of the training loss (or, with early stopping,
        of the validation accuracy) for ``n_iter_no_change`` epochs in a row
        ends training.
    verbose : bool or int, default False
        Print the loss of every epoch (0 and False are silent).
    warm_start : bool, default False
        ``fit`` continues training the fitted network instead of starting anew.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified), stop
        when its accuracy stops improving and keep the best epoch's weights.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 10
    model : {'mlp', 'two-layer', 'simple-cnn', 'deep-cnn'}, default 'mlp'
        ``MultiLayerNet``, the book's ``TwoLayerNet``, ``SimpleConvNet`` or ``DeepConvNet``.
    dropout : float, optional
        Dropout ratio of the hidden layers (mlp, deep-cnn); 0 is no dropout, like None.
    batchnorm : bool, default False
        Batch normalisation after each hidden affine layer (mlp).
    image_shape : tuple (C, H, W), optional
        How a row of ``X`` is an image, for the CNNs; inferred as ``(1, s, s)``
        when the number of features is a square ``s * s``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str (when X has column names)
    model_ : nnscratch Model
        The trained network (``nnscratch.save_model(clf.model_, path)``); its
        outputs are the columns of ``classes_`` in order.
    loss_curve_ : list of float
        Mean training loss (penalty included) of every epoch.
    validation_scores_ : list of float or None
        Validation accuracy of every epoch with ``early_stopping``, else None.
    best_loss_ : float or None
        Lowest ``loss_curve_`` value (None with ``early_stopping``).
    best_validation_score_ : float or None
        Best validation accuracy (None without ``early_stopping``).
    n_iter_ : int
        Epochs trained (summed over ``partial_fit`` and warm-started ``fit`` calls).
    t_ : int
        Training samples seen.
    image_shape_ : tuple or None
        The ``(C, H, W)`` a row becomes for a CNN.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 model="mlp", dropout=None, batchnorm=False, image_shape=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.model = model
        self.dropout = dropout
        self.batchnorm = batchnorm
        self.image_shape = image_shape

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False        # dense arrays only: sparse X is refused
        tags.input_tags.allow_nan = False
        tags.input_tags.two_d_array = True
        tags.target_tags.required = True
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        tags.non_deterministic = False        # the same random_state gives the same network
        return tags

    def __sklearn_is_fitted__(self):
        """Fitted once a network is trained (a fit that diverged from scratch leaves none)."""
        return hasattr(self, "model_")

    # ------------------------------------------------------------- fitting
    def fit(self, X, y):
        """Train on ``(X, y)`` for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels of any type (numbers, strings ...).

        Returns
        -------
        self
        """
        return self._fit(X, y, classes=None, incremental=False)

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``(X, y)``, continuing the network fitted so far.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,)
            Every class of the problem; required on the first call, ignored later.

        Returns
        -------
        self
        """
        return self._fit(X, y, classes=classes, incremental=True)

    def _fit(self, X, y, *, classes, incremental):
        fitted = hasattr(self, "model_")
        start_over = not fitted or (not incremental and not self.warm_start)
        if incremental and not fitted and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit "
                             "(every class of the problem, e.g. classes=np.unique(y_all))")
        if start_over and fitted:
            del self.model_  # a refit that fails leaves the estimator unfitted, not half-updated
        # float64 and float32 are kept as given; anything else (uint8 pixels, ints, float16) becomes
        # float32, the network's dtype, at once (it became float64 first: 8 bytes a value, then 4 more).
        X, y = validate_data(self, X, y, reset=start_over, dtype=_INPUT_DTYPES)
        _check_float32_range(X)
        check_classification_targets(y)
        settings, activation = self._settings(X.shape[0])
        architecture = (settings.model, settings.hidden, activation, settings.dropout, settings.batchnorm)

        if start_over:
            classes_ = unique_labels(classes) if incremental else unique_labels(y)
            if incremental:
                check_classification_targets(classes_)
            self._check_y_in(y, classes_, "classes")
            self.image_shape_ = self._resolve_image_shape(X.shape[1])
            self._seed_all()
            self.classes_ = classes_
            self.model_ = self._build_model(settings, activation, X.shape[1], len(classes_))
            self._architecture = architecture
            self._optimizer = None
            self.loss_curve_ = []
            self.validation_scores_ = [] if self.early_stopping and not incremental else None
            self.best_loss_ = None if self.validation_scores_ is not None else math.inf
            self.best_validation_score_ = -math.inf if self.validation_scores_ is not None else None
            self._no_improvement_count = 0
            self.n_iter_ = 0
            self.t_ = 0
        else:
            if architecture != self._architecture:
                raise ConfigError("warm_start and partial_fit continue the fitted network, built as "
                                  f"(model, hidden, activation, dropout, batchnorm) = {self._architecture}; "
                                  f"the parameters now ask for {architecture}: fit with warm_start=False")
            what = "classes passed to the first partial_fit" if incremental else \
                "classes seen by the first fit (warm_start)"
            self._check_y_in(y, self.classes_, what)
        if self._optimizer is None or not incremental:
            # A warm-started fit starts a fresh optimizer, as MLPClassifier does; partial_fit keeps it.
            self._optimizer = build_optimizer(settings)

        labels = np.searchsorted(self.classes_, y)
        x = self._as_model_input(X)
        if incremental or not self.early_stopping:
            x_val = t_val = None
        else:
            x, x_val, labels, t_val = self._validation_split(x, labels)
        try:
            self._train(settings, x, labels, x_val, t_val, epochs=1 if incremental else self.max_iter,
                        incremental=incremental)
        except TrainingDivergedError:
            if start_over:  # no half-trained network left behind as if it were fitted
                del self.model_
            raise
        return self

    def _check_y_in(self, y, classes, what):
        unknown = np.setdiff1d(unique_labels(y), classes)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown.tolist()[:10]} that are not in the {what} "
                             f"{classes.tolist()[:20]}")

    def _seed_all(self):
        """One integer seed from ``random_state``, and a Generator for the seeds that follow."""
        if isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool) \
                and 0 <= self.random_state < 2**32:
            seed = int(self.random_state)
        else:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self._seed = seed
        self._rng = np.random.default_rng(seed)

    def _validation_split(self, x, labels):
        """Hold out ``validation_fraction`` (at least 2 samples), stratified when every class can be."""
        n = len(x)
        n_val = max(2, math.ceil(self.validation_fraction * n))
        if n < 3:
            raise ValueError(f"early_stopping needs at least 3 samples (2 to validate on, 1 to train on), "
                             f"got {n} sample{'s' if n != 1 else ''}")
        if n - n_val < 1:
            raise ValueError(f"validation_fraction={self.validation_fraction!r} of {n} samples holds out "
                             f"{n_val} and leaves none to train on: give a smaller validation_fraction")
        n_classes = len(self.classes_)
        counts = np.bincount(labels, minlength=n_classes)
        can_stratify = counts[counts > 0].min() >= 2 and min(n_val, n - n_val) >= np.count_nonzero(counts)
        # The same split at every fit of this network (as MLPClassifier's, from random_state): a
        # warm-started fit drew a new one, so it validated on samples the first fit had trained on.
        x_train, x_val, t_train, t_val = train_test_split(
            x, labels, test_size=n_val, random_state=self._seed, stratify=labels if can_stratify else None)
        return x_train, x_val, t_train, t_val

    # ------------------------------------------------------------ settings
    def _settings(self, n_samples: int):
        """Every parameter checked once: ``(RunSettings, activation)`` for ``n_samples`` samples.

        The settings a training run shares (model, hidden layers, optimizer,
        learning rate, weight decay, dropout, batch norm) are checked by
        :class:`nnscratch.runs.RunSettings`; its errors are re-worded with this
        estimator's parameter names. The rest is checked here.
        """
        model = self.model
        activation = ACTIVATIONS.get(self.activation) if isinstance(self.activation, str) else None
        if activation is None:
            raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if model in MODEL_ACTIVATIONS and activation not in MODEL_ACTIVATIONS[model]:
            raise ConfigError(f"activation={self.activation!r} is not available with model={model!r} "
                              f"(it has {', '.join(MODEL_ACTIVATIONS[model])})")
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
            hidden = [hidden]
        elif isinstance(hidden, (list, tuple, np.ndarray)):
            hidden = list(hidden)
        else:
            raise ConfigError(f"hidden_layer_sizes must be an int or a tuple of ints, got {hidden!r}")
        alpha = _real("alpha", self.alpha, minimum=0.0)
        if alpha > 0 and model in MODELS and model != "mlp":
            raise ConfigError(f"alpha (L2 weight decay) is available with model='mlp': give alpha=0 "
                              f"with model={model!r}")
        if isinstance(self.batch_size, str) and self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            batch_size = min(_integer("batch_size", self.batch_size, minimum=1, extra="or 'auto'"), n_samples)
        max_iter = _integer("max_iter", self.max_iter, minimum=1)
        _integer("n_iter_no_change", self.n_iter_no_change, minimum=1)
        _real("tol", self.tol, minimum=0.0)
        fraction = _real("validation_fraction", self.validation_fraction, minimum=0.0, strict=True)
        if not fraction < 1:
            raise ConfigError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
        for name in ("shuffle", "warm_start", "early_stopping"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        # MLPClassifier takes an int verbosity too (verbose=1, as GridSearchCV's): 0 is silent.
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)) or self.verbose < 0:
            raise ConfigError(f"verbose must be True, False or an integer >= 0, got {self.verbose!r}")
        # dropout=0 is no dropout (a grid over [0, 0.2, 0.5] is natural); nnscratch's layers say None.
        dropout = self.dropout
        if isinstance(dropout, numbers.Real) and not isinstance(dropout, bool) and dropout == 0:
            dropout = None
        if model in ("mlp", "two-layer") and self.image_shape is not None:
            raise ConfigError(f"image_shape is for the CNNs; model={model!r} takes rows of features")
        # epochs: max_iter, checked against the Trainer's bound here, before anything is built.
        settings = RunSettings(model=model, hidden=hidden, epochs=max_iter, batch_size=batch_size,
                               optimizer=self.solver.lower() if isinstance(self.solver, str) else self.solver,
                               lr=self.learning_rate_init, weight_decay=alpha / batch_size,
                               dropout=dropout, batchnorm=self.batchnorm, seed=0)
        try:
            return settings.resolved(), activation
        except ConfigError as exc:
            raise ConfigError(_our_names(str(exc))) from None

    def _resolve_image_shape(self, n_features: int):
        if self.model in ("mlp", "two-layer"):
            return None
        if self.image_shape is None:
            side = math.isqrt(n_features)
            if side * side != n_features:
                raise ConfigError(f"model={self.model!r} needs image_shape=(C, H, W): {n_features} "
                                  "features are not a square image")
            return (1, side, side)
        try:
            shape = tuple(self.image_shape)
        except TypeError:
            shape = ()
        if len(shape) != 3 or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                      and d >= 1 for d in shape):
            raise ConfigError(f"image_shape must be (C, H, W) of positive ints, got {self.image_shape!r}")
        shape = tuple(int(d) for d in shape)
        if math.prod(shape) != n_features:
            raise ConfigError(f"image_shape {shape} holds {math.prod(shape)} values, "
                              f"X has {n_features} features")
        return shape

    def _build_model(self, settings, activation: str, n_features: int, n_classes: int):
        """``nnscratch.runs.build_model``'s network, with the hidden activation asked for."""
        input_shape = self.image_shape_ if self.image_shape_ is not None else (n_features,)
        count = _parameter_count(settings, input_shape, max(n_classes, 1))
        if count > MAX_PARAMETERS:
            raise ConfigError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} with {n_features:,} features "
                              f"and {n_classes:,} classes makes {count:,} parameters; NeuralNetClassifier "
                              f"trains at most {MAX_PARAMETERS:,} (about 3.2 GB with Adam's state)")
        # One class still gets a network (of one output: predict returns that class).
        model = build_model(replace(settings, seed=self._seed), input_shape=input_shape,
                            n_classes=max(n_classes, 1))
        if model.config.get("activation", activation) != activation:
            # runs builds ReLU networks with He's initial weights; the same constructor arguments
            # with another activation, and Xavier's scale (std sqrt(1 / fan_in)) that suits it.
            config = dict(model.config, activation=activation)
            init = config.get("weight_init_std")
            config["weight_init_std"] = "xavier" if isinstance(init, str) else init / math.sqrt(2.0)
            model = type(model)(**config)
        return model

    # ------------------------------------------------------------ training
    def _train(self, settings, x, labels, x_val, t_val, *, epochs, incremental):
        monitor = _EpochMonitor(self, incremental)
        settings = replace(settings, epochs=epochs, seed=int(self._rng.integers(np.iinfo(np.int32).max)))
        # eval_samples=1: the per-epoch training accuracy is not reported, so measure it on one sample.
        try:
            fit(settings, (x, labels, x_val, t_val), callbacks=[monitor], model=self.model_,
                optimizer=self._optimizer, n_classes=self.model_.output_size, eval_samples=1,
                shuffle=self.shuffle)
        except TrainingDivergedError as exc:
            # The Trainer's message speaks of the command line's --lr; say it in this API's names.
            what = str(exc).split(" with learning rate")[0]
            raise TrainingDivergedError(
                f"{what} with solver={self.solver!r}, learning_rate_init={settings.lr:g}: give a smaller "
                f"learning_rate_init (e.g. {settings.lr / 10:g}) or scale X (e.g. StandardScaler)") from None
        if monitor.best_state is not None:
            _restore(self.model_, monitor.best_state)
        if not incremental and not monitor.stopped:
            warnings.warn(f"NeuralNetClassifier: {epochs} epochs (max_iter) ran and the "
                          f"{'validation score' if x_val is not None else 'loss'} was still improving",
                          ConvergenceWarning, stacklevel=4)

    def _as_model_input(self, X):
        """Rows of X as the network's input: (N, n_features) or images (N, C, H, W)."""
        if self.image_shape_ is not None:
            return X.reshape((X.shape[0],) + self.image_shape_)
        return X

    # ---------------------------------------------------------- prediction
    def _scores(self, X, transform) -> np.ndarray:
        """``transform`` (softmax or log-softmax) of the network's scores, in chunks.

        Inference runs on a float64 copy of the trained float32 network: float32
        matrix products round differently with the number of rows, so a sample's
        probabilities would depend (in the 7th digit) on the samples predicted with it.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=_INPUT_DTYPES)
        x = self._as_model_input(X)
        net = self.model_.astype(np.float64)
        out = np.empty((X.shape[0], net.output_size), dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # said below, in words
            for start in range(0, X.shape[0], _PREDICT_CHUNK):
                # float64 a chunk at a time: a float32 chunk against float64 weights skips BLAS (6x slower).
                chunk = x[start:start + _PREDICT_CHUNK].astype(np.float64, copy=False)
                scores = net.predict(chunk, train_flg=False)
                out[start:start + _PREDICT_CHUNK] = transform(scores)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(f"X rows {rows[:10].tolist()}{' ...' if rows.size > 10 else ''} make the network's "
                             f"scores overflow (|X| up to {np.abs(X[rows]).max():.3g}): no probability can be "
                             "given; scale X as it was scaled for fit")
        return out

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
        """
        return self._scores(X, softmax)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed as a log-softmax (finite, no ``log(0)``)."""
        return self._scores(X, log_softmax)

    def predict(self, X):
        """The most probable class of every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), of the labels' type
        """
        proba = self.predict_proba(X)  # first: it checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]


class _EpochMonitor:
    """Trainer callback: loss curve, validation scores and MLPClassifier's stopping rule."""

    def __init__(self, estimator, incremental):
        self.est = estimator
        self.incremental = incremental
        self.stopped = False
        self.best_state = None

    def on_epoch_end(self, trainer, epoch, record):
        est = self.est
        loss = record["train_loss"]
        est.loss_curve_.append(loss)
        est.n_iter_ += 1
        est.t_ += len(trainer.x_train)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}", flush=True)
        if self.incremental:
            return
        if est.validation_scores_ is not None:
            score = record["test_acc"]
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}", flush=True)
            improved = score >= est.best_validation_score_ + est.tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_state = _snapshot(est.model_)
        else:
            improved = loss <= est.best_loss_ - est.tol
            est.best_loss_ = min(est.best_loss_, loss)
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if est.validation_scores_ is not None else "Training loss"
            if est.verbose:
                print(f"{what} did not improve more than tol={est.tol} for "
                      f"{est.n_iter_no_change} consecutive epochs. Stopping.", flush=True)
            self.stopped = True
            trainer.request_stop()


def _parameter_count(settings, input_shape, n_classes: int) -> int:
    """Parameters of the network ``settings`` builds, counted without building it.

    The CNNs' count is linear in their one hidden layer's width: it is read off two
    networks of width 1 and 2, so that a wide layer after a large image (SimpleConvNet
    on 1000x1000 pictures, 100 units: 744 million weights) is refused, not allocated.
    """
    if settings.model in ("mlp", "two-layer"):
        return parameter_count(settings, input_shape=input_shape, n_classes=n_classes)
    one, two = (parameter_count(replace(settings, hidden=[width]), input_shape=input_shape,
                                n_classes=n_classes) for width in (1, 2))
    return one + (settings.hidden[0] - 1) * (two - one)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32_range(X) -> None:
    """Refuse values that are finite in X's float64 but infinite in the float32 the network trains in."""
    if X.dtype == np.float32 or X.size == 0:
        return
    largest = max(float(X.max()), -float(X.min()))  # no |X| copy: that is X's size again in float64
    if largest > _FLOAT32_MAX:
        raise ValueError(f"X holds values up to {largest:.3g}, beyond float32's {_FLOAT32_MAX:.3g}: "
                         "NeuralNetClassifier trains in float32; scale X (e.g. StandardScaler)")


def _snapshot(model) -> dict:
    return {"params": {k: v.copy() for k, v in model.params.items()},
            "buffers": {k: v.copy() for k, v in model.buffers.items()}}


def _restore(model, state) -> None:
    for kind in ("params", "buffers"):
        target = getattr(model, kind)
        for key, value in state[kind].items():
            target[key][...] = value


def _our_names(message: str) -> str:
    """A RunSettings error ("hidden must ...", "dropout, batchnorm: ...") in the estimator's names."""
    match = re.match(r"([a-z_]+(?:, [a-z_]+)*)(.*)", message, re.S)
    if not match:
        return message
    names = [_PARAMETER_NAMES.get(name, name) for name in match.group(1).split(", ")]
    rest = match.group(2)
    if names[-1] == "hidden_layer_sizes" and rest.startswith(" sizes "):
        rest = rest[len(" sizes"):]  # "hidden sizes must be ..." -> "hidden_layer_sizes must be ..."
    return ", ".join(names) + rest


def _integer(name, value, *, minimum, extra=""):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}{' ' + extra if extra else ''}, got {value!r}")
    return int(value)


def _real(name, value, *, minimum, strict=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > minimum if strict else value >= minimum)
    if not ok:
        raise ConfigError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return float(value)
