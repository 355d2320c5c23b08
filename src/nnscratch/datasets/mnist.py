"""MNIST and the datasets that share its files: the book's ``load_mnist``.

``load_mnist(normalize=True, flatten=True, one_hot_label=False)`` behaves like
the book's ``dataset.mnist.load_mnist`` and returns
``((x_train, t_train), (x_test, t_test))``.

Where the data comes from
-------------------------
MNIST ships inside the package (``datasets/data/mnist/*.gz``), so it works
offline. Fashion-MNIST and KMNIST are downloaded on first use from their
mirrors (see :mod:`nnscratch.datasets.download`). Everything lives under the
*data directory*: the ``data_dir=`` argument, else ``$NNSCRATCH_DATA_DIR``,
else ``$XDG_CACHE_HOME/nnscratch`` (``~/.cache/nnscratch``)::

    <data dir>/<dataset>/train-images-idx3-ubyte.gz ...   source files (downloaded or put by hand)
    <data dir>/<dataset>/decoded/manifest.json            cache of decoded arrays
    <data dir>/<dataset>/decoded/x_train.npy ...

Source files are looked for in ``<data dir>/<dataset>/`` and then directly in
``<data dir>/``, gzip-compressed or not; for MNIST the embedded copy is used
when they are absent.

The cache
---------
The first load checks each source file (MD5 of the uncompressed MNIST files
against the canonical values, or SHA-256 of the published ``.gz``), decodes
it, and writes the arrays as ``.npy`` files, each atomically, plus a manifest
with their sizes and CRC-32 and the size and mtime of the sources. Later
loads read the arrays back after checking them against the manifest: a
changed source or a damaged cache file is detected and the cache rebuilt.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import numbers
import os
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnscratch.datasets.download import DEFAULT_TIMEOUT, download_file, mirror_urls, resolve_mirrors
from nnscratch.datasets.idx import GZIP_MAGIC, decode_idx
from nnscratch.files import write_bytes_atomically
from nnscratch.errors import ConfigError, DatasetError, IdxFormatError, NnscratchWarning

__all__ = [
    "load_mnist", "load_dataset", "download_dataset", "dataset_info", "default_data_dir",
    "DatasetInfo", "SourceFile", "DATASETS", "DATA_DIR_ENV", "ROLES",
]

DATA_DIR_ENV = "NNSCRATCH_DATA_DIR"
EMBEDDED_DIR = Path(__file__).resolve().parent / "data"
ROLES = ("x_train", "t_train", "x_test", "t_test")
_CACHE_FORMAT = 2
_NPY_HEADER_LIMIT = 1 << 16  # .npy headers are far shorter


@dataclass(frozen=True)
class SourceFile:
    """One published file of a dataset.

    Attributes
    ----------
    filename : str
        Name on the mirrors, e.g. ``"train-images-idx3-ubyte.gz"``.
    sha256 : tuple of str
        Accepted SHA-256 digests of the ``.gz`` file.
    md5_uncompressed : str or None
        MD5 of the uncompressed IDX file where a canonical value is known.
    """

    filename: str
    sha256: tuple[str, ...]
    md5_uncompressed: str | None = None

    @property
    def uncompressed_name(self) -> str:
        return self.filename[:-3] if self.filename.endswith(".gz") else self.filename


@dataclass(frozen=True)
class DatasetInfo:
    """An MNIST-format dataset: four IDX files (images and labels, train and test).

    ``files`` maps each role in ``ROLES`` (``x_train``, ``t_train``,
    ``x_test``, ``t_test``) to its :class:`SourceFile`. A custom instance can
    be passed to :func:`load_dataset` in place of a name.
    """

    name: str
    title: str
    files: dict[str, SourceFile]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    credit: str
    homepage: str
    embedded: bool = False
    image_shape: tuple[int, int] = (28, 28)
    aliases: tuple[str, ...] = field(default=())


_MNIST_CREDIT = ("MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, "
                 "licensed CC BY-SA 3.0")

# SHA-256 values: the published .gz files (TensorFlow Datasets checksums, torchvision
# resources). For MNIST the embedded files, re-compressed copies of the same bytes
# (their uncompressed MD5s are the canonical ones), are accepted as well.
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        title="MNIST handwritten digits",
        files={
            "x_train": SourceFile("train-images-idx3-ubyte.gz", (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19"),
                "6bbc9ace898e44ae57da46a324031adb"),
            "t_train": SourceFile("train-labels-idx1-ubyte.gz", (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "51fc562b6747b666fbf6e84ce29d43c3cb5f9c388c664d43b33f02095313405a"),
                "a25bea736e30d166cdddb491f175f624"),
            "x_test": SourceFile("t10k-images-idx3-ubyte.gz", (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "cfeddb84311ecf044fc6a5b0f6ee8a24d265d4e83e388400186eb114082f4209"),
                "2646ac647ad5339dbf082846283269ea"),
            "t_test": SourceFile("t10k-labels-idx1-ubyte.gz", (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                "e41c74e484045d39b462a7790a4af51301bd9b0b24f0154798d713ec68c45920"),
                "27ae3e4e09519cfbb04c329615203637"),
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        classes=tuple(str(d) for d in range(10)),
        credit=_MNIST_CREDIT,
        homepage="http://yann.lecun.com/exdb/mnist/",
        embedded=True,
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        title="Fashion-MNIST (Zalando article images)",
        files={
            "x_train": SourceFile("train-images-idx3-ubyte.gz", (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",)),
            "t_train": SourceFile("train-labels-idx1-ubyte.gz", (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",)),
            "x_test": SourceFile("t10k-images-idx3-ubyte.gz", (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",)),
            "t_test": SourceFile("t10k-labels-idx1-ubyte.gz", (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",)),
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        credit="Fashion-MNIST by Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research), MIT licence",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        aliases=("fashion-mnist", "fashion", "fashionmnist"),
    ),
    "kmnist": DatasetInfo(
        name="kmnist",
        title="Kuzushiji-MNIST (cursive Japanese hiragana)",
        files={
            "x_train": SourceFile("train-images-idx3-ubyte.gz", (
                "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",)),
            "t_train": SourceFile("train-labels-idx1-ubyte.gz", (
                "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",)),
            "x_test": SourceFile("t10k-images-idx3-ubyte.gz", (
                "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",)),
            "t_test": SourceFile("t10k-labels-idx1-ubyte.gz", (
                "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",)),
        },
        mirrors=(
            "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        ),
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        credit=('"KMNIST Dataset" (created by CODH), adapted from "Kuzushiji Dataset" '
                "(created by NIJL and others), doi:10.20676/00000341, CC BY-SA 4.0"),
        homepage="https://github.com/rois-codh/kmnist",
        aliases=("k-mnist", "kuzushiji_mnist", "kuzushiji-mnist"),
    ),
}


def dataset_info(dataset: str | DatasetInfo) -> DatasetInfo:
    """The :class:`DatasetInfo` of a dataset given by name (or passed through).

    Names are case-insensitive; ``fashion-mnist`` and ``fashion_mnist`` are the same.

    Raises
    ------
    ConfigError
        Unknown name (the message lists the known ones).
    """
    if isinstance(dataset, DatasetInfo):
        return dataset
    if not isinstance(dataset, str):
        raise ConfigError(f"dataset: expected a name such as 'mnist' or a DatasetInfo, got {type(dataset).__name__}")
    key = dataset.strip().lower()
    for info in DATASETS.values():
        if key == info.name or key in info.aliases or key.replace("-", "_") == info.name:
            return info
    raise ConfigError(f"dataset: unknown dataset {dataset!r}; known: {', '.join(sorted(DATASETS))}")


def default_data_dir() -> Path:
    """``$NNSCRATCH_DATA_DIR``, else ``$XDG_CACHE_HOME/nnscratch``, else ``~/.cache/nnscratch``."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "nnscratch"


