"""The training loop: mini-batches, epochs, metrics, callbacks and exact resumption.

``Trainer`` is the book's ``common/trainer.py`` grown up: it shuffles the
training set once per epoch (a ``numpy.random.Generator`` seeded by ``seed``),
runs ``model.loss_and_gradient`` and ``optimizer.update`` on every
mini-batch, records the loss of every iteration and the train/test accuracy of
every epoch, and can stop and resume bit-exactly in the middle of an epoch::

    from nnscratch import TwoLayerNet, SGD, Trainer, load_mnist

    (x_train, t_train), (x_test, t_test) = load_mnist()
    net = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)
    trainer = Trainer(net, SGD(lr=0.1), x_train, t_train, x_test, t_test, epochs=17)
    history = trainer.fit()
    history.test_acc_list[-1]   # ~0.97

Callbacks are plain objects with any of these methods (all optional)::

    on_train_begin(trainer)
    on_epoch_begin(trainer, epoch)            # epoch counts from 1; also on resuming mid-epoch
    on_batch_end(trainer, iteration, loss)    # iteration: updates done so far (1, 2, ...)
    on_epoch_end(trainer, epoch, record)      # record: the epoch's dict in history.epochs
    on_train_end(trainer)                     # also after an interruption

``trainer.request_stop()`` (e.g. from a SIGINT handler) makes ``fit()``
return at the next batch boundary with ``trainer.interrupted = True``; then
``trainer.state_dict()`` holds everything needed to continue later with
``load_state_dict()`` and ``fit()`` on a fresh model, optimizer and trainer.

This module never imports ``io``: checkpoints are written by the caller, e.g.
from an ``on_epoch_end`` callback, with :func:`nnscratch.io.save_checkpoint`.
"""

from __future__ import annotations

import contextlib
import csv
import io as _stdio
import math
import os
import signal
import sys
import threading
import time
from numbers import Integral

import numpy as np

from .errors import ConfigError, ShapeError, TrainingDivergedError
from .functions import log_softmax
from .optimizers import Optimizer, build_optimizer

__all__ = ["Trainer", "History", "Callback", "StepDecay", "CosineDecay", "ExplosionGuard", "StopOnSignal",
           "STATE_VERSION"]

STATE_VERSION = 1

EPOCH_FIELDS = ("epoch", "iterations", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
                "seconds")


class Callback:
    """Optional base class documenting the hooks; any object with some of them works."""

    def on_train_begin(self, trainer): ...

    def on_epoch_begin(self, trainer, epoch): ...

    def on_batch_end(self, trainer, iteration, loss): ...

    def on_epoch_end(self, trainer, epoch, record): ...

    def on_train_end(self, trainer): ...


