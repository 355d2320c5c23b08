"""Numerical differentiation and gradient descent (chapter 4 of the book).

The book's names and meanings are kept:

* ``numerical_diff(f, x)`` -- central difference ``(f(x+h) - f(x-h)) / 2h``.
* ``numerical_gradient(f, x)`` -- the gradient of a scalar function at an
  array of any shape.  ``x`` is perturbed *in place*, one element at a time,
  and restored exactly, so the book's idiom
  ``numerical_gradient(lambda W: net.loss(x, t), net.W)`` works: ``f`` ignores
  its argument, but ``net.W`` *is* ``x``, so every perturbation reaches the
  network through aliasing.
* ``gradient_descent(f, init_x, lr, step_num)`` -- returns the final ``x``.

``numerical_gradient_batch(f, points)`` evaluates the gradient at many points
with ``2 * D + 1`` calls of ``f`` on the whole batch (the seeds'
``numerical_grad_multi``, without a Python loop per point).

The traps a learner falls into are caught with messages that teach: an ``f``
that ignores ``x`` (:class:`~nnscratch.errors.GradientWarning`), an integer
``x`` (:class:`~nnscratch.errors.GradientInputError`), an ``h`` so small that
``x + h == x`` (:class:`~nnscratch.errors.StepSizeError`), ``f`` returning a
non-scalar, NaN or inf (:class:`~nnscratch.errors.FunctionValueError`), and a
learning rate that makes the descent explode or barely move
(:class:`~nnscratch.errors.DivergenceWarning`).  ``docs/numerical-differentiation.md``
explains the choice of ``h``.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from nnscratch.errors import (
    ConfigError,
    DivergenceWarning,
    FunctionValueError,
    GradientInputError,
    GradientWarning,
    StepSizeError,
)

__all__ = [
    "numerical_diff",
    "numerical_gradient",
    "numerical_gradient_batch",
    "gradient_descent",
]

DEFAULT_H = 1e-4

# gradient_descent reports a rate that "barely moves" when x travelled less
# than this fraction of its own size (or of 1 near the origin) ...
_BARELY_MOVED_RELATIVE = 1e-4
# ... while the gradient is still clearly non-zero (numerical noise of the
# central difference with h = 1e-4 is far below this).
_NONZERO_GRADIENT_NORM = 1e-6
# ... and "diverged" when f ended higher than it started by more than this
# (relative to max(|f(init_x)|, 1)), or when x or f became NaN/inf.
_GREW_RELATIVE = 1e-9


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------


def _check_callable(f, func_name: str) -> None:
    if not callable(f):
        raise GradientInputError(
            f"{func_name}: f must be a function of x, got {type(f).__name__} {f!r}"
        )


def _check_h(h, func_name: str) -> float:
    if isinstance(h, bool) or not isinstance(h, numbers.Real) or not np.isfinite(h) or h <= 0:
        raise StepSizeError(
            f"{func_name}: h must be a positive finite number (the book uses 1e-4), got {h!r}"
        )
    return float(h)


def _check_step_resolves(x: np.ndarray, h: float, func_name: str, arg_name: str = "x") -> None:
    """Raise StepSizeError where x + h or x - h rounds back to x in x's dtype."""
    if x.size == 0:
        return
    if not np.isfinite(x).all():
        bad = np.unravel_index(int(np.argmax(~np.isfinite(x))), x.shape) if x.ndim else ()
        where = f"{arg_name}[{', '.join(map(str, bad))}]" if x.ndim else arg_name
        raise GradientInputError(f"{func_name}: {where} is {x[bad].item()}; a derivative needs a finite point")
    # x + h in x's own dtype: that is the value numerical_gradient writes into x.
    with np.errstate(over="ignore", invalid="ignore"):
        plus = (x + h).astype(x.dtype, copy=False)
        minus = (x - h).astype(x.dtype, copy=False)
    lost = (plus == x) | (minus == x)
    if not lost.any():
        return
    position = np.unravel_index(int(np.argmax(lost)), x.shape) if x.ndim else ()
    value = x[position].item()
    where = f"{arg_name}[{', '.join(map(str, position))}]" if x.ndim else arg_name
    spacing = np.spacing(np.abs(x[position])) if np.isfinite(value) else float("nan")
    if np.dtype(x.dtype).itemsize < 8 and np.asarray(h, dtype=x.dtype) == 0:
        why = f"h={h!r} is 0 in {x.dtype} (the smallest positive {x.dtype} is {np.finfo(x.dtype).smallest_subnormal:.3g})"
    else:
        why = (
            f"{where} = {value!r} and the spacing of {x.dtype} numbers there is {spacing:.3g}, "
            f"so {where} + h rounds back to {value!r}"
        )
    raise StepSizeError(
        f"{func_name}: h={h!r} is too small for the given {arg_name}: {why}. "
        "f(x+h) - f(x-h) would then be 0 (or pure rounding noise) and the derivative "
        "meaningless -- this is the book's 'bad example' h = 1e-50. Use h around 1e-4 "
        "(see docs/numerical-differentiation.md)."
    )


