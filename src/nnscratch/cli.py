"""The ``nnscratch`` command: train, evaluate, predict, show and plot.

Every subcommand is a small function over the library; heavy modules
(matplotlib, tqdm, the models) are imported inside the commands so that
``nnscratch --help`` answers at once. Errors the user can act on (an
``NnscratchError``) print one ``error: ...`` line and exit with status 2;
Ctrl-C during training saves a checkpoint and exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from nnscratch import __version__
from nnscratch.errors import (ConfigError, ModelFileError, NnscratchError, ShapeError,
                              TrainingDivergedError)

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

MODEL_KINDS = ("two-layer", "mlp", "simple-cnn", "deep-cnn")
MODEL_CLASSES = {"two-layer": "TwoLayerNet", "mlp": "MultiLayerNet",
                 "simple-cnn": "SimpleConvNet", "deep-cnn": "DeepConvNet"}
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
DATASET_NAMES = ("mnist", "fashion-mnist", "kmnist")
# Learning rates that work for each rule on MNIST (the book's chapter-6 comparison).
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01,
              "rmsprop": 0.001, "adam": 0.001}
DEFAULT_HIDDEN = {"two-layer": [100], "mlp": [256], "simple-cnn": [100], "deep-cnn": [50]}

# What plain `nnscratch train` does (README: `make train`).
TRAIN_DEFAULTS = {
    "model": "mlp",
    "epochs": 5,
    "batch_size": 100,
    "optimizer": "adam",
    "lr": None,            # None: DEFAULT_LR of the optimizer
    "weight_decay": 0.0,
    "dropout": None,
    "batchnorm": False,
    "hidden": None,        # None: DEFAULT_HIDDEN of the model
    "augment": False,
    "seed": 0,
    "dataset": "mnist",
    "limit": None,
}
# Training accuracy per epoch is measured on this many training images (as the book does).
TRAIN_ACC_SAMPLES = 10_000
CHECKPOINT_NAME = "checkpoint.npz"
MODEL_NAME = "model.npz"


# ============================================================================ helpers


def _dataset_key(name: str) -> str:
    return {"fashion-mnist": "fashion_mnist"}.get(name, name)


def _say(*parts, **kwargs) -> None:
    print(*parts, **kwargs, flush=True)


def _load_data(dataset: str, *, flatten: bool, limit=None, split: str | None = None):
    from nnscratch.datasets import load_mnist

    (x_train, t_train), (x_test, t_test) = load_mnist(
        normalize=True, flatten=flatten, one_hot_label=False, limit=limit, dataset=_dataset_key(dataset)
    )
    if split == "train":
        return x_train, t_train
    if split == "test":
        return x_test, t_test
    return (x_train, t_train), (x_test, t_test)


def _class_names(dataset: str) -> list[str]:
    try:
        from nnscratch.datasets.mnist import dataset_info

        return [str(c) for c in dataset_info(_dataset_key(dataset)).classes]
    except (ImportError, NnscratchError, AttributeError):
        return [str(i) for i in range(10)]


def _wants_images(model) -> bool:
    return len(getattr(model, "input_shape", (784,))) == 3


def _check_takes_digit_images(model, source: str) -> None:
    """The datasets and prepare_digit give 28x28 images; a model built for other inputs cannot use them."""
    shape = tuple(getattr(model, "input_shape", (784,)))
    if math.prod(shape) != 28 * 28:
        raise ShapeError(f"{source}: this {type(model).__name__} takes inputs of shape {shape}, "
                         "not 28x28 digit images (784 values)")


def _predict_scores(model, x, batch_size: int = 500):
    import numpy as np

    x = x.reshape((-1, *model.input_shape))
    return np.concatenate([model.predict(x[i:i + batch_size], train_flg=False)
                           for i in range(0, len(x), batch_size)])


def _load_model_arg(model_path):
    from nnscratch import io as nnio

    if model_path is None:
        return nnio.load_pretrained(), f"pretrained {nnio.PRETRAINED_MODEL}"
    path = Path(model_path)
    if path.is_dir():
        path = path / MODEL_NAME
    model = nnio.load_model(path)
    _check_takes_digit_images(model, str(path))
    return model, str(path)


def _describe_model(model) -> str:
    config = getattr(model, "config", {})
    name = type(model).__name__
    if "hidden_size_list" in config:
        name += f" {list(config['hidden_size_list'])}"
    elif "hidden_size" in config and name == "TwoLayerNet":
        name += f" [{config['hidden_size']}]"
    count = sum(p.size for p in model.params.values())
    return f"{name}, {count:,} parameters"


def _epochs(count: int) -> str:
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def _percent(value) -> str:
    return "  n/a " if value is None else f"{100 * value:6.2f}%"


# ============================================================================ train


def _settings_from_args(args) -> dict:
    settings = {key: getattr(args, key) for key in TRAIN_DEFAULTS}
    for key, default in TRAIN_DEFAULTS.items():
        if settings[key] is None:
            settings[key] = default
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
    if settings["hidden"] is None:
        settings["hidden"] = list(DEFAULT_HIDDEN[settings["model"]])
    return settings


def _check_settings(s: dict) -> None:
    for name in ("epochs", "batch_size"):
        if s[name] < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {s[name]}")
    if s["limit"] is not None and s["limit"] < 1:
        raise ConfigError(f"--limit must be at least 1, got {s['limit']}")
    if not s["lr"] > 0:
        raise ConfigError(f"--lr must be a positive number, got {s['lr']}")
    if s["weight_decay"] < 0:
        raise ConfigError(f"--weight-decay must be >= 0, got {s['weight_decay']}")
    if s["dropout"] is not None and not 0 < s["dropout"] < 1:
        raise ConfigError(f"--dropout RATIO must lie in (0, 1), got {s['dropout']}")
    if s["seed"] < 0:
        raise ConfigError(f"--seed must be >= 0, got {s['seed']}")
    if any(h < 1 for h in s["hidden"]):
        raise ConfigError(f"--hidden sizes must be positive, got {s['hidden']}")
    model = s["model"]
    if model == "two-layer":
        if len(s["hidden"]) != 1:
            raise ConfigError(f"--model two-layer has one hidden layer: give one --hidden size, got {s['hidden']}")
        unsupported = [flag for flag, on in (("--dropout", s["dropout"] is not None),
                                             ("--batchnorm", s["batchnorm"]),
                                             ("--weight-decay", s["weight_decay"] > 0)) if on]
        if unsupported:
            raise ConfigError(f"--model two-layer is the book's plain TwoLayerNet; "
                              f"{', '.join(unsupported)} need --model mlp")
    if model in ("simple-cnn", "deep-cnn"):
        if len(s["hidden"]) != 1:
            raise ConfigError(f"--model {model} has one fully connected hidden layer: "
                              f"give one --hidden size, got {s['hidden']}")
        if s["batchnorm"] or s["weight_decay"] > 0:
            flag = "--batchnorm" if s["batchnorm"] else "--weight-decay"
            raise ConfigError(f"{flag} is available with --model mlp, not {model}")
        if model == "simple-cnn" and s["dropout"] is not None:
            raise ConfigError("--dropout is available with --model mlp and deep-cnn")


def _build_model(s: dict):
    """The network a training run asks for (He initialisation for ReLU networks)."""
    import numpy as np

    from nnscratch.models.registry import build_model

    model, hidden, seed = s["model"], s["hidden"], s["seed"]
    if model == "two-layer":
        config = dict(input_size=784, hidden_size=hidden[0], output_size=10,
                      weight_init_std=float(np.sqrt(2.0 / 784)), seed=seed)
    elif model == "mlp":
        config = dict(input_size=784, hidden_size_list=list(hidden), output_size=10,
                      activation="relu", weight_init_std="he",
                      weight_decay_lambda=s["weight_decay"], seed=seed)
        if s["dropout"] is not None:
            config.update(use_dropout=True, dropout_ratio=s["dropout"])
        if s["batchnorm"]:
            config.update(use_batchnorm=True)
    elif model == "simple-cnn":
        config = dict(input_dim=(1, 28, 28), hidden_size=hidden[0], output_size=10,
                      weight_init_std=0.01, seed=seed)
    else:
        config = dict(input_dim=(1, 28, 28), hidden_size=hidden[0], output_size=10, seed=seed)
        if s["dropout"] is not None:
            config.update(dropout_ratio=s["dropout"])
    return build_model(MODEL_CLASSES[model], config)


def _build_optimizer(s: dict):
    from nnscratch.optimizers import build_optimizer

    return build_optimizer(s["optimizer"], lr=s["lr"])


def _build_augment(s: dict, image_shape: bool):
    if not s["augment"]:
        return None
    from nnscratch.augment import Augmenter

    augmenter = Augmenter(max_shift=2, rotation=10.0)
    if image_shape:
        return augmenter

    def augment_flat(x_batch, rng):  # MLPs see (N, 784); the augmenter works on images
        return augmenter(x_batch.reshape(-1, 1, 28, 28), rng).reshape(x_batch.shape)

    return augment_flat


# Files a run writes: a directory holding any of them is never reused silently.
RUN_FILES = (MODEL_NAME, CHECKPOINT_NAME, "history.json", "history.csv", "loss.png",
             "accuracy.png", "confusion.png", "misclassified.png")


def _check_new_run_dir(out: Path) -> None:
    """Refuse an --out that is a file or already holds a run; other files in it are left alone."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a directory")
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing:
        resume = (f"resume it with `nnscratch train --resume {out}` or "
                  if CHECKPOINT_NAME in existing else "")
        raise ConfigError(f"{out} already holds a run ({', '.join(existing)}), which train never "
                          f"overwrites: {resume}choose another --out")


