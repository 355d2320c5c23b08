"""Grids of digit images with their labels, saved as PNG (e.g. the misclassified digits)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nnscratch.datasets.display import digit_batch_pixels
from nnscratch.errors import ConfigError, ShapeError

__all__ = ["save_digit_grid"]

WRONG_COLOR = "#d62728"  # red: prediction differs from the true label
RIGHT_COLOR = "black"


def _class_indices(values, n: int, name: str) -> np.ndarray:
    """Labels (N,) or one-hot / score rows (N, C) as an int array of shape (N,)."""
    array = np.asarray(values)
    if array.ndim == 2:
        array = array.argmax(axis=1)
    if array.ndim != 1 or len(array) != n:
        raise ShapeError(f"{name}: expected shape ({n},) or ({n}, n_classes) to match {n} images, got {np.shape(values)}")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(array == np.round(array)):
            raise ShapeError(f"{name}: expected integer class labels, got dtype {array.dtype}")
    return array.astype(np.int64)


def save_digit_grid(images, labels, path: str | os.PathLike, *, predicted=None, ncols: int = 10,
                    title: str | None = None, class_names: Sequence[str] | None = None) -> Path:
    """Save a grid of digits with their labels as a PNG.

    Parameters
    ----------
    images : array_like of shape (N, 784), (N, 28, 28) or (N, 1, 28, 28)
        uint8 0..255 or floats in [0, 1].
    labels : array_like of shape (N,) or one-hot (N, C)
        True labels.
    path : str or path-like
        Where to write the PNG; the directory is created if needed.
    predicted : array_like of shape (N,) or scores (N, C), optional
        Model predictions. Each cell's caption is then the prediction, in red
        with the true label beside it where the two differ.
    ncols : int
        Images per row.
    title : str, optional
        Figure title.
    class_names : sequence of str, optional
        Caption text per class (default: the class number).

    Returns
    -------
    pathlib.Path
        The PNG written.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    pixels = digit_batch_pixels(images)  # (N, H, W) uint8
    n = len(pixels)
    true = _class_indices(labels, n, "labels")
    guess = None if predicted is None else _class_indices(predicted, n, "predicted")
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ConfigError(f"ncols: expected a positive int, got {ncols!r}")

    def name(k: int) -> str:
        return str(class_names[k]) if class_names is not None and 0 <= k < len(class_names) else str(k)

    ncols = min(int(ncols), n)
    nrows = math.ceil(n / ncols)
    figure = Figure(figsize=(1.1 * ncols, 1.3 * nrows + (0.4 if title else 0.0)), dpi=100)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= n:
            continue
        ax.imshow(pixels[index], cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        if guess is None:
            caption, color = name(true[index]), RIGHT_COLOR
        elif guess[index] == true[index]:
            caption, color = name(guess[index]), RIGHT_COLOR
        else:
            caption, color = f"{name(guess[index])} (true {name(true[index])})", WRONG_COLOR
        ax.set_title(caption, color=color, fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
