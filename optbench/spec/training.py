"""Training options: what a run does besides the optimizer step (schedule, warm-up, clipping,
early stopping, a time budget, and which split it is evaluated on).

They are part of the spec (``RunSpec.training``), so runs that differ in them are different cells.
Only options that differ from the defaults are stored: a run with none of them keeps the record
format and hashes it had before these options existed.

Options (units: epochs, seconds, loss, gradient units):

- ``schedule``: ``none``, ``step`` (multiply the learning rate by ``gamma`` every ``step_size``
  epochs), ``cosine`` (from the base rate towards 0 over the epochs after warm-up) or ``plateau``
  (multiply by ``factor`` after ``patience`` + 1 epochs without a relative improvement of 1e-4 in
  the validation loss, or the training loss when the run is evaluated on test); see
  ``optbench.engine.schedules`` for the exact rates.
- ``warmup_epochs``: linear warm-up before the schedule: epoch e <= W runs at e/(W+1) of the base rate.
- ``clip_norm`` / ``clip_value``: clip the gradient's global L2 norm, or each element to [-v, v],
  before every optimizer step (one of the two).
- ``early_stop_delta``: stop with status ``converged`` once the epoch training loss changes by less
  than this fraction of the previous epoch's (relative: the same threshold means the same on every task).
- ``time_budget_s``: stop with status ``budget`` at the end of the first epoch whose cumulative
  training seconds reach it (the clock of ``train_seconds``; evaluation time is not counted).
- ``split``: ``test`` (train on the training split, evaluate on test) or ``validation`` (train on
  the training split minus a validation part and evaluate on that part; the test split is never
  touched). See ``optbench.tasks.base.TaskData.validation_split``.
- ``precision``: ``float32``, or ``bf16``: the forward passes and losses of training and evaluation
  run under ``torch.autocast`` with bfloat16 (matrix products and convolutions in bfloat16, the
  rest as autocast decides); parameters, gradients and the optimizer's step stay float32. Only the
  tasks whose catalog entry lists it (``TaskInfo.precisions``) and the eager engine take it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from optbench.spec.vocabulary import FLOAT32, SCHEDULES, SPLITS

__all__ = ["PER_OPTIMIZER", "SCHEDULES", "SCHEDULE_PARAMS", "SPLITS", "TrainingOptions"]
# The options an optimizer entry may set for itself (``--opt "sgd:lr=0.1,clip_value=1"``, or
# ``clip_value = 1.0`` in a suite file's optimizer table), declared once. They stay training options
# of the run (its spec, hash and identity; the engines apply them), but a report shows them in the
# cell's label (``sgd(lr=0.1,clip_value=1)``) and leaves them out of the budget, which says what
# every cell of a table shares. A suite-wide ``clip_value`` sets every optimizer's; an entry that
# names either clipping option replaces the suite's clipping for that optimizer.
PER_OPTIMIZER: tuple[str, ...] = ("clip_norm", "clip_value")
# Each schedule's parameters with their defaults (None: derived from the run's epochs, see ``resolve``).
SCHEDULE_PARAMS: dict[str, dict[str, Any]] = {
    "none": {},
    "step": {"step_size": None, "gamma": 0.1},
    "cosine": {},
    "plateau": {"factor": 0.1, "patience": 2},
}


@dataclass(frozen=True)
class TrainingOptions:
    """The training options of one run; the defaults are plain training evaluated on test."""

    schedule: str = "none"
    step_size: int | None = None
    gamma: float | None = None
    factor: float | None = None
    patience: int | None = None
    warmup_epochs: int = 0
    clip_norm: float | None = None
    clip_value: float | None = None
    early_stop_delta: float | None = None
    time_budget_s: float | None = None
    split: str = "test"
    precision: str = FLOAT32

    def to_dict(self) -> dict[str, Any]:
        """Only the options that differ from the defaults (empty for plain training)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TrainingOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in known})

    def with_split(self, split: str) -> TrainingOptions:
        return replace(self, split=split)

    def without_split(self) -> dict[str, Any]:
        """The stored options but the split: what a sweep candidate and its final runs share."""
        return {k: v for k, v in self.to_dict().items() if k != "split"}

    def optimizer_options(self) -> dict[str, Any]:
        """The stored options an optimizer entry may set for itself (``PER_OPTIMIZER``)."""
        return {k: v for k, v in self.to_dict().items() if k in PER_OPTIMIZER}

    def shared_text(self) -> str:
        """``text()`` without the per-optimizer options: what a report's budget is made of."""
        return ",".join(f"{k}={_fmt(v)}" for k, v in self.to_dict().items() if k not in PER_OPTIMIZER)

    def text(self) -> str:
        """``schedule=cosine,split=validation``: the options as one short string ('' when default)."""
        return ",".join(f"{k}={_fmt(v)}" for k, v in self.to_dict().items())


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
