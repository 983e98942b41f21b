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
