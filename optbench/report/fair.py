"""The fair-comparison views of stored runs, for the report: what tuning chose and what it bought
(default vs tuned), how sensitive each optimizer is to its swept hyperparameters, time to target
per cell, and the performance profile across tasks.

Everything is recomputed from the records: the winner of each sweep with ``selection.choose``,
times, steps and cost-adjusted steps to target from the curves with ``targets``. Pure pandas: no
plotting, no printing.

Progress to a target is counted in one of ``PROGRESS_MEASURES`` (``MEASURES``): optimizer steps by
default, which the machine's load cannot change (a run slowed by a busy neighbour takes the same
steps); wall seconds, which include the load and every step's cost; or steps weighted by each
step's cost measured against the in-run reference step (``step_cost``), which counts an optimizer
whose step costs more without counting the load.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optbench.report import profile
from optbench.report.profile import DEFAULT_MEASURE, MEASURES, Measure, measure
from optbench.report.aggregate import within_noise
from optbench.errors import UserError, did_you_mean
from optbench.metrics import held_out_variants
from optbench.execution.selection import Choice, choose
from optbench.spec import RunSpec, format_hparams
from optbench.spec.targets import Target, parse_target, steps_to_target, time_to_target
from optbench.tasks import TASKS


# --- selection -----------------------------------------------------------------------------------

def choices(runs: pd.DataFrame) -> list[Choice]:
    """Every sweep in the runs (validation-split runs grouped by everything but hyperparameters and
    seed) with its winner, as ``optbench run --select`` chose it."""
    val = runs[runs["split"] == "validation"].sort_values("started_at", kind="stable", na_position="first")
    return choose((RunSpec.from_dict(r["spec"]), r["status"], _metrics(r), r.get("metric_name"))
                  for _, r in val.iterrows())


def _metrics(row: pd.Series) -> dict[str, Any]:
    return {m.name: row.get(m.name) for m in held_out_variants()
            if m.split == "val" and m.name in row and pd.notna(row.get(m.name))}


def sweep_names(sweeps: list[Choice]) -> list[str]:
    """A display name per sweep of one task x dataset: the optimizer, plus the epochs, batch size,
    device or training options in which sweeps of the same optimizer differ (``adam · 5 ep``)."""
    def variant(c: Choice) -> dict[str, str]:
        spec = c.candidates[0].spec
        training = ",".join(f"{k}={v}" for k, v in spec.training.without_split().items())
        return {"epochs": f"{spec.epochs} ep", "batch_size": f"bs {spec.batch_size}", "device": spec.device,
                "impl": spec.impl, "training": training}

    variants = [variant(c) for c in sweeps]
    names = []
    for c, v in zip(sweeps, variants):
        same = [w for d, w in zip(sweeps, variants) if d.optimizer == c.optimizer]
        parts = [v[k] for k in v if len({w[k] for w in same}) > 1 and v[k]]
        names.append(" · ".join([c.optimizer, *parts]))
    return names


@dataclass
class SweepPoint:
    """One value of one swept hyperparameter: the best validation metric over the candidates with
    that value (None when none of them finished) and whether it is the chosen value."""

    value: float
    metric: float | None
    chosen: bool


@dataclass
class Sensitivity:
    """One sweep's curves: hyperparameter -> points sorted by value (numeric hyperparameters only)."""

    choice: Choice
    curves: dict[str, list[SweepPoint]] = field(default_factory=dict)


def sensitivity(choice: Choice) -> Sensitivity:
    """Per swept numeric hyperparameter, the best candidate's validation metric at each of its values."""
    out = Sensitivity(choice)
    better = max if choice.higher_is_better else min
    for key in choice.swept():
        values = [c.spec.hparams.get(key) for c in choice.candidates]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            continue  # tuples and strings have no axis
        points = []
        for value in sorted(set(values)):
            metrics = [c.value for c in choice.candidates if c.spec.hparams.get(key) == value and c.value is not None]
            chosen = choice.best is not None and choice.best.spec.hparams.get(key) == value
            points.append(SweepPoint(float(value), better(metrics) if metrics else None, chosen))
        out.curves[key] = points
    return out


