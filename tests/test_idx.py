"""IDX reading and writing: hand-built files, round trips and mangled files."""

import gzip
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnscratch.datasets import read_idx, write_idx
from nnscratch.datasets.idx import decode_idx, encode_idx
from nnscratch.errors import IdxFormatError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (type code, struct format letter, numpy dtype) written down from the IDX spec, not from the code.
SPEC_TYPES = [
    (0x08, "B", np.uint8),
    (0x09, "b", np.int8),
    (0x0B, "h", np.int16),
    (0x0C, "i", np.int32),
    (0x0D, "f", np.float32),
    (0x0E, "d", np.float64),
]


def handmade_idx(code, fmt, dims, values):
    """An IDX file built with struct, independently of nnscratch."""
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, code, len(dims), *dims) + struct.pack(
        f">{len(values)}{fmt}", *values)


def write_bytes(directory, name, content):
    path = Path(directory) / name
    path.write_bytes(content)
    return path


# ---------------------------------------------------------------- hand-built files


@pytest.mark.parametrize("code,fmt,dtype", SPEC_TYPES)
def test_reads_handmade_file_of_every_type(tmp_path, code, fmt, dtype):
    values = [1, 0, 100, 7, 2, 3] if fmt == "B" else [1, -2, 100, 7, -5, 3]
    content = handmade_idx(code, fmt, (2, 3), values)
    for name, data in [("a.idx", content), ("a.idx.gz", gzip.compress(content))]:
        array = read_idx(write_bytes(tmp_path, name, data))
        assert array.dtype == np.dtype(dtype)
        assert array.dtype.isnative
        assert array.shape == (2, 3)
        assert array.ravel().tolist() == values
        assert array.flags.writeable


@pytest.mark.parametrize("code,fmt,dtype", SPEC_TYPES)
def test_writer_produces_the_spec_bytes(tmp_path, code, fmt, dtype):
    values = [3, 1, 4, 1, 5, 9, 2, 6]
    path = write_idx(tmp_path / "x.idx", np.array(values, dtype=dtype).reshape(2, 2, 2))
    assert path.read_bytes() == handmade_idx(code, fmt, (2, 2, 2), values)


def test_gz_suffix_writes_gzip_and_detection_is_by_magic_not_name(tmp_path):
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    gz = write_idx(tmp_path / "a.gz", array)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(gz.read_bytes()) == handmade_idx(0x0C, "i", (3, 4), list(range(12)))
    misnamed_gzip = write_bytes(tmp_path, "plain-name.idx", gz.read_bytes())
    misnamed_plain = write_bytes(tmp_path, "looks-compressed.gz", encode_idx(array))
    np.testing.assert_array_equal(read_idx(misnamed_gzip), array)
    np.testing.assert_array_equal(read_idx(misnamed_plain), array)


def test_zero_sized_dimension_is_valid(tmp_path):
    path = write_bytes(tmp_path, "empty.idx", handmade_idx(0x08, "B", (0, 28, 28), []))
    assert read_idx(path).shape == (0, 28, 28)


def test_write_leaves_no_temporary_files(tmp_path):
    write_idx(tmp_path / "a.idx.gz", np.zeros((4, 4), np.uint8))
    write_idx(tmp_path / "a.idx.gz", np.ones((4, 4), np.uint8))  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.idx.gz"]
    assert read_idx(tmp_path / "a.idx.gz").sum() == 16


@pytest.mark.parametrize("bad", [np.zeros(3, np.int64), np.zeros(3, bool), np.zeros(3, np.uint16),
                                 np.zeros(3, np.float16), np.float32(1.0)])
def test_writer_rejects_what_idx_cannot_hold(tmp_path, bad):
    with pytest.raises(IdxFormatError):
        write_idx(tmp_path / "bad.idx", bad)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- malformed files


