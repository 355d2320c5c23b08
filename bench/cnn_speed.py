"""Time per training step of SimpleConvNet and DeepConvNet, nnscratch vs PyTorch, and peak memory.

Same architecture, batch 100, Adam, float32, the same thread count on both
sides (threadpoolctl for NumPy's BLAS, torch.set_num_threads for PyTorch).

Speed: nnscratch and PyTorch run **alternately in one process**, block after
block, so that load from other processes hits both alike; each pair of
blocks gives a ratio, and the script reports the median ratio (and the
median seconds per epoch of 600 steps). ``--book`` adds nnscratch with the
book's convolution (``Convolution.fast = False``) to the rotation, the
reference the fast path is measured against. ``--threads 2`` also spreads
nnscratch's convolution chunks over two threads (``set_num_threads``, one
BLAS thread each) unless ``--blas-threads`` says otherwise.

Memory: each side runs two steps in a fresh subprocess that reports its peak
resident set (and for nnscratch the tracemalloc peak from building the
network through two steps).

Run with the benchmark environment (torch is never a package dependency)::

    .bench-venv/bin/python bench/cnn_speed.py                  # 1 thread
    .bench-venv/bin/python bench/cnn_speed.py --threads 2
    .bench-venv/bin/python bench/cnn_speed.py --rounds 9 --iters 10 --book
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = "--memory-child"


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make_batch():
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.random((100, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 100)


def nnscratch_step(model_name: str, book: bool = False):
    from nnscratch.layers.conv import Convolution
    from nnscratch.models.conv import DeepConvNet, SimpleConvNet
    from nnscratch.optimizers import Adam

    x, t = make_batch()
    net = {"SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet}[model_name](seed=0)
    for layer in net.layers.values():
        if isinstance(layer, Convolution):
            layer.fast = not book
    opt = Adam(lr=0.001)

    def step():
        _, grads = net.loss_and_gradient(x, t)
        opt.update(net.params, grads)

    return step


def torch_step(model_name: str):
    import torch
    from torch import nn

    torch.manual_seed(0)
    if model_name == "SimpleConvNet":
        net = nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                            nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10))
    else:
        def block(cin, cout, pad2=1):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=pad2),
                    nn.ReLU(), nn.MaxPool2d(2, 2)]
        net = nn.Sequential(*block(1, 16), *block(16, 32, pad2=2), *block(32, 64), nn.Flatten(),
                            nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5), nn.Linear(50, 10),
                            nn.Dropout(0.5))
    opt = torch.optim.Adam(net.parameters(), lr=0.001)
    loss_fn = nn.CrossEntropyLoss()
    x, t = make_batch()
    x, t = torch.from_numpy(x), torch.from_numpy(t)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), t)
        loss.backward()
        opt.step()

    return step


def memory_child(framework: str, model_name: str, threads: int) -> dict:
    """Peak memory of building the network and two training steps, in this fresh process."""
    import tracemalloc

    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        step = torch_step(model_name)
        traced = None
    else:
        tracemalloc.start()
        step = nnscratch_step(model_name)
    for _ in range(2):
        step()
    if framework != "torch":
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    for _ in range(3):
        step()
    return {"peak_rss_mb": peak_rss_mb(), "traced_peak_mb": traced}


def time_block(step, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - start) / iters


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--blas-threads", type=int, default=None,
                   help="NumPy BLAS threads (default: 1 when --threads > 1, so chunks go to the thread pool)")
    p.add_argument("--iters", type=int, default=10, help="steps per timed block")
    p.add_argument("--rounds", type=int, default=7, help="alternations (blocks per side)")
    p.add_argument("--models", nargs="+", default=["SimpleConvNet", "DeepConvNet"])
    p.add_argument("--book", action="store_true", help="also time nnscratch with the book's convolution")
    p.add_argument("--no-memory", action="store_true")
    args = p.parse_args()

    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    import nnscratch.layers.conv as conv

    torch.set_num_threads(args.threads)
    blas = args.blas_threads or (1 if args.threads > 1 else args.threads)
    conv.set_num_threads(args.threads)
    kernel = ", ".join(sorted({i.get("architecture", "?") for i in threadpool_info() if i["user_api"] == "blas"}))
    print(f"batch 100, Adam; torch {torch.__version__} on {args.threads} thread(s); nnscratch: "
          f"{args.threads} chunk thread(s) x {blas} BLAS thread(s) (OpenBLAS kernel {kernel}); "
          f"{args.rounds} alternations of {args.iters} steps; s/epoch = 600 steps")
    header = f"{'model':<14} {'side':<16} {'s/epoch':>8} {'ratio to torch':>15}  {'(min-max)':>11}"
    print(header)
    print("-" * len(header))
    with threadpool_limits(limits=blas, user_api="blas"):
        for model_name in args.models:
            sides = {"nnscratch": nnscratch_step(model_name), "torch": torch_step(model_name)}
            chunk_threads = {"nnscratch": args.threads}
            if args.book:
                sides["nnscratch (book)"] = nnscratch_step(model_name, book=True)
            if args.threads > 1:  # is the thread pool worth it? the same net on one thread, alternated
                sides["nnscratch 1 thr"] = nnscratch_step(model_name)
                chunk_threads["nnscratch 1 thr"] = 1
            for step in sides.values():  # warm-up: allocations, lazy imports
                time_block(step, 3)
            times = {name: [] for name in sides}
            for _ in range(args.rounds):
                for name, step in sides.items():
                    conv.set_num_threads(chunk_threads.get(name, args.threads))
                    times[name].append(time_block(step, args.iters))
            for name in sides:
                ratios = [a / b for a, b in zip(times[name], times["torch"])]
                print(f"{model_name:<14} {name:<16} {600 * statistics.median(times[name]):8.1f} "
                      f"{statistics.median(ratios):15.2f}  ({min(ratios):.2f}-{max(ratios):.2f})", flush=True)
            if "nnscratch 1 thr" in times:
                ratios = [a / b for a, b in zip(times["nnscratch"], times["nnscratch 1 thr"])]
                print(f"{model_name:<14} nnscratch {args.threads} threads / 1 thread: "
                      f"median {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})", flush=True)

    if args.no_memory:
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(blas),
               NNSCRATCH_NUM_THREADS=str(args.threads))
    print("\npeak memory of a fresh process building the net and taking 5 steps")
    print(f"{'model':<14} {'side':<10} {'peak RSS MB':>12} {'traced peak MB':>15}")
    for model_name in args.models:
        for framework in ("nnscratch", "torch"):
            out = subprocess.run([sys.executable, __file__, CHILD, framework, model_name, str(args.threads)],
                                 env=env, check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            traced = "-" if r["traced_peak_mb"] is None else f"{r['traced_peak_mb']:.0f}"
            print(f"{model_name:<14} {framework:<10} {r['peak_rss_mb']:12.0f} {traced:>15}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        print(json.dumps(memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        main()
