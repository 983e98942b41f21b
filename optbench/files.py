"""Writing files so that a reader never sees half of one, and checking a folder is writable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
