"""The `nnscratch` console command, run as a user runs it: a real subprocess."""

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from nnscratch import __version__
from nnscratch import io as nnio


def nnscratch_command() -> list[str]:
    script = Path(sys.executable).parent / "nnscratch"  # the installed console script
    return [str(script)] if script.exists() else [sys.executable, "-m", "nnscratch.cli"]


def cli_env(**extra):
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg", **extra)


def run(*args, cwd=None, timeout=120, env=None):
    return subprocess.run(nnscratch_command() + [str(a) for a in args], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def mnist_test_digits(count):
    path = resources.files("nnscratch.datasets") / "data" / "mnist"
    with resources.as_file(path) as folder:
        with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as f:
            images = np.frombuffer(f.read(16 + 784 * count), np.uint8, offset=16).reshape(count, 28, 28)
        with gzip.open(folder / "t10k-labels-idx1-ubyte.gz") as f:
            labels = np.frombuffer(f.read(8 + count), np.uint8, offset=8)
    return images, labels


def mnist_digits_as_pngs(folder, count, size):
    """The first MNIST test digits as a user hands them over: larger, dark ink on white paper."""
    images, labels = mnist_test_digits(count)
    paths = []
    for i, digit in enumerate(images):
        path = folder / f"digit{i}.png"
        Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BICUBIC).save(path)
        paths.append(path)
    return paths, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One quick real training run shared by the tests below."""
    out = tmp_path_factory.mktemp("cli") / "run"
    result = run("train", "--limit", 10000, "--epochs", 2, "--hidden", 100, "--seed", 3, "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result


# ----------------------------------------------------------------- basics


def test_version_and_help():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"nnscratch {__version__}"
    result = run("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "predict", "show", "plot"):
        assert command in result.stdout
    for command in ("train", "evaluate", "predict", "show", "plot"):
        sub = run(command, "--help")
        assert sub.returncode == 0 and "usage: nnscratch " + command in sub.stdout
    assert "--resume" in run("train", "--help").stdout


def test_no_command_prints_help_and_fails():
    result = run()
    assert result.returncode == 2 and "usage:" in result.stdout


def test_importing_the_cli_stays_light():
    code = ("import sys, nnscratch.cli; "
            "heavy = [m for m in ('matplotlib', 'tqdm', 'PIL', 'nnscratch.models', 'nnscratch.training') "
            "if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_plot_kinds_match_the_plotting_module():
    from nnscratch import cli
    from nnscratch.plots import calculus

    assert tuple(cli.PLOT_KINDS) == tuple(calculus.KINDS)
    every_option = {name for options in calculus.OPTIONS.values() for name in options}
    assert every_option == set(cli.PLOT_OPTIONS)


# ----------------------------------------------------------------- train


def test_train_writes_model_history_plots_and_checkpoint(trained):
    out, result = trained
    assert "epoch 1/2" in result.stdout and "epoch 2/2" in result.stdout
    assert "Test accuracy" in result.stdout
    for name in ("model.npz", "checkpoint.npz", "history.json", "history.csv",
                 "loss.png", "accuracy.png", "confusion.png", "misclassified.png"):
        assert (out / name).stat().st_size > 0, name
    for name in ("loss.png", "accuracy.png", "confusion.png", "misclassified.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 100
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]
    assert len(history["train_loss"]) == 2 * 100  # 10000 images in batches of 100
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 3
    meta = nnio.read_model_metadata(out / "model.npz")
    assert meta["model"]["class"] == "MultiLayerNet"
    assert meta["model"]["config"]["hidden_size_list"] == [100]
    assert meta["summary"]["settings"]["limit"] == 10000
    # The printed accuracy is the saved model's accuracy on those 10000 test images.
    from nnscratch.datasets import load_mnist

    _, (x_test, t_test) = load_mnist(limit=10000)
    accuracy = nnio.load_model(out / "model.npz").accuracy(x_test, t_test)
    assert f"Test accuracy {100 * accuracy:.2f}%" in result.stdout
    assert meta["summary"]["test_accuracy"] == pytest.approx(accuracy)
    assert accuracy > 0.85


def test_default_output_directory_and_latest_link(tmp_path):
    result = run("train", "--limit", 500, "--epochs", 1, "--hidden", 8, "--no-plots", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = [p for p in (tmp_path / "runs").iterdir() if p.name != "latest"]
    assert len(runs) == 1 and runs[0].name.startswith("mlp-")
    assert (tmp_path / "runs" / "latest" / "model.npz").is_file()
    assert (tmp_path / "runs" / "latest").resolve() == runs[0].resolve()
    assert not list(runs[0].glob("*.png"))  # --no-plots


def test_train_refuses_to_overwrite_a_run(trained, tmp_path):
    out, _ = trained
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = run("train", "--limit", 500, "--epochs", 1, "--out", out)
    assert_one_line_error(result, "already holds a run", "--resume")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # Plots of an earlier run without a checkpoint: refused too, with no resume hint.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "loss.png").write_bytes(b"earlier plot")
    result = run("train", "--limit", 500, "--epochs", 1, "--out", tmp_path / "old")
    assert_one_line_error(result, "already holds a run (loss.png)", "another --out")
    assert "--resume" not in result.stderr
    (tmp_path / "a_file").write_text("x")
    assert_one_line_error(run("train", "--out", tmp_path / "a_file"), "is not a directory")


@pytest.mark.parametrize("args, fragment", [
    (["--model", "two-layer", "--batchnorm"], "--batchnorm: model two-layer is the book's plain TwoLayerNet; use --model mlp"),
    (["--model", "simple-cnn", "--weight-decay", "0.1"], "--weight-decay is available with --model mlp"),
    (["--model", "mlp", "--hidden", "0"], "--hidden"),
    (["--dropout", "1.5"], "--dropout"),
    (["--lr", "-1"], "--lr"),
    (["--epochs", "0"], "--epochs"),
])
def test_bad_training_options(tmp_path, args, fragment):
    assert_one_line_error(run("train", *args, "--out", tmp_path / "x"), fragment)


def test_unknown_choice_is_an_argparse_error(tmp_path):
    result = run("train", "--optimizer", "adamw")
    assert result.returncode == 2 and "invalid choice" in result.stderr


# ----------------------------------------------------------------- evaluate


def test_evaluate_prints_accuracy_table_and_confusion_matrix(trained, tmp_path):
    out, _ = trained
    plot = tmp_path / "confusion.png"
    result = run("evaluate", "--model", out / "model.npz", "--limit", 1000, "--plot", plot)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    from nnscratch.datasets import load_mnist

    _, (x_test, t_test) = load_mnist(limit=1000)
    model = nnio.load_model(out / "model.npz")
    predicted = model.predict(x_test).argmax(axis=1)
    correct = int(np.sum(predicted == t_test))
    assert f"accuracy: {correct / 10:.2f}% ({correct}/1000)" in result.stdout
    table = lines[lines.index(next(l for l in lines if l.strip().startswith("class"))) + 1:][:10]
    supports = [int(row.split()[-1]) for row in table]
    assert supports == np.bincount(t_test, minlength=10).tolist()
    start = lines.index(next(l for l in lines if l.startswith("confusion matrix"))) + 2
    matrix = np.array([[int(v) for v in row.split()[1:]] for row in lines[start:start + 10]])
    expected = np.zeros((10, 10), int)
    np.add.at(expected, (t_test, predicted), 1)
    np.testing.assert_array_equal(matrix, expected)
    assert plot.stat().st_size > 0


def test_evaluate_accepts_a_run_directory(trained):
    out, _ = trained
    result = run("evaluate", "--model", out, "--limit", 200)
    assert result.returncode == 0 and "accuracy:" in result.stdout


def test_corrupt_model_file_is_a_clear_error(trained, tmp_path):
    out, _ = trained
    damaged = tmp_path / "damaged.npz"
    data = bytearray((out / "model.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert_one_line_error(run("evaluate", "--model", damaged), "damaged.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(bytes(data[:1000]))
    assert_one_line_error(run("predict", "x.png", "--model", truncated), "truncated.npz")
    assert_one_line_error(run("evaluate", "--model", tmp_path / "missing.npz"), "missing.npz")
    # A folder that is no run: was "FOLDER/model.npz: no such model file".
    (tmp_path / "pictures").mkdir()
    assert_one_line_error(run("predict", "x.png", "--model", tmp_path / "pictures"),
                          "pictures: a directory with no model.npz in it")


# ----------------------------------------------------------------- predict


def draw_digit_one(path):
    image = Image.new("RGB", (300, 400), "white")
    ImageDraw.Draw(image).line([(160, 60), (150, 340)], fill="black", width=28)
    image.save(path)
    return path


def test_predict_reads_real_digits_from_png_files(trained, tmp_path):
    out, _ = trained
    paths, labels = mnist_digits_as_pngs(tmp_path, 20, size=112)
    result = run("predict", *paths, "--model", out / "model.npz", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [entry["path"] for entry in report] == [str(p) for p in paths]
    for entry in report:
        assert len(entry["probabilities"]) == 10
        assert sum(entry["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert entry["label"] == int(np.argmax(entry["probabilities"]))
    predicted = np.array([entry["label"] for entry in report])
    assert np.mean(predicted == labels) >= 0.75, (predicted, labels)


def draw_digits(folder):
    """Digits 0-9 drawn with pen strokes on a 280x280 white canvas, as on a drawing page."""
    strokes = {
        0: [("ellipse", (80, 40, 200, 240))],
        1: [("line", [(150, 40), (135, 240)])],
        2: [("arc", (80, 40, 200, 150), 180, 30), ("line", [(195, 115), (85, 240), (205, 240)])],
        3: [("arc", (85, 40, 195, 140), 200, 90), ("arc", (80, 140, 200, 245), 270, 160)],
        4: [("line", [(170, 240), (170, 40), (70, 170), (215, 170)])],
        5: [("line", [(195, 45), (100, 45), (92, 130)]), ("arc", (85, 110, 205, 240), 220, 150)],
        6: [("arc", (80, 30, 260, 280), 180, 260), ("ellipse", (85, 135, 195, 240))],
        7: [("line", [(75, 50), (205, 50), (120, 240)])],
        8: [("ellipse", (95, 35, 185, 135)), ("ellipse", (85, 135, 195, 245))],
        9: [("ellipse", (85, 40, 195, 140)), ("line", [(192, 95), (175, 245)])],
    }
    paths = []
    for digit, parts in strokes.items():
        image = Image.new("L", (280, 280), 255)
        pen = ImageDraw.Draw(image)
        for kind, shape, *angles in parts:
            if kind == "line":
                pen.line(shape, fill=0, width=22, joint="curve")
            elif kind == "arc":
                pen.arc(shape, *angles, fill=0, width=22)
            else:
                pen.ellipse(shape, outline=0, width=22)
        path = folder / f"drawn{digit}.png"
        image.save(path)
        paths.append(path)
    return paths


def test_predict_reads_digits_drawn_with_a_pen(trained, tmp_path):
    out, _ = trained
    paths = draw_digits(tmp_path)
    result = run("predict", *paths, "--model", out, "--json")
    assert result.returncode == 0, result.stderr
    predicted = [entry["label"] for entry in json.loads(result.stdout)]
    assert sum(p == d for d, p in enumerate(predicted)) >= 9, predicted


def test_predict_prints_top_three(trained, tmp_path):
    out, _ = trained
    path = draw_digit_one(tmp_path / "one.png")
    result = run("predict", path, "--model", out / "model.npz")
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith(str(path)))
    label, ranked = line[len(str(path)) + 1:].split(None, 1)
    shares = [part.split(": ") for part in ranked.strip("() ").split(", ")]
    assert len(shares) == 3 and shares[0][0] == label
    percents = [float(p.rstrip("%")) for _, p in shares]
    assert percents == sorted(percents, reverse=True) and 0 < sum(percents) <= 100.05
    assert label == "1"
    shown = run("predict", path, "--model", out / "model.npz", "--show")
    assert shown.returncode == 0 and "█" in shown.stdout  # the 28x28 input the network saw


def test_predict_bad_images(trained, tmp_path):
    out, _ = trained
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    assert_one_line_error(run("predict", blank, "--model", out), "blank.png", "blank")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    assert_one_line_error(run("predict", text, "--model", out), "notes.png")
    assert_one_line_error(run("predict", tmp_path, "--model", out), "is a directory")
    assert_one_line_error(run("predict", tmp_path / "nowhere.png", "--model", out), "no such image")
    # Among good ones, each bad file gets its own error line and the good ones are still read.
    one = draw_digit_one(tmp_path / "one.png")
    result = run("predict", blank, one, text, "--model", out, "--json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and "blank.png" in errors[0] and "notes.png" in errors[1], errors
    report = json.loads(result.stdout)  # every file in order; an unreadable one as {"path", "error"}
    assert [entry["path"] for entry in report] == [str(blank), str(one), str(text)]
    assert "blank" in report[0]["error"] and "label" not in report[0] and "notes.png" in report[2]["error"]
    assert report[1]["label"] == 1 and 0 < report[1]["confidence"] <= 1 and "uncertain" in report[1]


def test_a_model_for_other_inputs_is_refused(tmp_path):
    from nnscratch.models import TwoLayerNet

    path = nnio.save_model(TwoLayerNet(input_size=100, hidden_size=4, output_size=10, seed=0),
                           tmp_path / "small_input.npz")
    digit = draw_digit_one(tmp_path / "one.png")
    for command in (["evaluate", "--limit", 100], ["predict", digit]):
        assert_one_line_error(run(*command, "--model", path), "small_input.npz", "(100,)", "28x28")


def test_predict_with_the_pretrained_model(tmp_path):
    if not nnio.pretrained_path().is_file():
        result = run("predict", draw_digit_one(tmp_path / "one.png"))
        assert_one_line_error(result, "pretrained model is not installed")
        pytest.skip("src/nnscratch/pretrained/deep_convnet.npz is not there yet")
    paths, labels = mnist_digits_as_pngs(tmp_path, 10, size=84)
    result = run("predict", *paths, "--json")
    assert result.returncode == 0, result.stderr
    predicted = [entry["label"] for entry in json.loads(result.stdout)]
    assert np.mean(np.array(predicted) == labels) >= 0.9


# ----------------------------------------------------------------- downloads


@pytest.fixture
def silent_mirror():
    """A mirror on 127.0.0.1 that accepts a connection and then never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server, f"http://127.0.0.1:{server.getsockname()[1]}/"
    server.close()


