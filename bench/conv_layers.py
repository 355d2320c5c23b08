"""Forward + backward time of each DeepConvNet layer shape, nnscratch vs PyTorch.

Batch 100, float32, one thread by default on both sides (threadpoolctl /
torch.set_num_threads). nnscratch and PyTorch run alternately, one call
each, ``--repeats`` times; prints the median milliseconds per
forward+backward of each and the median of the paired ratios nnscratch /
PyTorch; ``book`` is nnscratch's layer with the book's algorithm
(``fast = False``). The last rows time the book-layout ``im2col`` /
``col2im`` functions on the largest layer.

    .bench-venv/bin/python bench/conv_layers.py [--threads 2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def alternated_ms(fns, repeats: int):
    """Median ms of each function, called in turn ``repeats`` times, and the median paired ratio to the last."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times):
            start = time.perf_counter()
            fn()
            t.append(1000 * (time.perf_counter() - start))
    ref = np.array(times[-1])
    return [float(np.median(t)) for t in times], [float(np.median(np.array(t) / ref)) for t in times]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--batch", type=int, default=100)
    args = p.parse_args()

    import torch
    import torch.nn.functional as F
    from threadpoolctl import threadpool_limits

    from nnscratch.layers.conv import Convolution, Pooling, col2im, im2col

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = args.batch
    # (name, C, H, FN, pad) of DeepConvNet's convolutions, all 3x3 stride 1
    convs = [("conv1", 1, 28, 16, 1), ("conv2", 16, 28, 16, 1), ("conv3", 16, 14, 32, 1),
             ("conv4", 32, 14, 32, 2), ("conv5", 32, 8, 64, 1), ("conv6", 64, 8, 64, 1)]
    pools = [("pool1", 16, 28), ("pool2", 32, 16), ("pool3", 64, 8)]
    print(f"batch {n}, {args.threads} thread(s), float32, median of {args.repeats} alternated calls; "
          f"ms per forward+backward; ratio = median of the paired nnscratch / torch")
    header = f"{'layer':<8} {'input':<16} {'nnscratch':>10} {'book':>8} {'torch':>8} {'ratio':>6} {'book':>6}"
    print(header)
    print("-" * len(header))
    totals = np.zeros(3)
    with threadpool_limits(limits=args.threads):
        for name, c, h, fn, pad in convs:
            x = rng.random((n, c, h, h), dtype=np.float32)
            W = (0.1 * rng.standard_normal((fn, c, 3, 3))).astype(np.float32)
            b = np.zeros(fn, np.float32)
            fast, book = Convolution(W, b, stride=1, pad=pad), Convolution(W, b, stride=1, pad=pad)
            book.fast = False
            for layer in (fast, book):
                layer.compute_input_grad = name != "conv1"  # as in the networks
            dout = np.ones_like(fast.forward(x))
            xt = torch.from_numpy(x).requires_grad_(name != "conv1")
            Wt = torch.from_numpy(W).requires_grad_()
            bt = torch.from_numpy(b).requires_grad_()
            dt = torch.from_numpy(np.ascontiguousarray(dout))

            def theirs():
                F.conv2d(xt, Wt, bt, padding=pad).backward(dt)

            ms, ratios = alternated_ms([lambda: fast.backward(dout) if fast.forward(x) is not None else None,
                                        lambda: book.backward(dout) if book.forward(x) is not None else None,
                                        theirs], args.repeats)
            totals += ms
            print(f"{name:<8} {str((c, h, h)):<16} {ms[0]:10.2f} {ms[1]:8.2f} {ms[2]:8.2f} "
                  f"{ratios[0]:6.2f} {ratios[1]:6.2f}", flush=True)
        for name, c, h in pools:
            x = rng.random((n, c, h, h), dtype=np.float32)
            fast, book = Pooling(2, 2, stride=2), Pooling(2, 2, stride=2)
            book.fast = False
            dout = np.ones_like(fast.forward(x))
            xt = torch.from_numpy(x).requires_grad_()
            dt = torch.from_numpy(np.ascontiguousarray(dout))

            def theirs():
                F.max_pool2d(xt, 2, 2).backward(dt)

            ms, ratios = alternated_ms([lambda: fast.backward(dout) if fast.forward(x) is not None else None,
                                        lambda: book.backward(dout) if book.forward(x) is not None else None,
                                        theirs], args.repeats)
            totals += ms
            print(f"{name:<8} {str((c, h, h)):<16} {ms[0]:10.2f} {ms[1]:8.2f} {ms[2]:8.2f} "
                  f"{ratios[0]:6.2f} {ratios[1]:6.2f}", flush=True)
        print(f"{'total':<8} {'':<16} {totals[0]:10.2f} {totals[1]:8.2f} {totals[2]:8.2f} "
              f"{totals[0] / totals[2]:6.2f} {totals[1] / totals[2]:6.2f}")

        x = rng.random((n, 16, 28, 28), dtype=np.float32)
        col = im2col(x, 3, 3, 1, 1)
        (a, t), (r, _) = alternated_ms([lambda: im2col(x, 3, 3, 1, 1),
                                        lambda: F.unfold(torch.from_numpy(x), 3, padding=1)], args.repeats)
        print(f"{'im2col':<8} {str((16, 28, 28)):<16} {a:10.2f} {'':>8} {t:8.2f} {r:6.2f}   (torch: F.unfold)")
        colt = torch.from_numpy(np.ascontiguousarray(col.reshape(n, 784, 144).transpose(0, 2, 1)))
        (a, t), (r, _) = alternated_ms([lambda: col2im(col, x.shape, 3, 3, 1, 1),
                                        lambda: F.fold(colt, (28, 28), 3, padding=1)], args.repeats)
        print(f"{'col2im':<8} {str((16, 28, 28)):<16} {a:10.2f} {'':>8} {t:8.2f} {r:6.2f}   (torch: F.fold)")


if __name__ == "__main__":
    main()
