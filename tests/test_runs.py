"""nnscratch.runs: settings, building, fit in memory, train_run into a run folder, and the
ways a run must never lose finished work (full disks, unwritable folders, worker threads)."""

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from nnscratch import io as nnio
from nnscratch.errors import ConfigError, FileWriteError, ShapeError, TrainingDivergedError
from nnscratch.files import atomic_write
from nnscratch.models import MultiLayerNet
from nnscratch.optimizers import build_optimizer
from nnscratch.runs import RunDir, RunSettings, build_model, build_optimizer as build_run_optimizer
from nnscratch.runs import fit, parameter_count, train_run
from nnscratch.training import Trainer

QUICK = dict(hidden=[16], epochs=2, limit=600)


# ----------------------------------------------------------------- settings


def test_defaults_are_plain_nnscratch_train():
    s = RunSettings().resolved()
    assert (s.model, s.hidden, s.optimizer, s.lr, s.epochs, s.batch_size, s.seed) == \
        ("mlp", [256], "adam", 0.001, 5, 100, 0)
    assert RunSettings(optimizer="sgd", model="deep-cnn").resolved().lr == 0.1
    assert RunSettings(model="deep-cnn").resolved().hidden == [50]


@pytest.mark.parametrize("change, field", [
    (dict(epochs=0), "epochs"), (dict(epochs=2.5), "epochs"), (dict(epochs=True), "epochs"),
    (dict(batch_size=10**9), "batch_size"), (dict(lr=-1.0), "lr"), (dict(lr=float("nan")), "lr"),
    (dict(weight_decay=-0.1), "weight_decay"), (dict(dropout=1.0), "dropout"),
    (dict(hidden=[0]), "hidden"), (dict(hidden=[10] * 1000), "hidden"), (dict(hidden="256"), "hidden"),
    (dict(model="resnet"), "model"), (dict(optimizer="adamw"), "optimizer"), (dict(seed=-1), "seed"),
    (dict(limit=0), "limit"), (dict(batchnorm="yes"), "batchnorm"), (dict(dataset="cifar"), "dataset"),
    (dict(model="two-layer", hidden=[10, 10]), "hidden"), (dict(model="two-layer", dropout=0.2), "dropout"),
    (dict(model="simple-cnn", weight_decay=0.1), "weight_decay"),
    (dict(model="simple-cnn", dropout=0.2), "dropout"),
])
def test_every_bad_setting_is_a_config_error_naming_the_field(change, field):
    with pytest.raises(ConfigError) as caught:
        RunSettings(**change).resolved()
    assert str(caught.value).startswith(field), str(caught.value)
    assert len(str(caught.value)) < 300  # a 1000-layer list is shown cut short


def test_settings_round_trip_through_json():
    s = RunSettings(model="mlp", hidden=[64, 32], dropout=0.25, batchnorm=True, seed=3, limit=100).resolved()
    again = RunSettings.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s
    with pytest.raises(ConfigError, match="unknown run settings"):
        RunSettings.from_dict({**s.to_dict(), "learning_rate": 1})
    with pytest.raises(ConfigError, match="epochs"):
        RunSettings.from_dict({**s.to_dict(), "epochs": "3"})


# ----------------------------------------------------------------- building


def test_build_model_takes_any_input_shape_and_class_count():
    mlp = build_model(RunSettings(hidden=[7]), input_shape=(13,), n_classes=3)
    assert mlp.params["W1"].shape == (13, 7) and mlp.params["W2"].shape == (7, 3)
    cnn = build_model(RunSettings(model="simple-cnn", hidden=[9]), input_shape=(1, 8, 8), n_classes=4)
    assert cnn.predict(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 4)
    with pytest.raises(ConfigError, match=r"\(channels, height, width\)"):
        build_model(RunSettings(model="deep-cnn"), input_shape=(64,))
    for s in (RunSettings(hidden=[32, 16], batchnorm=True), RunSettings(model="two-layer"),
              RunSettings(model="simple-cnn")):
        built = build_model(s)
        assert parameter_count(s) == sum(p.size for p in built.params.values())
    assert type(build_run_optimizer(RunSettings(optimizer="momentum"))).__name__ == "Momentum"


