"""A folder of the user's own digits, in MNIST's layout.

The page's "It was a ..." buttons append the prepared 28x28 field and its true
label to two IDX files named like MNIST's test set::

    DIR/t10k-images-idx3-ubyte   uint8 (N, 28, 28), white digit on black
    DIR/t10k-labels-idx1-ubyte   uint8 (N,)

so ``nnscratch evaluate --data DIR`` (and ``read_idx``) read them like MNIST.
An append reads both files, adds one row and writes each file atomically,
labels last, under a lock (a thread lock and an ``flock`` on ``DIR/.lock``),
so two requests never interleave and a reader never sees half a file. If a
crash ever left the files with different counts, the next append keeps the
first min(counts) rows of each.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import numpy as np

from nnscratch.datasets.idx import read_idx, write_idx

__all__ = ["DigitFolder", "IMAGES_NAME", "LABELS_NAME", "read_digit_folder"]

IMAGES_NAME = "t10k-images-idx3-ubyte"
LABELS_NAME = "t10k-labels-idx1-ubyte"
# A folder holds at most this many digits (30 MB of images): appends beyond are refused.
MAX_DIGITS = 40_000

_thread_lock = threading.Lock()


@contextlib.contextmanager
def _folder_lock(directory: Path):
    with _thread_lock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on Linux
            yield
            return
        with open(directory / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_digit_folder(directory) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 of a folder in MNIST's layout.

    Reads ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (plain or
    ``.gz``). Raises DatasetError naming what is missing or inconsistent.
    """
    from nnscratch.errors import DatasetError

    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"{directory}: no such folder of digits")
    images_path, labels_path = _find(directory, IMAGES_NAME), _find(directory, LABELS_NAME)
    if images_path is None or labels_path is None:
        missing = IMAGES_NAME if images_path is None else LABELS_NAME
        raise DatasetError(f"{directory}: no {missing} (a folder of digits holds {IMAGES_NAME} and "
                           f"{LABELS_NAME}, as MNIST's test set; the drawing page writes them)")
    images = read_idx(images_path, expected_ndim=3)
    labels = read_idx(labels_path, expected_ndim=1)
    if images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DatasetError(f"{images_path}: expected uint8 images of 28x28, got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or (labels.size and labels.max() > 9):
        raise DatasetError(f"{labels_path}: expected uint8 labels 0..9")
    if len(images) != len(labels):
        raise DatasetError(f"{directory}: {len(images)} images but {len(labels)} labels")
    return images, labels


class DigitFolder:
    """Appends labelled 28x28 fields to a folder in MNIST's layout (created on first use)."""

    def __init__(self, directory):
        self.directory = Path(directory)

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        images_path = self.directory / IMAGES_NAME
        labels_path = self.directory / LABELS_NAME
        images = read_idx(images_path, expected_ndim=3) if images_path.is_file() else np.zeros((0, 28, 28), np.uint8)
        labels = read_idx(labels_path, expected_ndim=1) if labels_path.is_file() else np.zeros(0, np.uint8)
        n = min(len(images), len(labels))
        return images[:n], labels[:n]

    def counts(self) -> list[int]:
        """How many digits of each class the folder holds."""
        if not self.directory.is_dir():
            return [0] * 10
        with _folder_lock(self.directory):
            _, labels = self._read()
        return [int(c) for c in np.bincount(labels, minlength=10)[:10]]

    def append(self, field: np.ndarray, label: int) -> int:
        """Add one field (28x28 floats in 0..1) with its label; returns the new number of digits."""
        pixels = np.round(np.clip(np.asarray(field, dtype=np.float64), 0, 1) * 255).astype(np.uint8)
        os.makedirs(self.directory, exist_ok=True)
        with _folder_lock(self.directory):
            images, labels = self._read()
            if len(images) >= MAX_DIGITS:
                from nnscratch.errors import DatasetError

                raise DatasetError(f"the folder already holds {len(images)} digits (at most {MAX_DIGITS})")
            images = np.concatenate([images, pixels.reshape(1, 28, 28)])
            labels = np.concatenate([labels, np.array([label], np.uint8)])
            write_idx(self.directory / IMAGES_NAME, images)
            write_idx(self.directory / LABELS_NAME, labels)
        return len(labels)
