"""The report's charts, drawn with matplotlib's object API (Agg canvas: no display, no pyplot state).

Each chart function takes the rows of one task x dataset (cells from ``aggregate.cell_stats``,
curves from ``aggregate.curve_stats``, both with a ``name`` column naming the series) and the
report's colour map, and returns the ``Figure``; ``render`` turns a figure into PNG and SVG bytes.
Colours come from the Okabe-Ito palette (readable with every common colour-vision deficiency),
one per optimizer name for the whole report (``colour_map``); several cells of one optimizer in one
chart (other hyperparameters, epochs, batch size or device) share its colour and differ by hatch
or line style.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter

from optbench.report.aggregate import Metric

# Okabe & Ito (2008), yellow and black last (weakest on white, and black reads as "axis").
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
# Beyond eight labels: matplotlib's tableau-colorblind10.
MORE = ["#006BA4", "#FF800E", "#ABABAB", "#595959", "#5F9ED1", "#C85200", "#898989", "#A2C8EC", "#FFBC79", "#CFCFCF"]
LINE_STYLES = ["-", "--", ":", "-."]
HATCHES = ["", "//", "..", "xx"]
# Series with at most this many points get markers, so a one- or two-epoch run is still visible.
MARKER_MAX_POINTS = 25


def colour_map(optimizers: Iterable[str]) -> dict[str, str]:
    """One colour per optimizer *name* (``adam``, not ``adam(lr=0.01)``), in sorted name order, so an
    optimizer keeps its colour in every chart of a report and between reports of the same names.
    Variants of one optimizer (hyperparameters, epochs, ...) share it and differ by hatch, line
    style or marker. Okabe-Ito first; past 18 names colours repeat (the legend still names each)."""
    palette = OKABE_ITO + MORE
    return {name: palette[i % len(palette)] for i, name in enumerate(sorted(set(optimizers)))}


def render(fig: Figure) -> dict[str, bytes]:
    """The figure as ``{"png": ..., "svg": ...}`` bytes (PNG at 150 dpi; no timestamp in the SVG)."""
    out = {}
    for fmt, kwargs in (("png", {"dpi": 150}), ("svg", {"metadata": {"Date": None}})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, facecolor="white", **kwargs)
        out[fmt] = buf.getvalue()
        # The layout (in inches, so for any dpi) is done: the SVG reuses it instead of solving it again.
        fig.set_layout_engine("none")
    return out


def comparison_chart(cells: pd.DataFrame, colours: dict[str, str], title: str, error: Metric) -> Figure:
    """Two panels of horizontal bars sharing the optimizer axis, both with a logarithmic x axis:
    runtime (training seconds) and ``error`` (test RMSE, or test loss for classification).

    Bars are the mean over a cell's ok runs, error bars one standard deviation across seeds (none
    with a single seed). Cells are drawn in the given order, top to bottom; a cell whose every run
    diverged or failed gets a note instead of bars.
    """
    k = len(cells)
    fig = Figure(figsize=(11, 1.9 + 0.42 * k), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(k)[::-1]  # first cell at the top
    styles = _variant_styles(cells)
    for ax, column, xlabel in (
        (axes[0], "train_seconds", "runtime (training seconds, log scale)"),
        (axes[1], error.column, f"{error.title} ({error.unit}, log scale)"),
    ):
        mean = cells[f"{column}_mean"].to_numpy(dtype=float)
        std = cells[f"{column}_std"].to_numpy(dtype=float)  # NaN with one seed: no error bar
        ok = np.isfinite(mean) & (mean > 0)
        # On a log axis a bar cannot reach zero: clip the lower error bar just above it.
        lower = np.minimum(std, mean * 0.95)
        ax.barh(y[ok], mean[ok], color=[colours[o] for o in cells["optimizer"][ok]],
                hatch=[HATCHES[s % len(HATCHES)] for s in styles[ok]], edgecolor="white", height=0.7,
                xerr=[lower[ok], std[ok]], error_kw={"ecolor": "#333333", "capsize": 3, "elinewidth": 1})
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", which="major", alpha=0.35)
        ax.grid(axis="x", which="minor", alpha=0.12)
        ax.set_axisbelow(True)
        if ok.any():
            spread_lo, spread_hi = np.nan_to_num(lower[ok]), np.nan_to_num(std[ok])
            lo, hi = float(np.min(mean[ok] - spread_lo)) / 1.5, float(np.max(mean[ok] + spread_hi))
            # Room on the right for the value labels: about a third of the axis.
            extra = max(0.45 * math.log10(hi / lo), 0.25)
            ax.set_xlim(lo, hi * 10**extra)
            _log_ticks(ax.xaxis, lo, hi * 10**extra)
            for yi, m, s in zip(y[ok], mean[ok], spread_hi):
                ax.annotate(_short(m), (m + s, yi), xytext=(6, 0), textcoords="offset points", va="center",
                            fontsize=8, color="#333333")
        for yi, (_, cell) in zip(y[~ok], cells[~ok].iterrows()):
            ax.text(0.02, yi, _no_value_note(cell), transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="#B00000", style="italic")
    axes[0].set_yticks(y, [_tick_label(cell) for _, cell in cells.iterrows()])
    axes[0].set_ylim(-0.7, k - 0.3)
    fig.suptitle(f"{title}: runtime and {error.title} per optimizer\n"
                 "bars: mean over seeds, error bars: ±1 standard deviation across seeds", fontsize=11)
    return fig


def convergence_chart(cells: pd.DataFrame, curves: pd.DataFrame, colours: dict[str, str], title: str,
                      loss_label: str) -> Figure:
    """Training loss against epoch (left) and against cumulative training seconds (right), log y.

    One line per cell: the mean over its ok runs, with a band from the lowest to the highest run.
    The legend sits outside the axes, right of the plots, and names the cells with diverged or
    failed runs (a cell with no ok run has a legend entry and no line).
    """
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax, x, xlabel in ((axes[0], "epoch", "epoch"), (axes[1], "time_s", "training time (s)")):
        _lines(ax, cells, curves, colours, x, "train_loss")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(which="major", alpha=0.35)
        ax.grid(which="minor", alpha=0.12)
    axes[1].set_xlim(left=0)
    axes[0].set_ylabel(f"{loss_label} (log scale)")
    lo, hi = axes[0].get_ylim()
    if 0 < lo < hi:
        _log_ticks(axes[0].yaxis, lo, hi)
    _legend(fig, axes[0])
    fig.suptitle(f"{title}: convergence (mean over seeds, band: min-max across seeds)", fontsize=11)
    return fig


def accuracy_chart(cells: pd.DataFrame, curves: pd.DataFrame, colours: dict[str, str], title: str) -> Figure:
    """Test accuracy (percent) against cumulative training seconds, one line per cell with a min-max band."""
    fig = Figure(figsize=(9, 4.6), layout="constrained")
    ax = fig.subplots()
    _lines(ax, cells, curves, colours, "time_s", "test_metric")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlim(left=0)
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    _legend(fig, ax)
    fig.suptitle(f"{title}: test accuracy against training time (mean over seeds, band: min-max)", fontsize=11)
    return fig


def _lines(ax: Axes, cells: pd.DataFrame, curves: pd.DataFrame, colours: dict[str, str], x: str, field: str) -> None:
    """One line per cell in ``cells`` order; a cell without curve points only gets a legend entry."""
    for (_, cell), style in zip(cells.iterrows(), _variant_styles(cells)):
        c = curves[curves["name"] == cell["name"]].sort_values("epoch")
        colour = colours[cell["optimizer"]]
        linestyle = LINE_STYLES[style % len(LINE_STYLES)]
        notes = _problem_notes(cell)
        label = cell["name"] + (f" ({notes})" if notes else "")
        if c.empty:
            ax.plot([], [], color=colour, linestyle="none", marker="x", label=f"{cell['name']} (no ok run: {notes})")
            continue
        marker = "o" if len(c) <= MARKER_MAX_POINTS else None
        ax.plot(c[x], c[f"{field}_mean"], color=colour, linestyle=linestyle,
                marker=marker, markersize=3.5, linewidth=1.6, label=label)
        if (c["n"] > 1).any():
            ax.fill_between(c[x], c[f"{field}_min"], c[f"{field}_max"], color=colour, alpha=0.15, linewidth=0)


def _log_ticks(axis: Any, lo: float, hi: float) -> None:
    """Plain-number labels (0.2, 0.5, 1, 2) at 1-2-5 steps over at most two decades, powers of ten
    beyond; no labels on minor ticks, which otherwise collide on short log axes."""
    decades = math.log10(hi / lo)
    subs = (1.0, 2.0, 5.0) if decades <= 2.2 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: _short(v) if decades <= 6 else f"{v:.0e}"))
    axis.set_minor_formatter(NullFormatter())


def _legend(fig: Figure, ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", title="optimizer", fontsize=9, frameon=False)


def _variant_styles(cells: pd.DataFrame) -> np.ndarray:
    """0 for the first cell of each optimizer, 1 for the second, ...: picks the hatch or line style."""
    return cells.groupby("optimizer", sort=False).cumcount().to_numpy()


def _problem_notes(cell: pd.Series) -> str:
    """``1 of 3 diverged, 1 of 3 failed``, or '' when every run of the cell is ok."""
    parts = [f"{cell[k]} of {cell['runs']} {k.removeprefix('n_')}" for k in ("n_diverged", "n_failed") if cell[k]]
    return ", ".join(parts)


def _tick_label(cell: pd.Series) -> str:
    notes = _problem_notes(cell)
    return cell["name"] + (f"\n({notes})" if notes and cell["n"] > 0 else "")


def _no_value_note(cell: pd.Series) -> str:
    notes = _problem_notes(cell)
    if cell["n"] == 0:
        return f"no ok run ({notes})" if notes else "no ok run"
    return "no value"


def _short(value: float) -> str:
    if not math.isfinite(value):
        return ""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


# --- fair comparisons (optbench.report.fair) ------------------------------------------------------------

def sensitivity_chart(sweeps: list[Any], names: list[str], colours: dict[str, str], title: str,
                      metric: Metric) -> Figure:
    """One panel per swept hyperparameter: the final validation ``metric`` against its value (log x
    axis when every value is positive), one line per sweep. Each point is the best candidate
    with that value (over any other swept hyperparameter); a ring marks the chosen value, and an
    x on the top edge a value whose every candidate diverged or failed.

    ``sweeps``: ``fair.Sensitivity`` objects of one task x dataset, ``names`` their display names;
    ``colours``: per optimizer name (sweeps of one optimizer share it and differ by line style).
    """
    keys = sorted({k for s in sweeps for k in s.curves})
    fig = Figure(figsize=(max(5.5, 4.6 * len(keys)) + 2.2, 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(keys), sharey=True, squeeze=False)[0])
    accuracy = metric.higher_is_better
    for ax, key in zip(axes, keys):
        all_values = [p.value for s in sweeps for p in s.curves.get(key, [])]
        seen: dict[str, int] = {}
        for i, (s, name) in enumerate(zip(sweeps, names)):
            points = s.curves.get(key)
            if not points:
                continue
            colour = colours[s.choice.optimizer]
            style = LINE_STYLES[seen.setdefault(s.choice.optimizer, 0) % len(LINE_STYLES)]
            seen[s.choice.optimizer] += 1
            xs = [p.value for p in points if p.metric is not None]
            ys = [p.metric for p in points if p.metric is not None]
            ax.plot(xs, ys, color=colour, linestyle=style, marker="o", markersize=4, linewidth=1.6, label=name)
            for p in points:
                if p.chosen and p.metric is not None:
                    # Rings grow per sweep, so winners at one value stay visible inside each other.
                    ax.plot([p.value], [p.metric], linestyle="none", marker="o", markersize=12 + 5 * i,
                            markerfacecolor="none", markeredgecolor=colour, markeredgewidth=2)
                if p.metric is None:  # stacked below the top edge, one row per sweep
                    ax.plot([p.value], [0.97 - 0.05 * i], linestyle="none", marker="x", markersize=8, color=colour,
                            transform=ax.get_xaxis_transform(), clip_on=False)
        if all_values and min(all_values) > 0:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"{key}{' (log scale)' if ax.get_xscale() == 'log' else ''}")
        ax.grid(which="major", alpha=0.35)
        ax.grid(which="minor", alpha=0.12)
    if accuracy:
        axes[0].yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        axes[0].set_ylabel(f"final {metric.title} (%)")
    else:
        axes[0].set_yscale("log")
        axes[0].set_ylabel(f"final {metric.title} ({metric.unit}, log scale)")
        lo, hi = axes[0].get_ylim()
        if 0 < lo < hi:
            _log_ticks(axes[0].yaxis, lo, hi)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside right upper", title="optimizer", fontsize=9, frameon=False)
    fig.suptitle(f"{title}: sensitivity on the validation split\n"
                 "ring: chosen value; x on top: every candidate diverged", fontsize=11)
    return fig


def time_to_target_chart(rows: pd.DataFrame, colours: dict[str, str], title: str, target: str) -> Figure:
    """Horizontal bars, log x axis: the median training seconds to reach ``target`` per test cell
    (rows of ``fair.time_to_target_cells``, in report order), with how many seeds reached it; a
    cell whose median run never got there gets a note instead of a bar."""
    k = len(rows)
    fig = Figure(figsize=(9, 1.9 + 0.42 * k), layout="constrained")
    ax = fig.subplots()
    y = np.arange(k)[::-1]
    seconds = rows["seconds"].to_numpy(dtype=float)
    ok = np.isfinite(seconds) & (seconds > 0)
    styles = _variant_styles(rows)
    ax.barh(y[ok], seconds[ok], color=[colours[o] for o in rows["optimizer"][ok]], edgecolor="white", height=0.7,
            hatch=[HATCHES[s % len(HATCHES)] for s in styles[ok]])
    ax.set_xscale("log")
    ax.set_xlabel("median training seconds to target (log scale)")
    ax.grid(axis="x", which="major", alpha=0.35)
    ax.grid(axis="x", which="minor", alpha=0.12)
    ax.set_axisbelow(True)
    if ok.any():
        lo, hi = float(seconds[ok].min()) / 1.5, float(seconds[ok].max())
        extra = max(0.45 * math.log10(hi / lo), 0.25)
        ax.set_xlim(lo, hi * 10**extra)
        _log_ticks(ax.xaxis, lo, hi * 10**extra)
    for yi, (_, row), reached in zip(y, rows.iterrows(), ok):
        seeds = f"{row['reached']} of {row['runs']} seeds reached it"
        if reached:
            ax.annotate(f"{_short(row['seconds'])} s, epoch {row['epochs']:g} ({seeds})", (row["seconds"], yi),
                        xytext=(6, 0), textcoords="offset points", va="center", fontsize=8, color="#333333")
        else:
            ax.text(0.02, yi, f"not reached ({seeds})", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="#B00000", style="italic")
    ax.set_yticks(y, list(rows["name"]))
    ax.set_ylim(-0.7, k - 0.3)
    fig.suptitle(f"{title}: time to target {target} (test split)\n"
                 "bars: median over seeds, a seed that never reached it counting as infinitely slow", fontsize=11)
    return fig


def profile_chart(taus: list[float], rho: dict[str, list[float]], scores: dict[str, float], colours: dict[str, str],
                  problems: int) -> Figure:
    """Performance profiles: per optimizer the fraction of tasks on which it reached the target
    within tau times the fastest optimizer, tau from 1 to the end of ``taus``; the legend gives each
    optimizer's score (normalised area under its profile), best first."""
    fig = Figure(figsize=(9, 4.6), layout="constrained")
    ax = fig.subplots()
    for name in sorted(rho, key=lambda s: (-scores[s], s)):
        ax.step(taus, rho[name], where="post", color=colours[name], linewidth=1.8,
                label=f"{name} (score {scores[name]:.2f})")
    ax.set_xlim(taus[0], taus[-1])
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlabel("τ: time to target relative to the fastest optimizer on the task")
    ax.set_ylabel(f"tasks reached within τ (of {problems})")
    ax.grid(alpha=0.3)
    _legend(fig, ax)
    fig.suptitle(f"Performance profile: time to target over {problems} task(s)\n"
                 f"score: area under the profile over τ in [1, {taus[-1]:g}] / {taus[-1] - 1:g}", fontsize=11)
    return fig
