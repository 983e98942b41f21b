"""Training options as the user writes them (``--schedule step:step_size=5``, ``--clip-norm 1``,
a suite file's ``schedule = {name = "step"}``), parsed and checked into the spec's typed
``TrainingOptions`` (optbench.spec.training), which declares what each option means.

Each option has one name from the command line to the record: the ``optbench run`` parameter, the
suite-file key, the ``SuiteConfig`` field and the ``TrainingOptions`` field are the same word
(``early_stop_delta``). The suite keys and their checks are derived from ``TrainingOptions``' fields
(``TRAINING_KEYS``, ``suite_fields``, ``resolve_training``), so an option is one field there plus its
flag in ``optbench.cli.app``.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Literal

from pydantic import Field

from optbench.config.inline import parse_inline
from optbench.errors import UserError, did_you_mean
from optbench.limits import MAX_TIME_BUDGET_S
from optbench.spec.training import SCHEDULE_PARAMS, TrainingOptions
from optbench.spec.vocabulary import PRECISIONS, SCHEDULES, SPLITS

# A schedule's own parameters are written inside ``schedule`` (``step:step_size=10``), not as keys.
_SCHEDULE_KEYS = {key for params in SCHEDULE_PARAMS.values() for key in params}
# The training options a user sets, in TrainingOptions' order: schedule, warmup_epochs, clip_norm, ...
TRAINING_KEYS: tuple[str, ...] = tuple(f.name for f in fields(TrainingOptions) if f.name not in _SCHEDULE_KEYS)
# The allowed words of the options that are words (the schedule's name is checked with its parameters).
_CHOICES: dict[str, tuple[str, ...]] = {"split": SPLITS, "precision": PRECISIONS}
_TYPES = typing.get_type_hints(TrainingOptions)
# The options with an upper bound (optbench.limits; docs/limits.md): every value has one, those not
# listed are bounded by their meaning (clipping and early stopping by any finite number).
UPPER: dict[str, float] = {"time_budget_s": MAX_TIME_BUDGET_S}
_DEFAULTS = {f.name: f.default for f in fields(TrainingOptions)}


def suite_fields() -> dict[str, Any]:
    """The suite-file schema of TRAINING_KEYS, as ``pydantic.create_model`` takes it: every key
    absent (None) unless given, typed by its TrainingOptions field: ``schedule`` a name, inline text
    or a table; a word one of its choices; an int a whole number >= 0; an optional float a finite
    number > 0 (every such option is off by default and a positive amount when on)."""
    out: dict[str, Any] = {}
    for key in TRAINING_KEYS:
        kind = _TYPES[key]
        if key == "schedule":
            out[key] = (str | dict[str, Any] | None, None)
        elif key in _CHOICES:
            out[key] = (Literal[_CHOICES[key]] | None, None)  # type: ignore[valid-type]
        elif kind is int:
            out[key] = (int | None, Field(default=None, ge=0, strict=True))
        elif kind == float | None:
            out[key] = (float | None, Field(default=None, gt=0, le=UPPER.get(key), strict=True, allow_inf_nan=False))
        else:  # a new kind of option: say here how a suite file writes it
            raise TypeError(f"training option {key!r} ({kind}) has no suite-file type")
    return out


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


def resolve_training(epochs: int, options: Mapping[str, Any]) -> TrainingOptions:
    """Checked training options for a run of ``epochs`` epochs from ``options``, keyed by
    TRAINING_KEYS (a missing or None value: the default); every schedule parameter is resolved and
    stored (``step``'s ``step_size`` defaults to a third of the epochs after warm-up, at least 1).

    Raises UserError with the fix for a bad value.
    """
    if unknown := set(options) - set(TRAINING_KEYS):
        raise TypeError(f"not training options: {', '.join(sorted(unknown))}")
    name, params = parse_schedule(options.get("schedule"))
    values: dict[str, Any] = {}
    for key in TRAINING_KEYS:
        value = options.get(key)
        if key == "schedule":
            continue
        if value is None:
            values[key] = _DEFAULTS[key]
        elif key in _CHOICES:
            if value not in _CHOICES[key]:
                choices = _CHOICES[key]
                raise UserError(f"unknown {key} '{value}'{did_you_mean(value, choices)}; choose from: {', '.join(choices)}")
            values[key] = value
        elif _TYPES[key] is int:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UserError(f"{key} must be a whole number >= 0, got {value!r}")
            values[key] = value
        elif _TYPES[key] == float | None:  # off, or a positive amount
            upper = UPPER.get(key, float("inf"))
            _check(_positive(value) and value <= upper, key, "a number > 0" + (f" and <= {upper:g}" if key in UPPER else ""), value)
            values[key] = float(value)
        else:  # a new kind of option: say here how it is checked (and in suite_fields how it is written)
            raise TypeError(f"training option {key!r} ({_TYPES[key]}) has no check")
    warmup = values["warmup_epochs"]
    if warmup >= epochs:
        raise UserError(f"warmup_epochs ({warmup}) must be less than the epochs ({epochs}); lower --warmup or raise --epochs")
    resolved = _schedule_params(name, params, epochs - warmup)
    if values["clip_norm"] is not None and values["clip_value"] is not None:
        raise UserError("choose one of clip_norm (--clip-norm) and clip_value (--clip-value), not both")
    return TrainingOptions(schedule=name, **resolved, **values)


def _schedule_params(name: str, params: Mapping[str, Any], epochs: int) -> dict[str, Any]:
    """Every parameter of schedule ``name``, checked, defaults filled in, for ``epochs`` epochs after warm-up."""
    resolved = {**SCHEDULE_PARAMS[name], **params}
    if name == "step":
        if resolved["step_size"] is None:
            resolved["step_size"] = max(1, epochs // 3)
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
    return resolved


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and value != float("inf")


def _check(ok: bool, what: str, expected: str, got: Any) -> None:
    if not ok:
        raise UserError(f"{what} must be {expected}, got {got!r}")
