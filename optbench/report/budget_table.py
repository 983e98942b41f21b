"""The report's "trials needed" table (per comparable group with sweeps) from its tuning-budget
curves (``budget``), and its export rows: per sweep the expected best after one trial and after
all of them, and the fewest trials whose expected best comes within ``budget.REACH`` of the best
sweep's expected best at its full budget (95% of the best accuracy; within 5% above the best
RMSE or bpc), or "never within N"."""

from __future__ import annotations

import math
from typing import Any

from optbench.metrics import metric as registry_metric
from optbench.report.budget import REACH, BudgetCurve, reach_threshold, reference, trials_needed
from optbench.report.tables import GroupTable, format_number

KIND = "trials_needed"


def by_group(curves: list[BudgetCurve]) -> dict[tuple[str, str, str], list[BudgetCurve]]:
    out: dict[tuple[str, str, str], list[BudgetCurve]] = {}
    for c in curves:
        out.setdefault((c.task, c.dataset, c.group), []).append(c)
    return out


def reach_text(higher_is_better: bool) -> str:
    """``reach 95% of the best`` (accuracy) or ``come within 5% of the best`` (an error)."""
    pct = f"{(1 - REACH) * 100:g}%"
    return f"reach {REACH * 100:g}% of the best" if higher_is_better else f"come within {pct} of the best"


def trials_table(task: str, dataset: str, curves: list[BudgetCurve]) -> GroupTable:
    """One group's table: a row per sweep, in the order of its curves."""
    m = registry_metric(curves[0].metric)
    ref = reference(curves)
    goal = reach_text(m.higher_is_better)
    columns = ["optimizer", "trials", "best of 1", "best of all", "trials needed"]
    sizes = sorted({c.trials for c in curves})
    caption = (f"expected best {m.title} after n trials drawn at random from the trials run (exact, without "
               f"replacement; a diverged or failed trial counts as the worst score); trials needed: the fewest "
               f"n whose expected best would {goal}" + (f" ({format_number(ref, m)}" if ref is not None else "")
               + f", the best expected after all trials{')' if ref is not None else ''}"
               + ("; ∞: that many trials could all have diverged or failed" if any(math.isinf(c.expected[0]) for c in curves) else ""))
    table = GroupTable(task=task, dataset=dataset, title=f"{task} on {dataset}: trials needed to {goal}",
                       caption=caption, columns=columns, numeric=[False, True, True, True, True], rows=[],
                       kind=KIND)
    if len(sizes) > 1:
        table.notes.append(f"the sweeps ran different numbers of trials ({', '.join(map(str, sizes))}): "
                           "compare the curves at equal n, or tune with the same trial budget")
    for r, row in enumerate(rows(curves)):
        table.rows.append([row["name"], str(row["trials"]), _value(row["best_of_1"], m), _value(row["best_of_all"], m),
                           str(row["trials_needed"]) if row["trials_needed"] else f"never within {row['trials']}"])
        if row["trials_needed"] is None:
            table.warnings.add(r)
    best = [r for r, row in enumerate(table.rows) if ref is not None and curves[r].expected[-1] == ref]
    table.best = {(r, 3) for r in best}
    return table


def _value(value: float, m: Any) -> str:
    """A table value; an infinitely bad expected best (every trial drawn may have failed) as ∞."""
    return "∞" if value in (math.inf, -math.inf) else format_number(value, m)


def rows(curves: list[BudgetCurve]) -> list[dict[str, Any]]:
    """A group's numbers per sweep (the export's ``trials_needed`` rows, less the experiment)."""
    ref = reference(curves)
    out = []
    for c in curves:
        target = None if ref is None else reach_threshold(ref, c.higher_is_better)
        out.append({"task": c.task, "dataset": c.dataset, "budget": c.group, "optimizer": c.optimizer,
                    "name": c.name or c.optimizer, "validation_metric": c.metric, "trials": c.trials,
                    "failed": c.failed, "best_of_1": c.expected[0], "best_of_all": c.expected[-1],
                    "reference": ref, "goal": target, "reach": REACH,
                    "trials_needed": None if target is None else trials_needed(c, target)})
    return out


def point_rows(curves: list[BudgetCurve]) -> list[dict[str, Any]]:
    """Every curve point (the export's ``budget`` rows, less the experiment)."""
    return [{"task": c.task, "dataset": c.dataset, "budget": c.group, "optimizer": c.optimizer,
             "name": c.name or c.optimizer, "validation_metric": c.metric, "n": n, "expected": e,
             "low": lo, "high": hi}
            for c in curves for n, (e, lo, hi) in enumerate(zip(c.expected, c.low, c.high), start=1)]
