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
import re
import shutil
import signal
import sys
from pathlib import Path

from nnscratch import __version__
from nnscratch.errors import ConfigError, NnscratchError, ShapeError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130   # SIGINT (Ctrl-C)
EXIT_TERMINATED = 143    # SIGTERM

# What `train` takes from the command line: RunSettings' fields (nnscratch.runs).
_SETTING_FLAGS = ("model", "hidden", "epochs", "batch_size", "optimizer", "lr", "weight_decay", "dropout",
                  "batchnorm", "augment", "seed", "dataset", "limit")
MODEL_NAME = "model.npz"


# ============================================================================ helpers


def _say(*parts, **kwargs) -> None:
    print(*parts, **kwargs, flush=True)


def _load_data(dataset: str, *, flatten: bool, limit=None, split: str | None = None):
    from nnscratch.datasets import load_mnist
    from nnscratch.runs import dataset_key

    (x_train, t_train), (x_test, t_test) = load_mnist(
        normalize=True, flatten=flatten, one_hot_label=False, limit=limit, dataset=dataset_key(dataset)
    )
    if split == "train":
        return x_train, t_train
    if split == "test":
        return x_test, t_test
    return (x_train, t_train), (x_test, t_test)


def _class_names(dataset: str) -> list[str]:
    from nnscratch.runs import class_names

    return class_names(dataset)


def _wants_images(model) -> bool:
    return len(getattr(model, "input_shape", (784,))) == 3


def _check_takes_digit_images(model, source: str) -> None:
    """The datasets and prepare_digit give 28x28 images; a model built for other inputs cannot use them."""
    shape = tuple(getattr(model, "input_shape", (784,)))
    if math.prod(shape) != 28 * 28:
        raise ShapeError(f"{source}: this {type(model).__name__} takes inputs of shape {shape}, "
                         "not 28x28 digit images (784 values)")


def _predict_scores(model, x, batch_size: int = 500):
    from nnscratch.runs import predict_scores

    return predict_scores(model, x, batch_size)


def _class_scores(model, x, source: str, classes: int):
    """The model's scores for ``x``, refused unless they are ``classes`` finite numbers each.

    A forged or diverged model file can answer 100,000 classes (the confusion matrix
    alone would need 80 GB), or NaN for everything (evaluate read that as class 0);
    one image is tried first, so a wrong class count costs nothing.
    """
    import numpy as np

    def checked(scores):
        scores = np.asarray(scores)
        if scores.ndim != 2 or scores.shape[1] != classes:
            raise ConfigError(f"{source}: this {type(model).__name__} gives {scores.shape[-1]:,} scores per "
                              f"image, not one for each of the {classes} classes")
        if not np.all(np.isfinite(scores)):
            raise ConfigError(f"{source}: the model's scores are NaN or infinite (its parameters hold NaN, "
                              "infinite or huge values: a damaged or diverged model)")
        return scores

    with np.errstate(all="ignore"):  # overflow is reported once, as the error above
        checked(_predict_scores(model, x[:1]))
        return checked(_predict_scores(model, x))


def _load_model_arg(model_path):
    from nnscratch import io as nnio

    if model_path is None:
        return nnio.load_pretrained(), f"pretrained {nnio.PRETRAINED_MODEL}"
    path = Path(model_path)
    if path.is_dir():
        if not (path / MODEL_NAME).exists():  # was "DIR/model.npz: no such model file"
            raise ConfigError(f"--model {model_path}: a directory with no {MODEL_NAME} in it; give a model "
                              "file or the directory of a `nnscratch train` run")
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
# The training engine is nnscratch.runs; this turns flags into RunSettings and prints.


def _settings_from_args(args):
    from nnscratch.runs import RunSettings

    given = {name: getattr(args, name) for name in _SETTING_FLAGS if getattr(args, name) is not None}
    return RunSettings(**given)


def _in_flag_words(message: str) -> str:
    """RunSettings names its fields; on the command line they are flags."""
    fields = "|".join(_SETTING_FLAGS)
    message = re.sub(rf"^((?:{fields})(?:, (?:{fields}))*)\b",
                     lambda m: ", ".join("--" + f.replace("_", "-") for f in m.group(1).split(", ")),
                     message)
    return re.sub(r"\b(use|with|not) model\b", r"\1 --model", message)


