"""Errors a user can cause and fix; the CLI prints them as one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input, data or environment, with the fix in the message."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest valid choice, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """Error for an unknown name, naming the closest and all valid choices."""
    choices = sorted(choices)
    return UserError(
        f"unknown {kind} '{name}'{did_you_mean(name, choices)}; choose from: {', '.join(choices)}"
    )


class StoreFailed(UserError):
    """The results folder stopped accepting records in the middle of a suite (a full disk, a
    permission or mount change). The records written before it are whole and kept; the suite stops,
    and ``optbench run`` exits with ``EXIT_CODE``."""

    EXIT_CODE = 74  # EX_IOERR of sysexits.h

    def __init__(self, folder: object, exc: OSError) -> None:
        self.folder = folder
        self.reason = exc.strerror or str(exc)
        super().__init__(f"cannot write to {folder} ({self.reason})")


class ClusterLost(UserError):
    """The cluster that runs a campaign failed (its local raylet or a node died, the connection
    dropped, a unit kept failing for reasons of the cluster, not of the run). No record is written
    for the runs in flight; the records written before are whole and kept (``kept``, set by the
    driver), and running the same command again resumes. ``optbench run`` exits with ``EXIT_CODE``."""

    EXIT_CODE = 75  # EX_TEMPFAIL of sysexits.h: a temporary failure, try again

    def __init__(self, reason: str, in_flight: int = 0) -> None:
        self.reason = reason
        self.in_flight = in_flight
        self.kept = 0
        super().__init__(reason)


class OutputFailed(Exception):
    """Standard output or an output file could not be written whole (no space left, an I/O error,
    a file too large): one line, exit ``EXIT_CODE``; a file promised whole is not left in part.
    (A closed pipe on standard output is not this: the process ends quietly, as Unix tools do.)"""

    EXIT_CODE = 73  # EX_CANTCREAT of sysexits.h: cannot create the output

    def __init__(self, target: object, exc: OSError) -> None:
        self.target = target
        self.errno = exc.errno
        self.reason = exc.strerror or str(exc)
        super().__init__(f"cannot write {target} ({self.reason})")


def write_failed(target: object, exc: OSError, fix: str = "choose a path you can write") -> Exception:
    """The error for a failed write of ``target``: OutputFailed for a full disk or an I/O error
    (nothing the path's choice fixes), else a UserError (a path that cannot be written: exit 2)."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EPIPE):
        return OutputFailed(target, exc)
    return UserError(f"cannot write {target} ({exc.strerror or exc}); {fix}")