class StepDecay:
    """Learning-rate schedule ``lr * gamma ** ((epoch - 1) // step)`` (epochs count from 1).

    Parameters
    ----------
    lr : float
        Learning rate of the first ``step`` epochs.
    step : int, default 10
        Number of epochs between two decays.
    gamma : float, default 0.5
        Factor applied at each decay, in (0, 1].
    """

    def __init__(self, lr: float, step: int = 10, gamma: float = 0.5):
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ConfigError(f"StepDecay lr must be a finite number > 0, got {lr!r}")
        if isinstance(step, bool) or not isinstance(step, Integral) or step < 1:
            raise ConfigError(f"StepDecay step must be an integer >= 1, got {step!r}")
        if not isinstance(gamma, (int, float)) or not 0 < gamma <= 1:
            raise ConfigError(f"StepDecay gamma must be in (0, 1], got {gamma!r}")
        self.lr, self.step, self.gamma = float(lr), int(step), float(gamma)

    @property
    def config(self) -> dict:
        return {"lr": self.lr, "step": self.step, "gamma": self.gamma}

    def __call__(self, epoch: int) -> float:
        return self.lr * self.gamma ** ((epoch - 1) // self.step)

    def __repr__(self):
        return f"StepDecay(lr={self.lr}, step={self.step}, gamma={self.gamma})"


class CosineDecay:
    """Learning-rate schedule ``min_lr + (lr - min_lr) * (1 + cos(pi * (epoch - 1) / epochs)) / 2``.

    Starts at ``lr`` in epoch 1 and falls smoothly towards ``min_lr`` (reached
    one epoch after the last). Epochs count from 1.

    Parameters
    ----------
    lr : float
        Learning rate of the first epoch.
    epochs : int
        Length of the schedule (usually the Trainer's ``epochs``).
    min_lr : float, default 0
    """

    def __init__(self, lr: float, epochs: int, min_lr: float = 0.0):
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ConfigError(f"CosineDecay lr must be a finite number > 0, got {lr!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, Integral) or epochs < 1:
            raise ConfigError(f"CosineDecay epochs must be an integer >= 1, got {epochs!r}")
        if not isinstance(min_lr, (int, float)) or not 0 <= min_lr < lr:
            raise ConfigError(f"CosineDecay min_lr must be in [0, lr), got {min_lr!r}")
        self.lr, self.epochs, self.min_lr = float(lr), int(epochs), float(min_lr)

    @property
    def config(self) -> dict:
        return {"lr": self.lr, "epochs": self.epochs, "min_lr": self.min_lr}

    def __call__(self, epoch: int) -> float:
        progress = min(epoch - 1, self.epochs) / self.epochs
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def __repr__(self):
        return f"CosineDecay(lr={self.lr}, epochs={self.epochs}, min_lr={self.min_lr})"


class History:
    """What training recorded.

    Attributes
    ----------
    train_loss_list : list of float
        Mini-batch loss of every iteration (the book's ``train_loss_list``).
    epochs : list of dict
        One record per finished epoch with keys ``EPOCH_FIELDS``: ``epoch``
        (from 1), ``iterations`` (updates so far), ``lr``, ``train_loss``
        (mean mini-batch loss of the epoch), ``train_acc`` (on the training
        set or its first ``evaluate_sample_num_per_epoch`` samples),
        ``test_loss`` and ``test_acc`` (None without test data) and
        ``seconds`` (wall time of the epoch, evaluation included).
    """

    def __init__(self, train_loss_list=None, epochs=None):
        self.train_loss_list: list[float] = [float(v) for v in (train_loss_list or [])]
        self.epochs: list[dict] = [dict(r) for r in (epochs or [])]

    # The book's per-epoch lists.
    @property
    def train_acc_list(self) -> list[float]:
        return [r["train_acc"] for r in self.epochs]

    @property
    def test_acc_list(self) -> list:
        return [r["test_acc"] for r in self.epochs]

    @property
    def test_loss_list(self) -> list:
        return [r["test_loss"] for r in self.epochs]

    @property
    def epoch_seconds(self) -> list[float]:
        return [r["seconds"] for r in self.epochs]

    def __len__(self):
        return len(self.epochs)

    def __repr__(self):
        last = self.epochs[-1] if self.epochs else {}
        return (f"History(epochs={len(self.epochs)}, iterations={len(self.train_loss_list)}, "
                f"last={last})")

    def __eq__(self, other):
        if not isinstance(other, History):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def to_dict(self) -> dict:
        """JSON-able dict: ``{"train_loss": [...], "epochs": [{...}, ...]}``."""
        return {"train_loss": list(self.train_loss_list), "epochs": [dict(r) for r in self.epochs]}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        """Inverse of ``to_dict`` (also accepts arrays for ``train_loss``)."""
        if not isinstance(data, dict) or "train_loss" not in data or "epochs" not in data:
            raise ConfigError("history must be a dict with 'train_loss' and 'epochs', "
                              f"got {type(data).__name__} {sorted(data) if isinstance(data, dict) else ''}")
        epochs = []
        for record in data["epochs"]:
            if not isinstance(record, dict) or "epoch" not in record:
                raise ConfigError(f"history epoch record must be a dict with 'epoch', got {record!r}")
            epochs.append({key: record.get(key) for key in EPOCH_FIELDS})
        return cls(np.asarray(data["train_loss"], dtype=float).tolist(), epochs)

    def to_csv(self, path_or_file, per: str = "epoch") -> None:
        """Write the per-epoch records (``per='epoch'``) or the per-iteration losses
        (``per='iteration'``, columns ``iteration,loss``) as CSV.

        Parameters
        ----------
        path_or_file : str, os.PathLike or text file object
        per : {'epoch', 'iteration'}
        """
        if per not in ("epoch", "iteration"):
            raise ConfigError(f"per must be 'epoch' or 'iteration', got {per!r}")
        if isinstance(path_or_file, (str, os.PathLike)):
            with open(path_or_file, "w", newline="", encoding="utf-8") as fh:
                self._write_csv(fh, per)
        else:
            self._write_csv(path_or_file, per)

    def _write_csv(self, fh, per):
        writer = csv.writer(fh, lineterminator="\n")
        if per == "epoch":
            writer.writerow(EPOCH_FIELDS)
            for r in self.epochs:
                writer.writerow(["" if r.get(k) is None else r.get(k) for k in EPOCH_FIELDS])
        else:
            writer.writerow(("iteration", "loss"))
            writer.writerows((i, loss) for i, loss in enumerate(self.train_loss_list, start=1))

    def to_csv_string(self, per: str = "epoch") -> str:
        buf = _stdio.StringIO()
        self._write_csv(buf, per)
        return buf.getvalue()


def _labels(t: np.ndarray) -> np.ndarray:
    return t.argmax(axis=1) if t.ndim == 2 else t


def _model_rng_state(model) -> dict:
    """States of the random generators inside the model (Dropout masks), JSON-able."""
    getter = getattr(model, "get_rng_state", None)
    return _copy_plain(getter()) if getter is not None else {}


class Trainer:
    """Mini-batch training of a model with an optimizer (the book's ``Trainer``).

    Parameters
    ----------
    model : Model
        Has ``params``, ``loss_and_gradient(x, t)``, ``predict(x, train_flg)``
        and optionally ``buffers`` (see docs/architecture.md).
    optimizer : Optimizer or str
        An optimizer object, or a name from ``nnscratch.optimizers.OPTIMIZERS``
        (built with ``optimizer_param``, like the book's
        ``Trainer(..., optimizer='Adam', optimizer_param={'lr': 0.001})``).
    x_train : ndarray of shape (N, ...)
        Training inputs, e.g. (N, 784) or (N, 1, 28, 28). Converted once to
        the dtype of the model's parameters (float32 by default).
    t_train : ndarray of shape (N,) or (N, C)
        Integer labels or one-hot targets.
    x_test, t_test : ndarray, optional
        Test set evaluated after every epoch (both or neither).
    epochs : int, default 20
    batch_size : int, default 100
    seed : int, default 0
        Seeds the Generator that shuffles every epoch and feeds ``augment``.
    evaluate_sample_num_per_epoch : int, optional
        Measure train accuracy on the first this-many training samples only
        (as the book); the test set is always evaluated whole.
    shuffle : bool, default True
        Draw a new order of the training set every epoch; False keeps the given order.
    augment : callable, optional
        ``augment(x_batch, rng) -> x_batch``, applied to every training batch
        with the trainer's Generator (so resuming stays exact).
    callbacks : sequence of objects
        See the module docstring for the hooks.
    lr_schedule : callable, optional
        ``lr_schedule(epoch) -> lr`` (epochs from 1), applied at the start of
        every epoch by setting ``optimizer.lr``; e.g. :class:`StepDecay`.
    drop_last : bool, default False
        Skip the last, smaller batch when ``batch_size`` does not divide N.
    verbose : bool, default False
        Print one line per epoch.
    eval_batch_size : int, default 1000
        Batch size of the evaluation passes (memory only; results do not depend on it).
    optimizer_param : dict, optional
        Constructor arguments when ``optimizer`` is a name.

    Attributes
    ----------
    history : History
    epoch : int
        Finished epochs (the book's ``current_epoch``).
    batch_index : int
        Batches done within the current epoch.
    iteration : int
        Updates done in total (the book's ``current_iter``).
    interrupted : bool
        True when the last ``fit()`` returned because of ``request_stop()``.
    """

    def __init__(self, model, optimizer, x_train, t_train, x_test=None, t_test=None, *,
                 epochs: int = 20, batch_size: int = 100, seed: int = 0,
                 evaluate_sample_num_per_epoch: int | None = None, augment=None, shuffle: bool = True,
                 callbacks=(), lr_schedule=None, drop_last: bool = False,
                 verbose: bool = False, eval_batch_size: int = 1000, optimizer_param: dict | None = None):
        if not getattr(model, "params", None) or not hasattr(model, "loss_and_gradient"):
            raise ConfigError(f"model must have params and loss_and_gradient(x, t), "
                              f"got {type(model).__name__}")
        if isinstance(optimizer, str):
            optimizer = build_optimizer(optimizer, **(optimizer_param or {}))
        elif optimizer_param:
            raise ConfigError("optimizer_param only applies when optimizer is given by name")
        if not hasattr(optimizer, "update"):
            raise ConfigError(f"optimizer must be an Optimizer or a name, got {optimizer!r}")
        self.model = model
        self.optimizer: Optimizer = optimizer
        self.dtype = next(iter(model.params.values())).dtype

        self.x_train, self.t_train = self._check_data(x_train, t_train, "x_train", "t_train")
        if (x_test is None) != (t_test is None):
            raise ConfigError("give both x_test and t_test, or neither")
        if x_test is not None:
            self.x_test, self.t_test = self._check_data(x_test, t_test, "x_test", "t_test")
            if self.x_test.shape[1:] != self.x_train.shape[1:]:
                raise ShapeError(f"x_test samples must have shape {self.x_train.shape[1:]} like "
                                 f"x_train's, got {self.x_test.shape[1:]}")
        else:
            self.x_test = self.t_test = None

        self.epochs = _check_int("epochs", epochs, minimum=0)
        self.batch_size = _check_int("batch_size", batch_size, minimum=1)
        self.seed = _check_int("seed", seed, minimum=0)
        self.eval_batch_size = _check_int("eval_batch_size", eval_batch_size, minimum=1)
        if evaluate_sample_num_per_epoch is not None:
            evaluate_sample_num_per_epoch = _check_int(
                "evaluate_sample_num_per_epoch", evaluate_sample_num_per_epoch, minimum=1)
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        for name, fn in (("augment", augment), ("lr_schedule", lr_schedule)):
            if fn is not None and not callable(fn):
                raise ConfigError(f"{name} must be callable or None, got {fn!r}")
        self.augment = augment
        self.shuffle = bool(shuffle)
        self.lr_schedule = lr_schedule
        self.callbacks = list(callbacks)
        self.drop_last = bool(drop_last)
        self.verbose = bool(verbose)

        n = len(self.x_train)
        self.batches_per_epoch = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batches_per_epoch == 0:
            raise ConfigError(f"batch_size={self.batch_size} with drop_last=True leaves no batch "
                              f"from {n} training samples")

        self.history = History()
        self.epoch = 0
        self.batch_index = 0
        self.iteration = 0
        self.interrupted = False
        self._rng = np.random.default_rng(self.seed)
        self._permutation: np.ndarray | None = None
        self._epoch_seconds = 0.0  # time spent in the current, unfinished epoch
        self._stop_requested = False
        self._batch_buffer: np.ndarray | None = None

    # -- book-style aliases -------------------------------------------------
    @property
    def current_epoch(self) -> int:
        return self.epoch

    @property
    def current_iter(self) -> int:
        return self.iteration

    @property
    def iter_per_epoch(self) -> int:
        return self.batches_per_epoch

    @property
    def max_iter(self) -> int:
        return self.epochs * self.batches_per_epoch

    @property
    def rng(self) -> np.random.Generator:
        """The Generator that shuffles and augments (its state is part of ``state_dict``)."""
        return self._rng

    def _check_data(self, x, t, x_name, t_name):
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            raise ShapeError(f"{x_name} must be an ndarray of shape (N, features...), "
                             f"got {type(x).__name__} {getattr(x, 'shape', '')}")
        if not isinstance(t, np.ndarray) or t.ndim not in (1, 2):
            raise ShapeError(f"{t_name} must be labels of shape (N,) or one-hot (N, C), "
                             f"got {type(t).__name__} {getattr(t, 'shape', '')}")
        if len(x) == 0 or len(t) != len(x):
            raise ShapeError(f"{x_name} and {t_name} must hold the same number (> 0) of samples, "
                             f"got {len(x)} and {len(t)}")
        if x.dtype.kind != "f":
            raise ShapeError(f"{x_name} must be floating point, got dtype {x.dtype} (scale raw pixels "
                             f"to [0, 1], e.g. load_mnist(normalize=True))")
        if t.ndim == 1 and not np.issubdtype(t.dtype, np.integer):
            raise ShapeError(f"{t_name} labels must be integers, got dtype {t.dtype}")
        # Aligned memory: NumPy hands misaligned arrays (e.g. some deserialised buffers)
        # to slow loops instead of BLAS.
        x = np.require(np.asarray(x, dtype=self.dtype), requirements="A")
        # Bad data would otherwise surface as a "diverged" loss blamed on the learning rate.
        bad = np.size(x) - int(np.count_nonzero(np.isfinite(x)))
        if bad:
            raise ShapeError(f"{x_name} holds {bad:,} NaN or infinite values; clean the data "
                             f"before training (this is not a learning-rate problem)")
        return x, t

    # -- control --------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask ``fit()`` to return at the next batch boundary (safe from a signal handler)."""
        self._stop_requested = True

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            method = getattr(cb, hook, None)
            if method is not None:
                method(self, *args)

    # -- the loop ---------------------------------------------------------------
    def fit(self) -> History:
        """Train until ``epochs`` epochs are done (or a stop is requested); return the history.

        Calling ``fit()`` again after an interruption, or after
        ``load_state_dict()``, continues where training stopped.

        Raises
        ------
        TrainingDivergedError
            If a mini-batch loss or gradient is NaN or infinite. Raised before
            that update is applied: the model keeps its last finite parameters.
        """
        self._stop_requested = False
        self.interrupted = False
        self._call("on_train_begin")
        try:
            while self.epoch < self.epochs:
                if self._stop_requested:
                    self.interrupted = True
                    break
                self._run_epoch()
                if self.interrupted:
                    break
        finally:
            self._call("on_train_end")
        if self.verbose and not self.interrupted and self.history.epochs:
            last = self.history.epochs[-1]
            if last["test_acc"] is not None:
                print(f"=============== Final Test Accuracy ===============\ntest acc: {last['test_acc']:.4f}")
        return self.history

    train = fit  # the book's name

    def _run_epoch(self) -> None:
        epoch_number = self.epoch + 1
        if self._permutation is None:
            self._permutation = (self._rng.permutation(len(self.x_train)) if self.shuffle
                                 else np.arange(len(self.x_train)))
            self.batch_index = 0
            self._epoch_seconds = 0.0
        if self.lr_schedule is not None:
            self.optimizer.lr = self.lr_schedule(epoch_number)
        self._call("on_epoch_begin", epoch_number)

        started = time.perf_counter()
        model, optimizer, params = self.model, self.optimizer, self.model.params
        losses = self.history.train_loss_list
        while self.batch_index < self.batches_per_epoch:
            if self._stop_requested:
                self.interrupted = True
                self._epoch_seconds += time.perf_counter() - started
                return
            x_batch, t_batch = self._batch(self.batch_index)
            if self.augment is not None:
                x_batch = self.augment(x_batch, self._rng)
            loss, grads = model.loss_and_gradient(x_batch, t_batch)
            loss = float(loss)
            self._check_finite(loss, grads)
            optimizer.update(params, grads)
            self.batch_index += 1
            self.iteration += 1
            losses.append(loss)
            self._call("on_batch_end", self.iteration, loss)

        epoch_losses = losses[len(losses) - self.batch_index:]
        record = {"epoch": epoch_number, "iterations": self.iteration, "lr": float(optimizer.lr),
                  "train_loss": float(np.mean(epoch_losses))}
        x_eval, t_eval = self.x_train, self.t_train
        if self.evaluate_sample_num_per_epoch is not None:
            x_eval = x_eval[:self.evaluate_sample_num_per_epoch]
            t_eval = t_eval[:self.evaluate_sample_num_per_epoch]
        record["train_acc"] = self.evaluate(x_eval, t_eval, with_loss=False)["accuracy"]
        if self.x_test is not None:
            test = self.evaluate(self.x_test, self.t_test)
            record["test_loss"], record["test_acc"] = test["loss"], test["accuracy"]
        else:
            record["test_loss"] = record["test_acc"] = None
        record["seconds"] = self._epoch_seconds + time.perf_counter() - started
        record = {key: record[key] for key in EPOCH_FIELDS}

        self.history.epochs.append(record)
        self.epoch = epoch_number
        self.batch_index = 0
        self._permutation = None
        self._epoch_seconds = 0.0
        if self.verbose:
            test = "" if record["test_acc"] is None else \
                f", test loss {record['test_loss']:.4f} acc {record['test_acc']:.4f}"
            print(f"epoch {epoch_number}/{self.epochs}: train loss {record['train_loss']:.4f} "
                  f"acc {record['train_acc']:.4f}{test} ({record['seconds']:.1f} s)", flush=True)
        self._call("on_epoch_end", epoch_number, record)

    def _batch(self, index: int):
        start = index * self.batch_size
        idx = self._permutation[start:start + self.batch_size]
        if len(idx) == self.batch_size and self.augment is None:
            # Gather into one reused array instead of allocating a batch every step.
            buf = self._batch_buffer
            if buf is None:
                buf = self._batch_buffer = np.empty(
                    (self.batch_size,) + self.x_train.shape[1:], dtype=self.x_train.dtype)
            x_batch = np.take(self.x_train, idx, axis=0, out=buf, mode="clip")
        else:
            x_batch = self.x_train[idx]
        return x_batch, self.t_train[idx]

    def _check_finite(self, loss: float, grads: dict) -> None:
        bad = None
        if not math.isfinite(loss):
            bad = f"the loss became {loss}"
        else:
            # One reduction per array, added up in Python floats (double: no overflow from
            # float32 sums): a NaN or inf anywhere makes the total non-finite. A dot product
            # with ones is the sum on BLAS: ~5x faster than g.sum().
            ones = getattr(self, "_finite_check_ones", None)
            total = 0.0
            with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: the error below says it
                for g in grads.values():
                    flat = g.reshape(-1)
                    if ones is None or ones.size < flat.size or ones.dtype != flat.dtype:
                        ones = self._finite_check_ones = np.ones(
                            max(flat.size, 1 if ones is None else ones.size), dtype=flat.dtype)
                    total += float(flat @ ones[:flat.size])
                if not math.isfinite(total):  # rare: name the first offending array
                    for key, g in grads.items():
                        if not math.isfinite(float(g.reshape(-1) @ ones[:g.size])):
                            bad = f"the gradient of {key!r} is not finite (loss {loss:.4g})"
                            break
        if bad is not None:
            lr = self.optimizer.lr
            raise TrainingDivergedError(
                f"training diverged: {bad} at epoch {self.epoch + 1}, iteration {self.iteration + 1} "
                f"with learning rate lr={lr:g} ({type(self.optimizer).__name__}). The update was not "
                f"applied; the model keeps its last finite parameters. Try a smaller learning rate, "
                f"e.g. lr={lr / 10:g}.")

    # -- evaluation -------------------------------------------------------------
    def evaluate(self, x: np.ndarray, t: np.ndarray, *, with_loss: bool = True) -> dict:
        """Accuracy and mean data loss (no regularisation) of the model on ``(x, t)``.

        The loss is the softmax cross-entropy of the scores, or the model's own
        cost (``model.data_loss``) when its outputs are not logits.
        ``with_loss=False`` skips it (``"loss"`` is then None): the per-epoch
        training-set accuracy needs none, and on 60,000 images it costs time.

        Runs ``model.predict(x, train_flg=False)`` in batches of
        ``eval_batch_size``. Returns ``{"accuracy": float, "loss": float | None}``.
        """
        labels = _labels(t)
        loss_from_scores = with_loss and getattr(self.model, "scores_are_logits", True)
        correct = 0
        loss_sum = 0.0
        for start in range(0, len(x), self.eval_batch_size):
            scores = self.model.predict(x[start:start + self.eval_batch_size], train_flg=False)
            lab = labels[start:start + self.eval_batch_size]
            correct += int(np.count_nonzero(scores.argmax(axis=1) == lab))
            if loss_from_scores:  # the same pass gives the loss: float64 for an exact sum
                log_p = log_softmax(scores.astype(np.float64))
                loss_sum -= float(np.sum(log_p[np.arange(len(lab)), lab]))
        if not with_loss:
            loss = None
        elif loss_from_scores:
            loss = loss_sum / len(x)
        else:  # e.g. Nielsen's quadratic cost on sigmoid outputs: the model's own cost
            loss = self.model.data_loss(x, t, batch_size=self.eval_batch_size)
        return {"accuracy": correct / len(x), "loss": loss}

    # -- checkpoints --------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume bit-exactly, as plain data (copies).

        Layout (arrays are ndarrays, everything else JSON-able)::

            {"version": 1,
             "settings": {"epochs", "batch_size", "seed", "n_train", "drop_last",
                          "evaluate_sample_num_per_epoch"},
             "epoch": int,              # finished epochs
             "batch_index": int,        # batches done in the current epoch
             "iteration": int,          # updates done in total
             "permutation": int64 array (N,) or None (None between epochs),
             "epoch_seconds": float,    # time already spent in the current epoch
             "rng": dict,               # Generator.bit_generator.state (big Python ints)
             "model_rng": dict,         # model.get_rng_state(): Generators inside layers (Dropout)
             "model": {"params": {name: array}, "buffers": {name: array}},
             "optimizer": optimizer.state_dict(),
             "history": history.to_dict()}
        """
        permutation = None if self._permutation is None else self._permutation.copy()
        return {
            "version": STATE_VERSION,
            "settings": {"epochs": self.epochs, "batch_size": self.batch_size, "seed": self.seed,
                         "n_train": len(self.x_train), "drop_last": self.drop_last,
                         "evaluate_sample_num_per_epoch": self.evaluate_sample_num_per_epoch},
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "iteration": self.iteration,
            "permutation": permutation,
            "epoch_seconds": self._epoch_seconds,
            "rng": _copy_plain(self._rng.bit_generator.state),
            "model_rng": _model_rng_state(self.model),
            "model": {
                "params": {k: v.copy() for k, v in self.model.params.items()},
                "buffers": {k: v.copy() for k, v in (getattr(self.model, "buffers", None) or {}).items()},
            },
            "optimizer": self.optimizer.state_dict(),
            "history": self.history.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output into this trainer, its model and its optimizer.

        The trainer must have been built with the same training set size and
        batch size; ``epochs`` may differ (to train longer than planned).
        Model arrays are copied into the existing arrays (layers keep sharing them).

        Raises
        ------
        ConfigError
            If the state is malformed or from an incompatible setup.
        ShapeError
            If a saved array does not match the model's.
        """
        if not isinstance(state, dict):
            raise ConfigError(f"trainer state must be a dict, got {type(state).__name__}")
        missing = {"version", "settings", "epoch", "batch_index", "iteration", "permutation",
                   "rng", "model", "optimizer", "history"} - set(state)
        if missing:
            raise ConfigError(f"trainer state lacks {sorted(missing)}")
        if state["version"] != STATE_VERSION:
            raise ConfigError(f"trainer state version {state['version']!r} is not supported "
                              f"(this nnscratch reads version {STATE_VERSION})")
        settings = state["settings"]
        for key, mine in (("n_train", len(self.x_train)), ("batch_size", self.batch_size),
                          ("drop_last", self.drop_last)):
            if settings.get(key) != mine:
                raise ConfigError(f"trainer state was saved with {key}={settings.get(key)!r}, "
                                  f"this trainer has {key}={mine!r}")
        permutation = state["permutation"]
        if permutation is not None:
            permutation = np.array(permutation, dtype=np.int64)
            if permutation.shape != (len(self.x_train),):
                raise ConfigError(f"saved permutation has shape {permutation.shape}, "
                                  f"expected ({len(self.x_train)},)")
        batch_index = int(state["batch_index"])
        if not 0 <= batch_index <= self.batches_per_epoch or (batch_index and permutation is None):
            raise ConfigError(f"saved batch_index {batch_index} is inconsistent")

        saved_model = state["model"]
        _copy_arrays_into(self.model.params, saved_model.get("params", {}), "params")
        _copy_arrays_into(getattr(self.model, "buffers", None) or {},
                          saved_model.get("buffers", {}), "buffers")
        model_rng = state.get("model_rng") or {}
        if set(model_rng) != set(_model_rng_state(self.model)):
            raise ConfigError(f"trainer state has random generators {sorted(model_rng)}, "
                              f"the model has {sorted(_model_rng_state(self.model))}")
        if model_rng:
            self.model.set_rng_state(_copy_plain(model_rng))
        self.optimizer.load_state_dict(state["optimizer"])
        self._rng.bit_generator.state = _copy_plain(state["rng"])
        self.history = History.from_dict(state["history"])
        self.epoch = int(state["epoch"])
        self.batch_index = batch_index
        self.iteration = int(state["iteration"])
        self._permutation = permutation
        self._epoch_seconds = float(state.get("epoch_seconds", 0.0))
        self.interrupted = False


def _copy_plain(value):
    if isinstance(value, dict):
        return {k: _copy_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_plain(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _copy_arrays_into(target: dict, saved: dict, what: str) -> None:
    if set(target) != set(saved):
        raise ConfigError(f"saved model {what} {sorted(saved)} do not match the model's {sorted(target)}")
    for key, arr in target.items():
        src = np.asarray(saved[key])
        if src.shape != arr.shape:
            raise ShapeError(f"saved {what}[{key!r}] has shape {src.shape}, the model's has {arr.shape}")
        np.copyto(arr, src, casting="same_kind")


def _check_int(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ============================================================================ callbacks


class ExplosionGuard:
    """Trainer callback: stop when the loss explodes while staying finite.

    The Trainer stops on NaN/inf; Adam's bounded steps can instead drive a
    cross-entropy of 2.3 to 1e15 without ever overflowing, which is just as
    hopeless. Growing a hundredfold beyond the first batch's loss (and past
    1000, where softmax gives the true class a probability of e**-1000) counts
    as diverged: :class:`~nnscratch.errors.TrainingDivergedError` names the
    learning rate and suggests ``default_lr``.
    """

    FACTOR = 100.0
    FLOOR = 1000.0

    def __init__(self, default_lr: float | None = None):
        self.default_lr = default_lr

    def on_batch_end(self, trainer, iteration, loss):
        first = trainer.history.train_loss_list[0]
        if loss > self.FLOOR and loss > self.FACTOR * first:
            optimizer = trainer.optimizer
            hint = f", e.g. the default --lr {self.default_lr:g}" if self.default_lr else ""
            raise TrainingDivergedError(
                f"training diverged: the loss exploded from {first:.3g} to {loss:.3g} at epoch "
                f"{trainer.epoch + 1}, iteration {iteration} with learning rate lr={optimizer.lr:g} "
                f"({type(optimizer).__name__}). Try a smaller learning rate{hint}.")


class StopOnSignal:
    """Ctrl-C (SIGINT) and SIGTERM stop training at the end of the batch instead of killing it.

    Used as a context manager around ``trainer.fit()`` (handlers are installed
    only in the main thread, and restored on exit). The first signal calls
    ``trainer.request_stop()``, so the caller can save a checkpoint;
    ``signal_number`` says which signal it was (exit statuses 130 and 143 by
    convention). A second signal aborts at once with ``KeyboardInterrupt`` --
    except inside :meth:`protect`, around checkpoint and result writes: there it
    waits until the file is complete, so the run never loses its last good
    checkpoint.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer=None, *, enabled: bool = True, stream=None):
        self.trainer = trainer
        self.enabled = enabled
        self.stream = stream
        self.signal_number: int | None = None
        self.finishing = False
        self._previous: dict = {}
        self._protected = 0
        self._pending = False

    def _say(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal_number is None:
            self.signal_number = signum
            if self.trainer is not None:
                self.trainer.request_stop()
            if self.finishing:
                self._say(f"\n{name}: training is done; writing the model and plots first...")
            else:
                self._say(f"\n{name}: stopping after this batch and saving a checkpoint "
                          "(Ctrl-C again to abort without saving)...")
            return
        if self._protected:
            self._pending = True
            self._say(f"\n{name}: a file is being written; stopping as soon as it is complete...")
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def protect(self, *, abort_after: bool = True):
        """A section a second signal must not cut short (it is acted on afterwards)."""
        self._protected += 1
        try:
            yield
        finally:
            self._protected -= 1
        if not self._protected and self._pending:
            self._pending = False
            if abort_after:
                raise KeyboardInterrupt

    def __enter__(self):
        if self.enabled and threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                try:
                    self._previous[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}
        return False