def _remove_unfinished_writes(out: Path) -> None:
    """Delete temporary files that a killed run left half-written (atomic_write's names)."""
    for name in RUN_FILES:
        for leftover in out.glob(f".{name}.*.tmp"):
            leftover.unlink(missing_ok=True)


def _new_run_dir(model: str) -> Path:
    runs = Path("runs")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = runs / f"{model}-{stamp}"
    n = 2
    while out.exists():
        out = runs / f"{model}-{stamp}-{n}"
        n += 1
    return out


def _point_latest_at(out: Path) -> None:
    """Make runs/latest a symlink to the newest run (best effort: not every filesystem has links)."""
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
        try:
            os.unlink(temporary)
        except OSError:
            pass


class _ProgressAndCheckpoints:
    """Trainer callback: a tqdm bar per epoch, one line per epoch, a checkpoint per epoch."""

    def __init__(self, save, show_bar: bool | None):
        self.save = save          # save(trainer): writes the checkpoint
        self.show_bar = show_bar  # None: only on a terminal
        self.bar = None

    def on_epoch_begin(self, trainer, epoch):
        from tqdm.auto import tqdm

        self._close()
        self.bar = tqdm(total=trainer.batches_per_epoch, initial=trainer.batch_index,
                        desc=f"epoch {epoch}/{trainer.epochs}", unit="batch", leave=False,
                        disable=None if self.show_bar is None else not self.show_bar,
                        dynamic_ncols=True)

    def on_batch_end(self, trainer, iteration, loss):
        if self.bar is not None and not self.bar.disable:
            if iteration % 10 == 0:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, trainer, epoch, record):
        self._close()
        _say(f"epoch {epoch}/{trainer.epochs}  loss {record['train_loss']:.4f}  "
             f"train acc {_percent(record['train_acc']).strip()}  "
             f"test acc {_percent(record['test_acc']).strip()}  {record['seconds']:.1f} s")
        self.save(trainer)

    def on_train_end(self, trainer):
        self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _ExplosionGuard:
    """Trainer callback: stop when the loss explodes while staying finite.

    The Trainer stops on NaN/inf; Adam's bounded steps can instead drive a
    cross-entropy of 2.3 to 1e15 without ever overflowing, which is just as
    hopeless. Growing a hundredfold beyond the first batch's loss (and past
    1000, where softmax gives the true class a probability of e**-1000) counts
    as diverged.
    """

    FACTOR = 100.0
    FLOOR = 1000.0

    def __init__(self, default_lr: float):
        self.default_lr = default_lr

    def on_batch_end(self, trainer, iteration, loss):
        first = trainer.history.train_loss_list[0]
        if loss > self.FLOOR and loss > self.FACTOR * first:
            optimizer = trainer.optimizer
            raise TrainingDivergedError(
                f"training diverged: the loss exploded from {first:.3g} to {loss:.3g} at epoch "
                f"{trainer.epoch + 1}, iteration {iteration} with learning rate lr={optimizer.lr:g} "
                f"({type(optimizer).__name__}). Try a smaller learning rate, e.g. the default "
                f"--lr {self.default_lr:g}.")


