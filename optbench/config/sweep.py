"""Hyperparameter sweeps: one optimizer entry with several values per key -> several concrete entries.

Inline (``--opt`` and suite strings) ``|`` separates alternatives, and every combination is swept::

    adam:lr=1e-4|1e-3|1e-2,betas=0.9/0.999|0.8/0.99   ->  6 entries, lr varying slowest

In a suite table a key takes a list of alternatives, or a range::

    {name = "adam", lr = [1e-4, 1e-3]}                 # two values
    {name = "adam", lr = {log = [1e-5, 1e-1], num = 9}}   # 9 log-spaced values, ends included
    {name = "adam", lr = {linear = [0.1, 0.9], num = 5}}  # 5 evenly spaced values
    {name = "adam", betas = [[0.9, 0.999], [0.8, 0.99]]}  # alternatives of a tuple hyperparameter

A flat list for a key whose default is a tuple (``betas = [0.9, 0.98]``) stays one value, as before.
Range values are rounded to 6 significant digits, so a label pasted back into ``--opt`` names the
same run. Expansion happens before ``optbench.optim.registry`` parses and checks each entry.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from optbench.errors import UserError
from optbench.config.inline import parse_inline
from optbench.limits import check_runs
from optbench.optim.registry import lookup_optimizer

RANGE_KINDS = ("log", "linear")


def expand_inline(text: str) -> list[str]:
    """``name:key=a|b,other=c`` -> ``["name:key=a,other=c", "name:key=b,other=c"]`` (one entry when
    nothing has alternatives). The name is split off as ``parse_optimizer_arg`` does."""
    text = text.strip()
    parsed = parse_inline(text, "hyperparameter", "adam:lr=1e-3|1e-2", colons_in_name=True)
    if not any("|" in raw for _, raw in parsed.items):
        return [text]
    check_runs(count_inline(text), f"'{text}'")
    axes: list[list[str]] = []
    for key, raw in parsed.items:
        values = [v.strip() for v in raw.split("|")]
        if any(not v for v in values):
            raise UserError(f"empty alternative in '{key}={raw}' of '{text}'; write key=a|b|c, e.g. {parsed.name}:lr=1e-3|1e-2")
        if len(set(values)) < len(values):
            raise UserError(f"a value is given twice in '{key}={raw}' of '{text}'")
        axes.append([f"{key}={v}" for v in values])
    return [f"{parsed.name}:{','.join(combo)}" for combo in itertools.product(*axes)]


def expand_table(name: str, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """The override dicts of a suite table ``{name, key = value | [values] | {log/linear = [a, b], num = n}}``."""
    references = _references(name, overrides)
    check_runs(count_table(name, overrides), f"the sweep of '{name}'")
    axes = [[(key, v) for v in alternatives(name, key, value, references[key])] for key, value in overrides.items()]
    return [dict(combo) for combo in itertools.product(*axes)]


def count_inline(text: str) -> int:
    """How many entries ``expand_inline(text)`` gives, without building them."""
    parsed = parse_inline(text, "hyperparameter", "adam:lr=1e-3|1e-2", colons_in_name=True)
    return math.prod(raw.count("|") + 1 for _, raw in parsed.items)


def count_table(name: str, overrides: dict[str, Any]) -> int:
    """How many entries ``expand_table(name, overrides)`` gives, without building them."""
    references = _references(name, overrides)
    return math.prod(_count(name, key, value, references[key]) for key, value in overrides.items())


def _references(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    opt = lookup_optimizer(name)
    return {key: opt.reference_value(key) if opt is not None and key in opt.accepted_keys() else None
            for key in overrides}


def _count(name: str, key: str, value: Any, reference: Any) -> int:
    if isinstance(value, dict):  # a malformed range counts 1 here; value_range says what is wrong with it
        num = value.get("num")
        return num if isinstance(num, int) and not isinstance(num, bool) and num >= 1 else 1
    if isinstance(value, list):
        if isinstance(reference, tuple) and not any(isinstance(v, list) for v in value):
            return 1
        return max(len(value), 1)
    return 1


def alternatives(name: str, key: str, value: Any, reference: Any = None) -> list[Any]:
    """The values one key of a suite table sweeps over (a one-element list when it is not swept)."""
    where = f"hyperparameter '{key}' of '{name}'"
    if isinstance(value, dict):
        return value_range(where, value)
    if isinstance(value, list):
        if isinstance(reference, tuple) and not any(isinstance(v, list) for v in value):
            return [value]  # one tuple value, written as a list
        if not value:
            raise UserError(f"{where}: an empty list sweeps nothing; give at least one value")
        return value
    return [value]


def value_range(where: str, spec: dict[str, Any]) -> list[float]:
    """``{log = [a, b], num = n}`` (log-spaced, both ends included) or ``{linear = [a, b], num = n}``."""
    kinds = [k for k in RANGE_KINDS if k in spec]
    extra = set(spec) - {*RANGE_KINDS, "num"}
    example = "{log = [1e-5, 1e-1], num = 9}"
    if len(kinds) != 1 or extra or "num" not in spec:
        raise UserError(f"{where}: a range is {example} or {{linear = [a, b], num = n}}")
    kind, ends, num = kinds[0], spec[kinds[0]], _range_num(where, spec)
    if not (isinstance(ends, list) and len(ends) == 2 and all(_is_number(v) for v in ends)):
        raise UserError(f"{where}: {kind} needs two numbers [start, end], e.g. {example}")
    a, b = float(ends[0]), float(ends[1])
    if kind == "log":
        if a <= 0 or b <= 0:
            raise UserError(f"{where}: a log range needs positive ends, got [{ends[0]}, {ends[1]}]")
        a, b = math.log10(a), math.log10(b)
    points = [a] if num == 1 else [a + (b - a) * i / (num - 1) for i in range(num)]
    values = [10**p if kind == "log" else p for p in points]
    return list(dict.fromkeys(float(f"{v:.6g}") for v in values))


def _range_num(where: str, spec: dict[str, Any]) -> int:
    """A range's ``num``, checked against the run limit before a single value is computed."""
    num = spec.get("num")
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        raise UserError(f"{where}: num must be a whole number >= 1, got {num!r}")
    check_runs(num, f"{where}: num = {num}")
    return num


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
