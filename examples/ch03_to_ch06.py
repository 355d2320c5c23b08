"""Chapters 3 to 6 of *Deep Learning from Scratch*, with nnscratch and the book's names.

A guided tour that runs in under half a minute (16 s measured on a busy 2-core
machine; a few thousand MNIST samples, short trainings):

* ch. 3  activation functions, softmax, the book's hand-made 3-layer network
* ch. 4  loss functions, numerical differentiation and gradient descent
* ch. 5  backprop vs numerical gradients on TwoLayerNet, a short training
* ch. 6  SGD / Momentum / AdaGrad / Adam on MNIST, weight initialisation,
         batch normalisation, overfitting against weight decay and dropout
         (figures 6-20 and 6-21: both narrow the gap between train and test
         accuracy; ch06_overfitting.png draws the three runs)

Run::

    python examples/ch03_to_ch06.py [--out DIR] [--quick]

Figures go to ``DIR`` (default ``$NNSCRATCH_EXAMPLES_DIR`` or
``./runs/examples``). ``--quick`` (or ``NNSCRATCH_EXAMPLES_QUICK=1``) cuts
every training further, for tests.
"""

import argparse
import os
import time
from pathlib import Path

# One BLAS thread unless you chose otherwise (it must be set before NumPy loads), as
# `nnscratch` does: these matrices are small, and on a busy 2-core machine a second
# OpenBLAS thread's spin-waiting made this tour take 94 s instead of 10 s.
if not any(name in os.environ for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")):
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

from nnscratch.calculus import gradient_descent, numerical_diff, numerical_gradient
from nnscratch.datasets import load_mnist
from nnscratch.functions import (
    cross_entropy_error, identity, mean_squared_error, relu, sigmoid, softmax, step_function)
from nnscratch.models import MultiLayerNet, TwoLayerNet
from nnscratch.optimizers import SGD, AdaGrad, Adam, Momentum
from nnscratch.plots.training import (
    plot_accuracy, plot_accuracy_comparison, plot_loss_comparison, plot_loss_curve)
from nnscratch.training import Trainer


def heading(text):
    print(f"\n{'=' * 8} {text} {'=' * (60 - len(text))}")


# ---------------------------------------------------------------------------- chapter 3
def chapter3():
    heading("ch. 3  activation functions and forward propagation")
    x = np.array([-1.0, 0.0, 1.0, 2.0])
    print("x               ", x)
    print("step_function(x)", step_function(x))
    print("sigmoid(x)      ", np.round(sigmoid(x), 4))
    print("relu(x)         ", relu(x))
    a = np.array([0.3, 2.9, 4.0])
    y = softmax(a)
    print(f"softmax({a}) = {np.round(y, 5)}, sum = {y.sum():.6f}")

    # The book's init_network() / forward() of section 3.4.3.
    network = {
        "W1": np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]), "b1": np.array([0.1, 0.2, 0.3]),
        "W2": np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]]), "b2": np.array([0.1, 0.2]),
        "W3": np.array([[0.1, 0.3], [0.2, 0.4]]), "b3": np.array([0.1, 0.2]),
    }
    z1 = sigmoid(np.array([1.0, 0.5]) @ network["W1"] + network["b1"])
    z2 = sigmoid(z1 @ network["W2"] + network["b2"])
    y = identity(z2 @ network["W3"] + network["b3"])
    print("3-layer network of 3.4.3 on x = [1.0, 0.5]:", np.round(y, 8), "(book: [0.31682708 0.69627909])")


# ---------------------------------------------------------------------------- chapter 4
def function_1(x):
    return 0.01 * x ** 2 + 0.1 * x


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


def chapter4():
    heading("ch. 4  losses, numerical gradients, gradient descent")
    t = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    print(f"mean_squared_error  = {mean_squared_error(y, t):.4f}  (book: 0.0975)")
    print(f"cross_entropy_error = {cross_entropy_error(y, t):.4f}  (book: 0.5108)")
    print(f"numerical_diff(function_1, 5)  = {numerical_diff(function_1, 5.0):.6f}  (exact 0.2)")
    print(f"numerical_diff(function_1, 10) = {numerical_diff(function_1, 10.0):.6f}  (exact 0.3)")
    print("numerical_gradient(function_2, [3, 4]) =", numerical_gradient(function_2, np.array([3.0, 4.0])))
    x = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=0.1, step_num=100)
    print("gradient_descent(function_2, [-3, 4], lr=0.1, step_num=100) =", x)


# ---------------------------------------------------------------------------- chapter 5
def chapter5(data, out, quick):
    heading("ch. 5  backpropagation")
    (x_train, t_train), (x_test, t_test) = data
    # gradient_check.py: backprop against central differences, in float64.
    network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, seed=0, dtype="float64")
    x_batch, t_batch = x_train[:3].astype(np.float64), t_train[:3]
    grad_numerical = network.numerical_gradient(x_batch, t_batch)
    grad_backprop = network.gradient(x_batch, t_batch)
    for key in ("W1", "b1", "W2", "b2"):
        diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
        print(f"{key}: mean |backprop - numerical| = {diff:.2e}")

    # train_neuralnet.py, shortened: SGD lr 0.1, batch 100.
    network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, seed=0)
    trainer = Trainer(network, SGD(lr=0.1), x_train, t_train, x_test, t_test,
                      epochs=1 if quick else 4, batch_size=100, verbose=True)
    history = trainer.fit()
    plot_loss_curve(history, out / "ch05_loss.png")
    plot_accuracy(history, out / "ch05_accuracy.png")
    print(f"TwoLayerNet after {trainer.epoch} epoch(s) on {len(x_train)} images: "
          f"test accuracy {history.test_acc_list[-1]:.4f}")


