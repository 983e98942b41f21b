"""Runs grouped into cells and summarised over seeds: n, mean, standard deviation, 95% confidence interval.

A cell is one task x dataset x optimizer (with its hyperparameters) x epochs x batch size x device
(``results.CELL_COLUMNS``, training options included); its runs differ only by seed. Only runs that
finished training (status ``ok``, ``converged`` or ``budget``: ``spec.SUCCESS``) enter the
statistics; diverged and failed runs are counted per cell (``n_diverged``, ``n_failed``) and never
averaged in, so a cell whose every run diverged has ``n == 0`` and no means.

Pure pandas and scipy: no printing, no plotting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # the Student t quantile (scipy.stats takes seconds to import)

from optbench.metrics import Metric, held_out, references_of, summarised_metrics
from optbench.store.frame import CELL_COLUMNS
from optbench.spec import SUCCESS
from optbench.tasks.catalog import TASKS, main_metric_name

# Per metric, the columns of the cells frame: f"{metric}_{stat}".
STATS = ("mean", "std", "ci95_low", "ci95_high")

# Curve fields averaged over seeds, per epoch.
CURVE_FIELDS = ("train_loss", "test_loss", "test_metric")


def within_noise(a: pd.Series, b: pd.Series, metric: str) -> bool:
    """Whether two cells' means of ``metric`` are within their seed noise of each other: both have
    two or more ok runs and their 95% confidence intervals of the mean overlap (the error bars the
    charts draw). The one rule the report uses to call a difference a tie (bold in the tables,
    near ties of a selection); one run on either side has no measured noise (False)."""
    low, high = f"{metric}_ci95_low", f"{metric}_ci95_high"
    if min(a["n"], b["n"]) < 2 or not all(math.isfinite(float(x)) for x in (a[low], a[high], b[low], b[high])):
        return False
    return bool(a[low] <= b[high] and b[low] <= a[high])


def main_metric(task: str, runs: pd.DataFrame | None = None) -> Metric:
    """The metric a task's cells are ranked by: its main held-out metric on the test split (test RMSE,
    lower is better; accuracy, higher), from the registry.

    Known tasks answer from the task catalog; a task this optbench does not know answers from the
    ``metric_name`` its records carry.
    """
    recorded = [] if runs is None or task in TASKS else runs.loc[runs["task"] == task, "metric_name"].tolist()
    return held_out(main_metric_name(task, recorded))


def summarise(values: Iterable[float]) -> dict[str, float]:
    """n, mean, sample standard deviation (ddof 1) and the Student-t 95% confidence interval of the mean.

    Missing and non-finite values are dropped first. With one value the spread and the interval
    are NaN (unknown, not zero); with none, everything but ``n`` is NaN.
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "ci95_low": math.nan, "ci95_high": math.nan}
    std = float(x.std(ddof=1))
    half = float(stdtrit(n - 1, 0.975)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def with_metric_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with every aggregated metric column present (NaN where no run reports it)."""
    missing = [m.name for m in summarised_metrics() if m.name not in runs.columns]
    return runs.assign(**{c: math.nan for c in missing}) if missing else runs


def cell_stats(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: the cell columns, ``optimizer``, ``cell_hash``, ``metric_name``, ``split``, the
    counts ``runs``, ``n`` (ok runs: ok, converged or budget), ``n_converged``, ``n_budget``,
    ``n_diverged``, ``n_failed``, ``seeds`` (sorted, all statuses), ``runtime_shared`` and
    ``group_size`` (``shared_groups``: runtimes that are a vectorized group's seconds per replica,
    whose runtime metrics then have a mean and no std or interval), and for
    each metric the registry marks ``summarised`` the columns ``<metric>_mean``, ``_std``, ``_ci95_low``, ``_ci95_high``
    (ok runs only; units as in the records: seconds, steps per second, loss, target units, fraction).

    Rows are sorted per task and dataset by the task's main metric, best first; cells with no
    ok run come last.
    """
    runs = with_metric_columns(runs)
    if runs.empty:
        return pd.DataFrame()
    # One pass per statistic over all cells at once (a loop over cells is seconds at 5,000 runs).
    cell = runs.groupby(CELL_COLUMNS, sort=False, dropna=False).ngroup()  # numbered in order of appearance
    first = runs[~cell.duplicated()]
    status = runs["status"]
    ok = status.isin(SUCCESS)
    counts = pd.DataFrame({"runs": 1, "n": ok, "n_converged": status == "converged", "n_budget": status == "budget",
                           "n_diverged": status == "diverged", "n_failed": status == "failed"}).groupby(cell).sum()
    metric_names = {task: main_metric(task, runs).bare for task in first["task"].unique()}
    out: dict[str, Any] = {c: first[c].tolist() for c in CELL_COLUMNS}
    out.update({
        "optimizer": first["optimizer"].tolist(),
        "cell_hash": first["cell_hash"].tolist(),
        "metric_name": [metric_names[t] for t in first["task"]],
        "split": first["split"].tolist() if "split" in runs else "test",
        **{c: counts[c].astype(int).tolist() for c in counts.columns},
        "seeds": runs.groupby(cell)["seed"].agg(lambda s: sorted(int(x) for x in s)).tolist(),
    })
    groups = pd.RangeIndex(len(first))
    shared, group_size = shared_groups(runs, cell, len(first))
    out.update({"runtime_shared": shared.tolist(), "group_size": group_size.tolist()})
    for metric in summarised_metrics():
        values = pd.to_numeric(runs.loc[ok, metric.name], errors="coerce").replace([np.inf, -np.inf], np.nan)
        by_cell = values.groupby(cell[ok])
        n = by_cell.count().reindex(groups, fill_value=0).to_numpy()
        mean = by_cell.mean().reindex(groups).to_numpy(dtype=float)
        std = by_cell.std(ddof=1).reindex(groups).to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            half = np.where(n >= 2, stdtrit(np.maximum(n - 1, 1), 0.975) * std / np.sqrt(n), np.nan)
        std = np.where(n >= 2, std, np.nan)
        low, high = mean - half, mean + half
        if metric.runtime:  # a share of a group's time has no spread of its own: none is shown
            std, low, high = (np.where(shared, np.nan, a) for a in (std, low, high))
        out.update({f"{metric.name}_mean": mean, f"{metric.name}_std": std,
                    f"{metric.name}_ci95_low": low, f"{metric.name}_ci95_high": high})
    return sort_cells(pd.DataFrame(out), runs)


def shared_groups(runs: pd.DataFrame, cell: pd.Series, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cell (numbered by ``cell``), whether its runtimes are shares of a group's time (the
    vectorized engine trained it with other replicas: a record's ``group_size`` above 1) and the
    largest such group (0 for cells trained on their own)."""
    if "group_size" not in runs:
        return np.zeros(cells, dtype=bool), np.zeros(cells, dtype=int)
    size = pd.to_numeric(runs["group_size"], errors="coerce").fillna(0)
    largest = size.groupby(cell).max().reindex(pd.RangeIndex(cells), fill_value=0).to_numpy()
    return largest > 1, np.where(largest > 1, largest, 0).astype(int)


def sort_cells(cells: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cells ordered by task, dataset, then the task's main metric (best first, missing last)."""
    parts = []
    for (task, _dataset), group in cells.groupby(["task", "dataset"], sort=True):
        metric = main_metric(task, runs)
        parts.append(group.sort_values(
            [f"{metric.name}_mean", "label", "epochs", "batch_size", "device"],
            ascending=[not metric.higher_is_better, True, True, True, True], na_position="last", kind="stable",
        ))
    return pd.concat(parts, ignore_index=True)


def curve_stats(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell and epoch, over the cell's ok runs: ``n``, ``time_s`` (mean cumulative training
    seconds) and, for train_loss, test_loss and test_metric, the ``_mean``, ``_min`` and ``_max``.

    Columns: the cell columns, ``epoch``, ``n``, ``time_s``, ``time_s_min``, ``time_s_max``, then
    ``<field>_mean/_min/_max``. Missing and non-finite points are left out of each statistic.
    """
    columns = [*CELL_COLUMNS, "epoch", "n", "time_s", "time_s_min", "time_s_max",
               *(f"{f}_{s}" for f in CURVE_FIELDS for s in ("mean", "min", "max"))]
    ok = runs[runs["status"].isin(SUCCESS)]
    curves = [curve or [] for curve in ok["curve"]]
    points = [point for curve in curves for point in curve]
    if not points:
        return pd.DataFrame(columns=columns)
    # Every point in one table, next to its run's cell columns (no loop over rows).
    frame = pd.DataFrame.from_records(points, columns=["epoch", "time_s", *CURVE_FIELDS])
    owners = ok[CELL_COLUMNS].iloc[np.repeat(np.arange(len(ok)), [len(c) for c in curves])].reset_index(drop=True)
    frame = pd.concat([owners, frame], axis=1)
    for col in ("time_s", *CURVE_FIELDS):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").replace([np.inf, -np.inf], np.nan)
    grouped = frame.groupby([*CELL_COLUMNS, "epoch"], sort=True, dropna=False)
    out = grouped.agg(
        n=("time_s", "size"), time_s=("time_s", "mean"), time_s_min=("time_s", "min"), time_s_max=("time_s", "max"),
        **{f"{f}_{s}": (f, s) for f in CURVE_FIELDS for s in ("mean", "min", "max")},
    ).reset_index()
    return out[columns]


def seed_values(runs: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The single-seed values behind the cells' means: one row per ok run with the cell columns,
    ``seed`` and ``columns`` (NaN where a run lacks one)."""
    ok = with_metric_columns(runs[runs["status"].isin(SUCCESS)])
    missing = [c for c in columns if c not in ok.columns]
    ok = ok.assign(**{c: math.nan for c in missing}) if missing else ok
    return ok[[*CELL_COLUMNS, "seed", *columns]].reset_index(drop=True)


def reference_values(runs: pd.DataFrame, metric: str) -> list[tuple[Metric, float]]:
    """The task's reference values for ``metric`` (``test_rmse``: least-squares optimum, noise floor;
    ``test_accuracy``: chance) that ``runs`` of one task x dataset carry, as (registry metric, value)
    pairs: the median over the runs that stored it (they agree: a reference is a fact about the data)."""
    out = []
    for ref in references_of(metric):
        if ref.name in runs:
            values = pd.to_numeric(runs[ref.name], errors="coerce").dropna()
            values = values[np.isfinite(values)]
            if not values.empty:
                out.append((ref, float(values.median())))
    return out
