"""The page's Train view: one small training run at a time, in a worker thread.

The run is :func:`nnscratch.runs.train_run`, exactly what ``nnscratch train``
does (run folder under ``--runs``, checkpoints, ``model.npz``, history); a
Trainer callback turns its progress into events (batch losses every few
batches, accuracies and the first layer's filters every epoch) that
``GET /api/train/events`` streams to the page. Stopping asks the trainer to
stop at the end of its batch; the run keeps its checkpoint (``nnscratch train
--resume`` continues it) but, like ``nnscratch train`` stopped with Ctrl-C,
writes no ``model.npz``: only a finished run joins the model picker.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

from .inputs import BadInput

__all__ = ["TrainingJob", "PAGE_DEFAULTS", "MAX_EVENTS"]

# A run from the page is small: an MLP on 10,000 images for 2 epochs takes seconds.
PAGE_DEFAULTS = {"model": "mlp", "hidden": [100], "epochs": 2, "limit": 10_000, "batch_size": 100}
PAGE_MODELS = ("mlp", "two-layer", "simple-cnn")
MAX_EPOCHS = 20
ALLOWED_KEYS = {"model", "hidden", "epochs", "limit", "optimizer", "lr", "batch_size", "seed",
                "weight_decay", "dropout", "batchnorm", "augment"}
# Events kept for late subscribers (a batch report every _BATCH_EVERY batches).
MAX_EVENTS = 5000
_BATCH_EVERY = 5
# Filters are sent at most this often while an epoch runs (seconds).
_FILTERS_EVERY_S = 1.0


class _Progress:
    """Trainer callback: events for the page, and the stop request."""

    def __init__(self, job: "TrainingJob"):
        self.job = job
        self._last_filters = 0.0

    def on_train_begin(self, trainer):
        self.job._trainer = trainer
        total = trainer.epochs * trainer.batches_per_epoch
        self.job._emit({"type": "begin", "epochs": trainer.epochs, "batches": total})
        if self.job._stop.is_set():
            trainer.request_stop()

    def on_epoch_begin(self, trainer, epoch):
        pass

    def on_batch_end(self, trainer, iteration, loss):
        if self.job._stop.is_set():
            trainer.request_stop()
        if iteration % _BATCH_EVERY == 0 or iteration == 1:
            event = {"type": "batch", "iteration": int(iteration), "epoch": int(trainer.epoch) + 1,
                     "loss": round(float(loss), 5)}
            now = time.monotonic()
            if now - self._last_filters >= _FILTERS_EVERY_S:
                self._last_filters = now
                event["filters"] = _filters(trainer.model)
            self.job._emit(event)

    def on_epoch_end(self, trainer, epoch, record):
        event = {"type": "epoch", "epoch": int(epoch)}
        for key in ("train_loss", "train_acc", "test_acc", "test_loss", "seconds"):
            value = record.get(key)
            if value is not None:
                event[key] = round(float(value), 5)
        event["filters"] = _filters(trainer.model)
        self.job._emit(event)

    def on_train_end(self, trainer):
        pass


def _filters(model):
    from .inference import first_layer_filters

    try:
        return first_layer_filters(model)
    except Exception:  # a picture must never stop a run
        return None


class TrainingJob:
    """At most one run at a time; its state and events for the page."""

    def __init__(self, runs_dir: Path, catalog=None):
        self.runs_dir = Path(runs_dir)
        self.catalog = catalog
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._trainer = None
        self._events: list[tuple[int, dict]] = []
        self._count = 0
        self._state = {"state": "idle"}

    # ------------------------------------------------------------ events
    def _emit(self, event: dict) -> None:
        with self._lock:
            if "filters" in event:
                # Only the newest picture of the filters is kept: each is tens of kilobytes, and
                # MAX_EVENTS of them would hold (and send a late subscriber) hundreds of megabytes.
                self._events = [(n, {k: v for k, v in e.items() if k != "filters"}) if "filters" in e else (n, e)
                                for n, e in self._events]
            self._count += 1
            self._events.append((self._count, event))
            if len(self._events) > MAX_EVENTS:
                del self._events[: len(self._events) - MAX_EVENTS]

    def events_after(self, cursor: int) -> tuple[list[tuple[int, dict]], bool]:
        """Events numbered above ``cursor``, and whether the run is over (no more will come)."""
        with self._lock:
            events = [(n, e) for n, e in self._events if n > cursor]
            finished = self._state["state"] not in ("running", "stopping")
        return events, finished

    def status(self) -> dict:
        with self._lock:
            return dict(self._state, events=self._count)

    # ------------------------------------------------------------ control
    def _settings(self, given: dict) -> dict:
        unknown = sorted(set(given) - ALLOWED_KEYS)
        if unknown:
            raise BadInput(422, f"unknown run settings {unknown}; allowed: {sorted(ALLOWED_KEYS)}")
        settings = dict(PAGE_DEFAULTS)
        settings.update({k: v for k, v in given.items() if v is not None})
        if settings["model"] not in PAGE_MODELS:
            raise BadInput(422, f"model must be one of {list(PAGE_MODELS)} from the page, got {settings['model']!r}")
        if "hidden" in given and given.get("hidden") is None:
            settings.pop("hidden")
        epochs = settings.get("epochs")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
            raise BadInput(422, f"epochs must be an integer from 1 to {MAX_EPOCHS} from the page, got {epochs!r}")
        limit = settings.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 100 <= limit <= 60000):
            raise BadInput(422, f"limit must be an integer from 100 to 60000, got {limit!r}")
        batch = settings.get("batch_size")
        if isinstance(batch, bool) or not isinstance(batch, int) or not 10 <= batch <= 1000:
            raise BadInput(422, f"batch_size must be an integer from 10 to 1000 from the page, got {batch!r}")
        hidden = settings.get("hidden")
        if hidden is not None and (not isinstance(hidden, list) or not 1 <= len(hidden) <= 4 or any(
                isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 1024 for h in hidden)):
            raise BadInput(422, f"hidden must be 1 to 4 layer sizes from 1 to 1024, got {hidden!r}")
        if settings["model"] != "mlp" and hidden is not None:
            settings["hidden"] = hidden[:1]
        return settings

    def start(self, given: dict) -> dict:
        """Start a run with ``given`` settings over the page's defaults; 409 while one runs."""
        try:
            from nnscratch import runs
        except ImportError:
            raise BadInput(409, "training from the page needs nnscratch.runs, which this installation lacks") from None
        settings = self._settings(given)
        try:
            run_settings = runs.RunSettings(**settings).resolved()
        except TypeError as exc:
            raise BadInput(422, f"invalid run settings: {exc}") from None
        with self._lock:
            if self._state["state"] in ("running", "stopping"):
                raise BadInput(409, "a training run is already running; stop it or wait for it to finish")
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            out = self.runs_dir / f"page-{settings['model']}-{stamp}"
            n = 2
            while out.exists():
                out = self.runs_dir / f"page-{settings['model']}-{stamp}-{n}"
                n += 1
            self._stop.clear()
            self._trainer = None
            self._events = []
            self._state = {"state": "running", "run": out.name, "settings": run_settings.to_dict(),
                           "started": time.time()}
            self._thread = threading.Thread(target=self._work, args=(runs, run_settings, out),
                                            name="nnscratch-page-training", daemon=True)
            self._thread.start()
            return dict(self._state)

    def stop(self) -> dict:
        with self._lock:
            if self._state["state"] != "running":
                return dict(self._state)
            self._state["state"] = "stopping"
            self._stop.set()
            trainer = self._trainer
        if trainer is not None:
            trainer.request_stop()
        return self.status()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _work(self, runs, settings, out: Path) -> None:
        try:
            self._run(runs, settings, out)
        finally:   # whatever happened, the run is over: the stream ends and another run may start
            with self._lock:
                if self._state["state"] in ("running", "stopping"):
                    self._state.update(state="failed", message="the training thread ended unexpectedly",
                                       finished=time.time())

    def _run(self, runs, settings, out: Path) -> None:
        try:
            try:
                self.runs_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:   # "[Errno 17] File exists: '...'" says little on the page
                what = "is a file, not a folder" if self.runs_dir.is_file() else (exc.strerror or str(exc))
                raise OSError(f"cannot use the runs folder {self.runs_dir}: {what}") from None
            result = runs.train_run(settings, out, callbacks=(_Progress(self),), plots=False, log=None,
                                    latest=False, handle_signals=False)
        except Exception as exc:  # the page shows it; the server goes on
            message = str(exc) or type(exc).__name__
            self._emit({"type": "failed", "message": message})
            with self._lock:
                self._state.update(state="failed", message=message, finished=time.time())
            return
        summary = {"state": "done", "finished": time.time(),
                   "interrupted": bool(getattr(result, "interrupted", False)),
                   "test_accuracy": getattr(result, "test_accuracy", None)}
        if self.catalog is not None:
            try:   # the run is saved whatever happens here (a run folder removed mid-scan, ...)
                self.catalog.refresh()
                model_id = self.catalog.id_of(Path(getattr(result, "out", out)) / "model.npz")
            except Exception as exc:
                model_id = None
                summary["note"] = f"saved, but the model picker could not be updated: {exc}"
            if model_id is not None:
                summary["model_id"] = model_id
        self._emit({"type": "done", **{k: v for k, v in summary.items() if k != "state"}})
        with self._lock:
            self._state.update(summary)
