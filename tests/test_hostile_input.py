"""Hostile and unlucky input (issue 14): bounded time and memory before refusing, one-line errors.

The CLI cases run the real command in a subprocess.
"""

import json
import os
import re
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from nnscratch import io as nnio
from nnscratch.errors import ConfigError, ImageInputError, ModelFileError
from nnscratch.imaging import MAX_PIXELS, MAX_SIDE_PIXELS, prepare_digit, prepare_digit_stages
from nnscratch.models import MultiLayerNet


def run(*args, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "nnscratch.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# --------------------------------------------------------------------- forged model files


def forge(path, saved, **config_changes):
    """Rewrite a saved file's config and recompute its checksum, as an attacker can."""
    metadata, arrays = nnio._read_container(saved, nnio.MODEL_FORMAT if "model" in path.name
                                            else nnio.CHECKPOINT_FORMAT)
    metadata["model"]["config"].update(config_changes)
    return nnio._write_container(path, metadata, arrays)


@pytest.fixture
def small_model_file(tmp_path):
    return nnio.save_model(MultiLayerNet(784, [8], 10, seed=0), tmp_path / "small_model.npz")


@pytest.mark.parametrize("hidden", [[20000, 20000], [8] * 20000], ids=["huge-layers", "20000-layers"])
def test_forged_architecture_is_refused_before_building(tmp_path, small_model_file, hidden):
    forged = forge(tmp_path / "forged_model.npz", small_model_file, hidden_size_list=hidden)
    start = time.process_time()  # CPU time: a busy machine must not make this flaky
    with pytest.raises(ModelFileError) as caught:
        nnio.load_model(forged)
    assert time.process_time() - start < 3.0  # was 63 s and 6.4 GB for [20000, 20000]
    message = str(caught.value)
    assert "forged_model.npz" in message and "does not match MultiLayerNet" in message
    assert len(message) < 600, len(message)  # 20,000 layers once gave hundreds of kilobytes


def test_forged_model_via_the_cli_is_one_short_line(tmp_path, small_model_file):
    forged = forge(tmp_path / "forged_model.npz", small_model_file, hidden_size_list=[8] * 20000)
    digit = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(digit)
    line = assert_one_line_error(run("predict", digit, "--model", forged), "forged_model.npz")
    assert len(line) < 700


def test_forged_shapes_with_the_right_names_are_refused(tmp_path, small_model_file):
    # Same array names (one hidden layer), a wider layer than the stored arrays.
    forged = forge(tmp_path / "wide_model.npz", small_model_file, hidden_size_list=[50000])
    with pytest.raises(ModelFileError, match=r"'W1' is declared \(784, 50000\), stored \(784, 8\)"):
        nnio.load_model(forged)


def test_forged_checkpoint_is_refused_before_building(tmp_path):
    from nnscratch.optimizers import SGD
    from nnscratch.training import Trainer

    rng = np.random.default_rng(0)
    x, t = rng.random((20, 784), dtype=np.float32), rng.integers(0, 10, 20)
    model = MultiLayerNet(784, [8], 10, seed=0)
    trainer = Trainer(model, SGD(lr=0.1), x, t, x, t, epochs=1, batch_size=10, seed=0)
    trainer.fit()
    saved = nnio.save_checkpoint(tmp_path / "real_checkpoint.npz", trainer.state_dict(),
                                 model=model, optimizer=trainer.optimizer)
    nnio.load_checkpoint(saved)  # the real one loads
    forged = forge(tmp_path / "forged_checkpoint.npz", saved, hidden_size_list=[20000, 20000])
    start = time.process_time()
    with pytest.raises(ModelFileError, match="forged_checkpoint.npz.*does not match MultiLayerNet"):
        nnio.load_checkpoint(forged)
    assert time.process_time() - start < 3.0


def test_expected_shapes_agree_with_the_built_models():
    from nnscratch.models.registry import MODELS, expected_param_shapes

    models = [MODELS["SimpleNet"](seed=0), MODELS["TwoLayerNet"](784, 7, 10),
              MultiLayerNet(784, [5, 6], 10, use_batchnorm=True), MODELS["NielsenNetwork"]([784, 9, 10]),
              MODELS["SimpleConvNet"](input_dim=(1, 20, 24), hidden_size=11),
              MODELS["DeepConvNet"](input_dim=(3, 32, 32), hidden_size=13)]
    for model in models:
        params, buffers = expected_param_shapes(type(model).__name__, model.config)
        assert params == {k: v.shape for k, v in model.params.items()}, type(model).__name__
        assert buffers == {k: v.shape for k, v in (getattr(model, "buffers", None) or {}).items()}


def test_multilayernet_given_an_int_for_the_hidden_list_says_so():
    with pytest.raises(ConfigError, match=r"hidden_size_list must be a list.*\[100\]"):
        MultiLayerNet(784, 100, 10)


# --------------------------------------------------------------------- pictures


def test_predict_on_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageInputError, match="not a regular file"):
        prepare_digit(fifo)
    assert_one_line_error(run("predict", fifo, timeout=60), "digit.png", "not a regular file")


