"""Fit time and accuracy: nnscratch's NeuralNetClassifier vs scikit-learn's MLPClassifier.

Both estimators get the same problem and the same hyper-parameters: one
hidden layer of 100 ReLU units, Adam with learning rate 0.001, mini-batches of
200 reshuffled every epoch, L2 penalty ``alpha=1e-4`` (MLPClassifier's
scaling, which NeuralNetClassifier follows), and a fixed number of epochs
(``n_iter_no_change`` larger than ``max_iter`` and ``tol=0``, so neither stops
early). Both get the same input array, in two rounds:

* **float64** input, as scikit-learn's loaders give it (``load_digits``,
  ``fetch_openml``): MLPClassifier computes in float64, NeuralNetClassifier
  converts once and trains in float32 (its design: float32 for training speed);
* **float32** input: both compute in float32 -- the same arithmetic, so this
  round compares the implementations alone.

Datasets:

* **digits**: scikit-learn's 8x8 UCI digits (1,797 images, pixel values / 16),
  a stratified 75/25 split;
* **mnist**: the 60,000 MNIST training images and the 10,000 test images
  (``nnscratch.load_mnist``), or the first ``--mnist-limit`` training images.

BLAS runs on ``--threads`` threads (default 1) on both sides, set with
threadpoolctl. The fits alternate (nnscratch, scikit-learn, scikit-learn,
nnscratch, ...) in one process after a warm-up fit of each, and every repeat
uses a new ``random_state``; the table gives the median fit time (wall clock and
this process's CPU time: with one BLAS thread the CPU time is the work done,
steadier than the wall clock on a shared machine), the ratios of the medians,
and the mean test accuracy over the seeds. Digits train for 200 epochs by
default (MLPClassifier's ``max_iter``), MNIST for 5. The machine may be shared, so read the ratios, not single times.

Usage::

    .venv/bin/python bench/sklearn_estimator.py [--digits-repeats 20] [--mnist-repeats 3] [--digits-epochs 200]
        [--mnist-epochs 5] [--mnist-limit N] [--threads 1] [--dtype both|float64|float32]
        [--only digits|mnist]

Target of issue 12: at least as accurate as MLPClassifier, in at most 0.7x its fit time.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from nnscratch.datasets import load_mnist
from nnscratch.sklearn import NeuralNetClassifier

COMMON = dict(hidden_layer_sizes=(100,), activation="relu", solver="adam", alpha=1e-4,
              batch_size=200, learning_rate_init=0.001, shuffle=True, tol=0.0)


def make_estimators(epochs: int, seed: int):
    params = dict(COMMON, max_iter=epochs, n_iter_no_change=epochs + 1, random_state=seed)
    return {"nnscratch": NeuralNetClassifier(**params), "scikit-learn": MLPClassifier(**params)}


def load(name: str, dtype, mnist_limit):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X / 16.0, y, test_size=0.25, stratify=y, random_state=0)
    else:
        (X_train, y_train), (X_test, y_test) = load_mnist(normalize=True, flatten=True,
                                                          limit=mnist_limit)
    return (X_train.astype(dtype), y_train, X_test.astype(dtype), y_test)


def bench(name, data, epochs, repeats):
    X_train, y_train, X_test, y_test = data
    times = {"nnscratch": [], "scikit-learn": []}
    cpu = {"nnscratch": [], "scikit-learn": []}
    accuracy = {"nnscratch": [], "scikit-learn": []}
    for estimator in make_estimators(1, 0).values():  # warm-up: imports, BLAS buffers
        estimator.fit(X_train[:500], y_train[:500])
    for repeat in range(repeats):
        estimators = make_estimators(epochs, seed=repeat)
        order = list(estimators) if repeat % 2 == 0 else list(reversed(list(estimators)))
        for label in order:
            estimator = estimators[label]
            start, start_cpu = time.perf_counter(), time.process_time()
            estimator.fit(X_train, y_train)
            times[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - start_cpu)
            assert estimator.n_iter_ == epochs, (label, estimator.n_iter_)
            accuracy[label].append(estimator.score(X_test, y_test))
            print(f"  {name} repeat {repeat + 1}: {label:12s} {times[label][-1]:7.2f} s "
                  f"({cpu[label][-1]:6.2f} s CPU)  "
                  f"test accuracy {accuracy[label][-1]:.4f}", flush=True)
    return {label: (statistics.median(times[label]), statistics.median(cpu[label]),
                    statistics.mean(accuracy[label]),
                    min(accuracy[label]), max(accuracy[label])) for label in times}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits-repeats", type=int, default=20)
    parser.add_argument("--mnist-repeats", type=int, default=3)
    parser.add_argument("--digits-epochs", type=int, default=200)
    parser.add_argument("--mnist-epochs", type=int, default=5)
    parser.add_argument("--mnist-limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=("both", "float64", "float32"), default="both")
    parser.add_argument("--only", choices=("digits", "mnist"), default=None)
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore", ConvergenceWarning)
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    rows = []
    with threadpool_limits(limits=args.threads):
        for name, epochs, repeats in (("digits", args.digits_epochs, args.digits_repeats),
                                      ("mnist", args.mnist_epochs, args.mnist_repeats)):
            if args.only and name != args.only:
                continue
            for dtype in dtypes:
                data = load(name, np.dtype(dtype), args.mnist_limit)
                print(f"{name}: {len(data[0]):,} training and {len(data[2]):,} test samples, "
                      f"{data[0].shape[1]} features, {epochs} epochs, {dtype} input, "
                      f"{args.threads} BLAS thread(s)", flush=True)
                rows.append((name, dtype, epochs, repeats, bench(name, data, epochs, repeats)))

    print("\nfit time: median of the repeats, wall clock and CPU time of this process (with one BLAS "
          "thread the CPU time is the work done, whatever else the machine runs); test accuracy: mean over "
          "the repeats' random_state. Hidden (100,), adam lr 0.001, batch 200, alpha 1e-4.")
    print(f"{'dataset':8s} {'input':8s} {'epochs':>6s} {'fits':>5s} {'nnscratch s':>12s} {'sklearn s':>10s} "
          f"{'wall ratio':>10s} {'CPU ratio':>10s} {'nnscratch acc':>14s} {'sklearn acc':>12s}")
    for name, dtype, epochs, repeats, result in rows:
        (t_ours, c_ours, a_ours, lo_ours, hi_ours) = result["nnscratch"]
        (t_sk, c_sk, a_sk, lo_sk, hi_sk) = result["scikit-learn"]
        print(f"{name:8s} {dtype:8s} {epochs:6d} {repeats:5d} {t_ours:12.3f} {t_sk:10.3f} "
              f"{t_ours / t_sk:9.2f}x {c_ours / c_sk:9.2f}x {a_ours:14.4f} {a_sk:12.4f}   "
              f"(ranges {lo_ours:.4f}-{hi_ours:.4f} vs {lo_sk:.4f}-{hi_sk:.4f})")
    print("target: time ratio <= 0.70x and accuracy at least MLPClassifier's")


if __name__ == "__main__":
    main()
