"""nnscratch.plots.calculus: the chapter-4 pictures, checked through their artists and PNGs."""

import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.quiver import Quiver
from PIL import Image

from nnscratch.errors import ConfigError, DivergenceWarning, ExpressionError
from nnscratch.plots import calculus as plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_size=(300, 200)):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.load()
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 5  # not a blank canvas


def the_quiver(fig):
    found = [c for ax in fig.axes for c in ax.collections if isinstance(c, Quiver)]
    assert len(found) == 1
    return found[0]


def test_gradient_field_png_has_equal_downhill_arrows_coloured_by_magnitude(tmp_path):
    out = tmp_path / "gradient_field.png"
    fig = plots.plot_gradient_field(out_path=out)  # the seeds' x0**2 + x1**2 on arange(-2, 2, 0.25)
    assert_png(out)
    q = the_quiver(fig)
    X, Y = q.X, q.Y
    assert X.size == 16 * 16
    C = np.ma.asarray(q.get_array())
    hidden = np.broadcast_to(np.ma.getmaskarray(np.ma.array(q.U, mask=q.Umask)), X.shape)

    origin = (X == 0) & (Y == 0)
    assert hidden[origin].all()  # no direction at the minimum: no arrow drawn
    drawn = ~hidden
    assert drawn.sum() == 255
    gx, gy = 2 * X[drawn], 2 * Y[drawn]  # analytic gradient of x0^2 + x1^2
    u, v = np.asarray(q.U)[drawn], np.asarray(q.V)[drawn]
    np.testing.assert_allclose(np.hypot(u, v), 1.0, rtol=1e-12)  # equal lengths
    assert np.all(u * gx + v * gy < 0)  # downhill
    np.testing.assert_allclose(u, -gx / np.hypot(gx, gy), atol=1e-7)
    np.testing.assert_allclose(v, -gy / np.hypot(gx, gy), atol=1e-7)
    np.testing.assert_allclose(C.data[drawn], np.hypot(gx, gy), atol=1e-6)  # colour = |grad f|
    colorbars = [ax for ax in fig.axes if "gradient magnitude" in ax.get_ylabel()]
    assert len(colorbars) == 1


def test_gradient_field_of_a_typed_function_points_downhill(tmp_path):
    fig = plots.draw("gradient-field", "sin(x0) + x1**3/3 + x1", tmp_path / "g.png", step="0.5")
    q = the_quiver(fig)
    gx, gy = np.cos(q.X), q.Y**2 + 1
    np.testing.assert_allclose(q.U, -gx / np.hypot(gx, gy), atol=1e-7)
    np.testing.assert_allclose(q.V, -gy / np.hypot(gx, gy), atol=1e-7)
    np.testing.assert_allclose(q.get_array(), np.hypot(gx, gy), atol=1e-6)
    assert q.X.size == 8 * 8


def test_descent_path_png_follows_the_exact_iteration(tmp_path):
    out = tmp_path / "descent.png"
    fig = plots.plot_descent_path(lr=0.1, step_num=20, out_path=out)
    assert_png(out)
    path = fig.axes[0].lines[0].get_xydata()
    assert path.shape == (21, 2)
    # on x0^2 + x1^2 every step multiplies x by (1 - 2 * 0.1)
    expected = np.array([-3.0, 4.0]) * 0.8 ** np.arange(21)[:, None]
    np.testing.assert_allclose(path, expected, rtol=1e-7, atol=1e-12)
    assert fig.axes[0].collections  # the contour lines


def test_learning_rates_side_by_side_reproduce_the_seed_runs(tmp_path):
    out = tmp_path / "learning_rates.png"
    with pytest.warns(DivergenceWarning):
        fig = plots.plot_learning_rates(out_path=out)
    assert_png(out, min_size=(900, 300))
    axes = fig.axes
    assert len(axes) == 3
    titles = [ax.get_title() for ax in axes]
    assert "lr=0.1\n" in titles[0]
    assert "diverged" in titles[1] and "-2.59e+13" in titles[1]  # seed: -2.58983747e+13
    assert "barely moves" in titles[2]
    final_small = axes[2].lines[0].get_xydata()[-1]
    np.testing.assert_allclose(final_small, [-2.9999994, 3.9999992], rtol=1e-8)  # seed (lr=10e-10)


