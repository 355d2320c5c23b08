"""Safe resumption: Ctrl-C, kill -9 and divergence never cost more than the current epoch,
and a resumed run ends with exactly the weights of an uninterrupted one."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnscratch import cli
from nnscratch import io as nnio
from nnscratch.models import MultiLayerNet
from nnscratch.optimizers import build_optimizer
from nnscratch.training import Trainer

# Dropout, batch norm and augmentation all draw random numbers or keep state:
# resuming must continue every one of them exactly.
TRAIN_ARGS = ["--limit", "4000", "--epochs", "3", "--hidden", "256", "256", "--batch-size", "40",
              "--dropout", "0.2", "--batchnorm", "--augment", "--seed", "5"]


def nnscratch_command() -> list[str]:
    script = Path(sys.executable).parent / "nnscratch"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nnscratch.cli"]


def cli_env():
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")


def run(*args, timeout=180):
    return subprocess.run(nnscratch_command() + [str(a) for a in args], env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def start(*args):
    return subprocess.Popen(nnscratch_command() + [str(a) for a in args], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epoch_line(proc, epoch):
    """Read stdout until the line of ``epoch``; return that epoch's duration in seconds."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        match = re.match(rf"epoch {epoch}/\d+ .* ([\d.]+) s$", line.strip())
        if match:
            return float(match.group(1))
    proc.kill()
    raise AssertionError("training ended before epoch %d:\n%s%s" % (epoch, "".join(seen), proc.stderr.read()))


def weights(model_path):
    model = nnio.load_model(model_path)
    return {**{f"param/{k}": v for k, v in model.params.items()},
            **{f"buffer/{k}": v for k, v in model.buffers.items()}}


def assert_same_weights(path_a, path_b):
    a, b = weights(path_a), weights(path_b)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{key} differs"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every interrupted one must reproduce."""
    out = tmp_path_factory.mktemp("resume") / "reference"
    result = run("train", *TRAIN_ARGS, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_ctrl_c_mid_epoch_saves_a_checkpoint_and_resume_is_exact(reference, tmp_path):
    out = tmp_path / "interrupted"
    proc = start("train", *TRAIN_ARGS, "--out", out)
    seconds = wait_for_epoch_line(proc, 1)
    time.sleep(0.4 * seconds)  # well inside epoch 2
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert f"Interrupted: resume with nnscratch train --resume {out}" in stderr
    assert "Traceback" not in stderr
    assert not (out / "model.npz").exists()

    state = nnio.load_checkpoint(out / "checkpoint.npz").trainer_state
    assert state["epoch"] == 1 and 0 < state["batch_index"] < 100, (state["epoch"], state["batch_index"])

    result = run("train", "--resume", out)
    assert result.returncode == 0, result.stderr
    assert f"Resuming at epoch 2, batch {state['batch_index']}/100" in result.stdout
    assert_same_weights(out / "model.npz", reference / "model.npz")
    resumed = json.loads((out / "history.json").read_text())
    assert resumed["train_loss"] == json.loads((reference / "history.json").read_text())["train_loss"]


def test_second_ctrl_c_aborts_and_leaves_a_valid_checkpoint(tmp_path):
    out = tmp_path / "aborted"
    proc = start("train", *TRAIN_ARGS, "--out", out)
    seconds = wait_for_epoch_line(proc, 1)
    time.sleep(0.4 * seconds)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)  # impatient: the second one may hit the checkpoint write
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    # Whichever checkpoint survived (epoch 1, or the interrupted point) is complete.
    checkpoint = nnio.load_checkpoint(out / "checkpoint.npz")
    assert checkpoint.trainer_state["epoch"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]  # no temporary left behind


def test_kill_9_mid_epoch_loses_at_most_that_epoch(reference, tmp_path):
    out = tmp_path / "killed"
    proc = start("train", *TRAIN_ARGS, "--out", out)
    seconds = wait_for_epoch_line(proc, 1)
    time.sleep(0.4 * seconds)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    checkpoint = nnio.load_checkpoint(out / "checkpoint.npz")  # intact: written atomically
    assert checkpoint.trainer_state["epoch"] >= 1
    assert checkpoint.trainer_state["batch_index"] == 0  # epoch checkpoints only
    assert not (out / "model.npz").exists()

    result = run("train", "--resume", out)
    assert result.returncode == 0, result.stderr
    assert_same_weights(out / "model.npz", reference / "model.npz")


