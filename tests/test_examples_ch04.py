"""Run the chapter-4 examples as real subprocesses and compare what they print
with the numbers the seeds printed (copied here from the seeds' output, not
produced by nnscratch)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_example(name, tmp_path, *, default_out=False):
    """Run an example in tmp_path; figures go to --out tmp_path/figures or, by default, ./runs/examples."""
    out = tmp_path / ("runs/examples" if default_out else "figures")
    env = {k: v for k, v in os.environ.items() if k != "NNSCRATCH_EXAMPLES_DIR"}
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)] + ([] if default_out else ["--out", str(out)]),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "/work/shared" not in proc.stdout
    return proc.stdout, out


def line_after(stdout, prefix):
    for line in stdout.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise AssertionError(f"no line starting with {prefix!r} in:\n{stdout}")


def numbers(text):
    return [float(v) for v in re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?", text)]


def assert_pngs(folder, names):
    for name in names:
        assert (folder / name).read_bytes()[:8] == PNG_SIGNATURE, name


def test_numerical_diff_example_prints_the_seed_values(tmp_path):
    stdout, out = run_example("ch04_numerical_diff.py", tmp_path, default_out=True)
    assert line_after(stdout, "numerical_diff(function_1, 5) =") == "0.1999999999990898"  # seed 002
    assert line_after(stdout, "numerical_diff(function_1, 10) =") == "0.2999999999986347"  # seed 002
    assert stdout.count("6.00000000000378") == 1  # seed 002: numerical_diff(function_tmp1, 3.0)
    assert "StepSizeError" in stdout and "h=1e-50 is too small" in stdout
    assert_pngs(out, ["ch04_tangent.png", "ch04_surface.png"])


def test_gradient_example_prints_the_seed_gradients_and_explains_aliasing(tmp_path):
    stdout, out = run_example("ch04_gradient.py", tmp_path)
    # seed 002: array([6., 8.]), array([0., 4.]), array([6., 0.])
    assert line_after(stdout, "numerical_gradient(function_2, np.array([3.0, 4.0])) =") == "[6. 8.]"
    assert line_after(stdout, "numerical_gradient(function_2, np.array([0.0, 2.0])) =") == "[0. 4.]"
    assert line_after(stdout, "numerical_gradient(function_2, np.array([3.0, 0.0])) =") == "[6. 0.]"
    assert "shape (2, 256)" in stdout

    # seed 002, 4.4.2: p, loss and dW printed by the notebook
    np.testing.assert_allclose(numbers(line_after(stdout, "net.predict(x) =")),
                               [1.42966841, -0.91106999, 0.19106983], atol=2e-8)
    assert float(line_after(stdout, "net.loss(x, t) =")) == pytest.approx(1.5650536149292247, abs=5e-9)
    block = stdout.split("dW = numerical_gradient(f, net.W):")[1].split("f(3)")[0]
    np.testing.assert_allclose(
        np.array(numbers(block)).reshape(2, 3),
        [[0.43288568, 0.04166808, -0.47455375], [0.64932851, 0.06250211, -0.71183063]],
        atol=1.5e-8,
    )
    # seed 004: another array gives all zeros -- and now a warning that says why
    zeros = stdout.split("with another array a gives")[1].split("GradientWarning")[0]
    assert numbers(zeros) == [0.0] * 6
    assert "GradientWarning:" in stdout and "ignores its argument" in stdout
    assert_pngs(out, ["ch04_gradient_field.png"])


def test_gradient_descent_example_prints_the_seed_results(tmp_path):
    stdout, out = run_example("ch04_gradient_descent.py", tmp_path)
    # seed 002, In [15]-[17], copied as printed
    assert line_after(stdout, "lr = 0.1 ") == "-> array([-6.11110793e-10,  8.14814391e-10])"
    assert line_after(stdout, "lr = 10.0 ") == "-> array([-2.58983747e+13, -1.29524862e+12])"
    assert line_after(stdout, "lr = 10e-10 ") == "-> array([-2.9999994,  3.9999992])"
    assert "diverged with lr=10.0" in stdout
    assert "barely moved with lr=1e-09" in stdout
    assert_pngs(out, ["ch04_descent_path.png", "ch04_learning_rates.png"])


def test_line_fit_example_prints_the_seed_fit_and_scikit_learn(tmp_path):
    stdout, out = run_example("ch04_line_fit.py", tmp_path)
    # seed 003's printed results
    assert line_after(stdout, "gradient descent  m:").startswith("0.23606845773749743  b: 0.27746866427140193 ")
    assert line_after(stdout, "scikit-learn      m:") == "[0.2359993]  b: [0.27751048]"
    m_ls, b_ls = numbers(line_after(stdout, "least squares     m:").replace("b:", ""))
    assert m_ls == pytest.approx(0.2359993, abs=5e-8) and b_ls == pytest.approx(0.27751048, abs=5e-9)
    assert_pngs(out, ["ch04_line_fit.png"])


def test_training_with_numerical_gradients_follows_backprop(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "ch04_train_numerical_gradient.py"), "--iters", "6", "--report-every", "3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stderr
    rows = [numbers(line) for line in proc.stdout.splitlines() if re.match(r"\s+\d+\s+\d", line)]
    assert [int(row[0]) for row in rows] == [3, 6]
    for _, loss_numerical, loss_backprop, w1_diff, _ in rows:
        assert loss_numerical == pytest.approx(loss_backprop, abs=2e-6)
        assert w1_diff < 1e-6  # the two training runs take the same steps
