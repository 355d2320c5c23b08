"""Training runs as a library: the one engine behind ``nnscratch train``, the drawing page,
the scikit-learn estimator and sweeps.

Three levels, each built on the one below::

    from nnscratch.runs import RunSettings, build_model, build_optimizer, fit, train_run

    settings = RunSettings(model="mlp", hidden=[256], epochs=5).resolved()   # checked once
    model, optimizer = build_model(settings), build_optimizer(settings)      # just the objects
    result = fit(settings, (x_train, t_train, x_val, t_val))                 # in memory, writes nothing
    result = train_run(settings, "runs/mine")                                # what `nnscratch train` does

``train_run`` owns the run folder (:class:`RunDir`): it claims the folder with a
lock that dies with its process (two runs can never write into one folder, and
a ``kill -9``'s claim is free for ``--resume``), refuses a folder it cannot
write or a disk without room for the model and checkpoints before it trains,
saves a checkpoint at the end of every epoch and when stopped (Ctrl-C or
SIGTERM, through :class:`~nnscratch.training.StopOnSignal`), stops a run whose
loss explodes (:class:`~nnscratch.training.ExplosionGuard`), and writes the
final model, history and plots atomically. A start that is refused or fails
leaves no empty folder behind; finished training is never lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from nnscratch.errors import ConfigError, FileWriteError, ModelFileError, NnscratchError, TrainingDivergedError
from nnscratch.files import atomic_write, check_writable, remove_temporary_files

__all__ = ["RunSettings", "build_model", "build_optimizer", "build_augment", "load_run_data", "fit",
           "FitResult", "train_run", "RunResult", "RunDir", "RunInUseError", "MODEL_KINDS",
           "OPTIMIZER_NAMES", "DATASET_NAMES", "DEFAULT_LR", "DEFAULT_HIDDEN", "MODEL_CLASSES"]

MODEL_KINDS = ("two-layer", "mlp", "simple-cnn", "deep-cnn")
MODEL_CLASSES = {"two-layer": "TwoLayerNet", "mlp": "MultiLayerNet",
                 "simple-cnn": "SimpleConvNet", "deep-cnn": "DeepConvNet"}
CONV_KINDS = ("simple-cnn", "deep-cnn")
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
DATASET_NAMES = ("mnist", "fashion-mnist", "kmnist")
# Learning rates that work for each rule on MNIST (the book's chapter-6 comparison).
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01,
              "rmsprop": 0.001, "adam": 0.001}
DEFAULT_HIDDEN = {"two-layer": [100], "mlp": [256], "simple-cnn": [100], "deep-cnn": [50]}
# Training accuracy per epoch is measured on this many training images (as the book does).
TRAIN_ACC_SAMPLES = 10_000

# Bounds that keep a typo from allocating the machine away before anything is checked.
MAX_EPOCHS = 100_000
MAX_BATCH = 1_000_000
MAX_HIDDEN_UNITS = 100_000
MAX_HIDDEN_LAYERS = 100


# ============================================================================ settings


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _int_in(low, high=None):
    def check(value):
        if not _is_int(value) or value < low or (high is not None and value > high):
            upper = f" and at most {high:,}" if high is not None else ""
            return f"must be an integer of at least {low}{upper}"
        return None
    return check


def _number(*, positive=False, minimum=None, open_unit=False):
    def check(value):
        if not _is_number(value) or not math.isfinite(value):
            return "must be a finite number"
        if positive and not value > 0:
            return "must be a positive number"
        if minimum is not None and value < minimum:
            return f"must be >= {minimum:g}"
        if open_unit and not 0 < value < 1:
            return "must lie in (0, 1)"
        return None
    return check


def _one_of(choices):
    def check(value):
        return None if value in choices else f"must be one of {', '.join(choices)}"
    return check


def _boolean(value):
    return None if isinstance(value, (bool, np.bool_)) else "must be true or false"


def _optional(check):
    return lambda value: None if value is None else check(value)


def _hidden(value):
    if not isinstance(value, (list, tuple)) or not value or len(value) > MAX_HIDDEN_LAYERS:
        return f"must be a list of 1 to {MAX_HIDDEN_LAYERS} layer sizes"
    if not all(_is_int(h) and 1 <= h <= MAX_HIDDEN_UNITS for h in value):
        return f"sizes must be integers from 1 to {MAX_HIDDEN_UNITS:,}"
    return None


@dataclass
class RunSettings:
    """Everything that decides a training run; the defaults are plain ``nnscratch train``.

    ``lr=None`` and ``hidden=None`` mean "the default of the optimizer / model"
    (:data:`DEFAULT_LR`, :data:`DEFAULT_HIDDEN`); :meth:`resolved` fills them in
    and checks every field against :attr:`CONSTRAINTS` and the model's own rules,
    raising a :class:`~nnscratch.errors.ConfigError` that names the field. A
    settings object round-trips through JSON (:meth:`to_dict`, :meth:`from_dict`).
    """

    model: str = "mlp"
    hidden: list[int] | None = None
    epochs: int = 5
    batch_size: int = 100
    optimizer: str = "adam"
    lr: float | None = None
    weight_decay: float = 0.0
    dropout: float | None = None
    batchnorm: bool = False
    augment: bool = False
    seed: int = 0
    dataset: str = "mnist"
    limit: int | None = None

    # field -> check(value) returning None or what is wrong (scikit-learn's
    # _parameter_constraints, as plain functions).
    CONSTRAINTS: ClassVar[dict[str, Callable[[Any], str | None]]]

    def resolved(self) -> "RunSettings":
        """A checked copy with the defaults that depend on other fields filled in."""
        self._check_fields()
        filled = dataclasses.replace(self)
        if filled.lr is None:
            filled.lr = DEFAULT_LR[filled.optimizer]
        if filled.hidden is None:
            filled.hidden = list(DEFAULT_HIDDEN[filled.model])
        filled.hidden = [int(h) for h in filled.hidden]
        filled._check_fields()
        filled._check_combination()
        return filled

    def _check_fields(self) -> None:
        for name, check in _CONSTRAINTS.items():
            problem = check(getattr(self, name))
            if problem:
                raise ConfigError(f"{name} {problem}, got {_short(getattr(self, name))}")

    def _check_combination(self) -> None:
        model, hidden = self.model, self.hidden
        if model == "two-layer":
            if len(hidden) != 1:
                raise ConfigError(f"hidden: model two-layer has one hidden layer, got {_short(hidden)}")
            unsupported = [name for name, on in (("dropout", self.dropout is not None),
                                                 ("batchnorm", self.batchnorm),
                                                 ("weight_decay", self.weight_decay > 0)) if on]
            if unsupported:
                raise ConfigError(f"{', '.join(unsupported)}: model two-layer is the book's plain "
                                  "TwoLayerNet; use model mlp")
        if model in CONV_KINDS:
            if len(hidden) != 1:
                raise ConfigError(f"hidden: model {model} has one fully connected hidden layer, "
                                  f"got {_short(hidden)}")
            if self.batchnorm or self.weight_decay > 0:
                name = "batchnorm" if self.batchnorm else "weight_decay"
                raise ConfigError(f"{name} is available with model mlp, not {model}")
            if model == "simple-cnn" and self.dropout is not None:
                raise ConfigError("dropout is available with model mlp and deep-cnn, not simple-cnn")

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self) if f.init}

    @classmethod
    def from_dict(cls, data: dict) -> "RunSettings":
        """Settings from ``to_dict()`` output (e.g. a checkpoint's); unknown keys are refused."""
        if not isinstance(data, dict):
            raise ConfigError(f"run settings must be an object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown run settings: {_short(unknown)}")
        settings = cls(**data)
        settings._check_fields()
        return settings

    def label(self) -> str:
        """One line saying what is trained, e.g. ``MultiLayerNet (hidden 256), adam lr=0.001``."""
        extras = []
        if self.model in ("two-layer", "mlp"):
            extras.append("hidden " + "x".join(str(h) for h in self.hidden or DEFAULT_HIDDEN[self.model]))
        if self.batchnorm:
            extras.append("batchnorm")
        if self.dropout is not None:
            extras.append(f"dropout {self.dropout:g}")
        if self.weight_decay:
            extras.append(f"weight decay {self.weight_decay:g}")
        if self.augment:
            extras.append("augmented")
        extra = f" ({', '.join(extras)})" if extras else ""
        lr = self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]
        return f"{MODEL_CLASSES[self.model]}{extra}, {self.optimizer} lr={lr:g}"


