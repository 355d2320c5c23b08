"""Hyper-parameter search, the book's chapter 6.5, on a Dask cluster.

The book tunes the learning rate and the weight decay of a six-layer
``MultiLayerNet`` by random search: 500 MNIST training images, 20% of them
held out for validation, 100 trials of 50 epochs of SGD with
``lr = 10 ** U(-6, -2)`` and ``weight_decay = 10 ** U(-8, -4)``. Here the
trials run as tasks on a Dask cluster (worker processes on this machine by
default, or any cluster started with ``dask scheduler`` / ``dask worker``)::

    from nnscratch.sweep import SweepSettings, run_sweep

    result = run_sweep(SweepSettings(trials=100), "runs/sweep")
    result.best["lr"], result.best["weight_decay"], result.best["val_acc"]

A sweep folder holds:

``sweep.json``
    the settings; a rerun into the folder with other settings is refused.
``trials.csv``
    one row per finished trial (``trial, lr, weight_decay, val_acc, train_acc,
    seconds, seed, worker, epochs, status``), appended, flushed and fsynced as
    each trial finishes. It is the sweep's record: a rerun trains only the
    trials that have no row yet, and a larger ``trials`` adds only new ones.
``trials/NNNN.json``
    the per-epoch validation and training accuracy of trial NNNN.
``best_model.npz``
    the network of the trial with the best final validation accuracy.
``best_trials.png``, ``lr_weight_decay.png``
    the book's figure (the best 20 trials' curves) and a scatter of the
    learning rate against the weight decay coloured by validation accuracy.

Reproducible: trial ``i`` draws its weight decay, learning rate and seed (for
the initial weights and the shuffling) from its own stream
``SeedSequence(seed, spawn_key=(1, i))``, whichever worker runs it and in
whatever order; the validation split comes from ``spawn_key=(0,)``.

A worker that dies mid-trial loses nothing: Dask runs the trial again on
another worker, and its row is written once, when its result arrives.
"""

from __future__ import annotations

import contextlib
import csv
import io as _stdio
import json
import logging
import math
import os
import re
import signal
import socket
import struct
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from nnscratch.errors import ConfigError, NnscratchError, TrainingDivergedError
from nnscratch.files import atomic_write

__all__ = ["SweepSettings", "SweepData", "SweepResult", "SweepError", "trial_parameters",
           "load_sweep_data", "run_trial", "run_sweep", "read_trials", "best_trial",
           "TRIAL_FIELDS"]

SETTINGS_NAME = "sweep.json"
LOCK_NAME = ".nnscratch-sweep.lock"
TRIALS_NAME = "trials.csv"
CURVES_DIR = "trials"
BEST_MODEL_NAME = "best_model.npz"
CURVES_PLOT_NAME = "best_trials.png"
SCATTER_PLOT_NAME = "lr_weight_decay.png"

#: Columns of trials.csv, in order.
TRIAL_FIELDS = ("trial", "lr", "weight_decay", "val_acc", "train_acc", "seconds", "seed", "worker",
                "epochs", "status")
_FIELD_TYPES = {"trial": int, "lr": float, "weight_decay": float, "val_acc": float,
                "train_acc": float, "seconds": float, "seed": int, "worker": str, "epochs": int,
                "status": str}

# Independent random streams under the sweep's seed: the validation split, and one per trial.
_DATA_STREAM = 0
_TRIAL_STREAM = 1

N_CLASSES = 10  # MNIST's digits, whether or not a small --limit holds all ten
MNIST_TRAIN_IMAGES = 60_000
MAX_TRIALS = 100_000
# Every worker holds a trial's network, its gradients and the trained copy it returns:
# 50 million float32 parameters are about 600 MB, far beyond the book's 130,010.
MAX_PARAMETERS = 50_000_000

# --connect-timeout: at most a day (Dask's timeouts take no infinity).
MAX_CONNECT_TIMEOUT = 86_400.0


def max_local_workers() -> int:
    """The most worker processes a local cluster may start: twice the cores (each is a Python process)."""
    return 2 * max(1, os.cpu_count() or 1)


# One BLAS thread per worker process: the matrices are small, and the workers share the cores.
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# Without a dashboard the scheduler still serves /health, at 127.0.0.1:8787 by default, and warns
# when another cluster holds that port; a free port of the system's choosing has no such race.
NO_FIXED_PORT = {"dashboard_address": "127.0.0.1:0"}

# Testing aid: "INDEX:PATH" makes trial INDEX kill its worker process halfway through training,
# once (PATH records that it happened), so that tests can check a lost worker loses no trial.
CRASH_ONCE_VARIABLE = "NNSCRATCH_SWEEP_CRASH_ONCE"


class SweepError(NnscratchError):
    """A sweep cannot run: unreachable scheduler, a trial that keeps failing, a damaged sweep folder."""


