"""A report's display tables as text (``GroupTable``): the cells of each comparable group, its
sweep candidates, default vs tuned, time to target, and the performance profile. The renderers
(Rich in the CLI, markdown, HTML) only add markup; every number goes through ``format_number``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from optbench.metrics import SPLITS, Metric, held_out, metric, summarised_metrics
from optbench.execution.selection import Choice
from optbench.report import fair
from optbench.report import profile as perf_profile
from optbench.report.aggregate import main_metric, within_noise
from optbench.report.naming import PROFILE_DATASET, PROFILE_STEM, PROFILE_TASK, VARIANT_COLUMNS, budget_text, \
    chart_prefix, stored_label, varying

# Under a table with runtimes shared by a vectorized group (``aggregate.shared_groups``).
SHARED_NOTE = ("shared: trained in one vectorized group, so the runtime is the group's seconds divided among its "
               "replicas; it has no spread of its own (no ±) and is not ranked")

# Seconds to target are shown as the runtime column shows seconds.
SECONDS = metric("train_seconds")


@dataclass
class GroupTable:
    """One comparable group (experiment x task x dataset x budget) as display text: the renderers
    (rich, markdown, HTML) only add markup.

    ``best`` holds the (row, column) positions of each metric's best mean; ``warnings`` the rows
    with diverged or failed runs; ``notes`` lines of text shown under the table; ``kind`` which of ``build.TABLE_KINDS`` it is; ``charts`` the file-stem
    prefix of its group's charts.
    """

    task: str
    dataset: str
    title: str
    caption: str
    columns: list[str]
    numeric: list[bool]
    rows: list[list[str]]
    best: set[tuple[int, int]] = field(default_factory=set)
    warnings: set[int] = field(default_factory=set)
    experiment: str = ""
    kind: str = "cells"
    charts: str = ""
    # Plain-words notes shown under the table (shared runtimes, near-tie selections).
    notes: list[str] = field(default_factory=list)


@dataclass
class Section:
    """One experiment's part of a report: its runs, cells, sweeps, times to target and profile.
    Nothing is compared across sections."""

    experiment: str
    runs: pd.DataFrame
    cells: pd.DataFrame
    curves: pd.DataFrame
    choices: list[Choice] = field(default_factory=list)
    time_to_target: pd.DataFrame = field(default_factory=pd.DataFrame)
    profile: fair.Profile | None = None
    # Tuning-budget curves of the sweeps (``budget.BudgetCurve``, one per choice with candidates).
    budget: list[Any] = field(default_factory=list)
    # What time to target is ranked by and the profile computed on (``fair.MEASURES``: steps by default).
    measure: str = fair.DEFAULT_MEASURE


def group_tables(cells: pd.DataFrame, runs: pd.DataFrame) -> list[GroupTable]:
    """One display table per comparable group (task x dataset x budget), rows in the cells' order
    (best main metric first); cells evaluated on the validation split (sweep candidates) get a
    table of their own after it, sorted by the main validation metric. "Best" is bolded within a
    table only, so cells of different budgets are never ranked against each other."""
    tables = []
    for (task, _, _), group in cells.groupby(["task", "dataset", "budget"], sort=False):
        validation = group["split"] == "validation" if "split" in group else pd.Series(False, index=group.index)
        if (~validation).any():
            tables.append(_group_table(group[~validation].reset_index(drop=True), runs))
        if validation.any():
            main = validation_metric(main_metric(task, runs))
            part = group[validation].sort_values(f"{main.name}_mean", ascending=not main.higher_is_better,
                                                 na_position="last", kind="stable")
            tables.append(_group_table(part.reset_index(drop=True), runs, main))
    return tables


def validation_metric(main: Metric) -> Metric:
    """``test_rmse`` -> ``val_rmse``: a task's main metric on the validation split."""
    return held_out(main.bare, "val")


def _columns_for(main: Metric, group: pd.DataFrame) -> list[Metric]:
    """The metric columns of a table ranked by ``main``: every metric the report summarises that some
    cell of ``group`` has, ``main`` first, then what is shown beside it, the held-out metrics (test,
    then validation), the run's quality, its speed and its memory (the exact sizes: the optimizer's
    state); registry order within each."""
    def place(m: Metric) -> int:
        if m.name == main.name:
            return 0
        if m.beside == main.name:
            return 1
        if m.split is not None:
            return 2 + SPLITS.index(m.split)
        return 2 + len(SPLITS) + (2 if m.exact else m.runtime)
    shown = [m for m in summarised_metrics() if m.name == main.name or group[f"{m.name}_mean"].notna().any()]
    return sorted(shown, key=place)


