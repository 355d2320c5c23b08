"""TwoLayerNet.numerical_gradient (vectorised) against the book's element-by-element loop.

One call on a batch of 100 MNIST training images, TwoLayerNet(784, 50, 10)
in float64 (39,760 parameters, h = 1e-4):

* **book loop**: the book's ``numerical_gradient`` (``np.nditer`` over every
  element, two full forward passes each), reproduced below. Run on a sample
  of the elements (all of b1, W2, b2 and ``--w1-elements`` random elements of
  W1) and extrapolated to all 39,760 elements from the measured seconds per
  element, unless ``--full``.
* **calculus loop**: the generic fallback, ``nnscratch.calculus.numerical_gradient``
  on each parameter (also element by element), timed on b1, W2, b2 and
  extrapolated the same way.
* **vectorised**: ``TwoLayerNet.numerical_gradient``, all elements.

The three are interleaved in ``--runs`` rounds (each round: one vectorised
call, a share of the loop's elements, the calculus loop on b1/W2/b2), and the
ratios are medians over rounds, so a busy machine slows them alike.

Prints seconds, the ratio, and the max abs difference between the
vectorised result and the loop on every element the loop computed (the same
central differences, so they agree to rounding). BLAS threads are limited
with threadpoolctl (same setting for all). Usage::

    .bench-venv/bin/python bench/numerical_gradient.py [--runs 5] [--threads 1] [--full]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from nnscratch.calculus import numerical_gradient as calculus_numerical_gradient
from nnscratch.datasets import load_mnist
from nnscratch.models import TwoLayerNet

H = 1e-4


def book_numerical_gradient(f, x, indices=None, grad=None):
    """The book's common/gradient.py ``numerical_gradient`` (nditer loop).

    ``indices`` limits it to some elements and ``grad`` receives them, so the
    benchmark can run it in interleaved shares.
    """
    grad = np.zeros_like(x) if grad is None else grad
    if indices is None:
        it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
        indices = []
        while not it.finished:
            indices.append(it.multi_index)
            it.iternext()
    for idx in indices:
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + H
        fxh1 = f(x)  # f(x+h)
        x[idx] = tmp_val - H
        fxh2 = f(x)  # f(x-h)
        grad[idx] = (fxh1 - fxh2) / (2 * H)
        x[idx] = tmp_val
    return grad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--w1-elements", type=int, default=3000)
    parser.add_argument("--full", action="store_true", help="run the book loop on every element (~30 s+)")
    args = parser.parse_args()

    (x_train, t_train), _ = load_mnist(normalize=True, limit=1000)
    x, t = x_train[:100].astype(np.float64), t_train[:100]
    net = TwoLayerNet(784, 50, 10, seed=0, dtype="float64")
    total = net.num_params
    loss = lambda _: net.loss(x, t)  # noqa: E731

    # Every loop element, in a fixed random order: all of b1, W2, b2 and a sample of W1
    # (or everything with --full). The rounds interleave the three methods so that load
    # from other processes on the machine hits them alike; ratios are medians over rounds.
    rng = np.random.default_rng(0)
    elements = []
    for name, param in net.params.items():
        flat = np.arange(param.size)
        if name == "W1" and not args.full:
            flat = rng.choice(param.size, size=min(args.w1_elements, param.size), replace=False)
        elements += [(name, np.unravel_index(i, param.shape)) for i in flat]
    rng.shuffle(elements)
    chunks = np.array_split(np.arange(len(elements)), args.runs)

    book = {name: np.full_like(p, np.nan) for name, p in net.params.items()}
    fast_times, book_rates, generic_rates, ratios, generic_ratios = [], [], [], [], []
    with threadpool_limits(limits=args.threads):
        for chunk in chunks:
            start = time.perf_counter()
            fast = net.numerical_gradient(x, t, h=H)
            fast_times.append(time.perf_counter() - start)

            start = time.perf_counter()
            for name in net.params:
                mine = [elements[k][1] for k in chunk if elements[k][0] == name]
                book_numerical_gradient(loss, net.params[name], mine, book[name])
            book_rates.append((time.perf_counter() - start) / len(chunk))

            start = time.perf_counter()
            generic = {name: calculus_numerical_gradient(loss, net.params[name], h=H) for name in ("b1", "W2", "b2")}
            generic_rates.append((time.perf_counter() - start) / sum(net.params[k].size for k in generic))

            ratios.append(book_rates[-1] * total / fast_times[-1])
            generic_ratios.append(generic_rates[-1] * total / fast_times[-1])
    evaluated = len(elements)
    generic_count = sum(net.params[k].size for k in generic)
    fast_s = statistics.median(fast_times)
    book_s = statistics.median(book_rates) * total
    generic_s = statistics.median(generic_rates) * total

    diff_book = max(float(np.nanmax(np.abs(fast[k] - book[k]))) for k in net.params)
    diff_generic = max(float(np.max(np.abs(fast[k] - generic[k]))) for k in generic)
    backprop = net.gradient(x, t)
    diff_backprop = max(float(np.max(np.abs(fast[k] - backprop[k]))) for k in net.params)

    print(f"TwoLayerNet(784, 50, 10) float64, batch 100 MNIST images, {total:,} parameters, h={H}, "
          f"BLAS threads {args.threads}, numpy {np.__version__}")
    how = "all elements" if args.full else f"{evaluated:,} of {total:,} elements, extrapolated"
    print(f"{'method':<34}{'seconds/call':>14}{'slower by':>11}   (median of {args.runs} interleaved rounds)")
    print(f"{'book nditer loop':<34}{book_s:>14.2f}{statistics.median(ratios):>10.1f}x   ({how})")
    print(f"{'calculus.numerical_gradient loop':<34}{generic_s:>14.2f}{statistics.median(generic_ratios):>10.1f}x"
          f"   (b1, W2, b2 each round: {generic_count} elements, extrapolated)")
    print(f"{'TwoLayerNet.numerical_gradient':<34}{fast_s:>14.3f}{1:>10.1f}x   "
          f"(all elements; rounds: {', '.join(f'{s:.3f}' for s in fast_times)})")
    print(f"max |vectorised - book loop|     = {diff_book:.2e}  (over the {evaluated:,} elements the loop computed)")
    print(f"max |vectorised - calculus loop| = {diff_generic:.2e}")
    print(f"max |vectorised - backprop|      = {diff_backprop:.2e}  (central-difference error, ReLU kinks)")


if __name__ == "__main__":
    main()
