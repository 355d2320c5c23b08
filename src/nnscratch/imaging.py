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
import stat
import threading
from dataclasses import dataclass

import numpy as np

from nnscratch.errors import ImageInputError

__all__ = ["prepare_digit", "prepare_digits", "prepare_digit_stages", "DigitStages", "DIGIT_BOX", "FIELD",
           "MAX_PIXELS", "MAX_SIDE_PIXELS", "MAX_FILE_BYTES"]

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
# Paper whose edges differ by more than this (median of each side) is unevenly lit.
_UNEVEN_PAPER = 0.06
# A shadow varies slowly: a map of the paper this many pixels a side is fine enough.
_PAPER_MAP_SIDE = 64
# A photo of many megapixels holds far more detail than a 20x20 digit needs: larger
# pictures are first averaged in blocks down to about this side (time and memory).
_MAX_SIDE = 1000
# Pictures are refused above this many pixels (read from the header, before decoding)
# or this many bytes on disk: a 100-megapixel page is decoded in about a second,
# reduced on the way; anything larger is not a picture of a digit.
MAX_PIXELS = 150_000_000
MAX_FILE_BYTES = 200_000_000
# Pillow keeps a pointer for every row: a 1 x 149,000,000 strip took 1.3 GB and 4.6 s to
# be found blank. No picture of a digit is longer than this a side.
MAX_SIDE_PIXELS = 100_000
# Large pictures are reduced in stripes of about this many pixels: Pillow reduces RGBA
# and LA through a premultiplied copy of the whole picture (and 16-bit ones through a
# 32-bit copy), which doubled or tripled the memory of a 144-megapixel page.
_STRIPE_PIXELS = 4_000_000


@dataclass
class DigitStages:
    """The steps of :func:`prepare_digit`, to show what the network is given.

    Attributes
    ----------
    crop : ndarray of shape (h, w), float32, or None
        The ink cut out at the picture's resolution (after large pictures are
        reduced to about 1000 pixels a side), ink 1 on 0.
    fitted : ndarray of shape (h', w'), float32, or None
        The crop (thin strokes widened) scaled to fit the 20x20 box.
    field : ndarray of shape (28, 28), float32, or None
        What the network sees: ``prepare_digit(image)[0]``.
    blank : bool
        True when the picture holds no digit; then the arrays are None.
    note : str or None
        When blank, what the picture holds (e.g. "the image is blank (all white...)").
    """

    crop: np.ndarray | None
    fitted: np.ndarray | None
    field: np.ndarray | None
    blank: bool
    note: str | None = None


def _describe(image) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return f"<{type(image).__name__}>"


