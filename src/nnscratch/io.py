"""Saving and loading models and training checkpoints, without pickle.

A model file is one NumPy ``.npz`` archive written with ``allow_pickle=False``:

* ``param/<name>`` and ``buffer/<name>``: the model's trainable arrays and its
  non-trainable state (BatchNorm running statistics), as plain numeric arrays;
* ``__metadata__``: UTF-8 JSON stored as a ``uint8`` array: the format name and
  version, the nnscratch version, the model class and its constructor config
  (the model is rebuilt through :mod:`nnscratch.models.registry`), the name,
  dtype and shape of every array and an optional training summary;
* ``__sha256__``: a SHA-256 digest over every array and the metadata, so that a
  flipped byte, a truncated copy or a hand-edited array is detected before the
  model is used. (It guards against accidents, not forgery: anyone can
  recompute it. What makes a stranger's file safe is that reading it never
  runs code; see below.)

Checkpoints (``save_checkpoint``) use the same container: arrays go into the
archive, everything else (arguments, history, RNG state) into the JSON metadata.
Reading never unpickles anything. Before NumPy reads an entry
(``np.lib.format.read_array(..., allow_pickle=False)``) its header is checked:
only uncompressed ``.npy`` members, numeric dtypes, and a declared shape that
matches the bytes actually stored, so a crafted file can neither smuggle in an
object array nor make the reader allocate more memory than the file's own size
(no zip bombs). Every problem becomes a :class:`~nnscratch.errors.ModelFileError`
that names the file.

Files are written with :func:`atomic_write`: a crash or Ctrl-C while saving
never leaves a half-written file under the final name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch import __version__
from nnscratch.errors import ModelFileError
from nnscratch.files import atomic_write  # re-exported: nnscratch.io.atomic_write still works

__all__ = [
    "MODEL_FORMAT",
    "CHECKPOINT_FORMAT",
    "FORMAT_VERSION",
    "PRETRAINED_MODEL",
    "Checkpoint",
    "atomic_write",
    "save_model",
    "load_model",
    "read_model_metadata",
    "save_checkpoint",
    "load_checkpoint",
    "load_pretrained",
    "pretrained_path",
]

MODEL_FORMAT = "nnscratch-model"
CHECKPOINT_FORMAT = "nnscratch-checkpoint"
# Bump when a reader of the previous version could misread a new file.
FORMAT_VERSION = 1
PRETRAINED_MODEL = "deep_convnet.npz"

_METADATA_KEY = "__metadata__"
_CHECKSUM_KEY = "__sha256__"
_PARAM_PREFIX = "param/"
_BUFFER_PREFIX = "buffer/"
# Numeric kinds only: bool, signed and unsigned integers, floats.
_ALLOWED_KINDS = frozenset("biuf")


# --------------------------------------------------------------------------- the container


def _checksum(arrays: dict[str, np.ndarray], metadata_bytes: bytes) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(f"{array.dtype.str}{array.shape}".encode("ascii") + b"\0")
        digest.update(memoryview(array).cast("B") if array.size else b"")
    digest.update(b"metadata\0")
    digest.update(metadata_bytes)
    return digest.hexdigest()


def _check_savable(name: str, array, path) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in _ALLOWED_KINDS:
        raise ModelFileError(
            f"{path}: cannot save array {name!r} of dtype {array.dtype}; "
            "only bool, integer and float arrays are stored (no pickled objects)"
        )
    return array


def _write_container(path, metadata: dict, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    arrays = {name: _check_savable(name, a, path) for name, a in arrays.items()}
    metadata = dict(metadata)
    metadata["arrays"] = {
        name: {"dtype": a.dtype.str, "shape": list(a.shape)} for name, a in sorted(arrays.items())
    }
    try:
        metadata_bytes = json.dumps(metadata, sort_keys=True, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: metadata is not JSON-serialisable: {exc}") from exc
    digest = _checksum(arrays, metadata_bytes)
    entries = dict(arrays)
    entries[_METADATA_KEY] = np.frombuffer(metadata_bytes, dtype=np.uint8)
    entries[_CHECKSUM_KEY] = np.frombuffer(digest.encode("ascii"), dtype=np.uint8)
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **entries)
    return path


_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _read_npy_members(path: Path, what: str) -> dict[str, np.ndarray]:
    """Every ``.npy`` member of the archive, each checked before NumPy reads it.

    ``np.savez`` stores members uncompressed, so a member can be no larger than
    the file itself; checking each header's dtype and shape against the stored
    size first means a hostile file can make us allocate at most its own size.
    """
    file_size = path.stat().st_size
    entries: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy") or name[:-4] in entries:
                raise ModelFileError(
                    f"{path}: not an nnscratch {what}: unexpected archive member {name!r}"
                )
            if info.compress_type != zipfile.ZIP_STORED or not (
                info.file_size == info.compress_size <= file_size
            ):
                raise ModelFileError(
                    f"{path}: not an nnscratch {what}: member {name!r} is compressed or "
                    "declares a size it does not have (nnscratch stores arrays uncompressed)"
                )
            with archive.open(info) as member:
                _check_npy_header(member, info.file_size, f"{path}: member {name!r}")
            with archive.open(info) as member:
                entries[name[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
    return entries


def _check_npy_header(member, member_size: int, where: str) -> None:
    """Refuse object or structured dtypes and shapes that the stored bytes do not fill."""
    read_header = _NPY_HEADER_READERS.get(np.lib.format.read_magic(member))
    if read_header is None:
        raise ModelFileError(f"{where}: unsupported .npy format version")
    shape, _, dtype = read_header(member)
    if dtype.hasobject:
        raise ModelFileError(
            f"{where} holds pickled Python objects; refusing to load it "
            "(nnscratch files hold numeric arrays only)"
        )
    if dtype.kind not in _ALLOWED_KINDS:
        raise ModelFileError(f"{where} has unsupported dtype {dtype} (numeric arrays only)")
    stored = member_size - member.tell()
    if math.prod(shape) * dtype.itemsize != stored:
        raise ModelFileError(
            f"{where} declares shape {shape} of {dtype} but stores {stored} bytes "
            "(truncated or crafted file)"
        )


def _read_container(path, expected_format: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Read, verify and return ``(metadata, arrays)``; any problem -> ModelFileError."""
    path = Path(path)
    what = "model file" if expected_format == MODEL_FORMAT else "checkpoint"
    if not path.exists():
        raise ModelFileError(f"{path}: no such {what}")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected a {what} (.npz)")
    if not path.is_file():  # a device or a pipe could be read forever
        raise ModelFileError(f"{path}: not a regular file, expected a {what} (.npz)")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path}: not a valid {what}: not an .npz archive (truncated or corrupt file?)"
        )
    try:
        entries = _read_npy_members(path, what)
    except ModelFileError:
        raise
    except Exception as exc:  # BadZipFile, EOFError, zlib.error... from a damaged archive
        raise ModelFileError(f"{path}: corrupt or truncated {what}: {exc!r}") from exc

    for key in (_METADATA_KEY, _CHECKSUM_KEY):
        if key not in entries:
            raise ModelFileError(f"{path}: not an nnscratch {what}: entry {key!r} is missing")
    raw_meta, raw_sum = entries.pop(_METADATA_KEY), entries.pop(_CHECKSUM_KEY)
    if raw_meta.dtype != np.uint8 or raw_meta.ndim != 1 or raw_sum.dtype != np.uint8:
        raise ModelFileError(f"{path}: not an nnscratch {what}: malformed metadata entry")
    metadata_bytes = raw_meta.tobytes()
    try:
        metadata = json.loads(metadata_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: corrupt {what}: metadata is not valid JSON ({exc})") from exc
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: corrupt {what}: metadata is not a JSON object")

    file_format = metadata.get("format")
    if file_format != expected_format:
        hint = ""
        if file_format in (MODEL_FORMAT, CHECKPOINT_FORMAT):
            hint = f" (this is a {'model file' if file_format == MODEL_FORMAT else 'checkpoint'})"
        raise ModelFileError(
            f"{path}: not an nnscratch {what}: format is {file_format!r}, "
            f"expected {expected_format!r}{hint}"
        )
    version = metadata.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: corrupt {what}: format_version is {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in {what} format version {version} by nnscratch "
            f"{metadata.get('nnscratch_version', '?')}; this nnscratch {__version__} reads "
            f"versions up to {FORMAT_VERSION}: upgrade nnscratch to load it"
        )

    if _checksum(entries, metadata_bytes) != raw_sum.tobytes().decode("ascii", "replace"):
        raise ModelFileError(
            f"{path}: checksum mismatch: the {what} was modified or damaged after it was saved"
        )

    declared = metadata.get("arrays")
    if not isinstance(declared, dict) or set(declared) != set(entries):
        raise ModelFileError(f"{path}: corrupt {what}: the array list does not match the archive")
    for name, array in entries.items():
        if array.dtype.kind not in _ALLOWED_KINDS:
            raise ModelFileError(f"{path}: array {name!r} has unsupported dtype {array.dtype}")
    return metadata, entries


# --------------------------------------------------------------------------- models


def _model_arrays(model) -> dict[str, np.ndarray]:
    arrays = {_PARAM_PREFIX + name: np.asarray(a) for name, a in model.params.items()}
    buffers = getattr(model, "buffers", None) or {}
    arrays.update({_BUFFER_PREFIX + name: np.asarray(a) for name, a in buffers.items()})
    return arrays


def _model_record(model) -> dict:
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise ModelFileError(
            f"cannot save {type(model).__name__}: it has no `config` dict "
            "(the constructor kwargs that rebuild it)"
        )
    return {"class": type(model).__name__, "config": _to_json(config, None, "config")}


def _file_header(file_format: str, model) -> dict:
    """The metadata every model file and checkpoint starts with."""
    _check_registered(model)
    return {
        "format": file_format,
        "format_version": FORMAT_VERSION,
        "nnscratch_version": __version__,
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": _model_record(model),
    }


def _check_registered(model) -> None:
    from nnscratch.models.registry import MODELS

    name = type(model).__name__
    if MODELS.get(name) is not type(model):
        raise ModelFileError(
            f"cannot save {name}: it is not in nnscratch.models.registry.MODELS, "
            "so a loader could not rebuild it"
        )


def _shorten(value, limit: int = 200) -> str:
    """``repr``-like text of a value cut to ``limit`` characters (a forged file may hold huge lists)."""
    if isinstance(value, (list, tuple)) and len(value) > 20:
        text = repr(list(value[:8]))[:-1] + f", ... ({len(value)} in all)]"
    else:
        text = json.dumps(value, sort_keys=True, default=repr) if isinstance(value, dict) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_declared_arrays(path, class_name: str, declared, arrays: dict[str, np.ndarray]) -> None:
    """The arrays a config declares (names and shapes) must be those stored in the file."""
    params, buffers = declared
    wanted = {_PARAM_PREFIX + k: tuple(v) for k, v in params.items()}
    wanted.update({_BUFFER_PREFIX + k: tuple(v) for k, v in buffers.items()})
    stored = {k: v.shape for k, v in arrays.items() if k.startswith((_PARAM_PREFIX, _BUFFER_PREFIX))}
    if wanted == stored:
        return
    declared_count = sum(math.prod(shape) for shape in wanted.values())
    stored_count = sum(math.prod(shape) for shape in stored.values())
    parts = []
    for prefix, kind in ((_PARAM_PREFIX, "parameter"), (_BUFFER_PREFIX, "buffer")):
        missing = sorted(k[len(prefix):] for k in wanted.keys() - stored.keys() if k.startswith(prefix))
        extra = sorted(k[len(prefix):] for k in stored.keys() - wanted.keys() if k.startswith(prefix))
        if missing:
            parts.append(f"missing {kind}s {_shorten(missing, 120)}")
        if extra:
            parts.append(f"unexpected {kind}s {_shorten(extra, 120)}")
    if not parts:
        name = min(k for k in wanted if wanted[k] != stored[k])
        parts.append(f"{name.split('/', 1)[0]} {name.split('/', 1)[1]!r} is declared {wanted[name]}, "
                     f"stored {stored[name]}")
    raise ModelFileError(
        f"{path}: does not match {class_name}: " + "; ".join(parts)
        + f" (its saved config declares {declared_count:,} values, the file stores {stored_count:,}: "
        "a forged or damaged file; refusing to build it)"
    )


def _rebuild_model(path, record: dict, arrays: dict[str, np.ndarray]):
    """Build the model from its class and config, then copy the arrays into it."""
    from nnscratch.models.registry import MODELS, build_model, expected_param_shapes

    class_name = record.get("class") if isinstance(record, dict) else None
    config = record.get("config") if isinstance(record, dict) else None
    if not isinstance(class_name, str) or class_name not in MODELS:  # a forged list is unhashable
        known = ", ".join(sorted(MODELS))
        raise ModelFileError(f"{path}: unknown model class {_shorten(class_name, 60)} (known: {known})")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: corrupt file: model config is {_shorten(config)}, expected an object")
    # Before building: the config must declare exactly the arrays stored. A forged config
    # (the checksum does not stop forgery) could otherwise make us allocate gigabytes.
    declared = expected_param_shapes(class_name, config)
    if declared is not None:
        _check_declared_arrays(path, class_name, declared, arrays)
    try:
        # The initial weights are replaced by the stored ones: a forged weight_init_std of
        # 1e308 overflowing in them is no reason for warnings.
        with np.errstate(all="ignore"):
            model = build_model(class_name, config)
    except Exception as exc:
        shown = json.dumps(config, sort_keys=True)
        shown = shown if len(shown) <= 300 else shown[:300] + "..."  # a forged config may be huge
        raise ModelFileError(
            f"{path}: cannot rebuild {class_name} from its saved config {shown}: {exc}"
        ) from exc

    buffers = getattr(model, "buffers", None) or {}
    for prefix, targets, kind in ((_PARAM_PREFIX, model.params, "parameter"),
                                  (_BUFFER_PREFIX, buffers, "buffer")):
        stored = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        missing = sorted(set(targets) - set(stored))
        extra = sorted(set(stored) - set(targets))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {kind}s {_shorten(missing)}")
            if extra:
                parts.append(f"unexpected {kind}s {_shorten(extra)}")
            raise ModelFileError(f"{path}: does not match {class_name}: " + "; ".join(parts))
        for name, target in targets.items():
            value = stored[name]
            if value.shape != target.shape or value.dtype != target.dtype:
                raise ModelFileError(
                    f"{path}: {kind} {name!r} of {class_name} should be {target.dtype} "
                    f"{target.shape}, the file holds {value.dtype} {value.shape}"
                )
            # In place: the layers hold these very arrays.
            target[...] = value
    return model


def save_model(model, path, *, summary: dict | None = None) -> Path:
    """Save ``model`` to one ``.npz`` file (no pickle), atomically.

    Parameters
    ----------
    model : Model
        Any model registered in ``nnscratch.models.registry.MODELS`` (it needs
        ``params``, ``buffers`` and a JSON-able ``config``).
    path : str or os.PathLike
        Destination, conventionally ending in ``.npz``.
    summary : dict, optional
        JSON-able training summary kept in the file (dataset, epochs, accuracy...).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    metadata = _file_header(MODEL_FORMAT, model)
    metadata["summary"] = _to_json(summary, None, "summary") if summary is not None else None
    return _write_container(path, metadata, _model_arrays(model))


def load_model(path):
    """Load a model saved by :func:`save_model`.

    The file is verified (format version, checksum, array names, shapes and
    dtypes against the rebuilt model) before any weight is used.

    Raises
    ------
    ModelFileError
        The file is missing, not an nnscratch model, from a newer format,
        truncated, corrupt, tampered with or holds pickled objects.
    """
    metadata, arrays = _read_container(path, MODEL_FORMAT)
    return _rebuild_model(Path(path), metadata.get("model"), arrays)


def read_model_metadata(path) -> dict:
    """Return the verified JSON metadata of a model file (class, config, summary...)."""
    metadata, _ = _read_container(path, MODEL_FORMAT)
    return metadata


# --------------------------------------------------------------------------- pretrained


def pretrained_path() -> Path:
    """Path of the bundled pretrained model file (it may not exist in a source checkout)."""
    return Path(str(resources.files("nnscratch") / "pretrained" / PRETRAINED_MODEL))


def load_pretrained():
    """Load the bundled pretrained DeepConvNet (``nnscratch/pretrained/deep_convnet.npz``)."""
    resource = resources.files("nnscratch") / "pretrained" / PRETRAINED_MODEL
    if not resource.is_file():
        raise ModelFileError(
            f"{resource}: the pretrained model is not installed; train one with "
            "`nnscratch train` and pass it with --model DIR/model.npz"
        )
    with resources.as_file(resource) as path:
        return load_model(path)


# --------------------------------------------------------------------------- checkpoints


def _to_json(value, arrays: dict[str, np.ndarray] | None, where: str):
    """Turn a nested structure into JSON, moving ndarrays into ``arrays``.

    An array becomes ``{"__ndarray__": key}``; a tuple becomes
    ``{"__tuple__": [...]}`` so that it round-trips. With ``arrays=None``
    (configs, summaries, arguments) the result is plain JSON: arrays are
    refused and tuples become lists. NumPy scalars become
    Python numbers (RNG states hold big Python ints, which JSON keeps exactly).
    """
    if isinstance(value, np.ndarray):
        if arrays is None:
            raise ModelFileError(f"{where}: must be plain JSON data, got an ndarray")
        key = f"state/{len(arrays)}"
        arrays[key] = value
        return {"__ndarray__": key}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ModelFileError(f"{where}: dict key {k!r} is not a string")
            if k in ("__ndarray__", "__tuple__"):
                raise ModelFileError(f"{where}: dict key {k!r} is reserved")
            out[k] = _to_json(v, arrays, f"{where}.{k}")
        return out
    if isinstance(value, tuple):
        if arrays is None:  # plain JSON (configs, summaries, args): a tuple is a list
            return [_to_json(v, None, where) for v in value]
        return {"__tuple__": [_to_json(v, arrays, where) for v in value]}
    if isinstance(value, list):
        return [_to_json(v, arrays, where) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ModelFileError(f"{where}: cannot store a value of type {type(value).__name__}")


def _from_json(value, arrays: dict[str, np.ndarray], path):
    """Undo :func:`_to_json`; a marker that does not make sense -> ModelFileError."""
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"}:
            key = value["__ndarray__"]
            if not isinstance(key, str) or key not in arrays:
                raise ModelFileError(f"{path}: corrupt checkpoint: array {key!r} is missing")
            return arrays[key]
        if set(value) == {"__tuple__"}:
            items = value["__tuple__"]
            if not isinstance(items, list):
                raise ModelFileError(f"{path}: corrupt checkpoint: tuple marker holds {items!r}")
            return tuple(_from_json(v, arrays, path) for v in items)
        return {k: _from_json(v, arrays, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v, arrays, path) for v in value]
    return value


def _optimizer_record(optimizer, arrays: dict[str, np.ndarray]) -> dict:
    config = getattr(optimizer, "config", {})
    state = optimizer.state_dict() if hasattr(optimizer, "state_dict") else {}
    return {
        "class": type(optimizer).__name__,
        "config": _to_json(config, None, "optimizer config"),
        "state": _to_json(state, arrays, "optimizer state"),
    }


def _rebuild_optimizer(path, record: dict, arrays: dict[str, np.ndarray]):
    from nnscratch import optimizers

    class_name = record.get("class") if isinstance(record, dict) else None
    registry = getattr(optimizers, "OPTIMIZERS", {})
    cls = next((c for c in registry.values() if getattr(c, "__name__", None) == class_name), None)
    if cls is None:
        raise ModelFileError(f"{path}: unknown optimizer class {class_name!r}")
    try:
        optimizer = cls(**record.get("config", {}))
        if hasattr(optimizer, "load_state_dict"):
            optimizer.load_state_dict(_from_json(record.get("state", {}), arrays, path))
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{path}: cannot restore optimizer {class_name}: {exc}") from exc
    return optimizer


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes
    ----------
    model : Model
        Rebuilt with the checkpoint's weights and buffers.
    optimizer : Optimizer
        Rebuilt with its config and internal state (momenta, step count).
    trainer_state : dict
        A complete ``Trainer.state_dict()`` (its "model" and "optimizer" entries are
        this checkpoint's model and optimizer), ready for ``Trainer.load_state_dict``.
    args : dict
        The command-line (or caller) arguments of the run, for resuming.
    metadata : dict
        The file's JSON metadata (versions, time of saving).
    """

    model: Any
    optimizer: Any
    trainer_state: dict
    args: dict
    metadata: dict = field(default_factory=dict, repr=False)


def save_checkpoint(path, trainer_state: dict, *, model, optimizer, args: dict | None = None) -> Path:
    """Save everything needed to resume training into one ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (e.g. ``runs/latest/checkpoint.npz``).
    trainer_state : dict
        ``Trainer.state_dict()``: nested dicts/lists/tuples of numbers, strings,
        ndarrays and RNG ``bit_generator.state`` dicts.
    model, optimizer
        The model (saved like :func:`save_model`) and its optimizer (class,
        config and ``state_dict()``).
    args : dict, optional
        JSON-able run arguments.
    """
    metadata = _file_header(CHECKPOINT_FORMAT, model)
    arrays = _model_arrays(model)
    # One place for each thing: the model's arrays and the optimizer are stored once, as
    # in a model file, and the model's random state (Dropout masks) stays in the trainer
    # state's "model_rng"; load_checkpoint puts them back into a full Trainer.state_dict().
    trainer_state = {k: v for k, v in trainer_state.items() if k not in ("model", "optimizer")}
    metadata.update({
        "optimizer": _optimizer_record(optimizer, arrays),
        "trainer_state": _to_json(trainer_state, arrays, "trainer_state"),
        "args": _to_json(args or {}, None, "args"),
    })
    return _write_container(path, metadata, arrays)


def load_checkpoint(path) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (verified like a model file)."""
    path = Path(path)
    metadata, arrays = _read_container(path, CHECKPOINT_FORMAT)
    model_arrays = {
        k: v for k, v in arrays.items() if k.startswith((_PARAM_PREFIX, _BUFFER_PREFIX))
    }
    model = _rebuild_model(path, metadata.get("model"), model_arrays)
    try:
        optimizer = _rebuild_optimizer(path, metadata.get("optimizer"), arrays)
        rng_state = _from_json(metadata.get("model_rng_state") or {}, arrays, path)
        trainer_state = _from_json(metadata.get("trainer_state", {}), arrays, path)
    except RecursionError as exc:  # JSON nested just below json's own limit
        raise ModelFileError(f"{path}: corrupt checkpoint: state nested too deeply") from exc
    args = metadata.get("args") or {}
    if not isinstance(trainer_state, dict) or not isinstance(args, dict):
        raise ModelFileError(f"{path}: corrupt checkpoint: trainer state or args is not an object")
    for state in (rng_state, trainer_state.get("model_rng")):
        if not isinstance(state, (dict, type(None))):  # an array's truth value would be ambiguous
            raise ModelFileError(f"{path}: corrupt checkpoint: the model's random state is "
                                 f"{type(state).__name__}, expected an object")
    if rng_state and "model_rng" not in trainer_state:  # written before the state had one place
        trainer_state["model_rng"] = rng_state
    model_rng = trainer_state.get("model_rng")
    if model_rng and hasattr(model, "set_rng_state"):
        try:
            model.set_rng_state(model_rng)
        except Exception as exc:
            raise ModelFileError(f"{path}: cannot restore the model's random state: {exc}") from exc
    # A complete Trainer.state_dict(): trainer.load_state_dict(checkpoint.trainer_state) resumes.
    trainer_state["model"] = {"params": model.params, "buffers": getattr(model, "buffers", None) or {}}
    trainer_state["optimizer"] = optimizer.state_dict()
    return Checkpoint(model, optimizer, trainer_state, args, metadata)
