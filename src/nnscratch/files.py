"""Writing files so that nothing is ever half-written: the one ``atomic_write``.

Every file nnscratch writes (model files, checkpoints, histories, plots, the
decoded-MNIST cache, downloads, IDX files) goes through :func:`atomic_write`:
the bytes go to a temporary file in the same directory, which is flushed,
fsynced and then renamed over the final name, so a reader, a crash, a Ctrl-C
or a full disk leaves either the old file or the complete new one. It sits at
the bottom of the import order, beside :mod:`nnscratch.errors`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from nnscratch.errors import FileWriteError

__all__ = ["atomic_write", "write_bytes_atomically", "temporary_names", "remove_temporary_files",
           "check_writable", "check_replaceable", "free_bytes"]

TEMPORARY_SUFFIX = ".tmp"


def temporary_names(path) -> str:
    """The glob pattern of the temporary files ``atomic_write(path)`` creates beside ``path``."""
    return f".{Path(path).name}.*{TEMPORARY_SUFFIX}"


def remove_temporary_files(path) -> int:
    """Delete the temporaries that a killed writer of ``path`` left behind; returns how many."""
    path = Path(path)
    count = 0
    for leftover in path.parent.glob(temporary_names(path)):
        with contextlib.suppress(OSError):
            leftover.unlink()
            count += 1
    return count


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    # Linux shows it in /proc, which leaves it alone; setting it to read it, even for
    # an instant, would let another thread create a world-writable file meanwhile.
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def check_replaceable(path) -> None:
    """Refuse a ``path`` that exists but is not a regular file (FileWriteError).

    Renaming over a device, FIFO or socket (say /dev/null, as root) would replace
    it with a file; a directory cannot be replaced.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise FileWriteError(f"{path}: cannot write: {_describe_os_error(exc)}") from exc
    if stat.S_ISDIR(mode):
        raise FileWriteError(f"{path} is a directory, not a file name")
    if not stat.S_ISREG(mode):
        raise FileWriteError(f"{path} is not a regular file (a device, pipe or socket); "
                             "nnscratch only replaces regular files")


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", *, encoding: str | None = None):
    """Open a temporary file next to ``path``; on success it replaces ``path``.

    The temporary file lives in the same directory (so ``os.replace`` is an
    atomic rename) with the permissions an ordinary ``open`` would give (umask
    applied), is flushed and fsynced before the rename, and the directory is
    fsynced after it. If anything raises inside the ``with`` block (including
    ``KeyboardInterrupt``) the temporary file is removed and ``path`` is left as
    it was: readers see either the old file or the complete new one.

    A target that exists but is not a regular file (``/dev/null``, a FIFO, a
    directory) is refused: the rename would replace it.

    A failure of the file system itself (a full disk, a read-only or missing
    directory, no permission) raises :class:`~nnscratch.errors.FileWriteError`
    naming ``path`` and the cause in words, never the temporary name.

    Parameters
    ----------
    path : str or os.PathLike
        Final name of the file.
    mode : {"wb", "w"}
        Binary or text mode.
    encoding : str, optional
        Text encoding (default UTF-8 in text mode).

    Examples
    --------
    >>> with atomic_write("history.json", "w") as f:   # doctest: +SKIP
    ...     json.dump(history, f)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileWriteError(f"{path}: cannot write, directory {directory} does not exist")
    check_replaceable(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=directory)
    except OSError as exc:
        raise FileWriteError(f"{path}: cannot write: {_describe_os_error(exc)}") from exc
    try:
        os.chmod(tmp_name, 0o666 & ~_current_umask())
        if mode == "w":
            handle = os.fdopen(fd, mode, encoding=encoding or "utf-8", newline="")
        else:
            handle = os.fdopen(fd, mode)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and not isinstance(exc, FileWriteError) and exc.errno is not None:
            raise FileWriteError(f"{path}: cannot write: {_describe_os_error(exc)}") from exc
        raise
    _fsync_directory(directory)


def write_bytes_atomically(path, content: bytes) -> None:
    """Write ``content`` as the whole of ``path`` through :func:`atomic_write`."""
    with atomic_write(path, "wb") as handle:
        handle.write(content)


def free_bytes(directory) -> int | None:
    """Bytes free for this user on the file system holding ``directory`` (None if unknown)."""
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def check_writable(directory, *, need_bytes: int = 0, what: str = "") -> None:
    """Fail now, with a FileWriteError naming ``directory``, if it cannot take ``need_bytes`` of files.

    Creates and removes a small probe file (permission bits alone do not tell: a
    read-only mount, an ACL or root squashing may refuse what they allow).
    """
    directory = Path(directory)
    label = f" for {what}" if what else ""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=TEMPORARY_SUFFIX, dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise FileWriteError(f"{directory}: cannot write{label}: {_describe_os_error(exc)}") from exc
    free = free_bytes(directory)
    if need_bytes and free is not None and free < need_bytes:
        raise FileWriteError(f"{directory}: not enough free space{label}: {_mb(need_bytes)} needed, "
                             f"{_mb(free)} free")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n:,} bytes"