def _check_path(source, name: str) -> None:
    """A path must name a regular file: a FIFO or a device would block or never end."""
    try:
        info = os.stat(source)
    except FileNotFoundError:
        raise ImageInputError(f"{name}: no such image file") from None
    except OSError as exc:
        raise ImageInputError(f"{name}: cannot read image: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageInputError(f"{name}: is a directory, expected an image file (PNG, JPEG...)")
    if not stat.S_ISREG(info.st_mode):
        raise ImageInputError(f"{name}: not a regular file (a pipe, socket or device); "
                              "expected an image file (PNG, JPEG...)")
    if info.st_size > MAX_FILE_BYTES:
        raise ImageInputError(f"{name}: the file is too large for a digit picture "
                              f"({info.st_size / 1e6:.0f} MB; at most {MAX_FILE_BYTES // 10**6} MB)")


_HEADER_LOCK = threading.Lock()


def _open_image(source):
    """Open a path or file object with Pillow; any failure -> ImageInputError.

    The size is read from the header before any pixel is decoded: pictures over
    MAX_PIXELS are refused, and large ones are decoded reduced (JPEG's draft
    mode decodes at 1/2, 1/4 or 1/8 scale directly; other formats are reduced
    by block means in Pillow right after decoding), so that a scanned page is
    read in a fraction of a second and never fills the memory.
    """
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    name = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        _check_path(source, name)
    try:
        # Our own bound below replaces Pillow's decompression-bomb warning, which Pillow
        # gives while reading the header. catch_warnings changes process-wide state: the
        # lock keeps two threads (the drawing page) from restoring each other's filters.
        with _HEADER_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
        # The checks and the decoding run outside the lock.
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageInputError(
                f"{name}: the picture is too large ({width}x{height} pixels; "
                f"at most {MAX_PIXELS // 10**6} megapixels)")
        if width < 1 or height < 1:
            raise ImageInputError(f"{name}: the image is empty ({width}x{height} pixels)")
        if max(width, height) > MAX_SIDE_PIXELS:
            raise ImageInputError(f"{name}: the picture is too long ({width}x{height} pixels; "
                                  f"at most {MAX_SIDE_PIXELS:,} pixels a side)")
        factor = max(width, height) // _MAX_SIDE
        if factor >= 2 and image.format == "JPEG":
            image.draft(image.mode if image.mode in ("L", "RGB") else None,
                        (width // factor, height // factor))
        image.load()
        factor = max(image.size) // _MAX_SIDE
        if factor >= 2:
            image = _reduce(image, factor)
        # Phone photos store their rotation in EXIF rather than in the pixels.
        image = ImageOps.exif_transpose(image)
    except ImageInputError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageInputError(f"{name}: not a readable image (PNG, JPEG, ...)") from exc
    except Image.DecompressionBombError as exc:  # Pillow's own limit, above ours: one line of ours
        raise ImageInputError(f"{name}: the picture is too large (its header declares more than "
                              f"{MAX_PIXELS // 10**6} megapixels)") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise ImageInputError(f"{name}: cannot read image: {_short(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many kinds on a damaged file
        raise ImageInputError(f"{name}: cannot read image ({type(exc).__name__}: {_short(exc, 100)}); "
                              "the file is damaged or not an image") from exc
    return image


def _reduce(image, factor: int):
    """Block means of factor x factor pixels, in Pillow, a stripe of rows at a time.

    Each stripe is a whole number of blocks tall, so the result is the whole picture's
    reduction, without the full-size copies Pillow makes for some modes.
    """
    from PIL import Image

    rows = factor * max(1, _STRIPE_PIXELS // (image.width * factor))
    if image.height <= rows:
        return _reduce_whole(image, factor)
    stripes = [_reduce_whole(image.crop((0, top, image.width, min(top + rows, image.height))), factor)
               for top in range(0, image.height, rows)]
    reduced = Image.new(stripes[0].mode, (stripes[0].width, sum(stripe.height for stripe in stripes)))
    top = 0
    for stripe in stripes:
        reduced.paste(stripe, (0, top))
        top += stripe.height
    return reduced


def _reduce_whole(image, factor: int):
    if image.mode == "P":  # averaging palette indices would be meaningless
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode.startswith("I;16"):
        image = image.convert("I")
    try:
        return image.reduce(factor)
    except ValueError:  # another mode Pillow cannot reduce (e.g. PA, LAB, HSV)
        return image.convert("RGBA").reduce(factor)


def _short(exc, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


# The level of each 8-bit value, and the grey of each neutral (red = green = blue) one as
# ``rgb @ _LUMA`` gives it: looked up, these give the float path's values exactly, at a
# fraction of the cost of converting the whole picture to floats.
_LUMA = np.array([0.299, 0.587, 0.114])
_LEVELS = np.arange(256) / 255.0
_NEUTRAL_GRAY = np.repeat(_LEVELS[:, np.newaxis], 3, axis=1) @ _LUMA


def _to_gray(image):
    """A Pillow image -> (grey, alpha): float64 grey levels in [0, 1] with transparency
    shown as white paper, and the alpha channel in [0, 1] (None when opaque)."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"))
        red = rgba[..., 0]
        if np.array_equal(red, rgba[..., 1]) and np.array_equal(red, rgba[..., 2]):  # no colour
            gray = _NEUTRAL_GRAY[red]
        else:
            gray = _LEVELS[rgba][..., :3] @ _LUMA
        opacity = rgba[..., 3]
        if opacity.min() == 255:  # opaque (a drawing canvas): compositing on white changes nothing
            return gray, None
        alpha = _LEVELS[opacity]
        # Transparent pixels are paper: composite on white.
        return gray * alpha + (1.0 - alpha), alpha
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        gray = np.asarray(image, dtype=np.float64)
        top = gray.max() if gray.size else 0
        # An infinite or NaN pixel is refused by the caller; dividing by it would only warn.
        return (gray / top if np.isfinite(top) and top > 1 else gray), None
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0, None


def _array_to_gray(array: np.ndarray):
    """An array -> (grey, alpha) as :func:`_to_gray`."""
    a = np.asarray(array)
    if a.dtype.kind not in "biuf":
        raise ImageInputError(f"image array must be numeric, got dtype {a.dtype}")
    if a.size > MAX_PIXELS * 4:
        raise ImageInputError(f"image array is too large ({a.size} values)")
    a = np.squeeze(a.astype(np.float64))
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        scale = 255.0 if a.size and np.nanmax(a) > 1 else 1.0
        rgb = a[..., :3] / scale
        gray = rgb @ _LUMA  # ITU-R 601, as Pillow's "L"
        if a.shape[-1] == 4:
            alpha = a[..., 3] / scale
            # Transparent pixels are paper: composite on white.
            return gray * alpha + (1.0 - alpha), alpha
        return gray, None
    if a.ndim != 2:
        raise ImageInputError(
            f"image array must have shape (H, W), (H, W, 3) or (H, W, 4), got {np.shape(array)}"
        )
    return (a / 255.0 if a.size and np.nanmax(a) > 1 else a), None


def _blank_note(gray: np.ndarray, alpha) -> str:
    """Say what a picture without a digit holds."""
    if alpha is not None:
        opaque = alpha > 0.1
        if not opaque.any():
            return "no digit found: the picture is fully transparent (nothing is drawn)"
        if opaque.all() and not (alpha < 0.9).any():
            return _blank_note(gray, None)
        # Strokes drawn in white (or a very light colour) on a transparent background:
        # transparency counts as white paper, so the strokes vanish on it.
        return ("no digit found: the picture holds only white or very light strokes on a transparent "
                "background, which count as white paper; draw in a dark colour, or export the "
                "picture with its background")
    level = float(np.median(gray))
    shade = "white" if level > 0.8 else "black" if level < 0.2 else "grey"
    return (f"no digit found: the image is blank (all {shade}; draw the digit darker than "
            "the paper, or lighter on a dark background)")


def _shrink_large(gray: np.ndarray) -> np.ndarray:
    """Block means bringing the longer side to at most _MAX_SIDE (a few edge pixels may go)."""
    factor = -(-max(gray.shape) // _MAX_SIDE)
    if factor <= 1:
        return gray
    height, width = gray.shape[0] // factor, gray.shape[1] // factor
    if min(height, width) < 1:  # a thin strip: shrinking would leave nothing
        return gray
    blocks = gray[:height * factor, :width * factor].reshape(height, factor, width, factor)
    return blocks.mean(axis=(1, 3))


def _border_sides(gray: np.ndarray) -> list[np.ndarray]:
    """The pixels along the top, bottom, left and right edges (5% of the side deep)."""
    ring = max(1, min(gray.shape) // 20)
    return [gray[:ring].ravel(), gray[-ring:].ravel(), gray[:, :ring].ravel(), gray[:, -ring:].ravel()]


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate(_border_sides(gray))


def _square_filter(image: np.ndarray, size: int, reduce, *, grow: bool = False) -> np.ndarray:
    """``reduce`` (np.max: dilation, np.min: erosion, np.mean) over every size x size square.

    With ``grow`` the result is size - 1 larger on each axis (squares overlapping
    the edge count the outside as 0); otherwise it keeps the shape, edge pixels
    repeated outwards. One axis at a time, by shifted slices (the mean sums them
    in order, as np.mean over a window of a few values does).
    """
    combine = {np.max: np.maximum, np.min: np.minimum, np.mean: np.add}[reduce]
    for axis in (0, 1):
        padding = [(0, 0), (0, 0)]
        padding[axis] = (size - 1, size - 1) if grow else (size // 2, size - 1 - size // 2)
        padded = np.pad(image, padding, mode="constant" if grow else "edge")
        length = padded.shape[axis] - size + 1
        window = [slice(None), slice(None)]
        window[axis] = slice(0, length)
        image = padded[tuple(window)].copy()
        for shift in range(1, size):
            window[axis] = slice(shift, shift + length)
            combine(image, padded[tuple(window)], out=image)
        if reduce is np.mean:
            image /= size
    return image


def _paper_level(ink: np.ndarray):
    """The paper's level under every pixel of ``ink`` (ink bright, paper dark).

    Evenly lit paper has one level, read off the border. A shadow or a lamp
    makes it vary across the picture: then a median over squares a third of
    the picture wide, where strokes are the minority, follows the paper and
    drops the strokes. The border is extended by odd reflection, which carries
    a shadow's gradient on past the edge instead of flattening it. This runs on
    a copy shrunk to at most _PAPER_MAP_SIDE pixels a side, to stay cheap.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    # Medians per side: a stroke touching one edge moves none of them, a shadow does.
    side_levels = [np.median(side) for side in _border_sides(ink)]
    if max(side_levels) - min(side_levels) < _UNEVEN_PAPER:
        return float(np.median(_border(ink)))
    height, width = ink.shape
    scale = min(1.0, _PAPER_MAP_SIDE / max(height, width))
    small = _resize(ink, (max(1, round(height * scale)), max(1, round(width * scale))))
    size = max(3, max(small.shape) // 3) | 1
    padded = np.pad(small, size // 2, mode="reflect", reflect_type="odd")
    windows = sliding_window_view(padded, (size, size)).reshape(*small.shape, -1)
    return _resize(np.median(windows, axis=-1), (height, width))


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
    return _square_filter(patch, grow + 1, np.max, grow=True) if grow > 0 else patch


def prepare_digit_stages(image) -> DigitStages:
    """Prepare a picture as :func:`prepare_digit` does, keeping each stage.

    A picture holding no digit is not an error here: the result has
    ``blank=True`` and a ``note`` saying what the picture holds. An unreadable
    file or array still raises :class:`ImageInputError`.
    """
    name = _describe(image)
    if isinstance(image, np.ndarray):
        gray, alpha = _array_to_gray(image)
    else:
        try:
            from PIL import Image
        except ImportError as exc:  # pragma: no cover - Pillow is a dependency
            raise ImageInputError("reading images needs Pillow (pip install pillow)") from exc
        pil = image if isinstance(image, Image.Image) else _open_image(image)
        if pil.width * pil.height > MAX_PIXELS:
            raise ImageInputError(f"{name}: the picture is too large ({pil.width}x{pil.height} pixels; "
                                  f"at most {MAX_PIXELS // 10**6} megapixels)")
        try:
            if max(pil.size) // _MAX_SIDE >= 2:  # reduced in Pillow before any float copy
                pil = _reduce(pil, max(pil.size) // _MAX_SIDE)
            gray, alpha = _to_gray(pil)
        except (ValueError, OSError) as exc:  # e.g. a colour mode Pillow cannot convert to grey
            raise ImageInputError(f"{name}: cannot use this {pil.mode} image: {_short(exc)}") from exc
    if gray.size == 0 or min(gray.shape) < 1:
        raise ImageInputError(f"{name}: the image is empty ({gray.shape[1]}x{gray.shape[0]} pixels)")
    if not np.all(np.isfinite(gray)):
        raise ImageInputError(f"{name}: the image holds NaN or infinite values")
    gray = _shrink_large(gray)

    light_paper = np.median(_border(gray)) > 0.5
    ink = 1.0 - gray if light_paper else gray
    paper = _paper_level(ink)
    ink = ink - paper
    if light_paper:
        # Light falls on ink and paper alike: dividing by the paper's brightness makes
        # a stroke in a shadow as dark as one in full light.
        ink = ink / np.maximum(1.0 - paper, _MIN_CONTRAST)
    strongest = float(ink.max())
    if strongest < _MIN_CONTRAST:
        return DigitStages(None, None, None, True, _blank_note(gray, alpha))
    ink = np.clip(ink / strongest, 0.0, 1.0)

    # Ink must also be ink on average over its 3x3 square: a lone noisy pixel of a
    # photo then no longer stretches the crop, while a 1-pixel line keeps a third
    # of its value.
    is_ink = (ink > _INK_THRESHOLD) & (_square_filter(ink, 3, np.mean) > _INK_THRESHOLD)
    rows = np.flatnonzero(is_ink.any(axis=1))
    cols = np.flatnonzero(is_ink.any(axis=0))
    too_small = "no digit found: the ink is too small or too faint (only specks)"
    if rows.size == 0:  # only specks
        return DigitStages(None, None, None, True, too_small)
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    crop = np.where(crop > _INK_THRESHOLD / 2, crop, 0.0)  # drop faint paper texture
    patch = _widen_thin_strokes(crop)

    height, width = patch.shape
    scale = DIGIT_BOX / max(height, width)
    new_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    patch = _resize(patch, new_size)
    total = patch.sum()
    if total <= 0:  # a speck that vanished in resampling
        return DigitStages(None, None, None, True, too_small)

    # Translate so the centre of mass lands on the field's centre, as MNIST did.
    ys, xs = np.indices(patch.shape)
    centre_y, centre_x = (ys * patch).sum() / total, (xs * patch).sum() / total
    top = int(np.clip(round(FIELD / 2 - centre_y), 0, FIELD - patch.shape[0]))
    left = int(np.clip(round(FIELD / 2 - centre_x), 0, FIELD - patch.shape[1]))
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top:top + patch.shape[0], left:left + patch.shape[1]] = patch
    return DigitStages(crop.astype(np.float32), patch.astype(np.float32), field, False, None)


def prepare_digit(image) -> np.ndarray:
    """Prepare one digit picture the way MNIST digits were prepared.

    Steps: grey levels (transparent pixels count as white paper); invert when
    the background, judged from the border pixels, is lighter than the ink;
    take away the paper (its level is mapped across the picture when a shadow
    or a lamp lights it unevenly); stretch so that paper is 0 and the darkest
    stroke is 1; crop to the ink's bounding box, ignoring lone noisy pixels; widen strokes much thinner than MNIST's (a fine pen on a
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
    stages = prepare_digit_stages(image)
    if stages.blank:
        raise ImageInputError(f"{_describe(image)}: {stages.note}")
    return stages.field[np.newaxis]


def prepare_digits(images) -> np.ndarray:
    """Prepare several pictures; returns an array of shape (N, 1, 28, 28), float32."""
    prepared = [prepare_digit(image) for image in images]
    if not prepared:
        raise ImageInputError("no images given")
    return np.stack(prepared)