class StopRequested(KeyboardInterrupt):
    """A signal asked the sweep to stop: it unwinds as Ctrl-C does (cluster closed, finished trials kept)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_stop_signal: int | None = None  # the signal request_stop was called for, during this run_sweep


def request_stop(signum, frame=None):
    """Signal handler (SIGINT, SIGTERM) for ``nnscratch sweep``: stop the running sweep.

    It raises :class:`StopRequested` at once, and a second such signal takes its
    default action. Python drops an exception raised while a finalizer or a gc
    callback runs ("Exception ignored in ...": Dask's GC diagnostics install one), so
    the request is also recorded, and :func:`run_sweep` raises it again as soon as the
    next trial is recorded: a SIGTERM was sometimes lost, and the sweep ran to its end.
    """
    global _stop_signal
    import signal

    _stop_signal = signum
    signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    raise StopRequested(signum)


def _raise_if_stop_requested() -> None:
    if _stop_signal is not None:
        raise StopRequested(_stop_signal)


# ============================================================================ settings


@dataclass(frozen=True)
class SweepSettings:
    """What a sweep searches, with the book's chapter 6.5 as the defaults.

    Parameters
    ----------
    trials : int, default 100
        Number of trials (each one a random (lr, weight decay) pair).
    epochs : int, default 50
        Epochs of every trial.
    limit : int, default 500
        The first ``limit`` MNIST training images are used ...
    validation : float, default 0.2
        ... and this fraction of them (after a seeded shuffle) validates.
    lr_range : (float, float), default (1e-6, 1e-2)
        The learning rate is drawn log-uniformly between these bounds.
    weight_decay_range : (float, float), default (1e-8, 1e-4)
        The L2 weight decay lambda, drawn log-uniformly likewise.
    hidden : tuple of int, default six layers of 100
        Hidden layer sizes of the ``MultiLayerNet``.
    batch_size : int, default 100
    seed : int, default 0
        Seeds the validation split and every trial's draws.
    """

    trials: int = 100
    epochs: int = 50
    limit: int = 500
    validation: float = 0.2
    lr_range: tuple = (1e-6, 1e-2)
    weight_decay_range: tuple = (1e-8, 1e-4)
    hidden: tuple = (100, 100, 100, 100, 100, 100)
    batch_size: int = 100
    seed: int = 0

    def checked(self) -> "SweepSettings":
        """These settings with plain Python types, or ConfigError naming the option."""
        from nnscratch.runs import MAX_BATCH, MAX_EPOCHS, MAX_HIDDEN_LAYERS, MAX_HIDDEN_UNITS

        def integer(name, minimum, maximum=None):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum \
                    or (maximum is not None and value > maximum):
                bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum:,}"
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer {bounds}, got {value!r}")
            return int(value)

        def log_range(name):
            flag = "--" + name.replace("_", "-")
            value = getattr(self, name)
            try:
                low, high = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ConfigError(f"{flag} must be two numbers LOW HIGH, got {value!r}") from None
            if not (0 < low < math.inf and 0 < high < math.inf):
                raise ConfigError(f"{flag} bounds must be positive numbers (drawn log-uniformly), "
                                  f"got {low:g} {high:g}")
            if low > high:
                raise ConfigError(f"{flag} is reversed: LOW {low:g} is above HIGH {high:g}")
            return (low, high)

        sizes = self.hidden if isinstance(self.hidden, (list, tuple, np.ndarray)) else None
        if sizes is None or not all(isinstance(h, (int, np.integer)) and not isinstance(h, bool) for h in sizes):
            # int() would have made 1.5 a layer of 1 and the string "100" three layers 1, 0, 0.
            raise ConfigError(f"--hidden must be layer sizes (integers), got {self.hidden!r}")
        hidden = tuple(int(h) for h in sizes)
        if not 1 <= len(hidden) <= MAX_HIDDEN_LAYERS or not all(1 <= h <= MAX_HIDDEN_UNITS for h in hidden):
            raise ConfigError(f"--hidden must be 1 to {MAX_HIDDEN_LAYERS} sizes from 1 to "
                              f"{MAX_HIDDEN_UNITS:,}, got {list(hidden)}")
        sizes = [28 * 28, *hidden, N_CLASSES]
        parameters = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
        if parameters > MAX_PARAMETERS:
            raise ConfigError(f"--hidden {' '.join(map(str, hidden))} makes a network of {parameters:,} "
                              f"parameters; a sweep's networks are limited to {MAX_PARAMETERS:,}")
        validation = self.validation
        if isinstance(validation, bool) or not isinstance(validation, (int, float)) or not 0 < validation < 1:
            raise ConfigError(f"--validation must be a fraction between 0 and 1, got {validation!r}")
        checked = SweepSettings(
            trials=integer("trials", 1, MAX_TRIALS), epochs=integer("epochs", 1, MAX_EPOCHS),
            # Beyond MNIST's 60,000 training images every limit is the same sweep: recorded as 60,000,
            # so that a rerun with another large --limit is not refused as "other settings".
            limit=min(integer("limit", 2), MNIST_TRAIN_IMAGES),
            validation=float(validation), lr_range=log_range("lr_range"),
            weight_decay_range=log_range("weight_decay_range"), hidden=hidden,
            batch_size=integer("batch_size", 1, MAX_BATCH), seed=integer("seed", 0, 2**63 - 1))
        validation_count(checked.limit, checked.validation)
        return checked

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("lr_range", "weight_decay_range", "hidden"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "SweepSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown sweep settings: {', '.join(unknown)}")
        values = dict(data)
        for name in ("lr_range", "weight_decay_range", "hidden"):
            if name in values and isinstance(values[name], list):
                values[name] = tuple(values[name])
        return cls(**values).checked()

    def differences(self, other: "SweepSettings") -> list[str]:
        """The options other than ``trials`` in which ``other`` differs, as ``--flag`` strings."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"--{name.replace('_', '-')} {_show(mine[name])} (this run: {_show(theirs[name])})"
                for name in mine if name != "trials" and mine[name] != theirs[name]]


