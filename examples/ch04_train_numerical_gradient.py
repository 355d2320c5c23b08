"""Chapter 4.5: train TwoLayerNet with numerical gradients -- the run the seeds could not finish.

The book's ``ch04/train_neuralnet.py`` trains ``TwoLayerNet(784, 50, 10)``
(sigmoid hidden layer) with ``network.numerical_gradient(x_batch, t_batch)``,
SGD lr 0.1 and mini-batches of 100. With the book's element-by-element loop one
call takes about half a minute, so 10,000 iterations would take days.
``TwoLayerNet.numerical_gradient`` returns the same central differences
(h = 1e-4) in about a tenth of a second, so here the training runs while you
watch. A twin network trained by backpropagation on the same batches shows
that both follow the same path: their weights differ only by the
central-difference error.

Run::

    python examples/ch04_train_numerical_gradient.py [--iters 100]
"""

import argparse
import os
import time

# One BLAS thread unless you chose otherwise (before NumPy loads), as `nnscratch` does:
# on a busy 2-core machine a second OpenBLAS thread's spin-waiting doubled the time of
# a step (0.21-0.27 s against 0.10 s).
if not any(name in os.environ for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")):
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

from nnscratch import SGD, TwoLayerNet, load_mnist  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=100, help="training iterations (default 100)")
    parser.add_argument("--report-every", type=int, default=10)
    args = parser.parse_args(argv)

    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
    kwargs = dict(input_size=784, hidden_size=50, output_size=10, activation="sigmoid", seed=0)
    numerical_net = TwoLayerNet(**kwargs)
    backprop_net = TwoLayerNet(**kwargs)
    numerical_sgd, backprop_sgd = SGD(lr=0.1), SGD(lr=0.1)
    rng = np.random.default_rng(0)

    print(f"TwoLayerNet(784, 50, 10, sigmoid), SGD lr=0.1, batch 100, {args.iters} iterations")
    print(f"{'iter':>5} {'loss (numerical)':>17} {'loss (backprop)':>16} {'max |W1 diff|':>14} {'s/iter':>7}")
    seconds = 0.0
    for i in range(1, args.iters + 1):
        batch = rng.choice(len(x_train), 100)  # the book's np.random.choice
        x_batch, t_batch = x_train[batch], t_train[batch]
        start = time.perf_counter()
        grads = numerical_net.numerical_gradient(x_batch, t_batch)
        seconds += time.perf_counter() - start
        numerical_sgd.update(numerical_net.params, grads)
        backprop_sgd.update(backprop_net.params, backprop_net.gradient(x_batch, t_batch))
        if i % args.report_every == 0 or i == args.iters:
            diff = float(np.max(np.abs(numerical_net.params["W1"] - backprop_net.params["W1"])))
            print(f"{i:>5} {numerical_net.loss(x_batch, t_batch):>17.6f} "
                  f"{backprop_net.loss(x_batch, t_batch):>16.6f} {diff:>14.2e} {seconds / i:>7.3f}")
    print(f"test accuracy after {args.iters} iterations: numerical {numerical_net.accuracy(x_test, t_test):.4f}, "
          f"backprop {backprop_net.accuracy(x_test, t_test):.4f}")
    print(f"numerical_gradient: {seconds / args.iters:.3f} s per call on a batch of 100")


if __name__ == "__main__":
    main()