_CONSTRAINTS: dict[str, Callable[[Any], str | None]] = {
    "model": _one_of(MODEL_KINDS),
    "hidden": _optional(_hidden),
    "epochs": _int_in(1, MAX_EPOCHS),
    "batch_size": _int_in(1, MAX_BATCH),
    "optimizer": _one_of(OPTIMIZER_NAMES),
    "lr": _optional(_number(positive=True)),
    "weight_decay": _number(minimum=0.0),
    "dropout": _optional(_number(open_unit=True)),
    "batchnorm": _boolean,
    "augment": _boolean,
    "seed": _int_in(0, 2**63 - 1),
    "dataset": _one_of(DATASET_NAMES),
    "limit": _optional(_int_in(1)),
}
RunSettings.CONSTRAINTS = _CONSTRAINTS


def _short(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 5] + " ...]"


# ============================================================================ building


def build_model(settings: RunSettings, *, input_shape=(1, 28, 28), n_classes: int = 10):
    """The network ``settings`` asks for (He initialisation for ReLU networks).

    ``input_shape`` is one sample's shape: the MLPs take ``prod(input_shape)``
    features, the conv nets ``(C, H, W)``.
    """
    from nnscratch.models.registry import build_model as build_registered

    s = settings.resolved()
    input_shape = tuple(int(d) for d in input_shape)
    features = math.prod(input_shape)
    if s.model in CONV_KINDS and len(input_shape) != 3:
        raise ConfigError(f"model {s.model} takes images of shape (channels, height, width), "
                          f"got samples of shape {input_shape}")
    if s.model == "two-layer":
        config = dict(input_size=features, hidden_size=s.hidden[0], output_size=n_classes,
                      weight_init_std=float(np.sqrt(2.0 / features)), seed=s.seed)
    elif s.model == "mlp":
        config = dict(input_size=features, hidden_size_list=list(s.hidden), output_size=n_classes,
                      activation="relu", weight_init_std="he", weight_decay_lambda=s.weight_decay,
                      seed=s.seed)
        if s.dropout is not None:
            config.update(use_dropout=True, dropout_ratio=s.dropout)
        if s.batchnorm:
            config.update(use_batchnorm=True)
    elif s.model == "simple-cnn":
        config = dict(input_dim=input_shape, hidden_size=s.hidden[0], output_size=n_classes,
                      weight_init_std=0.01, seed=s.seed)
    else:
        config = dict(input_dim=input_shape, hidden_size=s.hidden[0], output_size=n_classes, seed=s.seed)
        if s.dropout is not None:
            config.update(dropout_ratio=s.dropout)
    return build_registered(MODEL_CLASSES[s.model], config)


