"""Winograd F(2x2, 3x3) against nnscratch's im2col convolution, forward, on DeepConvNet's shapes.

Winograd's minimal filtering (Lavin & Gray 2015) computes each 2x2 output
tile of a 3x3 convolution from a 4x4 input tile with 16 multiplications per
(input channel, filter) pair instead of 36: 2.25x fewer than im2col's
product. In NumPy the saving has to survive the input transform (16
elementwise passes), 16 small batched products with only C as their inner
dimension, and the output transform. This script measures whether it does:
the same inputs, whole batch and in chunks of a few images, alternated with
``Convolution.forward`` (one thread). Not used by the package: it stays
here as the record of the experiment.

    .bench-venv/bin/python bench/winograd.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from nnscratch.layers.conv import Convolution, _pad_nhwc

G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)


def winograd_filters(W):
    """(FN, C, 3, 3) -> U = G g G^T as 16 matrices (16, C, FN)."""
    U = np.einsum("ik,fckl,jl->ijcf", G, W, G)
    return np.ascontiguousarray(U.reshape(16, W.shape[1], W.shape[0]), dtype=W.dtype)


def winograd_forward(xp, U, oh, ow):
    """Padded NHWC input (N, Hp, Wp, C), U from winograd_filters -> (N, OH, OW, FN); OH, OW even."""
    n, _, _, c = xp.shape
    fn = U.shape[2]
    th, tw = oh // 2, ow // 2
    x0, x1, x2, x3 = (xp[:, i:i + 2 * th:2] for i in range(4))           # tile rows, B^T d
    V = np.empty((16, n, th, tw, c), xp.dtype)
    for a, r in enumerate((x0 - x2, x1 + x2, x2 - x1, x1 - x3)):
        c0, c1, c2, c3 = (r[:, :, j:j + 2 * tw:2] for j in range(4))      # tile columns, (B^T d) B
        np.subtract(c0, c2, out=V[4 * a])
        np.add(c1, c2, out=V[4 * a + 1])
        np.subtract(c2, c1, out=V[4 * a + 2])
        np.subtract(c1, c3, out=V[4 * a + 3])
    M = np.matmul(V.reshape(16, -1, c), U).reshape(4, 4, n, th, tw, fn)  # 16 products
    out = np.empty((n, th, 2, tw, 2, fn), xp.dtype)
    for r, P in enumerate((M[0] + M[1] + M[2], M[1] - M[2] - M[3])):     # A^T m A
        np.add(P[0] + P[1], P[2], out=out[:, :, r, :, 0])
        np.subtract(P[1] - P[2], P[3], out=out[:, :, r, :, 1])
    return out.reshape(n, oh, ow, fn)


def block_ms(fn, iters=5):
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return 1000 * (time.perf_counter() - start) / iters


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--chunk", type=int, default=10, help="images per chunk for the chunked Winograd")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print(f"batch 100, float32, 1 thread, forward only, ms (median of {args.rounds} alternated blocks)")
    print(f"{'layer':<7} {'(C, H, FN, pad)':<17} {'im2col':>7} {'winograd':>9} {'chunked':>8} {'max rel err':>12}")
    shapes = [("conv2", 16, 28, 16, 1), ("conv3", 16, 14, 32, 1), ("conv4", 32, 14, 32, 2),
              ("conv5", 32, 8, 64, 1), ("conv6", 64, 8, 64, 1)]
    with threadpool_limits(limits=1):
        for name, c, h, fn, pad in shapes:
            W = rng.standard_normal((fn, c, 3, 3)).astype(np.float32)
            layer = Convolution(W, np.zeros(fn, np.float32), 1, pad)
            x = rng.random((100, h, h, c), dtype=np.float32).transpose(0, 3, 1, 2)
            oh = h + 2 * pad - 2
            U = winograd_filters(W)

            def whole():
                return winograd_forward(_pad_nhwc(x.transpose(0, 2, 3, 1), pad), U, oh, oh)

            def chunked():
                xp = _pad_nhwc(x.transpose(0, 2, 3, 1), pad)
                out = np.empty((100, oh, oh, fn), np.float32)
                for s in range(0, 100, args.chunk):
                    out[s:s + args.chunk] = winograd_forward(xp[s:s + args.chunk], U, oh, oh)
                return out

            ref = np.array(layer.forward(x))
            err = np.abs(whole().transpose(0, 3, 1, 2) - ref).max() / np.abs(ref).max()
            times = {"im2col": [], "winograd": [], "chunked": []}
            for _ in range(args.rounds):
                for key, fn_ in (("im2col", lambda: layer.forward(x)), ("winograd", whole), ("chunked", chunked)):
                    times[key].append(block_ms(fn_))
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{name:<7} {str((c, h, fn, pad)):<17} {med['im2col']:7.2f} {med['winograd']:9.2f} "
                  f"{med['chunked']:8.2f} {err:12.1e}", flush=True)


if __name__ == "__main__":
    main()