def test_same_settings_same_initial_weights():
    a, b = build_model(RunSettings(seed=4)), build_model(RunSettings(seed=4))
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


# ----------------------------------------------------------------- fit


def small_data(n=300, features=20, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, features)) * 3
    t = rng.integers(0, classes, n)
    x = (centres[t] + rng.normal(size=(n, features))).astype(np.float32)
    return x, t


def test_fit_trains_in_memory_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, t = small_data()
    result = fit(RunSettings(hidden=[16], epochs=5, batch_size=20, lr=0.01), (x[:240], t[:240], x[240:], t[240:]))
    assert list(tmp_path.iterdir()) == []
    assert result.model.params["W1"].shape == (20, 16) and result.model.params["W2"].shape == (16, 3)
    assert len(result.history.epochs) == 5 and result.history.test_acc_list[-1] > 0.9
    assert not result.interrupted


def test_fit_continues_a_given_model_like_one_longer_run():
    x, t = small_data()
    s = RunSettings(hidden=[8], epochs=4, batch_size=30, optimizer="sgd")
    whole = fit(s, (x, t, None, None))
    model = build_model(s, input_shape=(20,), n_classes=3)
    optimizer = build_run_optimizer(s)
    first = fit(RunSettings(**{**s.to_dict(), "epochs": 2}), (x, t, None, None), model=model, optimizer=optimizer)
    assert first.model is model
    # A new fit restarts the epoch counter (and the shuffling): not the same as one run of 4,
    # but it does train the given model further.
    before = model.params["W1"].copy()
    fit(RunSettings(**{**s.to_dict(), "epochs": 2}), (x, t, None, None), model=model, optimizer=optimizer)
    assert not np.array_equal(before, model.params["W1"])
    assert whole.model is not model


def test_fit_stops_an_exploding_loss_naming_the_learning_rate():
    x, t = small_data()
    with pytest.raises(TrainingDivergedError, match="lr=1e\\+06"):
        fit(RunSettings(hidden=[16], optimizer="adam", lr=1e6, epochs=20, batch_size=10), (x, t, None, None))


def test_nan_inputs_blame_the_data_not_the_learning_rate():
    x, t = small_data()
    x[3, 4] = np.nan
    with pytest.raises(ShapeError, match="x_train holds 1 NaN or infinite values") as caught:
        fit(RunSettings(hidden=[4], epochs=1), (x, t, None, None))
    assert "not a learning-rate problem" in str(caught.value)


def test_checkpoint_resumes_mid_epoch_exactly_through_the_library(tmp_path):
    """Stop at batch 7 of epoch 2, save, load, go on: the same weights as never stopping."""
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
    path = nnio.save_checkpoint(tmp_path / "checkpoint.npz", first.state_dict(),
                                model=first_model, optimizer=first_optimizer)
    checkpoint = nnio.load_checkpoint(path)
    metadata = json.dumps(checkpoint.metadata)
    assert "model_rng_state" not in metadata  # the model's random state is stored once
    second = Trainer(checkpoint.model, checkpoint.optimizer, x, t, x[:40], t[:40], epochs=3,
                     batch_size=10, seed=4)
    second.load_state_dict(checkpoint.trainer_state)
    second.fit()
    for key in model.params:
        assert np.array_equal(checkpoint.model.params[key], model.params[key]), key
    for key in model.buffers:
        assert np.array_equal(checkpoint.model.buffers[key], model.buffers[key]), key


# ----------------------------------------------------------------- train_run


