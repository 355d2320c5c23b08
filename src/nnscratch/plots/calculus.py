"""Pictures of chapter 4: tangents, surfaces, gradient fields and descent paths.

Every function takes an optional ``ax`` (draw into an existing Axes, e.g. in a
notebook grid) and an optional ``out_path`` (save a PNG), and returns the
:class:`~matplotlib.figure.Figure`. Figures are built without ``pyplot`` so
that scripts and the CLI can draw many of them without piling up global state;
in a notebook the returned Figure displays itself.

Functions of two variables follow the book's convention ``f(x) = x[0]**2 +
x[1]**2`` and are evaluated on whole grids at once (``x[0]`` and ``x[1]`` are
then arrays); a function that only accepts one point is evaluated point by
point instead.

``draw(kind, expression, out_path, **options)`` is the entry point of
``nnscratch plot``: ``kind`` is one of :data:`KINDS`, the expression a formula
string parsed safely by :func:`nnscratch.expressions.compile_expression`, and
:data:`OPTIONS` lists each kind's options with defaults and help texts.
"""

from __future__ import annotations

import inspect
import os
import warnings

import numpy as np
from matplotlib.figure import Figure

from nnscratch.calculus import DEFAULT_H, gradient_descent, numerical_diff, numerical_gradient_batch
from nnscratch.errors import ConfigError, DivergenceWarning, FunctionValueError
from nnscratch.expressions import compile_expression
from nnscratch.plots import figure_saved_if_asked

__all__ = [
    "KINDS",
    "OPTIONS",
    "DEFAULT_EXPRESSIONS",
    "draw",
    "plot_tangent",
    "plot_surface",
    "plot_gradient_field",
    "plot_descent_path",
    "plot_learning_rates",
]


def function_1(x):
    """The book's example 0.01 x^2 + 0.1 x (section 4.3.2)."""
    return 0.01 * x**2 + 0.1 * x


def function_2(x):
    """The book's example x0^2 + x1^2 (section 4.3.3)."""
    return x[0] ** 2 + x[1] ** 2


# ------------------------------------------------------------------ helpers


# ------------------------------------------------------------------ bounds
# Every size-like option is checked against a stated bound before anything is
# allocated: `--num 1000000` would otherwise ask for a 7 TiB grid and
# `--step-num 1000000000` would never end.

#: Upper bounds of the size-like options (per axis for grids).
LIMITS = {
    "num_curve": 100_000,   # points of the tangent's curve
    "num_grid": 1_000,      # grid points per axis of a surface
    "arrows": 200,          # arrows per axis of a gradient field
    "step_num": 10_000,     # gradient-descent steps (8 panels of 10,000: a few seconds)
    "levels": 200,          # contour lines
    "lrs": 8,               # panels of learning-rates
    "coordinate": 1e6,      # largest |value| of a range, a point or a starting point
}


def _bounded_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer from {low} to {high:,}, got {value!r}")
    return int(value)