def _writable_float_array(x, func_name: str) -> np.ndarray:
    """Return x itself when it is a float ndarray (so aliasing works), else explain."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "iub":
            raise GradientInputError(
                f"{func_name}: x has dtype {x.dtype}, but it must be a floating-point array. "
                "numerical_gradient writes x[i] = x[i] + h into x itself; in an integer array "
                "3 + 0.0001 is stored as 3 again, so every derivative would silently come out 0 "
                "or wrong. Convert first, e.g. x = x.astype(np.float64) -- and if f reads the "
                "array through another name (net.W), make that name refer to the converted "
                "array too (net.W = net.W.astype(np.float64)), then pass net.W."
            )
        if x.dtype.kind != "f":
            raise GradientInputError(
                f"{func_name}: x must be a real floating-point array, got dtype {x.dtype}"
            )
        if not x.flags.writeable:
            raise GradientInputError(
                f"{func_name}: x (shape {x.shape}) is read-only, but numerical_gradient "
                "perturbs x in place (and restores it); pass a writable array, e.g. x.copy() "
                "-- or, if f reads the array through another name, make that array writable."
            )
        return x
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GradientInputError(
            f"{func_name}: x must be a float array (or numbers), got {type(x).__name__}: {exc}"
        ) from None
    return arr


def _scalar_value(value, func_name: str) -> float:
    """The float value of f's result, or FunctionValueError if it is not a real scalar."""
    if isinstance(value, float):
        return value
    arr = np.asarray(value)
    if arr.size != 1:
        raise FunctionValueError(
            f"{func_name}: f must return a scalar (a loss, for instance), but it returned "
            f"an array of shape {arr.shape}. numerical_gradient differentiates a scalar "
            "function of many variables; reduce the output (e.g. np.sum) or, for an "
            "elementwise function, use numerical_diff."
        )
    if arr.dtype.kind not in "iuf" and arr.dtype.kind != "b":
        raise FunctionValueError(
            f"{func_name}: f must return a real number, got {arr.dtype} value {value!r}"
        )
    return float(arr.reshape(()))


def _raise_non_finite(func_name: str, x: np.ndarray, plus, minus, base, h) -> None:
    if not np.isfinite(base):
        raise FunctionValueError(f"{func_name}: f(x) returned {base} at the given x (before any perturbation)")
    bad = ~(np.isfinite(plus) & np.isfinite(minus))
    k = int(np.argmax(bad))
    position = np.unravel_index(k, x.shape) if x.ndim else ()
    side, val = ("+", plus[k]) if not np.isfinite(plus[k]) else ("-", minus[k])
    where = f"x[{', '.join(map(str, position))}]" if x.ndim else "x"
    raise FunctionValueError(
        f"{func_name}: f returned {val} when {where} = {x[position].item()!r} was moved by {side}{h}: "
        "a derivative needs finite values on both sides. Check f for overflow, log(0), "
        "division by zero or a point outside its domain."
    )


# --------------------------------------------------------------------------
# the core: perturb every element of x in place
# --------------------------------------------------------------------------


