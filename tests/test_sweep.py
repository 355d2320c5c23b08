"""nnscratch sweep: the book's chapter 6.5 search, on a real Dask cluster.

The cluster is real: a LocalCluster on 127.0.0.1 with two worker processes
and no dashboard, started once for the module. Sweeps are tiny (a few trials
of a few epochs on 60 images) so that the file stays quick.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from nnscratch.datasets import load_mnist  # noqa: E402
from nnscratch.errors import ConfigError, NnscratchError  # noqa: E402
from nnscratch.io import load_model, read_model_metadata  # noqa: E402
from nnscratch.sweep import (CRASH_ONCE_VARIABLE, NO_FIXED_PORT, TRIAL_FIELDS, SweepSettings,  # noqa: E402
                             load_sweep_data, read_trials, run_sweep, run_trial, trial_parameters)

TINY = SweepSettings(trials=4, epochs=3, limit=60, hidden=(16, 16), batch_size=20, lr_range=(1e-3, 1e-1))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, env={"OPENBLAS_NUM_THREADS": "1"},
                           scheduler_kwargs=NO_FIXED_PORT)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("seconds", "worker")} for row in rows]


def _quiet(*_):
    pass


# ---------------------------------------------------------------------------- trial draws and data


def test_trial_draws_are_log_uniform_in_the_ranges_and_depend_on_seed_and_index_only():
    settings = SweepSettings().checked()
    draws = [trial_parameters(settings, i) for i in range(2000)]
    log_lr = np.log10([d["lr"] for d in draws])
    log_wd = np.log10([d["weight_decay"] for d in draws])
    assert -6 <= log_lr.min() and log_lr.max() <= -2 and abs(log_lr.mean() + 4) < 0.1
    assert -8 <= log_wd.min() and log_wd.max() <= -4 and abs(log_wd.mean() + 6) < 0.1
    assert abs(np.corrcoef(log_lr, log_wd)[0, 1]) < 0.1
    # Index 7 draws the same whatever the number of trials; another seed or index draws otherwise.
    assert trial_parameters(SweepSettings(trials=8), 7) == trial_parameters(SweepSettings(trials=500), 7)
    assert trial_parameters(settings, 7) != trial_parameters(settings, 8)
    assert trial_parameters(settings, 7) != trial_parameters(SweepSettings(seed=1), 7)
    assert len({d["seed"] for d in draws}) == len(draws)


def test_the_books_split_500_images_100_of_them_validate():
    data = load_sweep_data(SweepSettings().checked())
    assert data.x_train.shape == (400, 784) and data.x_val.shape == (100, 784)
    (x, t), _ = load_mnist(normalize=True, limit=500)
    # Together the two parts are exactly the first 500 training images, each once.
    both = np.concatenate([data.x_train, data.x_val])
    labels = np.concatenate([data.t_train, data.t_val])
    order_given = np.lexsort(both.T)
    order_expected = np.lexsort(x.T)
    np.testing.assert_array_equal(both[order_given], x[order_expected])
    np.testing.assert_array_equal(labels[order_given], t[order_expected])
    # Shuffled before the split: the validation images are not simply the first 100.
    assert not np.array_equal(data.x_val, x[:100])


@pytest.mark.parametrize("change, flag", [
    (dict(trials=0), "--trials"), (dict(epochs=0), "--epochs"),
    (dict(lr_range=(1e-2, 1e-6)), "--lr-range"), (dict(weight_decay_range=(0, 1e-4)), "--weight-decay-range"),
    (dict(validation=1.0), "--validation"), (dict(limit=3, validation=0.1), "--validation"),
    (dict(hidden=()), "--hidden"), (dict(hidden=(100_000, 100_000)), "--hidden"), (dict(seed=-1), "--seed"),
    (dict(epochs=10**9), "--epochs"), (dict(batch_size=0), "--batch-size"),
    # Before: int() made 1.5 a layer of 1, and "100" the layers 1, 0, 0.
    (dict(hidden=(1.5,)), "--hidden must be layer sizes"), (dict(hidden="100"), "--hidden must be layer sizes"),
])
def test_bad_settings_are_config_errors_naming_the_option(change, flag):
    with pytest.raises(ConfigError, match=flag):
        SweepSettings(**change).checked()


# ---------------------------------------------------------------------------- sweeps on the cluster


def test_a_limit_beyond_mnist_is_recorded_as_all_of_it():
    # Before: --limit 100000000 was recorded as such, and a rerun with --limit 60000 (the same
    # images) was refused as a sweep "made with other settings".
    assert SweepSettings(limit=10**8).checked().limit == 60_000
    assert SweepSettings(limit=10**8).checked().differences(SweepSettings(limit=60_000).checked()) == []
    assert SweepSettings(limit=500).checked().limit == 500


def test_scattered_data_arrives_aligned_so_numpy_uses_blas(client):
    # Dask's buffers can put a float32 array at an odd address; NumPy's matmul then skips BLAS.
    data = load_sweep_data(TINY)
    [future] = client.scatter([data], broadcast=True, hash=False)
    flags = client.submit(lambda d: [a.flags.aligned and a.flags.c_contiguous
                                     for a in (d.x_train, d.t_train, d.x_val, d.t_val)], future).result()
    assert flags == [True] * 4


def test_sweep_writes_every_trial_once_with_its_curves_best_model_and_figures(client, tmp_path):
    out = tmp_path / "sweep"
    result = run_sweep(TINY, out, client=client, log=_quiet)

    rows = _csv_rows(out / "trials.csv")
    assert list(rows[0]) == list(TRIAL_FIELDS)
    assert sorted(int(r["trial"]) for r in rows) == [0, 1, 2, 3]
    workers = set(client.scheduler_info()["workers"])
    for row in rows:
        params = trial_parameters(TINY, int(row["trial"]))
        assert float(row["lr"]) == params["lr"] and float(row["weight_decay"]) == params["weight_decay"]
        assert int(row["seed"]) == params["seed"] and row["status"] == "ok" and int(row["epochs"]) == 3
        assert row["worker"] in workers
        assert 0 <= float(row["val_acc"]) <= 1 and float(row["seconds"]) > 0
        curves = json.loads((out / "trials" / f"{int(row['trial']):04d}.json").read_text())
        assert len(curves["val_acc"]) == len(curves["train_acc"]) == 3
        assert curves["val_acc"][-1] == float(row["val_acc"]) and curves["train_acc"][-1] == float(row["train_acc"])

    # The best model is the trial with the highest validation accuracy, and it scores that accuracy.
    best = max(rows, key=lambda r: (float(r["val_acc"]), -int(r["trial"])))
    assert result.best["trial"] == int(best["trial"])
    model = load_model(out / "best_model.npz")
    assert read_model_metadata(out / "best_model.npz")["summary"]["sweep_trial"] == int(best["trial"])
    data = load_sweep_data(TINY)
    assert model.accuracy(data.x_val, data.t_val) == pytest.approx(float(best["val_acc"]))
    for name in ("best_trials.png", "lr_weight_decay.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


def test_a_sweep_whose_every_trial_diverged_names_no_best_and_says_why(client, tmp_path):
    out = tmp_path / "sweep"
    lines = []
    settings = SweepSettings(**{**TINY.to_dict(), "trials": 2, "lr_range": (1e4, 1e5)})
    result = run_sweep(settings, out, client=client, log=lines.append)
    assert [r["status"] for r in result.rows] == ["diverged", "diverged"]
    # Before: a diverged trial was "best: ... val acc nan", "Best-1 (val acc: nan)", the summary listed
    # a best_model.npz that was never written, and best_trials.png held empty panels titled "val nan".
    assert result.best is None and "best_model" not in result.files
    assert not (out / "best_model.npz").exists() and not (out / "best_trials.png").exists()
    assert (out / "lr_weight_decay.png").read_bytes()[:8] == PNG_MAGIC
    text = "\n".join(lines)
    assert "nan" not in text and "Best-" not in text
    assert "2 trials diverged (no accuracy, no network): every learning rate drawn from --lr-range " \
           "10000 100000 was too large" in text


def test_diverged_trials_are_never_the_best_nor_in_the_best_trials_figure(client, tmp_path):
    from nnscratch.sweep import best_trial

    diverged = {"trial": 0, "val_acc": math.nan, "status": "diverged"}
    assert best_trial([diverged]) is None
    assert best_trial([diverged, {"trial": 1, "val_acc": 0.0, "status": "ok"}])["trial"] == 1
    out = tmp_path / "sweep"
    settings = SweepSettings(**{**TINY.to_dict(), "trials": 4, "lr_range": (1e-1, 1e3)})
    result = run_sweep(settings, out, client=client, plots=False, log=_quiet)
    statuses = sorted(r["status"] for r in result.rows)
    assert "diverged" in statuses and "ok" in statuses, "these draws need a trial of each kind"
    assert result.best["status"] == "ok"
    from nnscratch.sweep import _draw

    shown = []
    import nnscratch.plots.sweep as plots

    real = plots.plot_best_trials
    plots.plot_best_trials = lambda curves, path: shown.extend(curves) or real(curves, path)
    try:
        _draw(out, result.settings, result.rows, _quiet)
    finally:
        plots.plot_best_trials = real
    assert sorted(c["trial"] for c in shown) == sorted(r["trial"] for r in result.rows if r["status"] == "ok")


def test_same_seed_same_trials_whoever_runs_them(client, tmp_path):
    first = run_sweep(TINY, tmp_path / "a", client=client, plots=False, log=_quiet)
    run_sweep(TINY, tmp_path / "b", client=client, plots=False, log=_quiet)
    a = _without_timing(_csv_rows(tmp_path / "a" / "trials.csv"))
    b = _without_timing(_csv_rows(tmp_path / "b" / "trials.csv"))
    assert sorted(a, key=lambda r: r["trial"]) == sorted(b, key=lambda r: r["trial"])
    # A trial trained here, outside Dask, reaches what the worker reported.
    row = first.rows[2]
    here = run_trial(TINY.to_dict(), trial_parameters(TINY, 2), load_sweep_data(TINY))
    assert here["val_acc"] == row["val_acc"] and here["train_acc"] == row["train_acc"]
    # Another seed draws other trials.
    other = run_sweep(SweepSettings(**{**TINY.to_dict(), "seed": 1, "trials": 2}), tmp_path / "c",
                      client=client, plots=False, log=_quiet)
    assert [r["lr"] for r in other.rows] != [r["lr"] for r in first.rows[:2]]


def test_rerun_trains_nothing_done_and_more_trials_adds_only_the_new(client, tmp_path):
    out = tmp_path / "sweep"
    small = SweepSettings(**{**TINY.to_dict(), "trials": 3})
    run_sweep(small, out, client=client, plots=False, log=_quiet)
    before = (out / "trials.csv").read_bytes()
    curves = {p.name: p.stat().st_mtime_ns for p in (out / "trials").iterdir()}

    again = run_sweep(small, out, client=client, plots=False, log=_quiet)
    assert again.trained == [] and (out / "trials.csv").read_bytes() == before
    assert [r["trial"] for r in again.rows] == [0, 1, 2]

    more = run_sweep(SweepSettings(**{**TINY.to_dict(), "trials": 5}), out, client=client, plots=False,
                     log=_quiet)
    assert sorted(more.trained) == [3, 4]
    after = (out / "trials.csv").read_bytes()
    assert after.startswith(before) and len(after.splitlines()) == 1 + 5
    assert {p.name: p.stat().st_mtime_ns for p in (out / "trials").iterdir() if p.name in curves} == curves
    fresh = _without_timing(_csv_rows(out / "trials.csv"))
    run_sweep(SweepSettings(**{**TINY.to_dict(), "trials": 5}), tmp_path / "fresh", client=client,
              plots=False, log=_quiet)
    assert sorted(fresh, key=lambda r: r["trial"]) == sorted(
        _without_timing(_csv_rows(tmp_path / "fresh" / "trials.csv")), key=lambda r: r["trial"])


def test_a_torn_last_line_is_dropped_and_that_trial_runs_again(client, tmp_path):
    out = tmp_path / "sweep"
    small = SweepSettings(**{**TINY.to_dict(), "trials": 2})
    run_sweep(small, out, client=client, plots=False, log=_quiet)
    with open(out / "trials.csv", "a") as handle:
        handle.write("2,0.0123,4.5e-0")  # a sweep killed while writing trial 2's row
    result = run_sweep(SweepSettings(**{**TINY.to_dict(), "trials": 3}), out, client=client, plots=False,
                       log=_quiet)
    assert result.trained == [2]
    assert sorted(read_trials(out / "trials.csv")) == [0, 1, 2]
    assert [r["trial"] for r in _csv_rows(out / "trials.csv")].count("2") == 1


def test_other_settings_in_the_same_folder_are_refused(client, tmp_path):
    out = tmp_path / "sweep"
    run_sweep(SweepSettings(**{**TINY.to_dict(), "trials": 1}), out, client=client, plots=False, log=_quiet)
    with pytest.raises(ConfigError, match=r"--seed 0 \(this run: 5\)"):
        run_sweep(SweepSettings(**{**TINY.to_dict(), "seed": 5}), out, client=client, log=_quiet)
    with pytest.raises(ConfigError, match="--epochs"):
        run_sweep(SweepSettings(**{**TINY.to_dict(), "epochs": 9}), out, client=client, log=_quiet)


def _refused_while_another_sweep_holds(out, client):
    import fcntl

    from nnscratch.sweep import SweepError

    with open(out / ".nnscratch-sweep.lock", "w") as held:  # as a running sweep holds it
        held.write("12345")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(SweepError, match=r"in use by another nnscratch sweep \(pid 12345\)"):
            run_sweep(TINY, out, client=client, log=_quiet)


def test_a_folder_another_sweep_is_writing_to_is_refused(client, tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    _refused_while_another_sweep_holds(out, client)
    assert not (out / "trials.csv").exists()
    assert len(run_sweep(TINY, out, client=client, plots=False, log=_quiet).trained) == 4
    # With every trial on record a sweep still writes (the best model, the figures): held, it waits its turn.
    (out / "best_model.npz").unlink()
    _refused_while_another_sweep_holds(out, client)
    assert not (out / "best_model.npz").exists() and not (out / "best_trials.png").exists()
    assert run_sweep(TINY, out, client=client, log=_quiet).trained == []
    assert (out / "best_model.npz").exists() and (out / "best_trials.png").exists()


def test_a_worker_dying_mid_trial_loses_and_duplicates_no_trial(client, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ONCE_VARIABLE, f"1:{marker}")
    settings = SweepSettings(**{**TINY.to_dict(), "trials": 4, "epochs": 4})
    workers_before = set(client.scheduler_info()["workers"])
    result = run_sweep(settings, out, client=client, plots=False, log=_quiet)
    assert marker.exists()  # trial 1's first attempt did kill its worker process ...
    client.wait_for_workers(2, timeout=60)  # ... which the nanny restarts, at a new address
    assert len(set(client.scheduler_info()["workers"]) - workers_before) == 1
    trials = [int(r["trial"]) for r in _csv_rows(out / "trials.csv")]
    assert sorted(trials) == [0, 1, 2, 3]
    row = result.rows[1]
    assert row["status"] == "ok" and row["epochs"] == 4
    # The trial that lost its worker still reached what an undisturbed run reaches.
    here = run_trial(settings.to_dict(), trial_parameters(settings, 1), load_sweep_data(settings))
    assert here["val_acc"] == row["val_acc"]


def test_the_figures():
    from nnscratch.plots.sweep import plot_best_trials, plot_lr_weight_decay

    trials = [{"val_acc_list": [0.1, 0.2 + i / 100], "train_acc_list": [0.1, 0.3], "val_acc": 0.2 + i / 100,
               "lr": 1e-3, "weight_decay": 1e-6} for i in range(7)]
    fig = plot_best_trials(trials)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 7 and len(fig.axes) == 10  # a 5-column grid, the rest hidden
    assert visible[0].get_title().startswith("Best-1")
    # One epoch each: a line of one point would be invisible; a marker is drawn, at epoch 1 (no 0.975).
    fig = plot_best_trials([{"val_acc_list": [0.4], "train_acc_list": [0.5]}])
    ax = fig.axes[0]
    assert [line.get_marker() for line in ax.get_lines()] == ["o", "o"]
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks())
    fig = plot_lr_weight_decay([1e-5, 1e-3], [1e-7, 1e-6], [math.nan, math.nan])  # every trial diverged
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["diverged"]
    fig = plot_lr_weight_decay([1e-5, 1e-3, 1e-2], [1e-7, 1e-6, 1e-5], [0.2, 0.7, math.nan])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    fig = plot_lr_weight_decay([1e-5], [1e-7], [0.5], lr_range=(1e-6, 1e-2), weight_decay_range=(1e-8, 1e-4))
    low, high = fig.axes[0].get_xlim()
    assert low < 1e-6 < 1e-2 < high < 1e-1  # the whole searched range, with a margin
    with pytest.raises(NnscratchError):
        plot_lr_weight_decay([1e-5], [1e-7, 1e-6], [0.2])


# ---------------------------------------------------------------------------- the command


def _nnscratch(*args, timeout=120, env=None):
    return subprocess.run([sys.executable, "-m", "nnscratch", "sweep", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


TINY_FLAGS = ["--trials", "3", "--epochs", "2", "--limit", "60", "--hidden", "16", "--batch-size", "20",
              "--no-progress"]


def test_command_on_a_running_scheduler_then_resumed(client, tmp_path):
    out = tmp_path / "sweep"
    done = _nnscratch(*TINY_FLAGS, "--out", str(out), "--scheduler", client.scheduler.address)
    assert done.returncode == 0, done.stderr
    assert "3 trials" in done.stdout and "best: lr" in done.stdout
    assert sorted(read_trials(out / "trials.csv")) == [0, 1, 2]
    assert {r["worker"] for r in _csv_rows(out / "trials.csv")} <= set(client.scheduler_info()["workers"])
    for name in ("best_model.npz", "best_trials.png", "lr_weight_decay.png", "sweep.json"):
        assert (out / name).is_file()
    again = _nnscratch(*TINY_FLAGS, "--out", str(out), "--scheduler", client.scheduler.address)
    assert again.returncode == 0 and "0 trained now, 3 on record" in again.stdout


def test_command_on_its_own_local_cluster(tmp_path):
    out = tmp_path / "sweep"
    done = _nnscratch(*TINY_FLAGS, "--workers", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(read_trials(out / "trials.csv")) == [0, 1, 2]
    assert "local Dask cluster of 1 worker process" in done.stdout
    assert done.stderr == ""  # no Dask warnings or logs, though the module's cluster holds port 8787


@pytest.mark.parametrize("flags, message", [
    (["--lr-range", "1e-2", "1e-6"], "--lr-range is reversed"),
    (["--weight-decay-range", "1e-4", "1e-8"], "--weight-decay-range is reversed"),
    (["--trials", "0"], "--trials must be"),
    (["--scheduler", "not-an-address"], "--scheduler must look like tcp://HOST:PORT"),
])
def test_command_bad_flags_one_error_line(tmp_path, flags, message):
    done = _nnscratch(*flags, "--out", str(tmp_path / "s"), timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_command_unreachable_scheduler_fails_quickly(tmp_path):
    import socket

    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    start = time.monotonic()
    done = _nnscratch("--scheduler", f"tcp://127.0.0.1:{port}", "--connect-timeout", "1",
                      "--out", str(tmp_path / "s"), timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot reach the Dask scheduler") and done.stderr.count("\n") == 1
    assert time.monotonic() - start < 30
    assert not (tmp_path / "s").exists()


@pytest.fixture
def not_a_scheduler():
    """A TCP server on 127.0.0.1 that is not Dask: ``greeting`` None accepts and stays silent."""
    import socket
    import threading

    servers = []

    def start(greeting):
        server = socket.create_server(("127.0.0.1", 0))
        server.settimeout(0.2)
        stop, held = threading.Event(), []

        def serve():
            while not stop.is_set():
                try:
                    connection, _ = server.accept()
                except OSError:
                    continue
                held.append(connection)  # kept open, as a server waiting for a request does
                if greeting is not None:
                    connection.sendall(greeting)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        servers.append((server, stop, thread, held))
        return f"tcp://127.0.0.1:{server.getsockname()[1]}"

    yield start
    for server, stop, thread, held in servers:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        server.close()


@pytest.mark.parametrize("greeting, message", [
    # An HTTP server, say.
    (None, "accepted the connection but sent nothing within 1 s: a Dask scheduler greets at once, so it is "
           "another server (a wrong port? `dask scheduler` listens on 8786 by default) or a scheduler too busy "
           "to answer (a larger --connect-timeout)"),
    # Read by Dask as a length: 3 EiB.
    (b"SSH-2.0-OpenSSH_9.6\r\n", "answered in another protocol: it is not a Dask scheduler (a wrong port? "
                                  "`dask scheduler` listens on 8786 by default)"),
])
def test_command_on_something_else_than_a_scheduler_fails_within_the_timeout(
        tmp_path, not_a_scheduler, greeting, message):
    address = not_a_scheduler(greeting)
    start = time.monotonic()
    # Before: a silent server held the command until it hung up, whatever --connect-timeout said,
    # and a greeting made Dask try to allocate exabytes ("error: out of memory").
    done = _nnscratch(*TINY_FLAGS, "--scheduler", address, "--connect-timeout", "1",
                      "--out", str(tmp_path / "s"), timeout=45)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: {address} {message}\n"
    assert time.monotonic() - start < 30
    assert not (tmp_path / "s").exists()


def test_command_refuses_more_local_workers_than_twice_the_cores_and_an_endless_timeout(tmp_path):
    from nnscratch.sweep import max_local_workers

    # Before: --workers 1000 started a thousand Python processes on a 2-core machine and never
    # finished; --connect-timeout inf was "unexpected KeyError: 'Invalid time unit: infs ...'".
    for flags, message in ((["--workers", str(max_local_workers() + 1)],
                            f"--workers must be an integer from 1 to {max_local_workers()}"),
                           (["--connect-timeout", "inf", "--scheduler", "tcp://127.0.0.1:8786"],
                            "--connect-timeout must be a number of seconds above 0 and at most 86400, got inf")):
        done = _nnscratch(*TINY_FLAGS, *flags, "--out", str(tmp_path / "s"), timeout=60)
        assert done.returncode == 2 and done.stderr.startswith(f"error: {message}"), done.stderr
        assert done.stderr.count("\n") == 1
        assert not (tmp_path / "s").exists()


def test_command_ctrl_c_keeps_the_finished_trials_and_a_rerun_completes_the_sweep(client, tmp_path):
    import signal

    out = tmp_path / "sweep"
    flags = ["--trials", "16", "--epochs", "400", "--limit", "60", "--hidden", "16", "--batch-size", "20",
             "--no-progress", "--no-plots", "--out", str(out), "--scheduler", client.scheduler.address]
    process = subprocess.Popen([sys.executable, "-m", "nnscratch", "sweep", *flags], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if (out / "trials.csv").exists() and len((out / "trials.csv").read_bytes().splitlines()) >= 3:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr
    kept = read_trials(out / "trials.csv")
    assert 2 <= len(kept) < 16

    again = _nnscratch(*flags)
    assert again.returncode == 0, again.stderr
    assert f"{16 - len(kept)} trials to train ({len(kept)} on record)" in again.stdout
    trials = [int(r["trial"]) for r in _csv_rows(out / "trials.csv")]
    assert sorted(trials) == list(range(16))


@pytest.mark.parametrize("name, group, said, status", [
    ("SIGINT", True, "Interrupted", 130),  # a terminal's Ctrl-C reaches the whole group, the workers too
    ("SIGTERM", False, "Terminated", 143),  # kill, timeout: the driver alone, as nnscratch train takes it
])
def test_ctrl_c_in_a_terminal_and_sigterm_stop_the_driver_and_its_local_workers_quietly(
        tmp_path, name, group, said, status):
    import signal

    out = tmp_path / "sweep"
    flags = ["--trials", "8", "--epochs", "3000", "--limit", "60", "--hidden", "16", "--batch-size", "20",
             "--no-progress", "--no-plots", "--workers", "2", "--out", str(out)]
    process = subprocess.Popen([sys.executable, "-m", "nnscratch", "sweep", *flags], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            if (out / "trials.csv").exists() and len((out / "trials.csv").read_bytes().splitlines()) >= 2:
                break
            time.sleep(0.05)
        (os.killpg if group else os.kill)(process.pid, getattr(signal, name))
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == status, stderr
    # Before: on Ctrl-C the workers died of the signal first, and the scheduler logged "distributed.scheduler
    # - ERROR - Removing worker ... caused the cluster to lose scattered data" above this line; SIGTERM
    # killed the driver (exit -15) and multiprocessing warned of leaked semaphores.
    assert stderr == f"\n{said}: the finished trials are in {out}/trials.csv; rerun the same command " \
                     "to continue.\n"
    assert 1 <= len(read_trials(out / "trials.csv")) < 8
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # no worker process is left in the group
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("worker processes outlived the interrupted sweep")


def test_a_stop_whose_exception_python_dropped_still_stops_at_the_next_trial(client, tmp_path):
    """request_stop's exception can be dropped (raised inside a gc callback: "Exception ignored in
    <bound method GCDiagnosis._gc_callback ...>"); before, that SIGTERM was lost and the sweep ran on."""
    import signal

    import nnscratch.sweep as sweep

    def log(line):
        if "to train" in line:  # the request arrives, and its exception is lost
            sweep._stop_signal = signal.SIGTERM

    settings = SweepSettings(**{**TINY.to_dict(), "trials": 6})
    with pytest.raises(sweep.StopRequested) as info:
        run_sweep(settings, tmp_path / "sweep", client=client, plots=False, log=log)
    assert info.value.signum == signal.SIGTERM
    assert len(read_trials(tmp_path / "sweep" / "trials.csv")) == 1  # stopped once a trial was recorded
    assert run_sweep(settings, tmp_path / "sweep", client=client, plots=False, log=_quiet).trained != []


