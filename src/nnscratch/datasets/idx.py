"""The IDX file format of MNIST and its relatives, read and written in full.

An IDX file is a tiny header followed by the raw elements, all big-endian::

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16,
                0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions, ndim >= 1
    4 * ndim    the size of each dimension, unsigned 32-bit
    ...         prod(dims) elements in C order

``read_idx`` accepts the file plain or gzip-compressed (recognised by the gzip
magic bytes, whatever the name) and returns an array in native byte order.
Anything malformed raises :class:`~nnscratch.errors.IdxFormatError` naming the
file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from nnscratch.errors import IdxFormatError
from nnscratch.files import write_bytes_atomically

__all__ = ["read_idx", "write_idx", "decode_idx", "encode_idx", "IDX_TYPE_CODES"]

GZIP_MAGIC = b"\x1f\x8b"

# type code -> big-endian element type of the payload
IDX_TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_TYPE_CODES.items()}


def _describe_codes() -> str:
    return ", ".join(f"0x{code:02X} {dt.newbyteorder('=').name}" for code, dt in IDX_TYPE_CODES.items())


def decode_idx(data: bytes | bytearray | memoryview, *, source: str = "<bytes>",
               expected_ndim: int | None = None) -> np.ndarray:
    """Decode the bytes of an uncompressed IDX file into an array.

    Parameters
    ----------
    data : bytes-like
        The whole file content (already decompressed).
    source : str
        Name used in error messages (usually the file path).
    expected_ndim : int, optional
        If given, the file must have exactly this many dimensions.

    Returns
    -------
    ndarray of shape ``dims`` and the file's element type, native byte order,
    writable and owning its memory.

    Raises
    ------
    IdxFormatError
        For an empty input, a bad magic number, an unknown type code, zero or
        unexpected dimensions, a header shorter than its dimensions need, or a
        payload shorter or longer than the header says.
    """
    data = memoryview(data).cast("B")
    size = len(data)
    if size == 0:
        raise IdxFormatError(f"{source}: empty file, not an IDX file")
    if size < 4:
        raise IdxFormatError(f"{source}: only {size} byte(s), shorter than the 4-byte IDX magic number")
    if data[0] != 0 or data[1] != 0:
        raise IdxFormatError(
            f"{source}: bad magic number: the first two bytes must be 0x00 0x00, "
            f"got 0x{data[0]:02X} 0x{data[1]:02X} (is this an IDX file?)")
    code, ndim = data[2], data[3]
    dtype = IDX_TYPE_CODES.get(code)
    if dtype is None:
        raise IdxFormatError(
            f"{source}: unknown element type code 0x{code:02X} in byte 2; known codes: {_describe_codes()}")
    if ndim == 0:
        raise IdxFormatError(f"{source}: the header declares 0 dimensions (byte 3); an IDX file needs at least 1")
    if expected_ndim is not None and ndim != expected_ndim:
        raise IdxFormatError(f"{source}: expected {expected_ndim} dimension(s), the header declares {ndim}")
    header_size = 4 + 4 * ndim
    if size < header_size:
        raise IdxFormatError(
            f"{source}: header truncated: {ndim} dimension(s) need {header_size} header bytes, "
            f"the file has {size}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected_payload = math.prod(dims) * dtype.itemsize
    payload = size - header_size
    if payload != expected_payload:
        problem = "truncated" if payload < expected_payload else "has trailing bytes"
        raise IdxFormatError(
            f"{source}: payload {problem}: shape {dims} of {dtype.newbyteorder('=').name} needs "
            f"{expected_payload} bytes after the {header_size}-byte header, found {payload}")
    flat = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=header_size)
    # astype always copies here: native order, writable, independent of `data`.
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def _decompress(raw: bytes, source: str) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise IdxFormatError(f"{source}: broken or truncated gzip stream ({exc})") from None


def read_idx(path: str | os.PathLike, *, expected_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, into a NumPy array.

    Parameters
    ----------
    path : str or path-like
        The file. It is decompressed when it starts with the gzip magic bytes
        ``1f 8b``, whatever its name.
    expected_ndim : int, optional
        Fail unless the file has this many dimensions (3 for MNIST images,
        1 for labels).

    Returns
    -------
    ndarray
        Shape as in the header (e.g. ``(60000, 28, 28)`` uint8 for MNIST
        training images), native byte order, writable.

    Raises
    ------
    IdxFormatError
        The file is not a well-formed IDX file (the message says why).
    FileNotFoundError, PermissionError
        The file cannot be opened.

    Examples
    --------
    >>> images = read_idx("train-images-idx3-ubyte.gz")   # doctest: +SKIP
    >>> images.shape, images.dtype                        # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == GZIP_MAGIC:
        raw = _decompress(raw, path)
        source = f"{path} (after gunzip)"
    else:
        source = path
    return decode_idx(raw, source=source, expected_ndim=expected_ndim)


def encode_idx(array) -> bytes:
    """Encode an array as the bytes of an uncompressed IDX file.

    Parameters
    ----------
    array : array_like
        Of dtype uint8, int8, int16, int32, float32 or float64 and 1 to 255
        dimensions, each shorter than 2**32.

    Raises
    ------
    IdxFormatError
        The dtype or shape cannot be stored in IDX.
    """
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise IdxFormatError(
            f"array: dtype {array.dtype} cannot be stored in an IDX file; use one of {_describe_codes()}")
    if not 1 <= array.ndim <= 255:
        raise IdxFormatError(f"array: IDX stores 1 to 255 dimensions, the array has {array.ndim}")
    if any(d >= 2**32 for d in array.shape):
        raise IdxFormatError(f"array: shape {array.shape} has a dimension of 2**32 or more, beyond IDX's 32-bit sizes")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=IDX_TYPE_CODES[code]).tobytes()
    return header + payload


def write_idx(path: str | os.PathLike, array) -> Path:
    """Write an array as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The file appears atomically: it is written to a temporary file in the
    same directory and renamed over ``path``, so a reader never sees half a file.

    Parameters
    ----------
    path : str or path-like
        Destination; ``.gz`` at the end selects gzip compression.
    array : array_like
        uint8, int8, int16, int32, float32 or float64, 1 to 255 dimensions.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    IdxFormatError
        The array's dtype or shape cannot be stored in IDX.
    """
    path = Path(path)
    content = encode_idx(array)
    if path.name.endswith(".gz"):
        # mtime=0 keeps the output identical for identical arrays.
        content = gzip.compress(content, compresslevel=6, mtime=0)
    write_bytes_atomically(path, content)
    return path