def _group_table(group: pd.DataFrame, runs: pd.DataFrame, main: Metric | None = None) -> GroupTable:
    """The display table of one task x dataset's cells, sorted and bolded by ``main`` (default: the
    task's main test metric; the validation tables pass the validation one)."""
    task, dataset = group["task"].iloc[0], group["dataset"].iloc[0]
    validation = main is not None
    main = main or main_metric(task, runs)
    vary = varying(group)
    constant = [fmt.format(group[c].iloc[0]) for c, fmt in VARIANT_COLUMNS
                if c not in vary and c in group and group[c].iloc[0] != ""]
    constant = [c.replace(" ep", " epochs").replace("bs ", "batch ") for c in constant]
    # Cells that differ in code version are named by it in the first column, which a table split to
    # fit the terminal repeats: ``myopt.py:MyAdam(lr=0.01) · code optimizer+1 3f2a9c1b``.
    named_by_code = "code" in vary
    vary = [c for c in vary if c != "code"]
    metrics = _columns_for(main, group)
    sizes = [m for m in metrics if m.exact]
    variant_titles = {"epochs": "epochs", "batch_size": "batch", "device": "device", "training": "training"}
    columns = ["optimizer", *(variant_titles[c] for c in vary), "n", *(_header(m) for m in metrics), "status"]
    numeric = [False, *(c not in ("device", "training") for c in vary), True, *(True for _ in metrics), False]
    table = GroupTable(
        task=task, dataset=dataset,
        title=f"{task} on {dataset}" + (f" ({', '.join(constant)})" if constant else "")
              + (": sweep candidates on the validation split" if validation else ""),
        caption=(f"mean ± std over n seeds (ok runs only); sorted by {main.title}, "
                 f"{'higher' if main.higher_is_better else 'lower'} is better; best in bold, with every cell "
                 "within seed noise of it (their 95% intervals overlap)"),
        columns=columns, numeric=numeric, rows=[], kind="validation" if validation else "cells",
        notes=([SHARED_NOTE] if "runtime_shared" in group and group["runtime_shared"].any() else [])
              + [f"{m.title}: {(m.description or m.unit).partition(';')[0]} (no spread)" for m in sizes],
        charts=group["charts"].iloc[0] if "charts" in group else chart_prefix(task, dataset),
    )
    first_metric = 2 + len(vary)
    for r, cell in group.iterrows():
        name = f"{cell['label']} · code {cell['code']}" if named_by_code and cell["code"] else cell["label"]
        row = [name, *(str(cell[c]) for c in vary), str(cell["n"])]
        row += [format_stat(cell, m) for m in metrics]
        row.append(status_text(cell))
        table.rows.append(row)
        if cell["n_diverged"] or cell["n_failed"]:
            table.warnings.add(r)
    shared = group["runtime_shared"].astype(bool) if "runtime_shared" in group else pd.Series(False, index=group.index)
    for j, m in enumerate(metrics):
        means = group[f"{m.name}_mean"]
        if m.runtime:  # shares of a group's time are never ranked, against each other or eager runs
            means = means.where(~shared)
        if means.notna().sum() >= 2:
            best = means.max() if m.higher_is_better else means.min()
            leader = group.index[means == best][0]
            tied = [r for r in group.index if pd.notna(means[r]) and (means[r] == best or within_noise(group.loc[r], group.loc[leader], m.name))]
            table.best |= {(r, first_metric + j) for r in tied}
    return table


def _header(m: Metric) -> str:
    """A metric's column heading: its short title (``val RMSE``), with the unit where it is seconds (``runtime (s)``)."""
    return f"{m.short_title} ({m.unit})" if m.unit == "s" else m.short_title


def format_number(value: float, m: Metric, spread: bool = False) -> str:
    """Display text for one value of metric ``m``: the rule every table shares (``optbench.metrics.Metric.format``)."""
    return m.format(value, spread)


def format_stat(cell: pd.Series, m: Metric) -> str:
    """``mean ± std`` when the cell has more than one ok run, ``mean`` with one, ``-`` with none; an
    exact size (``Metric.exact``) without a spread: it has no seed noise."""
    mean, std = cell[f"{m.name}_mean"], cell[f"{m.name}_std"]
    text = format_number(mean, m)
    if m.exact:
        return text
    if m.runtime and cell.get("runtime_shared", False) and pd.notna(mean):
        return f"{text} shared"  # a vectorized group's time per replica: no spread of its own
    if cell["n"] > 1 and pd.notna(std) and pd.notna(mean):
        text += f" ± {format_number(std, m, spread=True)}"
    return text


def status_text(cell: pd.Series) -> str:
    """``ok``, or the counts of runs that did not simply finish: ``1 of 3 diverged, 2 of 3 converged``
    (converged: stopped early; budget: stopped by the time budget; both count as finished)."""
    keys = ("n_diverged", "n_failed", "n_converged", "n_budget")
    parts = [f"{cell[k]} of {cell['runs']} {k.removeprefix('n_')}" for k in keys if cell.get(k)]
    return ", ".join(parts) if parts else "ok"


