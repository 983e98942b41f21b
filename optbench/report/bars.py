"""The report's bar chart: runtime and the main error metric per optimizer, as in the article that
compares SGD, momentum, RMSprop and Adam with a runtime/RMSE table and "a bar chart whose
right-hand axis is on a logarithmic scale" (drawn with matplotlib's object API, like ``charts``).

A bar's length is what it shows, so each axis states where the bars start:

- **Runtime** (left panel): training seconds on a linear axis, bars from 0, as in the article.
- **Error** (right panel): the task's main error metric (test RMSE; for classification the test
  error, 100% minus the accuracy) on a log axis. A bar on a log axis cannot start at 0, so every
  bar starts at one stated value, the *decade floor*: the power of ten at or below the smallest
  value drawn (10^k < every mean and interval end). A bar's length is then "how many times the
  floor", the same for every bar of the chart, and the axis label names the floor.

- **Optimizer state** (third panel, where the records carry ``optimizer_state_bytes``): the bytes of
  the optimizer's state per run on a linear axis, bars from 0 (SGD without momentum holds none: a
  log axis could not draw it), in binary units. An exact size, the same for every seed: no error bar.

Per bar: the mean over the cell's ok runs, an error bar over the 95% confidence interval of that
mean (Student t, ``aggregate.cell_stats``; none with one seed), and the mean as text at its end.
A runtime shared by a vectorized group (``runtime_shared``: the group's seconds divided among its
replicas) has no spread of its own: its bar is hatched, has no error bar and its label says
"shared". Colours are the report's per-optimizer colours (``colours.colour_map``); a second cell
of one optimizer is told apart by a hatch. Each bar carries an SVG id (``bar-<panel>-<cell>``).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from optbench.metrics import BINARY_UNITS, Metric, binary_size, metric as registry_metric
from optbench.report.charts import (
    MAX_ROWS,
    _log_ticks,
    _no_value_note,
    _reference_lines,
    _short,
    _tick_label,
    _variant_styles,
    shown,
)
from optbench.report.naming import slug

# A second, third, ... cell of one optimizer in one chart: same colour, these hatches.
VARIANT_HATCHES = ["", "..", "xx", "\\\\"]
SHARED_HATCH = "///"


@dataclass(frozen=True)
class Panel:
    """One panel's values: ``mean``, interval ends (NaN where none) and how its axis is labelled."""

    name: str
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    title: str
    unit: str
    percent: bool = False
    size: bool = False  # bytes, shown in binary units (12.5 KiB)


def error_panel(cells: pd.DataFrame, metric: Metric) -> Panel:
    """The main metric as an error, lower is better: RMSE as it is; an accuracy as 1 - accuracy
    (its interval turned round)."""
    mean, low, high = (cells[f"{metric.name}_{s}"].to_numpy(dtype=float) for s in ("mean", "ci95_low", "ci95_high"))
    if metric.higher_is_better and metric.unit == "fraction":
        split = "test " if metric.name.startswith("test_") else ""
        return Panel("error", 1 - mean, 1 - high, 1 - low, f"{split}error (100% - accuracy)", "%", percent=True)
    return Panel("error", mean, low, high, metric.title, metric.unit)


def runtime_panel(cells: pd.DataFrame) -> Panel:
    c = "train_seconds"
    mean, low, high = (cells[f"{c}_{s}"].to_numpy(dtype=float) for s in ("mean", "ci95_low", "ci95_high"))
    return Panel("runtime", mean, low, high, "runtime", "training seconds")


STATE = "optimizer_state_bytes"


def state_panel(cells: pd.DataFrame) -> Panel | None:
    """The optimizer's state per run (exact: no interval), or None where no cell has it (records
    from before it was measured)."""
    if f"{STATE}_mean" not in cells or not cells[f"{STATE}_mean"].notna().any():
        return None
    mean = cells[f"{STATE}_mean"].to_numpy(dtype=float)
    none = np.full(len(mean), np.nan)
    return Panel("state", mean, none, none, f"optimizer {registry_metric(STATE).title}", "bytes per run", size=True)


