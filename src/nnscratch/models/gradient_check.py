"""gradient_check: backprop against numerical gradients, in float64 (book 5.7.3)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Model

__all__ = ["gradient_check"]


def gradient_check(model: Model, x, t, *, h: float = 1e-4, max_elements: int | None = None,
                   seed: int = 0, return_gradients: bool = False):
    """How far backprop's gradients are from central differences, per parameter.

    The model is copied into float64 (``model.astype('float64')``: same
    config, same parameter values, same dropout random state), so the
    answer measures the maths, not float32 rounding; ``model`` itself is not
    touched. Both gradients are of the training-mode loss; dropout draws the
    same masks for every evaluation. Models with their own
    ``numerical_gradient(x, t, h)`` (TwoLayerNet's is vectorised) use it;
    others are differenced element by element, so keep ``x`` small (the book
    uses 3 samples).

    Parameters
    ----------
    model : Model
    x : ndarray of shape (N, *model.input_shape)
    t : labels (N,) or one-hot (N, output_size)
    h : float
        Difference step, applied in float64.
    max_elements : int, optional
        Difference at most this many randomly chosen elements of each
        parameter (``seed`` picks them) instead of all: a quick check of a
        big network. Unvisited elements are NaN in the numerical gradients
        and left out of the comparison. Ignored by models with their own
        ``numerical_gradient``.
    seed : int
    return_gradients : bool
        Also return the two gradient dicts.

    Returns
    -------
    dict
        Parameter name -> ``max |backprop - numerical|`` over that
        parameter's elements, divided by its largest gradient (of either
        kind) or by 1/1000 of the model's largest gradient if that is larger
        (0.0 where all gradients are zero). Around 1e-7 or less means backprop is right; above 1e-4
        something is wrong (or ``x`` sits on a ReLU kink). With
        ``return_gradients=True``: ``(differences, backprop, numerical)``.
    """
    if not isinstance(model, Model):
        raise ConfigError(f"gradient_check needs an nnscratch model, got {type(model).__name__}")
    h = float(h)
    if not h > 0:
        raise ConfigError(f"h must be positive, got {h!r}")
    if max_elements is not None and int(max_elements) < 1:
        raise ConfigError(f"max_elements must be a positive integer or None, got {max_elements!r}")
    wide = model.astype("float64")
    x, t = wide._check_xt(x, t)
    rng_state = wide.get_rng_state()  # the same dropout masks for every evaluation

    wide.set_rng_state(rng_state)
    backprop = wide.gradient(x, t)
    wide.set_rng_state(rng_state)  # numerical_gradient keeps the masks of the state it starts from
    if type(wide).numerical_gradient is Model.numerical_gradient:  # the generic loop: can sample
        numerical = wide.numerical_gradient(x, t, h=h, max_elements=max_elements, seed=seed)
    else:
        numerical = wide.numerical_gradient(x, t, h=h)

    # A parameter with (almost) no effect on the loss, such as a bias right before batch norm,
    # compares rounding noise with rounding noise: judge it against the model's gradients.
    floor = 1e-3 * max(float(np.max(np.abs(g))) for g in backprop.values())
    differences = {}
    for name in wide.params:
        visited = ~np.isnan(numerical[name])
        a, n = backprop[name][visited], numerical[name][visited]
        scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(n))), floor)
        differences[name] = float(np.max(np.abs(a - n)) / scale) if scale > 0 else 0.0
    if return_gradients:
        return differences, backprop, numerical
    return differences