def _perturb_each_element(f, x: np.ndarray, h: float, func_name: str, *, strict: bool = True):
    """Central differences for every element of x, perturbing x in place.

    Returns ``(grad, f(x), unchanged)`` where ``unchanged`` says that no
    perturbation changed f's value at all.  With ``strict`` a non-finite value
    raises FunctionValueError; otherwise it propagates into ``grad``.
    """
    base = _scalar_value(f(x), func_name)
    plus = np.empty(x.size, dtype=np.float64)
    minus = np.empty(x.size, dtype=np.float64)
    # np.ndindex gives tuple indices, which write through any view (non-contiguous,
    # transposed, a slice of a network's weights) -- reshape(-1) could silently copy.
    for k, idx in enumerate(np.ndindex(x.shape)):
        saved = x[idx]  # a scalar copy of the element, written back bit for bit below
        try:
            x[idx] = saved + h
            plus[k] = _scalar_value(f(x), func_name)
            x[idx] = saved - h
            minus[k] = _scalar_value(f(x), func_name)
        finally:
            x[idx] = saved
    if strict and not (np.isfinite(base) and np.isfinite(plus).all() and np.isfinite(minus).all()):
        _raise_non_finite(func_name, x, plus, minus, base, h)
    with np.errstate(invalid="ignore", over="ignore"):
        grad = ((plus - minus) / (2 * h)).reshape(x.shape).astype(x.dtype, copy=False)
    unchanged = x.size > 0 and bool((plus == base).all() and (minus == base).all())
    return grad, base, unchanged


# Below this, an h that x + h still resolves may be too small for f's value to notice.
_SUSPICIOUSLY_SMALL_H = 1e-10


def _ignored_argument_message(func_name: str, value: float, shape, h: float) -> str:
    message = (
        f"{func_name}: f returned the same value ({value!r}) for every perturbation of x "
        f"(shape {tuple(shape)}), so the gradient is all zeros. f probably ignores its "
        "argument and reads some other array -- e.g. f = lambda W: net.loss(x, t) with an x "
        "that is not net.W itself. numerical_gradient perturbs x in place, and f only sees "
        "the change when x IS the array f reads: pass net.W (the very same object), not a "
        "copy or a new array. If f really is constant, ignore this warning."
    )
    if h < _SUSPICIOUSLY_SMALL_H:
        message += (
            f" Or h={h!r} is too small: x + h differs from x, but f's value rounds to the same "
            "number on both sides (the book's 'bad example'); use h around 1e-4."
        )
    return message


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def _number(value) -> str:
    """A value for a message: 5.0 rather than np.float64(5.0), long arrays cut short."""
    a = np.asarray(value)
    return repr(a.item()) if a.ndim == 0 else np.array2string(a, threshold=6, precision=6)


def numerical_diff(f, x, h: float = DEFAULT_H):
    """Derivative of a one-variable function by the central difference.

    Parameters
    ----------
    f : callable
        ``f(x)`` returning a number (or, for an array ``x``, an array of the
        same shape when f works elementwise, like the book's ``function_1``).
    x : float or ndarray
        Where to differentiate. An array gives the derivative at each element.
    h : float, default 1e-4
        Half the width of the difference. ``x + h`` must differ from ``x``.

    Returns
    -------
    float or ndarray
        ``(f(x + h) - f(x - h)) / (2 * h)``.

    Raises
    ------
    StepSizeError
        If ``x + h == x`` for the given values (e.g. h=1e-50).
    FunctionValueError
        If f returns NaN or inf.

    Examples
    --------
    >>> numerical_diff(lambda x: 0.01 * x**2 + 0.1 * x, 5)
    0.1999999999990898
    """
    _check_callable(f, "numerical_diff")
    h = _check_h(h, "numerical_diff")
    xa = np.asarray(x)
    if xa.dtype.kind not in "iuf" or xa.dtype.kind == "b":
        raise GradientInputError(f"numerical_diff: x must be a real number or array, got {x!r}")
    xf = xa if xa.dtype.kind == "f" else xa.astype(np.float64)
    _check_step_resolves(xf, h, "numerical_diff")
    if isinstance(x, (list, tuple)):
        x = xf
    # The book's arithmetic exactly, so its printed values come out bit for bit.
    # Overflow or inf - inf is reported just below, once, in words: no NumPy warnings first.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        fxh1 = f(x + h)
        fxh2 = f(x - h)
        result = (fxh1 - fxh2) / (2 * h)
    arr = np.asarray(result)
    if arr.dtype.kind not in "iuf":
        raise FunctionValueError(f"numerical_diff: f must return real numbers, got {arr.dtype}")
    if not np.isfinite(arr).all():
        raise FunctionValueError(
            f"numerical_diff: f returned a non-finite value near x={x!r} "
            f"(f(x+h)={_number(fxh1)}, f(x-h)={_number(fxh2)}); check f for overflow, log(0) or "
            "division by zero there."
        )
    return result