def tuning_rows(choices: list[Choice], cells: pd.DataFrame) -> list[dict[str, Any]]:
    """Default vs tuned, one row per sweep: the chosen label and validation metric, and the test
    cells of the defaults and of the winner (None where they were not run), found by cell hash."""
    positions = dict(zip(cells["cell_hash"], range(len(cells))))

    def by_hash(h: str) -> pd.Series | None:
        return cells.iloc[positions[h]] if h in positions else None

    rows = []
    for c in choices:
        try:
            default = by_hash(c.default_spec(load=False).cell_hash())
        except UserError:  # an optimizer whose code is not loaded here: no defaults to compare with
            default = None
        tuned_spec = c.tuned_spec()
        rows.append({"choice": c, "default": default,
                     "tuned": by_hash(tuned_spec.cell_hash()) if tuned_spec else None})
    return rows


# --- near ties ----------------------------------------------------------------------------------

# With one selection seed per candidate there is no measured noise: a winner ahead of the runner-up
# by at most this fraction of the winner's value is flagged as a near tie.
NEAR_TIE_MARGIN = 0.01


@dataclass(frozen=True)
class NearTie:
    """A selection whose top two candidates are within their seed noise: the winner's and the
    runner-up's swept values, validation means, how far apart (a fraction of the winner's value),
    the fewest seeds either had, and which rule flagged it (``intervals``: their 95% confidence
    intervals overlap, two or more seeds each; ``margin``: within ``NEAR_TIE_MARGIN``, one seed)."""

    winner: str
    runner_up: str
    winner_value: float
    runner_up_value: float
    gap: float
    seeds: int
    rule: str

    def text(self, name: str) -> str:
        """``adam: lr=0.001 chosen over lr=0.003 by 0.2% on 1 seed, within 1%: a coin toss``."""
        if self.rule == "intervals":
            why = f"on {self.seeds} seeds each, their 95% intervals overlap"
        else:
            why = f"on 1 seed, within the {NEAR_TIE_MARGIN:.0%} margin used when there is no seed noise to compare"
        return (f"near tie: {name}: {self.winner} chosen over {self.runner_up} by {self.gap * 100:.2g}% {why}; "
                "a coin toss, not a clear winner")


def near_tie(choice: Choice, cells: pd.DataFrame) -> NearTie | None:
    """Whether ``choice``'s winner is within seed noise of its runner-up, read from the validation
    cells (``aggregate.cell_stats`` over every selection seed of each candidate: one or many).

    The runner-up is the best other candidate with a value (none of its seeds diverged or failed).
    With two or more seeds each, the tie is
    that their 95% confidence intervals of the mean overlap; with one seed either side (no noise
    measured), that they differ by at most ``NEAR_TIE_MARGIN`` of the winner's value. None when
    nothing was chosen, there is no runner-up, or the lead is clear."""
    if choice.best is None or cells.empty:
        return None
    val = cells[cells["split"] == "validation"] if "split" in cells else cells
    by_hash = {h: row for h, row in zip(val["cell_hash"], (r for _, r in val.iterrows()))}
    candidates = {}
    for c in choice.candidates:  # only candidates that could have been chosen (every seed finished)
        row = by_hash.get(c.spec.cell_hash()) if c.value is not None else None
        if row is not None and row["n"] > 0 and math.isfinite(row[f"{choice.metric}_mean"]):
            candidates.setdefault(c.spec.cell_hash(), (c.spec, row))
    winner_hash = choice.best.spec.cell_hash()
    if winner_hash not in candidates:
        return None
    spec, win = candidates[winner_hash]
    others = [v for h, v in candidates.items() if h != winner_hash]
    if not others:
        return None
    sign = -1 if choice.higher_is_better else 1
    other_spec, other = min(others, key=lambda v: sign * v[1][f"{choice.metric}_mean"])
    m = choice.metric
    a, b = float(win[f"{m}_mean"]), float(other[f"{m}_mean"])
    gap = abs(a - b) / abs(a) if a else math.inf
    seeds = int(min(win["n"], other["n"]))
    if seeds >= 2:
        tie, rule = within_noise(win, other, m), "intervals"
    else:
        tie, rule = gap <= NEAR_TIE_MARGIN, "margin"
    if not tie:
        return None
    keys = choice.swept() or sorted(spec.hparams)
    def values(s: RunSpec) -> str:
        return format_hparams({k: s.hparams[k] for k in keys if k in s.hparams}) or "the defaults"
    return NearTie(values(spec), values(other_spec), a, b, gap, seeds, rule)


# --- time to target ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TargetRule:
    """A time-to-target goal given to the report: for ``task`` (and ``dataset``) when set, else for
    the cells whose runs asked for a target and the tasks ``--task`` names."""

    target: Target
    task: str | None = None
    dataset: str | None = None
    text: str = ""


