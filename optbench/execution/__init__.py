"""Executors decide where runs execute: ``local`` (this process) or ``ray`` (a Ray cluster).
The contract is ``optbench.execution.base``; ``driver.run_campaign`` is the one process that
owns a campaign from specs to records."""

from __future__ import annotations

from optbench.errors import unknown
from optbench.execution.base import Executor

EXECUTORS = ("local", "ray")


def make_executor(name: str, address: str | None = None, cpus: float = 1.0, gpus: float = 0.0) -> Executor:
    """The executor called ``name``; Ray is imported only for ``ray``."""
    if name == "local":
        from optbench.execution.local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        from optbench.execution.ray import RayExecutor

        return RayExecutor(address=address, cpus=cpus, gpus=gpus)
    raise unknown("executor", name, EXECUTORS)
