"""Figures are saved atomically: the complete PNG under the final name, or nothing new there."""

import errno
import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from nnscratch.plots import save_figure
from nnscratch.plots.calculus import plot_tangent
from nnscratch.plots.digits import save_digit_grid
from nnscratch.plots.training import plot_loss_curve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def small_figure():
    fig = Figure(figsize=(2.0, 1.5))
    fig.add_subplot().plot([0, 1, 2], [1, 0, 1])
    return fig


def break_png_writer(monkeypatch, exception):
    """Make every PNG save write a partial header into its file, then fail."""
    calls = []

    def print_png_then_fail(canvas, filename_or_obj, *args, **kwargs):
        calls.append(filename_or_obj)
        if hasattr(filename_or_obj, "write"):
            filename_or_obj.write(PNG_SIGNATURE + b"\0\0\0\rIHDR")
        else:
            with open(filename_or_obj, "wb") as handle:
                handle.write(PNG_SIGNATURE + b"\0\0\0\rIHDR")
        raise exception

    monkeypatch.setattr(FigureCanvasAgg, "print_png", print_png_then_fail)
    return calls


def test_a_normal_save_writes_a_complete_png(tmp_path):
    path = tmp_path / "new" / "dirs" / "figure.png"
    assert save_figure(small_figure(), path, dpi=100) == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.load()  # decodes every chunk: a truncated file fails here
        assert image.format == "PNG" and image.size == (200, 150)
    assert sorted(p.name for p in path.parent.iterdir()) == ["figure.png"]  # no temporary left


@pytest.mark.skipif(os.name != "posix", reason="umask and permission bits are POSIX")
def test_saved_png_gets_the_usual_permissions_not_the_temp_files(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_figure(small_figure(), tmp_path / "figure.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_other_savefig_options_pass_through(tmp_path):
    path = save_figure(small_figure(), tmp_path / "figure.png", dpi=50, facecolor="red")
    with Image.open(path) as image:
        assert image.size == (100, 75)
        assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("exception", [OSError(errno.ENOSPC, "No space left on device"),
                                       KeyboardInterrupt()])
def test_a_save_failing_midway_leaves_no_file_and_no_temporary(tmp_path, monkeypatch, exception):
    calls = break_png_writer(monkeypatch, exception)
    with pytest.raises(type(exception)):
        save_figure(small_figure(), tmp_path / "figure.png")
    assert len(calls) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_save_failing_midway_keeps_the_previous_image(tmp_path, monkeypatch):
    path = save_figure(small_figure(), tmp_path / "figure.png")
    before = path.read_bytes()
    break_png_writer(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    fig = small_figure()
    fig.axes[0].plot([0, 2], [0, 2], "r")
    with pytest.raises(OSError):
        save_figure(fig, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def draw_tangent(path):
    plot_tangent(out_path=path, num=20)


def draw_loss_curve(path):
    plot_loss_curve([3.0, 2.0, 1.5, 1.2], path)


def draw_digit_grid(path):
    digits = np.zeros((3, 28, 28), np.uint8)
    digits[:, 8:20, 12:16] = 255
    save_digit_grid(digits, [1, 1, 1], path, predicted=[1, 7, 1])


@pytest.mark.parametrize("draw", [draw_tangent, draw_loss_curve, draw_digit_grid])
def test_every_plot_module_saves_atomically(tmp_path, monkeypatch, draw):
    draw(tmp_path / "ok" / "figure.png")
    with Image.open(tmp_path / "ok" / "figure.png") as image:
        image.load()
        assert image.format == "PNG"
    calls = break_png_writer(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError):
        draw(tmp_path / "broken" / "figure.png")
    assert len(calls) == 1
    assert list((tmp_path / "broken").iterdir()) == []


def test_importing_the_plots_package_does_not_import_matplotlib():
    code = ("import sys, nnscratch, nnscratch.plots; "
            "assert 'matplotlib' not in sys.modules, sorted(m for m in sys.modules if 'matplotlib' in m)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