# ---------------------------------------------------------------------------- chapter 6
def train_loop(network, optimizer, x, t, iterations, batch_size, rng):
    """The book's plain loop: random mini-batch, gradient, update; returns the losses."""
    losses = []
    for _ in range(iterations):
        mask = rng.choice(len(x), batch_size)
        loss, grads = network.loss_and_gradient(x[mask], t[mask])
        optimizer.update(network.params, grads)
        losses.append(loss)
    return losses


def chapter6(data, out, quick):
    heading("ch. 6  optimizers on MNIST (optimizer_compare_mnist.py)")
    (x_train, t_train), (x_test, t_test) = data
    iterations = 100 if quick else 400
    optimizers = {"SGD": SGD(), "Momentum": Momentum(), "AdaGrad": AdaGrad(), "Adam": Adam()}
    losses = {}
    for name, optimizer in optimizers.items():
        network = MultiLayerNet(784, [100, 100, 100, 100], 10, seed=0)
        losses[name] = train_loop(network, optimizer, x_train, t_train, iterations, 128,
                                  np.random.default_rng(0))
        print(f"{name:<9} loss after {iterations} iterations: {np.mean(losses[name][-20:]):.4f}")
    plot_loss_comparison(losses, out / "ch06_optimizers_mnist.png", title="Optimizers on MNIST")

    heading("ch. 6  weight initialisation")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1000, 100))
    for label, std in (("std 1", 1.0), ("std 0.01", 0.01), ("Xavier", np.sqrt(1 / 100))):
        a, stds, saturated = z, [], []
        for _ in range(5):  # weight_init_activation_histogram.py: 5 sigmoid layers of 100
            a = sigmoid(a @ (rng.standard_normal((100, 100)) * std))
            stds.append(round(float(np.std(a)), 3))
            saturated.append(float(np.mean((a < 0.01) | (a > 0.99))))
        print(f"sigmoid, {label:<8}: activation std in layers 1-5 {stds}, "
              f"saturated (<0.01 or >0.99) in layer 5: {saturated[-1]:.0%}")
    losses = {}
    for label, std in (("std=0.01", 0.01), ("Xavier", "xavier"), ("He", "he")):
        network = MultiLayerNet(784, [100, 100, 100, 100], 10, weight_init_std=std, seed=0)
        losses[label] = train_loop(network, SGD(lr=0.01), x_train, t_train, iterations, 128,
                                   np.random.default_rng(0))
        print(f"ReLU net, init {label:<8}: loss after {iterations} iterations "
              f"{np.mean(losses[label][-20:]):.4f}")
    plot_loss_comparison(losses, out / "ch06_weight_init.png", title="Weight initialisation (ReLU)")

    heading("ch. 6  batch normalisation (batch_norm_test.py)")
    x_small, t_small = x_train[:1000], t_train[:1000]
    for use_bn in (False, True):
        network = MultiLayerNet(784, [100] * 5, 10, weight_init_std=0.05, use_batchnorm=use_bn, seed=0)
        history = Trainer(network, SGD(lr=0.01), x_small, t_small, epochs=3 if quick else 10,
                          batch_size=100).fit()
        print(f"batchnorm={use_bn!s:<5}: train accuracy per epoch "
              f"{[round(a, 2) for a in history.train_acc_list]}")

    heading("ch. 6  overfitting, weight decay and dropout (300 training images)")
    histories = overfitting(x_train, t_train, x_test, t_test, epochs=30 if quick else 150)
    plot_accuracy_comparison(histories, out / "ch06_overfitting.png",
                             title="Overfitting on 300 images: train (solid) and test (dashed)")


def overfitting(x_train, t_train, x_test, t_test, epochs=150):
    """The book's figures 6-20 and 6-21; returns {run name: History}.

    A 7-layer network on 300 images learns them by heart (train accuracy 1.0)
    while test accuracy stays far lower. Weight decay and dropout narrow that
    gap (and here raise test accuracy a little). A larger learning rate than the
    book's 0.01 gets there in 150 epochs instead of 200-300; the accuracies
    printed are the mean of the last 10 epochs (an epoch is only 3 batches, so
    single epochs are noisy).
    """
    x_small, t_small = x_train[:300], t_train[:300]
    x_check, t_check = x_test[:1000], t_test[:1000]
    histories = {}
    for label, kwargs in (("plain", {}), ("weight decay 0.03", {"weight_decay_lambda": 0.03}),
                          ("dropout 0.2", {"use_dropout": True, "dropout_ratio": 0.2})):
        network = MultiLayerNet(784, [100] * 6, 10, seed=0, **kwargs)
        history = Trainer(network, SGD(lr=0.05), x_small, t_small, x_check, t_check,
                          epochs=epochs, batch_size=100, seed=0).fit()
        histories[label] = history
        train = np.mean([e["train_acc"] for e in history.epochs[-10:]])
        test = np.mean([e["test_acc"] for e in history.epochs[-10:]])
        print(f"{label:<17}: train {train:.3f}  test {test:.3f}  gap {train - test:.3f}")
    return histories


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=Path(os.environ.get("NNSCRATCH_EXAMPLES_DIR", "runs/examples")),
                        help="output directory (default: $NNSCRATCH_EXAMPLES_DIR or runs/examples)")
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("NNSCRATCH_EXAMPLES_QUICK", "") not in ("", "0"),
                        help="shorter trainings (also NNSCRATCH_EXAMPLES_QUICK=1)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    chapter3()
    chapter4()
    data = load_mnist(normalize=True, limit=2000 if args.quick else 10000)
    chapter5(data, args.out, args.quick)
    chapter6(data, args.out, args.quick)
    print(f"\nfigures in {args.out}; took {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
