"""The speed-ups beside the readable code: the Trainer's finiteness check on BLAS and the
convolutions' thread-count switch (NNSCRATCH_NUM_THREADS), checked for what a user sees."""

import os
import subprocess
import sys

import numpy as np
import pytest

from nnscratch.errors import TrainingDivergedError
from nnscratch.models import TwoLayerNet
from nnscratch.optimizers import SGD
from nnscratch.training import Trainer


def _trainer(dtype="float32"):
    rng = np.random.default_rng(0)
    x = rng.random((20, 30)).astype(dtype)
    t = rng.integers(0, 4, 20)
    return Trainer(TwoLayerNet(30, 40, 4, seed=0, dtype=dtype), SGD(lr=0.1), x, t, epochs=1, batch_size=10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("key", ["W1", "b1", "W2", "b2"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, "inf and -inf"])
def test_finiteness_check_finds_any_bad_gradient_element(dtype, key, bad):
    trainer = _trainer(dtype)
    grads = {k: np.ones_like(p) for k, p in trainer.model.params.items()}
    trainer._check_finite(1.0, grads)  # all finite: no error
    g = grads[key].reshape(-1)
    if bad == "inf and -inf":  # their sum is NaN, not inf
        g[0], g[-1] = np.inf, -np.inf
    else:
        g[g.size // 2] = bad
    with pytest.raises(TrainingDivergedError, match=f"gradient of '{key}' is not finite"):
        trainer._check_finite(1.0, grads)


def test_finiteness_check_with_growing_and_changing_gradients():
    """The cached ones vector follows the largest gradient and its dtype."""
    trainer = _trainer()
    trainer._check_finite(0.5, {"a": np.ones(3, np.float32)})
    trainer._check_finite(0.5, {"a": np.ones((50, 40), np.float64), "b": np.zeros(0, np.float64)})
    with pytest.raises(TrainingDivergedError, match="'c'"):
        trainer._check_finite(0.5, {"a": np.ones(7, np.float32), "c": np.full((60, 60), np.nan, np.float32)})
    with pytest.raises(TrainingDivergedError, match="the loss became nan"):
        trainer._check_finite(float("nan"), {})


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.parametrize("channels", [1, 3])  # one channel takes the first layer's path, which has no chunks
def test_num_threads_from_the_environment(channels):
    code = ("import numpy as np; from nnscratch.layers.conv import Convolution, get_num_threads;"
            "rng = np.random.default_rng(0);"
            f"c = Convolution(rng.standard_normal((4, {channels}, 3, 3)), np.zeros(4), pad=1);"
            f"out = c.forward(rng.standard_normal((8, {channels}, 6, 6))); c.backward(np.ones_like(out));"
            "print(get_num_threads(), out.shape)")
    done = _run(code, NNSCRATCH_NUM_THREADS="2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "(8,", "4,", "6,", "6)"]
    bad = _run(code, NNSCRATCH_NUM_THREADS="many")
    assert bad.returncode != 0
    assert "ConfigError: NNSCRATCH_NUM_THREADS must be an integer from 1 to 64, got 'many'" in bad.stderr


def test_cli_says_a_bad_thread_count_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "nnscratch", "train", "--model", "simple-cnn", "--epochs", "1",
                           "--limit", "200", "--no-plots", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NNSCRATCH_NUM_THREADS": "0"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: NNSCRATCH_NUM_THREADS must be an integer from 1 to 64, got '0'"
    assert "Traceback" not in done.stdout + done.stderr
