"""Pictures of convolutional networks: first-layer filters and misclassified digits.

The book (7.6.1, 8.2) shows the 30 filters of SimpleConvNet's first layer as
5x5 images before and after training: random noise turns into edge and blob
detectors. :func:`plot_filters_before_after` draws exactly that;
:func:`plot_misclassified` shows the test digits a network gets wrong, with
its guess and the true label (book Fig. 8-6).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ShapeError
from .digits import save_digit_grid
from . import figure_saved_if_asked

__all__ = ["plot_filters", "plot_filters_before_after", "plot_misclassified", "misclassified_indices"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_filters(W, name: str, channel) -> np.ndarray:
    W = np.asarray(W)
    if W.ndim != 4:
        raise ShapeError(f"{name} must be filters of shape (FN, C, FH, FW), got shape {W.shape}")
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < W.shape[1]:
        raise ConfigError(f"channel must be an integer in 0..{W.shape[1] - 1} ({name} has {W.shape[1]} "
                          f"input channels), got {channel!r}")
    return W


def _draw_filter_grid(cells, W, channel: int):
    """Draw filter ``[i, channel]`` of W into the i-th of the given axes; axes beyond FN stay blank."""
    for index, ax in enumerate(cells):
        ax.set_axis_off()
        if index < len(W):
            # Like the book: each filter on its own gray scale (dark = large weights).
            ax.imshow(W[index, channel], cmap="gray_r", interpolation="nearest")


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
        Its first FN axes show the filters in order.
    """
    from matplotlib.figure import Figure

    W = _check_filters(W, "W", channel)
    ncols = min(_positive_int(ncols, "ncols"), len(W))
    nrows = math.ceil(len(W) / ncols)
    figure = Figure(figsize=(0.8 * ncols, 0.8 * nrows + (0.4 if title else 0.0)), layout="constrained")
    _draw_filter_grid(list(figure.subplots(nrows, ncols, squeeze=False).flat), W, channel)
    if title:
        figure.suptitle(title)
    return figure_saved_if_asked(figure, path)


def plot_filters_before_after(W_before, W_after, path=None, *, channel: int = 0, ncols: int = 10):
    """The book's Fig. 7-24: the same filters at initialisation (top) and after training (bottom).

    Parameters
    ----------
    W_before, W_after : ndarray of shape (FN, C, FH, FW)
        e.g. a copy of ``net.params['W1']`` taken before training, and the trained one.
    path : str or path-like, optional
        Save the figure there as PNG.
    channel, ncols : int
        As for :func:`plot_filters`.

    Returns
    -------
    matplotlib.figure.Figure
        Two subfigures, ``figure.subfigs[0]`` before and ``[1]`` after training.
    """
    from matplotlib.figure import Figure

    W_before = _check_filters(W_before, "W_before", channel)
    W_after = _check_filters(W_after, "W_after", channel)
    if W_before.shape != W_after.shape:
        raise ShapeError(f"W_before {W_before.shape} and W_after {W_after.shape} must have the same shape")
    ncols = min(_positive_int(ncols, "ncols"), len(W_after))
    rows_each = math.ceil(len(W_after) / ncols)
    figure = Figure(figsize=(0.8 * ncols, 1.6 * rows_each + 0.8), layout="constrained")
    top, bottom = figure.subfigures(2, 1)
    for subfigure, W, label in ((top, W_before, "before training"), (bottom, W_after, "after training")):
        _draw_filter_grid(list(subfigure.subplots(rows_each, ncols, squeeze=False).flat), W, channel)
        subfigure.suptitle(f"first-layer filters, {label}", fontsize=10)
    return figure_saved_if_asked(figure, path)


def _labels(t) -> np.ndarray:
    labels = np.asarray(t)
    return labels.argmax(axis=1) if labels.ndim == 2 else labels


def misclassified_indices(model, x, t, *, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the samples ``model`` gets wrong, and its predictions for all samples.

    Returns
    -------
    wrong : ndarray of shape (K,)
        Positions in ``x`` where the predicted class differs from ``t``.
    predicted : ndarray of shape (N,)
    """
    labels = _labels(t)
    if len(labels) != len(x):
        raise ShapeError(f"t must have one label per image of x ({len(x)}), got shape {np.shape(t)}")
    batch_size = _positive_int(batch_size, "batch_size")
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
    max_images = _positive_int(max_images, "max_images")
    wrong, predicted = misclassified_indices(model, x, t, batch_size=batch_size)
    if len(wrong) == 0:
        raise ConfigError("the model classifies every given sample correctly: nothing to show")
    shown = wrong[:max_images]
    labels = _labels(t)
    accuracy = 1.0 - len(wrong) / len(x)
    title = f"{len(wrong)} of {len(x)} misclassified (accuracy {accuracy:.2%}); first {len(shown)}"
    out = save_digit_grid(np.asarray(x)[shown], labels[shown], path, predicted=predicted[shown],
                          ncols=ncols, title=title)
    return out, wrong
