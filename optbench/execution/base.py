"""The executor contract: where work runs. The campaign driver hands an executor units of work
and receives results in completion order; only the driver writes records.

A ``WorkUnit`` is one group of specs for one engine (specs that share everything but seed and
swept hyperparameter values, see ``optbench.spec.identity.group_key``), so a vectorized engine or a remote worker can
take the whole group. ``execute_unit`` is the function that runs a unit wherever it lands: this
process (``LocalExecutor``) or a worker of a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from optbench.engine.base import RunEvents
from optbench.spec import RunContext, RunResult, RunSpec


@dataclass(frozen=True)
class WorkUnit:
    """Specs for one engine to run together (one spec for the eager engine; one group, see
    ``optbench.spec.identity.group_key``, for the vectorized engine), with what the driver knows
    about them (``context``: stage, experiment, targets), so their results come back final."""

    specs: tuple[RunSpec, ...]
    engine: str = "eager"
    context: RunContext = field(default_factory=RunContext)


class Executor(Protocol):
    """Runs units of work and yields each result as soon as it is known (completion order).

    ``map`` may be called more than once (one call per protocol stage); ``close`` releases what
    the executor started (worker processes, a local cluster). A ``UserError`` raised by a run
    propagates out of ``map``; so does an interruption, after pending work is cancelled.
    """

    name: str

    def map(self, work: Iterable[WorkUnit], data_dir: Path, events: RunEvents) -> Iterator[RunResult]: ...

    def close(self) -> None: ...


def execute_unit(unit: WorkUnit, data_dir: Path, events: RunEvents | None = None) -> Iterator[RunResult]:
    """Run one unit with its engine, here: the function an executor calls wherever the unit lands.
    Yields one result per spec as each finishes; a run that raises is a ``failed`` result (the
    engine's job), a ``UserError`` propagates."""
    from optbench.engine import get_engine
    from optbench.engine.bookkeeping import finish

    for result in get_engine(unit.engine).run_group(unit.specs, data_dir, events or RunEvents()):
        yield finish(result, unit.context)
