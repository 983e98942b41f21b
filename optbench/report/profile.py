"""Performance profiles over tasks (Dolan & Moré 2002), scored as in the AlgoPerf benchmark.

For each task p and optimizer s, ``t[p][s]`` is the time s needed to reach the task's target
(infinite when it never did, or did not run on p). The performance ratio is
``r[p][s] = t[p][s] / min over s' of t[p][s']``, and the profile of s is

    rho_s(tau) = (number of tasks with r[p][s] <= tau) / (number of tasks),

the fraction of tasks on which s reached the target within tau times the fastest optimizer. A
task no optimizer solved counts in the denominator and gives nobody credit.

The score of s is the area under rho_s over tau in [1, TAU_MAX], divided by TAU_MAX - 1, so it
is a fraction: 1 when s was the fastest on every task, 0 when it never got within TAU_MAX of the
fastest. As rho_s is a step function, the area is exact: each task with r <= TAU_MAX adds
(TAU_MAX - r) / (TAU_MAX - 1) / (number of tasks).

What "time" counts is a ``Measure`` (``MEASURES``, one per ``PROGRESS_MEASURES`` value): optimizer
steps by default, which the machine's load cannot change; wall seconds; or steps weighted by each
step's cost measured against the in-run reference step.

Pure functions of numbers: no pandas, no plotting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from optbench.errors import UserError, did_you_mean
from optbench.metrics import Metric, metric
from optbench.spec.vocabulary import PROGRESS_MEASURES

TAU_MAX = 4.0


@dataclass(frozen=True)
class Measure:
    """How progress to a target is counted: ``name`` (one of ``PROGRESS_MEASURES``), ``column`` (its
    median over seeds in ``fair.time_to_target_cells``), ``metric`` (the registry's unit and
    format), ``unit`` (the word after a number in the profile table), ``title`` (what captions and
    axes call it) and ``why`` (for captions)."""

    name: str
    column: str
    metric: Metric
    unit: str
    title: str
    why: str

    @property
    def tag(self) -> str:
        """What the measure is, in two or three words (``load-independent``, ``wall time``): ``why`` up to its colon."""
        return self.why.partition(":")[0]

    def text(self, value: float) -> str:
        """``1,200 steps``, ``0.5310 s``, ``1,260 adj. steps``; ``never`` for an infinite value,
        ``not measured`` for an unknown one."""
        if math.isnan(value):
            return "not measured"
        return f"{self.metric.format(value)} {self.unit}" if math.isfinite(value) else "never"


MEASURES: dict[str, Measure] = dict(zip(PROGRESS_MEASURES, (
    Measure(PROGRESS_MEASURES[0], "steps", metric("steps_to_target"), "steps", "steps to target",
            "load-independent: a busy machine slows the steps, not their number"),
    Measure(PROGRESS_MEASURES[1], "seconds", metric("time_to_target_s"), "s", "seconds to target",
            "wall time: it includes each step's cost and the machine's load"),
    Measure(PROGRESS_MEASURES[2], "adjusted_steps", metric("adjusted_steps_to_target"), "adj. steps",
            "cost-adjusted steps to target",
            "weighted by step cost: each step counts its cost measured against the in-run reference step, so a "
            "costlier optimizer step counts and the load hardly does"),
)))
DEFAULT_MEASURE = PROGRESS_MEASURES[0]


def measure(name: str | None) -> Measure:
    """The measure named ``name`` (None: the default, steps); UserError for an unknown one."""
    name = DEFAULT_MEASURE if name is None else name
    if name not in MEASURES:
        raise UserError(f"--profile-on {name}: unknown measure{did_you_mean(name, MEASURES)}; choose from: "
                        f"{', '.join(MEASURES)}")
    return MEASURES[name]

Times = Mapping[str, Mapping[str, float | None]]  # task -> optimizer -> seconds (None or inf: never)


def ratios(times: Times) -> dict[str, dict[str, float]]:
    """task -> optimizer -> performance ratio (>= 1; inf when it never reached the target or the
    task has no finite time at all). Every optimizer that appears anywhere is present on every task."""
    solvers = sorted({s for row in times.values() for s in row})
    out: dict[str, dict[str, float]] = {}
    for task, row in times.items():
        finite = [t for t in (_time(row.get(s)) for s in solvers) if math.isfinite(t)]
        best = min(finite) if finite else math.inf
        out[task] = {s: _ratio(_time(row.get(s)), best) for s in solvers}
    return out


def _time(value: float | None) -> float:
    return math.inf if value is None or not math.isfinite(value) or value < 0 else float(value)


def _ratio(t: float, best: float) -> float:
    if not math.isfinite(t) or not math.isfinite(best):
        return math.inf
    if best == 0:
        return 1.0 if t == 0 else math.inf  # reached before any training time passed: only ties match it
    return t / best


def profile(times: Times, taus: Iterable[float]) -> dict[str, list[float]]:
    """optimizer -> rho(tau) for each tau (fractions of tasks)."""
    r = ratios(times)
    taus = list(taus)
    n = len(r)
    solvers = sorted({s for row in r.values() for s in row})
    return {s: [sum(row[s] <= tau for row in r.values()) / n if n else 0.0 for tau in taus] for s in solvers}


def scores(times: Times, tau_max: float = TAU_MAX) -> dict[str, float]:
    """optimizer -> normalised area under its profile over [1, tau_max] (a fraction, higher is better)."""
    r = ratios(times)
    n = len(r)
    solvers = sorted({s for row in r.values() for s in row})
    return {s: sum((tau_max - row[s]) / (tau_max - 1) for row in r.values() if row[s] <= tau_max) / n if n else 0.0
            for s in solvers}


def tau_grid(tau_max: float = TAU_MAX, points: int = 301) -> list[float]:
    """Evenly spaced taus from 1 to ``tau_max``, both included (for drawing)."""
    return [1 + (tau_max - 1) * i / (points - 1) for i in range(points)]
