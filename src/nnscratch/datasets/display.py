"""Digits as text in the terminal: a grid of pixel values, shades or half blocks.

Three renderings of one 28x28 image:

``numbers``     each pixel's 0-255 value, right-aligned in 3 columns (28 rows),
                the grid the seeds print to look at MNIST;
``shades``      one of `` ░▒▓█`` per pixel, doubled so the digit keeps its
                proportions in a terminal cell (28 rows of 56 characters);
``halfblocks``  two pixel rows per text row with ``▀ ▄ █`` (14 rows), pixels
                at or above a threshold count as ink.

Every function accepts an image of shape (784,), (28, 28) or (1, 28, 28),
(or any square size), as uint8 0..255, other integers in 0..255, bool, or
floats in [0, 1] such as ``load_mnist()`` returns.
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

import numpy as np

from nnscratch.errors import ConfigError, ShapeError

__all__ = ["digit_pixels", "digit_batch_pixels", "format_digit_numbers", "format_digit_shades",
           "format_digit_halfblocks", "render_digit", "show_digit", "SHADES", "STYLES"]

SHADES = " ░▒▓█"
_HALF_BLOCKS = np.array([" ", "▄", "▀", "█"])  # index: 2 * top_inked + bottom_inked
STYLES = ("numbers", "shades", "halfblocks")


def _to_uint8(pixels: np.ndarray, name: str) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(pixels.dtype, np.integer):
        if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
            raise ShapeError(f"{name}: integer pixels must be in 0..255, got {pixels.min()}..{pixels.max()}")
        return pixels.astype(np.uint8)
    if np.issubdtype(pixels.dtype, np.floating):
        if not np.all(np.isfinite(pixels)):
            raise ShapeError(f"{name}: pixels contain NaN or infinity")
        low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
        if low < -1e-6 or high > 1 + 1e-6:
            raise ShapeError(
                f"{name}: float pixels must be in [0, 1] (normalized), got {low:g}..{high:g}; "
                "pass uint8 for 0..255 values")
        return np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ShapeError(f"{name}: expected uint8, integer, bool or float pixels, got dtype {pixels.dtype}")


def _square_side(n: int, name: str, shape) -> int:
    side = math.isqrt(n)
    if side * side != n or n == 0:
        raise ShapeError(f"{name}: a flat image needs a square number of pixels such as 784, got shape {shape}")
    return side


def digit_pixels(image, *, name: str = "image") -> np.ndarray:
    """One image as a (H, W) uint8 array of 0..255 values.

    Parameters
    ----------
    image : array_like of shape (784,), (28, 28) or (1, 28, 28)
        uint8 0..255, integers 0..255, bool, or floats in [0, 1].

    Raises
    ------
    ShapeError
        Another shape, an unsupported dtype or values out of range.
    """
    pixels = np.asarray(image)
    shape = pixels.shape
    if pixels.ndim == 1:
        side = _square_side(pixels.size, name, shape)
        pixels = pixels.reshape(side, side)
    elif pixels.ndim == 3 and shape[0] == 1:
        pixels = pixels[0]
    elif pixels.ndim != 2:
        raise ShapeError(f"{name}: expected shape (784,), (28, 28) or (1, 28, 28), got {shape}")
    if pixels.size == 0:
        raise ShapeError(f"{name}: empty image of shape {shape}")
    return _to_uint8(pixels, name)


def digit_batch_pixels(images, *, name: str = "images") -> np.ndarray:
    """A batch of images as a (N, H, W) uint8 array.

    Parameters
    ----------
    images : array_like of shape (N, 784), (N, 28, 28) or (N, 1, 28, 28)
        Same value conventions as :func:`digit_pixels`.
    """
    pixels = np.asarray(images)
    shape = pixels.shape
    if pixels.ndim == 2:
        side = _square_side(shape[1], name, shape)
        pixels = pixels.reshape(shape[0], side, side)
    elif pixels.ndim == 4 and shape[1] == 1:
        pixels = pixels[:, 0]
    elif pixels.ndim != 3:
        raise ShapeError(f"{name}: expected shape (N, 784), (N, 28, 28) or (N, 1, 28, 28), got {shape}")
    if len(pixels) == 0:
        raise ShapeError(f"{name}: need at least one image, got shape {shape}")
    return _to_uint8(pixels, name)


def _join(cells: np.ndarray, separator: str = "") -> str:
    return "\n".join(separator.join(row) for row in cells.tolist())


def format_digit_numbers(image) -> str:
    """The image as rows of pixel values 0..255, each right-aligned in 3 columns.

    >>> print(format_digit_numbers(np.array([[0, 7], [255, 42]], np.uint8)))
      0   7
    255  42
    """
    pixels = digit_pixels(image)
    return _join(np.char.rjust(pixels.astype(str), 3), " ")


def format_digit_shades(image, *, double: bool = True) -> str:
    """The image as shade characters `` ░▒▓█`` (darker ink, denser block).

    Parameters
    ----------
    image : array_like
        See :func:`digit_pixels`.
    double : bool
        Print each pixel twice so that a square image looks square in a
        terminal, whose cells are about twice as tall as wide.
    """
    pixels = digit_pixels(image)
    levels = (pixels.astype(np.uint16) * len(SHADES)) >> 8  # 0..255 -> 0..4
    cells = np.array(list(SHADES))[levels]
    if double:
        cells = np.repeat(cells, 2, axis=1)
    return _join(cells)


def format_digit_halfblocks(image, *, threshold: int = 128) -> str:
    """The image in half as many text rows: ``▀``, ``▄``, ``█`` or space per pair of pixels.

    A pixel counts as ink when its 0..255 value is at least ``threshold``.
    """
    pixels = digit_pixels(image)
    ink = pixels >= threshold
    if len(ink) % 2:
        ink = np.vstack([ink, np.zeros((1, ink.shape[1]), dtype=bool)])
    top, bottom = ink[0::2], ink[1::2]
    return _join(_HALF_BLOCKS[2 * top.astype(np.int8) + bottom])


def render_digit(image, style: str = "shades", *, label=None) -> str:
    """The image as text in one of ``STYLES``, with an optional ``label: ...`` line below.

    ``"shaded"`` is accepted for ``"shades"`` (the command line's older name).
    """
    style = {"shaded": "shades"}.get(style, style)
    if style == "numbers":
        text = format_digit_numbers(image)
    elif style == "shades":
        text = format_digit_shades(image)
    elif style == "halfblocks":
        text = format_digit_halfblocks(image)
    else:
        raise ConfigError(f"style: expected one of {', '.join(STYLES)}, got {style!r}")
    if label is not None:
        text += f"\nlabel: {label}"
    return text


def show_digit(image, style: str = "shades", *, label=None, file: TextIO | None = None) -> None:
    """Print the image as text (see :func:`render_digit`) to ``file`` (stdout by default)."""
    print(render_digit(image, style, label=label), file=file if file is not None else sys.stdout)