def _finite(name: str, value, *, positive: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    bound = LIMITS["coordinate"]
    if not np.isfinite(number) or abs(number) > bound or (positive and not number > 0):
        need = f"a positive number up to {bound:g}" if positive else f"a number from {-bound:g} to {bound:g}"
        raise ConfigError(f"{name} must be {need}, got {value!r}")
    return number


def _range(name: str, value) -> tuple[float, float]:
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be two numbers LO,HI, got {value!r}") from None
    low, high = _finite(f"each end of {name}", low), _finite(f"each end of {name}", high)
    if not high - low > 1e-9 * max(1.0, abs(low), abs(high)):
        raise ConfigError(f"{name} must go from a lower to a higher value, got {value!r}")
    return low, high


def _point(name: str, value) -> tuple[float, float]:
    try:
        x0, x1 = value
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be two numbers X0,X1, got {value!r}") from None
    return _finite(f"each coordinate of {name}", x0), _finite(f"each coordinate of {name}", x1)


def _cmap(value) -> str:
    import matplotlib

    if not isinstance(value, str) or value not in matplotlib.colormaps:
        known = "viridis, jet, plasma, magma, Greys, coolwarm ..."
        raise ConfigError(f"cmap must be a matplotlib colormap name ({known}), got {value!r}")
    return value


def _step_h(value) -> float:
    h = _finite("h", value, positive=True)
    if h > 1.0:
        raise ConfigError(f"h must be a small positive step (at most 1), got {value!r}")
    return h


def _figure_and_axes(ax, *, projection=None, figsize=(6.4, 4.8)):
    if ax is not None:
        if projection == "3d" and getattr(ax, "name", None) != "3d":
            raise ConfigError("plot_surface needs a 3D Axes: fig.add_subplot(projection='3d')")
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot(projection=projection)


_LARGEST_DRAWN = 1e300  # larger values of f count as overflow when drawn


def _grid(x0_range, x1_range, num):
    x0 = np.linspace(float(x0_range[0]), float(x0_range[1]), int(num))
    x1 = np.linspace(float(x1_range[0]), float(x1_range[1]), int(num))
    return np.meshgrid(x0, x1)  # each (num, num)


def _values_on_grid(f, X0, X1):
    """f on every grid point: one vectorised call if f allows, else point by point."""
    points = np.stack([X0, X1])  # (2, rows, cols)
    try:
        with np.errstate(all="ignore"):
            values = np.asarray(f(points), dtype=np.float64)
        if values.shape == X0.shape:
            return values
    except Exception:  # noqa: BLE001 - any failure means "f takes one point"; retried below
        pass
    with np.errstate(all="ignore"):
        flat = [float(np.asarray(f(points[:, i, j])).reshape(())) for i, j in np.ndindex(X0.shape)]
    return np.array(flat).reshape(X0.shape)


def _gradient_on_grid(f, X0, X1, h):
    points = np.stack([X0, X1])
    with np.errstate(all="ignore"):  # overflow is reported by numerical_gradient_batch, in words
        try:
            return numerical_gradient_batch(f, points, h)
        except FunctionValueError as exc:
            if "one value per point" not in str(exc):
                raise
        except (TypeError, ValueError):  # e.g. math.exp(array): f takes one point at a time
            pass
        return numerical_gradient_batch(f, points, h, vectorized=False)


def _label(f, default):
    text = getattr(f, "text", None)
    return text if text else default


# ------------------------------------------------------------------ figures


def plot_tangent(f=function_1, x=5.0, *, x_range=(0.0, 20.0), num=200, h=DEFAULT_H, ax=None, out_path=None):
    """A function of one variable and its tangent line at ``x`` (book section 4.3.2).

    The slope is ``numerical_diff(f, x, h)``; the line is ``slope * (t - x) + f(x)``.

    Parameters
    ----------
    f : callable, default the book's ``0.01 x**2 + 0.1 x``
        Elementwise function of one variable.
    x : float, default 5.0
        Point of tangency.
    x_range : (float, float), default (0, 20)
    num : int, default 200
        Sample points on the curve.
    h : float, default 1e-4
    ax : matplotlib Axes, optional
    out_path : str or Path, optional
        Save a PNG there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    x, x_range, h = _finite("x", x), _range("x_range", x_range), _step_h(h)
    num = _bounded_int("num", num, 2, LIMITS["num_curve"])
    fig, ax = _figure_and_axes(ax)
    t = np.linspace(float(x_range[0]), float(x_range[1]), int(num))
    with np.errstate(all="ignore"):
        try:
            y = np.asarray(f(t), dtype=np.float64)
        except (TypeError, ValueError):  # f takes one number at a time (math.*)
            y = np.array([float(f(float(v))) for v in t])
    with np.errstate(all="ignore"):  # a pole is reported below in words, not as a NumPy warning
        y_at = float(np.asarray(f(float(x))))
    if not np.isfinite(y_at):
        raise FunctionValueError(f"f({x:g}) is {y_at}: there is no tangent at x = {x:g}; choose another --x")
    slope = float(numerical_diff(f, float(x), h))
    ax.plot(t, y, label=f"f(x) = {_label(f, '0.01x² + 0.1x')}")
    ax.plot(t, slope * (t - x) + y_at, "--", label=f"tangent at x={x:g} (slope {slope:.6g})")
    ax.plot([x], [y_at], "o", color="C1")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.legend()
    ax.grid(True, alpha=0.3)
    return figure_saved_if_asked(fig, out_path)


def plot_surface(f=function_2, *, x0_range=(-3.0, 3.0), x1_range=(-3.0, 3.0), num=50, cmap="viridis", ax=None, out_path=None):
    """3D surface of a function of two variables (the book's figure 4-8).

    Parameters
    ----------
    f : callable, default ``x[0]**2 + x[1]**2``
    x0_range, x1_range : (float, float), default (-3, 3)
    num : int, default 50
        Grid points per axis.
    cmap : str, default "viridis"
    ax : 3D matplotlib Axes, optional
    out_path : str or Path, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    x0_range, x1_range = _range("x0_range", x0_range), _range("x1_range", x1_range)
    num, cmap = _bounded_int("num", num, 2, LIMITS["num_grid"]), _cmap(cmap)
    fig, ax = _figure_and_axes(ax, projection="3d")
    X0, X1 = _grid(x0_range, x1_range, num)
    Z = _values_on_grid(f, X0, X1)
    if not np.isfinite(Z).any():
        raise FunctionValueError(f"f has no finite value on the grid {x0_range} x {x1_range}: "
                                 "nothing to draw (division by zero or overflow everywhere?)")
    # Where f overflows (or comes within reach of it: Matplotlib's limits take differences
    # of the values) the points are left out; Matplotlib refuses infinite limits.
    Z = np.where(np.abs(Z) <= _LARGEST_DRAWN, Z, np.nan)
    if np.isnan(Z).all():
        raise FunctionValueError(f"f has no value under {_LARGEST_DRAWN:g} on the grid {x0_range} x "
                                 f"{x1_range}: nothing to draw")
    ax.plot_surface(X0, X1, Z, cmap=cmap, linewidth=0, antialiased=True)
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.set_zlabel("f(x)")
    ax.set_title(f"f(x0, x1) = {_label(f, 'x0² + x1²')}")
    return figure_saved_if_asked(fig, out_path)


def plot_gradient_field(
    f=function_2,
    *,
    x0_range=(-2.0, 2.0),
    x1_range=(-2.0, 2.0),
    step=0.25,
    h=DEFAULT_H,
    cmap="jet",
    ax=None,
    out_path=None,
):
    """Arrows of equal length pointing downhill, coloured by the gradient's size.

    At each grid point (``np.arange(lo, hi, step)`` on both axes, as in the
    seeds) the arrow points along ``-grad f`` -- the direction in which f
    falls fastest -- and its colour is ``|grad f|`` (shown by the colorbar).
    Every arrow has the same length (``0.8 * step`` in data units) so that
    direction and magnitude are not mixed up. Where the gradient is exactly
    zero (a minimum on the grid) no arrow is drawn.

    Parameters
    ----------
    f : callable, default ``x[0]**2 + x[1]**2``
    x0_range, x1_range : (float, float), default (-2, 2)
    step : float, default 0.25
        Grid spacing.
    h : float, default 1e-4
        Step of the numerical gradient (``numerical_gradient_batch``).
    cmap : str, default "jet" (the seeds' choice)
    ax : matplotlib Axes, optional
    out_path : str or Path, optional

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]`` holds the :class:`~matplotlib.quiver.Quiver`; its
        ``U, V`` are the unit downhill directions and its array the magnitudes.
    """
    step = _finite("step", step, positive=True)
    x0_range, x1_range = _range("x0_range", x0_range), _range("x1_range", x1_range)
    h, cmap = _step_h(h), _cmap(cmap)
    arrows = max(x0_range[1] - x0_range[0], x1_range[1] - x1_range[0]) / step
    if arrows > LIMITS["arrows"]:
        raise ConfigError(f"step {step:g} gives {arrows:,.0f} arrows per axis for these ranges; "
                          f"at most {LIMITS['arrows']}: use a larger --step")
    fig, ax = _figure_and_axes(ax)
    x0 = np.arange(float(x0_range[0]), float(x0_range[1]), step)
    x1 = np.arange(float(x1_range[0]), float(x1_range[1]), step)
    X0, X1 = np.meshgrid(x0, x1)  # (len(x1), len(x0))
    grad = _gradient_on_grid(f, X0, X1, h)  # (2, len(x1), len(x0))
    magnitude = np.hypot(grad[0], grad[1])
    flat = magnitude == 0
    safe = np.where(flat, 1.0, magnitude)
    U = np.ma.masked_where(flat, -grad[0] / safe)  # unit vectors downhill
    V = np.ma.masked_where(flat, -grad[1] / safe)
    arrows = ax.quiver(
        X0, X1, U, V, magnitude,
        cmap=cmap, angles="xy", scale_units="xy", scale=1.0 / (0.8 * step), pivot="mid",
    )
    colorbar = fig.colorbar(arrows, ax=ax)
    colorbar.set_label("|∇f| (gradient magnitude)")
    ax.set_xlim(float(x0_range[0]) - step, float(x0_range[1]))
    ax.set_ylim(float(x1_range[0]) - step, float(x1_range[1]))
    ax.set_aspect("equal")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"-∇f of {_label(f, 'x0² + x1²')}: downhill, colour = |∇f|")
    return figure_saved_if_asked(fig, out_path)


def _draw_contours(ax, f, x0_range, x1_range, levels, num=120):
    X0, X1 = _grid(x0_range, x1_range, num)
    Z = _values_on_grid(f, X0, X1)
    Z = np.where(np.abs(Z) <= _LARGEST_DRAWN, Z, np.nan)  # as in plot_surface: ptp could overflow
    finite = Z[np.isfinite(Z)]
    if finite.size and np.ptp(finite) > 0:
        ax.contour(X0, X1, Z, levels=int(levels), cmap="Greys", linewidths=0.8)


def _equal_aspect(ax, x0_range, x1_range) -> None:
    """Contours of x0**2 + x1**2 are circles, not ellipses: one unit is as long on both
    axes, unless the ranges differ so much that the plot would become a sliver."""
    ratio = (x1_range[1] - x1_range[0]) / (x0_range[1] - x0_range[0])
    if 0.2 <= ratio <= 5:
        ax.set_aspect("equal", adjustable="box")


def _draw_path(ax, path, color="C0"):
    ax.plot(path[:, 0], path[:, 1], "-", color=color, linewidth=0.8, alpha=0.6)
    ax.plot(path[:, 0], path[:, 1], "o", color=color, markersize=3.5)
    ax.plot(path[0, 0], path[0, 1], "s", color="C3", markersize=6, label="start")


def _descend(f, init_x, lr, step_num, h):
    """gradient_descent's path plus a short label for any DivergenceWarning (re-emitted)."""
    with np.errstate(all="ignore"):
        start = np.asarray(f(np.asarray(init_x, dtype=np.float64)), dtype=np.float64)
    if start.size == 1 and not np.isfinite(start).all():  # else gradient_descent blamed the learning rate
        raise FunctionValueError(f"f is {float(start.reshape(()))} at the starting point "
                                 f"({init_x[0]:g}, {init_x[1]:g}): gradient descent cannot start there; "
                                 "choose another --init-x")
    # NumPy's own overflow warnings stay silent: the DivergenceWarning says it in words.
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        _, path = gradient_descent(f, np.asarray(init_x, dtype=np.float64), lr=lr, step_num=step_num, h=h, return_path=True)
    note = ""
    for w in caught:
        if issubclass(w.category, DivergenceWarning):
            note = "diverged" if "diverged" in str(w.message) else "barely moves"
        warnings.warn(w.message, stacklevel=3)  # attributed to whoever asked for the picture
    return path, note


def plot_descent_path(
    f=function_2,
    init_x=(-3.0, 4.0),
    *,
    lr=0.1,
    step_num=20,
    h=DEFAULT_H,
    x0_range=(-3.5, 3.5),
    x1_range=(-4.5, 4.5),
    levels=12,
    ax=None,
    out_path=None,
):
    """Gradient-descent path over the contour lines of f (the book's figure 4-10).

    Parameters
    ----------
    f : callable, default ``x[0]**2 + x[1]**2``
    init_x : (float, float), default (-3, 4)
    lr : float, default 0.1
    step_num : int, default 20
    h : float, default 1e-4
    x0_range, x1_range : (float, float), default (-3.5, 3.5) and (-4.5, 4.5)
    levels : int, default 12
        Number of contour lines.
    ax : matplotlib Axes, optional
    out_path : str or Path, optional

    Returns
    -------
    matplotlib.figure.Figure
        The path is the line with markers; ``fig.axes[0].lines[0].get_xydata()``
        is the sequence of points (``step_num + 1`` rows).

    Warns
    -----
    DivergenceWarning
        Passed on from :func:`nnscratch.gradient_descent`.
    """
    init_x, lr, h = _point("init_x", init_x), _finite("lr", lr, positive=True), _step_h(h)
    x0_range, x1_range = _range("x0_range", x0_range), _range("x1_range", x1_range)
    step_num = _bounded_int("step_num", step_num, 1, LIMITS["step_num"])
    levels = _bounded_int("levels", levels, 1, LIMITS["levels"])
    fig, ax = _figure_and_axes(ax)
    _draw_contours(ax, f, x0_range, x1_range, levels)
    path, note = _descend(f, init_x, lr, step_num, h)
    _draw_path(ax, path)
    ax.axhline(0, color="0.6", linestyle="--", linewidth=0.8)
    ax.axvline(0, color="0.6", linestyle="--", linewidth=0.8)
    ax.set_xlim(*map(float, x0_range))
    ax.set_ylim(*map(float, x1_range))
    _equal_aspect(ax, x0_range, x1_range)
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    title = f"gradient descent, lr={lr:g}, {step_num} steps"
    ax.set_title(title + (f" ({note})" if note else ""))
    ax.legend(loc="upper right")
    return figure_saved_if_asked(fig, out_path)


def plot_learning_rates(
    f=function_2,
    init_x=(-3.0, 4.0),
    *,
    lrs=(0.1, 10.0, 10e-10),
    step_num=100,
    h=DEFAULT_H,
    x0_range=(-3.5, 3.5),
    x1_range=(-4.5, 4.5),
    levels=12,
    out_path=None,
):
    """The same descent at several learning rates, side by side.

    The defaults are the book's three runs as the seeds typed them: 0.1
    (converges), 10.0 (diverges to about -2.6e13) and ``10e-10`` (= 1e-9,
    barely moves). Each panel's title gives the final x; a diverged run's
    points leave the frame.

    Parameters
    ----------
    f : callable, default ``x[0]**2 + x[1]**2``
    init_x : (float, float), default (-3, 4)
    lrs : sequence of float
    step_num : int, default 100
    h, x0_range, x1_range, levels
        As in :func:`plot_descent_path`.
    out_path : str or Path, optional

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per learning rate, in order.
    """
    lrs = tuple(_finite("lrs", lr, positive=True) for lr in np.atleast_1d(np.asarray(lrs, dtype=object)))
    if not lrs:
        raise ConfigError("plot_learning_rates: give at least one learning rate")
    if len(lrs) > LIMITS["lrs"]:
        raise ConfigError(f"lrs: at most {LIMITS['lrs']} learning rates (one panel each), got {len(lrs)}")
    init_x, h = _point("init_x", init_x), _step_h(h)
    x0_range, x1_range = _range("x0_range", x0_range), _range("x1_range", x1_range)
    step_num = _bounded_int("step_num", step_num, 1, LIMITS["step_num"])
    levels = _bounded_int("levels", levels, 1, LIMITS["levels"])
    fig = Figure(figsize=(4.2 * len(lrs), 4.6), layout="constrained")
    axes = fig.subplots(1, len(lrs), squeeze=False)[0]
    for ax, lr in zip(axes, lrs):
        _draw_contours(ax, f, x0_range, x1_range, levels)
        path, note = _descend(f, init_x, lr, step_num, h)
        _draw_path(ax, path)
        ax.set_xlim(*map(float, x0_range))
        ax.set_ylim(*map(float, x1_range))
        _equal_aspect(ax, x0_range, x1_range)
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
        final = ", ".join(f"{v:.3g}" for v in path[-1])
        ax.set_title(f"lr={lr:g}{' - ' + note if note else ''}\nfinal x = ({final})", fontsize=10)
    fig.suptitle(f"gradient descent from {tuple(map(float, init_x))}, {step_num} steps")
    return figure_saved_if_asked(fig, out_path)


# ------------------------------------------------------------------ CLI entry

KINDS = ("tangent", "surface", "gradient-field", "descent", "learning-rates")

DEFAULT_EXPRESSIONS = {
    "tangent": "0.01*x**2 + 0.1*x",
    "surface": "x0**2 + x1**2",
    "gradient-field": "x0**2 + x1**2",
    "descent": "x0**2 + x1**2",
    "learning-rates": "x0**2 + x1**2",
}

_PLOTTERS = {
    "tangent": plot_tangent,
    "surface": plot_surface,
    "gradient-field": plot_gradient_field,
    "descent": plot_descent_path,
    "learning-rates": plot_learning_rates,
}

_HELP = {
    "x": "point of tangency",
    "x_range": "x interval drawn, 'lo,hi'",
    "x0_range": "x0 interval, 'lo,hi'",
    "x1_range": "x1 interval, 'lo,hi'",
    "num": "grid/sample points per axis",
    "step": "grid spacing of the arrows",
    "h": "step of the numerical derivative",
    "cmap": "matplotlib colormap name",
    "init_x": "starting point, 'x0,x1'",
    "lr": "learning rate",
    "lrs": "learning rates, comma separated",
    "step_num": "number of gradient-descent steps",
    "levels": "number of contour lines",
}


def _options_of(kind):
    params = inspect.signature(_PLOTTERS[kind]).parameters
    return {
        name: (p.default, _HELP.get(name, ""))
        for name, p in params.items()
        if name not in ("f", "ax", "out_path")
    }


#: kind -> {option name -> (default, help)}; the CLI can build its flags from this.
OPTIONS = {kind: _options_of(kind) for kind in KINDS}


def _coerce(kind, name, value, default):
    """Accept CLI strings ("0.1,10", "5") for options whose defaults are numbers/tuples."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, tuple):
            return tuple(float(part) for part in value.replace(" ", "").split(",") if part)
        if isinstance(default, bool):
            return value.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise ConfigError(f"draw({kind!r}): option {name}={value!r} is not a valid value ({_HELP.get(name, '')})") from None
    return value


def draw(kind, expression=None, out_path=None, **options):
    """Draw one of the chapter-4 pictures from a formula string (``nnscratch plot``).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`: ``"tangent"``, ``"surface"``, ``"gradient-field"``,
        ``"descent"``, ``"learning-rates"``.
    expression : str, optional
        The function, parsed safely (never eval'd). ``tangent`` uses the
        variable ``x`` (default ``"0.01*x**2 + 0.1*x"``); the others ``x0`` and
        ``x1`` (default ``"x0**2 + x1**2"``). ``None`` draws the seeds' function.
    out_path : str or Path, optional
        Where to save the PNG; ``None`` only returns the figure.
    **options
        The kind's options, see :data:`OPTIONS` (e.g. ``x=5.0`` for tangent,
        ``lr=0.1, init_x=(-3, 4)`` for descent, ``lrs=(0.1, 10.0, 1e-9)`` for
        learning-rates). Strings such as ``"0.1,10"`` are converted.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ConfigError
        For an unknown kind or option.
    ExpressionError
        For a formula that is not safe arithmetic.
    """
    if kind not in _PLOTTERS:
        raise ConfigError(f"unknown plot kind {kind!r}; choose one of {', '.join(KINDS)}")
    allowed = OPTIONS[kind]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"plot {kind!r} has no option {', '.join(map(repr, unknown))}; its options are {', '.join(allowed)}"
        )
    variables = ("x",) if kind == "tangent" else ("x0", "x1")
    f = compile_expression(expression or DEFAULT_EXPRESSIONS[kind], variables=variables)
    kwargs = {name: _coerce(kind, name, value, allowed[name][0]) for name, value in options.items()}
    if out_path is not None:
        out_path = os.fspath(out_path)
    return _PLOTTERS[kind](f, out_path=out_path, **kwargs)
