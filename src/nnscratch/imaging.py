"""Turn a picture of a handwritten digit into an MNIST-like 28x28 input.

MNIST digits were made like this (LeCun et al.): the ink is white on black, the
digit is size-normalised to fit a 20x20 box keeping its aspect ratio (with
anti-aliasing, hence the grey levels) and placed in a 28x28 field so that its
centre of mass sits at the centre. A network trained on MNIST only recognises
digits prepared the same way, so :func:`prepare_digit` repeats those steps for
any photo, scan or drawing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nnscratch.errors import ImageInputError

__all__ = ["prepare_digit", "prepare_digits", "DIGIT_BOX", "FIELD"]

FIELD = 28       # side of the MNIST image
DIGIT_BOX = 20   # side of the box the digit is scaled to fit
# A pixel is ink when it is this far (on the 0..1 scale) above the background.
_INK_THRESHOLD = 0.1
# Less contrast than this between paper and darkest stroke means there is no digit.
_MIN_CONTRAST = 0.08
# MNIST strokes are about a tenth of the digit's size (2 to 3 pixels in the 20-pixel box).
# A fine pen on a large canvas draws strokes far thinner, which scaling would turn into a
# faint hairline the network has never seen: strokes under _THIN_STROKE of the digit's
# size are widened to _MNIST_STROKE first.
_THIN_STROKE = 0.06
_MNIST_STROKE = 0.1
# Larger crops are shrunk to this side before widening, which keeps the widening cheap.
_WORK_SIDE = 200


def _describe(image) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return f"<{type(image).__name__}>"


def _open_image(source):
    """Open a path or file object with Pillow; any failure -> ImageInputError."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageInputError(f"{name}: no such image file")
        if path.is_dir():
            raise ImageInputError(f"{name}: is a directory, expected an image file (PNG, JPEG...)")
    try:
        image = Image.open(source)
        image.load()
        # Phone photos store their rotation in EXIF rather than in the pixels.
        image = ImageOps.exif_transpose(image)
    except UnidentifiedImageError as exc:
        raise ImageInputError(f"{name}: not a readable image (PNG, JPEG, ...)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageInputError(f"{name}: image is too large ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"{name}: cannot read image: {exc}") from exc
    return image


