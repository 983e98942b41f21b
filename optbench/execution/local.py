"""The local executor: every unit of work in this process, one after another (today's loop)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from optbench.engine.base import RunEvents
from optbench.execution.base import WorkUnit, execute_unit
from optbench.spec import RunResult


class LocalExecutor:
    """Runs units in order in this process; results come back as each run finishes."""

    name = "local"

    def map(self, work: Iterable[WorkUnit], data_dir: Path, events: RunEvents) -> Iterator[RunResult]:
        for unit in work:
            yield from execute_unit(unit, data_dir, events)

    def close(self) -> None:
        pass