class _StopOnCtrlC:
    """First Ctrl-C: ask the trainer to stop at the next batch. Second: abort at once."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.previous = None
        self.requested = False

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.trainer.request_stop()
        print("\nStopping after this batch and saving a checkpoint "
              "(Ctrl-C again to abort without saving)...", file=sys.stderr, flush=True)

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def _split_state(trainer) -> dict:
    """The trainer's state without the model and optimizer, which the checkpoint stores itself."""
    state = trainer.state_dict()
    state.pop("model", None)
    state.pop("optimizer", None)
    return state


def _merge_state(checkpoint) -> dict:
    state = dict(checkpoint.trainer_state)
    state["model"] = {"params": checkpoint.model.params,
                      "buffers": getattr(checkpoint.model, "buffers", {}) or {}}
    state["optimizer"] = checkpoint.optimizer.state_dict()
    return state


# What each saved setting must be, so that a checkpoint from elsewhere fails as a
# clear error instead of a TypeError deep inside training.
_SETTING_CHOICES = {"model": MODEL_KINDS, "optimizer": OPTIMIZER_NAMES, "dataset": DATASET_NAMES}
_SETTING_TYPES = {"epochs": int, "batch_size": int, "seed": int, "limit": (int, type(None)),
                  "lr": (int, float), "weight_decay": (int, float), "dropout": (int, float, type(None)),
                  "batchnorm": bool, "augment": bool}


def _saved_settings(checkpoint, path: Path) -> dict:
    """The settings a checkpoint of `nnscratch train` was made with, checked."""
    saved = checkpoint.args.get("settings")
    if not isinstance(saved, dict) or not set(saved) <= set(TRAIN_DEFAULTS):
        raise ModelFileError(f"{path}: not a checkpoint of `nnscratch train` "
                             "(its saved settings are missing or unknown)")
    settings = {**TRAIN_DEFAULTS, **saved}
    for key, value in settings.items():
        if key in _SETTING_CHOICES:
            fits = value in _SETTING_CHOICES[key]
        elif key == "hidden":
            fits = isinstance(value, list) and all(isinstance(h, int) for h in value)
        else:
            fits = isinstance(value, _SETTING_TYPES[key])
        if not fits:
            raise ModelFileError(f"{path}: corrupt checkpoint: saved setting {key} is {value!r}")
    return settings