def test_resume_can_train_longer(reference, tmp_path):
    # --epochs is the one setting a resume may change: a finished run continues.
    out = tmp_path / "longer"
    result = run("train", *[a if a != "3" else "2" for a in TRAIN_ARGS], "--out", out)
    assert result.returncode == 0, result.stderr
    result = run("train", "--resume", out, "--epochs", 3, "--lr", 5)
    assert result.returncode == 0, result.stderr
    assert "ignoring --lr" in result.stderr
    assert "epoch 3/3" in result.stdout and "epoch 1/3" not in result.stdout
    assert_same_weights(out / "model.npz", reference / "model.npz")


def test_divergence_stops_with_the_learning_rate_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "diverged"
    result = run("train", "--limit", 1000, "--epochs", 1, "--hidden", 16, "--out", out)
    assert result.returncode == 0, result.stderr
    # Continue that run with an absurd learning rate (as a user who edited it would).
    checkpoint = nnio.load_checkpoint(out / "checkpoint.npz")
    checkpoint.args["settings"]["lr"] = 1e6
    checkpoint.optimizer.lr = 1e6
    nnio.save_checkpoint(out / "checkpoint.npz", checkpoint.trainer_state, model=checkpoint.model,
                         optimizer=checkpoint.optimizer, args=checkpoint.args)
    good = (out / "checkpoint.npz").read_bytes()

    result = run("train", "--resume", out, "--epochs", 3)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: training diverged"), result.stderr
    assert "lr=1e+06" in lines[0] and "smaller learning rate" in lines[0]
    assert f"last good checkpoint (end of epoch 1) is kept in {out / 'checkpoint.npz'}" in lines[0]
    assert (out / "checkpoint.npz").read_bytes() == good


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_divergence_in_the_first_epoch(tmp_path, optimizer):
    out = tmp_path / optimizer
    result = run("train", "--optimizer", optimizer, "--lr", 1e6, "--limit", 1000, "--hidden", 16, "--out", out)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "RuntimeWarning" not in result.stderr
    assert "error: training diverged" in result.stderr and "learning rate" in result.stderr
    assert "no checkpoint was written" in result.stderr
    assert not (out / "model.npz").exists() and not (out / "checkpoint.npz").exists()


def test_resume_errors(tmp_path):
    result = run("train", "--resume", tmp_path)
    assert result.returncode == 2 and "no checkpoint to resume from" in result.stderr
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    result = run("train", "--resume", tmp_path)
    assert result.returncode == 2 and "checkpoint.npz" in result.stderr and "Traceback" not in result.stderr


def test_checkpoint_glue_resumes_mid_epoch_exactly(tmp_path):
    """The same path in-process and deterministic: stop at batch 7 of epoch 2, save, load, go on."""
    rng = np.random.default_rng(0)
    x = rng.random((120, 784), dtype=np.float32)
    t = rng.integers(0, 10, 120)

    def setup():
        model = MultiLayerNet(784, [32, 16], 10, use_dropout=True, dropout_ratio=0.3,
                              use_batchnorm=True, seed=1)
        return model, build_optimizer("adam", lr=0.01)

    model, optimizer = setup()
    Trainer(model, optimizer, x, t, x[:40], t[:40], epochs=3, batch_size=10, seed=4).fit()

    class StopAt:
        def on_batch_end(self, trainer, iteration, loss):
            if iteration == 12 + 7:
                trainer.request_stop()

    first_model, first_optimizer = setup()
    first = Trainer(first_model, first_optimizer, x, t, x[:40], t[:40], epochs=3, batch_size=10,
                    seed=4, callbacks=[StopAt()])
    first.fit()
    assert first.interrupted and first.epoch == 1 and first.batch_index == 7
    path = nnio.save_checkpoint(tmp_path / "checkpoint.npz", cli._split_state(first),
                                model=first_model, optimizer=first_optimizer, args={"settings": {}})

    checkpoint = nnio.load_checkpoint(path)
    second = Trainer(checkpoint.model, checkpoint.optimizer, x, t, x[:40], t[:40], epochs=3,
                     batch_size=10, seed=4)
    second.load_state_dict(cli._merge_state(checkpoint))
    second.fit()
    for key in model.params:
        assert np.array_equal(checkpoint.model.params[key], model.params[key]), key
    for key in model.buffers:
        assert np.array_equal(checkpoint.model.buffers[key], model.buffers[key]), key
