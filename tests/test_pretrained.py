"""The shipped DeepConvNet (src/nnscratch/pretrained/deep_convnet.npz) reaches
99.4% on the whole MNIST test set and says how it was trained."""

import numpy as np

from nnscratch.datasets import load_mnist
from nnscratch.io import load_pretrained, pretrained_path, read_model_metadata
from nnscratch.models.conv import DeepConvNet


def test_pretrained_file_is_small_and_documented():
    path = pretrained_path()
    assert path.name == "deep_convnet.npz"
    assert path.stat().st_size < 5_000_000
    summary = read_model_metadata(path)["summary"]
    assert "bench/train_cnn.py" in summary["command"] and summary["test_accuracy"] >= 0.994
    assert (path.parent / "README.md").read_text().count(summary["command"].split(" ", 1)[1]) >= 1


def test_pretrained_deep_convnet_accuracy_on_the_full_test_set():
    net = load_pretrained()
    assert isinstance(net, DeepConvNet)
    assert net.params["W1"].dtype == np.float32
    _, (x_test, t_test) = load_mnist(normalize=True, flatten=False)
    assert x_test.shape == (10000, 1, 28, 28)
    accuracy = net.accuracy(x_test, t_test, batch_size=1000)
    assert accuracy >= 0.994
    # The number recorded at training time is the one we measure now (up to a
    # near-tie flipped by a different BLAS summation order).
    recorded = read_model_metadata(pretrained_path())["summary"]["test_accuracy"]
    assert abs(accuracy - recorded) <= 2e-4
    # predict takes load_mnist(flatten=False) images; accuracy takes labels or one-hot rows.
    scores = net.predict(x_test[:500])
    assert scores.shape == (500, 10) and scores.dtype == np.float32
    one_hot = np.eye(10, dtype=np.float32)[t_test[:500]]
    assert net.accuracy(x_test[:500], one_hot) == net.accuracy(x_test[:500], t_test[:500]) \
        == np.mean(scores.argmax(axis=1) == t_test[:500])
