"""Per-run bookkeeping that every engine shares: the curve, divergence, early stopping, the time
budget and the assembly of the result's metrics. An engine trains; a ``RunBook`` per run (per
replica, in a vectorized engine) decides when that run stops and what its record says.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from optbench.fingerprint import environment
from optbench.optim.registry import spec_label
from optbench.spec import CurvePoint, RunContext, RunResult, RunSpec, Status
from optbench.spec.targets import target_metrics
from optbench.spec.training import TrainingOptions

Metrics = dict[str, float | int | None]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def failed_result(spec: RunSpec, started_at: str, error: str, device: str | None = None) -> RunResult:
    """The record of a run that raised: no metrics, no curve, the error with its traceback tail."""
    return RunResult(spec=spec, status="failed", metrics={}, curve=[], environment=environment(device or spec.device),
                     started_at=started_at, finished_at=utc_now(), run_id=uuid.uuid4().hex[:12], error=error)


def finish(result: RunResult, context: RunContext) -> RunResult:
    """The result as it is stored: its display label, what the driver knows about the run (stage,
    experiment, preset, git commit) and, for a test-split run of a task with a goal, its time and
    epochs to target (computed from the curve). Applied where the run ran, so a result leaves its
    work unit final and the driver only saves it."""
    result.label = spec_label(result.spec)
    result.stage, result.experiment, result.protocol = context.stage, context.experiment, context.protocol
    result.command = context.command
    result.environment = {**result.environment, "git_commit": context.git_commit}
    target = context.target_for(result.spec.task)
    if target is not None and result.spec.training.split == "test":
        result.target = target.to_dict()
        result.metrics = {**result.metrics, **target_metrics([p.to_dict() for p in result.curve], target)}
    return result


@dataclass
class RunBook:
    """One run's state between epochs. ``record_epoch`` after each timed epoch returns whether the
    run goes on; ``result`` assembles the RunResult.

    The task evaluates on its held-out split (``Task.evaluate``: the test split, or the validation
    rows of the training data) and names the values ``test_*``; a run on the validation split
    stores them as ``val_loss``/``val_<metric>`` instead, so a test value is never one measured
    on validation rows.
    """

    spec: RunSpec
    metric_name: str
    started_at: str = field(default_factory=utc_now)
    curve: list[CurvePoint] = field(default_factory=list)
    status: Status = "ok"
    train_seconds: float = 0.0
    evaluation: Metrics = field(default_factory=dict)
    extra: Metrics = field(default_factory=dict)

    @property
    def options(self) -> TrainingOptions:
        return self.spec.training

    @property
    def prefix(self) -> str:
        return "val" if self.options.split == "validation" else "test"

    def record_epoch(self, epoch: int, seconds: float, train_loss: float, lr: float | None,
                     evaluate: Any) -> bool:
        """Add one epoch that took ``seconds`` of training. ``evaluate()`` returns ``Task.evaluate``'s
        dict and is called only when the run did not diverge.
        Returns False when the run stops here (diverged, converged or out of budget)."""
        self.train_seconds += seconds
        if not math.isfinite(train_loss):
            self.status = "diverged"
            self.curve.append(CurvePoint(epoch, self.train_seconds, train_loss, None, None, lr))
            return False
        held_out = evaluate()
        loss, metric = held_out["test_loss"], held_out[f"test_{self.metric_name}"]
        if self.prefix == "val":
            self.evaluation = {"val_loss": loss, f"val_{self.metric_name}": metric}
            self.curve.append(CurvePoint(epoch, self.train_seconds, train_loss, None, None, lr, loss, metric))
        else:
            self.evaluation = dict(held_out)
            self.curve.append(CurvePoint(epoch, self.train_seconds, train_loss, loss, metric, lr))
        if epoch < self.spec.epochs:
            stop = self._stop_reason()
            if stop:
                self.status, self.extra["stopped_epoch"] = stop, epoch
                return False
        return True

    def plateau_signal(self) -> float | None:
        """What a plateau schedule watches: the validation loss, or the training loss (never test)."""
        if not self.curve:
            return None
        last = self.curve[-1]
        return last.val_loss if self.prefix == "val" else last.train_loss

    def _stop_reason(self) -> Status | None:
        """``converged`` when the epoch training loss changed by less than ``early_stop_delta`` of the
        previous epoch's, ``budget`` when the training seconds reached ``time_budget_s``, else None."""
        delta = self.options.early_stop_delta
        if delta is not None and len(self.curve) >= 2:
            previous, current = self.curve[-2].train_loss, self.curve[-1].train_loss
            if previous is not None and current is not None and abs(current - previous) < delta * abs(previous):
                return "converged"
        if self.options.time_budget_s is not None and self.train_seconds >= self.options.time_budget_s:
            return "budget"
        return None

    def metrics(self, steps_per_epoch: int, samples_per_epoch: int, extra: Metrics | None = None) -> Metrics:
        """The result's metrics: time and throughput over the epochs trained, the last training loss,
        the last evaluation (none after divergence), why it stopped, and the engine's ``extra``."""
        epochs = len(self.curve)
        seconds = self.train_seconds
        steps = epochs * steps_per_epoch
        return {
            "train_seconds": seconds,
            "epochs_completed": epochs - 1 if self.status == "diverged" else epochs,
            "steps": steps,
            "steps_per_s": steps / seconds if seconds > 0 else None,
            "samples_per_s": epochs * samples_per_epoch / seconds if seconds > 0 else None,
            "final_train_loss": self.curve[-1].train_loss if self.curve else None,
            **(self.evaluation if self.status != "diverged" else {}),
            **self.extra,
            **(extra or {}),
        }

    def result(self, metrics: Metrics, device: str, optimizer_impl: str | None) -> RunResult:
        return RunResult(
            spec=self.spec, status=self.status, metrics=metrics, curve=self.curve, environment=environment(device),
            started_at=self.started_at, finished_at=utc_now(), run_id=uuid.uuid4().hex[:12],
            metric_name=self.metric_name, optimizer_impl=optimizer_impl,
        )
