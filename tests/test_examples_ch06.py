"""The chapter 3-6 examples run as scripts and produce what they promise."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, out, *args):
    env = dict(os.environ, NNSCRATCH_EXAMPLES_QUICK="1", MPLBACKEND="Agg",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(EXAMPLES / name), "--out", str(out), *args],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_optimizer_comparison_example(tmp_path):
    out = run_example("ch06_optimizer_comparison.py", tmp_path)
    with Image.open(tmp_path / "ch06_optimizer_paths.png") as im:
        assert im.format == "PNG" and im.size[0] > im.size[1] > 400  # 2x2 panels
    finals = {m.group(1): (float(m.group(2)), float(m.group(3)))
              for m in re.finditer(r"^(\w+)\s+[\d.]+\s+\(\s*(-?[\d.]+),\s*(-?[\d.]+)\)", out, re.M)}
    assert set(finals) == {"SGD", "Momentum", "AdaGrad", "Adam", "Nesterov", "RMSprop"}
    # SGD on x^2/20 + y^2 has a closed form: x <- (1 - lr/10) x, y <- (1 - 2 lr) y.
    assert finals["SGD"][0] == pytest.approx(-7.0 * (1 - 0.095) ** 30, abs=1e-4)
    assert finals["SGD"][1] == pytest.approx(2.0 * (1 - 1.9) ** 30, abs=1e-4)
    for name, (x, y) in finals.items():  # every optimizer got much closer to the minimum
        assert x ** 2 / 20 + y ** 2 < 0.2 * (49 / 20 + 4), name


def test_optimizer_comparison_uses_the_env_output_dir(tmp_path):
    env = dict(os.environ, NNSCRATCH_EXAMPLES_DIR=str(tmp_path / "env-out"), MPLBACKEND="Agg")
    subprocess.run([sys.executable, str(EXAMPLES / "ch06_optimizer_comparison.py")], check=True,
                   capture_output=True, env=env, timeout=120, cwd=tmp_path)
    assert (tmp_path / "env-out" / "ch06_optimizer_paths.png").stat().st_size > 10_000


def test_chapters_3_to_6_walkthrough(tmp_path):
    out = run_example("ch03_to_ch06.py", tmp_path, "--quick")
    # Values the book prints (computed here independently where they are not quoted).
    assert "[0.31682708 0.69627909] (book" in out
    assert "mean_squared_error  = 0.0975" in out and "cross_entropy_error = 0.5108" in out
    assert re.search(r"numerical_gradient\(function_2, \[3, 4\]\) = \[6\. 8\.\]", out)
    diffs = [float(v) for v in re.findall(r"mean \|backprop - numerical\| = ([\d.e+-]+)", out)]
    assert len(diffs) == 4 and max(diffs) < 1e-6
    losses = {m.group(1): float(m.group(2))
              for m in re.finditer(r"^(\w+)\s+loss after \d+ iterations: ([\d.]+)", out, re.M)}
    assert set(losses) == {"SGD", "Momentum", "AdaGrad", "Adam"}
    assert all(np.isfinite(v) and v < np.log(10) for v in losses.values())
    assert losses["Adam"] < losses["SGD"]  # the book's figure 6-9 in one line
    runs = re.findall(r"^(plain|weight decay [\d.]+|dropout [\d.]+)\s*: train ([\d.]+)  test ([\d.]+)  gap ",
                      out, re.M)
    assert [name.split()[0] for name, _, _ in runs] == ["plain", "weight", "dropout"], runs
    for png in ("ch05_loss.png", "ch05_accuracy.png", "ch06_optimizers_mnist.png",
                "ch06_weight_init.png", "ch06_overfitting.png"):
        with Image.open(tmp_path / png) as im:
            assert im.format == "PNG", png


def test_overfitting_runs_show_the_books_lesson():
    """Figures 6-20 and 6-21: weight decay and dropout narrow the train-test gap (full length run)."""
    # In a subprocess with one BLAS thread, as the example runs (much faster on a busy machine).
    script = (
        "import importlib.util, json, sys\n"
        "import numpy as np\n"
        "from nnscratch.datasets import load_mnist\n"
        "spec = importlib.util.spec_from_file_location('ex', sys.argv[1])\n"
        "ex = importlib.util.module_from_spec(spec); spec.loader.exec_module(ex)\n"
        "(x, t), (xt, tt) = load_mnist(normalize=True, limit=1000)\n"
        "h = ex.overfitting(x, t, xt, tt, epochs=150)\n"
        "print(json.dumps({k: [float(np.mean(v.train_acc_list[-10:])), float(np.mean(v.test_acc_list[-10:]))]"
        " for k, v in h.items()}))\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, "-c", script, str(EXAMPLES / "ch03_to_ch06.py")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.splitlines()[-1])
    assert list(last) == ["plain", "weight decay 0.03", "dropout 0.2"]
    plain_train, plain_test = last.pop("plain")
    assert plain_train > 0.99 and plain_train - plain_test > 0.2  # it overfits
    for name, (train, test) in last.items():
        assert train - test < plain_train - plain_test - 0.01, (name, last)  # the gap narrows
        assert test >= plain_test, (name, last)  # and regularisation does not look harmful
