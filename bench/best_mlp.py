"""The best fully connected network we found for MNIST within five minutes on two cores.

Configuration (the defaults): ``MultiLayerNet(784, [512, 256], 10)``, ReLU, He
initialisation, dropout 0.2 after each hidden layer, Adam (lr 0.001) with the
learning rate following a cosine from 0.001 down to ~0 over the epochs, batch
100, and every training batch randomly shifted by up to 2 pixels (the
``augment`` hook of ``Trainer`` with ``nnscratch.augment.Augmenter``). The
test set is evaluated after every epoch; nothing is tuned on it except the
choice of this configuration.

A time budget (``--budget``, default 290 s) is enforced by a callback: if the
machine is slower than expected, training stops at the batch where the budget
runs out and the model is evaluated as it is (the report says so).

Usage::

    .bench-venv/bin/python bench/best_mlp.py [--epochs 20] [--threads 1] [--budget 290]
"""

from __future__ import annotations

import argparse
import os
import time


class Budget:
    """Stops training once ``seconds`` have passed since the start of ``fit``."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.hit = False

    def on_train_begin(self, trainer):
        self.start = time.perf_counter()

    def on_batch_end(self, trainer, iteration, loss):
        if time.perf_counter() - self.start > self.seconds:
            self.hit = True
            trainer.request_stop()


class Progress:
    def on_epoch_end(self, trainer, epoch, record):
        print(f"epoch {epoch:2d}/{trainer.epochs}  lr {record['lr']:.2e}  loss {record['train_loss']:.4f}  "
              f"train acc {record['train_acc']:.4f}  test acc {record['test_acc']:.4f}  "
              f"({record['seconds']:.1f} s)", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 256])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dropout", type=float, default=0.2, help="0 disables dropout")
    p.add_argument("--batchnorm", action="store_true")
    p.add_argument("--shift", type=int, default=2, help="random shifts of up to this many pixels")
    p.add_argument("--rotation", type=float, default=0.0, help="random rotations up to this many degrees")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (2 threads on the shared, oversubscribed 2-core machine were ~20x slower)")
    p.add_argument("--budget", type=float, default=290.0, help="seconds of training at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="first N train/test samples (smoke runs)")
    args = p.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    from threadpoolctl import threadpool_limits

    from nnscratch.augment import Augmenter
    from nnscratch.datasets import load_mnist
    from nnscratch.models import MultiLayerNet
    from nnscratch.optimizers import Adam
    from nnscratch.training import CosineDecay, Trainer

    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, limit=args.limit)
    model = MultiLayerNet(784, args.hidden, 10, activation="relu", weight_init_std="he",
                          use_dropout=args.dropout > 0, dropout_ratio=args.dropout or 0.5,
                          use_batchnorm=args.batchnorm, seed=args.seed)

    augment = None
    if args.shift or args.rotation:
        shifter = Augmenter(max_shift=args.shift, rotation=args.rotation)

        def augment(x_batch, rng):  # the MLP sees flat rows; shift them as 28x28 images
            return shifter(x_batch.reshape(-1, 1, 28, 28), rng).reshape(len(x_batch), 784)

    budget = Budget(args.budget)
    trainer = Trainer(model, Adam(lr=args.lr), x_train, t_train, x_test, t_test, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, augment=augment,
                      lr_schedule=CosineDecay(args.lr, args.epochs), evaluate_sample_num_per_epoch=10_000,
                      callbacks=[budget, Progress()])
    print(f"{model!r}\nAdam lr {args.lr} cosine over {args.epochs} epochs, batch {args.batch_size}, "
          f"shift {args.shift}, rotation {args.rotation:g}, {args.threads} BLAS thread(s), budget {args.budget:.0f} s", flush=True)
    with threadpool_limits(limits=args.threads):
        start = time.perf_counter()
        trainer.fit()
        train_seconds = time.perf_counter() - start
        final = trainer.evaluate(x_test, t_test)
    total = time.perf_counter() - start
    stopped = (f"stopped by the time budget after {trainer.iteration} iterations"
               if budget.hit else f"all {args.epochs} epochs")
    print(f"\ntest accuracy {final['accuracy']:.4f} (loss {final['loss']:.4f}); {stopped}; "
          f"training {train_seconds:.0f} s, total {total:.0f} s")


if __name__ == "__main__":
    main()