def decade_floor(values: np.ndarray) -> float:
    """The power of ten at or below the smallest positive finite value, one decade lower where that
    value is itself a power of ten (so that no bar has zero length); 1 when there is none."""
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) == 0:
        return 1.0
    smallest = float(v.min())
    floor = 10.0 ** math.floor(math.log10(smallest))
    return floor / 10 if floor >= smallest else floor


def bar_chart(cells: pd.DataFrame, colours: dict[str, str], title: str, metric: Metric,
              references: list[tuple[Metric, float]] | tuple = ()) -> Figure:
    """Two horizontal bar panels sharing the optimizer axis: runtime (linear, from 0) and the main
    error metric (log, from the decade floor), each bar with its 95% interval; ``references``
    (least-squares optimum, noise floor, chance) as grey lines on the error panel; and a third, the
    optimizer's state in bytes (linear, from 0), where the cells have it. Cells in the given order,
    top to bottom; a cell with no ok run gets a note instead of bars."""
    cells, note = shown(cells, MAX_ROWS)
    k = len(cells)
    state = state_panel(cells)
    fig = Figure(figsize=(11 if state is None else 15, 2.5 + 0.4 * k), layout="constrained")
    axes = fig.subplots(1, 2 if state is None else 3, sharey=True)
    y = np.arange(k)[::-1]
    shared = cells["runtime_shared"].to_numpy(dtype=bool) if "runtime_shared" in cells else np.zeros(k, bool)
    error = error_panel(cells, metric)
    refs = [(m, 1 - v if error.percent else v) for m, v in references]
    if error.percent:
        refs = [(as_error(m), v) for m, v in refs]
    runtime = runtime_panel(cells)
    _bars(axes[0], cells, colours, runtime, y, shared, log=False)
    _bars(axes[1], cells, colours, error, y, np.zeros(k, bool), log=True, references=[v for _, v in refs])
    if state is not None:
        _bars(axes[2], cells, colours, state, y, np.zeros(k, bool), log=False)
    ref_handles = _reference_lines(axes[1], refs, "x")
    axes[0].set_yticks(y, [_tick_label(cell) for _, cell in cells.iterrows()])
    axes[0].set_ylim(-0.7, k - 0.3)
    grey = "#555555"
    handles = [(Patch(facecolor="#bbbbbb", edgecolor="none"), "bar: mean over seeds"),
               (Line2D([], [], color=grey, marker="|", linestyle="-", markersize=8, linewidth=1.2),
                "error bar: 95% confidence interval of the mean"),
               *([(Patch(facecolor="#bbbbbb", edgecolor="white", hatch=SHARED_HATCH),
                   "shared: a vectorized group's seconds per replica (no interval)")] if shared.any() else []),
               *ref_handles]
    fig.legend([h for h, _ in handles], [lab for _, lab in handles], loc="outside lower center",
               ncol=2 if len(handles) == 4 else min(len(handles), 3), fontsize=8.5, frameon=False)
    fig.suptitle(f"{title}: runtime{',' if state else ' and'} {error.title.split(' (')[0]}"
                 f"{' and optimizer state' if state else ''} per optimizer (bars)"
                 + (f"\n{note}" if note else ""), fontsize=11)
    return fig


def as_error(ref: Metric) -> Metric:
    """A reference accuracy (chance) named as the error it stands for."""
    from dataclasses import replace

    return replace(ref, title=ref.title.replace("accuracy", "error") if "accuracy" in ref.title else f"{ref.title} error")


