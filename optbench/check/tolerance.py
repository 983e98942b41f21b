"""Tolerances for ``optbench check``: how much worse than the baseline a metric may get.

A tolerance has two levels, ``warn`` and ``fail``; each level is one of

- ``10%``      relative: worse by more than 10% of the baseline value,
- ``1.2x``     ratio: worse by more than a factor 1.2 (current/baseline for lower-is-better metrics,
               baseline/current for accuracy),
- ``abs=0.01`` absolute, in the metric's own units (seconds, loss, RMSE, accuracy as a fraction),
- ``off``      never.

Rules are written ``METRIC[@TASK/OPTIMIZER-glob]=SPEC`` where SPEC is ``warn:VALUE,fail:VALUE``,
either half alone (``fail:off``), or a bare ``VALUE``: the fail level, with warnings from half of it
(``10%`` = ``warn:5%,fail:10%``; ``1.5x`` = ``warn:1.25x,fail:1.5x``; ``abs=0.02`` = ``warn:abs=0.01,fail:abs=0.02``).
The glob is matched against ``task/optimizer-label`` and ``task/optimizer`` (``cifar10/*``, ``*/adam``).
Rules apply in order over the defaults (suite config first, then ``--tol`` flags); the last match wins.
An exact size (``optimizer_state_bytes``) takes no tolerance: any increase fails (optbench.check.compare).
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
from dataclasses import dataclass, replace
from typing import Literal

from optbench.errors import UserError, unknown
from optbench.limits import MAX_TOLERANCE
from optbench.metrics import Metric, checked_metrics

LevelKind = Literal["rel", "ratio", "abs", "off"]


@dataclass(frozen=True)
class Level:
    """One threshold. ``value``: a fraction for ``rel``, a factor >= 1 for ``ratio``, metric units for ``abs``."""

    kind: LevelKind
    value: float = 0.0

    def exceeded(self, baseline: float, current: float, higher_is_better: bool) -> bool:
        """True when ``current`` is worse than ``baseline`` by more than this level allows."""
        if self.kind == "off":
            return False
        worse = baseline - current if higher_is_better else current - baseline
        if self.kind == "abs":
            return worse > self.value
        if self.kind == "rel":
            return worse > self.value * abs(baseline)
        good, bad = (current, baseline) if higher_is_better else (baseline, current)
        if good <= 0:  # a ratio to zero or a negative value is meaningless: read 1.2x as 20%
            return worse > (self.value - 1) * abs(baseline)
        return bad > self.value * good

    def half(self) -> Level:
        """The warning level implied by a bare fail level: half the allowed worsening."""
        if self.kind == "ratio":
            return Level("ratio", 1 + (self.value - 1) / 2)
        return Level(self.kind, self.value / 2) if self.kind != "off" else self

    def __str__(self) -> str:
        if self.kind == "rel":
            return f"{self.value * 100:g}%"
        if self.kind == "ratio":
            return f"{self.value:g}x"
        return f"abs={self.value:g}" if self.kind == "abs" else "off"


@dataclass(frozen=True)
class Tolerance:
    warn: Level
    fail: Level

    def __str__(self) -> str:
        return f"warn:{self.warn},fail:{self.fail}"


@functools.cache
def default_tolerance(m: Metric) -> Tolerance:
    """A checked metric's default tolerance: its registry ``tolerance`` text, parsed."""
    warn, fail = parse_rule(f"{m.name}={m.tolerance}", known=False).levels()
    return Tolerance(warn, fail)


_VALUE = re.compile(r"^(?:(?P<rel>[0-9.eE+-]+)%|(?P<ratio>[0-9.eE+-]+)x|abs=(?P<abs>[0-9.eE+-]+)|(?P<off>off))$")
_SYNTAX = "write METRIC[@TASK/OPTIMIZER]=VALUE with VALUE like 10%, 1.2x, abs=0.01, off or warn:5%,fail:10%"


