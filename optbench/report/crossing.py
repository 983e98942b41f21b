"""Ranking that holds to the end: where two optimizers' mean curves cross late in the budget.

A ranking read off the curves at some epoch holds to the end only if no two curves cross after
it. ``late_crossings`` finds, for each pair of mean curves (one value per epoch, the report's
per-epoch means over seeds), the crossings after the half-way point of the budget (epoch > half
the epochs): a strict change of which curve is ahead. Touching (equal at an epoch, or within a
``tolerance`` of each other, then the same one ahead again) is no crossing; a crossing is placed at the first epoch of the new order, so
"swap places at epoch 37 of 50" means the final order holds from epoch 37 on. Only the pair's
last crossing is reported, with how many there were after the half-way point. Pure: numbers in,
``Crossing`` objects out; the report turns them into notes (``Crossing.text``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class Crossing:
    """``leader`` is ahead at the end, ``other`` was ahead before ``epoch`` (of ``epochs``)."""

    leader: str
    other: str
    epoch: float
    epochs: float
    count: int = 1

    def text(self, what: str = "") -> str:
        """``adam and sgd swap places at epoch 37 of 50 (sgd ahead from then on): a ranking taken
        before then would flip``."""
        on = f" in {what}" if what else ""
        more = f"; their last of {self.count} crossings after the half-way point" if self.count > 1 else ""
        return (f"{self.other} and {self.leader} swap places{on} at epoch {self.epoch:g} of {self.epochs:g} "
                f"({self.leader} ahead from then on{more}): a ranking taken before then would flip")


def _signs(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]],
           higher_is_better: bool, tolerance: float) -> list[tuple[float, int]]:
    """(epoch, +1 where ``a`` is ahead, -1 where ``b`` is, 0 where they are equal within
    ``tolerance`` of the larger size) at the epochs both have a finite value, in epoch order."""
    bv = {e: v for e, v in b if isinstance(v, (int, float)) and math.isfinite(v)}
    out = []
    for e, v in sorted(a):
        if isinstance(v, (int, float)) and math.isfinite(v) and e in bv:
            d = (v - bv[e]) if higher_is_better else (bv[e] - v)
            if abs(d) <= tolerance * max(abs(v), abs(bv[e])):
                d = 0.0
            out.append((e, (d > 0) - (d < 0)))
    return out


def late_crossings(curves: Mapping[str, Sequence[tuple[float, float]]], higher_is_better: bool = False,
                   epochs: float | None = None, tolerance: float = 0.0) -> list[Crossing]:
    """Per pair of ``curves`` (name -> (epoch, mean value) points) that cross after ``epochs / 2``
    (default: the last epoch any curve has), their last crossing; ordered by epoch, latest first.
    ``higher_is_better``: whether a larger value is ahead (accuracy) or a smaller one (loss).
    ``tolerance``: values within this fraction of each other count as equal (touching), so two
    curves that end together and jitter about each other are not said to swap places."""
    if epochs is None:
        epochs = max((e for points in curves.values() for e, _ in points), default=0)
    half = epochs / 2
    out = []
    for a, b in combinations(curves, 2):
        last_sign, late = 0, []
        for epoch, sign in _signs(curves[a], curves[b], higher_is_better, tolerance):
            if sign == 0:
                continue  # equal: no one ahead, so no swap yet
            if last_sign and sign != last_sign and epoch > half:
                late.append((epoch, sign))
            last_sign = sign
        if late:
            epoch, sign = late[-1]
            leader, other = (a, b) if sign > 0 else (b, a)
            out.append(Crossing(leader, other, epoch, epochs, len(late)))
    return sorted(out, key=lambda c: (-c.epoch, c.leader, c.other))
