"""Search spaces as data: per hyperparameter, the values ``optbench tune`` may try.

A space maps hyperparameter names to dimensions, written the same way in a suite file and inline::

    suite file ([search.adam])          --space                   what it is
    lr = {log = [1e-4, 1e-2]}           lr=log(1e-4,1e-2)         log-uniform in [lo, hi] (lo > 0)
    momentum = {uniform = [0.8, 0.99]}  momentum=uniform(0.8,0.99) uniform in [lo, hi]
    nsteps = {int = [1, 5]}             nsteps=int(1,5)           a whole number in [lo, hi], ends included
    amsgrad = {choice = [true, false]}  amsgrad=choice(true,false) one of the values
    eps = 1e-6                          eps=1e-6                  fixed (a list or a/b: a tuple)

Inline: ``--space "adam:lr=log(1e-4,1e-2),weight_decay=log(5e-3,1)"`` (commas inside parentheses
belong to the dimension). A dimension turns a coordinate ``u`` in [0, 1) (a quasi-random or random
point's, see ``optbench.config.search``) into a value; a sampled number is rounded to 6 significant
digits, as a swept range's values are, so a label pasted back into ``--opt`` names the same run.

``one_minus_beta1`` is a derived key (AlgoPerf's name): 1 - beta1, set into ``betas[0]`` (Adam's
kin) or ``momentum`` (SGD's), so a log scale can crowd the values near beta1 = 1.

Nothing here knows an optimizer: ``optbench.config.search`` checks a space's keys and values
against it and samples the trials. Pure Python: no torch, no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optbench.errors import UserError
from optbench.spec.inline import parse_value

# Keys that are not constructor arguments but set one (AlgoPerf's parametrisation).
ONE_MINUS_BETA1 = "one_minus_beta1"
DERIVED_KEYS: tuple[str, ...] = (ONE_MINUS_BETA1,)

_TABLE_KINDS = ("log", "uniform", "int", "choice")
_EXAMPLE = 'adam:lr=log(1e-4,1e-2),weight_decay=log(5e-3,1)'


def round6(value: float) -> float:
    """``value`` to 6 significant digits (how every sampled or swept number is stored)."""
    return float(f"{value:.6g}")


@dataclass(frozen=True)
class _Interval:
    """A continuous range [lo, hi]: endless values, its two ends checked against the optimizer."""

    lo: float
    hi: float

    def size(self) -> int | None:
        return None

    def extremes(self) -> tuple[Any, ...]:
        return (self.lo, self.hi)


@dataclass(frozen=True)
class LogUniform(_Interval):
    def at(self, u: float) -> float:
        return round6(math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo))))

    def describe(self) -> str:
        return f"log({_num(self.lo)},{_num(self.hi)})"


@dataclass(frozen=True)
class Uniform(_Interval):
    def at(self, u: float) -> float:
        return round6(self.lo + u * (self.hi - self.lo))

    def describe(self) -> str:
        return f"uniform({_num(self.lo)},{_num(self.hi)})"


@dataclass(frozen=True)
class IntUniform:
    lo: int
    hi: int

    def at(self, u: float) -> int:
        return min(self.lo + int(u * (self.hi - self.lo + 1)), self.hi)

    def size(self) -> int | None:
        return self.hi - self.lo + 1

    def extremes(self) -> tuple[Any, ...]:
        return (self.lo, self.hi)

    def describe(self) -> str:
        return f"int({self.lo},{self.hi})"


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]

    def at(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def size(self) -> int | None:
        return len(self.values)

    def extremes(self) -> tuple[Any, ...]:
        return self.values

    def describe(self) -> str:
        return f"choice({','.join(_value(v) for v in self.values)})"


@dataclass(frozen=True)
class Fixed:
    value: Any

    def at(self, u: float) -> Any:
        return self.value

    def size(self) -> int | None:
        return 1

    def extremes(self) -> tuple[Any, ...]:
        return (self.value,)

    def describe(self) -> str:
        return _value(self.value)


Dimension = LogUniform | Uniform | IntUniform | Choice | Fixed
Space = Mapping[str, Dimension]


def sampled(space: Space) -> list[str]:
    """The keys whose value varies between trials (every dimension but ``Fixed``), in order."""
    return [key for key, dim in space.items() if not isinstance(dim, Fixed)]


def finite_size(space: Space) -> int | None:
    """How many distinct points the space holds when every dimension is finite (choices, whole
    numbers, fixed values), else None."""
    sizes = [dim.size() for dim in space.values()]
    return None if any(s is None for s in sizes) else math.prod(s for s in sizes if s is not None)


def describe(space: Space, sep: str = ", ") -> str:
    """``lr=log(0.0001,0.01), one_minus_beta1=log(0.004,0.1)``: the inline syntax, spaced."""
    return sep.join(f"{key}={dim.describe()}" for key, dim in space.items()) or "(nothing searched)"


def parse_dimension(where: str, value: Any) -> Dimension:
    """A suite file's value: ``{log = [lo, hi]}``, ``{uniform = [lo, hi]}``, ``{int = [lo, hi]}``,
    ``{choice = [a, b]}`` or a plain value (fixed; a list is a tuple). ``where`` names it in errors."""
    if not isinstance(value, dict):
        return Fixed(_tuple(value))
    kinds = [k for k in _TABLE_KINDS if k in value]
    if len(kinds) != 1 or len(value) != 1:
        raise UserError(f"{where}: a dimension is {{log = [lo, hi]}}, {{uniform = [lo, hi]}}, {{int = [lo, hi]}}, "
                        f"{{choice = [a, b, ...]}} or a plain value; got {_shown(value)}")
    kind, args = kinds[0], value[kinds[0]]
    if not isinstance(args, list):
        raise UserError(f"{where}: {kind} takes a list, e.g. {{{kind} = {'[1e-4, 1e-2]' if kind != 'choice' else '[0.9, 0.99]'}}}")
    return _dimension(where, kind, [_tuple(a) for a in args])


def parse_table(name: str, table: Any) -> dict[str, Dimension]:
    """A suite file's ``[search.NAME]`` table."""
    if not isinstance(table, dict):
        raise UserError(f"[search.{name}] must be a table of hyperparameter = dimension, e.g. lr = {{log = [1e-4, 1e-2]}}")
    return {str(key): parse_dimension(f"[search.{name}] {key}", value) for key, value in table.items()}