def fair_tables(section: Section) -> list[GroupTable]:
    """Per comparable group with sweeps a default-vs-tuned table, per comparable group and target
    a time-to-target table, and across the experiment's tasks the performance profile's scores."""
    tables = []
    stems = dict(zip(zip(section.cells["task"], section.cells["dataset"], section.cells["budget"]),
                     section.cells["charts"]))
    def place(table: GroupTable, key: tuple[str, str, str]) -> GroupTable:
        table.charts = stems.get(key, chart_prefix(key[0], key[1]))
        if table.charts != chart_prefix(key[0], key[1]):  # the task x dataset has several budgets: say which
            table.title = table.title.replace(f"{key[0]} on {key[1]}", f"{key[0]} on {key[1]} ({key[2]})", 1)
        return table

    for key, sweeps in sweeps_by_group(section).items():
        tables.append(place(_tuning_table(key[0], key[1], sweeps, section), key))
    ttt = section.time_to_target
    if not ttt.empty:
        for (task, dataset, budget, _), part in ttt.groupby(["task", "dataset", "budget", "target"], sort=False):
            tables.append(place(_time_to_target_table(task, dataset, part.reset_index(drop=True), section.measure),
                                (task, dataset, budget)))
    if section.profile is not None:
        tables.append(_profile_table(section.profile))
    return tables


def _tuning_table(task: str, dataset: str, sweeps: list[Choice], section: Section) -> GroupTable:
    main = main_metric(task, section.runs)
    val = validation_metric(main)
    columns = ["optimizer", "swept", "candidates", "chosen", val.title, "default: n", f"default: {main.title}",
               "tuned: n", f"tuned: {main.title}"]
    table = GroupTable(
        task=task, dataset=dataset, title=f"{task} on {dataset}: default vs tuned",
        caption=(f"each candidate ran on the validation split ({_selection_seeds(sweeps, section.cells)}); "
                 f"the best by {val.title} was re-run on test, as were the defaults (mean ± std over seeds); "
                 "'-': not run on test"),
        columns=columns, numeric=[False, False, True, False, True, True, True, True, True], rows=[],
        kind="default_vs_tuned")
    names = fair.sweep_names(sweeps)
    for r, row in enumerate(fair.tuning_rows(sweeps, section.cells)):
        c = row["choice"]
        chosen = stored_label(c.best.spec, section.runs) if c.best else "none finished"
        value = format_number(c.best.value, val) if c.best else "-"
        cells = []
        for side in (row["default"], row["tuned"]):
            cells += ["-", "-"] if side is None else [str(side["n"]), format_stat(side, main)]
        table.rows.append([names[r], ", ".join(c.swept()) or "-", f"{c.finished} of {len(c.candidates)}",
                           chosen, value, *cells])
        if c.best is None:
            table.warnings.add(r)
        tie = fair.near_tie(c, section.cells)
        if tie is not None:
            table.notes.append(tie.text(names[r]))
            table.rows[r][3] += " (near tie)"
    return table


def _selection_seeds(sweeps: list[Choice], cells: pd.DataFrame) -> str:
    """``1 seed`` or ``3 seeds`` (``1-3 seeds`` where candidates differ): how many seeds each sweep
    candidate ran with, from its validation cell."""
    hashes = {c.spec.cell_hash() for choice in sweeps for c in choice.candidates}
    counts = cells.loc[cells["cell_hash"].isin(hashes), "runs"].astype(int) if "runs" in cells else pd.Series([], dtype=int)
    lo, hi = (int(counts.min()), int(counts.max())) if len(counts) else (1, 1)
    return f"{lo} seed" if hi == 1 else (f"{hi} seeds" if lo == hi else f"{lo}-{hi} seeds")


# The time-to-target columns beside the measure a table ranks by: progress in steps and epochs (the
# load cannot change them), wall seconds, and the optimizer's step against the in-run reference step.
STEP_COST = metric("step_cost")