def parse_report_targets(given: str | list[str] | None) -> list[TargetRule]:
    """``[TASK[/DATASET]:]METRIC=VALUE`` each (``loss=0.1``, ``regression:rmse=1500``,
    ``regression/diamonds:rmse=1600``). A goal on a metric the named task does not measure is a
    UserError, as are unknown tasks and malformed goals."""
    texts = [given] if isinstance(given, str) else list(given or [])
    rules = []
    for text in texts:
        scope, sep, goal = text.partition(":")
        if not sep or "=" in scope:
            rules.append(TargetRule(parse_target(text), text=text))
            continue
        task, _, dataset = scope.strip().partition("/")
        if task in TASKS:
            target = parse_target(goal, TASKS[task].metric_name, task)
        else:
            target = parse_target(goal)
        rules.append(TargetRule(target, task, dataset or None, text))
    return rules


def check_target_rules(rules: list[TargetRule], runs: pd.DataFrame, named_tasks: list[str] | None) -> None:
    """UserError for a rule naming a task or dataset the (filtered) runs do not hold, or an
    unscoped goal on a metric a ``--task`` it applies to does not measure."""
    held = sorted(set(zip(runs["task"], runs["dataset"])))
    for rule in rules:
        if rule.task is None:
            for task in named_tasks or []:
                if task in TASKS:
                    parse_target(rule.target.text(), TASKS[task].metric_name, task)
            continue
        if not any(t == rule.task and (rule.dataset is None or d == rule.dataset) for t, d in held):
            choices = [f"{t}/{d}" for t, d in held]
            asked = rule.task + (f"/{rule.dataset}" if rule.dataset else "")
            raise UserError(f"--target {rule.text}: no run of {asked}{did_you_mean(asked, choices)}; "
                            f"the results hold: {', '.join(choices)}")


def cell_targets(runs: pd.DataFrame, cells: pd.DataFrame, rules: list[TargetRule],
                 named_tasks: list[str] | None = None) -> dict[str, Target]:
    """cell hash -> the goal its time to target is measured against, for test-split cells only.

    A rule naming the cell's task (and dataset) wins; else an unscoped rule, when the cell's runs
    asked for a target or ``--task`` named its task, and its metric fits the task; else the target
    the cell's newest run carries. A cell whose runs never asked for one and that no rule names
    has none: it stays out of time to target and the profile.
    """
    out: dict[str, Target] = {}
    asked_by: dict[str, Target] = {}  # cell hash -> the target its newest run that asked for one carries
    with_target = runs[runs["target"].notna()].sort_values("started_at", kind="stable") if len(runs) else runs
    for cell_hash, stored in zip(with_target.get("cell_hash", []), with_target.get("target", [])):
        target = Target.from_dict(stored)
        if target is not None:
            asked_by[cell_hash] = target
    for _, cell in cells[cells["split"] == "test"].iterrows():
        asked = asked_by.get(cell["cell_hash"])
        scoped = [r for r in rules if r.task == cell["task"] and r.dataset in (None, cell["dataset"])]
        scoped.sort(key=lambda r: r.dataset is None)  # task/dataset before task
        if scoped:
            out[cell["cell_hash"]] = scoped[0].target
            continue
        unscoped = [r for r in rules if r.task is None and _fits(r.target, cell)]
        if unscoped and (asked is not None or cell["task"] in (named_tasks or [])):
            out[cell["cell_hash"]] = unscoped[-1].target
        elif asked is not None:
            out[cell["cell_hash"]] = asked
    return out


def _fits(target: Target, cell: pd.Series) -> bool:
    return target.metric == "loss" or target.metric == cell.get("metric_name")


def _number(row: pd.Series, name: str) -> float:
    value = row.get(name)
    try:
        return float(value) if value is not None and pd.notna(value) else math.nan
    except (TypeError, ValueError):
        return math.nan


def _rest_of_step(run: pd.Series) -> float:
    """A run's step outside the optimizer (forward, backward, clipping) in reference steps: the rest
    of training over the reference steps' time, ((train_seconds - optimizer_seconds) /
    control_seconds, both summed over the same steps); NaN where the run has no step clock (a
    vectorized group). Where training seconds are wall time and the reference steps' are not, load
    on the machine makes it larger, which only brings the cost-adjusted steps nearer the plain steps
    (``MEASURES``), never a costlier step cheaper than a lighter one."""
    train, opt, control = _number(run, "train_seconds"), _number(run, "optimizer_seconds"), _number(run, "control_seconds")
    return (train - opt) / control if control > 0 and train >= opt else math.nan


