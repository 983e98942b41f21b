"""The engine contract: an engine turns a group of specs into one result per spec.

A *group* is a list of specs that share everything but seed and swept hyperparameter values
(``optbench.execution.base.group_key``); the eager engine trains its specs one after another, a
vectorized engine may train them all in one pass. An engine never writes records, never reads
the store and never renders: it returns results, and reports progress through ``RunEvents``,
keyed by spec hash (several runs may be in flight at once).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from optbench.spec import RunResult, RunSpec


class RunEvents:
    """Progress hooks, keyed by spec hash; the defaults do nothing. Called in the process that
    trains (a remote executor forwards them or drops them)."""

    def run_started(self, spec_hash: str) -> None: ...

    def epoch_done(self, spec_hash: str, epoch: int, epochs: int) -> None: ...


class Engine(Protocol):
    """Turns a group of specs into results, yielded as each finishes (one per spec, any order).

    A failure inside a run (an exception, out of memory) is returned as a ``failed`` result, not
    raised; a ``UserError`` (missing or bad data) is raised, since every later run would fail the
    same way. ``data_dir`` is where datasets are read from (already prepared by the driver).
    """

    name: str

    def run_group(self, specs: Sequence[RunSpec], data_dir: Path, events: RunEvents) -> Iterator[RunResult]: ...