def _to_gray(image) -> np.ndarray:
    """A Pillow image -> 2-D float64 grey levels in [0, 1], transparency shown as white."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        gray = np.asarray(image, dtype=np.float64)
        top = gray.max()
        return gray / top if top > 1 else gray
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def _array_to_gray(array: np.ndarray) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype.kind not in "biuf":
        raise ImageInputError(f"image array must be numeric, got dtype {a.dtype}")
    a = np.squeeze(a.astype(np.float64))
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        scale = 255.0 if a.max() > 1 else 1.0
        rgb = a[..., :3] / scale
        gray = rgb @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, as Pillow's "L"
        if a.shape[-1] == 4:
            alpha = a[..., 3] / scale
            gray = gray * alpha + (1.0 - alpha)  # composite on white
        return gray
    if a.ndim != 2:
        raise ImageInputError(
            f"image array must have shape (H, W), (H, W, 3) or (H, W, 4), got {np.shape(array)}"
        )
    return a / 255.0 if a.max() > 1 else a


def _border_level(gray: np.ndarray) -> float:
    ring = max(1, min(gray.shape) // 20)
    border = np.concatenate([
        gray[:ring].ravel(), gray[-ring:].ravel(), gray[:, :ring].ravel(), gray[:, -ring:].ravel(),
    ])
    return float(np.median(border))


def _resize(patch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    height, width = size
    resized = Image.fromarray(patch.astype(np.float32), mode="F").resize(
        (width, height), Image.Resampling.LANCZOS
    )
    # Lanczos rings slightly beyond the input range.
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)


def _stroke_width(ink: np.ndarray) -> float:
    """Typical stroke width in pixels of a boolean ink mask.

    A long stroke of width w and length L covers w * L pixels, of which about 2 * L
    lie on its edge (an ink pixel with a paper pixel beside it).
    """
    inner = ink.copy()
    inner[1:] &= ink[:-1]
    inner[:-1] &= ink[1:]
    inner[:, 1:] &= ink[:, :-1]
    inner[:, :-1] &= ink[:, 1:]
    area = np.count_nonzero(ink)
    return 2.0 * area / max(area - np.count_nonzero(inner), 1)


def _dilate(patch: np.ndarray, size: int) -> np.ndarray:
    """Grey-level dilation by a size x size square; the result grows by size - 1 on each axis."""
    from numpy.lib.stride_tricks import sliding_window_view

    for axis in (0, 1):
        padding = [(0, 0), (0, 0)]
        padding[axis] = (size - 1, size - 1)
        patch = sliding_window_view(np.pad(patch, padding), size, axis=axis).max(axis=-1)
    return patch


def _widen_thin_strokes(patch: np.ndarray) -> np.ndarray:
    """Widen strokes thinner than _THIN_STROKE of the digit's size to MNIST's proportion."""
    long_side = max(patch.shape)
    width = _stroke_width(patch > 0.5)
    if width >= _THIN_STROKE * long_side:
        return patch
    if long_side > _WORK_SIDE:
        scale = _WORK_SIDE / long_side
        patch = _resize(patch, (max(1, round(patch.shape[0] * scale)),
                                max(1, round(patch.shape[1] * scale))))
        width, long_side = width * scale, max(patch.shape)
        top = patch.max()
        if top > 0:  # the shrunken hairline is faint: make its core full ink again
            patch = patch / top
    grow = round(_MNIST_STROKE * long_side - width)
    return _dilate(patch, grow + 1) if grow > 0 else patch


def prepare_digit(image) -> np.ndarray:
    """Prepare one digit picture the way MNIST digits were prepared.

    Steps: grey levels (transparent pixels count as white paper); invert when
    the background, judged from the border pixels, is lighter than the ink;
    stretch so that paper is 0 and the darkest stroke is 1; crop to the ink's
    bounding box; widen strokes much thinner than MNIST's (a fine pen on a
    large canvas) to about a tenth of the digit's size; scale to fit a 20x20
    box keeping the aspect ratio (Lanczos anti-aliasing); paste into a 28x28
    field with the centre of mass at (14, 14).

    Parameters
    ----------
    image : str, os.PathLike, file object, PIL.Image.Image or ndarray
        A PNG/JPEG/... file of any size (dark ink on light paper or light ink on
        a dark background, RGB, RGBA or grey), or an array of shape (H, W),
        (H, W, 3) or (H, W, 4) with values in [0, 1] or [0, 255].

    Returns
    -------
    ndarray of shape (1, 28, 28), float32
        Ink intensity in [0, 1] (white digit on black, like ``load_mnist(normalize=True)``).
        Reshape to (1, 784) for an MLP or (1, 1, 28, 28) for a CNN.

    Raises
    ------
    ImageInputError
        The file cannot be read, or the image holds no visible digit.
    """
    name = _describe(image)
    if isinstance(image, np.ndarray):
        gray = _array_to_gray(image)
    else:
        try:
            from PIL import Image
        except ImportError as exc:  # pragma: no cover - Pillow is a dependency
            raise ImageInputError("reading images needs Pillow (pip install pillow)") from exc
        pil = image if isinstance(image, Image.Image) else _open_image(image)
        gray = _to_gray(pil)
    if gray.size == 0 or min(gray.shape) < 1:
        raise ImageInputError(f"{name}: the image is empty ({gray.shape[1]}x{gray.shape[0]} pixels)")
    if not np.all(np.isfinite(gray)):
        raise ImageInputError(f"{name}: the image holds NaN or infinite values")

    background = _border_level(gray)
    ink = 1.0 - gray if background > 0.5 else gray
    paper = 1.0 - background if background > 0.5 else background
    strongest = float(ink.max())
    if strongest - paper < _MIN_CONTRAST:
        raise ImageInputError(
            f"{name}: no digit found: the image is blank "
            "(draw the digit darker than the paper, or lighter on a dark background)"
        )
    ink = np.clip((ink - paper) / (strongest - paper), 0.0, 1.0)

    rows = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=0))
    patch = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    patch = np.where(patch > _INK_THRESHOLD / 2, patch, 0.0)  # drop faint paper texture
    patch = _widen_thin_strokes(patch)

    height, width = patch.shape
    scale = DIGIT_BOX / max(height, width)
    new_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    patch = _resize(patch, new_size)
    total = patch.sum()
    if total <= 0:  # a speck that vanished in resampling
        raise ImageInputError(f"{name}: no digit found: the ink is too small or too faint")

    # Translate so the centre of mass lands on the field's centre, as MNIST did.
    ys, xs = np.indices(patch.shape)
    centre_y, centre_x = (ys * patch).sum() / total, (xs * patch).sum() / total
    top = int(np.clip(round(FIELD / 2 - centre_y), 0, FIELD - patch.shape[0]))
    left = int(np.clip(round(FIELD / 2 - centre_x), 0, FIELD - patch.shape[1]))
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top:top + patch.shape[0], left:left + patch.shape[1]] = patch
    return field[np.newaxis]


def prepare_digits(images) -> np.ndarray:
    """Prepare several pictures; returns an array of shape (N, 1, 28, 28), float32."""
    prepared = [prepare_digit(image) for image in images]
    if not prepared:
        raise ImageInputError("no images given")
    return np.stack(prepared)
