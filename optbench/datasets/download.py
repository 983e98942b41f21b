"""Downloading a data file: streamed to a temporary file next to its destination, bounded in size
and time, verified against its published checksum, then renamed into place.

On any failure nothing is left behind: no partial file, and no data folder that the download
itself created. Only ``urllib`` is used, so no dataset library is needed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from optbench.errors import UserError
from optbench.limits import DOWNLOAD_TOTAL_S, MAX_DOWNLOAD_BYTES, download_stall_s

CHUNK = 1 << 20


class DownloadFailed(Exception):
    """Why a download did not produce a verified file (one phrase, for the caller's message)."""


def download(url: str, dest: Path, algorithm: str, expected: str, max_bytes: int = MAX_DOWNLOAD_BYTES,
             total_s: float = DOWNLOAD_TOTAL_S) -> Path:
    """Fetch ``url`` into ``dest`` if its ``algorithm`` digest (``md5``, ``sha256``) is ``expected``.

    Raises DownloadFailed when the server is unreachable, sends nothing for the stall timeout
    (``OPTBENCH_DOWNLOAD_TIMEOUT`` seconds, default 60), takes longer than ``total_s`` in all,
    sends more than ``max_bytes``, or sends other bytes than published.
    """
    dest = Path(dest)
    stall = download_stall_s()
    created = missing_parents(dest.parent)
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        digest = hashlib.new(algorithm)
        deadline = time.monotonic() + total_s
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=stall) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise DownloadFailed(f"the server announces {int(length):,} bytes, over the limit of {max_bytes:,}")
            received = 0
            while chunk := response.read1(CHUNK):  # whatever has arrived: a trickle cannot outlast the deadline
                received += len(chunk)
                if received > max_bytes:
                    raise DownloadFailed(f"more than {max_bytes:,} bytes, over the limit")
                if time.monotonic() > deadline:
                    raise DownloadFailed(f"still unfinished after {total_s:g} s")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise DownloadFailed(f"the file has {algorithm.upper()} {digest.hexdigest()}, expected {expected}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        tmp = None
        return dest
    except (TimeoutError, ConnectionError) as exc:
        raise DownloadFailed(f"no data for {stall:g} s" if isinstance(exc, TimeoutError) else str(exc)) from None
    except urllib.error.URLError as exc:
        reason = exc.reason if not isinstance(exc, urllib.error.HTTPError) else f"HTTP {exc.code} {exc.reason}"
        raise DownloadFailed(f"no timely answer within {stall:g} s" if isinstance(reason, TimeoutError) else str(reason)) from None
    except OSError as exc:
        raise DownloadFailed(exc.strerror or str(exc)) from None
    except ValueError as exc:  # a malformed URL
        raise DownloadFailed(str(exc)) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
            remove_empty(created)


def missing_parents(folder: Path) -> list[Path]:
    """The folders of ``folder``'s path that do not exist yet, deepest first."""
    missing = []
    for p in [folder, *folder.parents]:
        if p.exists():
            break
        missing.append(p)
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove these folders (deepest first) where they are empty: leave no trace of a failed attempt."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def fetch_or_fail(url: str, dest: Path, algorithm: str, expected: str, what: str, fix: str, **limits: float) -> Path:
    """``download``, with a failure as one UserError line: what was missing, from where, why, and ``fix``."""
    try:
        return download(url, dest, algorithm, expected, **limits)  # type: ignore[arg-type]
    except DownloadFailed as exc:
        raise UserError(f"{what} not found and the download from {url} failed ({exc}); nothing was saved; {fix}") from None


def ensure_file(path: Path, url_variable: str, url: str, sha256: str, fix: str, max_bytes: int) -> Path:
    """``path`` when something is there (a file, or a link: its reader judges it), else the file
    downloaded from $``url_variable`` or ``url`` with its SHA-256 checked; a failure is one line
    ending in ``fix``."""
    if path.exists() or path.is_symlink():
        return path
    return fetch_or_fail(os.environ.get(url_variable) or url, path, "sha256", sha256, str(path), fix, max_bytes=max_bytes)