def numerical_gradient(f, x, h: float = DEFAULT_H):
    """Gradient of a scalar function at ``x`` by central differences.

    Each element of ``x`` is moved to ``x[i] + h`` and ``x[i] - h`` *in
    place*, ``f(x)`` is called, and the element is written back exactly as it
    was. Because ``x`` itself is perturbed, the book's idiom works::

        dW = numerical_gradient(lambda W: net.loss(x, t), net.W)

    ``f`` ignores ``W`` but reads ``net.W``, which is the array being
    perturbed. Passing any *other* array makes every derivative 0; that is
    detected and reported with a :class:`GradientWarning`.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``, a scalar function (e.g. a loss).
    x : ndarray of float, any shape
        The point. It is modified during the call and restored bit for bit.
        Lists and numbers are converted to a new float64 array.
    h : float, default 1e-4

    Returns
    -------
    grad : ndarray, same shape and dtype as x
        ``grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2h)``.

    Raises
    ------
    GradientInputError
        For an integer, complex or read-only ``x``.
    StepSizeError
        If ``x + h == x`` for some element (e.g. h=1e-50).
    FunctionValueError
        If f returns a non-scalar, NaN or inf.

    Warns
    -----
    GradientWarning
        If no perturbation changes f's value (f ignores x).

    Notes
    -----
    Costs ``2 * x.size + 1`` calls of f (the extra call, at x itself, is what
    detects an f that ignores x).

    Examples
    --------
    >>> numerical_gradient(lambda x: x[0]**2 + x[1]**2, np.array([3.0, 4.0]))
    array([6., 8.])
    """
    _check_callable(f, "numerical_gradient")
    h = _check_h(h, "numerical_gradient")
    x = _writable_float_array(x, "numerical_gradient")
    _check_step_resolves(x, h, "numerical_gradient")
    grad, base, unchanged = _perturb_each_element(f, x, h, "numerical_gradient")
    if unchanged:
        warnings.warn(_ignored_argument_message("numerical_gradient", base, x.shape, h), GradientWarning, stacklevel=2)
    return grad


def numerical_gradient_batch(f, points, h: float = DEFAULT_H, *, vectorized: bool = True):
    """Gradient of a scalar function at many points at once.

    Convention: **axis 0 indexes the variables, the other axes index the
    points**, so ``points[0]`` holds every point's x0. This is the book's
    ``function_2(x) = x[0]**2 + x[1]**2`` convention, which then works on a
    whole grid unchanged::

        X0, X1 = np.meshgrid(np.arange(-2, 2, 0.25), np.arange(-2, 2, 0.25))
        grad = numerical_gradient_batch(function_2, np.stack([X0, X1]))  # (2, 16, 16)

    (The seeds' ``numerical_grad_multi(f, X)`` takes one point per *row*,
    shape (N, 2): pass ``X.T`` here.)

    Parameters
    ----------
    f : callable
        ``f(x)`` with ``x`` of shape ``(D, *batch)``, returning an array of
        shape ``batch`` (one value per point). With ``vectorized=False`` f is
        called once per point with a 1-D array of shape ``(D,)`` and returns
        a scalar, like ``numerical_gradient``.
    points : array_like of shape (D, *batch)
        Not modified (a float64 working copy is perturbed).
    h : float, default 1e-4
    vectorized : bool, default True
        True: ``2 * D + 1`` calls of f on the whole batch. False: the seeds'
        loop, one ``numerical_gradient`` per point (for an f that can only
        take one point).

    Returns
    -------
    grad : ndarray of shape (D, *batch)
        ``grad[:, j]`` is the gradient at ``points[:, j]``.

    Raises
    ------
    FunctionValueError
        If f does not return one finite value per point; the message suggests
        ``vectorized=False`` when f reduced over the batch.
    StepSizeError
        If ``x + h == x`` for some coordinate.

    Warns
    -----
    GradientWarning
        If f's values did not change under any perturbation.
    """
    func_name = "numerical_gradient_batch"
    _check_callable(f, func_name)
    h = _check_h(h, func_name)
    pts = np.asarray(points)
    if pts.dtype.kind not in "iuf" or pts.dtype.kind == "b":
        raise GradientInputError(f"{func_name}: points must be real numbers, got dtype {pts.dtype}")
    if pts.ndim < 1 or pts.shape[0] == 0:
        raise GradientInputError(
            f"{func_name}: points must have shape (D, *batch) with D >= 1 variables on axis 0, "
            f"got shape {pts.shape}"
        )
    work = np.array(pts, dtype=pts.dtype if pts.dtype.kind == "f" else np.float64, copy=True)
    _check_step_resolves(work, h, func_name, arg_name="points")
    n_vars, batch_shape = work.shape[0], work.shape[1:]

    if not vectorized:
        grad = np.empty_like(work)
        all_unchanged = True
        base = None
        for j in np.ndindex(batch_shape):
            point = work[(slice(None),) + j].copy()  # (D,)
            g, base, unchanged = _perturb_each_element(f, point, h, func_name)
            grad[(slice(None),) + j] = g
            all_unchanged &= unchanged
        if all_unchanged and base is not None:
            warnings.warn(_ignored_argument_message(func_name, base, work.shape, h), GradientWarning, stacklevel=2)
        return grad

    def batch_values(value, what):
        arr = np.asarray(value)
        if arr.shape != batch_shape:
            hint = (
                " It looks like f reduced over the whole batch (np.sum, np.linalg.norm, "
                "max ...): reduce over axis 0 only (np.sum(x**2, axis=0)), or pass "
                "vectorized=False to call f once per point."
                if arr.ndim < len(batch_shape) or arr.size == 1
                else ""
            )
            raise FunctionValueError(
                f"{func_name}: f({what}) must return one value per point, shape {batch_shape}, "
                f"but returned shape {arr.shape} for points of shape {work.shape} "
                f"(axis 0 = the {n_vars} variables).{hint}"
            )
        if arr.dtype.kind not in "iufb":
            raise FunctionValueError(f"{func_name}: f must return real numbers, got {arr.dtype}")
        if not np.isfinite(arr).all():
            j = np.unravel_index(int(np.argmax(~np.isfinite(arr))), batch_shape) if batch_shape else ()
            raise FunctionValueError(
                f"{func_name}: f({what}) returned {arr[j]} at the point "
                f"{work[(slice(None),) + j].tolist()}; a derivative needs finite values on both sides."
            )
        return arr.astype(np.float64, copy=False)

    base = batch_values(f(work), "points")
    grad = np.empty_like(work)
    unchanged = True
    for d in range(n_vars):
        saved = work[d].copy()
        try:
            work[d] = saved + h
            plus = batch_values(f(work), f"points with x{d} + h")
            work[d] = saved - h
            minus = batch_values(f(work), f"points with x{d} - h")
        finally:
            work[d] = saved
        grad[d] = (plus - minus) / (2 * h)
        unchanged &= bool((plus == base).all() and (minus == base).all())
    if unchanged and work.size > 0:
        first = base.reshape(-1)[0] if base.size else float("nan")
        warnings.warn(_ignored_argument_message(func_name, first, work.shape, h), GradientWarning, stacklevel=2)
    return grad