def build_optimizer(settings: RunSettings):
    """The update rule of ``settings`` with its learning rate."""
    from nnscratch.optimizers import build_optimizer as build_named

    s = settings.resolved()
    return build_named(s.optimizer, lr=s.lr)


def build_augment(settings: RunSettings, input_shape):
    """The Trainer's ``augment`` for ``settings.augment`` (None when off).

    Random shifts of up to 2 pixels and rotations of up to 10 degrees, for
    single-channel images; MLPs see flat rows, which are reshaped around it.
    """
    if not settings.augment:
        return None
    from nnscratch.augment import Augmenter

    input_shape = tuple(input_shape)
    if len(input_shape) == 3 and input_shape[0] == 1:
        image_shape = input_shape
    else:
        side = math.isqrt(math.prod(input_shape))
        if len(input_shape) != 1 or side * side != input_shape[0]:
            raise ConfigError(f"augment needs square single-channel images, got samples of shape {input_shape}")
        image_shape = (1, side, side)
    augmenter = Augmenter(max_shift=2, rotation=10.0)
    if image_shape == input_shape:
        return augmenter

    def augment_flat(x_batch, rng):
        return augmenter(x_batch.reshape(-1, *image_shape), rng).reshape(x_batch.shape)

    return augment_flat


def dataset_key(name: str) -> str:
    """load_mnist's name of a dataset (the CLI spells fashion-mnist with a dash)."""
    return {"fashion-mnist": "fashion_mnist"}.get(name, name)


def load_run_data(settings: RunSettings):
    """``(x_train, t_train, x_test, t_test)`` of the settings' dataset, shaped for its model."""
    from nnscratch.datasets import load_mnist

    (x_train, t_train), (x_test, t_test) = load_mnist(
        normalize=True, flatten=settings.model not in CONV_KINDS, one_hot_label=False,
        limit=settings.limit, dataset=dataset_key(settings.dataset))
    return x_train, t_train, x_test, t_test