def _run_label(s: dict) -> str:
    extras = []
    if s["model"] in ("two-layer", "mlp"):
        extras.append("hidden " + "x".join(str(h) for h in s["hidden"]))
    if s["batchnorm"]:
        extras.append("batchnorm")
    if s["dropout"] is not None:
        extras.append(f"dropout {s['dropout']:g}")
    if s["weight_decay"]:
        extras.append(f"weight decay {s['weight_decay']:g}")
    if s["augment"]:
        extras.append("augmented")
    extra = f" ({', '.join(extras)})" if extras else ""
    return f"{MODEL_CLASSES[s['model']]}{extra}, {s['optimizer']} lr={s['lr']:g}"


def cmd_train(args) -> int:
    import numpy as np

    from nnscratch import io as nnio
    from nnscratch.training import Trainer

    checkpoint = None
    if args.resume is not None:
        resume = Path(args.resume)
        ckpt_path = resume if resume.suffix == ".npz" else resume / CHECKPOINT_NAME
        if not ckpt_path.exists():
            raise ModelFileError(f"{ckpt_path}: no checkpoint to resume from")
        checkpoint = nnio.load_checkpoint(ckpt_path)
        settings = _saved_settings(checkpoint, ckpt_path)
        given = [key for key in (*TRAIN_DEFAULTS, "out") if key != "epochs" and getattr(args, key) is not None]
        if given:
            print("note: --resume continues with the saved settings; ignoring "
                  + ", ".join("--" + key.replace("_", "-") for key in given), file=sys.stderr)
        if args.epochs is not None:
            done = checkpoint.trainer_state.get("epoch")
            if isinstance(done, int) and args.epochs < done:
                raise ConfigError(f"--epochs {args.epochs} is fewer than the {_epochs(done)} "
                                  f"{ckpt_path} has already done")
            settings["epochs"] = args.epochs
        out = ckpt_path.parent
        _remove_unfinished_writes(out)
    else:
        settings = _settings_from_args(args)
        out = Path(args.out) if args.out else _new_run_dir(settings["model"])
    _check_settings(settings)

    if checkpoint is None:
        _check_new_run_dir(out)

    image_input = settings["model"] in ("simple-cnn", "deep-cnn")
    (x_train, t_train), (x_test, t_test) = _load_data(
        settings["dataset"], flatten=not image_input, limit=settings["limit"])
    if checkpoint is None:  # only now: a failed download leaves no empty run directory behind
        out.mkdir(parents=True, exist_ok=True)
        if args.out is None:
            _point_latest_at(out)

    if checkpoint is not None:
        model, optimizer = checkpoint.model, checkpoint.optimizer
    else:
        model, optimizer = _build_model(settings), _build_optimizer(settings)

    def save_checkpoint(trainer):
        nnio.save_checkpoint(out / CHECKPOINT_NAME, _split_state(trainer), model=model,
                             optimizer=optimizer, args={"settings": settings})

    progress = _ProgressAndCheckpoints(save_checkpoint, False if args.no_progress else None)
    trainer = Trainer(model, optimizer, x_train, t_train, x_test, t_test,
                      epochs=settings["epochs"], batch_size=settings["batch_size"], seed=settings["seed"],
                      evaluate_sample_num_per_epoch=min(TRAIN_ACC_SAMPLES, len(x_train)),
                      augment=_build_augment(settings, image_input),
                      callbacks=[_ExplosionGuard(DEFAULT_LR[settings["optimizer"]]), progress])
    dataset = settings["dataset"].upper() if settings["dataset"] == "mnist" else settings["dataset"]
    _say(f"Training {_run_label(settings)} on {dataset} "
         f"({len(x_train)} training / {len(x_test)} test images), "
         f"{_epochs(settings['epochs'])} of batch {settings['batch_size']}, seed {settings['seed']}")
    _say(f"Output: {out}")
    if checkpoint is not None:
        try:
            trainer.load_state_dict(_merge_state(checkpoint))
        except NnscratchError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:  # a forged or foreign state
            raise ModelFileError(f"{ckpt_path}: corrupt checkpoint: cannot restore the "
                                 f"training state ({type(exc).__name__}: {exc})") from exc
        where = (f"epoch {trainer.epoch + 1}, batch {trainer.batch_index}/{trainer.batches_per_epoch}"
                 if trainer.batch_index else f"epoch {trainer.epoch + 1}")
        _say(f"Resuming at {where}")

    try:
        # Overflow on the way to a NaN is reported once, as a TrainingDivergedError.
        with _StopOnCtrlC(trainer), np.errstate(over="ignore", invalid="ignore"):
            history = trainer.fit()
    except TrainingDivergedError as exc:
        kept = out / CHECKPOINT_NAME
        if kept.exists():
            where = f"the last good checkpoint (end of epoch {trainer.epoch}) is kept in {kept}"
        else:
            where = "no checkpoint was written (it diverged in the first epoch)"
        raise TrainingDivergedError(f"{exc} Training stopped; {where}.") from exc

    if trainer.interrupted:
        save_checkpoint(trainer)
        print(f"Interrupted at epoch {trainer.epoch + 1}, batch {trainer.batch_index}/"
              f"{trainer.batches_per_epoch}; checkpoint saved in {out / CHECKPOINT_NAME}.\n"
              f"Interrupted: resume with nnscratch train --resume {out}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED

    try:
        _finish_run(out, model, history, settings, x_test, t_test, plots=not args.no_plots)
    except KeyboardInterrupt:
        # Training itself is done and in the last epoch's checkpoint: resuming only saves.
        print(f"\nAborted while saving the results; the trained weights are in "
              f"{out / CHECKPOINT_NAME}: nnscratch train --resume {out} writes them out",
              file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    return 0


def _finish_run(out: Path, model, history, settings, x_test, t_test, *, plots: bool) -> None:
    import numpy as np

    from nnscratch import io as nnio

    scores = _predict_scores(model, x_test)
    predicted = scores.argmax(axis=1)
    labels = np.asarray(t_test)
    test_acc = float(np.mean(predicted == labels))
    last = history.epochs[-1] if history.epochs else {}
    summary = {
        "dataset": settings["dataset"],
        "epochs": len(history.epochs),
        "test_accuracy": test_acc,
        "train_accuracy": last.get("train_acc"),
        "train_loss": last.get("train_loss"),
        "training_seconds": round(sum(r["seconds"] for r in history.epochs), 2),
        "settings": settings,
    }
    nnio.save_model(model, out / MODEL_NAME, summary=summary)
    with nnio.atomic_write(out / "history.json", "w") as f:
        json.dump(history.to_dict(), f, indent=1)
        f.write("\n")
    with nnio.atomic_write(out / "history.csv", "w") as f:
        history.to_csv(f)
    written = [MODEL_NAME, "history.json", "history.csv"]
    if plots:
        written += _save_training_plots(out, history, x_test, labels, predicted, settings["dataset"])

    _say(f"Test accuracy {100 * test_acc:.2f}% ({int(np.sum(predicted == labels))}/{len(labels)}) "
         f"after {_epochs(len(history.epochs))}, "
         f"{summary['training_seconds']:.1f} s of training")
    _say(f"Saved in {out}: {'  '.join(written)}")
    _say(f"Next: nnscratch evaluate --model {out / MODEL_NAME}")


def _save_training_plots(out: Path, history, x_test, labels, predicted, dataset) -> list[str]:
    import numpy as np

    from nnscratch.plots import digits as digit_plots
    from nnscratch.plots import training as training_plots

    names = _class_names(dataset)
    training_plots.plot_loss_curve(history, out / "loss.png")
    accuracies = [v for v in history.train_acc_list + history.test_acc_list if v is not None]
    low = max(0.0, math.floor((min(accuracies) - 0.01) * 50) / 50) if accuracies else 0.0
    training_plots.plot_accuracy(history, out / "accuracy.png", ylim=(low, 1.0))
    training_plots.plot_confusion_matrix(labels, predicted, out / "confusion.png",
                                         num_classes=len(names), class_names=names)
    written = ["loss.png", "accuracy.png", "confusion.png"]
    wrong = np.flatnonzero(predicted != labels)[:64]
    if len(wrong):
        digit_plots.save_digit_grid(x_test[wrong].reshape(-1, 28, 28), labels[wrong],
                                    out / "misclassified.png", predicted=predicted[wrong],
                                    title=f"{len(np.flatnonzero(predicted != labels))} misclassified "
                                          f"test images (first {len(wrong)}): predicted (true label)")
        written.append("misclassified.png")
    return written


# ============================================================================ evaluate


def _confusion(labels, predicted, n_classes: int):
    import numpy as np

    return np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes)


def cmd_evaluate(args) -> int:
    import numpy as np

    model, source = _load_model_arg(args.model)
    x, t = _load_data(args.dataset, flatten=not _wants_images(model), limit=args.limit, split="test")
    predicted = _predict_scores(model, x).argmax(axis=1)
    labels = np.asarray(t, dtype=np.int64)
    names = _class_names(args.dataset)
    n = max(len(names), int(getattr(model, "output_size", 10)))
    matrix = _confusion(labels, predicted, n)
    correct = int(np.trace(matrix))

    _say(f"model:    {source} ({_describe_model(model)})")
    _say(f"dataset:  {args.dataset} test set, {len(labels)} images")
    _say(f"accuracy: {100 * correct / len(labels):.2f}% ({correct}/{len(labels)})")
    _say("")
    width = max(5, max(len(name) for name in names))
    _say(f"{'class':>{width}}  precision  recall  support")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.diag(matrix) / matrix.sum(axis=0)
        recall = np.diag(matrix) / matrix.sum(axis=1)
    for k in range(len(names)):
        p = "   n/a" if np.isnan(precision[k]) else f"{100 * precision[k]:6.2f}%"
        r = "   n/a" if np.isnan(recall[k]) else f"{100 * recall[k]:6.2f}%"
        _say(f"{names[k]:>{width}}    {p}  {r}  {int(matrix[k].sum()):7d}")
    _say("")
    _say("confusion matrix (rows: true class, columns: predicted class)")
    cell = max(4, len(str(int(matrix.max()))) + 1)
    _say(" " * (width + 1) + "".join(f"{k:>{cell}}" for k in range(n)))
    for k in range(n):
        label = names[k] if k < len(names) else str(k)
        _say(f"{label:>{width}} " + "".join(f"{v:>{cell}}" for v in matrix[k]))
    if args.plot:
        from nnscratch.plots import training as training_plots

        training_plots.plot_confusion_matrix(labels, predicted, args.plot, num_classes=n,
                                             class_names=names if n == len(names) else None)
        _say(f"\nconfusion matrix plot: {args.plot}")
    return 0


# ============================================================================ predict


def cmd_predict(args) -> int:
    import numpy as np

    from nnscratch.errors import ImageInputError
    from nnscratch.functions import softmax
    from nnscratch.imaging import prepare_digit

    model, source = _load_model_arg(args.model)
    # Like other tools given many files: an unreadable one gets its own error line
    # (and exit status 2), the others are still read.
    paths, images = [], []
    for path in args.images:
        try:
            images.append(prepare_digit(path))
            paths.append(path)
        except ImageInputError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
    status = EXIT_ERROR if len(paths) < len(args.images) else 0
    if not paths:
        return status
    images = np.stack(images)  # (N, 1, 28, 28)
    probabilities = softmax(_predict_scores(model, images).astype(np.float64))
    if args.json:
        report = [{"path": str(path), "label": int(p.argmax()),
                   "probabilities": [round(float(v), 6) for v in p]}
                  for path, p in zip(paths, probabilities)]
        # One object per line: readable, and still one JSON document.
        _say("[\n" + ",\n".join("  " + json.dumps(entry) for entry in report) + "\n]")
        return status
    _say(f"model: {source} ({_describe_model(model)})")
    for path, image, p in zip(paths, images, probabilities):
        top = np.argsort(p)[::-1][:3]
        ranked = ", ".join(f"{k}: {100 * p[k]:.1f}%" for k in top)
        _say(f"{path}: {top[0]}   ({ranked})")
        if args.show:
            from nnscratch.datasets.display import render_digit

            _say(render_digit(image[0], style="halfblocks"))
    return status


# ============================================================================ show


def cmd_show(args) -> int:
    import numpy as np

    x, t = _load_data(args.dataset, flatten=False, split=args.split)
    if args.index is not None:
        if not 0 <= args.index < len(x):
            raise ConfigError(f"--index must lie in 0..{len(x) - 1} for the {args.split} set, got {args.index}")
        indices = np.array([args.index])
    else:
        if args.count < 1:
            raise ConfigError(f"--count must be at least 1, got {args.count}")
        indices = np.arange(min(args.count, len(x)))
    images = x[indices].reshape(-1, 28, 28)
    labels = np.asarray(t)[indices]
    names = _class_names(args.dataset)
    if args.png:
        from nnscratch.plots.digits import save_digit_grid

        save_digit_grid(images, labels, args.png,
                        class_names=None if names == [str(i) for i in range(10)] else names)
        _say(f"{len(images)} {args.split} images of {args.dataset} (from index {indices[0]}) -> {args.png}")
        return 0
    from nnscratch.datasets import display

    for index, image, label in zip(indices, images, labels):
        style = {"shaded": "shades"}.get(args.style, args.style)
        name = names[int(label)]
        _say(f"{args.split}[{index}]: label {label}" + ("" if name == str(label) else f" ({name})"))
        _say(display.render_digit(image, style=style))
    return 0


# ============================================================================ plot


# Mirrors nnscratch.plots.calculus.KINDS and its options (importing that module loads
# matplotlib, which `nnscratch --help` should not wait for; a test keeps them in sync).
PLOT_KINDS = ("tangent", "surface", "gradient-field", "descent", "learning-rates")
PLOT_OPTIONS = {
    "x": ("X", "point of tangency (tangent)"),
    "x_range": ("LO,HI", "x interval drawn (tangent)"),
    "x0_range": ("LO,HI", "x0 interval"),
    "x1_range": ("LO,HI", "x1 interval"),
    "num": ("N", "grid or sample points per axis"),
    "step": ("STEP", "grid spacing of the arrows (gradient-field)"),
    "h": ("H", "step of the numerical derivative"),
    "cmap": ("NAME", "matplotlib colormap"),
    "init_x": ("X0,X1", "starting point (descent, learning-rates)"),
    "lr": ("LR", "learning rate (descent)"),
    "lrs": ("LR,LR,...", "learning rates to compare (learning-rates)"),
    "step_num": ("N", "number of gradient-descent steps"),
    "levels": ("N", "number of contour lines"),
}


def cmd_plot(args) -> int:
    from nnscratch.plots import calculus

    options = {name: getattr(args, name) for name in PLOT_OPTIONS if getattr(args, name) is not None}
    out = Path(args.out or f"{args.kind}.png")
    calculus.draw(args.kind, args.function, out_path=out, **options)
    _say(f"{args.kind}: {args.function or calculus.DEFAULT_EXPRESSIONS[args.kind]} -> {out}")
    return 0


# ============================================================================ parser


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written, and "(default: X)" only where X tells the reader something."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnscratch",
        description="Neural networks from scratch in NumPy: train a handwritten-digit recognizer,\n"
                    "evaluate it, read your own digits, look at the data and the chapter-4 figures.",
        epilog="examples:\n"
               "  nnscratch train                          # MLP: 98% on MNIST test digits in about 10 s\n"
               "  nnscratch train --model simple-cnn --epochs 3\n"
               "  nnscratch evaluate --model runs/latest/model.npz\n"
               "  nnscratch predict my_digit.png\n"
               "  nnscratch show --count 3\n"
               "  nnscratch plot gradient-field\n\n"
               "Run `nnscratch COMMAND --help` for the options of a command.\n"
               "NumPy's BLAS runs one thread unless OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set\n"
               "(faster for these small matrices, and much faster on a busy machine).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nnscratch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    # -- train
    train = commands.add_parser(
        "train", help="train a network on MNIST (or Fashion-MNIST, KMNIST)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a network and save it with its history and plots.\n\n"
                    "Writes to --out DIR (default runs/<model>-<time>, linked as runs/latest):\n"
                    "  model.npz            the trained network (nnscratch evaluate/predict --model)\n"
                    "  checkpoint.npz       saved every epoch and on Ctrl-C (for --resume)\n"
                    "  history.json/.csv    loss and accuracies per epoch\n"
                    "  loss.png accuracy.png confusion.png misclassified.png\n\n"
                    "Ctrl-C stops at the end of the current batch and saves a checkpoint;\n"
                    "`nnscratch train --resume DIR` continues exactly where it stopped.",
        epilog="defaults: --model mlp --hidden 256 --optimizer adam --lr 0.001 --epochs 5 --batch-size 100\n"
               "default learning rates: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()),
    )
    train.add_argument("--model", choices=MODEL_KINDS, default=None,
                       help="network: two-layer (book 5.7), mlp (MultiLayerNet), "
                            "simple-cnn (book 7.5), deep-cnn (book 8.1) [mlp]")
    train.add_argument("--hidden", type=int, nargs="+", metavar="SIZE", default=None,
                       help="hidden layer sizes, e.g. --hidden 256 128 (mlp; the other models have one) "
                            "[mlp 256; two-layer and simple-cnn 100; deep-cnn 50]")
    train.add_argument("--epochs", type=int, default=None, help="passes over the training set [5]")
    train.add_argument("--batch-size", type=int, default=None, help="images per update [100]")
    train.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default=None, help="update rule [adam]")
    train.add_argument("--lr", type=float, default=None, help="learning rate [depends on --optimizer]")
    train.add_argument("--weight-decay", type=float, default=None, metavar="LAMBDA",
                       help="L2 weight decay lambda (book 6.4) [0]")
    train.add_argument("--dropout", type=float, default=None, metavar="RATIO",
                       help="dropout ratio of the hidden layers, e.g. 0.2 (mlp, deep-cnn) [mlp: off; deep-cnn: 0.5]")
    train.add_argument("--batchnorm", action="store_const", const=True, default=None,
                       help="batch normalization after every hidden affine layer (mlp)")
    train.add_argument("--augment", action="store_const", const=True, default=None,
                       help="random shifts and rotations of the training images")
    train.add_argument("--seed", type=int, default=None, help="seed of the initial weights and the shuffling [0]")
    train.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="dataset [mnist]")
    train.add_argument("--limit", type=int, default=None, metavar="N",
                       help="use only the first N training and N test images (quick runs)")
    train.add_argument("--out", metavar="DIR", default=None, help="output directory; one that already holds a run is refused, never overwritten "
                            "[runs/<model>-<time>]")
    train.add_argument("--resume", metavar="DIR", default=None,
                       help="continue the run saved in DIR (its checkpoint.npz) with its saved settings; "
                            "--epochs may raise the number of epochs")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (the per-epoch lines remain)")
    train.add_argument("--no-plots", action="store_true",
                       help="skip the PNG plots (a few seconds quicker; model and history are still saved)")
    train.set_defaults(func=cmd_train)

    # -- evaluate
    evaluate = commands.add_parser(
        "evaluate", help="accuracy, per-class precision/recall and confusion matrix on a test set",
        formatter_class=_Formatter,
        description="Evaluate a saved network on the test set of a dataset.")
    evaluate.add_argument("--model", metavar="FILE", default=None,
                          help="model file or run directory (default: the pretrained DeepConvNet)")
    evaluate.add_argument("--dataset", choices=DATASET_NAMES, default="mnist", help="dataset")
    evaluate.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N test images")
    evaluate.add_argument("--plot", metavar="PNG", default=None, help="also save the confusion matrix as a PNG")
    evaluate.set_defaults(func=cmd_evaluate)

    # -- predict
    predict = commands.add_parser(
        "predict", help="read handwritten digits from image files (PNG, JPEG ...)",
        formatter_class=_Formatter,
        description="Recognize the digit in each image. Any size, dark ink on light paper or light on\n"
                    "dark: the picture is cropped, scaled to 20x20 and centred like MNIST digits.\n"
                    "A file that cannot be read gets an error line (exit status 2); the others\n"
                    "are still read.")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    predict.add_argument("--model", metavar="FILE", default=None,
                         help="model file or run directory (default: the pretrained DeepConvNet)")
    predict.add_argument("--json", action="store_true",
                         help="print a JSON list: one {path, label, probabilities} per image")
    predict.add_argument("--show", action="store_true",
                         help="also print each image as the network sees it (28x28, centred like MNIST)")
    predict.set_defaults(func=cmd_predict)

    # -- show
    show = commands.add_parser(
        "show", help="show dataset images in the terminal or as a PNG grid",
        formatter_class=_Formatter, description="Print dataset images as text, or save them as a PNG grid.")
    show.add_argument("--dataset", choices=DATASET_NAMES, default="mnist", help="dataset")
    show.add_argument("--split", choices=("train", "test"), default="train", help="which part")
    which = show.add_mutually_exclusive_group()
    which.add_argument("--index", type=int, default=None, metavar="I", help="show image number I")
    which.add_argument("--count", type=int, default=1, metavar="N", help="show the first N images")
    show.add_argument("--style", choices=("numbers", "shaded", "halfblocks"), default="shaded",
                      help="numbers: pixel values 0-255 (as the book prints them); shaded: shade "
                           "characters; halfblocks: compact, two pixel rows per line")
    show.add_argument("--png", metavar="FILE", default=None, help="save a grid of the images instead")
    show.set_defaults(func=cmd_show)

    # -- plot
    plot = commands.add_parser(
        "plot", help="chapter-4 figures: tangent, surface, gradient field, gradient descent",
        formatter_class=_Formatter,
        description="Draw a figure of book chapter 4 as a PNG, for the book's function or your own.\n"
                    "kinds: tangent (numerical derivative), surface (3-D plot of f(x0, x1)),\n"
                    "gradient-field (arrows of -grad f), descent (a gradient-descent path),\n"
                    "learning-rates (paths for several learning rates).",
        epilog='example: nnscratch plot descent --function "x0**2 + 2*x1**2" --lr 0.1 --init-x=-3,4')
    plot.add_argument("kind", metavar="KIND", choices=PLOT_KINDS, help="one of: " + ", ".join(PLOT_KINDS))
    plot.add_argument("--function", metavar="EXPR", default=None,
                      help='f(x) for tangent, f(x0, x1) otherwise, e.g. "x0**2 + x1**2" [the book\'s]')
    plot.add_argument("--out", metavar="FILE", default=None, help="PNG file [KIND.png]")
    for name, (metavar, text) in PLOT_OPTIONS.items():
        plot.add_argument("--" + name.replace("_", "-"), dest=name, metavar=metavar, default=None, help=text)
    plot.set_defaults(func=cmd_plot)

    # -- commands whose code lives with their front end (each add_parser imports nothing heavy)
    # more commands: one line each below
    _add_sweep(commands)
    _add_serve(commands)
    return parser


def _add_sweep(commands) -> None:
    from nnscratch.sweep_command import add_parser  # argparse only; Dask loads when a sweep runs

    add_parser(commands)


def _add_serve(commands) -> None:
    from nnscratch.serve.command import add_parser  # argparse only: the web stack loads in the command

    add_parser(commands)


_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _single_blas_thread_unless_configured() -> None:
    """One BLAS thread unless the user chose otherwise (must run before NumPy is imported).

    Measured on the 2-core target machine: the MLP's and the conv nets' matrices
    are small, so a second OpenBLAS thread gains little on an idle machine, and
    on a busy one its spin-waiting makes training 5 to 15 times slower (default
    `nnscratch train`: 88 s with two threads against 10 s with one).
    """
    if not any(name in os.environ for name in _THREAD_VARIABLES):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, 2 for errors, 130 when interrupted)."""
    _single_blas_thread_unless_configured()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        return args.func(args)
    except NnscratchError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except BrokenPipeError:
        # `nnscratch show ... | head`: the reader left; exit quietly as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\nAborted.", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