def _median(values: list[float]) -> float:
    """Median over seeds, a seed that never reached the target infinite; NaN (not measured) when a
    seed that reached it has no value of the measure."""
    if not values:
        return math.inf
    return math.nan if any(math.isnan(v) for v in values) else statistics.median(values)


def time_to_target_cells(runs: pd.DataFrame, cells: pd.DataFrame, targets: dict[str, Target],
                         by: str | None = None) -> pd.DataFrame:
    """Per test-split cell with a target (``targets``: cell hash -> goal): ``target`` (text),
    ``runs``, ``reached`` (runs that got there), and the medians over all the cell's runs, a run
    that never reached it, diverged or failed counting as infinitely slow (inf unless at least half
    got there): ``steps`` (optimizer steps to target, ``targets.steps_to_target``), ``epochs``,
    ``seconds`` (training seconds) and ``adjusted_steps`` (steps weighted by the step's measured
    cost: ``MEASURES``); ``step_cost`` (the cell's median ``step_cost``: its optimizer step in
    reference steps), ``measure`` (``by``, default steps: what the rows are sorted and ranked by),
    ``low`` and ``high`` (that measure's fewest and most over seeds) and ``fastest`` (the fewest
    of its task x dataset x budget x target, or within seed noise of it: ``fastest_of``). NaN: not
    measured (a record without steps; no reference-step clock). Columns: the cells' identity
    columns (with ``experiment`` and ``budget`` where the cells have them) and those."""
    by_measure = measure(by)
    rows = []
    test = cells[cells["split"] == "test"]
    groups = {h: (t, d, b, dev) for h, t, d, b, dev in zip(test["cell_hash"], test["task"], test["dataset"],
                                                          test.get("budget", pd.Series("", index=test.index)),
                                                          test["device"])}
    timed = {groups[h] for h in targets if h in groups}  # the groups with a target: only their runs are read
    groups = {h: g for h, g in groups.items() if g in timed}
    per_cell: dict[str, list[pd.Series]] = {}
    rest: dict[tuple[str, str, str, str], list[float]] = {}
    for _, run in runs[runs["cell_hash"].isin(list(groups))].iterrows() if len(runs) and groups else ():
        per_cell.setdefault(run["cell_hash"], []).append(run)
        value = _rest_of_step(run)
        if math.isfinite(value):
            rest.setdefault(groups[run["cell_hash"]], []).append(value)
    for _, cell in test.iterrows():
        target = targets.get(cell["cell_hash"])
        if target is None:
            continue
        group = per_cell.get(cell["cell_hash"], [])
        overhead = rest.get(groups[cell["cell_hash"]])
        overhead_value = statistics.median(overhead) if overhead else math.nan
        seconds, epochs, steps, adjusted, costs = [], [], [], [], []
        for run in group:
            curve = run.get("curve")
            curve = curve if isinstance(curve, list) else []
            s, e = time_to_target(curve, target)
            cost = _number(run, "step_cost")
            if math.isfinite(cost):
                costs.append(cost)
            if s is None:
                seconds.append(math.inf), epochs.append(math.inf), steps.append(math.inf), adjusted.append(math.inf)
                continue
            n = steps_to_target(curve, target, _number(run, "steps"))
            seconds.append(float(s))
            epochs.append(float(e) if e is not None else math.nan)
            steps.append(math.nan if n is None else n)
            adjusted.append(steps[-1] * (overhead_value + cost) / (overhead_value + 1))  # NaN when unmeasured
        values = {"seconds": seconds, "epochs": epochs, "steps": steps, "adjusted_steps": adjusted}[by_measure.column]
        rows.append({"experiment": cell.get("experiment"), "task": cell["task"], "dataset": cell["dataset"],
                     "budget": cell.get("budget", ""), "optimizer": cell["optimizer"],
                     "label": cell["label"], "name": cell.get("name", cell["label"]), "cell_hash": cell["cell_hash"],
                     "target": target.text(), "runs": len(group), "reached": sum(math.isfinite(v) for v in seconds),
                     "steps": _median(steps), "epochs": _median(epochs), "seconds": _median(seconds),
                     "adjusted_steps": _median(adjusted),
                     "step_cost": statistics.median(costs) if costs else math.nan,
                     "measure": by_measure.name,
                     "low": min(values) if values else math.inf, "high": max(values) if values else math.inf})
    columns = ["experiment", "task", "dataset", "budget", "optimizer", "label", "name", "cell_hash", "target", "runs",
               "reached", "steps", "epochs", "seconds", "adjusted_steps", "step_cost", "measure", "low", "high"]
    frame = pd.DataFrame(rows, columns=columns)
    frame = frame.sort_values([by_measure.column, "seconds"], kind="stable", ignore_index=True, na_position="last")
    frame["fastest"] = False
    for _, part in frame.groupby(["task", "dataset", "budget", "target"], sort=False):
        frame.loc[fastest_of(part, by_measure.column), "fastest"] = True
    return frame


