"""Seconds per training epoch of a 784-100-10 ReLU MLP: nnscratch vs PyTorch vs scikit-learn.

Same task on all sides: the 60,000 MNIST training images (float32 in [0, 1]),
plain SGD with learning rate 0.1, mini-batches of 100 in a fresh random order
every epoch, softmax cross-entropy loss, no momentum, no weight decay.

* **nnscratch**: ``TwoLayerNet(784, 100, 10)`` + ``SGD(lr=0.1)`` through
  ``Trainer`` (its per-epoch evaluation is left out of the time: the clock
  stops at the epoch's last update).
* **PyTorch (CPU)**: ``nn.Sequential(Linear, ReLU, Linear)``,
  ``CrossEntropyLoss``, ``optim.SGD(lr=0.1)``, batches cut from one tensor
  with ``torch.randperm`` (no DataLoader overhead).
* **scikit-learn**: ``MLPClassifier(hidden_layer_sizes=(100,), solver='sgd',
  batch_size=100, learning_rate_init=0.1, momentum=0, nesterovs_momentum=False,
  alpha=0)``; one epoch is one ``partial_fit`` call on the whole set.
* **matmul only**: the five matrix products an epoch needs at least (2 forward,
  3 backward) in NumPy, timed alone: the floor for any NumPy implementation.

Threads: NumPy/scikit-learn BLAS limited with threadpoolctl and
``torch.set_num_threads`` set to the same number (default 1). Each library
trains several epochs, interleaved with the others; medians are reported.
The machine is shared, so single numbers are noisy: compare the ratios.

Usage::

    .bench-venv/bin/python bench/mlp_epoch_speed.py [--epochs 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from nnscratch.datasets import load_mnist
from nnscratch.models import TwoLayerNet
from nnscratch.optimizers import SGD
from nnscratch.training import Trainer

HIDDEN, LR, BATCH = 100, 0.1, 100


class EpochClock:
    """Times each epoch from its start to its last update (evaluation excluded)."""

    def __init__(self):
        self.seconds = []

    def on_epoch_begin(self, trainer, epoch):
        self._start = time.perf_counter()

    def on_batch_end(self, trainer, iteration, loss):
        if trainer.batch_index == trainer.batches_per_epoch:
            self.seconds.append(time.perf_counter() - self._start)


class NnscratchRun:
    name = "nnscratch"

    def __init__(self, x, t, seed):
        self.clock = EpochClock()
        model = TwoLayerNet(784, HIDDEN, 10, weight_init_std=np.sqrt(2 / 784), seed=seed)
        self.trainer = Trainer(model, SGD(lr=LR), x, t, epochs=0, batch_size=BATCH, seed=seed,
                               evaluate_sample_num_per_epoch=1000, callbacks=[self.clock])
        self.x, self.t = x, t

    def epoch(self):
        self.trainer.epochs += 1
        self.trainer.fit()
        return self.clock.seconds[-1]

    def accuracy(self, x, t):
        return self.trainer.evaluate(x, t)["accuracy"]


class TorchRun:
    name = "pytorch"

    def __init__(self, x, t, seed):
        import torch

        self.torch = torch
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(),
                                         torch.nn.Linear(HIDDEN, 10))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.x = torch.from_numpy(x)
        self.t = torch.from_numpy(t.astype(np.int64))

    def epoch(self):
        torch, model, opt, loss_fn = self.torch, self.model, self.opt, self.loss_fn
        start = time.perf_counter()
        perm = torch.randperm(len(self.x))
        for i in range(0, len(self.x), BATCH):
            idx = perm[i:i + BATCH]
            xb, tb = self.x[idx], self.t[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), tb)
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    def accuracy(self, x, t):
        with self.torch.no_grad():
            pred = self.model(self.torch.from_numpy(x)).argmax(1).numpy()
        return float(np.mean(pred == t))


class SklearnRun:
    name = "scikit-learn"

    def __init__(self, x, t, seed):
        from sklearn.neural_network import MLPClassifier

        self.clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="sgd",
                                 batch_size=BATCH, learning_rate_init=LR, momentum=0.0,
                                 nesterovs_momentum=False, alpha=0.0, shuffle=True,
                                 random_state=seed)
        self.x, self.t = x, t
        self.classes = np.arange(10)

    def epoch(self):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.partial_fit(self.x, self.t, classes=self.classes)
        return time.perf_counter() - start

    def accuracy(self, x, t):
        return float(np.mean(self.clf.predict(x) == t))


def matmul_epoch(x, seed):
    """The five GEMMs of an epoch (x@W1, h@W2, dy@W2.T, h.T@dy, x.T@dh), nothing else."""
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((784, HIDDEN), dtype=np.float32)
    W2 = rng.standard_normal((HIDDEN, 10), dtype=np.float32)
    dy = rng.standard_normal((BATCH, 10), dtype=np.float32)
    h = np.empty((BATCH, HIDDEN), np.float32)
    dh = np.empty((BATCH, HIDDEN), np.float32)
    y = np.empty((BATCH, 10), np.float32)
    dW1, dW2 = np.empty_like(W1), np.empty_like(W2)
    batches = [x[i:i + BATCH] for i in range(0, len(x), BATCH)]
    start = time.perf_counter()
    for xb in batches:
        np.matmul(xb, W1, out=h)
        np.matmul(h, W2, out=y)
        np.matmul(dy, W2.T, out=dh)
        np.matmul(h.T, dy, out=dW2)
        np.matmul(xb.T, dh, out=dW1)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per library")
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads on every side")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    (x, t), (x_test, t_test) = load_mnist(normalize=True)
    t = t.astype(np.int64)
    times = {"nnscratch": [], "pytorch": [], "scikit-learn": [], "matmul only": []}
    with threadpool_limits(limits=args.threads):
        runs = [cls(x, t, args.seed) for cls in (NnscratchRun, TorchRun, SklearnRun)]
        for run in runs:  # warm-up epoch (allocations, lazy imports), not timed
            run.epoch()
        matmul_epoch(x, args.seed)
        for epoch in range(args.epochs):
            for run in runs:
                times[run.name].append(run.epoch())
            times["matmul only"].append(matmul_epoch(x, args.seed))
            print(f"epoch {epoch + 2}: " + "  ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()),
                  flush=True)
        accuracy = {run.name: run.accuracy(x_test, t_test) for run in runs}

    from threadpoolctl import threadpool_info

    kernel = ", ".join(sorted({i.get("architecture", "?") for i in threadpool_info() if i["user_api"] == "blas"}))
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"\n784-{HIDDEN}-10 ReLU MLP, SGD lr {LR}, batch {BATCH}, 60,000 samples, float32; "
          f"{args.threads} thread(s) (OpenBLAS kernel {kernel}); median of {args.epochs} epochs after one warm-up")
    print(f"{'':<14} {'s/epoch':>8} {'vs nnscratch':>13} {'test acc after':>15}")
    for name, seconds in med.items():
        acc = f"{accuracy[name]:.4f}" if name in accuracy else ""
        print(f"{name:<14} {seconds:>8.3f} {seconds / med['nnscratch']:>12.2f}x {acc:>15}")
    ratios = [a / b for a, b in zip(times["nnscratch"], times["pytorch"])]
    print(f"\nnnscratch takes {statistics.median(ratios):.2f}x PyTorch's time per epoch (median of the "
          f"paired epochs, {min(ratios):.2f}-{max(ratios):.2f})")
    print(f"nnscratch is {med['pytorch'] / med['nnscratch']:.2f}x PyTorch's speed and "
          f"{med['scikit-learn'] / med['nnscratch']:.2f}x scikit-learn's; the matmuls alone take "
          f"{med['matmul only'] / med['nnscratch']:.0%} of its epoch")


if __name__ == "__main__":
    main()