def _show(value) -> str:
    if isinstance(value, list):
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def validation_count(n: int, fraction: float) -> int:
    """Number of validation samples out of ``n`` (an int: the book's ``n * rate`` is a float)."""
    count = int(round(n * fraction))
    if not 1 <= count < n:
        raise ConfigError(f"--validation {fraction:g} of {n} images leaves "
                          f"{count} for validation and {n - count} for training: both need at least one")
    return count


def trial_parameters(settings: SweepSettings, index: int) -> dict:
    """Trial ``index``'s ``{"trial", "lr", "weight_decay", "seed"}``: a function of the seed and index only.

    Drawn as the book does, weight decay first: ``10 ** U(log10 low, log10 high)``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(_TRIAL_STREAM, index)))
    weight_decay = 10.0 ** rng.uniform(*np.log10(settings.weight_decay_range))
    lr = 10.0 ** rng.uniform(*np.log10(settings.lr_range))
    return {"trial": int(index), "lr": float(lr), "weight_decay": float(weight_decay),
            "seed": int(rng.integers(2**31 - 1))}


# ============================================================================ data and one trial


@dataclass(frozen=True)
class SweepData:
    """The training and validation arrays every trial shares (scattered to the workers once)."""

    x_train: np.ndarray  # (N_train, 784) float32
    t_train: np.ndarray  # (N_train,) labels
    x_val: np.ndarray    # (N_val, 784)
    t_val: np.ndarray    # (N_val,)

    def __setstate__(self, state: dict) -> None:
        # Dask delivers NumPy arrays in buffers that can start at any byte, and NumPy's matmul
        # skips BLAS for a misaligned float32 array: trials ran 1.8x slower on the workers than
        # in-process. One copy per worker, when the data arrives, puts them back in line.
        for name, value in state.items():
            object.__setattr__(self, name, np.require(value, requirements=("ALIGNED", "C_CONTIGUOUS")))


def load_sweep_data(settings: SweepSettings) -> SweepData:
    """The first ``limit`` MNIST training images, shuffled by the seed, the first ``validation`` part held out."""
    from nnscratch.datasets import load_mnist

    (x, t), _ = load_mnist(normalize=True, flatten=True, one_hot_label=False, limit=settings.limit)
    n_val = validation_count(len(x), settings.validation)
    order = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(_DATA_STREAM,))).permutation(len(x))
    x, t = x[order], t[order]
    return SweepData(x_train=x[n_val:], t_train=t[n_val:], x_val=x[:n_val], t_val=t[:n_val])


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


class _CrashOnce:
    """Testing aid: kill this process halfway through training, the first time only."""

    def __init__(self, marker: str, epoch: int):
        self.marker, self.epoch = marker, epoch

    def on_epoch_end(self, trainer, epoch, record):
        if epoch == self.epoch:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.close(fd)
            os._exit(1)


class _Curves:
    """Trainer callback: the validation and training accuracy of every finished epoch."""

    def __init__(self):
        self.val_acc, self.train_acc = [], []

    def on_epoch_end(self, trainer, epoch, record):
        self.val_acc.append(float(record["test_acc"]))
        self.train_acc.append(float(record["train_acc"]))


def run_trial(settings: dict, params: dict, data: SweepData, crash_marker: str | None = None) -> dict:
    """Train one trial with :func:`nnscratch.runs.fit` (runs on a Dask worker).

    The network is a ``MultiLayerNet`` with the sweep's hidden layers and the
    trial's weight decay, trained by SGD with the trial's learning rate; the
    trial's seed sets the initial weights and the shuffling.

    Parameters
    ----------
    settings : dict
        ``SweepSettings.to_dict()``.
    params : dict
        ``trial_parameters(settings, index)``.
    data : SweepData
    crash_marker : str, optional
        Testing aid: the path of a file; if it does not exist yet it is
        created and this process exits halfway through training (a worker
        dying mid-trial).

    Returns
    -------
    dict
        The trial's row (``TRIAL_FIELDS``) plus ``val_acc_list`` and
        ``train_acc_list`` (one value per epoch) and ``model`` (class name,
        config and arrays of the trained network).
    """
    from nnscratch.runs import RunSettings, build_model, fit

    s = SweepSettings.from_dict(settings)
    start = time.perf_counter()
    run = RunSettings(model="mlp", hidden=list(s.hidden), epochs=s.epochs, batch_size=s.batch_size,
                      optimizer="sgd", lr=params["lr"], weight_decay=params["weight_decay"],
                      seed=params["seed"])
    features = data.x_train.shape[1:]
    model = build_model(run, input_shape=features, n_classes=N_CLASSES)
    curves = _Curves()
    callbacks = [curves] + ([_CrashOnce(crash_marker, max(1, s.epochs // 2))] if crash_marker else [])
    status = "ok"
    try:
        fit(run, (data.x_train, data.t_train, data.x_val, data.t_val), callbacks=callbacks, model=model,
            input_shape=features, n_classes=N_CLASSES, eval_samples=None)
    except TrainingDivergedError:
        status = "diverged"
    finished = status == "ok" and curves.val_acc
    return {
        **params,
        "val_acc": curves.val_acc[-1] if finished else math.nan,
        "train_acc": curves.train_acc[-1] if finished else math.nan,
        "seconds": time.perf_counter() - start,
        "worker": _worker_name(),
        "epochs": len(curves.val_acc),
        "status": status,
        "val_acc_list": curves.val_acc,
        "train_acc_list": curves.train_acc,
        "model": {"class": type(model).__name__, "config": model.config,
                  "arrays": {k: np.array(v) for k, v in {**model.params, **model.buffers}.items()}},
    }


def _model_from_record(record: dict):
    from nnscratch.models.registry import build_model

    model = build_model(record["class"], record["config"])
    for name, target in {**model.params, **model.buffers}.items():
        target[...] = record["arrays"][name]
    return model


# ============================================================================ the record on disk


def _row_text(result: dict) -> str:
    values = []
    for name in TRIAL_FIELDS:
        value = result[name]
        if name == "seconds":
            values.append(f"{value:.3f}")
        elif isinstance(value, float):
            values.append(repr(value))  # shortest text that reads back as the same float
        else:
            values.append(str(value))
    buffer = _stdio.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _parse_row(path: Path, line_number: int, values: list[str]) -> dict:
    if len(values) != len(TRIAL_FIELDS):
        raise SweepError(f"{path}: line {line_number} has {len(values)} fields, expected "
                         f"{len(TRIAL_FIELDS)}: the file is damaged (delete the line to rerun that trial)")
    try:
        return {name: _FIELD_TYPES[name](value) for name, value in zip(TRIAL_FIELDS, values)}
    except ValueError:
        raise SweepError(f"{path}: line {line_number} does not hold a trial's numbers: the file is "
                         "damaged (delete the line to rerun that trial)") from None


def read_trials(path) -> dict[int, dict]:
    """The rows of a ``trials.csv`` by trial index (the first row of an index wins).

    A last line without its newline is what a killed sweep leaves behind
    mid-write: it is cut off the file (that trial runs again). Any other damage
    is a SweepError naming the line.
    """
    path = Path(path)
    if not path.exists():
        return {}
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n") + 1
        with open(path, "r+b") as handle:
            handle.truncate(cut)
            handle.flush()
            os.fsync(handle.fileno())
        raw = raw[:cut]
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if not lines:
        return {}
    if lines[0].split(",") != list(TRIAL_FIELDS):
        raise SweepError(f"{path}: not a sweep's trials.csv (its header should be "
                         f"{','.join(TRIAL_FIELDS)})")
    rows: dict[int, dict] = {}
    for number, values in enumerate(csv.reader(lines[1:]), start=2):
        row = _parse_row(path, number, values)
        rows.setdefault(row["trial"], row)
    return rows


class _TrialLog:
    """Appends one row per finished trial to trials.csv: written, flushed and fsynced at once."""

    def __init__(self, path: Path, done: set[int]):
        self.path, self.done = path, set(done)
        new_file = not path.exists() or path.stat().st_size == 0
        self.handle = open(path, "a", encoding="utf-8", newline="")
        if new_file:
            self._write(",".join(TRIAL_FIELDS) + "\n")

    def _write(self, text: str) -> None:
        self.handle.write(text)
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def add(self, result: dict) -> bool:
        """Write ``result``'s row unless its trial already has one; True when written."""
        if result["trial"] in self.done:
            return False
        self._write(_row_text(result))
        self.done.add(result["trial"])
        return True

    def close(self) -> None:
        self.handle.close()