def _data_root(data_dir) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


# ---------------------------------------------------------------- finding the source files


def _local_sources(info: DatasetInfo, root: Path) -> dict[str, Path]:
    """Source files already on disk, role -> path (possibly only some roles)."""
    found = {}
    for role, source in info.files.items():
        for directory in (root / info.name, root):
            for name in (source.filename, source.uncompressed_name):
                if (directory / name).is_file():
                    found[role] = directory / name
                    break
            if role in found:
                break
    return found


def download_dataset(dataset: str | DatasetInfo = "mnist", data_dir=None, *, mirrors=None,
                     timeout: float = DEFAULT_TIMEOUT,
                     progress: Callable[[str, int, int | None], None] | None = None,
                     force: bool = False) -> dict[str, Path]:
    """Download a dataset's four files into ``<data dir>/<dataset>/``.

    Files already there are kept unless ``force=True``. Each file is verified
    by SHA-256 before it gets its final name.

    Parameters
    ----------
    dataset : str or DatasetInfo
        ``"mnist"``, ``"fashion_mnist"``, ``"kmnist"`` or a custom DatasetInfo.
    data_dir : str or path-like, optional
        Overrides ``$NNSCRATCH_DATA_DIR`` / ``~/.cache/nnscratch``.
    mirrors : str or list of str, optional
        Base URLs to use instead of the dataset's own (also ``$NNSCRATCH_MIRRORS``).
    timeout : float
        Seconds to wait on a silent connection.
    progress : callable, optional
        ``progress(url, done_bytes, total_bytes_or_None)``.
    force : bool
        Download again even if the files exist.

    Returns
    -------
    dict
        Role (``x_train`` ...) -> path of the file.

    Raises
    ------
    DownloadError
        A file could not be obtained from any mirror.
    """
    info = dataset_info(dataset)
    target = _data_root(data_dir) / info.name
    bases = resolve_mirrors(info.mirrors, mirrors, dataset=info.name)
    paths = {}
    for role, source in info.files.items():
        destination = target / source.filename
        if force or not destination.is_file():
            download_file(mirror_urls(source.filename, bases), destination,
                          sha256=source.sha256, timeout=timeout, progress=progress)
        paths[role] = destination
    return paths


