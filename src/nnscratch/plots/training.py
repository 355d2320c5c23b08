"""Figures of training: loss curve, accuracy curves, confusion matrix, optimizer paths.

Every function returns a :class:`matplotlib.figure.Figure` (shown inline in a
notebook) and, when given ``path``, also saves it there as a PNG. Figures are
built without ``pyplot``, so no global figure state piles up in long runs.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from . import figure_saved_if_asked

__all__ = [
    "smooth_curve",
    "plot_loss_curve",
    "plot_loss_comparison",
    "plot_accuracy",
    "plot_accuracy_comparison",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_optimizer_paths",
]


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def smooth_curve(values, window: int | None = None) -> np.ndarray:
    """Moving average of ``values`` (the book's ``smooth_curve`` idea, without its edge effects).

    Parameters
    ----------
    values : sequence of float, length L
    window : int, optional
        Width of the average; default ``max(1, L // 50)`` rounded up to an odd number.

    Returns
    -------
    ndarray of shape (L,)
        Each point is the mean of the values within ``window // 2`` of it
        (fewer at the ends, so the curve neither shrinks nor bends towards zero).
    """
    y = np.asarray(values, dtype=np.float64).ravel()
    if y.size == 0:
        return y
    if window is None:
        window = max(1, y.size // 50)
    window = int(window) | 1
    half = window // 2
    csum = np.concatenate(([0.0], np.cumsum(y)))
    idx = np.arange(y.size)
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, y.size)
    return (csum[hi] - csum[lo]) / (hi - lo)


def _losses(history_or_losses):
    losses = getattr(history_or_losses, "train_loss_list", history_or_losses)
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ShapeError(f"losses must be a non-empty 1-D sequence (or a History), got shape {losses.shape}")
    return losses


def _label_loss_axes(ax, ylabel, log_scale, title):
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    if log_scale:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()


def plot_loss_curve(history_or_losses, path=None, *, window: int | None = None, log_scale=False,
                    title="Training loss"):
    """Mini-batch loss per iteration, raw (faint) and smoothed (solid).

    Parameters
    ----------
    history_or_losses : History or sequence of float
        A :class:`nnscratch.training.History` or its ``train_loss_list``.
    path : str or os.PathLike, optional
        Where to save the PNG.
    window : int, optional
        Moving-average width for the smoothed line (see :func:`smooth_curve`).
    log_scale : bool
        Logarithmic loss axis.
    """
    losses = _losses(history_or_losses)
    iterations = np.arange(1, losses.size + 1)
    fig = _figure((6.4, 4.0))
    ax = fig.add_subplot()
    ax.plot(iterations, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="mini-batch loss")
    ax.plot(iterations, smooth_curve(losses, window), color="tab:blue", linewidth=2.0, label="smoothed")
    _label_loss_axes(ax, "loss", log_scale, title)
    return figure_saved_if_asked(fig, path)


def plot_loss_comparison(losses_by_name: dict, path=None, *, window: int | None = None,
                         log_scale=True, title="Training loss"):
    """Smoothed loss curves of several runs on one axis (the book's figure 6-9).

    Parameters
    ----------
    losses_by_name : dict of str -> History or sequence of float
        One curve per run, e.g. per optimizer.
    path, window, log_scale, title
        As in :func:`plot_loss_curve`.
    """
    if not losses_by_name:
        raise ShapeError("losses_by_name must hold at least one run")
    fig = _figure((6.4, 4.0))
    ax = fig.add_subplot()
    for name, losses in losses_by_name.items():
        losses = _losses(losses)
        ax.plot(np.arange(1, losses.size + 1), smooth_curve(losses, window), label=str(name))
    _label_loss_axes(ax, "loss (smoothed)", log_scale, title)
    return figure_saved_if_asked(fig, path)


def _accuracies(history):
    """(train, test or None) accuracies per epoch of a History or a dict."""
    if isinstance(history, dict):
        train, test = history.get("train_acc_list", []), history.get("test_acc_list", [])
    else:
        train, test = history.train_acc_list, history.test_acc_list
    train = np.asarray(train, dtype=np.float64)
    if train.ndim != 1 or train.size == 0:
        raise ShapeError(f"train accuracies must be a non-empty 1-D sequence, got shape {train.shape}")
    if test is not None and len(test) == train.size and all(v is not None for v in test):
        return train, np.asarray(test, dtype=np.float64)
    return train, None


def _whole_epochs(ax) -> None:
    """Epoch ticks at whole numbers only (a 3-epoch run must not show epoch 1.5)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_accuracy(history, path=None, *, ylim=(0.0, 1.0), title="Accuracy"):
    """Train and test accuracy per epoch, the book's figure 4-12.

    Parameters
    ----------
    history : History or dict
        A :class:`~nnscratch.training.History` or a dict with ``train_acc_list``
        and optionally ``test_acc_list`` (one value per epoch).
    """
    train, test = _accuracies(history)
    epochs = np.arange(1, train.size + 1)
    fig = _figure((6.4, 4.0))
    ax = fig.add_subplot()
    marker = train.size <= 40  # markers on a long run only blur the lines
    ax.plot(epochs, train, marker="o" if marker else None, label="train acc")
    if test is not None:
        ax.plot(epochs, test, marker="s" if marker else None, linestyle="--", label="test acc")
    _finish_accuracy_axes(ax, ylim, title)
    return figure_saved_if_asked(fig, path)


def plot_accuracy_comparison(histories: dict, path=None, *, ylim=(0.0, 1.0), title="Accuracy"):
    """Train (solid) and test (dashed) accuracy of several runs, one colour per run.

    The book's figures 6-20 and 6-21 side by side: the gap between a run's two
    lines is how much it overfits.

    Parameters
    ----------
    histories : dict of name -> History or dict
        Each as :func:`plot_accuracy` takes it.
    """
    if not histories:
        raise ShapeError("histories must name at least one run")
    fig = _figure((7.2, 4.4))
    ax = fig.add_subplot()
    for k, (name, history) in enumerate(histories.items()):
        train, test = _accuracies(history)
        epochs = np.arange(1, train.size + 1)
        colour = f"C{k}"
        ax.plot(epochs, train, color=colour, label=f"{name}: train")
        if test is not None:
            ax.plot(epochs, test, color=colour, linestyle="--",
                    label=f"{name}: test (gap {train[-1] - test[-1]:.2f})")
    _finish_accuracy_axes(ax, ylim, title, legend_size=8)
    return figure_saved_if_asked(fig, path)


def _finish_accuracy_axes(ax, ylim, title, legend_size=None) -> None:
    _whole_epochs(ax)
    ax.set_xlabel("epochs")
    ax.set_ylabel("accuracy")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=legend_size)


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class ``i`` predicted as class ``j``.

    Parameters
    ----------
    y_true, y_pred : int arrays of shape (N,)
    num_classes : int, optional
        Default: 1 + the largest label seen.

    Returns
    -------
    ndarray of int64, shape (num_classes, num_classes)
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ShapeError(f"y_true and y_pred must be 1-D label arrays of one shape, "
                         f"got {y_true.shape} and {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.dtype.kind not in "iu" or y.min() < 0):
            raise ShapeError(f"{name} must hold non-negative integer labels, got dtype {y.dtype}")
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    if y_true.size and max(y_true.max(), y_pred.max()) >= num_classes:
        raise ShapeError(f"labels must be < num_classes={num_classes}")
    flat = y_true.astype(np.int64) * num_classes + y_pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def plot_confusion_matrix(y_true, y_pred, path=None, *, num_classes: int | None = None,
                          class_names=None, title=None):
    """Confusion matrix as a heat map with the count written in every cell.

    Rows are true classes, columns predicted classes; the title shows the
    accuracy. The image data (``fig.axes[0].images[0].get_array()``) is the
    count matrix of :func:`confusion_matrix`.
    """
    counts = confusion_matrix(y_true, y_pred, num_classes)
    k = counts.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(c) for c in class_names]
    fig = _figure((0.55 * k + 2.2, 0.5 * k + 1.6))
    ax = fig.add_subplot()
    im = ax.imshow(counts, cmap="Blues", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    threshold = counts.max() / 2 if counts.size else 0
    for i, j in zip(*np.nonzero(counts)):
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                color="white" if counts[i, j] > threshold else "black")
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = counts.sum()
    accuracy = np.trace(counts) / total if total else float("nan")
    ax.set_title(title or f"Confusion matrix (accuracy {accuracy:.2%}, n={total})")
    return figure_saved_if_asked(fig, path)


def plot_optimizer_paths(paths: dict, f, path=None, *, xlim=(-10, 10), ylim=(-10, 10), ncols=2,
                         levels=None):
    """The book's figure 6-8: each optimizer's path over the contours of ``f``.

    Parameters
    ----------
    paths : dict of str -> array of shape (steps + 1, 2)
        Visited points (x, y) per optimizer name, starting point first.
    f : callable
        ``f(X, Y)`` on meshgrid arrays, e.g. ``X**2 / 20 + Y**2``.
    path : str or os.PathLike, optional
        Where to save the PNG.
    xlim, ylim : (float, float)
        The plotted region.
    ncols : int
        Panels per row (2 gives the book's 2x2 grid for four optimizers).
    levels : sequence of float, optional
        Contour levels; default: the values of ``f`` on a log-spaced range.
    """
    if not paths:
        raise ShapeError("paths must name at least one optimizer's path")
    arrays = {}
    for name, points in paths.items():
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ShapeError(f"path of {name!r} must have shape (steps + 1, 2), got {points.shape}")
        arrays[name] = points
    X, Y = np.meshgrid(np.linspace(*xlim, 250), np.linspace(*ylim, 250))
    Z = f(X, Y)
    if levels is None:
        zmin = max(float(Z.min()), 1e-3)
        levels = np.geomspace(zmin, float(Z.max()), 12)
    nrows = -(-len(arrays) // ncols)
    fig = _figure((4.2 * min(ncols, len(arrays)), 3.6 * nrows))
    for i, (name, points) in enumerate(arrays.items(), start=1):
        ax = fig.add_subplot(nrows, min(ncols, len(arrays)), i)
        ax.contour(X, Y, Z, levels=levels, colors="0.6", linewidths=0.8)
        ax.plot(points[:, 0], points[:, 1], "o-", color="red", markersize=3, linewidth=1)
        ax.plot(0, 0, "+", color="black", markersize=10)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_title(name)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    return figure_saved_if_asked(fig, path)
