"""``nnscratch sweep``: the book's hyper-parameter search (chapter 6.5) on a Dask cluster.

Only argparse-level code at import time: ``nnscratch --help`` must not load
NumPy or Dask. The work is :func:`nnscratch.sweep.run_sweep`.
"""

from __future__ import annotations

import argparse
import signal
import sys


DEFAULT_OUT = "runs/sweep"
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # SIGTERM, as nnscratch train


def add_parser(commands) -> argparse.ArgumentParser:
    sweep = commands.add_parser(
        "sweep", help="the book's hyper-parameter search (lr, weight decay) on a Dask cluster",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Random search of the learning rate and the weight decay, as in the book's\n"
                    "chapter 6.5: a MultiLayerNet with six hidden layers of 100 trained with SGD\n"
                    "on 500 MNIST training images, 20% of them held out for validation; 100 trials\n"
                    "of 50 epochs with lr = 10**U(-6, -2) and weight decay = 10**U(-8, -4).\n\n"
                    "The trials run on Dask: worker processes on this machine by default, or\n"
                    "a running cluster with --scheduler tcp://HOST:PORT (`dask scheduler`,\n"
                    "`dask worker tcp://HOST:PORT`; the workers need nnscratch installed).\n\n"
                    "Writes to --out DIR:\n"
                    "  trials.csv           one row per finished trial, written as it finishes\n"
                    "  trials/NNNN.json     each trial's accuracy per epoch\n"
                    "  best_model.npz       the network of the best trial (nnscratch evaluate --model)\n"
                    "  best_trials.png      the book's figure: the best 20 trials' curves\n"
                    "  lr_weight_decay.png  every trial at (lr, weight decay), coloured by accuracy\n"
                    "  sweep.json           the settings\n\n"
                    "Trial i's lr, weight decay and seed follow from --seed and i alone, so a sweep\n"
                    "is reproducible. Rerunning into the same --out trains only the trials not yet\n"
                    "in trials.csv (after a Ctrl-C, a crash, or with a larger --trials).",
        epilog="examples:\n"
               "  nnscratch sweep                                  # the book's 100 trials\n"
               "  nnscratch sweep --trials 200                     # 100 more into runs/sweep\n"
               "  nnscratch sweep --trials 20 --epochs 10 --out runs/quick\n"
               "  nnscratch sweep --scheduler tcp://10.0.0.5:8786  # on a running Dask cluster")
    sweep.add_argument("--trials", type=int, default=100, help="number of trials (default: 100)")
    sweep.add_argument("--epochs", type=int, default=50, help="epochs of each trial (default: 50)")
    sweep.add_argument("--limit", type=int, default=500, metavar="N",
                       help="use the first N MNIST training images (default: 500)")
    sweep.add_argument("--validation", type=float, default=0.2, metavar="FRACTION",
                       help="fraction of them held out for validation (default: 0.2)")
    sweep.add_argument("--lr-range", type=float, nargs=2, default=[1e-6, 1e-2],
                       metavar=("LOW", "HIGH"), help="learning rate, drawn log-uniformly (default: 1e-6 1e-2)")
    sweep.add_argument("--weight-decay-range", type=float, nargs=2, default=[1e-8, 1e-4],
                       metavar=("LOW", "HIGH"), help="L2 weight decay, drawn log-uniformly (default: 1e-8 1e-4)")
    sweep.add_argument("--hidden", type=int, nargs="+", default=[100] * 6, metavar="SIZE",
                       help="hidden layer sizes (default: 100 100 100 100 100 100)")
    sweep.add_argument("--batch-size", type=int, default=100, help="images per update (default: 100)")
    sweep.add_argument("--seed", type=int, default=0,
                       help="seed of the validation split and of every trial's draws (default: 0)")
    sweep.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                       help=f"sweep folder; rerunning into it continues the sweep (default: {DEFAULT_OUT})")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=2,
                       help="worker processes of the local Dask cluster, at most twice the cores (default: 2)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                       help="run the trials on this running Dask scheduler's workers instead")
    sweep.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="wait this long for the scheduler and a worker (default: 10)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument("--no-plots", action="store_true", help="skip the two PNG figures")
    sweep.set_defaults(func=cmd_sweep)
    return sweep


def cmd_sweep(args) -> int:
    from nnscratch.sweep import SweepSettings, run_sweep

    settings = SweepSettings(trials=args.trials, epochs=args.epochs, limit=args.limit,
                             validation=args.validation, lr_range=tuple(args.lr_range),
                             weight_decay_range=tuple(args.weight_decay_range), hidden=tuple(args.hidden),
                             batch_size=args.batch_size, seed=args.seed)
    # SIGTERM (kill, timeout, a batch system) stops the sweep as Ctrl-C does. It killed the driver
    # outright: its workers were left to notice, and multiprocessing warned of leaked semaphores.
    import threading

    from nnscratch.sweep import StopRequested, request_stop

    main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, request_stop)
                for signum in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    unraisable_hook = sys.unraisablehook

    def quiet_dropped_stop(unraisable):
        # A stop raised inside a gc callback is dropped by Python with a traceback; run_sweep
        # raises it again, so the traceback is noise.
        if not isinstance(unraisable.exc_value, StopRequested):
            unraisable_hook(unraisable)

    sys.unraisablehook = quiet_dropped_stop
    try:
        run_sweep(settings, args.out, scheduler=args.scheduler, workers=args.workers,
                  connect_timeout=args.connect_timeout, plots=not args.no_plots,
                  progress=False if args.no_progress else None,
                  log=lambda line: print(line, flush=True))
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, StopRequested) and exc.signum == signal.SIGTERM
        print(f"\n{'Terminated' if terminated else 'Interrupted'}: the finished trials are in "
              f"{args.out}/trials.csv; rerun the same command to continue.", file=sys.stderr, flush=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        sys.unraisablehook = unraisable_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return 0
