"""Seconds per MNIST epoch of SimpleConvNet and DeepConvNet training, nnscratch vs PyTorch.

Same architecture, batch size 100, Adam, float32, same thread count on both
sides (threadpoolctl for NumPy's BLAS, torch.set_num_threads for PyTorch).
Each framework runs in its own subprocess, so peak memory is its own: we
report the peak resident set of the process, its growth during the timed
steps (peak RSS minus RSS before them), and for nnscratch the tracemalloc
peak from building the network through two training steps (NumPy reports its
buffers to tracemalloc: weights, Adam state, caches and scratch arrays).

Run with the benchmark environment (torch is never a package dependency)::

    .bench-venv/bin/python bench/cnn_speed.py                 # 1 thread
    .bench-venv/bin/python bench/cnn_speed.py --threads 2
    .bench-venv/bin/python bench/cnn_speed.py --iters 300 --repeats 3

Times are medians over ``--repeats`` blocks of ``--iters`` iterations,
extrapolated to 600 iterations (one epoch of 60,000 images).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = "--child"


def rss_now_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_rss_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def time_steps(step, iters: int, repeats: int) -> dict:
    """Median seconds per step over ``repeats`` blocks of ``iters`` steps, and the memory they took."""
    import time

    import numpy as np

    rss_before = rss_now_kb()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - start) / iters)
    return {"step_s": float(np.median(times)), "rss_growth_mb": (peak_rss_kb() - rss_before) / 1024,
            "peak_rss_mb": peak_rss_kb() / 1024}


def run_nnscratch(model_name: str, threads: int, iters: int, repeats: int) -> dict:
    import tracemalloc

    import numpy as np
    from threadpoolctl import threadpool_limits

    from nnscratch.models.conv import DeepConvNet, SimpleConvNet
    from nnscratch.optimizers import Adam

    rng = np.random.default_rng(0)
    x = rng.random((100, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 100)
    with threadpool_limits(limits=threads):
        # Traced from before the network exists: the peak counts weights,
        # optimizer state, the layers' caches and scratch arrays of a step.
        tracemalloc.start()
        net = {"SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet}[model_name](seed=0)
        opt = Adam(lr=0.001)

        def step():
            _, grads = net.loss_and_gradient(x, t)
            opt.update(net.params, grads)

        for _ in range(2):
            step()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        for _ in range(3):
            step()
        result = time_steps(step, iters, repeats)
    return {**result, "traced_peak_mb": traced_peak / 2**20}


def run_torch(model_name: str, threads: int, iters: int, repeats: int) -> dict:
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(threads)
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
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((100, 1, 28, 28), dtype=np.float32))
    t = torch.from_numpy(rng.integers(0, 10, 100))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), t)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    return {**time_steps(step, iters, repeats), "traced_peak_mb": None}


def child(argv):
    framework, model_name, threads, iters, repeats = argv
    fn = run_nnscratch if framework == "nnscratch" else run_torch
    print(json.dumps(fn(model_name, int(threads), int(iters), int(repeats))))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=100, help="iterations per timed block")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["SimpleConvNet", "DeepConvNet"])
    args = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    print(f"batch 100, {args.threads} thread(s), median of {args.repeats} x {args.iters} iterations, "
          f"x600 iterations per epoch")
    header = (f"{'model':<14} {'framework':<10} {'s/epoch':>8} {'ratio':>6} {'step peak MB':>13} "
              f"{'RSS growth MB':>14} {'peak RSS MB':>12}")
    print(header)
    print("-" * len(header))
    for model_name in args.models:
        results = {}
        for framework in ("nnscratch", "torch"):
            out = subprocess.run([sys.executable, __file__, CHILD, framework, model_name, str(args.threads),
                                  str(args.iters), str(args.repeats)], env=env, check=True,
                                 capture_output=True, text=True)
            results[framework] = json.loads(out.stdout.strip().splitlines()[-1])
        base = results["torch"]["step_s"]
        for framework, r in results.items():
            traced = "-" if r["traced_peak_mb"] is None else f"{r['traced_peak_mb']:.0f}"
            print(f"{model_name:<14} {framework:<10} {r['step_s'] * 600:8.1f} {r['step_s'] / base:6.2f} "
                  f"{traced:>13} {r['rss_growth_mb']:14.0f} {r['peak_rss_mb']:12.0f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        child(sys.argv[2:])
    else:
        main()