def class_names(dataset: str) -> list[str]:
    """The dataset's class names ('0'..'9' for MNIST, clothing for Fashion-MNIST)."""
    try:
        from nnscratch.datasets.mnist import dataset_info

        return [str(c) for c in dataset_info(dataset_key(dataset)).classes]
    except (ImportError, NnscratchError, AttributeError):
        return [str(i) for i in range(10)]


def parameter_count(settings: RunSettings, *, input_shape=(1, 28, 28), n_classes: int = 10) -> int:
    """Trainable parameters of the model ``settings`` builds, without building it."""
    s = settings.resolved()
    if s.model in ("two-layer", "mlp"):
        sizes = [math.prod(input_shape), *s.hidden, n_classes]
        count = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
        if s.batchnorm:
            count += 2 * sum(s.hidden)
        return count
    # The conv nets are small and fixed apart from the hidden layer: build to count.
    model = build_model(s, input_shape=input_shape, n_classes=n_classes)
    return sum(p.size for p in model.params.values())


# ============================================================================ fit (in memory)


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained objects, in memory."""

    model: Any
    optimizer: Any
    history: Any
    trainer: Any

    @property
    def interrupted(self) -> bool:
        return bool(self.trainer.interrupted)


def fit(settings: RunSettings, data, *, callbacks=(), model=None, optimizer=None, input_shape=None,
        n_classes: int | None = None, eval_samples: int | None = TRAIN_ACC_SAMPLES,
        explosion_guard: bool = True, shuffle: bool = True) -> FitResult:
    """Train in memory, writing nothing: the engine of the estimator and of sweeps.

    Parameters
    ----------
    settings : RunSettings
        Checked (and its defaults filled in) here; ``dataset`` and ``limit`` are
        not used, the data is given.
    data : tuple
        ``(x_train, t_train, x_val, t_val)``; ``x_val``/``t_val`` may be None.
        Labels are integers ``0..K-1``.
    callbacks : sequence
        Extra :class:`~nnscratch.training.Trainer` callbacks.
    model, optimizer : optional
        Continue training these instead of building new ones.
    input_shape : tuple, optional
        One sample's shape (default ``x_train.shape[1:]``; conv nets need ``(C, H, W)``).
    n_classes : int, optional
        Default: the largest label + 1.
    eval_samples : int or None
        Training accuracy per epoch on this many training samples (None: all).
    explosion_guard : bool
        Stop with :class:`~nnscratch.errors.TrainingDivergedError` when the loss explodes.
    shuffle : bool
        A new order of the training samples every epoch (False: as given).
    """
    from nnscratch.training import ExplosionGuard, Trainer

    s = settings.resolved()
    x_train, t_train, x_val, t_val = data
    x_train = np.asarray(x_train)
    if input_shape is None:
        input_shape = x_train.shape[1:]
    input_shape = tuple(int(d) for d in input_shape)
    if n_classes is None:
        labels = [np.asarray(t_train)] + ([np.asarray(t_val)] if t_val is not None else [])
        n_classes = int(max(int(t.max()) if t.ndim == 1 else t.shape[1] - 1 for t in labels)) + 1
    if model is None:
        model = build_model(s, input_shape=input_shape, n_classes=n_classes)
    if optimizer is None:
        optimizer = build_optimizer(s)
    model_shape = tuple(getattr(model, "input_shape", input_shape))

    def shaped(x):
        return None if x is None else np.asarray(x).reshape((-1, *model_shape))

    callbacks = list(callbacks)
    if explosion_guard:
        callbacks.insert(0, ExplosionGuard(DEFAULT_LR[s.optimizer]))
    trainer = Trainer(model, optimizer, shaped(x_train), np.asarray(t_train), shaped(x_val),
                      None if t_val is None else np.asarray(t_val),
                      epochs=s.epochs, batch_size=s.batch_size, seed=s.seed,
                      evaluate_sample_num_per_epoch=None if eval_samples is None else min(eval_samples, len(x_train)),
                      augment=build_augment(s, model_shape), shuffle=shuffle, callbacks=callbacks)
    with np.errstate(over="ignore", invalid="ignore"):
        history = trainer.fit()
    return FitResult(model, optimizer, history, trainer)


# ============================================================================ run folders


CHECKPOINT_NAME = "checkpoint.npz"
MODEL_NAME = "model.npz"
LOCK_NAME = ".nnscratch-run.lock"
PLOT_NAMES = ("loss.png", "accuracy.png", "confusion.png", "misclassified.png")
# Files a run writes: a directory holding any of them is never reused silently.
RUN_FILES = (MODEL_NAME, CHECKPOINT_NAME, "history.json", "history.csv", *PLOT_NAMES)


class RunInUseError(ConfigError):
    """Another live process holds the run folder."""


class RunDir:
    """A run's folder: its layout, its claim, the ``runs/latest`` link and leftover cleaning.

    The claim is an exclusive ``flock`` on ``.nnscratch-run.lock`` inside the
    folder, held as long as the run's process lives: a second run into the same
    folder is refused at once, and the claim of a process killed with
    ``kill -9`` vanishes with it (so ``--resume`` can take the folder over).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.created = False
        self._lock_fd: int | None = None

    # -- layout
    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def model(self) -> Path:
        return self.path / MODEL_NAME

    def existing_run_files(self) -> list[str]:
        return [name for name in RUN_FILES if (self.path / name).exists()]

    @staticmethod
    def new_path(model: str, root="runs") -> Path:
        """``runs/<model>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3`` ... when taken)."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(root) / f"{model}-{stamp}"
        n = 2
        while out.exists():
            out = Path(root) / f"{model}-{stamp}-{n}"
            n += 1
        return out

    # -- claiming
    def check_new(self) -> None:
        """Refuse a path that is a file or already holds a run (other files are left alone)."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is not a directory; give a folder for the run")
        existing = self.existing_run_files()
        if existing:
            resume = (f"resume it with `nnscratch train --resume {self.path}` or "
                      if CHECKPOINT_NAME in existing else "")
            raise ConfigError(f"{self.path} already holds a run ({', '.join(existing)}), which train never "
                              f"overwrites: {resume}choose another --out")

    def claim(self, *, create: bool) -> None:
        """Create the folder if asked (remembering that it did) and take the run's lock."""
        import fcntl

        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is not a directory; give a folder for the run")
        if create and not self.path.exists():
            try:
                self.path.mkdir(parents=True)
            except FileExistsError:
                pass
            except OSError as exc:
                raise FileWriteError(f"{self.path}: cannot create the run folder: "
                                     f"{exc.strerror or exc}") from exc
            else:
                self.created = True
        lock_path = self.path / LOCK_NAME
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            self.release(failed=True)
            raise FileWriteError(f"{self.path}: cannot write in the run folder: "
                                 f"{exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunInUseError(f"{self.path} is in use by another training run ({holder}); "
                                "wait for it to finish or choose another --out") from None
        self._lock_fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": datetime.now().isoformat(timespec="seconds")}).encode())

    def clean_leftovers(self) -> None:
        """Delete temporary files that a killed run left half-written (atomic_write's names)."""
        for name in RUN_FILES:
            remove_temporary_files(self.path / name)

    def release(self, *, failed: bool = False) -> None:
        """Drop the claim; after a failed start, remove the folder if this run created it and it is empty."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                (self.path / LOCK_NAME).unlink()
            os.close(self._lock_fd)
            self._lock_fd = None
        if failed and self.created:
            with contextlib.suppress(OSError):
                (self.path / LOCK_NAME).unlink(missing_ok=True)
                self.path.rmdir()  # only if empty: never deletes anything else
            self.created = False

    def point_latest_here(self) -> None:
        """Make ``runs/latest`` a symlink to this run (best effort: not every filesystem has links)."""
        out = self.path
        if out.parent.name != "runs":
            return
        latest = out.parent / "latest"
        if latest.exists() and not latest.is_symlink():
            return
        temporary = out.parent / f".latest-{os.getpid()}"
        try:
            os.symlink(out.name, temporary)
            os.replace(temporary, latest)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
        return f"pid {int(info['pid'])} on {str(info.get('host'))[:64]}, started {str(info.get('started'))[:32]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that is starting"


def _space_needed(parameters: int, itemsize: int = 4) -> int:
    """Bytes a run's files may take at their largest: model, checkpoint (with up to two
    optimizer slots per parameter) and the temporary copy of each while it is replaced,
    plus the plots and histories."""
    return 2 * (parameters * itemsize * 4 + 64 * 1024) + 4 * 1024 * 1024


# ============================================================================ train_run


@dataclass
class RunResult:
    """What :func:`train_run` returns."""

    out: Path
    model: Any
    history: Any
    test_accuracy: float | None = None
    files: list[str] = field(default_factory=list)
    interrupted: bool = False
    stop_signal: int | None = None      # the signal that stopped it (SIGINT, SIGTERM), if any
    settings: RunSettings | None = None
    summary: dict = field(default_factory=dict)
    trainer: Any = None                 # where it stopped: trainer.epoch, .batch_index


class _Checkpointer:
    """Trainer callback: a checkpoint at the end of every epoch (and on demand)."""

    def __init__(self, run: RunDir, settings: RunSettings, plots: bool, guard=None):
        self.run, self.settings, self.plots, self.guard = run, settings, plots, guard
        self.saved_epoch: int | None = None  # the epoch count of the last checkpoint on disk

    def save(self, trainer) -> None:
        from nnscratch import io as nnio

        protect = self.guard.protect() if self.guard is not None else contextlib.nullcontext()
        with protect:
            nnio.save_checkpoint(self.run.checkpoint, trainer.state_dict(), model=trainer.model,
                                 optimizer=trainer.optimizer,
                                 args={"settings": self.settings.to_dict(), "plots": self.plots})
        self.saved_epoch = trainer.epoch

    def kept(self) -> str:
        if self.saved_epoch is None or not self.run.checkpoint.exists():
            return "no checkpoint was written"
        return f"the last good checkpoint (end of epoch {self.saved_epoch}) is kept in {self.run.checkpoint}"

    def on_epoch_end(self, trainer, epoch, record):
        self.save(trainer)


class _EpochLog:
    """Trainer callback: one line per epoch."""

    def __init__(self, log):
        self.log = log

    def on_epoch_end(self, trainer, epoch, record):
        self.log(f"epoch {epoch}/{trainer.epochs}  loss {record['train_loss']:.4f}  "
                 f"train acc {_percent(record['train_acc'])}  "
                 f"test acc {_percent(record['test_acc'])}  {record['seconds']:.1f} s")


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _epochs(count: int) -> str:
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def _quiet(*_args, **_kwargs) -> None:
    pass


def _resume_state(resume) -> tuple[Path, Any, RunSettings, bool]:
    from nnscratch import io as nnio

    resume = Path(resume)
    ckpt_path = resume if resume.suffix == ".npz" else resume / CHECKPOINT_NAME
    if not ckpt_path.exists():
        raise ModelFileError(f"{ckpt_path}: no checkpoint to resume from")
    checkpoint = nnio.load_checkpoint(ckpt_path)
    saved = checkpoint.args.get("settings")
    try:
        settings = RunSettings.from_dict(saved)
    except ConfigError as exc:
        raise ModelFileError(f"{ckpt_path}: not a checkpoint of `nnscratch train` "
                             f"(its saved settings are missing or wrong: {exc})") from None
    plots = checkpoint.args.get("plots", True)
    return ckpt_path, checkpoint, settings, plots is not False


def train_run(settings: RunSettings | None = None, out=None, *, resume=None, epochs: int | None = None,
              callbacks=(), plots: bool | None = None, log: Callable[[str], None] | None = print,
              latest: bool | None = None, handle_signals: bool = True) -> RunResult:
    """A complete training run into a folder: exactly what ``nnscratch train`` does.

    Parameters
    ----------
    settings : RunSettings
        What to train (ignored with ``resume``: the checkpoint's settings are used).
    out : path, optional
        The run folder (default ``runs/<model>-<time>``, then linked as ``runs/latest``).
        A folder that already holds a run is refused.
    resume : path, optional
        A run folder or checkpoint to continue; ``epochs`` may raise its number of epochs.
    callbacks : sequence
        Extra Trainer callbacks (a progress bar, a web page's event stream); a callback may
        call ``trainer.request_stop()`` to stop at the end of the batch (checkpoint kept,
        ``result.interrupted``).
    plots : bool, optional
        Write the PNGs (default True; a resumed run keeps its original choice).
    log : callable or None
        Receives each line of the run's report (None: silent).
    latest : bool, optional
        Point ``runs/latest`` at the run (default: when ``out`` was not given).
    handle_signals : bool
        In the main thread, Ctrl-C and SIGTERM stop at the end of the batch with a
        checkpoint (a second one aborts); off in worker threads anyway.

    Raises
    ------
    ConfigError, RunInUseError, FileWriteError, ModelFileError, DatasetError
        Before training starts; no empty run folder is left behind.
    TrainingDivergedError
        The loss became NaN or exploded; the last good checkpoint is kept.
    """
    from nnscratch.training import ExplosionGuard, StopOnSignal, Trainer

    say = log or _quiet
    checkpoint = None
    if resume is not None:
        ckpt_path, checkpoint, settings, saved_plots = _resume_state(resume)
        if epochs is not None:
            done = checkpoint.trainer_state.get("epoch")
            if isinstance(done, int) and epochs < done:
                raise ConfigError(f"--epochs {epochs} is fewer than the {_epochs(done)} "
                                  f"{ckpt_path} has already done")
            settings = dataclasses.replace(settings, epochs=epochs)
        plots = saved_plots if plots is None else plots
        run = RunDir(ckpt_path.parent)
    else:
        if settings is None:
            settings = RunSettings()
        if epochs is not None:
            settings = dataclasses.replace(settings, epochs=epochs)
        if latest is None:
            latest = out is None
        run = RunDir(out if out is not None else RunDir.new_path(settings.model))
    plots = True if plots is None else bool(plots)
    settings = settings.resolved()

    # Claim and check the folder before any data is loaded or anything trained: a second run
    # into it, an unwritable folder or a full disk are refused now, not after an epoch.
    run.claim(create=checkpoint is None)
    try:
        if checkpoint is None:
            run.check_new()  # under the claim: a run that is still going is "in use" instead
        else:
            run.clean_leftovers()
        image_shape = (1, 28, 28) if settings.model in CONV_KINDS else (784,)
        need = _space_needed(parameter_count(settings))
        check_writable(run.path, need_bytes=need, what="the model and checkpoints")
        x_train, t_train, x_test, t_test = load_run_data(settings)
        if checkpoint is not None:
            model, optimizer = checkpoint.model, checkpoint.optimizer
        else:
            model, optimizer = build_model(settings), build_optimizer(settings)
    except BaseException:
        run.release(failed=True)
        raise

    try:
        if latest and checkpoint is None:
            run.point_latest_here()
        return _train_in(run, settings, checkpoint, model, optimizer,
                         (x_train, t_train, x_test, t_test), image_shape, callbacks, plots, say,
                         handle_signals, Trainer, ExplosionGuard, StopOnSignal)
    finally:
        run.release()


def _train_in(run, settings, checkpoint, model, optimizer, data, image_shape, callbacks, plots, say,
              handle_signals, Trainer, ExplosionGuard, StopOnSignal) -> RunResult:
    x_train, t_train, x_test, t_test = data
    stopper = StopOnSignal(enabled=handle_signals)
    saver = _Checkpointer(run, settings, plots, guard=stopper)
    trainer = Trainer(model, optimizer, x_train, t_train, x_test, t_test,
                      epochs=settings.epochs, batch_size=settings.batch_size, seed=settings.seed,
                      evaluate_sample_num_per_epoch=min(TRAIN_ACC_SAMPLES, len(x_train)),
                      augment=build_augment(settings, image_shape),
                      callbacks=[ExplosionGuard(DEFAULT_LR[settings.optimizer]), *callbacks,
                                 _EpochLog(say), saver])
    stopper.trainer = trainer
    dataset = settings.dataset.upper() if settings.dataset == "mnist" else settings.dataset
    say(f"Training {settings.label()} on {dataset} "
        f"({len(x_train)} training / {len(x_test)} test images), "
        f"{_epochs(settings.epochs)} of batch {settings.batch_size}, seed {settings.seed}")
    say(f"Output: {run.path}")
    if checkpoint is not None:
        try:
            trainer.load_state_dict(checkpoint.trainer_state)
        except NnscratchError as exc:
            raise ModelFileError(f"{run.checkpoint}: cannot resume: {exc}") from exc
        except (KeyError, TypeError, ValueError, IndexError) as exc:  # a forged or foreign state
            raise ModelFileError(f"{run.checkpoint}: corrupt checkpoint: cannot restore the "
                                 f"training state ({type(exc).__name__})") from exc
        where = (f"epoch {trainer.epoch + 1}, batch {trainer.batch_index}/{trainer.batches_per_epoch}"
                 if trainer.batch_index else f"epoch {trainer.epoch + 1}")
        say(f"Resuming at {where}")
        saver.saved_epoch = trainer.epoch

    result = RunResult(run.path, model, trainer.history, settings=settings, trainer=trainer)
    with stopper:
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                history = trainer.fit()
        except TrainingDivergedError as exc:
            kept = saver.kept()
            if saver.saved_epoch is None:
                kept += " (it diverged in the first epoch)"
            raise TrainingDivergedError(f"{exc} Training stopped; {kept}.") from exc
        except FileWriteError as exc:
            raise FileWriteError(f"{exc}; training stopped, {saver.kept()}") from exc
        result.history = history
        if trainer.interrupted:
            saver.save(trainer)
            result.interrupted = True
            result.stop_signal = stopper.signal_number
            return result
        # Training is done and in the last epoch's checkpoint; from here on a signal only
        # delays the results a moment instead of losing them.
        stopper.finishing = True
        with stopper.protect(abort_after=False):
            _finish_run(run, result, settings, x_test, t_test, plots, say)
    return result


def predict_scores(model, x, batch_size: int = 500):
    """The model's scores for many inputs, a batch at a time (memory stays bounded)."""
    x = x.reshape((-1, *model.input_shape))
    return np.concatenate([model.predict(x[i:i + batch_size], train_flg=False)
                           for i in range(0, len(x), batch_size)])


def _finish_run(run: RunDir, result: RunResult, settings: RunSettings, x_test, t_test, plots: bool,
                say) -> None:
    from nnscratch import io as nnio

    model, history, out = result.model, result.history, run.path
    predicted = predict_scores(model, x_test).argmax(axis=1)
    labels = np.asarray(t_test)
    test_acc = float(np.mean(predicted == labels))
    last = history.epochs[-1] if history.epochs else {}
    summary = {
        "dataset": settings.dataset,
        "epochs": len(history.epochs),
        "test_accuracy": test_acc,
        "train_accuracy": last.get("train_acc"),
        "train_loss": last.get("train_loss"),
        "training_seconds": round(sum(r["seconds"] for r in history.epochs), 2),
        "settings": settings.to_dict(),
    }
    nnio.save_model(model, run.model, summary=summary)
    with atomic_write(out / "history.json", "w") as f:
        json.dump(history.to_dict(), f, indent=1)
        f.write("\n")
    with atomic_write(out / "history.csv", "w") as f:
        history.to_csv(f)
    written = [MODEL_NAME, "history.json", "history.csv"]
    if plots:
        written += save_training_plots(out, history, x_test, labels, predicted, settings.dataset)
    result.test_accuracy, result.files, result.summary = test_acc, written, summary
    say(f"Test accuracy {100 * test_acc:.2f}% ({int(np.sum(predicted == labels))}/{len(labels)}) "
        f"after {_epochs(len(history.epochs))}, {summary['training_seconds']:.1f} s of training")
    say(f"Saved in {out}: {'  '.join(written)}")


def save_training_plots(out: Path, history, x_test, labels, predicted, dataset) -> list[str]:
    """loss.png, accuracy.png, confusion.png and misclassified.png of a finished run."""
    from nnscratch.plots import digits as digit_plots
    from nnscratch.plots import training as training_plots

    names = class_names(dataset)
    training_plots.plot_loss_curve(history, out / "loss.png")
    accuracies = [v for v in history.train_acc_list + history.test_acc_list if v is not None]
    low = max(0.0, math.floor((min(accuracies) - 0.01) * 50) / 50) if accuracies else 0.0
    training_plots.plot_accuracy(history, out / "accuracy.png", ylim=(low, 1.0))
    training_plots.plot_confusion_matrix(labels, predicted, out / "confusion.png",
                                         num_classes=len(names), class_names=names)
    written = ["loss.png", "accuracy.png", "confusion.png"]
    wrong = np.flatnonzero(predicted != labels)
    if len(wrong):
        shown = wrong[:64]
        digit_plots.save_digit_grid(x_test[shown].reshape(-1, 28, 28), labels[shown],
                                    out / "misclassified.png", predicted=predicted[shown],
                                    title=f"{len(wrong)} misclassified test images "
                                          f"(first {len(shown)}): predicted (true label)")
        written.append("misclassified.png")
    return written
