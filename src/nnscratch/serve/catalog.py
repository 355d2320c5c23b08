"""The models the page can pick: the pretrained DeepConvNet, files given on the command line,
and every ``model.npz`` of the runs folder.

A model is known to clients by an id (letters, digits, ``.``, ``_``, ``-``),
never by a path: a request names an id, and only ids this catalog listed are
loaded, through :func:`nnscratch.io.load_model` (the safe loader: no pickle,
checksummed). Each model is loaded once and kept while its file is unchanged.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from nnscratch.errors import ModelFileError, NnscratchError

__all__ = ["ModelCatalog", "LoadedModel", "UnknownModelError", "PRETRAINED_ID"]

PRETRAINED_ID = "pretrained"
MODEL_FILE = "model.npz"
# How deep under --runs model files are looked for (runs/NAME/model.npz is depth 1).
_RUNS_DEPTH = 2
# At most this many run models are listed (newest first).
MAX_RUN_MODELS = 200
# At most this many models are kept in memory; the least recently used goes first.
MAX_LOADED = 12
_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
# An id the catalog does not know makes it scan the runs folder again, at most this often
# (a scan of 3,000 runs takes about 90 ms: unknown ids must not buy one each).
RESCAN_AFTER_S = 1.0


class UnknownModelError(NnscratchError, LookupError):
    """A request named a model id that the catalog does not list."""


@dataclass
class LoadedModel:
    """A model in memory, with the lock that serialises passes through its layers."""

    id: str
    model: object
    mtime_ns: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    filters: dict | None = None   # first-layer picture, computed once
    info: dict = field(default_factory=dict)   # describe(model)


def _mtime(path: Path | None) -> int:
    """The file's modification time in ns, 0 for the pretrained model or a file gone meanwhile."""
    if path is None:
        return 0
    try:
        return path.stat().st_mtime_ns
    except OSError:   # removed between listing and now (a run folder deleted, a run rewritten)
        return 0


def _clean_id(text: str) -> str:
    return _ID_CHARS.sub("-", text).strip("-.") or "model"


class ModelCatalog:
    """Ids -> model files, and a cache of loaded models.

    Parameters
    ----------
    models : list of paths, optional
        Extra model files (``--model``), listed after the pretrained one.
    runs_dir : path, optional
        Folder whose ``*/model.npz`` (and ``*/*/model.npz``) are listed.
    pretrained : bool
        List the bundled DeepConvNet as ``"pretrained"``.
    """

    def __init__(self, models=(), runs_dir=None, *, pretrained: bool = True):
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        self.pretrained = pretrained
        self._given = []
        for path in models or ():
            path = Path(path)
            if path.is_dir():
                path = path / MODEL_FILE
            if not path.is_file():
                raise ModelFileError(f"{path}: no such model file")
            self._given.append(path.resolve())
        self._lock = threading.Lock()
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._paths: dict[str, Path | None] = {}
        self._info: dict[str, dict] = {}
        self._scanned_at = -math.inf

    # ------------------------------------------------------------- listing
    def _run_files(self) -> list[Path]:
        if self.runs_dir is None or not self.runs_dir.is_dir():
            return []
        found = []
        for depth in range(1, _RUNS_DEPTH + 1):
            pattern = "/".join(["*"] * depth) + "/" + MODEL_FILE
            for path in self.runs_dir.glob(pattern):
                # runs/latest is a link to a run listed under its own name.
                if any(part.is_symlink() for part in [path, *path.parents][:depth + 1]):
                    continue
                if path.is_file():
                    found.append(path)
        found.sort(key=_mtime, reverse=True)
        return found[:MAX_RUN_MODELS]

    def refresh(self) -> list[dict]:
        """Scan again and return the list the page shows: ``[{id, name, source, ...}]``."""
        entries: list[tuple[str, Path | None, str, str]] = []
        if self.pretrained:
            entries.append((PRETRAINED_ID, None, "pretrained DeepConvNet", "pretrained"))
        for path in self._given:
            name = path.parent.name if path.name == MODEL_FILE else path.stem
            entries.append((f"file-{_clean_id(name)}", path, name, "file"))
        for path in self._run_files():
            relative = path.parent.relative_to(self.runs_dir)
            entries.append((f"run-{_clean_id(str(relative).replace('/', '-'))}", path, str(relative), "run"))
        self._scanned_at = time.monotonic()
        listing, paths, seen = [], {}, set()
        for model_id, path, name, source in entries:
            unique, n = model_id, 2
            while unique in seen:
                unique, n = f"{model_id}-{n}", n + 1
            seen.add(unique)
            paths[unique] = path
            listing.append({"id": unique, "name": name, "source": source})
        with self._lock:
            self._paths = paths
            for entry in listing:
                entry.update(self._info.get(entry["id"], {}))
        return listing

    def id_of(self, path) -> str | None:
        """The id listed for a model file, or None."""
        wanted = Path(path).resolve()
        with self._lock:
            for model_id, known in self._paths.items():
                if known is not None and Path(known).resolve() == wanted:
                    return model_id
        return None

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._paths)

    # ------------------------------------------------------------- loading
    def get(self, model_id: str) -> LoadedModel:
        """The loaded model of ``model_id`` (loading it on first use), else UnknownModelError."""
        with self._lock:
            known = model_id in self._paths
        if not known and time.monotonic() - self._scanned_at >= RESCAN_AFTER_S:
            self.refresh()
            with self._lock:
                known = model_id in self._paths
        if not known:
            raise UnknownModelError(f"unknown model id {model_id!r}; GET /api/models lists the ids")
        with self._lock:
            path = self._paths[model_id]
            mtime = _mtime(path)
            cached = self._loaded.get(model_id)
            if cached is not None and cached.mtime_ns == mtime:
                self._loaded.move_to_end(model_id)
                return cached
        from nnscratch import io as nnio

        model = nnio.load_pretrained() if path is None else nnio.load_model(path)
        shape = tuple(getattr(model, "input_shape", ()))
        if math.prod(shape) != 28 * 28:
            raise ModelFileError(f"model {model_id!r} takes inputs of shape {shape}, not 28x28 digit images")
        info = describe(model)
        loaded = LoadedModel(model_id, model, mtime, info=info)
        with self._lock:
            self._loaded[model_id] = loaded
            self._loaded.move_to_end(model_id)
            while len(self._loaded) > MAX_LOADED:
                self._loaded.popitem(last=False)
            self._info[model_id] = info
        return loaded


def describe(model) -> dict:
    """Class, layer sizes and parameter count of a model, for the picker."""
    config = getattr(model, "config", {})
    name = type(model).__name__
    if "hidden_size_list" in config:
        name += " " + str(list(config["hidden_size_list"]))
    elif "hidden_size" in config and name == "TwoLayerNet":
        name += f" [{config['hidden_size']}]"
    params = int(sum(p.size for p in getattr(model, "params", {}).values()))
    return {"architecture": name, "parameters": params,
            "layers": list(getattr(model, "layers", {}) or [])}
