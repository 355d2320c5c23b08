"""Chapter 4.3: numerical differentiation, as the seeds walk it.

Prints the book's central differences of f(x) = 0.01 x**2 + 0.1 x at 5 and 10
(0.1999999999990898 and 0.2999999999986347, the exact values the book's
notebook prints), a partial derivative of x0**2 + x1**2 at (3, 4) by freezing
x1, and what happens with the seeds' "bad example" h = 1e-50. Draws the
function with its tangent at x = 5 (book figure 4-7) and the surface of
x0**2 + x1**2 (figure 4-8).

Run::

    python examples/ch04_numerical_diff.py [--out DIR]

Figures go to ``DIR`` (default ``$NNSCRATCH_EXAMPLES_DIR`` or ``./runs/examples``).
"""

import argparse
import os
from pathlib import Path

import numpy as np

from nnscratch import numerical_diff
from nnscratch.errors import StepSizeError


def function_1(x):
    return 0.01 * x**2 + 0.1 * x


def function_tmp1(x0):
    """x0**2 + x1**2 with x1 frozen at 4: its derivative is the partial df/dx0 at (3, 4)."""
    return x0 * x0 + 4.0**2.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=Path(os.environ.get("NNSCRATCH_EXAMPLES_DIR", "runs/examples")),
                        help="output directory (default: $NNSCRATCH_EXAMPLES_DIR or runs/examples)")
    args = parser.parse_args(argv)

    print("f(x) = 0.01*x**2 + 0.1*x, central difference with h = 1e-4")
    print(f"numerical_diff(function_1, 5) = {numerical_diff(function_1, 5)!r}")
    print(f"numerical_diff(function_1, 10) = {numerical_diff(function_1, 10)!r}")
    print("exact derivatives 0.02*x + 0.1:  0.2 and 0.3")
    print(f"partial df/dx0 of x0**2 + x1**2 at (3, 4): numerical_diff(function_tmp1, 3.0) = "
          f"{numerical_diff(function_tmp1, 3.0)!r}")

    print("\nThe seeds' bad example, h = 1e-50:")
    print(f"  in float32, 1e-50 itself is {np.float32(1e-50)!r}")
    print(f"  in float64, 5.0 + 1e-50 == 5.0 is {5.0 + 1e-50 == 5.0}")
    try:
        numerical_diff(function_1, 5, h=1e-50)
    except StepSizeError as exc:
        print(f"  numerical_diff(function_1, 5, h=1e-50) -> StepSizeError: {exc}")

    from nnscratch.plots.calculus import plot_surface, plot_tangent  # matplotlib only from here on

    tangent = args.out / "ch04_tangent.png"
    plot_tangent(function_1, 5.0, out_path=tangent)
    surface = args.out / "ch04_surface.png"
    plot_surface(out_path=surface)
    print(f"\nwrote {tangent}\nwrote {surface}")


if __name__ == "__main__":
    main()
