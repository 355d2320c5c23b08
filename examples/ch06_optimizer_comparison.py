"""Chapter 6: SGD, Momentum, AdaGrad and Adam on f(x, y) = x**2 / 20 + y**2.

The book's ``ch06/optimizer_compare_naive.py``: start at (-7, 2), take 30
steps with each optimizer (the book's learning rates) and draw the four paths
over the contours of f in a 2x2 figure, as in the book's figure 6-8. SGD
zig-zags along the steep y direction, Momentum rolls like a ball in a bowl,
AdaGrad damps the y steps, Adam combines both.

Run::

    python examples/ch06_optimizer_comparison.py [--out DIR]

The figure goes to ``DIR/ch06_optimizer_paths.png`` (default directory:
``$NNSCRATCH_EXAMPLES_DIR`` or ``./runs/examples``).
"""

import argparse
import os
from pathlib import Path

import numpy as np

from nnscratch.optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from nnscratch.plots.training import plot_optimizer_paths

INIT_POS = (-7.0, 2.0)
STEPS = 30


def f(x, y):
    return x ** 2 / 20.0 + y ** 2


def df(x, y):
    return x / 10.0, 2.0 * y


def optimize(optimizer, steps=STEPS, init_pos=INIT_POS):
    """Visited points, shape (steps + 1, 2), of ``optimizer`` started at ``init_pos``."""
    # 0-d arrays, not floats: optimizers update their parameters in place.
    params = {"x": np.array(init_pos[0]), "y": np.array(init_pos[1])}
    path = [init_pos]
    for _ in range(steps):
        gx, gy = df(params["x"], params["y"])
        optimizer.update(params, {"x": np.asarray(gx), "y": np.asarray(gy)})
        path.append((float(params["x"]), float(params["y"])))
    return np.array(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=Path(os.environ.get("NNSCRATCH_EXAMPLES_DIR", "runs/examples")),
                        help="output directory (default: $NNSCRATCH_EXAMPLES_DIR or runs/examples)")
    args = parser.parse_args(argv)

    book = {"SGD": SGD(lr=0.95), "Momentum": Momentum(lr=0.1), "AdaGrad": AdaGrad(lr=1.5),
            "Adam": Adam(lr=0.3)}
    others = {"Nesterov": Nesterov(lr=0.1), "RMSprop": RMSprop(lr=0.3)}  # not in the book's figure
    paths = {name: optimize(opt) for name, opt in {**book, **others}.items()}

    print(f"f(x, y) = x**2/20 + y**2 from {INIT_POS}, {STEPS} steps; f there = {f(*INIT_POS):.3f}")
    print(f"{'optimizer':<10} {'lr':>5}  {'final (x, y)':>22}  {'f(final)':>9}")
    for name, opt in {**book, **others}.items():
        x, y = paths[name][-1]
        print(f"{name:<10} {opt.lr:>5}  ({x:>9.4f}, {y:>9.4f})  {f(x, y):>9.5f}")

    out = args.out / "ch06_optimizer_paths.png"
    plot_optimizer_paths({name: paths[name] for name in book}, f, out, xlim=(-10, 10), ylim=(-10, 10))
    print(f"wrote {out}")
    return paths


if __name__ == "__main__":
    main()
