"""Grids of digit images with their labels, saved as PNG (e.g. the misclassified digits)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nnscratch.datasets.display import digit_batch_pixels
from nnscratch.errors import ConfigError, ShapeError
from nnscratch.plots import save_figure

__all__ = ["save_digit_grid"]

WRONG_COLOR = "#d62728"  # red: prediction differs from the true label
RIGHT_COLOR = "black"

_CELL_WIDTH_INCHES = 1.1  # each digit with its margin; at 100 dpi about 110 pixels
_CAPTION_BAND = 0.35  # height of the caption band above a digit, in digit heights
_GAP = 1 / 7  # blank columns between neighbouring digits, in digit widths
_TITLE_INCHES = 0.4


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
    mosaic, cell_height, cell_width = _tile(pixels, nrows, ncols)

    shown = true if guess is None else guess
    wrong = np.zeros(n, dtype=bool) if guess is None else guess != true
    captions = [f"{name(g)} (true {name(k)})" if is_wrong else name(g)
                for g, k, is_wrong in zip(shown.tolist(), true.tolist(), wrong.tolist())]

    # One image on one Axes instead of N subplots: drawing N Axes and laying them
    # out took nearly all of the time. The figure is sized so that mosaic pixels
    # stay square and each 28-pixel digit's cell keeps about the old 1.1 x 1.3 inches.
    inches_per_pixel = _CELL_WIDTH_INCHES / cell_width
    grid_height = mosaic.shape[0] * inches_per_pixel
    title_height = _TITLE_INCHES if title else 0.0
    figure = Figure(figsize=(mosaic.shape[1] * inches_per_pixel, grid_height + title_height), dpi=100)
    ax = figure.add_axes((0.0, 0.0, 1.0, grid_height / (grid_height + title_height)))
    ax.set_axis_off()
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest", aspect="auto")
    band = cell_height - pixels.shape[1]
    for index, (caption, is_wrong) in enumerate(zip(captions, wrong.tolist())):
        row, col = divmod(index, ncols)
        # Image coordinates: pixel centres are integers, so cell edges sit at -0.5.
        ax.text(col * cell_width + cell_width / 2 - 0.5, row * cell_height + band / 2 - 0.5, caption,
                color=WRONG_COLOR if is_wrong else RIGHT_COLOR, fontsize=8, ha="center", va="center")
    if title:
        figure.text(0.5, 1.0 - 0.5 * title_height / (grid_height + title_height), title,
                    ha="center", va="center", fontsize=12)
    return save_figure(figure, path, dpi=100)


def _tile(pixels: np.ndarray, nrows: int, ncols: int) -> tuple[np.ndarray, int, int]:
    """Lay (N, H, W) digits out as one (nrows * cell_height, ncols * cell_width) image.

    Each cell has a blank caption band above its digit and a small blank margin
    left and right (0 is white under the ``gray_r`` colour map); cells past N
    stay blank.
    """
    n, height, width = pixels.shape
    band = max(1, round(height * _CAPTION_BAND))  # 10 rows for 28-pixel digits
    gap = max(1, round(width * _GAP))  # 4 columns for 28-pixel digits
    cell_height, cell_width = band + height, gap + width
    cells = np.zeros((nrows * ncols, cell_height, cell_width), dtype=np.uint8)
    cells[:n, band:, gap // 2:gap // 2 + width] = pixels
    mosaic = cells.reshape(nrows, ncols, cell_height, cell_width).transpose(0, 2, 1, 3)
    return mosaic.reshape(nrows * cell_height, ncols * cell_width), cell_height, cell_width