class _ProgressBar:
    """Trainer callback: a tqdm bar per epoch (on a terminal, or never with --no-progress)."""

    def __init__(self, show: bool | None):
        self.show = show  # None: only on a terminal
        self.bar = None

    def on_epoch_begin(self, trainer, epoch):
        from tqdm.auto import tqdm

        self._close()
        self.bar = tqdm(total=trainer.batches_per_epoch, initial=trainer.batch_index,
                        desc=f"epoch {epoch}/{trainer.epochs}", unit="batch", leave=False,
                        disable=None if self.show is None else not self.show, dynamic_ncols=True)

    def on_batch_end(self, trainer, iteration, loss):
        if self.bar is not None and not self.bar.disable:
            if iteration % 10 == 0:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, trainer, epoch, record):
        self._close()

    def on_train_end(self, trainer):
        self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _command_name() -> str:
    """How the user can run nnscratch again, as typed: `nnscratch` only when it is on the PATH."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    on_path = shutil.which("nnscratch")
    if program is not None and program.name == "nnscratch":
        if on_path and Path(on_path).resolve() == program.resolve():
            return "nnscratch"
        try:
            relative = os.path.relpath(program)
        except ValueError:  # another drive
            relative = str(program.resolve())
        return str(program.resolve()) if relative.startswith("..") else relative
    return "nnscratch" if on_path else f"{os.path.relpath(sys.executable)} -m nnscratch.cli"


def cmd_train(args) -> int:
    from nnscratch.runs import train_run

    progress = _ProgressBar(False if args.no_progress else None)
    try:
        if args.resume is not None:
            given = [key for key in (*_SETTING_FLAGS, "out") if key != "epochs" and getattr(args, key) is not None]
            if given:
                print("note: --resume continues with the saved settings; ignoring "
                      + ", ".join("--" + key.replace("_", "-") for key in given), file=sys.stderr)
            result = train_run(resume=args.resume, epochs=args.epochs, callbacks=[progress],
                               plots=False if args.no_plots else None, log=_say)
        else:
            result = train_run(_settings_from_args(args), args.out, callbacks=[progress],
                               plots=not args.no_plots, log=_say)
    except ConfigError as exc:
        raise ConfigError(_in_flag_words(str(exc))) from exc
    out = result.out
    if result.interrupted:
        trainer = result.trainer
        print(f"Interrupted at epoch {trainer.epoch + 1}, batch {trainer.batch_index}/"
              f"{trainer.batches_per_epoch}; checkpoint saved in {out / 'checkpoint.npz'}.\n"
              f"Interrupted: resume with {_command_name()} train --resume {out}", file=sys.stderr, flush=True)
        return EXIT_TERMINATED if result.stop_signal == signal.SIGTERM else EXIT_INTERRUPTED
    _say(f"Next: {_command_name()} evaluate --model {out / 'model.npz'}")
    return 0


# ============================================================================ evaluate


def _confusion(labels, predicted, n_classes: int):
    import numpy as np

    return np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes)


def _load_digit_folder(directory, *, flatten: bool, limit=None):
    """Images and labels of a folder of your own digits (MNIST's IDX layout; the drawing page writes it)."""
    import numpy as np

    from nnscratch.serve.digits import read_digit_folder

    images, labels = read_digit_folder(directory)
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {limit}")
        images, labels = images[:limit], labels[:limit]
    if len(images) == 0:
        raise ConfigError(f"--data {directory}: the folder holds no digits yet")
    x = images.astype(np.float32) / 255.0
    return (x.reshape(len(x), 784) if flatten else x.reshape(len(x), 1, 28, 28)), labels.astype(np.int64)


def cmd_evaluate(args) -> int:
    import numpy as np

    if args.limit is not None and args.limit < 1:  # checked before the model and data load
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    if args.plot:
        _check_output_file(args.plot, "--plot")
    model, source = _load_model_arg(args.model)
    if args.data is not None:
        x, t = _load_digit_folder(args.data, flatten=not _wants_images(model), limit=args.limit)
        described, names = f"your digits in {args.data}", [str(k) for k in range(10)]
    else:
        x, t = _load_data(args.dataset, flatten=not _wants_images(model), limit=args.limit, split="test")
        described, names = f"{args.dataset} test set", _class_names(args.dataset)
    predicted = _class_scores(model, x, source, len(names)).argmax(axis=1)
    labels = np.asarray(t, dtype=np.int64)
    n = len(names)
    matrix = _confusion(labels, predicted, n)
    correct = int(np.trace(matrix))

    _say(f"model:    {source} ({_describe_model(model)})")
    _say(f"dataset:  {described}, {len(labels)} images")
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
        _say(f"{names[k]:>{width}} " + "".join(f"{v:>{cell}}" for v in matrix[k]))
    if args.plot:
        from nnscratch.plots import training as training_plots

        training_plots.plot_confusion_matrix(labels, predicted, args.plot, num_classes=n,
                                             class_names=names)
        _say(f"\nconfusion matrix plot: {args.plot}")
    return 0


# ============================================================================ predict


def _check_output_shows_blocks(flag: str) -> None:
    """Block characters need an output that can encode them (PYTHONIOENCODING=ascii, an old
    console): refused up front, instead of an "unexpected UnicodeEncodeError" halfway."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        "\u2591\u2592\u2593\u2588\u2580\u2584".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        raise ConfigError(f"{flag}: the output's encoding ({encoding}) has no block characters; "
                          "set PYTHONIOENCODING=utf-8" + (", or use --style numbers" if "style" in flag else ""))


def cmd_predict(args) -> int:
    import numpy as np

    from nnscratch.errors import ImageInputError
    from nnscratch.functions import softmax
    from nnscratch.imaging import prepare_digit
    from nnscratch.reading import assess, describe, to_json

    if args.show and not args.json:
        _check_output_shows_blocks("--show")
    model, source = _load_model_arg(args.model)
    # Like other tools given many files: an unreadable one gets its own error line
    # (and exit status 2; with --json also its own {"path", "error"} entry), the others are still read.
    fields, errors = {}, {}
    for index, path in enumerate(args.images):
        try:
            fields[index] = prepare_digit(path)
        except ImageInputError as exc:
            errors[index] = str(exc)
            print(f"error: {exc}", file=sys.stderr, flush=True)
    status = EXIT_ERROR if errors else 0
    readings = {}
    if fields:
        order = sorted(fields)
        images = np.stack([fields[i] for i in order])  # (N, 1, 28, 28)
        probabilities = softmax(_class_scores(model, images, source, 10).astype(np.float64))
        readings = {i: assess(fields[i], p) for i, p in zip(order, probabilities)}
    if args.json:
        report = [{"path": str(path), "error": errors[i]} if i in errors
                  else {"path": str(path), **to_json(readings[i])}
                  for i, path in enumerate(args.images)]
        # One object per line: readable, and still one JSON document.
        _say("[\n" + ",\n".join("  " + json.dumps(entry) for entry in report) + "\n]")
        return status
    if not readings:
        return status
    _say(f"model: {source} ({_describe_model(model)})")
    for i, reading in readings.items():
        p = np.asarray(reading.probabilities)
        top = np.argsort(p)[::-1][:3]
        ranked = ", ".join(f"{k}: {100 * p[k]:.1f}%" for k in top)
        _say(f"{args.images[i]}: {reading.label}   ({ranked})")
        _say(f"  {describe(reading)}")
        if args.show:
            from nnscratch.datasets.display import render_digit

            _say(render_digit(fields[i][0], style="halfblocks"))
    return status


# ============================================================================ show


def _check_output_file(path, flag: str) -> None:
    """An output path must be a new or a regular file in a folder that can be written, checked
    before any work: files are written to a temporary name and renamed over the target,
    which would replace a device such as /dev/null."""
    from nnscratch.errors import FileWriteError
    from nnscratch.files import check_replaceable, check_writable

    try:
        check_replaceable(path)
    except FileWriteError as exc:
        raise ConfigError(f"{flag} {exc}; give a file name") from None
    folder = Path(path).parent
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: folder {folder} does not exist")
    try:
        check_writable(folder)
    except FileWriteError as exc:
        raise ConfigError(f"{flag} {path}: {exc}") from None


SHOW_MAX_TEXT = 1000   # images printed by one `show`
SHOW_MAX_PNG = 400     # images in one --png grid (40 rows of 10)


def cmd_show(args) -> int:
    import numpy as np

    # Bounded before anything is loaded: a grid of 500,000 digits would need gigabytes.
    if args.png:
        _check_output_file(args.png, "--png")
    if not args.png and args.style != "numbers":
        _check_output_shows_blocks(f"--style {args.style}")
    most = SHOW_MAX_PNG if args.png else SHOW_MAX_TEXT
    if args.index is None and not 1 <= args.count <= most:
        raise ConfigError(f"--count must be from 1 to {most}{' with --png' if args.png else ''}, got {args.count}")
    x, t = _load_data(args.dataset, flatten=False, split=args.split)
    if args.index is not None:
        if not 0 <= args.index < len(x):
            raise ConfigError(f"--index must lie in 0..{len(x) - 1} for the {args.split} set, got {args.index}")
        indices = np.array([args.index])
    else:
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
    _check_output_file(out, "--out")
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
    from nnscratch.runs import DATASET_NAMES, DEFAULT_LR, MODEL_KINDS, OPTIMIZER_NAMES

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
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an unexpected failure (and warnings in full)")
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
    evaluate.add_argument("--data", metavar="DIR", default=None,
                          help="a folder of your own digits instead: t10k-images-idx3-ubyte and "
                               "t10k-labels-idx1-ubyte, as the drawing page's 'It was a ...' buttons save them")
    evaluate.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N test images")
    evaluate.add_argument("--plot", metavar="PNG", default=None, help="also save the confusion matrix as a PNG")
    evaluate.set_defaults(func=cmd_evaluate)

    # -- predict
    predict = commands.add_parser(
        "predict", help="read handwritten digits from image files (PNG, JPEG ...)",
        formatter_class=_Formatter,
        description="Recognize the digit in each image. Any size, dark ink on light paper or light on\n"
                    "dark: the picture is cropped, scaled to 20x20 and centred like MNIST digits.\n"
                    "Each answer comes with its confidence, and is marked uncertain when the model\n"
                    "hesitates or the picture holds no handwritten stroke (noise, a ruled line,\n"
                    "a frame, a shadow). A file that cannot be read gets an error line (exit\n"
                    "status 2); the others are still read.")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    predict.add_argument("--model", metavar="FILE", default=None,
                         help="model file or run directory (default: the pretrained DeepConvNet)")
    predict.add_argument("--json", action="store_true",
                         help="print a JSON list: one {path, label, probabilities, confidence, uncertain, "
                              "reasons} per image, or {path, error} for a file that cannot be read")
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
    which.add_argument("--count", type=int, default=1, metavar="N",
                       help="show the first N images (at most 1000; 400 with --png)")
    show.add_argument("--style", choices=("numbers", "shades", "halfblocks", "shaded"), default="shades",
                      help="numbers: pixel values 0-255 (as the book prints them); shades: shade "
                           "characters (also accepted as 'shaded'); halfblocks: compact, two pixel rows per line")
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


def _short_message(exc: BaseException, limit: int = 600) -> str:
    """An exception's message, cut to ``limit`` characters (a forged file must not flood the terminal)."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def _warnings_as_one_line() -> None:
    """Show each warning as one `warning: ...` line, without the file path and source line."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"warning: {text}", file=sys.stderr if file is None else file, flush=True)

    warnings.showwarning = show


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, 2 for errors, 130 when interrupted).

    Bad input and unexpected failures alike print one ``error: ...`` line and
    exit with status 2; ``nnscratch --debug COMMAND`` shows the traceback of an
    unexpected failure instead.
    """
    _single_blas_thread_unless_configured()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_ERROR
    debug = getattr(args, "debug", False)
    if not debug:
        _warnings_as_one_line()
    # A file name the output's encoding cannot show (sieben_\xfc.png with PYTHONIOENCODING=ascii)
    # is printed escaped, as on stderr, instead of failing after the work is done.
    try:
        sys.stdout.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError, OSError):  # not a text stream that can change (a test's capture)
        pass
    try:
        return args.func(args)
    except NnscratchError as exc:
        print(f"error: {_short_message(exc)}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except BrokenPipeError:
        # `nnscratch show ... | head`: the reader left; exit quietly as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"error: {_short_message(exc)}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\nAborted.", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except MemoryError:
        if debug:
            raise
        print("error: out of memory (a size given is too large for this machine)", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the edge of the program: one line, never a traceback
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {_short_message(exc, 300)} "
              "(run `nnscratch --debug ...` for the traceback, and please report it)",
              file=sys.stderr, flush=True)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