def test_offline_download_error_says_what_to_do(trained, tmp_path):
    out, _ = trained
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there any more: as offline as it gets
    env = cli_env(NNSCRATCH_MIRRORS=f"http://127.0.0.1:{port}/", NNSCRATCH_DATA_DIR=str(tmp_path))
    result = run("evaluate", "--model", out, "--dataset", "fashion-mnist", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: could not download"), result.stderr
    assert f"http://127.0.0.1:{port}/" in result.stderr  # where it tried
    assert "by hand" in result.stderr and "NNSCRATCH_MIRRORS" in result.stderr  # what to do


def test_ctrl_c_while_loading_data_exits_without_a_traceback(trained, tmp_path, silent_mirror):
    out, _ = trained
    server, url = silent_mirror
    env = cli_env(NNSCRATCH_MIRRORS=url, NNSCRATCH_DATA_DIR=str(tmp_path))
    proc = subprocess.Popen(nnscratch_command() + ["evaluate", "--model", str(out), "--dataset",
                                                   "fashion-mnist"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server.settimeout(60)
        connection, _ = server.accept()  # the command is now waiting for the download
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        connection.close()
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "Aborted" in stderr


# ----------------------------------------------------------------- show and plot


def test_show_numbers_matches_the_dataset():
    images, labels = mnist_test_digits(8)
    result = run("show", "--split", "test", "--index", 7, "--style", "numbers")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"test[7]: label {labels[7]}"
    grid = np.array([[int(v) for v in line.split()] for line in lines[1:29]])
    np.testing.assert_array_equal(grid, images[7])


def test_show_shaded_and_png(tmp_path):
    result = run("show", "--count", 2)
    assert result.returncode == 0
    assert result.stdout.count("train[") == 2 and "█" in result.stdout
    png = tmp_path / "grid.png"
    result = run("show", "--split", "test", "--count", 12, "--png", png)
    assert result.returncode == 0 and png.stat().st_size > 0
    assert_one_line_error(run("show", "--index", 60000), "--index")


def test_block_characters_on_an_ascii_output_are_one_error_line(tmp_path):
    # Was "error: unexpected UnicodeEncodeError ... please report it", after part of the output.
    ascii_env = cli_env(PYTHONIOENCODING="ascii")
    for style in ("shades", "halfblocks"):
        result = run("show", "--style", style, env=ascii_env)
        assert_one_line_error(result, f"--style {style}", "(ascii) has no block characters", "--style numbers")
        assert result.stdout == ""
    assert run("show", "--style", "numbers", env=ascii_env).returncode == 0
    digit = draw_digit_one(tmp_path / "one.png")
    result = run("predict", digit, "--show", env=ascii_env)
    assert_one_line_error(result, "--show", "PYTHONIOENCODING=utf-8")
    assert result.stdout == ""
    assert run("predict", digit, "--show", "--json", env=ascii_env).returncode == 0  # --json shows no blocks
    # A file name the output cannot encode is printed escaped (was "unexpected UnicodeEncodeError").
    named = tmp_path / "sieben_\u00fc.png"
    named.write_bytes(digit.read_bytes())
    result = run("predict", named, env=ascii_env)
    assert result.returncode == 0 and "sieben_\\xfc.png: 1" in result.stdout, (result.stdout, result.stderr)


def test_plot_draws_the_chapter_4_figures(tmp_path):
    tangent = tmp_path / "tangent.png"
    result = run("plot", "tangent", "--x", 5, "--out", tangent)
    assert result.returncode == 0, result.stderr
    descent = tmp_path / "descent.png"
    result = run("plot", "descent", "--function", "x0**2 + 2*x1**2", "--lr", 0.1,
                 "--init-x=-3,4", "--out", descent)
    assert result.returncode == 0, result.stderr
    for path in (tangent, descent):
        with Image.open(path) as image:
            assert image.format == "PNG"


def test_plot_errors_are_one_line(tmp_path):
    assert_one_line_error(run("plot", "descent", "--function", "__import__('os')", "--out",
                              tmp_path / "x.png"))
    assert_one_line_error(run("plot", "gradient-field", "--lr", 3, "--out", tmp_path / "y.png"), "lr")