def test_tangent_touches_the_curve_with_the_book_slope(tmp_path):
    out = tmp_path / "tangent.png"
    fig = plots.plot_tangent(x=5.0, out_path=out)
    assert_png(out)
    curve, tangent = fig.axes[0].lines[:2]
    tx, ty = tangent.get_data()
    slope = (ty[-1] - ty[0]) / (tx[-1] - tx[0])
    assert slope == pytest.approx(0.02 * 5 + 0.1, rel=1e-9)  # f'(x) = 0.02x + 0.1
    assert np.interp(5.0, tx, ty) == pytest.approx(0.01 * 25 + 0.5, rel=1e-9)
    cx, cy = curve.get_data()
    np.testing.assert_allclose(cy, 0.01 * cx**2 + 0.1 * cx)


def test_surface_png_is_3d(tmp_path):
    out = tmp_path / "surface.png"
    fig = plots.draw("surface", "x0**2 - x1**2", out, num="30")
    assert_png(out)
    assert fig.axes[0].name == "3d"


def test_draw_into_a_given_axes_and_functions_of_one_point():
    fig = Figure()
    ax = fig.add_subplot()

    def one_point_only(x):  # math.* refuses arrays: the grid falls back to per point
        return math.exp(x[0]) + x[1] ** 2

    returned = plots.plot_gradient_field(one_point_only, ax=ax, step=0.5)
    assert returned is fig
    q = the_quiver(fig)
    gx, gy = np.exp(q.X), 2 * q.Y
    np.testing.assert_allclose(q.get_array(), np.hypot(gx, gy), rtol=1e-6)


def test_draw_defaults_cover_every_kind(tmp_path):
    for kind in plots.KINDS:
        if kind == "learning-rates":
            with pytest.warns(DivergenceWarning):
                fig = plots.draw(kind, out_path=tmp_path / f"{kind}.png", step_num="10")
        else:
            fig = plots.draw(kind, out_path=tmp_path / f"{kind}.png")
        assert isinstance(fig, Figure)
        assert_png(tmp_path / f"{kind}.png")


def test_draw_rejects_unknown_kinds_options_and_unsafe_text(tmp_path):
    with pytest.raises(ConfigError, match="choose one of tangent, surface"):
        plots.draw("pie-chart")
    with pytest.raises(ConfigError, match="has no option 'colour'.*its options are"):
        plots.draw("descent", colour="red")
    with pytest.raises(ConfigError, match="lr='fast'"):
        plots.draw("descent", lr="fast")
    with pytest.raises(ExpressionError, match="attribute access"):
        plots.draw("surface", "x0.__class__")
    assert not list(tmp_path.iterdir())


def test_options_strings_are_converted():
    fig = plots.draw("descent", "x0**2 + 2*x1**2", init_x="1,1", lr="0.1", step_num="5")
    path = fig.axes[0].lines[0].get_xydata()
    assert path.shape == (6, 2)
    np.testing.assert_allclose(path[1], [1 - 0.1 * 2, 1 - 0.1 * 4], rtol=1e-7)


def test_tangent_of_a_scalar_only_function():
    fig = plots.plot_tangent(math.sin, 1.0, x_range=(0.0, 3.0))
    tx, ty = fig.axes[0].lines[1].get_data()
    assert (ty[-1] - ty[0]) / (tx[-1] - tx[0]) == pytest.approx(math.cos(1.0), rel=1e-8)


def test_contours_of_a_round_bowl_are_drawn_round():
    # x0**2 + x1**2 has circles for contours: one unit must be as long on both axes.
    descent = plots.draw("descent", "x0**2 + x1**2")
    assert descent.axes[0].get_aspect() == 1.0
    panels = plots.draw("learning-rates", "x0**2 + x1**2", lrs="0.1,0.2")
    assert [ax.get_aspect() for ax in panels.axes] == [1.0, 1.0]
    # Ranges of very different lengths keep a readable (auto) aspect instead of a sliver.
    sliver = plots.plot_descent_path(x0_range=(-1, 1), x1_range=(-100, 100))
    assert sliver.axes[0].get_aspect() == "auto"