def test_train_run_writes_a_complete_run(tmp_path):
    lines = []
    result = train_run(RunSettings(**QUICK), tmp_path / "run", log=lines.append)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(
        ["model.npz", "checkpoint.npz", "history.json", "history.csv", "loss.png", "accuracy.png",
         "confusion.png", "misclassified.png"])
    assert result.files[:3] == ["model.npz", "history.json", "history.csv"]
    saved = nnio.load_model(tmp_path / "run" / "model.npz")
    assert all(np.array_equal(saved.params[k], result.model.params[k]) for k in saved.params)
    meta = nnio.read_model_metadata(tmp_path / "run" / "model.npz")
    assert meta["summary"]["test_accuracy"] == pytest.approx(result.test_accuracy)
    assert lines[0].startswith("Training MultiLayerNet (hidden 16), adam lr=0.001 on MNIST (600 training")
    assert any(line.startswith("epoch 2/2  loss") for line in lines)
    assert lines[-2].startswith("Test accuracy")


def test_resume_of_a_no_plots_run_writes_no_plots(tmp_path):
    out = tmp_path / "quiet"

    class StopEarly:
        def on_batch_end(self, trainer, iteration, loss):
            if iteration == 3:
                trainer.request_stop()

    first = train_run(RunSettings(**QUICK), out, plots=False, callbacks=[StopEarly()], log=None)
    assert first.interrupted and first.stop_signal is None
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]
    train_run(resume=out, log=None)
    assert not list(out.glob("*.png"))
    assert (out / "model.npz").is_file()


def test_train_run_from_a_worker_thread_can_be_stopped_by_a_callback(tmp_path):
    """What the drawing page does: a run in a thread, stopped from outside, resumable."""
    out = tmp_path / "threaded"
    epochs_seen = []
    stop = threading.Event()

    class Page:
        def on_epoch_end(self, trainer, epoch, record):
            epochs_seen.append(record["test_acc"])
            stop.set()

        def on_batch_end(self, trainer, iteration, loss):
            if stop.is_set():
                trainer.request_stop()

    results = []
    worker = threading.Thread(target=lambda: results.append(
        train_run(RunSettings(hidden=[16], epochs=3, limit=600), out, callbacks=[Page()], log=None)))
    worker.start()
    worker.join(120)
    assert not worker.is_alive()
    (result,) = results
    assert result.interrupted and len(epochs_seen) == 1
    assert nnio.load_checkpoint(out / "checkpoint.npz").trainer_state["epoch"] == 1
    resumed = train_run(resume=out, log=None, plots=False)
    assert len(resumed.history.epochs) == 3


def test_a_refused_start_leaves_no_folder_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_MIRRORS", "http://127.0.0.1:9/")  # nothing listens on port 9
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "deep" / "er" / "run"
    with pytest.raises(Exception, match="could not download"):
        train_run(RunSettings(dataset="kmnist", **QUICK), out, log=None)
    assert not out.exists()
    with pytest.raises(ConfigError, match="epochs"):
        train_run(RunSettings(epochs=0), out, log=None)
    assert not out.exists()


def test_run_dir_claim_is_exclusive_and_dies_with_its_holder(tmp_path):
    first = RunDir(tmp_path / "r")
    first.claim(create=True)
    second = RunDir(tmp_path / "r")
    with pytest.raises(ConfigError, match=f"in use by another training run \\(pid {os.getpid()}"):
        second.claim(create=True)
    first.release()
    second.claim(create=False)
    second.release()
    assert list((tmp_path / "r").iterdir()) == []


# ----------------------------------------------------------------- full and read-only disks