def _bars(ax: Axes, cells: pd.DataFrame, colours: dict[str, str], panel: Panel, y: np.ndarray,
          shared: np.ndarray, log: bool, references: list[float] = ()) -> None:
    ok = np.isfinite(panel.mean)
    low = np.where(shared, np.nan, panel.low)
    high = np.where(shared, np.nan, panel.high)
    ends = np.concatenate([panel.mean[ok], low[np.isfinite(low)], high[np.isfinite(high)],
                           np.asarray(references, dtype=float)])
    if log:
        floor = decade_floor(np.concatenate([panel.mean[ok], low[np.isfinite(low) & (low > 0)],
                                             np.asarray(references, dtype=float)]))
        top = float(ends.max()) if len(ends) else floor * 10
        right = top * max(1.8, (top / floor) ** 0.15)  # room for the value labels
        base = floor
    else:
        floor = 0.0
        top = float(ends.max()) if len(ends) and ends.max() > 0 else 1.0
        right = top * 1.3  # room for the value labels
        base = 0.0
    styles = _variant_styles(cells)
    for i, (_, cell) in enumerate(cells.iterrows()):
        if not ok[i] or (log and panel.mean[i] <= 0):
            ax.text(0.02, y[i], _no_value_note(cell), transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="#B00000", style="italic")
            continue
        mean = panel.mean[i]
        hatch = SHARED_HATCH if shared[i] else VARIANT_HATCHES[styles[i] % len(VARIANT_HATCHES)]
        bar = ax.barh([y[i]], [mean - base], left=base, height=0.62, color=colours[cell["optimizer"]],
                      edgecolor="white" if hatch else "none", hatch=hatch or None, linewidth=0, zorder=2)
        bar.patches[0].set_gid(f"bar-{panel.name}-{slug(cell['name'])}")
        if np.isfinite(low[i]) and np.isfinite(high[i]):
            lo = max(low[i], base if log else low[i])  # an interval reaching below the floor ends at it
            ax.errorbar([mean], [y[i]], xerr=[[mean - lo], [high[i] - mean]], fmt="none", ecolor="#333333",
                        elinewidth=1.2, capsize=4, capthick=1.2, zorder=3)
        text = _value_text(mean, panel) + (" shared" if shared[i] else "")
        end = high[i] if np.isfinite(high[i]) else mean
        ax.annotate(text, (end, y[i]), xytext=(5, 0), textcoords="offset points", va="center", fontsize=8,
                    color="#333333", zorder=4)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(floor, right)
        _log_ticks(ax.xaxis, floor, right)
        if panel.percent:
            ax.xaxis.set_major_formatter(lambda v, _: f"{v * 100:.3g}%")
        unit = "" if panel.percent else f" ({panel.unit})"
        ax.set_xlabel(_wrapped(f"{panel.title}{unit}, log scale;",
                               f"every bar starts at {_value_text(floor, panel)}, the power of ten below the smallest value"))
    else:
        ax.set_xlim(0, right)
        if panel.size:
            _size_ticks(ax, right)
        ax.set_xlabel(_wrapped(f"{panel.title} ({panel.unit}), linear;",
                               "bars start at 0; exact, the same for every seed" if panel.size else "bars start at 0"))
    ax.grid(axis="x", which="major", alpha=0.35)
    ax.grid(axis="x", which="minor", alpha=0.12)
    ax.set_axisbelow(True)


def _size_ticks(ax: Axes, right: float) -> None:
    """Round ticks in one binary unit (0, 10, 20, 30 KiB), not round numbers of bytes (4.88 KiB)."""
    power = 0
    while right / 1024 ** (power + 1) >= 1 and power < len(BINARY_UNITS) - 1:
        power += 1
    scale = 1024**power
    ticks = [t * scale for t in MaxNLocator(nbins=5).tick_values(0, right / scale) if 0 <= t * scale <= right]
    ax.set_xticks(ticks, [f"{t / scale:g} {BINARY_UNITS[power]}" if t else "0" for t in ticks])


def _wrapped(*lines: str, width: int = 50) -> str:
    """Axis-label lines broken between words to fit under one panel (half the figure's width,
    less the optimizer names beside the first), so constrained layout never pushes a panel off."""
    return "\n".join(part for line in lines for part in textwrap.wrap(line, width))


def _value_text(value: float, panel: Panel) -> str:
    if panel.percent:
        return f"{value * 100:.3g}%"
    if panel.size:
        return binary_size(value)
    return _short(value, digits=True) + (" s" if panel.name == "runtime" else "")
