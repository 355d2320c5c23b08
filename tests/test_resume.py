"""Safe resumption: Ctrl-C, kill -9 and divergence never cost more than the current epoch,
and a resumed run ends with exactly the weights of an uninterrupted one."""

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
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
# resuming must continue every one of them exactly. Many small batches make a run
# that is quick (about 0.3 s an epoch here) yet, with EPOCHS epochs, leaves a signal
# sent on the first sign of progress in epoch 1 or 2 several epochs (over a second
# here, more on a slower machine) to land before the run ends.
BATCHES_PER_EPOCH = 400
EPOCHS = 6


def train_args(epochs=EPOCHS):
    return ["--limit", "4000", "--epochs", str(epochs), "--hidden", "128", "128", "--batch-size", "10",
            "--dropout", "0.2", "--batchnorm", "--augment", "--seed", "5", "--no-plots"]


TRAIN_ARGS = train_args()


def nnscratch_command() -> list[str]:
    script = Path(sys.executable).parent / "nnscratch"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nnscratch.cli"]


def cli_env():
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")


def run(*args, timeout=180):
    return subprocess.run(nnscratch_command() + [str(a) for a in args], env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


class TerminalRun:
    """`nnscratch` with stderr on a pseudo-terminal, as in a shell, so that tqdm draws its
    progress bar there: the bar is the signal that training really is inside an epoch,
    so no test has to guess with a sleep."""

    def __init__(self, *args):
        self.controller, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        self.proc = subprocess.Popen(nnscratch_command() + [str(a) for a in args], env=cli_env(),
                                     stdout=subprocess.PIPE, stderr=terminal, text=True)
        os.close(terminal)
        self.terminal_text = ""

    def _read(self, until=None, timeout=120) -> bool:
        """Collect terminal output until ``until`` matches (True) or the terminal closes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not select.select([self.controller], [], [], 1.0)[0]:
                continue
            try:
                chunk = os.read(self.controller, 4096)
            except OSError:  # EIO: the command exited and its end of the terminal closed
                chunk = b""
            if not chunk:
                return False
            self.terminal_text += chunk.decode(errors="replace")
            if until is not None and re.search(until, self.terminal_text):
                return True
        raise AssertionError(f"no {until!r} within {timeout} s:\n{self.terminal_text}")

    def wait_inside_epoch(self, epoch, batches=BATCHES_PER_EPOCH):
        """Return once the bar shows at least one batch of ``epoch`` done."""
        if not self._read(rf"epoch {epoch}/\d+:[^\r\n]*\s[1-9]\d*/{batches}\b"):
            self.proc.kill()
            raise AssertionError(f"training ended before epoch {epoch}:\n{self.terminal_text}")

    def finish(self, timeout=120):
        """Wait for the command to exit; return its stdout and what it wrote to the terminal."""
        self._read(timeout=timeout)
        stdout, _ = self.proc.communicate(timeout=timeout)
        os.close(self.controller)
        return stdout, self.terminal_text


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
    training = TerminalRun("train", *TRAIN_ARGS, "--out", out)
    training.wait_inside_epoch(1)
    training.proc.send_signal(signal.SIGINT)
    stdout, terminal = training.finish()
    assert training.proc.returncode == 130, stdout + terminal
    # The command to go on, as the user can type it (.venv/bin/nnscratch when not on the PATH).
    assert re.search(rf"Interrupted: resume with \S*nnscratch train --resume {re.escape(str(out))}", terminal)
    assert "Traceback" not in terminal
    assert not (out / "model.npz").exists()

    state = nnio.load_checkpoint(out / "checkpoint.npz").trainer_state
    # Almost always mid-epoch; a signal that lands during an epoch's evaluation stops
    # at the next batch boundary, which is the start of the following epoch.
    assert state["epoch"] < EPOCHS and 0 <= state["batch_index"] < BATCHES_PER_EPOCH, \
        (state["epoch"], state["batch_index"])

    result = run("train", "--resume", out, "--no-plots")
    assert result.returncode == 0, result.stderr
    assert (f"Resuming at epoch {state['epoch'] + 1}, batch {state['batch_index']}/{BATCHES_PER_EPOCH}"
            in result.stdout)
    assert_same_weights(out / "model.npz", reference / "model.npz")
    resumed = json.loads((out / "history.json").read_text())
    assert resumed["train_loss"] == json.loads((reference / "history.json").read_text())["train_loss"]


def test_second_ctrl_c_aborts_and_leaves_a_valid_checkpoint(tmp_path):
    out = tmp_path / "aborted"
    training = TerminalRun("train", *TRAIN_ARGS, "--out", out)
    training.wait_inside_epoch(2)  # epoch 1's checkpoint is on disk
    training.proc.send_signal(signal.SIGINT)
    training.proc.send_signal(signal.SIGINT)  # impatient: the second one may hit the checkpoint write
    stdout, terminal = training.finish()
    assert training.proc.returncode == 130, stdout + terminal
    assert "Traceback" not in terminal
    # Whichever checkpoint survived (an epoch's end, or the interrupted point) is complete.
    checkpoint = nnio.load_checkpoint(out / "checkpoint.npz")
    assert checkpoint.trainer_state["epoch"] >= 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]  # no temporary left behind


def test_kill_9_mid_epoch_loses_at_most_that_epoch(reference, tmp_path):
    out = tmp_path / "killed"
    training = TerminalRun("train", *TRAIN_ARGS, "--out", out)
    training.wait_inside_epoch(2)
    training.proc.send_signal(signal.SIGKILL)
    training.finish(timeout=60)
    assert training.proc.returncode == -signal.SIGKILL

    checkpoint = nnio.load_checkpoint(out / "checkpoint.npz")  # intact: written atomically
    assert checkpoint.trainer_state["epoch"] >= 1
    assert checkpoint.trainer_state["batch_index"] == 0  # epoch checkpoints only
    assert not (out / "model.npz").exists()
    # What a kill during a checkpoint write leaves (under a name atomic_write would use).
    (out / ".checkpoint.npz.k1ll3d.tmp").write_bytes(b"PK\x03\x04 half a checkpoint")

    result = run("train", "--resume", out, "--no-plots")
    assert result.returncode == 0, result.stderr
    assert_same_weights(out / "model.npz", reference / "model.npz")
    assert not list(out.glob(".*.tmp"))  # resuming cleared it


def test_resume_can_train_longer(reference, tmp_path):
    # --epochs is the one setting a resume may change: a finished run continues.
    out = tmp_path / "longer"
    result = run("train", *train_args(epochs=EPOCHS - 1), "--out", out)
    assert result.returncode == 0, result.stderr
    result = run("train", "--resume", out, "--epochs", EPOCHS, "--lr", 5, "--no-plots")
    assert result.returncode == 0, result.stderr
    assert "ignoring --lr" in result.stderr
    assert f"epoch {EPOCHS}/{EPOCHS}" in result.stdout and f"epoch {EPOCHS - 1}/{EPOCHS}" not in result.stdout
    assert_same_weights(out / "model.npz", reference / "model.npz")


def continue_reference_run(reference, out):
    """A copy of the finished reference run's checkpoint, to be continued with more epochs."""
    out.mkdir()
    shutil.copy(reference / "checkpoint.npz", out / "checkpoint.npz")
    return nnio.load_checkpoint(out / "checkpoint.npz")


def test_divergence_stops_with_the_learning_rate_and_keeps_the_last_checkpoint(reference, tmp_path):
    out = tmp_path / "diverged"
    # Continue a finished run with an absurd learning rate (as a user who edited it would).
    checkpoint = continue_reference_run(reference, out)
    checkpoint.args["settings"]["lr"] = 1e6
    checkpoint.optimizer.lr = 1e6
    nnio.save_checkpoint(out / "checkpoint.npz", checkpoint.trainer_state, model=checkpoint.model,
                         optimizer=checkpoint.optimizer, args=checkpoint.args)
    good = (out / "checkpoint.npz").read_bytes()

    result = run("train", "--resume", out, "--epochs", EPOCHS + 1)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: training diverged"), result.stderr
    assert "lr=1e+06" in lines[0] and "smaller learning rate" in lines[0]
    assert f"last good checkpoint (end of epoch {EPOCHS}) is kept in {out / 'checkpoint.npz'}" in lines[0]
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


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_resume_errors(reference, tmp_path):
    assert_one_line_error(run("train", "--resume", tmp_path), "no checkpoint to resume from")
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    assert_one_line_error(run("train", "--resume", tmp_path), "checkpoint.npz")
    assert_one_line_error(run("train", "--resume", reference / "model.npz"), "this is a model file")
    assert_one_line_error(run("train", "--resume", reference, "--epochs", EPOCHS - 1),
                          f"--epochs {EPOCHS - 1} is fewer than the {EPOCHS} epochs")


@pytest.mark.parametrize("forge, message", [
    (lambda ckpt: ckpt.args["settings"].update(epochs="3"), "epochs must be an integer of at least 1 and at most 100,000, got '3'"),
    (lambda ckpt: ckpt.args["settings"].update(model="os.system"), "model must be one of two-layer, mlp, simple-cnn, deep-cnn, got 'os.system'"),
    (lambda ckpt: ckpt.args.update(settings=None), "not a checkpoint of `nnscratch train`"),
    (lambda ckpt: ckpt.trainer_state.update(epoch="two"), "cannot restore the training state"),
], ids=["epochs-text", "unknown-model", "no-settings", "epoch-text"])
def test_forged_checkpoint_settings_are_a_clear_error(reference, tmp_path, forge, message):
    # Checksums only catch accidents: these files carry valid ones.
    out = tmp_path / "forged"
    checkpoint = continue_reference_run(reference, out)
    forge(checkpoint)
    nnio.save_checkpoint(out / "checkpoint.npz", checkpoint.trainer_state, model=checkpoint.model,
                         optimizer=checkpoint.optimizer, args=checkpoint.args)
    assert_one_line_error(run("train", "--resume", out, "--epochs", EPOCHS + 1), "checkpoint.npz", message)


# ----------------------------------------------------------------- SIGTERM, claims


def test_sigterm_mid_epoch_saves_a_checkpoint_and_resume_is_exact(reference, tmp_path):
    """`kill`, systemd and container runtimes send SIGTERM: it must behave like Ctrl-C."""
    out = tmp_path / "terminated"
    training = TerminalRun("train", *TRAIN_ARGS, "--out", out)
    training.wait_inside_epoch(1)
    training.proc.send_signal(signal.SIGTERM)
    stdout, terminal = training.finish()
    assert training.proc.returncode == 143, stdout + terminal
    assert "SIGTERM: stopping after this batch" in terminal
    assert re.search(rf"Interrupted: resume with \S*nnscratch train --resume {re.escape(str(out))}", terminal)
    assert "Traceback" not in terminal
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]  # claim released, no temporaries

    result = run("train", "--resume", out, "--no-plots")
    assert result.returncode == 0, result.stderr
    assert_same_weights(out / "model.npz", reference / "model.npz")


