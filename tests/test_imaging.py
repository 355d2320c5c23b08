"""prepare_digit on real image files drawn with Pillow and on real MNIST digits."""

import gzip
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageDraw, ImageFilter

from nnscratch.errors import ImageInputError
from nnscratch.imaging import prepare_digit, prepare_digits


def draw_seven(size=(280, 280), *, box=(0.25, 0.2, 0.75, 0.8), ink=0, paper=255,
               mode="L", width_frac=0.1):
    """A hand-drawn-looking 7 inside the fractional box (left, top, right, bottom)."""
    w, h = size
    image = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    stroke = max(1, int(width_frac * (bottom - top)))  # pen width in proportion to the digit
    draw.line([(left, top), (right, top), (left + 0.35 * (right - left), bottom)],
              fill=ink, width=stroke, joint="curve")
    return image


def centre_of_mass(field):
    ys, xs = np.indices(field.shape)
    total = field.sum()
    return (ys * field).sum() / total, (xs * field).sum() / total


def ink_box(field):
    rows = np.flatnonzero((field > 0).any(axis=1))
    cols = np.flatnonzero((field > 0).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def check_mnist_like(out):
    assert out.shape == (1, 28, 28)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() >= 0.6  # the stroke's core is (nearly) full ink
    field = out[0].astype(np.float64)
    cy, cx = centre_of_mass(field)
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75, (cy, cx)
    height, width = ink_box(field)
    assert height <= 20 and width <= 20
    assert max(height, width) >= 18, (height, width)  # scaled to fill the 20x20 box
    # Background really is black: the corners hold no ink.
    assert field[:3, :3].max() == 0 and field[-3:, -3:].max() == 0
    return field


@pytest.mark.parametrize(
    "case",
    [
        dict(size=(280, 280)),                                   # drawing-canvas size
        dict(size=(40, 30)),                                     # tiny
        dict(size=(1200, 900), box=(0.05, 0.05, 0.3, 0.4)),      # large, off-centre
        dict(size=(300, 200), box=(0.6, 0.5, 0.95, 0.95)),       # off-centre bottom right
        dict(size=(280, 280), ink=255, paper=0),                 # light on dark
        dict(size=(280, 280), ink=30, paper=200),                # grey paper, dark grey ink
    ],
    ids=["canvas", "tiny", "large-off-centre", "bottom-right", "light-on-dark", "grey-paper"],
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_png_and_jpeg_files_become_mnist_like(tmp_path, case, fmt):
    path = tmp_path / f"seven.{fmt.lower()}"
    draw_seven(**case).save(path, format=fmt)
    check_mnist_like(prepare_digit(path))


def test_dark_on_light_and_light_on_dark_give_the_same_digit(tmp_path):
    dark = tmp_path / "dark.png"
    light = tmp_path / "light.png"
    draw_seven(ink=0, paper=255).save(dark)
    draw_seven(ink=255, paper=0).save(light)
    np.testing.assert_allclose(prepare_digit(dark), prepare_digit(light), atol=1e-6)


def test_same_digit_at_any_size_and_place_gives_nearly_the_same_input(tmp_path):
    small = tmp_path / "small.png"
    big = tmp_path / "big.png"
    draw_seven(size=(100, 100), box=(0.3, 0.2, 0.7, 0.8)).save(small)
    draw_seven(size=(1000, 1000), box=(0.05, 0.55, 0.25, 0.85)).save(big)
    a, b = prepare_digit(small)[0], prepare_digit(big)[0]
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.85


def test_a_fine_pen_on_a_large_canvas_gets_mnist_thick_strokes(tmp_path):
    # A 5-pixel pen on a 1000x1000 canvas: scaled down as is, the strokes would
    # become a faint hairline a tenth of a pixel wide.
    thin = tmp_path / "thin.png"
    draw_seven(size=(1000, 1000), width_frac=0.008).save(thin)
    field = check_mnist_like(prepare_digit(thin))
    ink_share = (field > 0.5).mean()
    # MNIST digits cover 10 to 20 percent of the field with strokes 2-3 pixels wide.
    assert 0.05 < ink_share < 0.25, ink_share
    thick = tmp_path / "thick.png"
    draw_seven(size=(1000, 1000)).save(thick)
    assert np.corrcoef(field.ravel(), prepare_digit(thick)[0].ravel())[0, 1] > 0.8


def photo_of_a_seven(path, shadow_paper, seed=0):
    """A phone photo, more or less: paper from 230 down to ``shadow_paper`` across a
    shadow, a slightly blurred pen stroke, sensor noise, JPEG."""
    size = 600
    ys, xs = np.mgrid[0:size, 0:size]
    paper = 230 - (230 - shadow_paper) * (xs + ys) / (2 * size)
    stroke = Image.new("L", (size, size), 0)
    ImageDraw.Draw(stroke).line([(220, 150), (390, 150), (285, 470)], fill=255, width=30, joint="curve")
    ink = np.asarray(stroke.filter(ImageFilter.GaussianBlur(2)), dtype=np.float64) / 255
    noise = np.random.default_rng(seed).normal(0, 5, paper.shape)
    pixels = np.clip(paper * (1 - ink) + 50 * ink + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=75)
    return path


@pytest.mark.parametrize("shadow_paper", [230, 170, 120], ids=["even-light", "mild-shadow", "deep-shadow"])
def test_photo_with_noise_and_a_shadow_is_cropped_to_the_digit(tmp_path, shadow_paper):
    # Lone noisy pixels and shadowed paper used to count as ink: the crop took in the
    # whole photo and the digit ended up a fraction of the 20x20 box.
    field = check_mnist_like(prepare_digit(photo_of_a_seven(tmp_path / "photo.jpg", shadow_paper)))
    clean = tmp_path / "clean.png"
    draw_seven(size=(600, 600), box=(0.37, 0.25, 0.65, 0.78)).save(clean)
    assert np.corrcoef(field.ravel(), prepare_digit(clean)[0].ravel())[0, 1] > 0.7


def test_a_photo_of_many_megapixels_reads_like_a_small_one(tmp_path):
    # Large pictures are block-averaged down first; the result must not change.
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    draw_seven(size=(3000, 2400)).save(big)
    draw_seven(size=(750, 600)).save(small)
    field = check_mnist_like(prepare_digit(big))
    assert np.corrcoef(field.ravel(), prepare_digit(small)[0].ravel())[0, 1] > 0.95


def test_ink_touching_an_edge_is_not_taken_for_a_shadow(tmp_path):
    path = tmp_path / "edge.png"
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(150, 0), (279, 0), (200, 200)], fill=0, width=18)
    image.save(path)
    field = check_mnist_like(prepare_digit(path))
    assert field[:8].sum() > 0.15 * field.sum()  # the 7's bar is still there


