"""The tasks: ``TASKS`` (what each is, torch-free: ``optbench.tasks.catalog``) and ``get_task``
(its ``Task`` implementation, imported on first use; it needs torch).

A task is one module with one ``Task`` subclass plus its ``TaskInfo`` entry in the catalog.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from optbench.tasks.catalog import TASKS, TaskInfo, check_dataset, task_info

if TYPE_CHECKING:
    from optbench.tasks.base import Task, TaskData

__all__ = ["TASKS", "Task", "TaskData", "TaskInfo", "get_task", "task_info", "check_dataset"]


@functools.cache
def get_task(name: str) -> Task:
    """The implementation of task ``name`` (UserError naming the tasks when there is none)."""
    info = task_info(name)
    module, _, cls = info.implementation.partition(":")
    return getattr(importlib.import_module(module), cls)(info)


def __getattr__(name: str) -> Any:
    # Task and TaskData are importable from here as before, without importing torch up front.
    if name in ("Task", "TaskData"):
        from optbench.tasks import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
