"""The book's chapter 5 run, nnscratch against the book's own code.

``ch05/train_neuralnet.py``: TwoLayerNet(784, 50, 10) trained by backprop
with SGD lr 0.1, batch 100, 10,000 iterations, accuracy on the whole training
and test sets once per epoch (600 iterations).

* **book**: the book's plain layer-by-layer code (``common/layers.py``,
  ``ch05/two_layer_net.py``, ``ch05/train_neuralnet.py``) reproduced below:
  float64 weights, one-hot labels, new arrays every step, mini-batches drawn
  with ``np.random.choice`` and the loss computed again after each update.
* **nnscratch**: ``TwoLayerNet`` + ``SGD`` + ``Trainer`` (float32, a fresh
  shuffle per epoch, 10,000 iterations stopped through ``request_stop``).

Both run in this process with the same BLAS thread limit (threadpoolctl).
Several runs each; medians. Usage::

    .bench-venv/bin/python bench/ch05_two_layer_net.py [--runs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import OrderedDict

import numpy as np
from threadpoolctl import threadpool_limits

from nnscratch.datasets import load_mnist
from nnscratch.models import TwoLayerNet
from nnscratch.optimizers import SGD
from nnscratch.training import Trainer

ITERS, BATCH, LR, HIDDEN = 10_000, 100, 0.1, 50


# ----------------------------------------------------------------------------------------
# The book's code (common/functions.py, common/layers.py, ch05/two_layer_net.py), verbatim
# in substance: float64, allocation-happy, one-hot targets.
def softmax(x):
    if x.ndim == 2:
        x = x.T
        x = x - np.max(x, axis=0)
        y = np.exp(x) / np.sum(np.exp(x), axis=0)
        return y.T
    x = x - np.max(x)
    return np.exp(x) / np.sum(np.exp(x))


def cross_entropy_error(y, t):
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


class BookRelu:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = (x <= 0)
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0
        return dout


class BookAffine:
    def __init__(self, W, b):
        self.W, self.b = W, b
        self.x = self.original_x_shape = self.dW = self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        self.x = x
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout):
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


class BookSoftmaxWithLoss:
    def __init__(self):
        self.loss = self.y = self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, self.t)
        return self.loss

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        if self.t.size == self.y.size:
            return (self.y - self.t) / batch_size
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        return dx / batch_size


class BookTwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        self.params = {
            "W1": weight_init_std * np.random.randn(input_size, hidden_size),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * np.random.randn(hidden_size, output_size),
            "b2": np.zeros(output_size),
        }
        self.layers = OrderedDict()
        self.layers["Affine1"] = BookAffine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = BookRelu()
        self.layers["Affine2"] = BookAffine(self.params["W2"], self.params["b2"])
        self.lastLayer = BookSoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.lastLayer.forward(self.predict(x), t)

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x), axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.lastLayer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        return {"W1": self.layers["Affine1"].dW, "b1": self.layers["Affine1"].db,
                "W2": self.layers["Affine2"].dW, "b2": self.layers["Affine2"].db}


def run_book(seed):
    """ch05/train_neuralnet.py; returns (train acc, test acc, seconds)."""
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
    np.random.seed(seed)
    start = time.perf_counter()
    network = BookTwoLayerNet(input_size=784, hidden_size=HIDDEN, output_size=10)
    train_size = x_train.shape[0]
    iter_per_epoch = max(train_size / BATCH, 1)
    train_loss_list, train_acc_list, test_acc_list = [], [], []
    for i in range(ITERS):
        batch_mask = np.random.choice(train_size, BATCH)
        x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
        grad = network.gradient(x_batch, t_batch)
        for key in ("W1", "b1", "W2", "b2"):
            network.params[key] -= LR * grad[key]
        train_loss_list.append(network.loss(x_batch, t_batch))
        if i % iter_per_epoch == 0:
            train_acc_list.append(network.accuracy(x_train, t_train))
            test_acc_list.append(network.accuracy(x_test, t_test))
    train_acc, test_acc = network.accuracy(x_train, t_train), network.accuracy(x_test, t_test)
    return train_acc, test_acc, time.perf_counter() - start


# ----------------------------------------------------------------------------------------
class StopAfter:
    def __init__(self, iterations):
        self.iterations = iterations

    def on_batch_end(self, trainer, iteration, loss):
        if iteration >= self.iterations:
            trainer.request_stop()


def run_nnscratch(seed):
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
    start = time.perf_counter()
    network = TwoLayerNet(input_size=784, hidden_size=HIDDEN, output_size=10, seed=seed)
    epochs = -(-ITERS // (len(x_train) // BATCH))  # 17: the last one stopped at 10,000 iterations
    trainer = Trainer(network, SGD(lr=LR), x_train, t_train, x_test, t_test, epochs=epochs,
                      batch_size=BATCH, seed=seed, callbacks=[StopAfter(ITERS)])
    trainer.fit()
    assert trainer.iteration == ITERS
    train_acc = trainer.evaluate(x_train, t_train)["accuracy"]
    test_acc = trainer.evaluate(x_test, t_test)["accuracy"]
    return train_acc, test_acc, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads on both sides")
    args = parser.parse_args(argv)
    load_mnist()  # decode and cache the data before any timing

    results = {"book": [], "nnscratch": []}
    with threadpool_limits(limits=args.threads):
        for run in range(args.runs):  # interleaved, so machine noise hits both sides alike
            for name, fn in (("nnscratch", run_nnscratch), ("book", run_book)):
                train_acc, test_acc, seconds = fn(seed=run)
                results[name].append((train_acc, test_acc, seconds))
                print(f"run {run + 1} {name:<9} train {train_acc:.4f} test {test_acc:.4f} "
                      f"{seconds:6.2f} s", flush=True)

    print(f"\nTwoLayerNet(784, {HIDDEN}, 10), SGD lr {LR}, batch {BATCH}, {ITERS} iterations; "
          f"{args.threads} BLAS thread(s); median of {args.runs} runs")
    print(f"{'':<10} {'train acc':>9} {'test acc':>9} {'seconds':>8}")
    med = {}
    for name, rows in results.items():
        train, test, secs = (statistics.median(col) for col in zip(*rows))
        med[name] = secs
        print(f"{name:<10} {train:>9.4f} {test:>9.4f} {secs:>8.2f}")
    print(f"book / nnscratch time: {med['book'] / med['nnscratch']:.1f}x "
          f"(nnscratch takes {med['nnscratch'] / med['book']:.0%} of the book code's time)")


if __name__ == "__main__":
    main()
