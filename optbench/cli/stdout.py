"""What a failed write to standard output ends in: a closed pipe (``optbench report | head``)
ends the process quietly, as Unix tools do; a full disk or an I/O error is one line on stderr and
exit code ``OutputFailed.EXIT_CODE`` (never 0, never check's 1). ``optbench.cli.app.main`` wraps
stdout in ``optbench.files.CheckedStream`` so these failures reach it as OutputFailed."""

from __future__ import annotations

import errno
import os
import sys

from optbench.errors import OutputFailed

# A process killed by SIGPIPE exits with 128 + 13, what a shell reports for `yes | head`.
CLOSED_PIPE_EXIT = 141


def output_failed(exc: OutputFailed) -> int:
    """Report ``exc`` (nothing for a closed pipe) and return the exit code. Standard output is
    pointed at /dev/null first, so the interpreter's last flush at exit has nothing left to fail on."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass
    if exc.errno == errno.EPIPE:
        return CLOSED_PIPE_EXIT
    try:
        sys.stderr.write(f"error: {exc}; free space or write the output elsewhere\n")
        sys.stderr.flush()
    except OSError:
        pass
    return OutputFailed.EXIT_CODE
