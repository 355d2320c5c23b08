"""Chapter 4.4: gradients, the gradient field, and the aliasing puzzle of seed 004.

1. ``numerical_gradient`` of x0**2 + x1**2 at (3, 4), (0, 2) and (3, 0) -- the
   book prints [6. 8.], [0. 4.] and [6. 0.].
2. The gradient at every point of a 16 x 16 grid in one batched call
   (``numerical_gradient_batch``, the seeds' ``numerical_grad_multi``) and the
   picture of -grad f: equal arrows pointing downhill, coloured by |grad f|.
3. The book's simpleNet (4.4.2) with the weights its notebook printed:
   ``numerical_gradient(lambda W: net.loss(x, t), net.W)`` works although f
   ignores W, because net.W *is* the array being perturbed. Pass any other
   array and every derivative is 0 -- nnscratch warns and says why.

Run::

    python examples/ch04_gradient.py [--out DIR]
"""

import argparse
import os
import warnings
from pathlib import Path

import numpy as np

from nnscratch import SimpleNet, numerical_gradient, numerical_gradient_batch
from nnscratch.errors import GradientWarning


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


# The weights the book's notebook drew with np.random.randn(2, 3) and printed (seed 002).
NOTEBOOK_W = [[1.32466528, -0.60007556, -0.60386757],
              [0.70541027, -0.61224961, 0.61487819]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=Path(os.environ.get("NNSCRATCH_EXAMPLES_DIR", "runs/examples")),
                        help="output directory (default: $NNSCRATCH_EXAMPLES_DIR or runs/examples)")
    args = parser.parse_args(argv)

    print("gradient of f(x0, x1) = x0**2 + x1**2")
    for point in ([3.0, 4.0], [0.0, 2.0], [3.0, 0.0]):
        print(f"numerical_gradient(function_2, np.array({point})) = "
              f"{numerical_gradient(function_2, np.array(point))}")

    x0 = np.arange(-2, 2.0, 0.25)
    X0, X1 = np.meshgrid(x0, x0)
    grid = np.stack([X0.ravel(), X1.ravel()])  # (2, 256): axis 0 = variables, axis 1 = points
    grad = numerical_gradient_batch(function_2, grid)  # 2 * 2 + 1 calls of f, not 256 * 4
    print(f"\nbatched gradient over the 16 x 16 grid: shape {grad.shape}, "
          f"largest deviation from the exact 2x: {np.abs(grad - 2 * grid).max():.1e}")

    net = SimpleNet(W=NOTEBOOK_W)
    x = np.array([0.6, 0.9])
    t = np.array([0, 0, 1])
    print("\nsimpleNet with the notebook's weights")
    print(f"net.predict(x) = {net.predict(x)}")
    print(f"net.loss(x, t) = {net.loss(x, t)!r}")
    print("  (the notebook printed 1.5650536149292247 from its unrounded weights; these are the")
    print("   weights as printed, to 8 decimals, so the loss agrees to about 1e-9)")

    def f(W):
        return net.loss(x, t)  # ignores W on purpose, like the book

    dW = numerical_gradient(f, net.W)
    print("dW = numerical_gradient(f, net.W):")
    print(dW)
    print(f"f(3) == f(net.W): {f(3) == f(net.W)}  (f ignores its argument...)")

    a = np.array([[0.2, 0.1, -0.3], [0.12, -0.17, 0.088]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dW_a = numerical_gradient(f, a)
    print("...so numerical_gradient(f, a) with another array a gives")
    print(dW_a)
    for w in caught:
        if issubclass(w.category, GradientWarning):
            print(f"GradientWarning: {w.message}")

    from nnscratch.plots.calculus import plot_gradient_field  # matplotlib only from here on

    out = args.out / "ch04_gradient_field.png"
    plot_gradient_field(function_2, out_path=out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