def test_rgba_with_transparent_background_is_composited_on_white(tmp_path):
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # transparent *black* paper
    draw = ImageDraw.Draw(image)
    draw.line([(60, 40), (140, 40), (90, 170)], fill=(20, 20, 200, 255), width=14)
    path = tmp_path / "rgba.png"
    image.save(path)
    field = check_mnist_like(prepare_digit(path))
    # Had the transparent black been taken as paper, the whole field would be ink.
    assert (field > 0.5).mean() < 0.3


def test_pil_image_and_array_inputs_match_the_file(tmp_path):
    image = draw_seven()
    path = tmp_path / "seven.png"
    image.save(path)
    from_file = prepare_digit(path)
    np.testing.assert_allclose(prepare_digit(image), from_file, atol=1e-6)
    np.testing.assert_allclose(prepare_digit(np.asarray(image)), from_file, atol=1e-6)
    rgb = np.repeat(np.asarray(image)[:, :, None], 3, axis=2)
    np.testing.assert_allclose(prepare_digit(rgb), from_file, atol=1e-5)


def _mnist_test_digits(count):
    path = resources.files("nnscratch.datasets") / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
    with resources.as_file(path) as real, gzip.open(real) as f:
        raw = f.read(16 + count * 784)
    return np.frombuffer(raw, np.uint8, offset=16).reshape(count, 28, 28)


def test_mnist_digit_upscaled_4x_comes_back_close_to_the_original(tmp_path):
    digits = _mnist_test_digits(40)
    for i, digit in enumerate(digits):
        # As a user would hand it over: 112x112, black ink on white paper.
        path = tmp_path / f"mnist{i}.png"
        Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.BICUBIC).save(path)
        out = prepare_digit(path)[0].astype(np.float64)
        original = digit / 255.0
        # The centring is integer-pixel, as in MNIST: allow a one-pixel shift.
        best = max(
            np.corrcoef(np.roll(out, (dy, dx), axis=(0, 1)).ravel(), original.ravel())[0, 1]
            for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        )
        assert best > 0.9, (i, best)
        assert abs(out.sum() - original.sum()) / original.sum() < 0.25