@contextlib.contextmanager
def small_disk(path: Path, size: str, *options: str):
    """A real tmpfs of `size` at `path` (needs root, which CI has)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join((f"size={size}", *options)), "tmpfs",
                              str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); CI runs as root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def nnscratch(*args, cwd=None):
    script = Path(sys.executable).parent / "nnscratch"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "nnscratch.cli"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)


def test_a_disk_without_room_is_refused_before_training(tmp_path):
    with small_disk(tmp_path / "tiny", "256k") as disk:
        result = nnscratch("train", "--limit", 600, "--epochs", 1, "--out", disk / "run")
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {disk / 'run'}: not enough free space"), lines
        assert "epoch" not in result.stdout  # refused before training
        assert not (disk / "run").exists()


def test_a_read_only_folder_is_refused_before_training(tmp_path):
    with small_disk(tmp_path / "ro", "1m", "ro") as disk:
        result = nnscratch("train", "--limit", 600, "--epochs", 1, "--out", disk / "run")
        assert result.returncode == 2
        assert result.stderr.startswith(f"error: {disk / 'run'}: cannot create the run folder: "
                                        "Read-only file system"), result.stderr
        assert "Traceback" not in result.stderr and "epoch" not in result.stdout


def test_a_disk_that_fills_up_later_names_the_file_and_keeps_the_last_checkpoint(tmp_path):
    with small_disk(tmp_path / "filling", "16m") as disk:
        out = disk / "run"
        filler = disk / "someone-else.bin"

        class FillTheDisk:  # another program takes the space during the second epoch
            def on_epoch_end(self, trainer, epoch, record):
                if epoch == 2:
                    with contextlib.suppress(OSError), open(filler, "wb") as f:
                        while True:
                            f.write(b"\0" * 65536)

        with pytest.raises(FileWriteError) as caught:
            train_run(RunSettings(hidden=[256], epochs=3, limit=600), out, callbacks=[FillTheDisk()], log=None)
        message = str(caught.value)
        assert message.startswith(f"{out / 'checkpoint.npz'}: cannot write: no space left on the device")
        assert ".tmp" not in message and "Errno" not in message
        assert f"the last good checkpoint (end of epoch 1) is kept in {out / 'checkpoint.npz'}" in message
        filler.unlink()
        assert nnio.load_checkpoint(out / "checkpoint.npz").trainer_state["epoch"] == 1
        assert not list(out.glob(".*.tmp"))


def test_atomic_write_on_a_full_disk_names_the_file(tmp_path):
    with small_disk(tmp_path / "full", "64k") as disk:
        target = disk / "history.json"
        with pytest.raises(FileWriteError, match=f"^{target}: cannot write: no space left on the device$"):
            with atomic_write(target, "wb") as f:
                f.write(b"x" * 1_000_000)
        assert list(disk.iterdir()) == []


def test_trainer_takes_misaligned_data_into_aligned_memory():
    """Arrays from some buffers (e.g. Dask's transfers) are misaligned; NumPy then skips BLAS."""
    x, t = small_data(n=60)
    raw = np.zeros(x.nbytes + 1, np.uint8)
    misaligned = np.frombuffer(raw.data, dtype=np.float32, count=x.size, offset=1).reshape(x.shape)
    misaligned[...] = x
    assert not misaligned.flags.aligned
    trainer = Trainer(MultiLayerNet(20, [4], 3, seed=0), "sgd", misaligned, t, epochs=1)
    assert trainer.x_train.flags.aligned and np.array_equal(trainer.x_train, x)


def test_trainer_without_shuffling_keeps_the_given_order():
    x, t = small_data(n=40)
    seen = []

    class Batches:
        def on_batch_end(self, trainer, iteration, loss):
            seen.append(trainer._permutation[(trainer.batch_index - 1) * 10:trainer.batch_index * 10].copy())

    Trainer(MultiLayerNet(20, [4], 3, seed=0), "sgd", x, t, epochs=2, batch_size=10, shuffle=False,
            callbacks=[Batches()]).fit()
    assert np.array_equal(np.concatenate(seen), np.tile(np.arange(40), 2))


@pytest.mark.parametrize("special", ["fifo", "directory", "device"])
def test_atomic_write_never_replaces_what_is_not_a_regular_file(tmp_path, special):
    """As root, renaming over /dev/null would turn it into a file for the whole machine."""
    if special == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    elif special == "directory":
        target = tmp_path / "folder"
        target.mkdir()
    else:
        target = Path(os.devnull)
    with pytest.raises(FileWriteError, match="not a regular file|is a directory"):
        with atomic_write(target, "wb") as f:
            f.write(b"x")
    assert os.stat(os.devnull).st_mode & 0o170000 == 0o020000  # still a character device
    if special != "device":
        assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left


def test_train_into_dev_null_is_refused_and_dev_null_survives(tmp_path):
    result = nnscratch("train", "--out", os.devnull, "--limit", 100)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert os.stat(os.devnull).st_mode & 0o170000 == 0o020000
