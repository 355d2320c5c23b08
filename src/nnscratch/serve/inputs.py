"""Request bodies -> the picture of a digit, checked before anything large is allocated.

Three kinds of body are accepted (the HTTP API's ``POST /api/predict``):

* ``image/png`` or ``image/jpeg``: the picture itself (a canvas export, an
  RGBA PNG with a transparent background included);
* ``application/json`` ``{"image": "data:image/png;base64,..."}``;
* ``application/json`` ``{"pixels": [[28 floats in 0..1] x 28]}``: the field a
  model sees, white digit on black as in MNIST.

Anything else is a :class:`BadInput` carrying the HTTP status and a message
that says what is wrong. Pictures are opened lazily and their size checked
(pixel count and shape) before a single pixel is decoded, so a decompression
bomb costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BadInput", "Drawing", "parse_body", "decode_picture", "MAX_BODY_BYTES", "MAX_PIXELS",
           "MAX_SIDE", "FIELD"]

FIELD = 28
# A 1000x1000 canvas PNG of a scribble is tens of kilobytes; a photo a few megabytes.
MAX_BODY_BYTES = 8 * 1024 * 1024
# Pixels of a picture (checked from its header, before decoding): a 12-megapixel photo passes.
MAX_PIXELS = 16_000_000
# Longest side and the most elongated shape accepted.
MAX_SIDE = 8192
MAX_ASPECT = 20
ACCEPTED_FORMATS = ("PNG", "JPEG")
# JSON values (counted by their separators, before parsing) a body may hold: 28x28 pixels are 841.
# 8 MB of "[]," parsed is 2.7 million lists, 214 MB of Python objects for one request.
MAX_JSON_VALUES = 4096
IMAGE_TYPES = ("image/png", "image/jpeg")
JSON_TYPE = "application/json"


class BadInput(Exception):
    """A request the server cannot use: ``status`` (4xx) and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Drawing:
    """What a body held: a picture (a file object of PNG or JPEG bytes), or a ready 28x28 field."""

    image: object | None = None
    field: np.ndarray | None = None
    pixels: int = 0   # width x height of the picture, from its header (decoding costs about 7 bytes each)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _refuse_constant(name: str):
    raise BadInput(422, f"JSON holds {name}, which is not a number this API accepts (finite numbers only)")


def parse_json(body: bytes) -> object:
    """JSON text -> Python values; NaN and Infinity (which Python's json allows) refused, and
    so is a body of more than MAX_JSON_VALUES values (before it is parsed)."""
    values = body.count(b",") + body.count(b"[") + body.count(b"{")
    if values > MAX_JSON_VALUES:
        raise BadInput(413, f"the JSON body holds about {values:,} values; at most {MAX_JSON_VALUES:,} are "
                            "accepted (28x28 pixels are 841)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(400, "the JSON body is not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except BadInput:
        raise
    except (ValueError, RecursionError) as exc:
        raise BadInput(400, f"the body is not valid JSON: {exc}") from None


def decode_picture(data: bytes) -> tuple[io.BytesIO, int]:
    """PNG or JPEG bytes, checked from their header (format, size, shape) -> (a file object to prepare,
    its number of pixels)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadInput(400, "the picture is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise BadInput(415, "the body is not a PNG or JPEG picture") from None
    except Image.DecompressionBombError as exc:
        raise BadInput(413, f"the picture has too many pixels ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(400, f"the picture cannot be read: {exc}") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise BadInput(400, f"the picture is empty ({width}x{height} pixels)")
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise BadInput(413, f"the picture is {width}x{height} pixels; at most {MAX_PIXELS:,} pixels "
                            f"and {MAX_SIDE} a side are accepted")
    if max(width, height) > MAX_ASPECT * min(width, height) and max(width, height) > 64:
        raise BadInput(422, f"the picture is {width}x{height} pixels, too elongated to hold a digit")
    image.close()
    # The pixels are decoded by nnscratch.imaging, as for `nnscratch predict`: large
    # pictures decoded reduced, EXIF rotation applied, the same answer for the same file.
    return io.BytesIO(data), width * height


def _data_url(value) -> bytes:
    if not isinstance(value, str):
        raise BadInput(422, '"image" must be a string holding a data URL: data:image/png;base64,... (or image/jpeg)')
    head, comma, payload = value.partition(",")
    head = head.strip().lower()
    if not comma or not head.startswith("data:") or not head.endswith(";base64"):
        raise BadInput(422, '"image" must be a data URL: data:image/png;base64,... (or image/jpeg)')
    kind = head[len("data:"):-len(";base64")]
    if kind not in IMAGE_TYPES:
        raise BadInput(415, f'"image" is a data URL of type {kind or "(none)"!r}; '
                            "image/png and image/jpeg are accepted")
    try:
        return base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(422, '"image" holds invalid base64 after "base64,"') from None


def _pixels(value) -> np.ndarray:
    rule = f'"pixels" must be {FIELD} rows of {FIELD} numbers in 0..1 (white digit on black, as MNIST)'
    if not isinstance(value, list) or len(value) != FIELD:
        got = f"{len(value)} rows" if isinstance(value, list) else type(value).__name__
        raise BadInput(422, f"{rule}; got {got}")
    for i, row in enumerate(value):
        if not isinstance(row, list) or len(row) != FIELD:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise BadInput(422, f"{rule}; row {i} has {got}")
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise BadInput(422, f"{rule}; pixels[{i}][{j}] is {type(v).__name__}")
            if not math.isfinite(v) or not 0.0 <= v <= 1.0:
                raise BadInput(422, f"{rule}; pixels[{i}][{j}] is {v!r}")
    return np.asarray(value, dtype=np.float32)


def parse_body(content_type: str | None, body: bytes) -> Drawing:
    """A request's media type and bytes -> a :class:`Drawing`, else :class:`BadInput`."""
    kind = media_type(content_type)
    if kind in IMAGE_TYPES:
        image, pixels = decode_picture(body)
        return Drawing(image=image, pixels=pixels)
    if kind != JSON_TYPE and not kind.endswith("+json"):
        raise BadInput(415, f"content type {kind or '(none)'!r} is not accepted; send image/png, "
                            'image/jpeg, or application/json with {"image": data URL} or {"pixels": 28x28}')
    document = parse_json(body)
    if not isinstance(document, dict):
        raise BadInput(422, 'the JSON body must be an object: {"image": "data:image/png;base64,..."} '
                            'or {"pixels": [[...28 rows of 28 numbers...]]}')
    given = [key for key in ("image", "pixels") if key in document]
    if len(given) != 1:
        raise BadInput(422, 'the JSON object must have exactly one of "image" (a data URL) and "pixels" '
                            f"(28x28 numbers); it has {sorted(document) or 'no keys'}")
    if given[0] == "image":
        image, pixels = decode_picture(_data_url(document["image"]))
        return Drawing(image=image, pixels=pixels)
    return Drawing(field=_pixels(document["pixels"]))