def test_prepare_digits_stacks():
    batch = prepare_digits([draw_seven(), draw_seven(ink=255, paper=0)])
    assert batch.shape == (2, 1, 28, 28) and batch.dtype == np.float32


@pytest.mark.parametrize("paper", [0, 255, 128])
def test_blank_image_is_refused(tmp_path, paper):
    path = tmp_path / "blank.png"
    Image.new("L", (100, 100), paper).save(path)
    with pytest.raises(ImageInputError, match="blank"):
        prepare_digit(path)


def test_unreadable_files_are_refused_with_the_file_name(tmp_path):
    garbage = tmp_path / "notes.png"
    garbage.write_bytes(b"this is not an image at all")
    with pytest.raises(ImageInputError, match="notes.png"):
        prepare_digit(garbage)
    truncated = tmp_path / "cut.png"
    draw_seven().save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ImageInputError, match="cut.png"):
        prepare_digit(truncated)
    with pytest.raises(ImageInputError, match="no such image"):
        prepare_digit(tmp_path / "missing.png")
    with pytest.raises(ImageInputError, match="directory"):
        prepare_digit(tmp_path)


def test_bad_arrays_are_refused():
    with pytest.raises(ImageInputError, match="shape"):
        prepare_digit(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ImageInputError, match="dtype"):
        prepare_digit(np.array([["a"]]))
    with pytest.raises(ImageInputError, match="no images"):
        prepare_digits([])


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64))))
def test_any_picture_gives_an_mnist_input_or_a_clear_error(pixels):
    try:
        out = prepare_digit(pixels)
    except ImageInputError:
        return
    assert out.shape == (1, 28, 28) and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1
    height, width = ink_box(out[0])
    assert height <= 20 and width <= 20


def _encoded(fmt):
    import io

    buffer = io.BytesIO()
    picture = Image.new("RGB", (40, 40), "white")
    ImageDraw.Draw(picture).line([(10, 5), (30, 5), (15, 35)], fill="black", width=4)
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


_ENCODED = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")}


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow notes on what it finds damaged
@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(_ENCODED)), st.data())
def test_damaged_files_of_every_format_give_a_clear_error(tmp_path_factory, fmt, data):
    """Flipped bytes or a cut anywhere in a real file: an MNIST input or an ImageInputError."""
    raw = bytearray(_ENCODED[fmt])
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[:data.draw(st.integers(1, len(raw)))]
    path = tmp_path_factory.mktemp("damaged") / f"damaged.{fmt.lower()}"
    path.write_bytes(bytes(raw))
    try:
        out = prepare_digit(path)
    except ImageInputError as exc:
        assert "damaged." in str(exc)
    else:
        assert out.shape == (1, 28, 28) and np.isfinite(out).all()


@pytest.mark.parametrize("mode", ["1", "L", "P", "I;16", "I", "F", "LA", "PA", "RGB", "RGBA", "CMYK", "YCbCr",
                                  "HSV", "LAB"])