MALFORMED = {
    "empty": (b"", "empty"),
    "bad magic": (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x05", "magic"),
    "text file": (b"hello world\n", "magic"),
    "unknown type": (b"\x00\x00\x0A\x01" + struct.pack(">I", 1) + b"\x05", "type code 0x0A"),
    "zero dims": (b"\x00\x00\x08\x00", "0 dimensions"),
    "short header": (b"\x00\x00\x08\x03" + struct.pack(">II", 60000, 28), "header truncated"),
    "short payload": (handmade_idx(0x08, "B", (2, 2), [1, 2, 3, 4])[:-1], "truncated"),
    "long payload": (handmade_idx(0x0B, "h", (2,), [1, 2]) + b"\x00", "trailing"),
    "two bytes": (b"\x00\x00", "shorter than"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_plain_file_names_file_and_problem(tmp_path, case):
    content, words = MALFORMED[case]
    path = write_bytes(tmp_path, "broken.idx", content)
    with pytest.raises(IdxFormatError, match=words) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_expected_ndim_mismatch(tmp_path):
    path = write_idx(tmp_path / "labels.idx", np.arange(5, dtype=np.uint8))
    assert read_idx(path, expected_ndim=1).shape == (5,)
    with pytest.raises(IdxFormatError, match="expected 3 dimension"):
        read_idx(path, expected_ndim=3)


def test_truncated_gzip_stream(tmp_path):
    packed = gzip.compress(handmade_idx(0x08, "B", (100,), list(range(100))))
    path = write_bytes(tmp_path, "cut.gz", packed[: len(packed) // 2])
    with pytest.raises(IdxFormatError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip_crc(tmp_path):
    packed = bytearray(gzip.compress(handmade_idx(0x08, "B", (100,), list(range(100)))))
    packed[-8] ^= 0xFF  # CRC32 field of the trailer
    with pytest.raises(IdxFormatError, match="gzip"):
        read_idx(write_bytes(tmp_path, "crc.gz", bytes(packed)))


def test_gzip_of_a_malformed_idx_reports_idx_problem(tmp_path):
    path = write_bytes(tmp_path, "x.gz", gzip.compress(b"\x00\x00\x08\x02" + struct.pack(">I", 3)))
    with pytest.raises(IdxFormatError, match="header truncated"):
        read_idx(path)


def test_missing_file_is_not_a_format_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


# ---------------------------------------------------------------- properties

idx_dtypes = st.sampled_from([np.dtype(d) for _, _, d in SPEC_TYPES])
idx_arrays = idx_dtypes.flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)))


@SETTINGS
@given(array=idx_arrays, compress=st.booleans())
def test_round_trip_every_dtype_and_rank(array, compress):
    with tempfile.TemporaryDirectory() as directory:
        path = write_idx(Path(directory) / ("a.idx.gz" if compress else "a.idx"), array)
        back = read_idx(path, expected_ndim=array.ndim)
    assert back.dtype == array.dtype and back.dtype.isnative
    assert back.shape == array.shape
    assert back.tobytes() == array.tobytes()  # bitwise, so NaNs and -0.0 count too


@SETTINGS
@given(array=idx_arrays, data=st.data())
def test_any_truncation_is_an_error(array, data):
    content = encode_idx(array)
    cut = data.draw(st.integers(0, len(content) - 1))
    with pytest.raises(IdxFormatError):
        decode_idx(content[:cut])


@SETTINGS
@given(array=idx_arrays, extra=st.binary(min_size=1, max_size=20))
def test_any_appended_bytes_are_an_error(array, extra):
    with pytest.raises(IdxFormatError, match="trailing"):
        decode_idx(encode_idx(array) + extra)


def reads_back_consistently(mangled):
    """Either an IdxFormatError, or an array that re-encodes to exactly the same bytes."""
    try:
        array = decode_idx(mangled)
    except IdxFormatError:
        return
    assert encode_idx(array) == mangled


@SETTINGS
@given(array=idx_arrays, data=st.data())
def test_flipped_header_byte_is_error_or_consistent(array, data):
    content = bytearray(encode_idx(array))
    header_size = 4 + 4 * array.ndim
    position = data.draw(st.integers(0, header_size - 1))
    content[position] = data.draw(st.integers(0, 255).filter(lambda v: v != content[position]))
    if position < 2:
        with pytest.raises(IdxFormatError, match="magic"):
            decode_idx(bytes(content))
    else:
        reads_back_consistently(bytes(content))


@SETTINGS
@given(array=idx_arrays, data=st.data())
def test_mangled_gzip_file_is_error_or_consistent(array, data):
    packed = gzip.compress(encode_idx(array), mtime=0)
    mode = data.draw(st.sampled_from(["truncate", "append", "flip"]))
    if mode == "truncate":
        mangled = packed[: data.draw(st.integers(0, len(packed) - 1))]
    elif mode == "append":
        mangled = packed + data.draw(st.binary(min_size=1, max_size=16))
    else:
        position = data.draw(st.integers(0, len(packed) - 1))
        mangled = bytearray(packed)
        mangled[position] ^= data.draw(st.integers(1, 255))
        mangled = bytes(mangled)
    with tempfile.TemporaryDirectory() as directory:
        path = write_bytes(directory, "m.gz", mangled)
        try:
            array_back = read_idx(path)
        except IdxFormatError as exc:
            assert str(path) in str(exc)
            return
    # Still a valid file (e.g. gzip ignores trailing zero padding, or a flip in
    # the gzip header's mtime): the data must then be what the file encodes.
    if mangled[:2] == b"\x1f\x8b":
        assert encode_idx(array_back) == gzip.decompress(mangled)
    else:
        assert encode_idx(array_back) == mangled