def test_a_huge_blank_page_is_read_reduced_and_quickly(tmp_path):
    page = tmp_path / "page.png"
    Image.new("L", (11000, 11000), 255).save(page)
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape
        with pytest.raises(ImageInputError, match="blank"):
            prepare_digit(page)
    assert time.process_time() - start < 2.0  # was about 20 s; 0.4 s measured
    result = run("predict", page)
    assert_one_line_error(result, "page.png", "blank")
    assert "DecompressionBomb" not in result.stderr


def test_a_large_photo_with_a_digit_is_read_reduced(tmp_path):
    image = Image.new("L", (6000, 6000), 255)
    ImageDraw.Draw(image).line([(3000, 1000), (3000, 5000)], fill=0, width=400)
    path = tmp_path / "one.jpg"
    image.save(path, quality=90)
    start = time.process_time()
    field = prepare_digit(path)[0]
    assert time.process_time() - start < 2.0
    cols = np.flatnonzero(field.max(axis=0) > 0.5)
    rows = np.flatnonzero(field.max(axis=1) > 0.5)
    assert rows.size >= 18 and cols.size <= 6  # a tall thin bar: a "1"


def png_header_only(path, width, height):
    """A PNG that declares width x height pixels but holds no image data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_an_absurd_pixel_count_is_refused_from_the_header(tmp_path):
    path = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    assert 100_000 ** 2 > MAX_PIXELS
    start = time.process_time()
    with pytest.raises(ImageInputError, match="bomb.png: the picture is too large") as caught:
        prepare_digit(path)
    assert time.process_time() - start < 1.0
    assert "megapixels" in str(caught.value) and "DOS" not in str(caught.value)
    # Under Pillow's own limit but over ours: refused by our check, from the header alone.
    path = png_header_only(tmp_path / "big.png", 13_000, 12_000)
    with pytest.raises(ImageInputError, match="big.png: the picture is too large.*13000x12000"):
        prepare_digit(path)


def test_a_picture_longer_than_a_page_is_refused_from_the_header(tmp_path):
    # A 1 x 149,000,000 strip (under MAX_PIXELS) took 1.3 GB and 4.6 s: Pillow keeps a
    # pointer for every row. Now refused before decoding.
    path = png_header_only(tmp_path / "strip.png", 1, MAX_SIDE_PIXELS + 1)
    with pytest.raises(ImageInputError, match=r"strip.png: the picture is too long \(1x100001 pixels"):
        prepare_digit(path)
    assert_one_line_error(run("predict", path), "too long", "100,000 pixels a side")


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "PA", "1", "I;16", "I", "F", "CMYK"])
def test_large_pictures_are_reduced_in_stripes_exactly_as_whole(monkeypatch, mode):
    from nnscratch import imaging

    monkeypatch.setattr(imaging, "_STRIPE_PIXELS", 5000)  # many stripes, the last one partial
    rng = np.random.default_rng(0)
    for width, height, factor in ((333, 517, 7), (1000, 45, 3), (97, 1001, 10)):
        if mode == "I;16":
            image = Image.fromarray(rng.integers(0, 65536, (height, width)).astype(np.uint16))
        else:
            image = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA").convert(mode)
            if mode == "P":
                image.info["transparency"] = 3
        striped, whole = imaging._reduce(image, factor), imaging._reduce_whole(image, factor)
        assert (striped.mode, striped.size) == (whole.mode, whole.size)
        assert np.array_equal(np.asarray(striped), np.asarray(whole))


def test_a_large_rgba_page_is_reduced_without_a_full_size_copy(tmp_path):
    # Pillow reduces RGBA through a premultiplied copy of the whole picture: a 144-megapixel
    # page peaked at 1.16 GB (twice its 576 MB of pixels), 627 MB in stripes.
    path = tmp_path / "page.png"
    image = Image.new("RGBA", (8000, 8000), (255, 255, 255, 255))
    ImageDraw.Draw(image).line([(4000, 1000), (4000, 7000)], fill=(0, 0, 0, 255), width=500)
    image.save(path)
    del image
    code = ("import resource, sys\n"
            "from nnscratch.imaging import prepare_digit\n"
            "import numpy, PIL.Image\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "prepare_digit(sys.argv[1])\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    pixels = 8000 * 8000 * 4  # 256 MB; measured peaks over the imports: 517 MB whole, 293 MB in stripes
    assert int(result.stdout) < 1.5 * pixels, (int(result.stdout) / 1e6, pixels / 1e6)


def test_white_strokes_on_transparency_are_described(tmp_path):
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(60, 40), (140, 40), (90, 170)], fill=(255, 255, 255, 255), width=12)
    path = tmp_path / "white.png"
    image.save(path)
    stages = prepare_digit_stages(path)
    assert stages.blank and stages.field is None
    assert "white or very light strokes on a transparent background" in stages.note
    assert "darker than the paper" not in stages.note  # the old, misleading advice
    assert_one_line_error(run("predict", path), "white.png", "transparent background")
    # Black strokes on the same transparent canvas are the digit (transparency is paper).
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(60, 40), (140, 40), (90, 170)], fill=(0, 0, 0, 255), width=12)
    stages = prepare_digit_stages(image)
    assert not stages.blank and stages.field.shape == (28, 28)
    assert np.array_equal(stages.field, prepare_digit(image)[0])
    assert stages.crop.max() == pytest.approx(1.0) and stages.fitted.shape[0] == 20


def test_a_fully_transparent_picture_says_so():
    stages = prepare_digit_stages(np.zeros((50, 50, 4)))
    assert stages.blank and "fully transparent" in stages.note


# --------------------------------------------------------------------- flags


@pytest.mark.parametrize("args, fragment", [
    (["show", "--count", "500000", "--png", "grid.png"], "--count must be from 1 to 400"),
    (["show", "--count", "0"], "--count must be from 1 to 1000"),
    (["evaluate", "--limit", "0"], "--limit must be at least 1"),
    (["plot", "surface", "--num", "1000000"], "num must be an integer from 2 to 1,000"),
    (["plot", "surface", "--num", "0"], "num must be an integer from 2"),
    (["plot", "descent", "--step-num", "1000000000"], "step_num must be an integer from 1 to 10,000"),
    (["plot", "surface", "--cmap", "nope"], "cmap must be a matplotlib colormap"),
    (["plot", "surface", "--x0-range=-1e308,1e308"], "x0_range"),
    (["plot", "descent", "--x1-range=3,-3"], "lower to a higher"),
    (["plot", "gradient-field", "--step", "1e-9"], "arrows per axis"),
    (["plot", "tangent", "--h", "nan"], "h must be"),
    (["plot", "surface", "--x0-range=1,1"], "lower to a higher"),
    (["plot", "descent", "--init-x=1e400,0"], "init_x"),
    (["plot", "surface", "--function", "1/0"], "no finite value"),
    (["plot", "tangent", "--function", "x**9999"], "f(5) is inf: there is no tangent at x = 5"),
    (["plot", "learning-rates", "--lrs", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9"], "at most 8"),
])
def test_size_like_flags_are_bounded(tmp_path, args, fragment):
    result = run(*[tmp_path / a if a.endswith(".png") else a for a in args], timeout=60)  # a hang fails
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("args", [["plot", "surface", "--out"], ["show", "--png"],
                                  ["evaluate", "--limit", "5", "--plot"]])
def test_outputs_are_never_written_over_a_pipe_or_device(tmp_path, args):
    # Files are written to a temporary name and renamed over the target: as root, that
    # once replaced /dev/null with a PNG. A FIFO stands in for the device here.
    target = tmp_path / "out.png"
    os.mkfifo(target)
    assert_one_line_error(run(*args, target, timeout=60), "out.png is not a regular file")
    assert not target.is_file() and target.is_fifo()
    assert_one_line_error(run(*args, tmp_path, timeout=60), "is a directory")


def test_show_accepts_the_api_style_name(tmp_path):
    shades = run("show", "--style", "shades")
    shaded = run("show", "--style", "shaded")
    assert shades.returncode == 0 and shades.stdout == shaded.stdout and "█" in shades.stdout


def test_warnings_are_one_line_each(tmp_path):
    result = run("plot", "learning-rates", "--out", tmp_path / "lr.png")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: gradient_descent") for line in lines), lines
    assert ".py" not in result.stderr and "DivergenceWarning" not in result.stderr


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback():
    # A command that fails in a way nobody planned for (a bug): injected into the real
    # main() of a real process.
    script = ("import sys, nnscratch.cli as cli\n"
              "def broken(args):\n    return {}['no such key']\n"
              "cli.cmd_show = broken\nsys.exit(cli.main(sys.argv[1:]))\n")
    env = dict(os.environ, MPLBACKEND="Agg")
    plain = subprocess.run([sys.executable, "-c", script, "show"], capture_output=True, text=True,
                           timeout=60, env=env)
    line = assert_one_line_error(plain, "unexpected KeyError", "--debug")
    assert len(line) < 400
    debug = subprocess.run([sys.executable, "-c", script, "--debug", "show"], capture_output=True,
                           text=True, timeout=60, env=env)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "KeyError" in debug.stderr


# --------------------------------------------------------------------- no digit


def noise_picture(path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)).save(path)
    return path


def line_picture(path):
    image = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(image).line([(10, 50), (90, 50)], fill=0, width=1)
    image.save(path)
    return path


def frame_picture(path):
    image = Image.new("L", (200, 200), 240)
    ImageDraw.Draw(image).rectangle([8, 8, 192, 192], outline=20, width=3)
    image.save(path)
    return path


def shadow_picture(path):
    y, x = np.mgrid[0:200, 0:200] / 200
    gray = 230 - 200 * np.clip((x + y - 0.9) * 3, 0, 1)
    gray += np.random.default_rng(0).normal(0, 2, gray.shape)
    Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).save(path)
    return path


def seven_picture(path):
    image = Image.new("RGB", (400, 400), "white")
    pen = ImageDraw.Draw(image)
    pen.line([(110, 90), (290, 80), (250, 160), (185, 330)], fill=(20, 20, 60), width=26, joint="curve")
    image.save(path)
    return path


def test_predict_flags_pictures_without_a_digit_as_uncertain(tmp_path):
    pictures = [seven_picture(tmp_path / "seven.png"), noise_picture(tmp_path / "noise.png"),
                line_picture(tmp_path / "line.png"), frame_picture(tmp_path / "frame.png"),
                shadow_picture(tmp_path / "shadow.png")]
    result = run("predict", *pictures, "--json")
    assert result.returncode == 0, result.stderr
    report = {os.path.basename(entry["path"]): entry for entry in json.loads(result.stdout)}
    seven = report.pop("seven.png")
    assert seven["label"] == 7 and not seven["uncertain"] and seven["confidence"] > 0.9
    assert seven["confidence"] == max(seven["probabilities"])
    for name, entry in report.items():
        assert entry["uncertain"], (name, entry)
        assert "does not look like a handwritten stroke" in entry["reasons"], (name, entry["reasons"])
    assert "a flat line" in report["line.png"]["reasons"]
    assert "a frame or border" in report["frame.png"]["reasons"]
    text = run("predict", *pictures)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    after = {os.path.basename(lines[i].split(":")[0]): lines[i + 1] for i in range(1, len(lines) - 1, 2)}
    assert "uncertain" not in after["seven.png"] and "confidence" in after["seven.png"]
    assert all("uncertain: " in after[name] for name in ("noise.png", "line.png", "frame.png", "shadow.png"))


# --------------------------------------------------------------------- a first run

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_drawing_example_is_shipped_and_reads_as_a_seven(tmp_path):
    readme = (REPO / "README.md").read_text()
    assert "$ python examples/draw_seven.py" in readme
    made = subprocess.run([sys.executable, str(REPO / "examples" / "draw_seven.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0 and made.stdout.strip() == "wrote my_seven.png"
    result = run("predict", tmp_path / "my_seven.png", "--json")
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    assert entry["label"] == 7 and not entry["uncertain"]


def test_docs_name_only_files_that_exist():
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)#:\s]+)\)", text):  # markdown links to files
            assert (doc.parent / target).exists(), (doc.name, target)
        for script in re.findall(r"^\$ (?:\.venv/bin/)?python ([\w/.-]+\.py)", text, re.M):
            assert (REPO / script).exists(), (doc.name, script)
        assert "DESIGN.md" not in text or (REPO / "DESIGN.md").exists(), doc.name


def test_readme_and_docs_agree_on_the_cost_of_a_batch_gradient():
    from nnscratch.calculus import numerical_gradient_batch

    calls = []

    def f(x):
        calls.append(1)
        return x[0] ** 2 + x[1] ** 2 + x[2]

    numerical_gradient_batch(f, np.zeros((3, 4, 4)))
    assert len(calls) == 2 * 3 + 1
    assert "2·D + 1 calls" in (REPO / "README.md").read_text()
    assert "2D + 1` calls" in (REPO / "docs" / "numerical-differentiation.md").read_text()


# --------------------------------------------------------------------- models whose answers cannot be digits


def test_a_model_with_nan_or_huge_weights_is_one_error_line(tmp_path):
    # Evaluate read a NaN model's answers as class 0 ("accuracy: 10.00%", exit 0); predict
    # blamed "probabilities ... shape (10,)" after a raw "invalid value" warning line.
    digit = tmp_path / "digit.png"
    image = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(image).line([(50, 10), (50, 90)], fill=0, width=8)
    image.save(digit)
    for value, name in ((np.nan, "nan_model.npz"), (1e30, "huge_model.npz")):  # 1e30: finite in float32
        model = MultiLayerNet(784, [8], 10, seed=0)
        for array in model.params.values():
            array[...] = value
        path = nnio.save_model(model, tmp_path / name)
        for command in (["predict", digit], ["evaluate", "--limit", 20]):
            assert_one_line_error(run(*command, "--model", path), name, "NaN or infinite")


@pytest.mark.parametrize("classes", [1, 3, 100_000])
def test_a_model_that_does_not_answer_ten_classes_is_refused(tmp_path, classes):
    # 100,000 outputs: predict printed "99623" as the digit, and evaluate asked for an
    # 80 GB confusion matrix; one output: "probabilities must be finite".
    digit = tmp_path / "digit.png"
    image = Image.new("L", (60, 60), 255)
    ImageDraw.Draw(image).line([(30, 5), (30, 55)], fill=0, width=5)
    image.save(digit)
    path = nnio.save_model(MultiLayerNet(784, [1], classes, seed=0), tmp_path / "odd.npz")
    for command in (["predict", digit, "--json"], ["evaluate", "--limit", 20]):
        started = time.perf_counter()
        assert_one_line_error(run(*command, "--model", path), "odd.npz", f"gives {classes:,} scores per image",
                              "10 classes")
        assert time.perf_counter() - started < 30


def test_a_float_picture_with_infinite_pixels_is_one_error_line(tmp_path):
    # Dividing by its infinite maximum printed "warning: invalid value encountered in divide" first.
    pixels = np.full((60, 60), np.inf, np.float32)
    pixels[10:50, 28:32] = 0
    path = tmp_path / "inf.tiff"
    Image.fromarray(pixels, "F").save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageInputError, match="NaN or infinite"):
            prepare_digit(path)
    assert_one_line_error(run("predict", path), "inf.tiff", "NaN or infinite")


@pytest.mark.parametrize("args, fragment", [
    # Values near the float maximum: Matplotlib's limits overflowed ("unexpected ValueError:
    # Axis limits cannot be NaN or Inf" after a raw overflow warning).
    (["surface", "--function", "x0*1e308*x1"], "no value under 1e+300"),
    # A pole: exit 0 with a raw "divide by zero" warning and a tangent through infinity.
    (["tangent", "--function", "1/x", "--x", "0"], "no tangent at x = 0"),
    (["tangent", "--function", "log(x)", "--x", "-1"], "no tangent at x = -1"),
    # An infinite start: "unexpected ValueError: arange: cannot compute length" (the contours),
    # or warnings blaming the learning rate.
    (["descent", "--function", "x0*1e308*x1"], "at the starting point (-3, 4)"),
    (["learning-rates", "--function", "1/x0", "--init-x=0,1"], "at the starting point (0, 1)"),
    # Two raw NumPy warnings came before the error.
    (["gradient-field", "--function", "x0*1e308*x1"], "returned inf"),
])
def test_plots_of_functions_that_overflow_are_one_error_line(tmp_path, args, fragment):
    assert_one_line_error(run("plot", *args, "--out", tmp_path / "p.png"), fragment)
    assert not (tmp_path / "p.png").exists()


def test_a_surface_that_overflows_in_part_of_the_grid_is_drawn_without_it(tmp_path):
    result = run("plot", "surface", "--function", "exp(120*x0)+x1", "--out", tmp_path / "p.png")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert Image.open(tmp_path / "p.png").size == (640, 480)


@pytest.mark.parametrize("target, fragment", [("/proc/version", "cannot write"),
                                              ("no/such/folder/x.png", "does not exist")])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(target, fragment):
    result = run("evaluate", "--limit", "5", "--plot", target, timeout=60)
    assert_one_line_error(result, fragment)
    assert "accuracy" not in result.stdout  # refused before evaluating