def _source_paths(info: DatasetInfo, root: Path, *, download: bool, mirrors, timeout, progress) -> dict[str, Path]:
    local = _local_sources(info, root)
    if len(local) == len(info.files):
        return local
    if info.embedded:
        return {role: EMBEDDED_DIR / info.name / source.filename for role, source in info.files.items()}
    if not download:
        missing = [info.files[role].filename for role in info.files if role not in local]
        raise DatasetError(
            f"{info.name}: missing {', '.join(missing)} in {root / info.name}; "
            "call with download=True or put the files there by hand")
    fetched = download_dataset(info, root, mirrors=mirrors, timeout=timeout, progress=progress)
    return {role: local.get(role, fetched[role]) for role in info.files}


# ---------------------------------------------------------------- decoding and verifying


def _decode_source(info: DatasetInfo, role: str, path: Path) -> np.ndarray:
    """Read, verify and decode one source file."""
    source = info.files[role]
    raw = path.read_bytes()
    compressed = raw[:2] == GZIP_MAGIC
    # The published .gz digest is needed only where no canonical uncompressed MD5 exists.
    gz_digest = hashlib.sha256(raw).hexdigest() if compressed and source.md5_uncompressed is None else None
    if compressed:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{path}: broken or truncated gzip stream ({exc}); delete it and load again") from None
    if source.md5_uncompressed is not None:
        md5 = hashlib.md5(raw).hexdigest()
        if md5 != source.md5_uncompressed:
            raise DatasetError(
                f"{path}: not the canonical {info.name} {role} file: MD5 of the uncompressed data is "
                f"{md5}, expected {source.md5_uncompressed}")
    elif compressed and gz_digest not in source.sha256:
        raise DatasetError(
            f"{path}: SHA-256 {gz_digest} matches none of the published "
            f"{info.name} {source.filename} digests ({', '.join(source.sha256)})")
    # An uncompressed file of a dataset without a canonical MD5 is checked by shape only.
    is_images = role.startswith("x_")
    try:
        array = decode_idx(raw, source=str(path), expected_ndim=3 if is_images else 1)
    except IdxFormatError as exc:
        raise DatasetError(str(exc)) from exc
    if array.dtype != np.uint8:
        raise DatasetError(f"{path}: expected uint8 elements, the file holds {array.dtype}")
    if is_images and array.shape[1:] != info.image_shape:
        raise DatasetError(f"{path}: expected images of {info.image_shape}, the file holds {array.shape[1:]}")
    if not is_images and array.size and int(array.max()) >= len(info.classes):
        raise DatasetError(f"{path}: label {int(array.max())} out of range for {len(info.classes)} classes")
    return array


