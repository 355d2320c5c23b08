"""Pictures of convolutional networks: first-layer filters and misclassified digits.

The book (7.6.1, 8.2) shows the 30 filters of SimpleConvNet's first layer as
5x5 images before and after training: random noise turns into edge and blob
detectors. :func:`plot_filters_before_after` draws exactly that;
:func:`plot_misclassified` shows the test digits a network gets wrong, with
its guess and the true label (book Fig. 8-6).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from nnscratch.errors import ConfigError, ShapeError

__all__ = ["plot_filters", "plot_filters_before_after", "plot_misclassified", "misclassified_indices"]


def _check_filters(W, name: str) -> np.ndarray:
    W = np.asarray(W)
    if W.ndim != 4:
        raise ShapeError(f"{name} must be filters of shape (FN, C, FH, FW), got shape {W.shape}")
    return W


def _draw_filter_grid(figure, cells, W, channel: int, title: str | None):
    """Draw filter ``[i, channel]`` of W into the given list of axes, each scaled to its own range."""
    for index, ax in enumerate(cells):
        ax.set_axis_off()
        if index < len(W):
            # Like the book: each filter on its own gray scale (dark = large weights).
            ax.imshow(W[index, channel], cmap="gray_r", interpolation="nearest")
    if title and cells:
        cells[0].set_title(title, loc="left", fontsize=10)


def _save(figure, path):
    if path is not None:
        path = Path(os.fspath(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=100)
    return figure


def plot_filters(W, path=None, *, channel: int = 0, ncols: int = 10, title: str | None = None):
    """Show every filter of a convolution layer as a small image.

    Parameters
    ----------
    W : ndarray of shape (FN, C, FH, FW)
        e.g. ``net.params['W1']``.
    path : str or path-like, optional
        Save the figure there as PNG.
    channel : int
        Which input channel of each filter to show (MNIST has only 0).
    ncols : int
        Filters per row.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    W = _check_filters(W, "W")
    if not 0 <= channel < W.shape[1]:
        raise ConfigError(f"channel must be in 0..{W.shape[1] - 1}, got {channel}")
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ConfigError(f"ncols must be a positive integer, got {ncols!r}")
    ncols = min(int(ncols), len(W))
    nrows = math.ceil(len(W) / ncols)
    figure = Figure(figsize=(0.8 * ncols, 0.8 * nrows + (0.4 if title else 0.0)), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False)
    _draw_filter_grid(figure, list(axes.flat), W, channel, None)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def plot_filters_before_after(W_before, W_after, path=None, *, channel: int = 0, ncols: int = 10):
    """The book's Fig. 7-24: the same filters at initialisation (top) and after training (bottom).

    Parameters
    ----------
    W_before, W_after : ndarray of shape (FN, C, FH, FW)
        e.g. a copy of ``net.params['W1']`` taken before training, and the trained one.
    path : str or path-like, optional
        Save the figure there as PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    W_before = _check_filters(W_before, "W_before")
    W_after = _check_filters(W_after, "W_after")
    if W_before.shape != W_after.shape:
        raise ShapeError(f"W_before {W_before.shape} and W_after {W_after.shape} must have the same shape")
    if not 0 <= channel < W_after.shape[1]:
        raise ConfigError(f"channel must be in 0..{W_after.shape[1] - 1}, got {channel}")
    ncols = max(1, min(int(ncols), len(W_after)))
    rows_each = math.ceil(len(W_after) / ncols)
    figure = Figure(figsize=(0.8 * ncols, 1.6 * rows_each + 0.8), layout="constrained")
    top, bottom = figure.subfigures(2, 1)
    for subfigure, W, label in ((top, W_before, "before training"), (bottom, W_after, "after training")):
        axes = subfigure.subplots(rows_each, ncols, squeeze=False)
        _draw_filter_grid(subfigure, list(axes.flat), W, channel, None)
        subfigure.suptitle(f"first-layer filters, {label}", fontsize=10)
    return _save(figure, path)


def misclassified_indices(model, x, t, *, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the samples ``model`` gets wrong, and its predictions for all samples.

    Returns
    -------
    wrong : ndarray of shape (K,)
        Positions in ``x`` where the predicted class differs from ``t``.
    predicted : ndarray of shape (N,)
    """
    labels = np.asarray(t)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    if len(labels) != len(x):
        raise ShapeError(f"t must have one label per image of x ({len(x)}), got shape {np.shape(t)}")
    predicted = np.concatenate([model.predict(x[i:i + batch_size]).argmax(axis=1)
                                for i in range(0, len(x), batch_size)])
    return np.flatnonzero(predicted != labels), predicted


def plot_misclassified(model, x, t, path, *, max_images: int = 20, ncols: int = 10,
                       batch_size: int = 1000) -> tuple[Path, np.ndarray]:
    """Save a grid of the first ``max_images`` test digits the model gets wrong.

    Each cell is captioned with the prediction, in red, and the true label.

    Parameters
    ----------
    model : Model
        Anything with ``predict(x)`` returning scores (N, 10).
    x : ndarray of shape (N, 1, 28, 28) or (N, 784)
        Images in the model's input shape.
    t : ndarray of shape (N,) or one-hot (N, 10)
    path : str or path-like
        The PNG to write.

    Returns
    -------
    (pathlib.Path, ndarray)
        The PNG and the indices of all misclassified samples.
    """
    from nnscratch.plots.digits import save_digit_grid

    wrong, predicted = misclassified_indices(model, x, t, batch_size=batch_size)
    if len(wrong) == 0:
        raise ConfigError("the model classifies every given sample correctly: nothing to show")
    shown = wrong[:max_images]
    labels = np.asarray(t)
    labels = labels.argmax(axis=1) if labels.ndim == 2 else labels
    accuracy = 1.0 - len(wrong) / len(x)
    title = f"{len(wrong)} of {len(x)} misclassified (accuracy {accuracy:.2%}); first {len(shown)}"
    out = save_digit_grid(np.asarray(x)[shown], labels[shown], path, predicted=predicted[shown],
                          ncols=ncols, title=title)
    return out, wrong
