"""Time to target: the first training time and epoch at which a run's test metric reached a goal.

A target is ``METRIC=VALUE``: ``loss`` (test loss, reached when <= value), ``rmse`` (regression
tasks, <= value, in target units), ``accuracy`` (classification tasks, >= value, a fraction) or
``bpc`` (the language model charlm, <= value, bits per character).
It does not change training, so it is not part of the spec: it is computed from the run's curve
(``time_s`` is cumulative training seconds at the end of each epoch), stored with the record, and
can be recomputed from any stored curve by the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from optbench.errors import UserError, did_you_mean
from optbench.metrics import higher_is_better
from optbench.spec.vocabulary import TARGET_METRICS



@dataclass(frozen=True)
class Target:
    metric: str
    value: float

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric)

    def text(self) -> str:
        return f"{self.metric}={self.value:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value}

    @classmethod
    def from_dict(cls, d: Any) -> Target | None:
        """The target a record carries, or None for a record without a valid one."""
        if isinstance(d, dict) and d.get("metric") in TARGET_METRICS and isinstance(d.get("value"), (int, float)):
            return cls(d["metric"], float(d["value"]))
        return None

    def reached(self, loss: float | None, metric: float | None) -> bool:
        value = loss if self.metric == "loss" else metric
        if value is None or not math.isfinite(value):
            return False
        return value >= self.value if self.higher_is_better else value <= self.value


def parse_target(text: str, metric_name: str | None = None, task: str | None = None) -> Target:
    """``"loss=0.5"`` -> Target. With a task's ``metric_name`` (``rmse`` or ``accuracy``), a target on
    the other metric is an error, since the task does not measure it."""
    name, eq, raw = str(text).partition("=")
    name = name.strip()
    if not eq or not name or not raw.strip():
        raise UserError(f"bad target '{text}'; write METRIC=VALUE, e.g. loss=0.5, rmse=1600 or accuracy=0.6")
    if name not in TARGET_METRICS:
        raise UserError(f"unknown target metric '{name}'{did_you_mean(name, TARGET_METRICS)}; choose from: {', '.join(TARGET_METRICS)}")
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"target value in '{text}' must be a number, e.g. {name}=0.5") from None
    if not math.isfinite(value):
        raise UserError(f"target value in '{text}' must be finite")
    if metric_name is not None and name != "loss" and name != metric_name:
        where = f"task '{task}'" if task else "this task"
        raise UserError(f"{where} measures {metric_name}, not {name}; use a target on loss or {metric_name} "
                        "(or one target per task in a suite file)")
    if name == "accuracy" and not 0 <= value <= 1:
        raise UserError(f"an accuracy target is a fraction in [0, 1], got {value:g} (write accuracy=0.6 for 60%)")
    return Target(name, value)


def time_to_target(curve: list[dict[str, Any]], target: Target) -> tuple[float | None, int | None]:
    """(training seconds, epoch) at the end of the first epoch whose test loss or metric reached
    ``target``; (None, None) when no epoch did. Points without test values (validation runs,
    a diverged epoch) never reach it."""
    for point in curve:
        if target.reached(point.get("test_loss"), point.get("test_metric")):
            return point.get("time_s"), point.get("epoch")
    return None, None


def steps_to_target(curve: list[dict[str, Any]], target: Target, steps: float | None) -> float | None:
    """Optimizer steps until the end of the first epoch that reached ``target``: that epoch x the
    run's steps per epoch, ``steps`` (the record's steps over every epoch it trained) over the
    curve's epochs; every epoch of a run takes the same steps, and the curve has one point per epoch,
    so this is as fine as it can be. None when no epoch reached it, or the steps are unknown."""
    _, epoch = time_to_target(curve, target)
    if epoch is None or steps is None or not math.isfinite(steps) or not curve:
        return None
    return epoch * (float(steps) / len(curve))


def target_metrics(curve: list[dict[str, Any]], target: Target, steps: float | None = None) -> dict[str, float | int | None]:
    """The record's ``time_to_target_s`` and ``epochs_to_target`` (null: never reached), and with the
    run's ``steps`` its ``steps_to_target``."""
    seconds, epoch = time_to_target(curve, target)
    out: dict[str, float | int | None] = {"time_to_target_s": seconds, "epochs_to_target": epoch}
    if steps is not None:
        out["steps_to_target"] = steps_to_target(curve, target, steps)
    return out
