"""Wall time of the book's chapter 6.5 search: one process (the book's loop) vs nnscratch sweep on Dask.

The book trains its trials one after another in one Python process. ``nnscratch
sweep`` sends them to Dask worker processes. This script times the same N
trials (the book's network and data, 50 epochs each by default) three ways,
interleaved round by round so that load from other processes hits all alike:

* ``loop``: ``run_trial`` called N times in this process (the book's script,
  with the same training code);
* ``dask-1``: ``run_sweep`` on a fresh local cluster of 1 worker process;
* ``dask-K``: the same with K workers (``--workers``, default: the CPU count).

The Dask times include starting the cluster, scattering the data and writing
trials.csv, the curves, the best model and (unless ``--no-plots``) the two
figures: everything ``nnscratch sweep`` does. Every side runs one BLAS thread
per process. Prints each round and the medians, and the ratios to ``loop``.

    .venv/bin/python bench/sweep_workers.py --trials 20 --rounds 3
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads, as in the workers

import argparse
import statistics
import tempfile
import time

from nnscratch.sweep import SweepSettings, load_sweep_data, run_sweep, run_trial, trial_parameters


def time_loop(settings: SweepSettings) -> float:
    start = time.perf_counter()
    data = load_sweep_data(settings)
    for index in range(settings.trials):
        run_trial(settings.to_dict(), trial_parameters(settings, index), data)
    return time.perf_counter() - start


def time_dask(settings: SweepSettings, workers: int, plots: bool) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_sweep(settings, out, workers=workers, plots=plots, progress=False, log=lambda *_: None)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args()

    settings = SweepSettings(trials=args.trials, epochs=args.epochs).checked()
    load_sweep_data(settings)  # decode and cache MNIST before any clock starts
    sides = {"loop": lambda: time_loop(settings),
             "dask-1": lambda: time_dask(settings, 1, not args.no_plots)}
    if args.workers > 1:
        sides[f"dask-{args.workers}"] = lambda: time_dask(settings, args.workers, not args.no_plots)
    print(f"{args.trials} trials of {args.epochs} epochs (the book's MultiLayerNet, 400 training / "
          f"100 validation images), {os.cpu_count()} CPUs, {args.rounds} rounds")
    times: dict[str, list[float]] = {name: [] for name in sides}
    for round_number in range(1, args.rounds + 1):
        order = list(sides) if round_number % 2 else list(reversed(sides))
        for name in order:
            times[name].append(sides[name]())
        print(f"round {round_number}: " + "  ".join(f"{n} {times[n][-1]:.1f} s" for n in sides), flush=True)
    loop = statistics.median(times["loop"])
    print("median: " + "  ".join(f"{n} {statistics.median(t):.1f} s ({statistics.median(t) / loop:.2f}x loop)"
                                 for n, t in times.items()))


if __name__ == "__main__":
    main()