def parse_inline_space(text: str) -> tuple[str, dict[str, Dimension]]:
    """``--space NAME:key=dim,...`` -> (optimizer name, space). The name may hold colons (``po:lion``):
    it ends at the last ``:`` before the first ``=``."""
    text = text.strip()
    head = text.split("=", 1)[0]
    name, colon, _ = head.rpartition(":")
    if "=" not in text or not colon or not name.strip():
        raise UserError(f"bad --space '{text}'; write OPTIMIZER:key=dimension,..., e.g. {_EXAMPLE}")
    rest = text[len(name) + 1:]
    space: dict[str, Dimension] = {}
    for item in _split_items(text, rest):
        key, eq, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq or not key or not raw:
            raise UserError(f"bad item '{item}' in --space '{text}'; write key=dimension, e.g. {_EXAMPLE}")
        if key in space:
            raise UserError(f"'{key}' given twice in --space '{text}'")
        space[key] = _parse_inline_dimension(f"--space {name.strip()}: {key}", raw)
    return name.strip(), space


def _split_items(text: str, rest: str) -> list[str]:
    """``a=log(1,2),b=3`` -> [``a=log(1,2)``, ``b=3``]: commas inside parentheses stay."""
    items, depth, current = [], 0, ""
    for ch in rest:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            raise UserError(f"unbalanced ')' in --space '{text}'")
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    if depth:
        raise UserError(f"unclosed '(' in --space '{text}'")
    return [s.strip() for s in [*items, current] if s.strip()]


def _parse_inline_dimension(where: str, raw: str) -> Dimension:
    kind, paren, args = raw.partition("(")
    if not paren:
        return Fixed(parse_value(raw))
    kind = kind.strip()
    if kind not in _TABLE_KINDS or not args.endswith(")"):
        raise UserError(f"{where}: '{raw}' is not a dimension; write log(lo,hi), uniform(lo,hi), int(lo,hi), "
                        "choice(a,b,...) or a plain value")
    return _dimension(where, kind, [parse_value(a.strip()) for a in args[:-1].split(",") if a.strip()])


def _dimension(where: str, kind: str, args: list[Any]) -> Dimension:
    if kind == "choice":
        if not args:
            raise UserError(f"{where}: an empty choice has nothing to try; give at least one value")
        if len({repr(a) for a in args}) < len(args):
            raise UserError(f"{where}: a value is given twice in choice({','.join(map(_value, args))})")
        return Choice(tuple(args))
    if len(args) != 2 or not all(_is_number(a) for a in args):
        raise UserError(f"{where}: {kind} needs two numbers, lo and hi, e.g. {kind}(1e-4,1e-2)")
    lo, hi = args
    if lo >= hi:
        raise UserError(f"{where}: {kind}({_value(lo)},{_value(hi)}) is {'empty' if lo == hi else 'inverted'}; "
                        "give lo < hi (or a plain value to fix it)")
    if kind == "log":
        if lo <= 0:
            raise UserError(f"{where}: a log range needs lo > 0, got log({_value(lo)},{_value(hi)})")
        return LogUniform(float(lo), float(hi))
    if kind == "int":
        if not all(isinstance(a, int) for a in args):
            raise UserError(f"{where}: int needs whole numbers, got int({_value(lo)},{_value(hi)})")
        return IntUniform(lo, hi)
    return Uniform(float(lo), float(hi))


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num(v: float) -> str:
    return f"{v:g}"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, tuple):
        return "/".join(_value(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