def _source_key(paths: dict[str, Path]) -> dict[str, dict]:
    key = {}
    for role, path in paths.items():
        stat = path.stat()
        key[role] = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return key


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _read_npy_verified(path: Path, entry: dict) -> np.ndarray | None:
    """The array in ``path`` if it matches its manifest entry exactly, else None."""
    try:
        size = path.stat().st_size
        if size != entry["bytes"]:
            return None
        buffer = np.empty(size, dtype=np.uint8)  # not zero-filled; the result is a view of it
        with open(path, "rb") as f:
            if f.readinto(memoryview(buffer)) != size:
                return None
        # CRC-32 catches damaged or half-written files at a quarter of SHA-256's cost;
        # the cache guards against accidents, not tampering.
        if zlib.crc32(buffer) != entry["crc32"]:
            return None
        stream = io.BytesIO(buffer[:_NPY_HEADER_LIMIT].tobytes())
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            return None
        offset = stream.tell()
        if (fortran or list(shape) != entry["shape"] or dtype.str != entry["dtype"]
                or offset + math.prod(shape) * dtype.itemsize != size):
            return None
        return buffer[offset:].view(dtype).reshape(shape)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_cache(cache_dir: Path, key: dict) -> dict[str, np.ndarray] | None:
    try:
        manifest = json.loads((cache_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != _CACHE_FORMAT or manifest.get("sources") != key:
        return None
    arrays = {}
    for role in ROLES:
        entry = manifest.get("arrays", {}).get(role)
        if not isinstance(entry, dict):
            return None
        array = _read_npy_verified(cache_dir / f"{role}.npy", entry)
        if array is None:
            return None
        arrays[role] = array
    return arrays


def _build_cache(info: DatasetInfo, paths: dict[str, Path], cache_dir: Path, key: dict) -> dict[str, np.ndarray]:
    arrays = {role: _decode_source(info, role, paths[role]) for role in ROLES}
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[f"x_{split}"]), len(arrays[f"t_{split}"])
        if n_images != n_labels:
            raise DatasetError(
                f"{info.name}: {paths[f'x_{split}']} holds {n_images} images but "
                f"{paths[f't_{split}']} holds {n_labels} labels")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        entries = {}
        for role, array in arrays.items():
            content = _npy_bytes(array)
            write_bytes_atomically(cache_dir / f"{role}.npy", content)
            entries[role] = {"file": f"{role}.npy", "bytes": len(content),
                             "crc32": zlib.crc32(content),
                             "shape": list(array.shape), "dtype": array.dtype.str}
        manifest = {"format": _CACHE_FORMAT, "dataset": info.name, "sources": key, "arrays": entries}
        write_bytes_atomically(cache_dir / "manifest.json", json.dumps(manifest, indent=1).encode())
    except OSError as exc:
        warnings.warn(f"could not write the decoded-array cache in {cache_dir} ({exc}); "
                      "loading works but stays slow; set $NNSCRATCH_DATA_DIR or data_dir= to a writable "
                      "directory", NnscratchWarning, stacklevel=4)
    return arrays


def _raw_arrays(info: DatasetInfo, root: Path, *, download, mirrors, timeout, progress) -> dict[str, np.ndarray]:
    paths = _source_paths(info, root, download=download, mirrors=mirrors, timeout=timeout, progress=progress)
    key = _source_key(paths)
    cache_dir = root / info.name / "decoded"
    cached = _load_cache(cache_dir, key)
    if cached is not None:
        return cached
    return _build_cache(info, paths, cache_dir, key)


# ---------------------------------------------------------------- the book's interface


def _validation_count(validation, n_train: int) -> int:
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real):
        raise ConfigError(f"validation: expected an int count or a fraction in [0, 1), got {validation!r}")
    if isinstance(validation, numbers.Integral):
        count = int(validation)
    elif 0.0 <= validation < 1.0:
        count = int(round(float(validation) * n_train))
    else:
        raise ConfigError(f"validation: a fraction must be in [0, 1), got {validation!r}")
    if not 0 <= count < n_train:
        raise ConfigError(
            f"validation: {validation!r} asks for {count} of the {n_train} training samples; "
            f"it must leave at least one for training")
    return count


def _prepare(x: np.ndarray, t: np.ndarray, *, normalize: bool, flatten: bool, one_hot_label: bool,
             n_classes: int):
    n = len(x)
    x = x.reshape(n, -1) if flatten else x.reshape(n, 1, *x.shape[1:])  # (N, 784) or (N, 1, 28, 28)
    if normalize:
        x = x.astype(np.float32)
        x /= 255.0
    if one_hot_label:
        t = np.eye(n_classes, dtype=np.float32)[t]  # (N, 10)
    return x, t


