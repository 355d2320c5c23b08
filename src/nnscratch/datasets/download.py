"""Verified downloads from a list of mirrors, with the standard library only.

Each file is streamed to a temporary file next to its destination, its
SHA-256 checked, and only then renamed to its final name (``os.replace``), so
a partial or wrong file never sits under the final name. Mirrors are tried in
order; when all fail, :class:`~nnscratch.errors.DownloadError` lists every URL
with the reason it failed and says where to put the file by hand.

Mirrors can be overridden with the ``mirrors=`` argument of the functions here
or with the environment variable ``NNSCRATCH_MIRRORS``: base URLs separated by
spaces or commas, in which ``{dataset}`` is replaced by the dataset's name
(``mnist``, ``fashion_mnist``, ``kmnist``).

Progress is reported through an optional callback, so that a front end can
draw a bar (the CLI uses tqdm); this module imports nothing beyond the
standard library::

    progress(url: str, done: int, total: int | None) -> None

It is called with ``done == 0`` when a URL is opened and after every chunk.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from nnscratch.errors import ConfigError, DownloadError
from nnscratch.files import atomic_write

__all__ = ["download_file", "resolve_mirrors", "mirror_urls", "MIRRORS_ENV", "DEFAULT_TIMEOUT"]

MIRRORS_ENV = "NNSCRATCH_MIRRORS"
DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 16
_USER_AGENT = "nnscratch-datasets/0.1 (Python urllib)"

ProgressCallback = Callable[[str, int, "int | None"], None]


def resolve_mirrors(default: Sequence[str], override: str | Iterable[str] | None = None,
                    *, dataset: str = "") -> list[str]:
    """The base URLs to try, in order.

    Parameters
    ----------
    default : sequence of str
        The dataset's built-in mirrors.
    override : str or iterable of str, optional
        Replaces the defaults. A string is split on spaces and commas. When
        not given, ``$NNSCRATCH_MIRRORS`` is used if set and non-empty.
    dataset : str
        Substituted for ``{dataset}`` in each base URL.
    """
    if override is None:
        override = os.environ.get(MIRRORS_ENV) or None
    if override is None:
        bases = list(default)
    elif isinstance(override, str):
        bases = override.replace(",", " ").split()
    else:
        bases = [str(b) for b in override]
    return [b.replace("{dataset}", dataset) for b in bases]


def mirror_urls(filename: str, mirrors: Sequence[str]) -> list[str]:
    """The URL of ``filename`` on each mirror (base URL + ``/`` + filename)."""
    return [base.rstrip("/") + "/" + filename for base in mirrors]


def _as_digests(sha256: str | Sequence[str]) -> frozenset[str]:
    digests = [sha256] if isinstance(sha256, str) else list(sha256)
    if not digests:
        raise ConfigError("sha256: at least one expected digest is needed")
    return frozenset(d.lower() for d in digests)


def _fetch_one(url: str, out, digests: frozenset[str], timeout: float,
               progress: ProgressCallback | None) -> None:
    """Stream ``url`` into the open file ``out``; raise _AttemptFailed with a reason on any problem."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    done, total = 0, None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            total = int(length) if length and length.isdigit() else None
            hasher = hashlib.sha256()
            if progress is not None:
                progress(url, 0, total)
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                hasher.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(url, done, total)
    except urllib.error.HTTPError as exc:
        raise _AttemptFailed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _AttemptFailed(f"cannot connect ({exc.reason})") from None
    except http.client.IncompleteRead as exc:
        raise _AttemptFailed(
            f"connection closed after {done + len(exc.partial)} of {total} bytes") from None
    except (socket.timeout, TimeoutError):
        raise _AttemptFailed(f"timed out (no data for {timeout:g} s)") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise _AttemptFailed(f"connection failed ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:  # e.g. "unknown url type"
        raise _AttemptFailed(f"bad URL ({exc})") from None
    if total is not None and done != total:
        raise _AttemptFailed(f"connection closed after {done} of {total} bytes")
    digest = hasher.hexdigest()
    if digest not in digests:
        raise _AttemptFailed(
            f"SHA-256 mismatch: got {digest}, expected {' or '.join(sorted(digests))}")


class _AttemptFailed(Exception):
    """One mirror failed; the message is the reason shown to the user."""


def download_file(urls: Sequence[str], destination: str | os.PathLike, *, sha256: str | Sequence[str],
                  timeout: float = DEFAULT_TIMEOUT, progress: ProgressCallback | None = None) -> Path:
    """Download one file from the first URL that delivers it intact.

    Parameters
    ----------
    urls : sequence of str
        Candidate URLs, tried in order (http, https or file).
    destination : str or path-like
        Final path. Its directory is created if needed. The file appears only
        once complete and verified.
    sha256 : str or sequence of str
        Accepted SHA-256 hex digest(s) of the file.
    timeout : float
        Seconds to wait for a connection or for the next bytes of data.
    progress : callable, optional
        ``progress(url, done, total)``; ``total`` is None when the server
        sends no Content-Length.

    Returns
    -------
    pathlib.Path
        ``destination``.

    Raises
    ------
    DownloadError
        Every URL failed. ``str(error)`` lists each URL with its reason and
        where to put the file by hand; ``error.attempts`` holds the
        ``(url, reason)`` pairs.
    """
    destination = Path(destination)
    digests = _as_digests(sha256)
    if isinstance(urls, str):
        urls = [urls]
    if timeout is None or not timeout > 0:
        raise ConfigError(f"timeout: expected a positive number of seconds, got {timeout!r}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    attempts: list[tuple[str, str]] = []
    for url in urls:
        try:
            # A failed, short or mismatched download never appears under the final name.
            with atomic_write(destination, "wb") as out:
                _fetch_one(url, out, digests, timeout, progress)
            return destination
        except _AttemptFailed as exc:
            attempts.append((url, str(exc)))
    raise _download_error(destination, attempts, digests)


def _download_error(destination: Path, attempts: list[tuple[str, str]], digests: frozenset[str]) -> DownloadError:
    if attempts:
        tried = "\n".join(f"  {url}\n      -> {reason}" for url, reason in attempts)
    else:
        tried = "  (no mirrors configured)"
    message = (
        f"could not download {destination.name}; tried:\n{tried}\n"
        f"Download it by hand and save it as {destination} "
        f"(SHA-256 {' or '.join(sorted(digests))}), or set ${MIRRORS_ENV} to mirrors that have it.")
    error = DownloadError(message)
    error.attempts = attempts
    error.destination = destination
    return error