def test_large_pictures_of_every_colour_mode_are_reduced_and_read(mode):
    drawing = Image.new("RGB", (2500, 2200), "white")
    ImageDraw.Draw(drawing).line([(1250, 300), (1250, 1900)], fill="black", width=250)
    if mode == "I;16":
        picture = Image.fromarray((np.asarray(drawing.convert("L"), dtype=np.uint16) * 257))
    else:
        picture = drawing.convert(mode) if mode not in ("PA", "LAB") else drawing.convert("RGBA" if mode == "PA" else "RGB")
        if mode == "PA":
            picture = picture.convert("P").convert("PA")
        elif mode == "LAB":
            from PIL import ImageCms

            picture = ImageCms.applyTransform(picture, ImageCms.buildTransform(
                ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"))
    assert picture.mode == mode
    try:
        field = prepare_digit(picture)[0]
    except ImageInputError as exc:  # a mode that cannot become grey: a clear error, never a crash
        assert mode in ("LAB", "HSV") and "cannot use this" in str(exc), (mode, exc)
        return
    rows = np.flatnonzero(field.max(axis=1) > 0.5)
    cols = np.flatnonzero(field.max(axis=0) > 0.5)
    assert rows.size >= 18 and cols.size <= 6, mode  # the tall bar of a "1"


from nnscratch.imaging import _to_gray as _current_to_gray  # noqa: E402


# The grey conversion and the square filters as they were before the drawing page's
# canvas was made cheaper (_to_gray took 4.2 of the 5.5 ms of a 280x280 RGBA canvas):
# float copies of every channel and sliding windows. The faster ones must agree exactly.
def _old_to_gray(image):
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        a = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
        gray = a[..., :3] @ np.array([0.299, 0.587, 0.114])
        alpha = a[..., 3]
        return gray * alpha + (1.0 - alpha), alpha
    return _current_to_gray(image)  # the other modes are unchanged


def _old_square_filter(image, size, reduce, *, grow=False):
    from numpy.lib.stride_tricks import sliding_window_view

    for axis in (0, 1):
        padding = [(0, 0), (0, 0)]
        padding[axis] = (size - 1, size - 1) if grow else (size // 2, size - 1 - size // 2)
        padded = np.pad(image, padding, mode="constant" if grow else "edge")
        image = reduce(sliding_window_view(padded, size, axis=axis), axis=-1)
    return image


def _canvases():
    rng = np.random.default_rng(7)
    for ink, paper in [((0, 0, 0, 255), (255, 255, 255, 255)),        # the drawing page
                       ((30, 90, 200, 255), (250, 245, 230, 255)),    # blue pen on cream paper
                       ((0, 0, 0, 255), (255, 255, 255, 0)),          # black on transparent
                       ((20, 20, 20, 140), (255, 255, 255, 0))]:      # translucent pen
        image = Image.new("RGBA", (280, 280), paper)
        ImageDraw.Draw(image).line([(90, 60), (190, 60), (130, 230)], fill=ink, width=int(rng.integers(4, 25)),
                                   joint="curve")
        yield image
    noisy = rng.integers(0, 256, (120, 90, 4), dtype=np.uint8)
    noisy[..., 3] = np.maximum(noisy[..., 3], 200)
    yield Image.fromarray(noisy, "RGBA")
    yield draw_seven((150, 150), mode="LA", ink=(0, 255), paper=(255, 0))
    yield draw_seven((150, 150), mode="RGBA", ink=(200, 40, 40, 255), paper=(255, 255, 255, 255)).convert("P")
    yield draw_seven((150, 150), mode="RGBA", ink=(10, 10, 10, 255), paper=(255, 255, 255, 0)).convert("PA")
    levels = np.tile(np.arange(256, dtype=np.uint8), (64, 1))  # every grey level, opaque
    levels[20:44, 100:110] = 0
    yield Image.fromarray(np.dstack([levels] * 3 + [np.full_like(levels, 255)]), "RGBA")


@pytest.mark.parametrize("index", range(9))
def test_faster_grey_and_filters_give_exactly_the_old_results(monkeypatch, index):
    from nnscratch import imaging

    image = list(_canvases())[index]
    gray, alpha = imaging._to_gray(image)
    old_gray, old_alpha = _old_to_gray(image)
    assert gray.dtype == np.float64 and np.array_equal(gray, old_gray)
    if old_alpha is None or alpha is None:  # the new one leaves out an alpha that is opaque
        assert alpha is None and (old_alpha is None or (old_alpha == 1).all())
    else:
        assert np.array_equal(alpha, old_alpha)
    for size, reduce, grow in [(3, np.mean, False), (3, np.max, True), (9, np.max, True), (4, np.min, False)]:
        assert np.array_equal(imaging._square_filter(gray, size, reduce, grow=grow),
                              _old_square_filter(gray, size, reduce, grow=grow))
    new = imaging.prepare_digit_stages(image)
    monkeypatch.setattr(imaging, "_to_gray", _old_to_gray)
    monkeypatch.setattr(imaging, "_square_filter", _old_square_filter)
    old = imaging.prepare_digit_stages(image)
    assert new.blank == old.blank and new.note == old.note
    if not new.blank:
        for stage in ("crop", "fitted", "field"):
            assert np.array_equal(getattr(new, stage), getattr(old, stage)), stage