def load_dataset(dataset: str | DatasetInfo = "mnist", normalize: bool = True, flatten: bool = True,
                 one_hot_label: bool = False, *, validation: int | float = 0, limit: int | None = None,
                 data_dir=None, download: bool = True, mirrors=None, timeout: float = DEFAULT_TIMEOUT,
                 progress: Callable[[str, int, int | None], None] | None = None):
    """Load an MNIST-format dataset (MNIST, Fashion-MNIST, KMNIST) as NumPy arrays.

    Parameters
    ----------
    dataset : str or DatasetInfo
        ``"mnist"`` (embedded, works offline), ``"fashion_mnist"`` or
        ``"kmnist"`` (downloaded on first use), or a custom DatasetInfo.
    normalize : bool
        True: images as float32 in [0, 1] (pixel / 255). False: uint8 0..255.
    flatten : bool
        True: images of shape (N, 784). False: (N, 1, 28, 28), as a CNN takes them.
    one_hot_label : bool
        True: labels as float32 one-hot rows of shape (N, 10). False: uint8 labels (N,).
    validation : int or float
        0 (default): return ``(train, test)`` like the book. An int k or a
        fraction f in (0, 1) splits the *last* k (or round(f * N)) samples
        off the training set and returns ``(train, validation, test)``.
    limit : int, optional
        Keep only the first ``limit`` training and the first ``limit`` test
        samples (before the validation split): small sets for quick experiments.
    data_dir : str or path-like, optional
        Where source files and the decoded cache live (default
        ``$NNSCRATCH_DATA_DIR`` or ``~/.cache/nnscratch``).
    download : bool
        Whether missing files of a non-embedded dataset may be downloaded.
    mirrors, timeout, progress
        Passed to :func:`download_dataset`.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test))
        or ``((x_train, t_train), (x_val, t_val), (x_test, t_test))`` when
        ``validation`` is non-zero. The arrays are fresh and writable.

    Raises
    ------
    ConfigError
        Bad ``validation``, ``limit`` or dataset name.
    DatasetError
        A source file fails its checksum or is malformed.
    DownloadError
        A file could not be downloaded from any mirror.
    """
    info = dataset_info(dataset)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1):
        raise ConfigError(f"limit: expected a positive int or None, got {limit!r}")
    raw = _raw_arrays(info, _data_root(data_dir), download=download, mirrors=mirrors, timeout=timeout,
                      progress=progress)
    x_train, t_train, x_test, t_test = (raw[role] for role in ROLES)
    if limit is not None:
        # copies, so a small subset does not keep the whole decoded file alive
        x_train, t_train = x_train[:limit].copy(), t_train[:limit].copy()
        x_test, t_test = x_test[:limit].copy(), t_test[:limit].copy()
    k = _validation_count(validation, len(x_train))
    options = dict(normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, n_classes=len(info.classes))
    test = _prepare(x_test, t_test, **options)
    if k == 0:
        return _prepare(x_train, t_train, **options), test
    split = len(x_train) - k
    train = _prepare(x_train[:split], t_train[:split], **options)
    val = _prepare(x_train[split:], t_train[split:], **options)
    return train, val, test


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *,
               validation: int | float = 0, limit: int | None = None, data_dir=None,
               dataset: str | DatasetInfo = "mnist", **download_options):
    """Load MNIST like the book's ``dataset.mnist.load_mnist``.

    ``(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)``

    Parameters
    ----------
    normalize : bool
        True: float32 pixels in [0, 1]. False: uint8 pixels 0..255.
    flatten : bool
        True: images (N, 784). False: (N, 1, 28, 28).
    one_hot_label : bool
        True: float32 labels (N, 10) with a single 1. False: uint8 labels (N,).
    validation : int or float, keyword-only
        Non-zero: also split the last samples of the training set off as a
        validation set and return three pairs ``(train, val, test)``.
    limit : int, keyword-only
        Keep the first ``limit`` training and test samples.
    data_dir : path, keyword-only
        Data and cache directory (default ``$NNSCRATCH_DATA_DIR`` or ``~/.cache/nnscratch``).
    dataset : str, keyword-only
        ``"mnist"`` (default), ``"fashion_mnist"`` or ``"kmnist"``: same shapes, other pictures.
    **download_options
        ``download``, ``mirrors``, ``timeout``, ``progress``: see :func:`load_dataset`.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test))
        60,000 training and 10,000 test samples for MNIST; three pairs with ``validation``.
    """
    return load_dataset(dataset, normalize, flatten, one_hot_label, validation=validation, limit=limit,
                        data_dir=data_dir, **download_options)
