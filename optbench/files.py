"""Writing files so that a reader never sees half of one, checking a folder is writable, and reading
files that someone else may have put there (regular files only, size-capped, depth-safe JSON)."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from pydantic_core import from_json

from optbench.errors import OutputFailed


def write_atomic(path: Path, data: bytes, replace: bool = True) -> Path:
    """Write ``data`` to ``path``: a temporary file in the same folder, flushed to disk, then renamed
    over ``path``, so a reader sees the old file or the whole new one.

    With ``replace=False`` the file is hard-linked into place instead, which raises FileExistsError
    rather than replace an existing file. The file is readable by everyone (0644), like any other.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def probe_writable(directory: Path) -> None:
    """Create ``directory`` if needed and prove a file can be written in it; raises OSError if not."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=directory, prefix=".probe-")
    os.close(fd)
    os.unlink(probe)


class CheckedStream:
    """A text stream (standard output) whose failed ``write`` or ``flush`` raises OutputFailed
    naming it, so a full disk, an I/O error or a closed pipe is told apart from every other OSError
    and reported once (``optbench.cli.app.main``); everything else is the wrapped stream's."""

    def __init__(self, stream: Any, name: str = "standard output") -> None:
        self._stream, self._name = stream, name

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise OutputFailed(self._name, exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputFailed(self._name, exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def append_regular(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created if absent) if it is a regular file: opened without
    blocking and checked with fstat before a byte is written, so a named pipe or a device is refused
    at once (Refused) instead of hanging or swallowing the text. A failed write raises OSError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0), 0o644)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.EISDIR):  # a pipe nobody reads; a folder
            try:
                kind = _kind(os.stat(path).st_mode)
            except OSError:
                kind = exc.strerror
            raise Refused(f"not a regular file ({kind})") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"not a regular file ({_kind(st.st_mode)})")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


class Refused(Exception):
    """A file that is not read: not a regular file, too large, unreadable, or not JSON within limits."""


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file (links are followed) of at most ``max_bytes``.

    Opened without blocking and checked with fstat before any read, so a named pipe, a device,
    a socket or a folder is refused at once instead of hanging or reading without end.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise Refused(f"cannot open it ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"not a regular file ({_kind(st.st_mode)})")
        if st.st_size > max_bytes:
            raise Refused(f"{st.st_size:,} bytes, over the limit of {max_bytes:,}")
        chunks, total = [], 0
        while True:  # the size may grow while reading; never read past the limit
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise Refused(f"over the limit of {max_bytes:,} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise Refused(f"cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(data: bytes, max_depth: int) -> Any:
    """Strict JSON (no NaN or Infinity) nested at most ``max_depth`` deep; Refused otherwise.

    Valid text is parsed by pydantic-core's ``from_json`` (jiter, 2.5x the standard library's
    speed on a run record: a resume reads thousands); text it refuses is parsed again by ``json``,
    whose messages say what is wrong, and whose verdict stands."""
    try:
        doc = from_json(data, allow_inf_nan=False)
    except ValueError:
        doc = _parse_slowly(data, max_depth)
    if text_nesting(data) > max_depth:
        raise Refused(f"nested more than {max_depth} deep")
    return doc


def _parse_slowly(data: bytes, max_depth: int) -> Any:
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise Refused(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise Refused(f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except ValueError as exc:
        raise Refused(str(exc)) from None
    except RecursionError:
        raise Refused(f"nested more than {max_depth} deep") from None
    return doc


_BRACKETS = bytes.maketrans(b"[]{}", b"()()")
_NOT_BRACKET_OR_QUOTE = bytes(b for b in range(256) if b not in b'[]{}"')


def text_nesting(data: bytes) -> int:
    """How deep lists and dicts nest in the valid JSON text ``data`` (``nesting`` of the parsed
    document), counted on its brackets with no Python-level step per value or character: escaped
    backslashes and quotes are dropped, then everything but brackets and quotes, then what lies
    between quotes (the strings); each round then removes the innermost pairs, ``()``, and the
    rounds until none are left are the depth."""
    kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_BRACKET_OR_QUOTE)
    brackets = b"".join(kept.split(b'"')[::2]).translate(_BRACKETS)
    depth = 0
    while brackets:
        inner = brackets.replace(b"()", b"")
        if len(inner) == len(brackets):  # unbalanced: not from valid JSON
            break
        brackets, depth = inner, depth + 1
    return depth


def nesting(doc: Any) -> int:
    """How deep lists and dicts nest in ``doc`` (0 for a scalar), without recursion."""
    if not isinstance(doc, (dict, list)):
        return 0
    deepest, stack = 1, [(doc, 1)]
    while stack:
        obj, depth = stack.pop()
        for child in obj.values() if isinstance(obj, dict) else obj:
            if isinstance(child, (dict, list)):
                deepest = max(deepest, depth + 1)
                stack.append((child, depth + 1))
    return deepest