def fastest_of(rows: pd.DataFrame, column: str) -> list[Any]:
    """The index labels of ``rows`` (one comparable group and target) that are fastest by ``column``:
    the fewest median, and every row whose seeds' range (``low`` to ``high``) overlaps the range of
    that row's seeds, so no winner is crowned within seed noise. Nothing when fewer than two rows
    reached the target (nothing to rank); with one seed a row has no range, only equal values tie."""
    finite = rows[np.isfinite(rows[column].to_numpy(dtype=float))]
    if len(finite) < 2:
        return []
    leader = finite.loc[finite[column].idxmin()]
    return [i for i, row in finite.iterrows()
            if row[column] == leader[column] or (row["low"] <= leader["high"] and leader["low"] <= row["high"])]


@dataclass
class Profile:
    """The performance profile across ``problems`` (task x dataset): ``cells`` names the cell that
    stood for each optimizer there, ``times`` its median to target in ``measure`` (a
    ``PROGRESS_MEASURES`` name: steps by default), ``scores`` the normalised area under each
    optimizer's profile (``optbench.report.profile``), ``rows`` the cell's time-to-target row
    (its steps, epochs, seconds and step cost, whatever the measure)."""

    problems: list[str]
    times: dict[str, dict[str, float]]
    cells: dict[str, dict[str, str]]
    scores: dict[str, float]
    measure: str = DEFAULT_MEASURE
    rows: dict[str, dict[str, pd.Series]] = field(default_factory=dict)

    @property
    def by(self) -> Measure:
        return MEASURES[self.measure]


def performance_profile(ttt: pd.DataFrame, cells: pd.DataFrame, choices: list[Choice],
                        by: str | None = None) -> Profile | None:
    """The profile over every problem with a target, one entry per optimizer name. A problem is
    one task x dataset x budget x target (``ttt`` holds only cells whose runs asked for a target,
    or that a report target names), so times are only compared at one goal on one budget; it is
    named ``task/dataset``, plus the budget and target where the task x dataset has several.

    Where an optimizer has several test cells on a problem, the one that stands for it is the
    tuned cell of its sweep if there is one, else its default hyperparameters, else the cell with
    the best main test metric (the first in the report's order). Its time is its median to target
    in measure ``by`` (default: steps); a cell without a value of it (NaN: not measured) counts as
    never reaching the target.
    """
    if ttt.empty:
        return None
    by_measure = measure(by)
    tuned = {c.tuned_spec().cell_hash() for c in choices if c.tuned_spec() is not None}
    order = {h: i for i, h in enumerate(cells["cell_hash"])}
    times: dict[str, dict[str, float]] = {}
    chosen: dict[str, dict[str, str]] = {}
    rows: dict[str, dict[str, pd.Series]] = {}
    if "budget" not in ttt:
        ttt = ttt.assign(budget="")
    for (task, dataset), per_task in ttt.groupby(["task", "dataset"], sort=True):
        keys = per_task.groupby(["budget", "target"], sort=True)
        for (budget, goal), group in keys:
            problem = f"{task}/{dataset}"
            if keys.ngroups > 1:
                problem += f" ({', '.join(p for p in (budget, goal) if p)})"
            times[problem], chosen[problem], rows[problem] = {}, {}, {}
            for optimizer, opt_cells in group.groupby("optimizer", sort=True):
                row = _representative(opt_cells, tuned, order)
                times[problem][optimizer] = float(row[by_measure.column])
                chosen[problem][optimizer] = row["label"]
                rows[problem][optimizer] = row
    return Profile(sorted(times), times, chosen, profile.scores(times), by_measure.name, rows)


def _representative(opt_cells: pd.DataFrame, tuned: set[str], order: dict[str, int]) -> pd.Series:
    for _, row in opt_cells.iterrows():
        if row["cell_hash"] in tuned:
            return row
    defaults = opt_cells[opt_cells["label"] == opt_cells["optimizer"]]
    pool = defaults if not defaults.empty else opt_cells
    return pool.loc[min(pool.index, key=lambda i: order.get(pool.at[i, "cell_hash"], math.inf))]
