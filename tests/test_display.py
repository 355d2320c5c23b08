"""Digits as terminal text and as a PNG grid."""

import gzip
import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nnscratch
from nnscratch.datasets import format_digit_halfblocks, format_digit_numbers, format_digit_shades, show_digit
from nnscratch.datasets.display import render_digit
from nnscratch.errors import ConfigError, ShapeError
from nnscratch.plots.digits import save_digit_grid

EMBEDDED = Path(nnscratch.__file__).parent / "datasets" / "data" / "mnist"


@pytest.fixture(scope="module")
def first_train_images():
    """The first training images, decoded with gzip + struct (not with nnscratch)."""
    raw = gzip.decompress((EMBEDDED / "train-images-idx3-ubyte.gz").read_bytes())
    _, _, rows, cols = struct.unpack(">IIII", raw[:16])
    return np.frombuffer(raw[16:16 + 20 * rows * cols], np.uint8).reshape(20, rows, cols)


def test_numbers_grid_of_a_real_digit(first_train_images):
    image = first_train_images[1]  # the "0" the seed prints
    lines = format_digit_numbers(image).splitlines()
    assert len(lines) == 28
    assert all(len(line) == 28 * 4 - 1 for line in lines)  # 28 fields of width 3, single spaces
    grid = [[int(v) for v in line.split()] for line in lines]
    assert grid == image.tolist()
    # right-aligned fields: column c occupies characters 4c .. 4c+2
    row, col = np.argwhere(image == image.max())[0]
    assert lines[row][4 * col: 4 * col + 3] == f"{image.max():>3}"
    assert lines[0][:3] == "  0"


def test_numbers_grid_hand_example():
    assert format_digit_numbers(np.array([[0, 7], [255, 42]], np.uint8)) == "  0   7\n255  42"


def test_every_accepted_form_gives_the_same_text(first_train_images):
    image = first_train_images[0]
    expected = format_digit_numbers(image)
    for form in (image.reshape(784), image.reshape(1, 28, 28), image.astype(np.float32) / 255.0,
                 image.astype(np.float64).reshape(784) / 255.0, image.astype(np.int64)):
        assert format_digit_numbers(form) == expected
        assert format_digit_shades(form) == format_digit_shades(image)


def test_shade_levels_by_hand():
    values = np.array([[0, 51, 52, 128, 200, 255]], np.uint8)
    # value * 5 // 256: 0, 0, 1, 2, 3, 4
    assert format_digit_shades(values, double=False) == "  ░▒▓█"
    assert format_digit_shades(values) == "    ░░▒▒▓▓██"


def test_shades_of_a_real_digit(first_train_images):
    image = first_train_images[0]
    lines = format_digit_shades(image).splitlines()
    assert len(lines) == 28 and all(len(line) == 56 for line in lines)
    ink = np.array([[ch != " " for ch in line[::2]] for line in lines])
    np.testing.assert_array_equal(ink, image >= 52)


def test_halfblocks():
    tiny = np.array([[255, 0, 255, 0], [0, 255, 255, 0]], np.uint8)
    assert format_digit_halfblocks(tiny) == "▀▄█ "
    odd = np.array([[255], [255], [255]], np.uint8)
    assert format_digit_halfblocks(odd) == "█\n▀"
    assert format_digit_halfblocks(np.full((2, 1), 100, np.uint8), threshold=100) == "█"


def test_halfblocks_of_a_real_digit_are_14_rows(first_train_images):
    lines = format_digit_halfblocks(first_train_images[0]).splitlines()
    assert len(lines) == 14 and all(len(line) == 28 for line in lines)
    top_ink = np.array([[ch in "▀█" for ch in line] for line in lines])
    np.testing.assert_array_equal(top_ink, first_train_images[0][0::2] >= 128)


def test_show_digit_prints_with_label(first_train_images):
    out = io.StringIO()
    show_digit(first_train_images[0], "numbers", label=5, file=out)
    text = out.getvalue()
    assert text.endswith("label: 5\n")
    assert text.count("\n") == 29


