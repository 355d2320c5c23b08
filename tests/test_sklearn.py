"""NeuralNetClassifier: scikit-learn's own estimator checks, its tools, and MLPClassifier's rules."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnscratch.sklearn import NeuralNetClassifier


@parametrize_with_checks([NeuralNetClassifier(hidden_layer_sizes=(32,), max_iter=100, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
