"""The reference the gradient tests compare backprop with: float64 central differences.

Written independently of ``nnscratch.calculus`` so that a bug there cannot hide a
bug in a layer's backward. (pytest puts this folder on ``sys.path``.)
"""

import numpy as np


def central_difference(f, a, h=1e-5):
    """d f() / d a by moving each element of ``a`` in place (float64)."""
    grad = np.zeros_like(a)
    flat, gflat = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + h
        plus = f()
        flat[i] = orig - h
        minus = f()
        flat[i] = orig
        gflat[i] = (plus - minus) / (2 * h)
    return grad


def rel_error(analytic, numeric, floor=1e-12):
    """Largest difference relative to the largest magnitude (at least ``floor``)."""
    scale = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)), floor)
    return np.max(np.abs(analytic - numeric)) / scale
