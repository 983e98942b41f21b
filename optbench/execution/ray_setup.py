"""Joining or starting a Ray cluster, for ``optbench.execution.ray``: the ``--address`` syntax,
connection attempts that had to be abandoned, and where Ray's own log lines go (a file, not the
terminal). Ray is imported only inside ``ray_logs_to_file``."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optbench.errors import UserError

# Connection attempts left running in a helper thread (a port that is not Ray's): Ray's C++ client in
# that thread aborts the interpreter's shutdown, so the process must end without one (``connect_abandoned``).
_abandoned: list[threading.Thread] = []


def abandon(thread: threading.Thread) -> None:
    """Remember a connection attempt left running in ``thread``."""
    _abandoned.append(thread)


def connect_abandoned() -> bool:
    """Whether a connection attempt is still running in a helper thread: the CLI then ends the
    process with ``os._exit`` once its output is flushed, as Ray's client cannot be shut down."""
    return any(t.is_alive() for t in _abandoned)


def parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` or ``[IPv6]:PORT``; None for ``auto`` (Ray finds the cluster
    this machine started). A malformed address or a port outside 1-65535 is a UserError at once."""
    if address == "auto":
        return None
    host, sep, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535 or "/" in host:
        raise UserError(f"--address {address!r} is not auto or HOST:PORT with a port in 1-65535 "
                        "(e.g. 127.0.0.1:6379, the port `ray start --head` printed)")
    return host, int(port)


@contextlib.contextmanager
def ray_logs_to_file() -> Iterator[None]:
    """Ray's own log lines (Python loggers named ``ray``) go to a file, not the terminal:
    ``$TMPDIR/optbench-ray-<uid>.log``; so do the cluster's error messages (a raylet that died),
    which Ray's driver prints on stdout from a thread of its own, into a table or a JSON array.

    ``ray.init(configure_logging=False)`` clears the ``ray`` logger's handlers, so while it runs
    the file is Python's last-resort handler (what a logger without handlers writes to; the
    terminal otherwise), and afterwards the ``ray`` logger's only handler."""
    logger = logging.getLogger("ray")
    path = Path(tempfile.gettempdir()) / f"optbench-ray-{os.getuid() if hasattr(os, 'getuid') else 0}.log"
    try:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    import ray._private.worker as ray_worker

    def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        for line in data.get("lines", []):
            logger.warning("(%s) %s", data.get("pid", "ray"), line)

    ray_worker.print_to_stdstream = to_log  # looked up by Ray's error listener at each message
    last_resort, logging.lastResort = logging.lastResort, handler
    try:
        yield
    finally:
        logging.lastResort = last_resort
        for other in list(logger.handlers):  # Ray's own handler writes to stderr
            logger.removeHandler(other)
        logger.addHandler(handler)
        logger.propagate = False