def _time_to_target_table(task: str, dataset: str, ttt: pd.DataFrame, by: str | None = None) -> GroupTable:
    """One task x dataset x budget x target: per cell its seeds that reached the target, its median
    steps, epochs and seconds to it (and cost-adjusted steps when ranked by them) and its step cost;
    the fewest by measure ``by`` in bold, with every cell within seed noise of it (``fair.fastest_of``)."""
    m = fair.measure(by)
    adjusted = m.column == "adjusted_steps"
    # Short headings (the title says "time to target"): the table fits 80 columns with every number whole.
    # Seconds last, where a row that never reached the target gets its warning mark beside "never".
    columns = ["optimizer", STEP_COST.title, "runs", "reached", "steps", *(["adj. steps"] if adjusted else []),
               "epochs", "seconds"]
    position = {"steps": 4, "adjusted_steps": 5, "seconds": len(columns) - 1}[m.column]
    table = GroupTable(
        task=task, dataset=dataset, title=f"{task} on {dataset}: time to target {ttt['target'].iloc[0]}",
        caption=(f"median over seeds of the {'cost-adjusted steps, ' if adjusted else ''}steps, epochs and training "
                 "seconds until the test metric first reached the target (a seed that never did counts as "
                 f"infinitely slow); ranked by {m.title} ({m.why}); bold: the fewest, and every cell whose seeds' "
                 "range overlaps its seeds' range (one seed: no noise measured); step cost: the optimizer step in "
                 "reference steps, load-independent too: weigh a costlier step against fewer steps"),
        columns=columns, numeric=[False, *(True for _ in columns[1:])], rows=[], kind="time_to_target")
    for r, (_, row) in enumerate(ttt.iterrows()):
        reached = math.isfinite(row["seconds"])
        cells = [row["name"], format_number(row["step_cost"], STEP_COST), str(row["runs"]), str(row["reached"]),
                 _progress(row["steps"])]
        if adjusted:
            cells.append(_progress(row["adjusted_steps"], m.metric))
        cells += [_progress(row["epochs"]), _progress(row["seconds"], SECONDS)]
        table.rows.append(cells)
        if not reached:
            table.warnings.add(r)
    fastest = ttt["fastest"] if "fastest" in ttt else pd.Series(False, index=ttt.index)
    table.best = {(r, position) for r in range(len(ttt)) if bool(fastest.iloc[r])}
    if ttt[m.column].isna().any():
        table.notes.append(f"not measured: the runs have no {m.title} (records without steps, or no "
                           "reference-step clock in a vectorized group); rank by another measure with --profile-on")
    return table


def _progress(value: float, m: Metric | None = None) -> str:
    """A median to target: ``never`` when infinite, ``-`` when not measured, else as metric ``m`` shows
    it, or a count (steps, epochs): whole, or with the half a median of two seeds can have (``37.5``)."""
    if math.isnan(value):
        return "-"
    if not math.isfinite(value):
        return "never"
    if m is not None:
        return format_number(value, m)
    return f"{value:,.0f}" if value == round(value) else f"{value:,.1f}"


def _profile_table(prof: fair.Profile) -> GroupTable:
    r = perf_profile.ratios(prof.times)
    m = prof.by
    table = GroupTable(
        task=PROFILE_TASK, dataset=PROFILE_DATASET,
        title=f"performance profile over {len(prof.problems)} task(s): {m.title}",
        caption=(f"score: area under the profile over τ in [1, {perf_profile.TAU_MAX:g}] divided by "
                 f"{perf_profile.TAU_MAX - 1:g} (1: fewest {m.title} on every task); per task the cell that "
                 f"stood for the optimizer, its median {m.title} and its ratio to the fewest; measure: "
                 f"{m.title} ({m.why}; optbench report --profile-on {'|'.join(fair.MEASURES)})"),
        columns=["optimizer", "score", *prof.problems], numeric=[False, True, *(False for _ in prof.problems)],
        rows=[], kind="profile", charts=PROFILE_STEM.removesuffix("performance-profile"))
    order = sorted(prof.scores, key=lambda s: (-prof.scores[s], s))
    for i, name in enumerate(order):
        row = [name, f"{prof.scores[name]:.3f}"]
        for problem in prof.problems:
            label = prof.cells[problem].get(name)
            ratio = r[problem][name]
            if label is None:
                row.append("not run")
            elif math.isfinite(ratio):
                row.append(f"{label}: {m.text(prof.times[problem][name])} ({ratio:.2f}x)")
            else:
                row.append(f"{label}: {m.text(prof.times[problem][name])}")
        table.rows.append(row)
        if i == 0 and len(order) >= 2:
            table.best.add((i, 1))
    if any(math.isnan(t) for times in prof.times.values() for t in times.values() if t is not None):
        table.notes.append(f"not measured: a cell without {m.title} (a record without steps, or a vectorized run "
                           "without a step clock) counts as not reaching the target here; --profile-on seconds "
                           "ranks it by wall time")
    return table


def sweeps_by_group(section: Section) -> dict[tuple[str, str, str], list[Choice]]:
    """The section's sweeps per comparable group (task, dataset, budget)."""
    groups: dict[tuple[str, str, str], list[Choice]] = {}
    for c in section.choices:
        spec = c.candidates[0].spec
        groups.setdefault((c.task, c.dataset, budget_text(spec.epochs, spec.batch_size, spec.training.text())),
                          []).append(c)
    return groups
