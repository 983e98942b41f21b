"""The task registry. A task is one module with one ``Task`` subclass; add it to ``_TASKS``."""

from __future__ import annotations

from optbench.errors import UserError, did_you_mean, unknown
from optbench.tasks.base import Task, TaskData
from optbench.tasks.cifar10 import CIFAR10Classification
from optbench.tasks.mlp import MLPRegression
from optbench.tasks.regression import LinearRegression

_TASKS: list[type[Task]] = [LinearRegression, MLPRegression, CIFAR10Classification]
TASKS: dict[str, Task] = {cls.name: cls() for cls in _TASKS}

__all__ = ["TASKS", "Task", "TaskData", "get_task", "check_dataset"]


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise unknown("task", name, TASKS) from None


def check_dataset(task: Task, dataset: str | None) -> str:
    """The dataset name to use: ``dataset`` if the task has it, the task's default when None."""
    if dataset is None:
        return task.default_dataset
    if dataset not in task.datasets:
        raise UserError(
            f"unknown dataset '{dataset}' for task '{task.name}'{did_you_mean(dataset, task.datasets)}; "
            f"choose from: {', '.join(task.datasets)}"
        )
    return dataset
