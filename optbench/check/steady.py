"""A baseline that load cannot inflate: ``baseline save`` measures runtime as ``check`` confirms it.

A stored run was measured once, perhaps during a burst of load; a baseline taken from it would
make every later run look faster, and hide a slowdown. So ``baseline save`` (and ``baseline
update``) re-measure each cell of this machine, every seed ``repeats`` more times, interleaved
(``optbench.check.confirm.repeat_runs``), and keep per seed the **median** of the stored run and its
repetitions: a burst that hits one of them does not move it.

The repetitions also give the baseline its own **noise**: per runtime metric, a robust spread of
the logs of the samples within each seed (``pooled_sd``: 1.4826 times the median absolute deviation
from each seed's median, pooled over seeds; ``Cell.noise``). From it
``detectable`` computes the smallest slowdown ``check`` could fail with this baseline: the fail
level times the half-width of the interval check would draw (Student's t, the baseline's seeds
against the current ones with ``confirm`` re-measurements each, the same spread on both sides).
Where that exceeds ``HIDDEN`` (1.5x) the noise would hide a 1.5x slower step: ``baseline save``
warns, naming the cell, its spread and the smallest slowdown check would catch, and says to save
on a quieter machine or with more repeats (beyond ``REFUSED``, 2x, the warning says "even a 2x").
It does not refuse: a one-epoch suite on a busy machine is noisy, and its baseline still guards
quality.

Load that lasts through all the repeats is no burst, and the median keeps it: on small models the
reference step, the unit of ``step_cost``, is mostly torch's fixed per-step machinery, which load
slows more than an optimizer's arithmetic, so a baseline measured on a busy machine reads low and a
later check on a quiet one fails (``results/baseline-ci.json`` saved at load 8 failed a quiet CI run
at 1.31-1.59x). ``busy_machine`` says so when the load average (1 min) after measuring exceeds the
cores, and ``baseline save`` prints it as a warning.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import t as student_t

from optbench.check.baseline import Cell, SeedRun
from optbench.check.confirm import repeat_runs
from optbench.check.runtime import CONFIDENCE
from optbench.check.tolerance import default_tolerance
from optbench.metrics import checked_metrics
from optbench.spec import RunSpec

HIDDEN = 1.5  # a baseline whose noise would hide a slowdown this large warns
REFUSED = 2.0  # ... and this large is "even a 2x slower step" in the warning
GATED = "step_cost"  # the runtime metric that fails (train_seconds only warns by default)


def busy_machine(load: float, cores: int) -> str | None:
    """A warning when the runtime was just measured on a busy machine (``load``, the 1-minute load
    average, above ``cores``), else None."""
    if load <= cores:
        return None
    return (f"the machine is busy (load average {load:.1f} on {cores} cores): load lowers the step cost of small "
            "models, so a check on a quieter machine could fail against this baseline; save it on a quiet machine")


def steady_cell(cell: Cell, repeats: dict[int, dict[str, list[float]]], rounds: int) -> Cell:
    """``cell`` with each seed's runtime samples steadied (``steady_sample``) by ``repeats[seed]``,
    and its ``noise`` per runtime metric (none where no seed has two samples)."""
    runs, logs_by_metric = [], {}
    for run in cell.runs:
        extra = repeats.get(run.seed, {})
        samples = dict(run.samples)
        for metric, values in extra.items():
            values = [v for v in values if v is not None and v > 0]
            stored = run.value(metric)
            if stored is None or stored <= 0 or not values:
                continue
            samples[metric] = steady_sample(stored, values, metric)
            logs_by_metric.setdefault(metric, []).append([math.log(v) for v in (stored, *values)])
        runs.append(SeedRun(seed=run.seed, status=run.status, **samples))
    noise = {m: round(s, 6) for m, groups in logs_by_metric.items() if (s := pooled_sd(groups)) is not None}
    return cell.model_copy(update={"runs": runs, "noise": noise, "repeats": rounds})


def steady_sample(stored: float, repeats: list[float], metric: str) -> float:
    """The stored sample where it agrees with the median of it and its repetitions within half the
    metric's warn level (so results the baseline was saved from compare as equal to it), else that
    median: a sample a load burst inflated is replaced."""
    median = statistics.median([stored, *repeats])
    half = default_tolerance(checked_metrics()[metric]).warn.half()
    if not half.exceeded(median, stored, False) and not half.exceeded(stored, median, False):
        return stored
    return float(f"{median:.6g}")


MAD_TO_SD = 1.4826  # the median absolute deviation of a normal sample, times this, estimates its sd


def pooled_sd(groups: list[list[float]]) -> float | None:
    """A robust within-group spread: ``MAD_TO_SD`` times the median absolute deviation of every value
    from its group's median, over the groups of two or more (None without one). A burst that hit one
    repetition moves neither a group's median nor this spread, as it does not move the baseline."""
    deviations = [abs(v - statistics.median(g)) for g in groups if len(g) > 1 for v in g]
    return MAD_TO_SD * statistics.median(deviations) if deviations else None


def detectable(noise: float, seeds: int, confirm: int, fail: float) -> float:
    """The smallest slowdown check fails with a baseline of ``seeds`` seeds whose runtime spread (sd of
    logs) is ``noise``, when the current side has the same seeds and ``confirm`` re-measurements
    each: the fail level times the interval's half-width."""
    n_b, n_c = seeds, seeds * (1 + confirm)
    half = student_t.ppf(0.5 + CONFIDENCE / 2, n_b + n_c - 2) * noise * math.sqrt(1 / n_b + 1 / n_c)
    return fail * math.exp(half)


@dataclass(frozen=True)
class Noisy:
    """A cell whose noise would hide a slowdown: its name, its spread and the smallest slowdown check could fail."""

    name: str
    spread: float
    smallest: float

    @property
    def spread_text(self) -> str:
        return f"{math.expm1(self.spread):.0%}"

    def __str__(self) -> str:
        return f"{self.name}: spread {self.spread_text}, smallest slowdown caught {self.smallest:.2f}x"


def noisy_cells(cells: list[Cell], confirm: int) -> list[Noisy]:
    """The re-measured cells whose ``GATED`` noise would hide a ``HIDDEN`` slowdown, noisiest first."""
    fail = default_tolerance(checked_metrics()[GATED]).fail.value
    out = []
    for cell in cells:
        if GATED in cell.noise:
            seeds = sum(run.value(GATED) is not None for run in cell.runs)
            smallest = detectable(cell.noise[GATED], max(seeds, 1), confirm, fail)
            if smallest > HIDDEN:
                out.append(Noisy(cell.name, cell.noise[GATED], smallest))
    return sorted(out, key=lambda n: -n.smallest)


def steady_cells(cells: list[Cell], rounds: int, data_dir: Path, confirm: int,
                 on_run: Callable[[RunSpec], None] | None = None) -> tuple[list[Cell], list[Noisy]]:
    """Re-measure ``cells`` (``rounds`` more times each seed; those of another machine are kept as
    stored) and steady them (``steady_cell``); the cells, and those whose noise would hide a 1.5x
    slowdown (to warn about: a tiny suite on a busy machine is still worth a baseline)."""
    if rounds <= 0:
        return cells, []
    repeats = repeat_runs(cells, rounds, data_dir, on_run)
    steadied = [steady_cell(c, repeats[c.cell_hash], rounds) if repeats.get(c.cell_hash) else c for c in cells]
    return steadied, noisy_cells(steadied, confirm)
