"""``optbench report``: stored runs -> cells aggregated over seeds -> tables, charts and export files.

``build_report`` loads every record under the results directories, filters, aggregates
(``optbench.report.aggregate``), makes the display tables (``optbench.report.tables``), draws the
charts (``optbench.report.drawing``) and writes the export file; it
returns a ``Report`` holding the frames, the display tables and the paths it wrote. It writes
only into the output directory, each file atomically, and never touches a results directory's
``runs/``. No printing here: the CLI renders ``Report.tables`` and the paths.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from optbench.report import drawing
from optbench.report import experiments as exps
from optbench.report.colours import colour_map
from optbench.report.naming import PROFILE_STEM, budget_text, chart_prefix, chart_stems, series_names, slug, stored_label
from optbench.report.tables import (GroupTable, Section, fair_tables, group_tables, sweeps_by_group,
                                    validation_metric)

from optbench.report import fair
from optbench.report import budget as tuning_budget
from optbench.report import budget_table
from optbench.report.crossing import late_crossings
from optbench.report import profile as perf_profile
from optbench.report.aggregate import (STATS, cell_stats, curve_stats, main_metric, reference_values,
                                      seed_values)
from optbench.metrics import summarised_metrics
from optbench.errors import UserError, did_you_mean
from optbench.files import probe_writable, write_atomic
from optbench.config.hparams import parse_optimizer_arg
from optbench.optim.hparams import match_hparams, resolve_hparams
from optbench.spec import format_hparams
from optbench.store.frame import CELL_COLUMNS, records_frame
from optbench.spec import STATUSES, RunSpec
from optbench.store.records import RUNS, Problem, load_records
from optbench.tasks.catalog import TASKS

REPORT_DIR = "report"


Format = Literal["table", "markdown", "csv", "json", "html"]
# The file each format writes into the output directory ("table" writes none).
EXPORT_FILE = {"markdown": "report.md", "csv": "report.csv", "json": "report.json", "html": "report.html"}
# The chart file formats (``charts.FORMATS`` holds how each is saved); png is the default.
CHART_FORMATS = ("png", "svg", "pdf")


@dataclass
class Filters:
    """Keep only runs whose field is one of the given values (None or empty: no filter).

    An optimizer value matches the optimizer name (``adam``: every adam cell), the exact label
    (``adam(lr=0.0003)``) or an inline spec resolved against the defaults (``adam:lr=3e-4``).
    ``experiments`` keeps the named experiments, ``latest`` the newest one only.
    """

    tasks: list[str] | None = None
    optimizers: list[str] | None = None
    datasets: list[str] | None = None
    devices: list[str] | None = None
    experiments: list[str] | None = None
    latest: bool = False


# What a display table shows, and the key of its rows in the JSON export (``--table`` names it).
TABLE_KINDS = {"cells": "cells", "validation": "cells", "default_vs_tuned": "default_vs_tuned",
               "time_to_target": "time_to_target", "profile": "profile", "trials_needed": "trials_needed"}
EXPORT_TABLES = ("cells", "default_vs_tuned", "sensitivity", "time_to_target", "profile", "trials_needed", "budget")


@dataclass
class Report:
    results_dirs: list[Path]
    runs: pd.DataFrame
    cells: pd.DataFrame
    curves: pd.DataFrame
    problems: list[Problem]
    tables: list[GroupTable]
    out_dir: Path | None = None
    # Every chart file of the report (each chart in each format); ``charts_drawn`` of the charts
    # were drawn now, the others were already in out_dir, drawn from the same data.
    charts: list[Path] = field(default_factory=list)
    charts_drawn: int = 0
    export: Path | None = None
    # The export's text (markdown, csv, json); the CLI prints it when no --out was given.
    text: str | None = None
    markdown: str | None = None
    # One per experiment, in the order they started; ``cells``, ``curves`` and ``time_to_target``
    # are theirs concatenated (with an ``experiment`` and a ``budget`` column).
    sections: list[Section] = field(default_factory=list)
    time_to_target: pd.DataFrame = field(default_factory=pd.DataFrame)
    experiments: list[exps.Summary] = field(default_factory=list)

    @property
    def several(self) -> bool:
        """Whether the report holds more than one experiment (titles and chart folders then name them)."""
        return len(self.sections) > 1


def build_report(results_dirs: list[Path], filters: Filters | None = None, out_dir: Path | None = None,
                 fmt: Format = "table", draw_charts: bool = True, target: str | list[str] | None = None,
                 export_file: bool | None = None, table: str | None = None,
                 chart_formats: Sequence[str] = ("png",), profile_on: str | None = None) -> Report:
    """Load, select experiments, filter and aggregate; then write the charts (in each of
    ``chart_formats``: png, svg, pdf) and the ``fmt`` export into ``out_dir`` (default
    ``<first results dir>/report``).

    Each experiment is a section of its own; within one, cells are compared only with cells of
    the same budget (epochs, batch size, training options): one table, one set of charts, one
    time-to-target table per task x dataset x budget x target.

    ``export_file``: write the markdown, csv or json export as ``report.<ext>`` (default: only when
    ``out_dir`` is given; otherwise its text is left in ``Report.text`` for stdout). html is
    always a file. ``table`` (csv, json): only that one of EXPORT_TABLES.

    ``target``: time-to-target goals, each ``[TASK[/DATASET]:]METRIC=VALUE`` (``loss=0.5``,
    ``regression/diamonds:rmse=1600``). One naming a task applies to that task's test cells; one
    naming none replaces the goal of the cells whose runs asked for a target, and applies to the
    tasks ``filters.tasks`` names. Without ``target`` each cell uses the target its runs carry;
    a cell whose runs asked for none has no time to target and stays out of the profile.

    ``profile_on``: what time to target is ranked by and the profile computed on, one of
    ``PROGRESS_MEASURES`` (``fair.MEASURES``; default steps, which the machine's load cannot change).

    Raises UserError when a chart format is unknown, when no run record is found, when the
    filters or experiment names match no run, when a target is malformed or applies to nothing,
    or when the output directory cannot be written (or is a results directory's ``runs/``).
    """
    filters = filters or Filters()
    rules = fair.parse_report_targets(target)  # a malformed target fails before anything is read
    measure = fair.measure(profile_on).name  # so does an unknown measure
    chart_formats = [f.lower() for f in chart_formats]
    for chart_format in chart_formats:
        if chart_format not in CHART_FORMATS:
            raise UserError(f"unknown chart format '{chart_format}'{did_you_mean(chart_format, CHART_FORMATS)}; "
                            f"choose from: {', '.join(CHART_FORMATS)}")
    chart_formats = list(dict.fromkeys(chart_formats))
    if table is not None and table not in EXPORT_TABLES:
        raise UserError(f"unknown table '{table}'{did_you_mean(table, EXPORT_TABLES)}; choose from: "
                        f"{', '.join(EXPORT_TABLES)}")
    runs, problems, summaries = load_runs(results_dirs, filters)
    runs = filter_runs(runs, filters)
    fair.check_target_rules(rules, runs, filters.tasks)
    sections = [_section(name, group, rules, filters.tasks, measure)
                for name, group in runs.groupby("experiment", sort=False)]
    goals = {g for s in sections if not s.time_to_target.empty for g in s.time_to_target["target"]}
    for rule in rules:
        if rule.target.text() not in goals:
            example = f"{runs['task'].iloc[0]}:{rule.target.text()}"
            raise UserError(f"--target {rule.text} applies to no test run: no run asked for a target"
                            + (" it fits" if rule.task is None else " there")
                            + f"; name the task it is for, e.g. --target {example}, or pick its runs with --task")
    report = Report(list(results_dirs), runs, _concat([s.cells for s in sections]),
                    _concat([s.curves for s in sections]), problems, [], sections=sections)
    report.time_to_target = _concat([s.time_to_target for s in sections])
    kept = {s.experiment for s in sections}
    report.experiments = [s for s in summaries if s.name in kept]
    for s in sections:
        report.tables += section_tables(report, s)

    if export_file is None:
        export_file = out_dir is not None or fmt == "html"
    if fmt == "html":
        export_file = True
    writes_files = draw_charts or (export_file and fmt != "table")
    if not writes_files:
        if fmt in EXPORT_FILE:
            report.text = _export_text(report, fmt, table=table)
        return report
    report.out_dir = Path(out_dir) if out_dir is not None else Path(results_dirs[0]) / REPORT_DIR
    _check_out_dir(report.out_dir, results_dirs)
    try:
        _write_outputs(report, fmt, chart_formats if draw_charts else [], export_file, table)
    except OSError as exc:  # a full disk or a permission change while writing: one line, no partial file
        raise UserError(f"cannot write the report to {report.out_dir} ({exc.strerror or exc}); "
                        "free space or pass --out DIR that you can write") from None
    return report


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _section(experiment: str, runs: pd.DataFrame, rules: list[fair.TargetRule], named_tasks: list[str] | None,
             measure: str | None = None) -> Section:
    """One experiment's cells (named within their comparable group), curves, sweeps, times to target and profile."""
    # A comparable group's cells together, budgets in order (fewest epochs first), best first within each.
    cells = cell_stats(runs).sort_values(["task", "dataset", "epochs", "batch_size", "training"], kind="stable",
                                         key=lambda c: c.str.replace(r"(^|,)split=\w+", "", regex=True)
                                         if c.name == "training" else c, ignore_index=True)
    cells["experiment"] = experiment
    cells["budget"] = [budget_text(e, b, t) for e, b, t in zip(cells["epochs"], cells["batch_size"], cells["training"])]
    cells["charts"] = chart_stems(cells)
    cells["name"] = series_names(cells)
    curves = curve_stats(runs).merge(cells[[*CELL_COLUMNS, "name", "experiment", "budget"]], on=CELL_COLUMNS, how="left")
    section = Section(experiment, runs, cells, curves, fair.choices(runs), measure=fair.measure(measure).name)
    targets = fair.cell_targets(runs, cells, rules, named_tasks)
    section.time_to_target = fair.time_to_target_cells(runs, cells, targets, section.measure)
    section.profile = fair.performance_profile(section.time_to_target, cells, section.choices, section.measure)
    section.budget = tuning_budget.curves_of(section.choices)
    return section


def section_tables(report: Report, section: Section) -> list[GroupTable]:
    """The section's display tables, a comparable group's tables together (cells, validation,
    default vs tuned, time to target), the profile last."""
    tables = group_tables(section.cells, section.runs) + fair_tables(section) + _budget_tables(section)
    _add_crossing_notes(tables, section)
    position: dict[tuple[str, str, str], int] = {}
    for t in tables:
        position.setdefault((t.task, t.dataset, t.charts), len(position))
    tables = sorted(tables, key=lambda t: position[(t.task, t.dataset, t.charts)])  # stable
    prefix = chart_folder(report, section.experiment)
    for t in tables:
        t.experiment = section.experiment
        t.charts = prefix + t.charts
        if report.several:
            t.title = f"experiment {section.experiment}: {t.title}"
    return tables


def _budget_tables(section: Section) -> list[GroupTable]:
    """Per comparable group with sweeps of more than one trial, the trials-needed table."""
    stems = dict(zip(zip(section.cells["task"], section.cells["dataset"], section.cells["budget"]),
                     section.cells["charts"]))
    tables = []
    for key, curves in budget_table.by_group(section.budget).items():
        if max(c.trials for c in curves) < 2:
            continue
        table = budget_table.trials_table(key[0], key[1], curves)
        table.charts = stems.get(key, chart_prefix(key[0], key[1]))
        if table.charts != chart_prefix(key[0], key[1]):
            table.title = table.title.replace(f"{key[0]} on {key[1]}", f"{key[0]} on {key[1]} ({key[2]})", 1)
        tables.append(table)
    return tables


# Late crossings noted per table at most (the rest are counted); mean curves within this fraction
# of each other count as level (the near-tie margin of ``fair``), so jitter is no swap.
MAX_CROSSING_NOTES = 4
CROSSING_TOLERANCE = fair.NEAR_TIE_MARGIN


def _add_crossing_notes(tables: list[GroupTable], section: Section) -> None:
    """Under each group's table of test cells, where two cells' mean curves (training loss; the main
    test metric) swap places after the half-way point of the epochs (``crossing.late_crossings``)."""
    curves = section.curves
    if curves.empty:
        return
    for t in tables:
        if t.kind != "cells":
            continue
        cells = section.cells[(section.cells["task"] == t.task) & (section.cells["dataset"] == t.dataset)
                              & (section.cells["charts"] == t.charts)]
        cells = cells[cells["split"] != "validation"] if "split" in cells else cells
        part = curves[curves["name"].isin(cells["name"]) & (curves["task"] == t.task)
                      & (curves["dataset"] == t.dataset) & curves["budget"].isin(cells["budget"])]
        if part.empty:
            continue
        main = main_metric(t.task, section.runs)
        epochs = float(cells["epochs"].max())
        notes = []
        for column, higher, what in (("train_loss_mean", False, "training loss"),
                                     ("test_metric_mean", main.higher_is_better, main.title)):
            points = {name: list(zip(g["epoch"].astype(float), g[column].astype(float)))
                      for name, g in part.groupby("name", sort=False)}
            notes += [c.text(what) for c in late_crossings(points, higher, epochs, CROSSING_TOLERANCE)]
        t.notes += notes[:MAX_CROSSING_NOTES]
        if len(notes) > MAX_CROSSING_NOTES:
            t.notes.append(f"and {len(notes) - MAX_CROSSING_NOTES} more late crossings (see the convergence chart)")


def _write_outputs(report: Report, fmt: Format, chart_formats: Sequence[str], export_file: bool,
                   table: str | None) -> None:
    if chart_formats:
        # Charts whose inputs and code are unchanged since they were drawn into out_dir are kept.
        jobs = chart_jobs(report)
        index = drawing.ChartIndex(report.out_dir)
        if index.problem:  # one warning line; the charts are drawn again
            report.problems.append(Problem(index.path, index.problem))
        digests = {chart.stem: chart.digest() for chart in jobs}
        stale = [chart for chart in jobs if not index.fresh(chart, digests[chart.stem], chart_formats)]
        try:
            for chart, rendered in drawing.draw(stale, chart_formats):
                for ext, data in rendered.items():
                    path = report.out_dir / f"{chart.stem}.{ext}"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_atomic(path, data)
                index.record(chart, digests[chart.stem], rendered)
        finally:  # interrupted too: the charts written so far need not be drawn again
            if stale:
                index.save()
        report.charts_drawn = len(stale)
        for chart in jobs:
            report.charts += [report.out_dir / f"{chart.stem}.{ext}" for ext in chart_formats]
    if fmt in EXPORT_FILE:
        report.text = _export_text(report, fmt, relative_links=export_file, table=table)
        if export_file:
            report.export = write_atomic(report.out_dir / EXPORT_FILE[fmt], report.text.encode())


def _export_text(report: Report, fmt: Format, relative_links: bool = False,
                 table: str | None = None) -> str:
    if fmt == "markdown":
        report.markdown = to_markdown(report, relative_links)
        return report.markdown
    return {"csv": lambda: to_csv(report, table), "json": lambda: to_json(report, table),
            "html": lambda: to_html(report)}[fmt]()


# --- input ---------------------------------------------------------------------------------------

def load_runs(results_dirs: list[Path], filters: Filters | None = None
              ) -> tuple[pd.DataFrame, list[Problem], list[exps.Summary]]:
    """Every valid record of the selected experiments as one row (``results.records_frame``, with
    ``experiment`` filled in), one record per spec within each experiment; the files skipped, with
    why; and a summary of every experiment the results hold."""
    filters = filters or Filters()
    groups, problems = _experiments(results_dirs)
    chosen = exps.select(groups, filters.experiments, filters.latest)
    kept = [r for recs in chosen.values() for r in recs]
    frame = records_frame(kept)
    frame["experiment"] = [exps.experiment_of(r) for r in kept]
    return frame, problems, exps.summaries(groups)


def experiment_summaries(results_dirs: list[Path]) -> tuple[list[exps.Summary], list[Problem]]:
    """What the results hold, per experiment (``optbench list-runs``), and the files skipped."""
    groups, problems = _experiments(results_dirs)
    return exps.summaries(groups), problems


def _experiments(results_dirs: list[Path]) -> tuple[dict[str, list[dict[str, Any]]], list[Problem]]:
    records, problems = load_records(results_dirs, every_run=True)
    valid = []
    for record in records:
        reason = _not_a_run(record)
        if reason:
            problems.append(Problem(Path(record.get("_path", "?")), reason))
        else:
            valid.append(record)
    if not valid:
        where = ", ".join(str(Path(d) / RUNS) for d in results_dirs)
        skipped = f" ({len(problems)} unreadable file(s) skipped)" if problems else ""
        raise UserError(f"no run records found in {where}{skipped}; create some with `optbench run`, "
                        "or pass --results-dir DIR where they are")
    return exps.by_experiment(valid), problems


def _not_a_run(record: dict[str, Any]) -> str | None:
    """Why a record that passed the store's checks still cannot be reported (a foreign document)."""
    try:
        RunSpec.from_dict(record["spec"])
    except (KeyError, TypeError, AttributeError):
        return "not a run record (spec lacks task, dataset, optimizer, hparams, epochs, batch_size, seed or device)"
    if record["status"] not in STATUSES:
        return f"not a run record (status {record['status']!r})"
    if not isinstance(record["metrics"], dict) or not isinstance(record["curve"], list) \
            or not isinstance(record["environment"], dict):
        return "not a run record (metrics, curve or environment has the wrong type)"
    return None


def filter_runs(runs: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The runs that pass every filter; UserError naming what the results hold when none does."""
    for column, wanted, flag in (("task", filters.tasks, "--task"), ("dataset", filters.datasets, "--dataset"),
                                 ("device", filters.devices, "--device")):
        if wanted:
            mask = runs[column].isin(wanted)
            if column == "dataset":  # a name matches every variant of it: diamonds matches diamonds:rows=20000
                mask |= runs[column].str.split(":", n=1).str[0].isin(wanted)
            runs = _keep(runs, mask, flag, wanted, runs[column])
    if filters.optimizers:
        mask = pd.Series(False, index=runs.index)
        for value in filters.optimizers:
            mask |= _optimizer_matches(runs, value)
        runs = _keep(runs, mask, "--opt", filters.optimizers, runs["label"])
    return runs


def _keep(runs: pd.DataFrame, mask: pd.Series, flag: str, wanted: list[str], held: pd.Series) -> pd.DataFrame:
    if not mask.any():
        choices = sorted(set(held.astype(str)))
        hint = did_you_mean(wanted[0], choices)
        raise UserError(f"no run matches {flag} {' '.join(wanted)}{hint}; the results hold: {', '.join(choices)}")
    return runs[mask]


def _optimizer_matches(runs: pd.DataFrame, value: str) -> pd.Series:
    exact = (runs["optimizer"] == value) | (runs["label"] == value)
    if ":" not in value or exact.any():  # plugins (mod:Class) and zoo names (po:lion) contain ':'
        return exact
    name, overrides = parse_optimizer_arg(value)
    try:
        # Built-ins match without importing torch; a plugin named here is the user's to load.
        wanted = match_hparams(name, overrides)
        hparams = format_hparams(wanted if wanted is not None else resolve_hparams(name, overrides))
    except UserError:  # an optimizer or key this optbench does not know: no run can match it
        return pd.Series(False, index=runs.index)
    return (runs["optimizer"] == name) & (runs["hparams"] == hparams)


# --- exports -------------------------------------------------------------------------------------

def export_frame(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells with the columns written to CSV and JSON: identity (experiment and budget first),
    counts, ``runtime_shared`` and ``group_size`` (runtimes that are a vectorized group's seconds per
    replica: their runtime std and interval are empty), then per metric ``_mean``, ``_std``,
    ``_ci95_low``, ``_ci95_high`` (units: seconds,
    steps/s, loss, target units, fraction)."""
    identity = ["experiment", "task", "dataset", "budget", "optimizer", "label", "hparams", "epochs", "batch_size",
                "device", "training", "split", "cell_hash", "metric_name", "runs", "n", "n_converged", "n_budget",
                "n_diverged", "n_failed", "seeds", "runtime_shared", "group_size"]
    stats_cols = [f"{m.name}_{s}" for m in summarised_metrics() for s in STATS]
    return cells[identity + stats_cols]


def export_tables(report: Report) -> dict[str, pd.DataFrame]:
    """Every table of the report as numbers, keyed as in EXPORT_TABLES (each row names its
    experiment, task, dataset and budget where it has them): ``cells`` (test and validation
    cells), ``default_vs_tuned`` (one row per sweep), ``sensitivity`` (per sweep, swept
    hyperparameter and value: the best validation metric), ``time_to_target`` (per test cell
    with a target: steps, epochs and seconds to target, cost-adjusted steps, step cost, the measure
    it is ranked by and whether it is the fastest) and ``profile`` (per experiment, optimizer and
    task: the measure, the cell that stood for it, its value of the measure and its steps, epochs,
    seconds and step cost, its ratio to the fastest, and its score), ``trials_needed`` (per
    sweep: its trials, expected best of 1 and of all, and the trials to come within
    ``budget.REACH`` of the best) and ``budget`` (every tuning-budget curve point: n, expected,
    low, high)."""
    cells = export_frame(report.cells).copy() if not report.cells.empty else pd.DataFrame()
    tuning, sensitivity, profile_rows, needed, curve_points = [], [], [], [], []
    for section in report.sections:
        for curves in budget_table.by_group(section.budget).values():
            needed += [{"experiment": section.experiment, **row} for row in budget_table.rows(curves)]
            curve_points += [{"experiment": section.experiment, **row} for row in budget_table.point_rows(curves)]
        for key, sweeps in sweeps_by_group(section).items():
            task, dataset, budget = key
            main = main_metric(task, section.runs)
            val = validation_metric(main)
            names = fair.sweep_names(sweeps)
            for name, row in zip(names, fair.tuning_rows(sweeps, section.cells)):
                c = row["choice"]
                entry = {"experiment": section.experiment, "task": task, "dataset": dataset, "budget": budget,
                         "optimizer": c.optimizer, "name": name, "swept": " ".join(c.swept()),
                         "candidates": len(c.candidates), "finished": c.finished,
                         "chosen": stored_label(c.best.spec, section.runs) if c.best else None,
                         "validation_metric": val.name, "validation_value": c.best.value if c.best else None,
                         "test_metric": main.name}
                tie = fair.near_tie(c, section.cells)
                entry.update({"near_tie": tie is not None, "runner_up": tie.runner_up if tie else None,
                              "runner_up_value": tie.runner_up_value if tie else None,
                              "lead": tie.gap if tie else None, "near_tie_rule": tie.rule if tie else None})
                for side in ("default", "tuned"):
                    cell = row[side]
                    entry[f"{side}_label"] = None if cell is None else cell["label"]
                    entry[f"{side}_n"] = None if cell is None else int(cell["n"])
                    for stat in ("mean", "std"):
                        entry[f"{side}_{stat}"] = None if cell is None else cell[f"{main.name}_{stat}"]
                tuning.append(entry)
                for hparam, points in fair.sensitivity(c).curves.items():
                    for point in points:
                        sensitivity.append({"experiment": section.experiment, "task": task, "dataset": dataset,
                                            "budget": budget, "optimizer": c.optimizer, "name": name,
                                            "hparam": hparam, "value": point.value, "validation_metric": val.name,
                                            "best_value": point.metric, "chosen": point.chosen})
        prof = section.profile
        if prof is not None:
            ratios = perf_profile.ratios(prof.times)
            for optimizer, score in sorted(prof.scores.items(), key=lambda kv: (-kv[1], kv[0])):
                for problem in prof.problems:
                    row = prof.rows.get(problem, {}).get(optimizer)
                    profile_rows.append({"experiment": section.experiment, "optimizer": optimizer, "score": score,
                                         "measure": prof.measure, "problem": problem,
                                         "label": prof.cells[problem].get(optimizer),
                                         "value": prof.times[problem].get(optimizer),
                                         **{k: None if row is None else row[k]
                                            for k in ("steps", "epochs", "seconds", "step_cost")},
                                         "ratio": ratios[problem][optimizer]})
    ttt = report.time_to_target.copy()
    return {"cells": cells, "default_vs_tuned": pd.DataFrame(tuning), "sensitivity": pd.DataFrame(sensitivity),
            "time_to_target": ttt, "profile": pd.DataFrame(profile_rows), "trials_needed": pd.DataFrame(needed),
            "budget": pd.DataFrame(curve_points)}


def _csv_frame(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    if name == "cells" and "seeds" in frame:
        frame["seeds"] = frame["seeds"].map(lambda s: " ".join(map(str, s)))
    return frame


def to_csv(report: Report, table: str | None = None) -> str:
    """Every table as a CSV section: a ``# table: NAME`` line, the header, the rows, a blank line.
    With ``table``: that table alone, as plain CSV (``pandas.read_csv`` reads it)."""
    tables = export_tables(report)
    if table is not None:
        return _csv_frame(table, tables[table]).to_csv(index=False, float_format="%.10g")
    parts = []
    for name in EXPORT_TABLES:
        frame = tables[name]
        if frame.empty:
            continue
        parts.append(f"# table: {name}\n" + _csv_frame(name, frame).to_csv(index=False, float_format="%.10g"))
    return "\n".join(parts)


def to_json(report: Report, table: str | None = None) -> str:
    """One document: ``experiments`` (what ``optbench list-runs`` shows of each experiment in the
    report) and ``tables``, one key per table (EXPORT_TABLES, a list of row objects each; empty
    when the report has no such table). With ``table``: that table's list of rows alone.
    Non-finite numbers are ``null`` (a time to target never reached, a std of one seed)."""
    tables = {name: [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
              for name, frame in export_tables(report).items()}
    if table is not None:
        return json.dumps(tables[table], indent=2) + "\n"
    doc = {"experiments": [s.to_dict() for s in report.experiments], "tables": tables}
    return json.dumps(doc, indent=2) + "\n"


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if hasattr(v, "item"):  # numpy scalar
        return _json_value(v.item())
    if v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _context_lines(report: Report) -> list[str]:
    runs = report.runs

    def values(column: str) -> set[str]:
        return set(runs[column].dropna().astype(str)) if column in runs else set()

    machines = sorted((values("env_cpu") | values("env_device_name")) - {"cpu"})
    torch_versions = sorted(values("env_torch"))
    lines = [f"{len(runs)} run(s) in {len(report.cells)} cell(s) from "
             f"{', '.join(str(d) for d in report.results_dirs)}"]
    names = [s.experiment for s in report.sections]
    lines.append(f"experiment: {names[0]}" if len(names) == 1 else
                 f"{len(names)} experiments, each reported on its own: {', '.join(names)}")
    if machines:
        lines.append(f"machines: {', '.join(machines)}; torch {', '.join(torch_versions)}")
    for p in report.problems:
        lines.append(f"skipped {p.path}: {p.reason}")
    return lines


def to_markdown(report: Report, relative_links: bool = False) -> str:
    """GitHub-flavoured markdown (fit for ``$GITHUB_STEP_SUMMARY``): a heading, context, one table per
    task x dataset with the best values in bold and diverged or failed runs marked, then the charts
    as images (PNG links relative to the output directory when ``relative_links``, as ``report.md``
    there needs; else the paths as written)."""
    out = ["## optbench report", ""]
    out += [f"- {_md_escape(line)}" for line in _context_lines(report)]
    shown_as = _embedded_format(report.charts)
    if report.charts:
        counts = [f"{sum(p.suffix == f'.{fmt}' for p in report.charts)} {fmt.upper()}" for fmt in CHART_FORMATS
                  if any(p.suffix == f".{fmt}" for p in report.charts)]
        shown_note = (f"; shown below as {shown_as[1:].upper()}" if shown_as else
                      "; none shown here: markdown viewers cannot show PDF, open the files")
        out.append(f"- charts: {', '.join(counts)} in `{report.out_dir}`{shown_note}")
    for t in report.tables:
        out += ["", f"### {_md_escape(t.title)}", "", f"_{_md_escape(t.caption)}_", ""]
        out.append("| " + " | ".join(t.columns) + " |")
        out.append("|" + "|".join("---:" if num else ":---" for num in t.numeric) + "|")
        for r, row in enumerate(t.rows):
            cells = []
            for c, text in enumerate(row):
                text = _md_escape(text)
                if (r, c) in t.best:
                    text = f"**{text}**"
                if c == len(row) - 1 and r in t.warnings:
                    text = f"⚠️ {text}"
                cells.append(text)
            out.append("| " + " | ".join(cells) + " |")
        if t.notes:
            out += ["", *(f"> {_md_escape(note)}" for note in t.notes)]
    pictures = [p for p in report.charts if p.suffix == shown_as] if shown_as else []
    if pictures:
        out += ["", "### Charts", ""]
        for picture in pictures:
            link = picture.relative_to(report.out_dir).as_posix() if relative_links else picture.as_posix()
            out.append(f"![{_md_escape(picture.stem)}]({link.replace(' ', '%20')})")
    return "\n".join(out) + "\n"


# The chart formats markdown viewers (GitHub) show inline, preferred first; PDF is linked from nowhere.
MARKDOWN_IMAGES = (".png", ".svg")


def _embedded_format(charts: list[Path]) -> str | None:
    """The one format the markdown embeds each chart in: PNG where drawn, else SVG, else none."""
    return next((ext for ext in MARKDOWN_IMAGES if any(p.suffix == ext for p in charts)), None)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def to_html(report: Report) -> str:
    """One self-contained interactive page (``interactive.to_html``): sortable tables and plotly
    charts with plotly.js inline; no external reference, no PNG (those are for papers: markdown)."""
    from optbench.report import interactive  # plotly and the chart modules load only for this format
    return interactive.to_html(report, _context_lines(report))


# --- charts --------------------------------------------------------------------------------------

def chart_folder(report: Report, experiment: str) -> str:
    """Where an experiment's charts go inside the output directory: a folder named for it when the
    report holds several experiments, else the directory itself."""
    if not report.several:
        return ""
    folders: dict[str, str] = {}
    for section in report.sections:  # a safe, distinct folder name per experiment: never '..', never shared
        folder = slug(section.experiment).lstrip(".") or "experiment"
        while folder in folders.values():
            folder += "_"
        folders[section.experiment] = folder
    return folders[experiment] + "/"


def chart_jobs(report: Report) -> list[drawing.Chart]:
    """Every chart of the report (``drawing.Chart``: its file stem, the function that draws it and
    that function's arguments; nothing is drawn here and matplotlib is not imported). Per
    experiment and comparable group (task x dataset x budget): a comparison chart (dots and
    intervals), a bar chart (``bars.bar_chart``: log error axis) and a convergence chart of the cells
    evaluated on test, an accuracy chart for classification tasks, a sensitivity chart where the
    group has sweeps (validation-split cells) and a time-to-target chart per target; per
    experiment, the performance profile. Stems start with the experiment's folder (several
    experiments) and the group's prefix (``chart_stems``)."""
    colours = colour_map(report.cells["optimizer"])  # one colour per optimizer name in every chart
    figures = []
    for section in report.sections:
        folder = chart_folder(report, section.experiment)
        sweeps_of = sweeps_by_group(section)
        for (task, dataset, budget), group in section.cells.groupby(["task", "dataset", "budget"], sort=False):
            main = main_metric(task, section.runs)
            classification = main.unit == "fraction"  # an accuracy: its curve gets a chart of its own
            prefix = folder + group["charts"].iloc[0]
            title = f"{task} on {dataset}" + (f", {budget}" if group["charts"].iloc[0] != chart_prefix(task, dataset) else "")
            tested = group[group["split"] != "validation"] if "split" in group else group
            if not tested.empty:
                runs = section.runs[(section.runs["task"] == task) & (section.runs["dataset"] == dataset)]
                seeds = seed_values(runs, ["train_seconds", main.name]).merge(
                    tested[[*CELL_COLUMNS, "name"]], on=CELL_COLUMNS, how="inner")
                figures.append(drawing.Chart(prefix + "comparison", "comparison_chart", (
                    tested, seeds, colours, title, main, reference_values(runs, main.name))))
                figures.append(drawing.Chart(prefix + "bars", "bar_chart", (
                    tested, colours, title, main, reference_values(runs, main.name))))
                curves = section.curves[(section.curves["task"] == task) & (section.curves["dataset"] == dataset)
                                        & (section.curves["budget"] == budget) & section.curves["name"].isin(tested["name"])]
                if not curves.empty:
                    cross_entropy = classification or (task in TASKS and TASKS[task].kind == "classification")  # charlm: bpc
                    loss = "training loss, cross-entropy" if cross_entropy else "training loss, MSE on standardised target"
                    figures.append(drawing.Chart(prefix + "convergence", "convergence_chart", (
                        tested, curves, colours, title, loss, reference_values(runs, "test_loss"))))
                    if classification:
                        figures.append(drawing.Chart(prefix + "accuracy", "accuracy_chart", (
                            tested, curves, colours, title, reference_values(runs, main.name))))
            choices = sweeps_of.get((task, dataset, budget), [])
            sweeps = [(fair.sensitivity(c), name) for c, name in zip(choices, fair.sweep_names(choices))]
            sweeps = [(s, name) for s, name in sweeps if s.curves]
            if sweeps:
                figures.append(drawing.Chart(prefix + "sensitivity", "sensitivity_chart", (
                    [s for s, _ in sweeps], [n for _, n in sweeps], colours, title, validation_metric(main))))
            trials = [c for c in section.budget if (c.task, c.dataset, c.group) == (task, dataset, budget)]
            if any(c.trials > 1 for c in trials):
                figures.append(drawing.Chart(prefix + "budget", "budget_chart", (
                    trials, colours, title, validation_metric(main))))
            ttt = section.time_to_target
            if ttt.empty:
                continue
            ttt = ttt[(ttt["task"] == task) & (ttt["dataset"] == dataset) & (ttt["budget"] == budget)]
            several = ttt["target"].nunique() > 1
            for goal, part in ttt.groupby("target", sort=False):
                stem = prefix + "time-to-target" + (f"-{slug(goal)}" if several else "")
                figures.append(drawing.Chart(stem, "time_to_target_chart", (
                    part.reset_index(drop=True), colours, title, goal, section.measure)))
        if section.profile is not None:
            taus = perf_profile.tau_grid()
            rho = perf_profile.profile(section.profile.times, taus)
            figures.append(drawing.Chart(folder + PROFILE_STEM, "profile_chart", (
                taus, rho, section.profile.scores, colours, len(section.profile.problems), section.profile.measure)))
    return figures


# --- files ---------------------------------------------------------------------------------------

def _check_out_dir(out_dir: Path, results_dirs: list[Path]) -> None:
    resolved = out_dir.resolve()
    if any(resolved.is_relative_to((Path(d) / RUNS).resolve()) for d in results_dirs):
        raise UserError(f"--out {out_dir} is where run records live (a runs/ folder or inside one); pass another directory, e.g. the default "
                        f"{Path(results_dirs[0]) / REPORT_DIR}")
    try:
        probe_writable(out_dir)
    except OSError as exc:
        raise UserError(f"cannot write the report to {out_dir} ({exc.strerror or exc}); "
                        "pass --out DIR that you can write") from None


