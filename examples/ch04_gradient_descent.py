"""Chapter 4.4.1: gradient descent on x0**2 + x1**2 from (-3, 4), 100 steps.

The book's three learning rates, as the seeds ran them:

* lr = 0.1 converges to about (-6.1e-10, 8.1e-10);
* lr = 10.0 diverges and ends near (-2.59e13, -1.30e12) -- it stops there only
  because x grew so large that x + h == x and the numerical gradient became 0;
* lr = 10e-10 barely moves: (-2.9999994, 3.9999992). Note that ``10e-10`` is
  1e-9, not the book's 1e-10 (which gives (-2.99999994, 3.99999992)); the
  seeds typed 10e-10, and their printed values are the 1e-9 ones.

nnscratch returns the same values and also warns (``DivergenceWarning``),
pointing at the learning rate. Draws the descent path over the contours (book
figure 4-10) and the three runs side by side.

Run::

    python examples/ch04_gradient_descent.py [--out DIR]
"""

import argparse
import os
import warnings
from pathlib import Path

import numpy as np

from nnscratch import gradient_descent


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


def descend(lr, step_num=100):
    init_x = np.array([-3.0, 4.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = gradient_descent(function_2, init_x=init_x, lr=lr, step_num=step_num)
    return x, [f"{w.category.__name__}: {w.message}" for w in caught]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=Path(os.environ.get("NNSCRATCH_EXAMPLES_DIR", "runs/examples")),
                        help="output directory (default: $NNSCRATCH_EXAMPLES_DIR or runs/examples)")
    args = parser.parse_args(argv)

    print("gradient_descent(function_2, init_x=np.array([-3.0, 4.0]), lr=..., step_num=100)")
    for label, lr in (("0.1", 0.1), ("10.0", 10.0), ("10e-10", 10e-10), ("1e-10", 1e-10)):
        x, messages = descend(lr)
        print(f"lr = {label:<7} -> {x!r}")
        for message in messages:
            print(f"    {message}")

    from nnscratch.plots.calculus import plot_descent_path, plot_learning_rates  # matplotlib from here on

    path_png = args.out / "ch04_descent_path.png"
    plot_descent_path(function_2, (-3.0, 4.0), lr=0.1, step_num=20, out_path=path_png)
    rates_png = args.out / "ch04_learning_rates.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # already printed above
        plot_learning_rates(function_2, (-3.0, 4.0), lrs=(0.1, 10.0, 10e-10), out_path=rates_png)
    print(f"\nwrote {path_png}\nwrote {rates_png}")


if __name__ == "__main__":
    main()
