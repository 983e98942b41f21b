"""Optimizer entries as the user writes them, parsed once into typed values.

An entry is an optimizer's name and, per hyperparameter, the values to run it with: one
(``adam:lr=3e-4``), several (a sweep: ``adam:lr=1e-4|1e-3``) or a range (``lr = {log = [1e-5, 1e-1],
num = 9}`` in a suite table). ``--opt`` text and suite tables parse into the same ``OptimizerSweep``::

    "adam:lr=1e-4|1e-3,betas=0.9/0.98"   -> OptimizerSweep("adam", {"lr": (0.0001, 0.001), "betas": ((0.9, 0.98),)})
    {name = "adam", lr = [1e-4, 1e-3], betas = [[0.9, 0.98]]}
                                         -> OptimizerSweep("adam", {"lr": Listed((0.0001, 0.001)), "betas": ((0.9, 0.98),)})

and both expand to the same two settings (a flat list is a sweep unless the default is a tuple).

Values are bools, ints, floats, strings and tuples (``/`` inline, a list in a table), parsed here
and never written back as text. Nothing here knows an optimizer: ``optbench.config.sweep`` expands
the combinations, and ``optbench.optim.hparams.resolve_hparams`` coerces each to the optimizer's
own types and checks it. Neither torch nor the optimizer registry is imported (``optbench list``
and ``--help`` read the presets, which use these types).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optbench.config.inline import parse_inline
from optbench.spec.inline import parse_value
from optbench.spec.search import round6
from optbench.errors import UserError

if TYPE_CHECKING:
    from optbench.optim.registry import HParams, HParamValue

RANGE_KINDS = ("log", "linear")
_INLINE_EXAMPLE = "adam:lr=1e-3|1e-2"


@dataclass(frozen=True)
class Range:
    """``num`` values from ``start`` to ``end``, both included: log-spaced (``{log = [a, b], num = n}``)
    or evenly spaced (``{linear = [a, b], num = n}``). Its values are computed only by ``values()``,
    so a suite is counted against the run limit (``num`` each) before any of them exists."""

    kind: str  # one of RANGE_KINDS
    start: float
    end: float
    num: int

    @classmethod
    def parse(cls, where: str, spec: Mapping[str, Any]) -> Range:
        """A range table, checked; ``where`` names it in the UserError for a malformed one."""
        kinds = [k for k in RANGE_KINDS if k in spec]
        extra = set(spec) - {*RANGE_KINDS, "num"}
        example = "{log = [1e-5, 1e-1], num = 9}"
        if len(kinds) != 1 or extra or "num" not in spec:
            raise UserError(f"{where}: a range is {example} or {{linear = [a, b], num = n}}")
        kind, ends, num = kinds[0], spec[kinds[0]], spec["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise UserError(f"{where}: num must be a whole number >= 1, got {num!r}")
        if not (isinstance(ends, list) and len(ends) == 2 and all(_is_number(v) for v in ends)):
            raise UserError(f"{where}: {kind} needs two numbers [start, end], e.g. {example}")
        if kind == "log" and (ends[0] <= 0 or ends[1] <= 0):
            raise UserError(f"{where}: a log range needs positive ends, got [{ends[0]}, {ends[1]}]")
        return cls(kind, float(ends[0]), float(ends[1]), num)

    def values(self) -> tuple[float, ...]:
        """The values, smallest index first, each rounded to 6 significant digits (so a label pasted
        back into ``--opt`` names the same run); a value that rounds onto the one before is dropped."""
        a, b = self.start, self.end
        if self.kind == "log":
            a, b = math.log10(a), math.log10(b)
        n = self.num
        points = [a] if n == 1 else [a + (b - a) * i / (n - 1) for i in range(n)]
        values = [10**p if self.kind == "log" else p for p in points]
        return tuple(dict.fromkeys(round6(v) for v in values))

    def describe(self) -> str:
        """``36 log-spaced values from 1e-5 to 1e2``."""
        spacing = "log-spaced" if self.kind == "log" else "evenly spaced"
        return f"{self.num} {spacing} values from {_short(self.start)} to {_short(self.end)}"


@dataclass(frozen=True)
class Listed:
    """A flat list in a suite table (``betas = [0.9, 0.98]``, ``lr = [1e-3, 1e-2]``): one tuple value
    where the optimizer's default is a tuple, else one alternative per item. Only the optimizer can
    say which; ``optbench.config.sweep`` asks it."""

    items: tuple[Any, ...]


# A hyperparameter's alternatives: the values in the order written (one value: not swept), a range,
# or a table's flat list.
Alternatives = tuple["HParamValue", ...] | Range | Listed


@dataclass(frozen=True)
class OptimizerSweep:
    """An optimizer entry: its name and, per hyperparameter in the order written, its alternatives.
    Every combination is one setting (``optbench.config.sweep.expand``)."""

    name: str
    values: Mapping[str, Alternatives] = field(default_factory=dict)
    # How the entry was written inline (for messages); None for a suite table.
    text: str | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, text: str) -> OptimizerSweep:
        """``name[:key=a|b,key=value,...]``, as ``--opt`` and suite strings write it: ``|`` separates
        alternatives, ``/`` the items of a tuple. The name may itself hold colons (see
        ``parse_optimizer_arg``). An empty or repeated alternative is a UserError."""
        text = text.strip()
        parsed = parse_inline(text, "hyperparameter", _INLINE_EXAMPLE, colons_in_name=True)
        if not parsed.name:
            raise UserError(f"empty optimizer name in '{text}'; write NAME or NAME:key=value,...")
        values: dict[str, Alternatives] = {}
        for key, raw in parsed.items:
            written = [v.strip() for v in raw.split("|")]
            if any(not v for v in written):
                raise UserError(f"empty alternative in '{key}={raw}' of '{text}'; write key=a|b|c, "
                                f"e.g. {parsed.name}:lr=1e-3|1e-2")
            if len(set(written)) < len(written):
                raise UserError(f"a value is given twice in '{key}={raw}' of '{text}'")
            values[key] = tuple(parse_value(v) for v in written)
        return cls(parsed.name, values, text)

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> OptimizerSweep:
        """A suite table's hyperparameters (``name`` aside): a value, a list of alternatives (lists
        inside it are tuples), a flat list (``Listed``) or a range (``{log = [a, b], num = n}``)."""
        values: dict[str, Alternatives] = {}
        for key, value in table.items():
            if isinstance(value, dict):
                values[key] = Range.parse(f"hyperparameter '{key}' of '{name}'", value)
            elif isinstance(value, list) and any(isinstance(v, list) for v in value):
                values[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            elif isinstance(value, list):
                values[key] = Listed(tuple(value))
            else:
                values[key] = (value,)
        return cls(name, values)

    def sweeping(self, key: str, alternatives: Alternatives) -> OptimizerSweep:
        """This entry with ``key`` swept over ``alternatives`` too (after the keys written)."""
        return OptimizerSweep(self.name, {**self.values, key: alternatives}, self.text)

    def written(self, key: str | None = None) -> str:
        """The entry as the user wrote it, for messages: ``adam:lr=1e-3``, or for a table
        ``{name = "adam", ...}`` (``{name = "adam", lr = ...}`` with ``key="lr"``)."""
        if self.text is not None:
            return self.text
        return f'{{name = "{self.name}", {key} = ...}}' if key else f'{{name = "{self.name}", ...}}'


def parse_optimizer_arg(text: str) -> tuple[str, HParams]:
    """Split ``name[:key=value,key=value]`` into the name and raw parsed hyperparameters (one value
    each: ``|`` is no separator here; ``OptimizerSweep.parse`` reads sweeps).

    The name may itself hold colons (``mypkg.optim:Lion``, ``po:lion``): the hyperparameters are
    the text after the last ``:`` only when it contains ``=``. Values: ``true``/``false``, ints,
    floats, and tuples written with ``/`` (``betas=0.9/0.98``).
    """
    parsed = parse_inline(text, "hyperparameter", "adam:lr=0.01", colons_in_name=True)
    if not parsed.name:
        raise UserError(f"empty optimizer name in '{text.strip()}'; write NAME or NAME:key=value,...")
    return parsed.name, {key: parse_value(raw) for key, raw in parsed.items}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _short(v: float) -> str:
    """1e-05 -> 1e-5, 100.0 -> 1e2: how the README and messages write a range's ends."""
    return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")