def _check_learning_rate(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not np.isfinite(lr) or lr <= 0:
        raise ConfigError(f"gradient_descent: lr (the learning rate) must be a positive finite number, got {lr!r}")
    return float(lr)


def gradient_descent(
    f,
    init_x,
    lr: float = 0.01,
    step_num: int = 100,
    *,
    return_path: bool = False,
    in_place: bool = False,
    h: float = DEFAULT_H,
):
    """Minimise ``f`` by ``x -= lr * numerical_gradient(f, x)``, ``step_num`` times.

    Parameters
    ----------
    f : callable
        Scalar function ``f(x) -> float``.
    init_x : array_like of float, any shape
        Starting point. Left untouched unless ``in_place=True`` (the book's
        version updates ``init_x`` itself, which is what the aliasing idiom
        ``gradient_descent(lambda W: net.loss(x, t), net.W, in_place=True)``
        needs).
    lr : float, default 0.01
        Learning rate.
    step_num : int, default 100
    return_path : bool, default False
        Also return every visited point.
    in_place : bool, default False
        Update ``init_x`` itself (it must then be a writable float array).
    h : float, default 1e-4
        Step of the numerical gradient.

    Returns
    -------
    x : ndarray, shape of init_x
        The final point (like the book).
    path : ndarray of shape (steps + 1, *init_x.shape)
        Only with ``return_path``: ``path[0]`` is the start, ``path[-1]`` is
        ``x``. ``steps == step_num`` unless x became NaN/inf, where the descent
        stops early.

    Warns
    -----
    DivergenceWarning
        If the descent diverged (f grew, or x became non-finite) -- the value
        is still returned, as the book prints it -- or if the rate is so small
        that x barely moved while the gradient is clearly non-zero.
    GradientWarning
        If f ignores x (its value does not change under perturbation).

    Examples
    --------
    >>> gradient_descent(lambda x: x[0]**2 + x[1]**2, np.array([-3.0, 4.0]), lr=0.1)
    array([-6.11110793e-10,  8.14814391e-10])
    """
    func_name = "gradient_descent"
    _check_callable(f, func_name)
    h = _check_h(h, func_name)
    lr = _check_learning_rate(lr)
    if isinstance(step_num, bool) or not isinstance(step_num, numbers.Integral) or step_num < 0:
        raise ConfigError(f"{func_name}: step_num must be a non-negative integer, got {step_num!r}")
    step_num = int(step_num)

    if in_place:
        x = _writable_float_array(init_x, func_name)
        if x is not init_x:
            raise GradientInputError(
                f"{func_name}: in_place=True needs init_x to be a float ndarray to update, "
                f"got {type(init_x).__name__}"
            )
    else:
        start = np.asarray(init_x)
        if start.dtype.kind not in "iuf" or start.dtype.kind == "b":
            raise GradientInputError(f"{func_name}: init_x must be real numbers, got dtype {start.dtype}")
        # A private copy: converting integers here cannot mislead, nobody else holds it.
        x = np.array(start, dtype=start.dtype if start.dtype.kind == "f" else np.float64, copy=True)
    _check_step_resolves(x, h, func_name, arg_name="init_x")

    x_start = x.copy()
    path = [x_start] if return_path else None
    f_start = None
    grad = np.zeros_like(x)
    steps = 0
    for step in range(step_num):
        grad, base, unchanged = _perturb_each_element(f, x, h, func_name, strict=False)
        if step == 0:
            f_start = base
            if unchanged:
                warnings.warn(_ignored_argument_message(func_name, base, x.shape, h), GradientWarning, stacklevel=2)
        with np.errstate(over="ignore", invalid="ignore"):
            x -= lr * grad
        steps += 1
        if return_path:
            path.append(x.copy())
        if not np.isfinite(x).all():
            break

    if step_num > 0:
        _diagnose_descent(f, x_start, x, f_start, grad, lr, steps, h)

    if return_path:
        return x, np.stack(path)
    return x


def _diagnose_descent(f, x_start, x, f_start, last_grad, lr, steps, h) -> None:
    with np.errstate(all="ignore"):
        f_end = f(x) if np.isfinite(x).all() else float("nan")
    try:
        f_end = float(np.asarray(f_end).reshape(()))
    except (TypeError, ValueError):
        f_end = float("nan")
    finite = np.isfinite(x).all() and np.isfinite(f_end) and np.isfinite(f_start)
    size = float(np.max(np.abs(x))) if x.size and np.isfinite(x).all() else float("inf")

    # A tiny tolerance keeps rounding noise at a minimum from being called divergence.
    if not finite or f_end - f_start > _GREW_RELATIVE * max(abs(f_start), 1.0):
        message = (
            f"gradient_descent diverged with lr={lr!r}: after {steps} steps f went from "
            f"{f_start:.6g} to {f_end:.6g} and the largest |x| is {size:.3g}. The learning rate "
            "is too large for this function: each step overshoots the minimum by more than it "
            "gains. Try a learning rate about 10 times smaller."
        )
        if np.isfinite(x).all() and x.size:
            frozen = ((x + h) == x) | ((x - h) == x)
            if frozen.any():
                message += (
                    f" (x also stopped changing: at |x| ~ {size:.3g} the spacing of floats exceeds "
                    f"h={h!r}, so x + h == x, the numerical gradient is 0 and the returned value is "
                    "meaningless.)"
                )
        warnings.warn(message, DivergenceWarning, stacklevel=3)
        return

    moved = float(np.linalg.norm((x - x_start).ravel()))
    scale = max(float(np.linalg.norm(x_start.ravel())), 1.0)
    grad_norm = float(np.linalg.norm(np.asarray(last_grad, dtype=np.float64).ravel()))
    if moved < _BARELY_MOVED_RELATIVE * scale and grad_norm > _NONZERO_GRADIENT_NORM:
        warnings.warn(
            f"gradient_descent barely moved with lr={lr!r}: after {steps} steps x changed by "
            f"{moved:.3g} (relative {moved / scale:.1e}) and f only from {f_start:.10g} to "
            f"{f_end:.10g}, although the gradient norm is still {grad_norm:.3g}. The learning "
            "rate is too small to make progress: try a larger one (e.g. 10 to 1000 times) "
            "or many more steps.",
            DivergenceWarning,
            stacklevel=3,
        )