def _curves_path(out: Path, index: int) -> Path:
    return out / CURVES_DIR / f"{index:04d}.json"


def _write_curves(out: Path, result: dict) -> None:
    with atomic_write(_curves_path(out, result["trial"]), "w") as handle:
        json.dump({"trial": result["trial"], "val_acc": result["val_acc_list"],
                   "train_acc": result["train_acc_list"]}, handle)


def _read_curves(out: Path, index: int) -> dict | None:
    try:
        data = json.loads(_curves_path(out, index).read_text(encoding="utf-8"))
        return {"val_acc_list": [float(v) for v in data["val_acc"]],
                "train_acc_list": [float(v) for v in data["train_acc"]]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _rank_key(row: dict):
    """Best first: highest final validation accuracy (a diverged trial last), then the lower index."""
    value = row["val_acc"]
    return (-(value if value == value else -math.inf), row["trial"])


def _finished(row: dict) -> bool:
    """A trial that trained all its epochs (a diverged one has no accuracy and no network)."""
    return row["status"] == "ok" and row["val_acc"] == row["val_acc"]


def best_trial(rows) -> dict | None:
    """The finished row with the best final validation accuracy (ties: the lowest trial index).

    None when no trial finished: a diverged trial has no accuracy to be the best by.
    """
    rows = [row for row in (rows.values() if isinstance(rows, dict) else rows) if _finished(row)]
    return min(rows, key=_rank_key) if rows else None


def _check_settings_file(out: Path, settings: SweepSettings) -> bool:
    """Refuse to mix other settings into an existing sweep; True when sweep.json needs (re)writing."""
    path = out / SETTINGS_NAME
    if not path.exists():
        if (out / TRIALS_NAME).exists():
            raise SweepError(f"{out} holds a {TRIALS_NAME} but no {SETTINGS_NAME}; use another --out")
        return True
    try:
        saved = SweepSettings.from_dict(json.loads(path.read_text(encoding="utf-8"))["settings"])
    except (OSError, ValueError, KeyError, TypeError, NnscratchError) as exc:
        raise SweepError(f"{path}: unreadable sweep settings ({exc}); use another --out") from None
    differences = saved.differences(settings)
    if differences:
        raise ConfigError(f"{out} holds a sweep made with other settings: " + "; ".join(differences)
                          + ". Rerun with those, or use another --out")
    return settings.trials > saved.trials


def _write_settings_file(out: Path, settings: SweepSettings) -> None:
    record = {"format": "nnscratch-sweep", "version": 1, "settings": settings.to_dict()}
    with atomic_write(out / SETTINGS_NAME, "w") as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")


# ============================================================================ the driver


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    ``rows``: every trial of the sweep (index < ``settings.trials``) in index
    order, as read back from trials.csv; ``best``: the best of them;
    ``trained``: the indices trained by this call (the others were on record);
    ``files``: name -> path of what the sweep folder holds.
    """

    out: Path
    settings: SweepSettings
    rows: list = field(default_factory=list)
    best: dict | None = None
    trained: list = field(default_factory=list)
    files: dict = field(default_factory=dict)


def _valid_address(address: str) -> bool:
    return re.fullmatch(r"(tcp|tls|ws|wss)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", address) is not None \
        and 0 < int(address.rsplit(":", 1)[1]) < 65536


class _Cluster:
    """A Dask client: on a local cluster of worker processes, or on a running scheduler."""

    def __init__(self, *, scheduler: str | None, workers: int, connect_timeout: float):
        from nnscratch.extras import require

        require("distributed", "sweep", "nnscratch sweep")
        self.scheduler, self.workers, self.timeout = scheduler, workers, connect_timeout
        self.cluster = self.client = None

    def __enter__(self):
        from distributed import Client, LocalCluster

        if self.scheduler is None:
            with _workers_ignore_ctrl_c():
                # Dask's own ERROR lines are silenced too: closing the cluster races the workers'
                # heartbeats ("Failed to communicate with scheduler during heartbeat" and a traceback,
                # now and then, after a finished or stopped sweep). What goes wrong in a sweep reaches
                # the user as one line: a trial's error, or KilledWorker for workers that died.
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address=None, env=dict(WORKER_ENV),
                                            silence_logs=logging.CRITICAL, scheduler_kwargs=NO_FIXED_PORT)
            self.client = Client(self.cluster)
            return self.client
        _probe_scheduler(self.scheduler, self.timeout)
        try:
            self.client = Client(self.scheduler, timeout=f"{self.timeout}s")
        except MemoryError:
            # Dask read the first bytes of another protocol's greeting as a message length.
            raise SweepError(_not_dask(self.scheduler, "answered in another protocol")) from None
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"cannot reach the Dask scheduler at {self.scheduler} within {self.timeout:g} s "
                             f"({type(exc).__name__}): start one with `dask scheduler`, or leave out "
                             "--scheduler to run on this machine") from None
        try:
            self.client.wait_for_workers(1, timeout=self.timeout)
        except (TimeoutError, OSError):
            self.client.close()
            raise SweepError(f"the Dask scheduler at {self.scheduler} has no workers (waited "
                             f"{self.timeout:g} s): start some with `dask worker {self.scheduler}`") from None
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Start the local workers with SIGINT ignored (they inherit it): Ctrl-C is for the driver.

    A Ctrl-C in a terminal reaches the whole process group. The workers died of it at
    once, and the scheduler logged "ERROR - Removing worker ... caused the cluster to
    lose scattered data" above the driver's own line; now the driver alone stops, and
    closes its workers. (A Ctrl-C while the cluster starts, about a second, is lost.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set a handler; the caller then owns its signals
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        # None: a handler set outside Python (an embedding program); Python's own is the fallback.
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


def _not_dask(address: str, what: str) -> str:
    return (f"{address} {what}: it is not a Dask scheduler (a wrong port? `dask scheduler` listens "
            "on 8786 by default)")


def _probe_scheduler(address: str, timeout: float) -> None:
    """Refuse, within ``timeout``, a tcp:// address where something other than a Dask scheduler listens.

    A Dask scheduler speaks first: it sends its handshake (8 bytes of length, then a
    small message) as soon as a connection is accepted. Dask's own client waits for
    that handshake with no time limit, so a server that accepts and stays silent (an
    HTTP server waiting for a request) held ``nnscratch sweep`` until that server hung
    up, whatever --connect-timeout said; and the first bytes of another protocol's
    greeting, read as a length, made Dask allocate exabytes. Nothing listening, or a
    connection that fails, is left to Dask (which retries while a scheduler starts).
    A real scheduler logs this probe at INFO level: "closed before handshake completed".
    """
    scheme, _, location = address.partition("://")
    if scheme != "tcp":
        return
    host, _, port = location.rpartition(":")
    deadline = time.monotonic() + timeout
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError:
        return
    with connection:
        head = b""
        try:
            while len(head) < 8:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                connection.settimeout(left)
                chunk = connection.recv(8 - len(head))
                if not chunk:
                    return  # it hung up: Dask's own connection says what went wrong
                head += chunk
        except (TimeoutError, socket.timeout):
            raise SweepError(f"{address} accepted the connection but sent nothing within {timeout:g} s: a Dask "
                             "scheduler greets at once, so it is another server (a wrong port? `dask scheduler` "
                             "listens on 8786 by default) or a scheduler too busy to answer (a larger "
                             "--connect-timeout)") from None
        except OSError:
            return
    (length,) = struct.unpack("=Q", head)
    if not 0 < length <= _MAX_HANDSHAKE_BYTES:
        raise SweepError(_not_dask(address, "answered in another protocol"))


# A Dask handshake is a few hundred bytes; anything near this is another protocol's text.
_MAX_HANDSHAKE_BYTES = 64 * 2**20


def _crash_once_request() -> tuple[int, str] | None:
    value = os.environ.get(CRASH_ONCE_VARIABLE)
    if not value:
        return None
    index, _, marker = value.partition(":")
    return int(index), marker


def _failure(index: int, exc: BaseException) -> SweepError:
    if type(exc).__name__ == "KilledWorker":
        return SweepError(f"trial {index}: every worker that ran it died (out of memory? killed?), "
                          "so Dask gave up; the sweep stops (the finished trials are kept in trials.csv)")
    if isinstance(exc, ImportError):
        return SweepError(f"trial {index} failed on a Dask worker: {exc}; every worker needs nnscratch "
                          "installed: pip install 'nnscratch[sweep]'")
    return SweepError(f"trial {index} failed: {type(exc).__name__}: {exc} "
                      "(the finished trials are kept; rerun to continue)")


def run_sweep(settings: SweepSettings, out, *, client=None, scheduler: str | None = None,
              workers: int = 2, connect_timeout: float = 10.0, plots: bool = True,
              progress: bool | None = None, log=print) -> SweepResult:
    """Run (or continue) the sweep ``settings`` into the folder ``out``.

    Parameters
    ----------
    settings : SweepSettings
    out : path
        Sweep folder (created). Trials already in its trials.csv are not trained again.
    client : distributed.Client, optional
        Run on this client's cluster (then ``scheduler`` and ``workers`` are unused).
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a running Dask scheduler. Default: a local
        cluster of ``workers`` processes on 127.0.0.1, closed at the end.
    workers : int, default 2
        Worker processes of the local cluster, at most :func:`max_local_workers` (twice the cores).
    connect_timeout : float, default 10
        Seconds to wait for the scheduler and its first worker (at most a day). Something
        else than a Dask scheduler at ``scheduler`` is refused within it.
    plots : bool, default True
        Draw best_trials.png and lr_weight_decay.png.
    progress : bool, optional
        A tqdm bar of trials done (default: when stderr is a terminal).
    log : callable
        Receives the summary lines.
    """
    global _stop_signal
    _stop_signal = None
    settings = settings.checked()
    if scheduler is not None and not _valid_address(scheduler):
        raise ConfigError(f"--scheduler must look like tcp://HOST:PORT, got {scheduler!r}")
    max_workers = max_local_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= max_workers:
        raise ConfigError(f"--workers must be an integer from 1 to {max_workers} (twice this machine's "
                          f"{os.cpu_count() or 1} cores: more processes only share them), got {workers!r}")
    if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, (int, float)) \
            or not 0 < connect_timeout <= MAX_CONNECT_TIMEOUT:
        raise ConfigError(f"--connect-timeout must be a number of seconds above 0 and at most "
                          f"{MAX_CONNECT_TIMEOUT:g}, got {connect_timeout!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    settings_changed = _check_settings_file(out, settings)
    trials_path = out / TRIALS_NAME
    rows = read_trials(trials_path)
    todo = [i for i in range(settings.trials) if i not in rows]
    in_sweep = {i: r for i, r in rows.items() if i < settings.trials}
    best_model = _BestModel(out / BEST_MODEL_NAME, settings, best_trial(in_sweep))

    with contextlib.ExitStack() as held:   # the folder lock, from the first write to the last
        if todo:
            in_sweep, trained = _train_missing(settings, out, todo, held, best_model, client=client,
                                               scheduler=scheduler, workers=workers,
                                               connect_timeout=connect_timeout, progress=progress,
                                               settings_changed=settings_changed, log=log)
        else:
            # Every trial is on record: the best model and the figures may still be (re)written.
            held.callback(os.close, _lock_folder(out))
            trained = []
        sweep_rows = sorted(in_sweep.values(), key=lambda r: r["trial"])
        best = best_trial(sweep_rows)
        best_model.ensure(best, lambda row: _retrain(settings, row))
        files = {"settings": out / SETTINGS_NAME, "trials": trials_path, "curves": out / CURVES_DIR}
        if best is not None:
            files["best_model"] = out / BEST_MODEL_NAME
        if plots:
            files.update(_draw(out, settings, sweep_rows, log))
        result = SweepResult(out=out, settings=settings, rows=sweep_rows, best=best, trained=trained,
                             files=files)
        _summarize(result, log)
        return result


def _train_missing(settings: SweepSettings, out: Path, todo: list[int], held: contextlib.ExitStack,
                   best_model: "_BestModel", *, client, scheduler, workers, connect_timeout, progress,
                   settings_changed: bool, log) -> tuple[dict, list[int]]:
    """Train the trials in ``todo`` on the cluster, recording each as it ends.

    The folder is locked (the lock's release goes on ``held``) once the cluster answers.
    Returns the sweep's rows by trial (on record and new) and the trials trained here.
    """
    if progress is None:
        import sys

        progress = sys.stderr.isatty()
    from tqdm.auto import tqdm

    trials_path = out / TRIALS_NAME
    trained: list[int] = []
    cluster = _Cluster(scheduler=scheduler, workers=workers, connect_timeout=connect_timeout) \
        if client is None else None
    trial_log = bar = None
    try:
        if cluster is not None:
            client = cluster.__enter__()
        log(f"{_count(len(todo), 'trial')} to train ({settings.trials - len(todo)} on record) on "
            + _describe_cluster(client, local=cluster is not None and scheduler is None))
        bar = tqdm(total=settings.trials, initial=settings.trials - len(todo), desc="trials",
                   unit="trial", disable=not progress, dynamic_ncols=True)
        # The folder is made once the cluster answers: a mistyped --scheduler leaves nothing behind.
        _make_folder(out)
        held.callback(os.close, _lock_folder(out))
        rows = read_trials(trials_path)  # again, now that no other sweep can write there
        todo = [i for i in range(settings.trials) if i not in rows]
        in_sweep = {i: r for i, r in rows.items() if i < settings.trials}
        best_model.best = best_trial(in_sweep)
        if settings_changed:
            _write_settings_file(out, settings)
        trial_log = _TrialLog(trials_path, set(rows))
        for result in _run_trials(client, settings, todo) if todo else ():
            result = _finish_trial(out, trial_log, best_model, result)
            if result is not None:
                in_sweep[result["trial"]] = result
                trained.append(result["trial"])
                bar.update(1)
                best = best_trial(in_sweep)
                if best is not None:
                    bar.set_postfix_str(f"best val acc {best['val_acc']:.3f}", refresh=False)
            _raise_if_stop_requested()  # a stop whose exception Python dropped (request_stop)
        _raise_if_stop_requested()
    finally:
        if trial_log is not None:
            trial_log.close()
        if bar is not None:
            bar.close()
        if cluster is not None:
            cluster.__exit__(None, None, None)
    return in_sweep, trained


def _describe_cluster(client, *, local: bool) -> str:
    workers = len(client.scheduler_info().get("workers", {}))
    if local:
        return f"a local Dask cluster of {workers} worker process{'' if workers == 1 else 'es'}"
    return f"the Dask scheduler at {client.scheduler.address} ({workers} worker{'' if workers == 1 else 's'})"


def _lock_folder(out: Path) -> int:
    """Hold the sweep folder (an flock, let go when the process ends): one driver writes there at a time."""
    import fcntl

    try:
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise SweepError(f"{out}: cannot write in the sweep folder: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 100).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise SweepError(f"{out} is in use by another nnscratch sweep (pid {holder}); wait for it "
                         "to finish, or use another --out") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _make_folder(out: Path) -> None:
    try:
        (out / CURVES_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"{out}: cannot create the sweep folder: {exc.strerror or exc}") from None


def _run_trials(client, settings: SweepSettings, todo: list[int]):
    """Submit the trials ``todo`` to ``client`` and yield their results as they finish."""
    from distributed import as_completed

    data = load_sweep_data(settings)
    [data_future] = client.scatter([data], broadcast=True, hash=False)
    settings_dict = settings.to_dict()
    crash = _crash_once_request()
    token = uuid.uuid4().hex[:8]
    futures = {}
    for index in todo:
        marker = crash[1] if crash is not None and crash[0] == index else None
        future = client.submit(run_trial, settings_dict, trial_parameters(settings, index), data_future,
                               marker, key=f"nnscratch-trial-{index:04d}-{token}", retries=1, pure=False)
        futures[future] = index
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001  (a trial's failure becomes one clear line)
                raise _failure(futures[future], exc) from None
            future.release()
            yield result
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
        data_future.release()


def _finish_trial(out: Path, trial_log: _TrialLog, best_model: "_BestModel", result: dict) -> dict | None:
    """Record a finished trial: its curves, then its row (the commit), then the best model if it is."""
    if result["trial"] in trial_log.done:
        return None
    _write_curves(out, result)
    model = result.pop("model")
    row = {name: result[name] for name in TRIAL_FIELDS}
    trial_log.add(row)
    best_model.offer(row, model)
    return {**row, "val_acc_list": result["val_acc_list"], "train_acc_list": result["train_acc_list"]}


class _BestModel:
    """Keeps best_model.npz the network of the best trial recorded so far."""

    def __init__(self, path: Path, settings: SweepSettings, best: dict | None):
        self.path, self.settings, self.best = path, settings, best

    def _save(self, row: dict, model_record: dict) -> None:
        from nnscratch.io import save_model

        summary = {"sweep_trial": row["trial"], "lr": row["lr"], "weight_decay": row["weight_decay"],
                   "seed": row["seed"], "val_acc": row["val_acc"], "train_acc": row["train_acc"],
                   "epochs": row["epochs"], "dataset": "mnist", "limit": self.settings.limit,
                   "validation": self.settings.validation}
        save_model(_model_from_record(model_record), self.path, summary=summary)

    def offer(self, row: dict, model_record: dict) -> None:
        if row["status"] == "ok" and (self.best is None or _rank_key(row) < _rank_key(self.best)):
            self._save(row, model_record)
            self.best = row

    def saved_trial(self) -> int | None:
        from nnscratch.io import read_model_metadata

        try:
            return int(read_model_metadata(self.path)["summary"]["sweep_trial"])
        except (NnscratchError, OSError, KeyError, TypeError, ValueError):
            return None

    def ensure(self, best: dict | None, retrain) -> None:
        """Make the file hold ``best``'s network, retraining it (same seed: the same network) if it does not."""
        if best is not None and best["status"] == "ok" and self.saved_trial() != best["trial"]:
            self._save(best, retrain(best))


def _retrain(settings: SweepSettings, row: dict) -> dict:
    params = {name: row[name] for name in ("trial", "lr", "weight_decay", "seed")}
    return run_trial(settings.to_dict(), params, load_sweep_data(settings))["model"]


# ============================================================================ figures and summary


def _draw(out: Path, settings: SweepSettings, rows: list[dict], log) -> dict:
    from nnscratch.plots.sweep import plot_best_trials, plot_lr_weight_decay

    ranked = sorted((row for row in rows if _finished(row)), key=_rank_key)  # the diverged have no curves
    curves = []
    for row in ranked[:20]:
        found = row if "val_acc_list" in row else _read_curves(out, row["trial"])
        if found is None:
            log(f"warning: {_curves_path(out, row['trial'])} is missing; trial {row['trial']} "
                "is left out of the figure")
            continue
        curves.append({**row, "val_acc_list": found["val_acc_list"], "train_acc_list": found["train_acc_list"]})
    files = {}
    if curves:
        files["curves_plot"] = out / CURVES_PLOT_NAME
        plot_best_trials(curves, files["curves_plot"])
    files["scatter_plot"] = out / SCATTER_PLOT_NAME
    plot_lr_weight_decay([r["lr"] for r in rows], [r["weight_decay"] for r in rows],
                         [r["val_acc"] for r in rows], files["scatter_plot"],
                         lr_range=settings.lr_range, weight_decay_range=settings.weight_decay_range)
    return files


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _summarize(result: SweepResult, log) -> None:
    rows, best = result.rows, result.best
    done_before = len(rows) - len(result.trained)
    log(f"{_count(len(rows), 'trial')} in {result.out}: {len(result.trained)} trained now"
        + (f", {done_before} on record" if done_before else ""))
    finished = [row for row in rows if _finished(row)]
    for rank, row in enumerate(sorted(finished, key=_rank_key)[:5], start=1):
        log(f"Best-{rank} (val acc: {row['val_acc']:.4f}) | lr: {row['lr']:.4g}, "
            f"weight decay: {row['weight_decay']:.4g}   [trial {row['trial']}]")
    diverged = len(rows) - len(finished)
    if diverged:
        lr_range = _show(list(result.settings.lr_range))
        log(f"{_count(diverged, 'trial')} diverged (no accuracy, no network)"
            + ("" if finished else f": every learning rate drawn from --lr-range {lr_range} "
               "was too large; try a lower range (the book's is 1e-6 1e-2)"))
    if best is not None:
        shown = ", ".join(str(p) for k, p in result.files.items() if k != "settings")
        log(f"best: lr {best['lr']:.4g}, weight decay {best['weight_decay']:.4g}, "
            f"val acc {best['val_acc']:.4f} (trial {best['trial']}); files: {shown}")
