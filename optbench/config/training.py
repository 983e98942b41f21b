"""Training options as the user writes them (``--schedule step:step_size=5``, ``--clip-norm 1``,
a suite file's ``schedule = {name = "step"}``), parsed and checked into the spec's typed
``TrainingOptions`` (optbench.spec.training), which declares what each option means.
"""

from __future__ import annotations

from typing import Any

from optbench.config.inline import parse_inline
from optbench.errors import UserError, did_you_mean
from optbench.spec.training import SCHEDULE_PARAMS, SCHEDULES, SPLITS, TrainingOptions


def parse_schedule(value: str | dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """``"step:step_size=5,gamma=0.5"`` or ``{name = "step", step_size = 5}`` -> (name, parameters)."""
    if value is None:
        return "none", {}
    if isinstance(value, dict):
        params = dict(value)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise UserError(f"schedule table needs a name: one of {', '.join(SCHEDULES)}, e.g. {{name = \"step\", step_size = 10}}")
    else:
        parsed = parse_inline(str(value), "schedule parameter", "step:step_size=10,gamma=0.5")
        name, params = parsed.name, {key: _number(raw, key) for key, raw in parsed.items}
    name = name.strip()
    if name not in SCHEDULES:
        raise UserError(f"unknown schedule '{name}'{did_you_mean(name, SCHEDULES)}; choose from: {', '.join(SCHEDULES)}")
    allowed = SCHEDULE_PARAMS[name]
    for key in params:
        if key not in allowed:
            valid = f"valid keys: {', '.join(allowed)}" if allowed else "it takes none"
            raise UserError(f"unknown parameter '{key}' for schedule '{name}'; {valid}")
    return name, params


def _number(raw: str, key: str) -> int | float:
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    raise UserError(f"schedule parameter '{key}' must be a number, got '{raw}'")


def resolve(epochs: int, schedule: str | dict[str, Any] | None = None, warmup_epochs: int | None = None,
            clip_norm: float | None = None, clip_value: float | None = None, early_stop_delta: float | None = None,
            time_budget_s: float | None = None, split: str | None = None) -> TrainingOptions:
    """Checked training options for a run of ``epochs`` epochs; every schedule parameter is resolved
    and stored (``step``'s ``step_size`` defaults to a third of the epochs after warm-up, at least 1).

    Raises UserError with the fix for a bad value.
    """
    name, params = parse_schedule(schedule)
    warmup = warmup_epochs or 0
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise UserError(f"warmup_epochs must be a whole number >= 0, got {warmup!r}")
    if warmup >= epochs:
        raise UserError(f"warmup_epochs ({warmup}) must be less than the epochs ({epochs}); lower --warmup or raise --epochs")
    resolved = {**SCHEDULE_PARAMS[name], **params}
    if name == "step":
        if resolved["step_size"] is None:
            resolved["step_size"] = max(1, (epochs - warmup) // 3)
        _check(isinstance(resolved["step_size"], int) and resolved["step_size"] >= 1, "step_size of schedule 'step'",
               "a whole number of epochs >= 1", resolved["step_size"])
        _check(_positive(resolved["gamma"]), "gamma of schedule 'step'", "a number > 0", resolved["gamma"])
        resolved["gamma"] = float(resolved["gamma"])
    if name == "plateau":
        _check(_positive(resolved["factor"]) and resolved["factor"] < 1, "factor of schedule 'plateau'",
               "a number in (0, 1)", resolved["factor"])
        _check(isinstance(resolved["patience"], int) and resolved["patience"] >= 0, "patience of schedule 'plateau'",
               "a whole number of epochs >= 0", resolved["patience"])
        resolved["factor"] = float(resolved["factor"])
    for key, value in (("clip_norm", clip_norm), ("clip_value", clip_value), ("early_stop_delta", early_stop_delta),
                       ("time_budget_s", time_budget_s)):
        if value is not None:
            _check(_positive(value), key, "a number > 0", value)
    if clip_norm is not None and clip_value is not None:
        raise UserError("choose one of clip_norm (--clip-norm) and clip_value (--clip-value), not both")
    split = split or "test"
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}'{did_you_mean(split, SPLITS)}; choose from: {', '.join(SPLITS)}")
    as_float = {k: None if v is None else float(v) for k, v in
                (("clip_norm", clip_norm), ("clip_value", clip_value), ("early_stop_delta", early_stop_delta),
                 ("time_budget_s", time_budget_s))}
    return TrainingOptions(schedule=name, warmup_epochs=warmup, split=split, **resolved, **as_float)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and value != float("inf")


def _check(ok: bool, what: str, expected: str, got: Any) -> None:
    if not ok:
        raise UserError(f"{what} must be {expected}, got {got!r}")