@dataclass(frozen=True)
class Rule:
    """One override; ``warn``/``fail`` None leave that level as it was."""

    metric: str
    glob: str | None
    warn: Level | None
    fail: Level | None
    text: str

    def levels(self) -> tuple[Level, Level]:
        """(warn, fail) of a rule that sets both, as a default does."""
        assert self.warn is not None and self.fail is not None, self.text
        return self.warn, self.fail

    def matches(self, metric: str, task: str, label: str, optimizer: str) -> bool:
        if metric != self.metric:
            return False
        return self.glob is None or any(fnmatch.fnmatchcase(f"{task}/{name}", self.glob) for name in (label, optimizer))


def parse_level(text: str, rule: str) -> Level:
    m = _VALUE.match(text.strip())
    if not m:
        raise UserError(f"bad tolerance '{rule}': '{text}' is not a level; {_SYNTAX}")
    if m["off"]:
        return Level("off")
    kind = next(k for k in ("rel", "ratio", "abs") if m[k] is not None)
    try:
        value = float(m[kind])
    except ValueError:
        raise UserError(f"bad tolerance '{rule}': '{text}' is not a number; {_SYNTAX}") from None
    if not math.isfinite(value) or abs(value) > MAX_TOLERANCE:
        raise UserError(f"bad tolerance '{rule}': '{text}' is beyond the largest tolerance value, {MAX_TOLERANCE:,.0f} "
                        "(10% is 10); to turn a check off write off, e.g. fail:off")
    if kind == "rel":
        value /= 100
    if value < 0 or (kind == "ratio" and value < 1):
        raise UserError(f"bad tolerance '{rule}': '{text}' allows no worsening at all; use a ratio >= 1x or a value >= 0")
    return Level(kind, value)


def parse_rule(text: str, known: bool = True) -> Rule:
    """Parse ``METRIC[@TASK/OPTIMIZER-glob]=SPEC`` (see the module docstring)."""
    target, sep, spec = text.partition("=")
    if not sep or not spec.strip():
        raise UserError(f"bad tolerance '{text}': {_SYNTAX}")
    metric, _, glob = target.strip().partition("@")
    if known and (exact := checked_metrics().get(metric)) is not None and exact.exact:
        raise UserError(f"bad tolerance '{text}': {metric} is compared exactly (any increase fails) and takes no "
                        "tolerance; leave it out")
    if known and metric not in (checked := tolerated_metrics()):
        raise unknown(f"metric in tolerance '{text}'", metric, checked)
    if "@" in target and "/" not in glob:
        raise UserError(f"bad tolerance '{text}': the scope after @ is TASK/OPTIMIZER, e.g. @cifar10/* or @*/adam")
    spec = spec.strip()
    if not spec.startswith(("warn:", "fail:")):
        fail = parse_level(spec, text)
        return Rule(metric, glob or None, fail.half(), fail, text)
    levels: dict[str, Level] = {}
    for part in spec.split(","):
        name, colon, value = part.partition(":")
        if not colon or name.strip() not in ("warn", "fail") or name.strip() in levels:
            raise UserError(f"bad tolerance '{text}': '{part}' should be warn:VALUE or fail:VALUE, each at most once")
        levels[name.strip()] = parse_level(value, text)
    return Rule(metric, glob or None, levels.get("warn"), levels.get("fail"), text)


def tolerated_metrics() -> dict[str, Metric]:
    """The checked metrics a tolerance applies to: all but the exact ones (``Metric.exact``)."""
    return {name: m for name, m in checked_metrics().items() if not m.exact}


class Tolerances:
    """The defaults plus ordered override rules; ``for_cell`` gives the tolerance in force."""

    def __init__(self, rules: list[Rule] | None = None) -> None:
        self.rules = list(rules or [])

    @classmethod
    def parse(cls, *rule_lists: list[str] | None) -> Tolerances:
        """Rules from several sources, earlier lists first (config, then command line)."""
        return cls([parse_rule(text) for rules in rule_lists for text in (rules or [])])

    def for_cell(self, metric: str, task: str, label: str, optimizer: str) -> Tolerance:
        """The tolerance of checked ``metric`` for a cell: the registry's default, then the matching rules."""
        tol = default_tolerance(checked_metrics()[metric])
        for rule in self.rules:
            if rule.matches(metric, task, label, optimizer):
                tol = replace(tol, **{k: v for k, v in (("warn", rule.warn), ("fail", rule.fail)) if v is not None})
        return tol

