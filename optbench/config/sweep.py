"""Hyperparameter sweeps: one typed optimizer entry (``optbench.config.hparams.OptimizerSweep``) with
several values per key -> the override dicts of its settings, every combination in order::

    adam:lr=1e-4|1e-3|1e-2,betas=0.9/0.999|0.8/0.99   ->  6 settings, lr varying slowest

    {name = "adam", lr = [1e-4, 1e-3]}                   # two values
    {name = "adam", lr = {log = [1e-5, 1e-1], num = 9}}  # 9 log-spaced values, ends included
    {name = "adam", lr = {linear = [0.1, 0.9], num = 5}} # 5 evenly spaced values
    {name = "adam", betas = [[0.9, 0.999], [0.8, 0.99]]} # alternatives of a tuple hyperparameter

A flat list for a key whose default is a tuple (``betas = [0.9, 0.98]``) stays one value: the one
place the optimizer is asked (its reference value, without building it). Range values are rounded
to 6 significant digits, so a label pasted back into ``--opt`` names the same run. The settings go
to ``optbench.optim.hparams`` as typed values, which coerces and checks each against the optimizer.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from optbench.config.hparams import Alternatives, Listed, OptimizerSweep, Range
from optbench.errors import UserError
from optbench.optim.registry import lookup_optimizer


def expand(entry: OptimizerSweep) -> list[dict[str, Any]]:
    """The override dicts of ``entry``'s settings: the product of its keys' alternatives, the first
    key varying slowest (one dict, maybe empty, when nothing is swept)."""
    axes = [[(key, v) for v in _alternatives(entry, key, alts, reference)]
            for (key, alts), reference in zip(entry.values.items(), _references(entry))]
    return [dict(combo) for combo in itertools.product(*axes)]


def count(entry: OptimizerSweep) -> int:
    """How many settings ``expand(entry)`` gives (at most: a range's values that round to the same
    number count once there), without computing a single value."""
    return math.prod(_count(alts, reference) for alts, reference in zip(entry.values.values(), _references(entry)))


def value_range(where: str, spec: dict[str, Any]) -> list[float]:
    """The values of ``{log = [a, b], num = n}`` (log-spaced, both ends included) or ``{linear = [a, b], num = n}``."""
    return list(Range.parse(where, spec).values())


def _references(entry: OptimizerSweep) -> list[Any]:
    """Per key of ``entry``, the optimizer's reference value where a flat list needs it (else None)."""
    if not any(isinstance(alts, Listed) for alts in entry.values.values()):
        return [None] * len(entry.values)
    opt = lookup_optimizer(entry.name)  # None for an unknown name: resolve_hparams says what is wrong
    return [opt.reference_value(key) if opt is not None and isinstance(alts, Listed) and key in opt.accepted_keys()
            else None for key, alts in entry.values.items()]


def _alternatives(entry: OptimizerSweep, key: str, alts: Alternatives, reference: Any) -> tuple[Any, ...]:
    if isinstance(alts, Range):
        return alts.values()
    if isinstance(alts, Listed):
        if isinstance(reference, tuple):
            return (alts.items,)  # one tuple value, written as a list
        if not alts.items:
            raise UserError(f"hyperparameter '{key}' of '{entry.name}': an empty list sweeps nothing; give at least one value")
        return alts.items
    return alts


def _count(alts: Alternatives, reference: Any) -> int:
    if isinstance(alts, Range):
        return alts.num
    if isinstance(alts, Listed):
        return 1 if isinstance(reference, tuple) else max(len(alts.items), 1)
    return len(alts)