@pytest.mark.parametrize("bad,words", [
    (np.zeros((28, 28, 3), np.uint8), "shape"),
    (np.zeros(100 - 1, np.uint8), "square"),
    (np.zeros((2, 28, 28), np.uint8), "shape"),
    (np.full((28, 28), 1.5), r"\[0, 1\]"),
    (np.full((28, 28), np.nan), "NaN"),
    (np.full((28, 28), -1), "0..255"),
    (np.full((28, 28), 256), "0..255"),
    (np.full((28, 28), "a"), "dtype"),
    (np.zeros((0, 0)), "empty"),
])
def test_bad_images_raise_shape_error(bad, words):
    with pytest.raises(ShapeError, match=words):
        format_digit_numbers(bad)


def test_unknown_style():
    with pytest.raises(ConfigError, match="style"):
        render_digit(np.zeros((28, 28), np.uint8), "braille")


# ---------------------------------------------------------------- PNG grid


def red_pixels(path):
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).sum())


def test_digit_grid_png(tmp_path, first_train_images):
    labels = np.array([5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5])
    path = save_digit_grid(first_train_images[:12], labels, tmp_path / "out" / "grid.png", ncols=5,
                           title="first digits")
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width > 300 and height > 200 and width > height  # 5 columns, 3 rows
    assert red_pixels(path) == 0


def test_misclassified_digits_are_marked_in_red(tmp_path, first_train_images):
    true = np.array([5, 0, 4, 1])
    right = save_digit_grid(first_train_images[:4], true, tmp_path / "right.png", predicted=true)
    wrong = save_digit_grid(first_train_images[:4].reshape(4, 784) / 255.0, np.eye(10)[true],
                            tmp_path / "wrong.png", predicted=np.eye(10)[[5, 0, 9, 1]])
    assert red_pixels(right) == 0
    assert red_pixels(wrong) > 20


def test_red_captions_sit_over_the_wrong_digits_only(tmp_path, first_train_images):
    # 2 x 2 grid, row by row; only the last digit (bottom right) is misclassified.
    true = np.array([5, 0, 4, 1])
    path = save_digit_grid(first_train_images[:4], true, tmp_path / "grid.png", ncols=2,
                           predicted=np.array([5, 0, 4, 7]))
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
    height, width = red.shape
    rows, cols = np.nonzero(red)
    assert len(rows) > 20
    assert rows.min() >= height // 2 and cols.min() >= width // 2


def test_every_digit_is_drawn_in_its_cell(tmp_path):
    # Digit k is a filled square in cell k; a missing or misplaced digit leaves a cell blank.
    digits = np.zeros((6, 28, 28), np.uint8)
    digits[:, 6:22, 6:22] = 255
    path = save_digit_grid(digits, np.arange(6), tmp_path / "grid.png", ncols=3)
    with Image.open(path) as image:
        gray = np.asarray(image.convert("L")).astype(int)
    height, width = gray.shape
    for row in range(2):
        for col in range(3):
            cell = gray[row * height // 2:(row + 1) * height // 2, col * width // 3:(col + 1) * width // 3]
            assert (cell < 30).mean() > 0.15, (row, col)  # the black square fills a good part of it


def test_digit_grid_of_small_images_and_class_names(tmp_path):
    # 8 x 8 digits (N, 64), fewer images than ncols, names instead of numbers.
    digits = np.zeros((3, 64))
    digits[:, 18:22] = 1.0
    path = save_digit_grid(digits, [0, 1, 2], tmp_path / "grid.png", predicted=[0, 2, 2],
                           class_names=["zero", "one", "two"], title="tiny")
    with Image.open(path) as image:
        image.load()
        width, height = image.size
    assert width > height  # one row of three
    assert red_pixels(path) > 20


@pytest.mark.parametrize("kwargs,error", [
    ({"labels": np.arange(3)}, ShapeError),
    ({"predicted": np.arange(5)}, ShapeError),
    ({"ncols": 0}, ConfigError),
    ({"images": np.zeros((0, 784), np.uint8), "labels": np.arange(0)}, ShapeError),
])
def test_digit_grid_validates(tmp_path, first_train_images, kwargs, error):
    arguments = {"images": first_train_images[:4], "labels": np.arange(4)} | kwargs
    images, labels = arguments.pop("images"), arguments.pop("labels")
    with pytest.raises(error):
        save_digit_grid(images, labels, tmp_path / "x.png", **arguments)
    assert not (tmp_path / "x.png").exists()