def test_second_sigterm_never_loses_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "terminated-twice"
    training = TerminalRun("train", *TRAIN_ARGS, "--out", out)
    training.wait_inside_epoch(2)  # epoch 1's checkpoint is on disk
    training.proc.send_signal(signal.SIGTERM)
    training.proc.send_signal(signal.SIGTERM)  # the second may land while the checkpoint is written
    stdout, terminal = training.finish()
    assert training.proc.returncode in (130, 143), stdout + terminal
    assert "Traceback" not in terminal
    checkpoint = nnio.load_checkpoint(out / "checkpoint.npz")  # complete, whichever one it is
    assert checkpoint.trainer_state["epoch"] >= 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]


def test_a_second_run_into_the_same_folder_is_refused_at_once(tmp_path):
    out = tmp_path / "shared"
    first = TerminalRun("train", *TRAIN_ARGS, "--out", out)
    try:
        first.wait_inside_epoch(1)
        started = time.monotonic()
        second = run("train", "--limit", 500, "--epochs", 1, "--hidden", 8, "--out", out)
        assert time.monotonic() - started < 60
        assert_one_line_error(second, str(out), "in use by another training run",
                              f"pid {first.proc.pid}")
        # Once it has a checkpoint, a resume of the running run is refused the same way.
        first.wait_inside_epoch(2)
        assert_one_line_error(run("train", "--resume", out), "in use by another training run")
        assert_one_line_error(run("train", "--out", out, "--limit", 500), "in use by another training run")
    finally:
        first.proc.send_signal(signal.SIGINT)
        first.finish()
    assert first.proc.returncode == 130
    assert nnio.load_checkpoint(out / "checkpoint.npz")  # the first run's work is intact


def test_the_claim_of_a_killed_run_is_taken_over_by_resume(reference, tmp_path):
    out = tmp_path / "killed-claim"
    training = TerminalRun("train", *TRAIN_ARGS, "--out", out)
    training.wait_inside_epoch(2)
    training.proc.send_signal(signal.SIGKILL)
    training.finish(timeout=60)
    assert (out / ".nnscratch-run.lock").exists()  # the claim file stays; its lock died with the process
    result = run("train", "--resume", out, "--no-plots")
    assert result.returncode == 0, result.stderr
    assert_same_weights(out / "model.npz", reference / "model.npz")
    assert not (out / ".nnscratch-run.lock").exists()