def test_command_without_dask_names_the_extra_to_install(tmp_path):
    blocked = tmp_path / "site"
    for name in ("distributed", "dask"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('No module named {name}')\n")
    done = _nnscratch(*TINY_FLAGS, "--out", str(tmp_path / "s"), timeout=60,
                      env={"PYTHONPATH": f"{blocked}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    assert done.returncode == 2
    assert done.stderr.startswith("error: nnscratch sweep needs the distributed package")
    assert "pip install 'nnscratch[sweep]'" in done.stderr and done.stderr.count("\n") == 1


def test_command_on_a_scheduler_without_workers_fails_quickly(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None, scheduler_kwargs=NO_FIXED_PORT) as empty:
        start = time.monotonic()
        done = _nnscratch(*TINY_FLAGS, "--scheduler", empty.scheduler_address, "--connect-timeout", "1",
                          "--out", str(tmp_path / "s"), timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: the Dask scheduler at") and "has no workers" in done.stderr
    assert done.stderr.count("\n") == 1 and time.monotonic() - start < 30
    assert not (tmp_path / "s").exists()


def test_command_in_a_terminal_shows_a_progress_bar_of_trials(client, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    flags = [f for f in TINY_FLAGS if f != "--no-progress"]
    process = subprocess.Popen([sys.executable, "-m", "nnscratch", "sweep", *flags, "--no-plots", "--out",
                                str(tmp_path / "s"), "--scheduler", client.scheduler.address],
                               stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    import select

    output, deadline = b"", time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1.0)[0]:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            output += chunk
    finally:
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()
        process.wait(timeout=60)
        os.close(master)
    text = output.decode(errors="replace").replace("\r", "\n")
    assert process.returncode == 0, text
    assert "trials: 100%" in text and "3/3" in text and "best val acc" in text


def test_fewer_trials_than_on_record_report_the_first_ones_and_their_best_model(client, tmp_path):
    out = tmp_path / "sweep"
    settings = SweepSettings(**{**TINY.to_dict(), "trials": 6, "lr_range": (1e-4, 0.3)})
    run_sweep(settings, out, client=client, plots=False, log=_quiet)
    rows = {int(r["trial"]): r for r in _csv_rows(out / "trials.csv")}
    best_of = {n: max(range(n), key=lambda i: (float(rows[i]["val_acc"]), -i)) for n in range(1, 7)}
    # Pick a smaller sweep whose best trial is not the best of all six: its model must be rebuilt.
    fewer = next((n for n in range(1, 6) if best_of[n] != best_of[6]), None)
    assert fewer is not None, "these draws make trial 0 the best of all: choose other TINY settings"
    result = run_sweep(SweepSettings(**{**settings.to_dict(), "trials": fewer}), out, client=client,
                       plots=False, log=_quiet)
    assert result.trained == [] and [r["trial"] for r in result.rows] == list(range(fewer))
    assert result.best["trial"] == best_of[fewer]
    assert read_model_metadata(out / "best_model.npz")["summary"]["sweep_trial"] == best_of[fewer]
    data = load_sweep_data(settings)
    accuracy = load_model(out / "best_model.npz").accuracy(data.x_val, data.t_val)
    assert accuracy == pytest.approx(float(rows[best_of[fewer]]["val_acc"]))
