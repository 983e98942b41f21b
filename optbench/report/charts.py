"""The report's charts, drawn with matplotlib's object API (Agg canvas: no display, no pyplot state).

Each chart function takes the rows of one task x dataset (cells from ``aggregate.cell_stats``,
curves from ``aggregate.curve_stats``, both with a ``name`` column naming the series) and the
report's colour map, and returns the ``Figure``; ``render`` turns a figure into PNG, SVG or PDF bytes.
Colours come from the Okabe-Ito palette (readable with every common colour-vision deficiency),
one per optimizer name for the whole report (``colours.colour_map``); several cells of one
optimizer in one chart (other hyperparameters, epochs, batch size or device) share its colour and
differ by marker or line style. A chart of many cells shows each optimizer's best (``shown``).

Value axes are linear from zero unless the values span more than ``LOG_SPREAD`` times
(``log_scale``), and a log axis says so and why in its label; comparisons here are dots with
interval whiskers (the bar chart, whose log axis starts its bars at a stated decade floor, is
``optbench.report.bars``). Reference values the task stored with its runs (least-squares
optimum, noise floor, chance accuracy) are drawn as grey lines named in the legend. Legends sit
outside the axes: right of them when short, below them in columns when long.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter

from optbench.metrics import Metric, metric as registry_metric
from optbench.report.naming import slug
from optbench.report.profile import Measure, measure

LINE_STYLES = ["-", "--", ":", "-."]
VARIANT_MARKERS = ["o", "s", "^", "D"]
# A log axis only when the largest value is more than this many times the smallest (``log_scale``).
LOG_SPREAD = 30.0
# Reference lines (optimum, noise floor, chance): greys, told apart by line style.
REFERENCE_STYLES = [("--", "#333333"), (":", "#777777"), ("-.", "#555555")]
SEED_ALPHA = 0.35
# Legends with more entries than this go below the plots, in columns.
LEGEND_RIGHT_MAX = 8
# Single-seed dots sit in this band below their cell's whisker (fractions of a row).
SEED_BAND = (0.32, 0.16)
# Series with at most this many points get markers, so a one- or two-epoch run is still visible.
MARKER_MAX_POINTS = 25
# Past this many cells a chart shows the best cell of each optimizer (``shown``): rows in the
# dot charts (comparison, time to target), lines in the line charts (convergence, accuracy).
MAX_ROWS = 24
MAX_LINES = 12


# The chart file formats and their savefig options (no timestamps).
PNG_DPI = 150
FORMATS: dict[str, dict[str, Any]] = {
    "png": {"dpi": PNG_DPI},
    "svg": {"metadata": {"Date": None}},
    "pdf": {"metadata": {"CreationDate": None, "ModDate": None}},
}


def render(fig: Figure, formats: Iterable[str] = ("png",)) -> dict[str, bytes]:
    """The figure's bytes in each of ``formats`` (keys of ``FORMATS``; PNG at ``PNG_DPI``), laid out once.

    The PNG comes first and in one pass: an Agg canvas solves the constrained layout as it draws
    (``savefig`` would draw the figure once more beforehand just to lay it out); the vector
    formats then reuse that layout, which is in inches and so holds for any dpi."""
    out = {}
    # Text as text in SVG and PDF (TrueType); SVG ids from a fixed salt: a redrawn chart of the same
    # data is the same file, not a diff in version control.
    with rc_context({"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "optbench"}):
        for fmt in sorted(set(formats), key=lambda f: (f != "png", f)):
            buf = io.BytesIO()
            if fmt == "png":
                fig.set_dpi(PNG_DPI)
                fig.set_facecolor("white")  # whatever the user's matplotlibrc says
                FigureCanvasAgg(fig).print_png(buf)
            else:
                fig.savefig(buf, format=fmt, facecolor="white", **FORMATS[fmt])
            out[fmt] = buf.getvalue()
            fig.set_layout_engine("none")
    return out


def shown(cells: pd.DataFrame, limit: int) -> tuple[pd.DataFrame, str]:
    """The cells a chart draws, best first, and a note for its title saying what was left out.

    Up to ``limit`` cells, all of them. Past that, a chart of every cell is a wall of labels and
    lines: it shows each optimizer's best cell (the first of its name in ``cells``, which come best
    first), and if there are still more than ``limit`` optimizers, the ``limit`` best of those.
    The tables keep every cell."""
    if len(cells) <= limit:
        return cells, ""
    best = cells.drop_duplicates("optimizer")
    what = "each optimizer's best setting" if len(best) <= limit else f"the {limit} best optimizers' best settings"
    return best.iloc[:limit], f"{what} ({min(len(best), limit)} of {len(cells)}; the table has all)"


def comparison_chart(cells: pd.DataFrame, seeds: pd.DataFrame, colours: dict[str, str], title: str, metric: Metric,
                     references: list[tuple[Metric, float]] = ()) -> Figure:
    """Two dot/interval panels sharing the optimizer axis: runtime (training seconds) and the task's
    main ``metric`` (test RMSE, or test accuracy in percent).

    Per cell a dot at the mean over its ok runs, a whisker over the 95% confidence interval of that
    mean (Student t; none with one seed) and each seed's value as a faint dot (``seeds``: rows of
    ``aggregate.seed_values`` with the cells' ``name``). Axes are linear from zero, and logarithmic
    only where the values span more than ``LOG_SPREAD`` times (said in the axis label).
    ``references`` (registry metric, value) are drawn as vertical lines on the metric panel and named
    in the legend below. Cells are drawn in the given order, top to bottom; a cell whose every run
    diverged or failed gets a note instead of a dot.
    """
    cells, note = shown(cells, MAX_ROWS)
    k = len(cells)
    fig = Figure(figsize=(11, 2.4 + 0.36 * k), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(k)[::-1]  # first cell at the top
    # The registry's runtime, its axis saying which seconds: training only (evaluation is not counted).
    runtime = replace(registry_metric("train_seconds"), unit="training seconds")
    ref_handles = []
    cut = False
    for ax, m in ((axes[0], runtime), (axes[1], metric)):
        refs = references if m is metric else []
        cut |= _interval_panel(ax, cells, seeds, colours, m, y, [v for _, v in refs])
        ref_handles += _reference_lines(ax, refs, "x")
    axes[0].set_yticks(y, [_tick_label(cell) for _, cell in cells.iterrows()])
    axes[0].set_ylim(-0.7, k - 0.3)
    grey = "#555555"
    handles = [(Line2D([], [], color=grey, marker="o", linestyle="none", markersize=7), "mean over seeds"),
               (Line2D([], [], color=grey, marker="|", linestyle="-", markersize=8, linewidth=1.4),
                "95% confidence interval of the mean"),
               (Line2D([], [], color=grey, marker="o", linestyle="none", markersize=4, alpha=SEED_ALPHA), "one seed"),
               *([(Line2D([], [], color=grey, marker=">", linestyle="-", markersize=6, linewidth=1.4),
                   "interval continues past the axis")] if cut else []),
               *ref_handles]
    fig.legend([h for h, _ in handles], [lab for _, lab in handles], loc="outside lower center",
               ncol=min(len(handles), 3), fontsize=8.5, frameon=False)
    fig.suptitle(f"{title}: runtime and {metric.title} per optimizer" + (f"\n{note}" if note else ""), fontsize=11)
    return fig


def _interval_panel(ax: Axes, cells: pd.DataFrame, seeds: pd.DataFrame, colours: dict[str, str], metric: Metric,
                    y: np.ndarray, references: list[float]) -> bool:
    """One panel of ``comparison_chart``: faint seed dots, the CI whisker, the mean dot, and the
    means as a column of values right of the data. The axis spans the means, seeds and references;
    a whisker longer than that (two seeds make wide t intervals) ends in an arrowhead at the edge
    of the data. Returns whether any whisker was cut so."""
    column = metric.name
    mean = cells[f"{column}_mean"].to_numpy(dtype=float)
    low = cells[f"{column}_ci95_low"].to_numpy(dtype=float)
    high = cells[f"{column}_ci95_high"].to_numpy(dtype=float)
    percent = metric.unit == "fraction"
    ok = np.isfinite(mean)
    by_name = {name: group[column].to_numpy(dtype=float) for name, group in seeds.groupby("name")} \
        if column in seeds else {}
    data = np.concatenate([mean[ok], *by_name.values(), np.asarray(references, dtype=float)])
    data = data[np.isfinite(data)]
    if len(data) and data.min() >= 0:  # a non-negative quantity: its CI is cut at zero
        low = np.maximum(low, 0.0)
    if percent:  # and a fraction's at 100%
        high = np.minimum(high, 1.0)
    log, spread = log_scale(data)
    # A fraction's interval is bounded (at 100%): the axis can hold all of it.
    lo, data_hi, hi = _limits(np.concatenate([data, high[np.isfinite(high)]]) if percent else data, log)
    styles = _variant_styles(cells)
    cut_any = False
    for i, (_, cell) in enumerate(cells.iterrows()):
        yi, style = y[i], styles[i]
        if not ok[i]:
            ax.text(0.02, yi, _no_value_note(cell), transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="#B00000", style="italic", zorder=4,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5})  # over reference lines
            continue
        colour = colours[cell["optimizer"]]
        values = by_name.get(cell["name"], np.array([]))
        values = values[np.isfinite(values) & ((values > 0) if log else True)]
        if len(values) > 1:  # in a band below the whisker, spread so that equal values stay countable
            offsets = np.linspace(-SEED_BAND[0], -SEED_BAND[1], len(values))
            ax.plot(values, yi + offsets, linestyle="none", marker="o", markersize=4, color=colour,
                    alpha=SEED_ALPHA, markeredgewidth=0, label="_seed")
        if np.isfinite(low[i]) and np.isfinite(high[i]):
            a, b = max(low[i], lo), min(high[i], data_hi)
            cut_low, cut_high = low[i] < lo, high[i] > data_hi
            cut_any |= cut_low or cut_high
            ax.plot([a, b], [yi, yi], color=colour, linewidth=1.6, label="_interval")
            for x, cut, arrow in ((a, cut_low, "<"), (b, cut_high, ">")):
                ax.plot([x], [yi], color=colour, linestyle="none", marker=arrow if cut else "|",
                        markersize=6 if cut else 9, markeredgewidth=1.6, label="_interval")
        ax.plot([mean[i]], [yi], linestyle="none", marker=VARIANT_MARKERS[style % len(VARIANT_MARKERS)],
                markersize=7, color=colour, markeredgecolor="white", markeredgewidth=0.8, label=cell["name"],
                zorder=3, gid=f"mean-{column}-{slug(cell['name'])}")  # an id in the SVG
        ax.annotate(_format(mean[i], metric), (data_hi, yi), xytext=(8, 0), textcoords="offset points",
                    va="center", fontsize=8, color="#333333")
    unit = "%" if percent else metric.unit
    if log:
        ax.set_xscale("log")
        ax.set_xlabel(f"{metric.title} ({unit}, log scale: the values span {spread:,.0f}x)")
        _log_ticks(ax.xaxis, lo, hi)
    else:
        ax.set_xlabel(f"{metric.title} ({unit})")
        if percent:  # no ticks past 100%: that part of the axis holds the value labels
            ax.set_xticks([t for t in MaxNLocator(6).tick_values(lo, min(hi, 1.0)) if lo <= t <= 1.0])
            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xlim(lo, hi)
    ax.grid(axis="x", which="major", alpha=0.35)
    ax.grid(axis="x", which="minor", alpha=0.12)
    ax.grid(axis="y", alpha=0.12)
    ax.set_axisbelow(True)
    return cut_any


def _reference_lines(ax: Axes, references: list[tuple[Metric, float]] | tuple = (),
                     orientation: str = "x") -> list[tuple[Line2D, str]]:
    """Each reference value as a grey line across ``ax`` (vertical on a value x axis), in its own
    line style; returns the (legend handle, "title: value") pairs that name them."""
    out = []
    for (ref, value), (style, colour) in zip(references, REFERENCE_STYLES):
        draw = ax.axvline if orientation == "x" else ax.axhline
        draw(value, color=colour, linestyle=style, linewidth=1.3, zorder=1, label="_reference")
        out.append((Line2D([], [], color=colour, linestyle=style, linewidth=1.3), f"{ref.title}: {_format(value, ref)}"))
    return out


def _limits(values: np.ndarray, log: bool) -> tuple[float, float, float]:
    """A dot/interval panel's value axis as (left end, end of the data, right end): linear from
    zero (or from below it, for negative values), log from a little under the smallest value; the
    part right of the data holds the column of value labels."""
    finite = values[np.isfinite(values) & ((values > 0) if log else True)]
    if len(finite) == 0:
        return (1.0, 10.0, 20.0) if log else (0.0, 1.0, 1.3)
    if log:
        lo = float(finite.min()) / 1.4
        data_hi = float(finite.max()) * 1.15
        return lo, data_hi, data_hi * (data_hi / lo) ** 0.2
    lo, top = min(0.0, float(finite.min())), float(finite.max())
    if top <= lo:
        top = lo + 1.0
    data_hi = top + 0.04 * (top - lo)
    return lo, data_hi, data_hi + 0.2 * (data_hi - lo)


def log_scale(values: Iterable[float]) -> tuple[bool, float]:
    """Whether values need a log axis, and their spread (max / min over the positive finite ones):
    log only when every finite value is positive and the spread exceeds ``LOG_SPREAD``, so that a
    linear axis from zero would squash the small values into its first pixels."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0 or v.min() <= 0:
        return False, math.nan
    spread = float(v.max() / v.min())
    return spread > LOG_SPREAD, spread


def _format(value: float, metric: Metric) -> str:
    if metric.unit == "fraction":
        return f"{value:.1%}"
    return _short(value, digits=True)


def convergence_chart(cells: pd.DataFrame, curves: pd.DataFrame, colours: dict[str, str], title: str,
                      loss_label: str, references: list[tuple[Metric, float]] | tuple = ()) -> Figure:
    """Training loss against epoch (left) and against cumulative training seconds (right); the y
    axis linear from zero, log where the losses span more than ``LOG_SPREAD`` times.

    One line per cell: the mean over its ok runs, with a band from the lowest to the highest run.
    ``references`` on the loss's scale (the loss of a uniform guess, for classification) are grey
    horizontal lines. The legend sits outside the axes and names the cells with diverged or failed
    runs (a cell with no ok run has a legend entry and no line).
    """
    cells, note = shown(cells, MAX_LINES)
    curves = curves[curves["name"].isin(cells["name"])]
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    refs: list[tuple[Line2D, str]] = []
    for ax, x, xlabel in ((axes[0], "epoch", "epoch"), (axes[1], "time_s", "training time (s)")):
        _lines(ax, cells, curves, colours, x, "train_loss")
        refs = _reference_lines(ax, references, "y")
        ax.set_xlabel(xlabel)
        ax.grid(which="major", alpha=0.35)
        ax.grid(which="minor", alpha=0.12)
    axes[1].set_xlim(left=0)
    values = curves[["train_loss_mean", "train_loss_min", "train_loss_max"]].to_numpy(dtype=float).ravel()
    _value_axis(axes[0], "y", np.concatenate([values, [v for _, v in references]]), loss_label)
    handles, labels = axes[0].get_legend_handles_labels()
    _legend(fig, handles=handles + [h for h, _ in refs], labels=labels + [lab for _, lab in refs])
    fig.suptitle(f"{title}: convergence (mean over seeds, band: min-max across seeds)" + (f"\n{note}" if note else ""),
                 fontsize=11)
    return fig


def _value_axis(ax: Axes, which: str, values: np.ndarray, label: str) -> None:
    """A shared value axis: log (labelled with the spread) when ``log_scale`` says the values need it,
    else linear from zero."""
    log, spread = log_scale(values)
    axis = ax.yaxis if which == "y" else ax.xaxis
    set_scale, set_label, set_lim = ((ax.set_yscale, ax.set_ylabel, ax.set_ylim) if which == "y"
                                     else (ax.set_xscale, ax.set_xlabel, ax.set_xlim))
    if which == "y":  # a label longer than the axis is tall would be cut at both ends: wrapped instead
        set_label = lambda text: ax.set_ylabel(_wrap_to_height(ax, text))
    if log:
        set_scale("log")
        set_label(f"{label} (log scale: the values span {spread:,.0f}x)")
        lo, hi = ax.get_ylim() if which == "y" else ax.get_xlim()
        if 0 < lo < hi:
            _log_ticks(axis, lo, hi)
    else:
        set_label(label)
        finite = values[np.isfinite(values)]
        if len(finite) and finite.min() >= 0:
            set_lim(0, float(finite.max()) * 1.05 or 1.0)


def _wrap_to_height(ax: Axes, text: str) -> str:
    """``text`` broken between words into lines that fit along a y axis: about 75% of the figure's
    height at the label's font size (0.6 em per character)."""
    size = ax.yaxis.label.get_fontsize()
    width = max(16, int(ax.figure.get_figheight() * 72 * 0.75 / (size * 0.6)))
    return "\n".join(textwrap.wrap(text, width)) if len(text) > width else text


def accuracy_chart(cells: pd.DataFrame, curves: pd.DataFrame, colours: dict[str, str], title: str,
                   references: list[tuple[Metric, float]] = ()) -> Figure:
    """Test accuracy (percent, from zero) against cumulative training seconds, one line per cell with
    a min-max band; ``references`` (chance) as horizontal lines named in the legend."""
    cells, note = shown(cells, MAX_LINES)
    curves = curves[curves["name"].isin(cells["name"])]
    fig = Figure(figsize=(9, 4.6), layout="constrained")
    ax = fig.subplots()
    _lines(ax, cells, curves, colours, "time_s", "test_metric")
    refs = _reference_lines(ax, references, "y")
    top = np.nanmax(curves["test_metric_max"].to_numpy(dtype=float), initial=0.0)
    ax.set_ylim(0, min(1.0, max(top, *(v for _, v in references), 0.1) * 1.08))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xlim(left=0)
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    _legend(fig, handles=handles + [h for h, _ in refs], labels=labels + [lab for _, lab in refs])
    fig.suptitle(f"{title}: test accuracy against training time (mean over seeds, band: min-max)"
                 + (f"\n{note}" if note else ""), fontsize=11)
    return fig


def _lines(ax: Axes, cells: pd.DataFrame, curves: pd.DataFrame, colours: dict[str, str], x: str, field: str) -> None:
    """One line per cell in ``cells`` order; a cell without curve points only gets a legend entry."""
    by_name = {name: group.sort_values("epoch") for name, group in curves.groupby("name", sort=False)}
    empty = curves.iloc[:0]
    for (_, cell), style in zip(cells.iterrows(), _variant_styles(cells)):
        c = by_name.get(cell["name"], empty)
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


def _legend(fig: Figure, ax: Axes | None = None, handles: list[Any] | None = None,
            labels: list[str] | None = None) -> None:
    """The figure's one legend, outside the axes: right of the plots for up to ``LEGEND_RIGHT_MAX``
    short entries, else below them in as many columns as the figure's width holds, so 14-18 cells
    take a few rows instead of half the figure. No legend title: the entries name optimizers."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    longest = max(len(lab) for lab in labels)
    if len(labels) <= LEGEND_RIGHT_MAX and longest <= 32:
        # Centred, not at the top: a wide two-line title would run into a legend's first entries.
        fig.legend(handles, labels, loc="outside right center", fontsize=9, frameon=False)
        return
    width_pt = fig.get_figwidth() * 72
    ncol = max(1, min(len(labels), int(width_pt // (longest * 5.2 + 34))))
    rows = -(-len(labels) // ncol)
    ncol = -(-len(labels) // rows)  # rows filled evenly: 12 entries as 6 + 6, not 11 + 1
    fig.set_figheight(fig.get_figheight() + 0.18 * rows + 0.15)  # the plots keep their height
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8.5, frameon=False,
               columnspacing=1.2, handlelength=2.2)


def _variant_styles(cells: pd.DataFrame) -> np.ndarray:
    """0 for the first cell of each optimizer, 1 for the second, ...: picks the marker or line style."""
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


def _short(value: float, digits: bool = False) -> str:
    """3 significant digits (``0.2``, ``1,469``); ``digits``: with trailing zeros (``0.200``), for
    values labelled side by side, as the tables print them."""
    if not math.isfinite(value):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:#.3g}".rstrip(".") if digits else f"{value:.3g}"


def progress_text(row: pd.Series, m: Measure) -> str:
    """A time-to-target row's label, its value of measure ``m`` first: ``1,200 steps, epoch 5, 0.531 s``
    (steps), ``0.531 s, 1,200 steps, epoch 5`` (seconds)."""
    def number(value: float, unit: str) -> str:
        if math.isnan(value):
            return f"? {unit}"
        return f"{_short(value, digits=True)} {unit}" if unit == "s" else f"{round(value):,d} {unit}"
    parts = {"adjusted_steps": number(row["adjusted_steps"], "adj. steps") if m.column == "adjusted_steps" else "",
             "steps": number(row["steps"], "steps"), "seconds": number(row["seconds"], "s"),
             "epochs": f"epoch {row['epochs']:g}"}
    first = parts.pop(m.column)
    return ", ".join(p for p in (first, *parts.values()) if p)


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
    values = np.array([p.metric for s in sweeps for points in s.curves.values() for p in points
                       if p.metric is not None], dtype=float)
    if accuracy:
        axes[0].set_ylim(0, min(1.0, np.nanmax(values, initial=0.1) * 1.08))
        axes[0].yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        axes[0].set_ylabel(f"final {metric.title} (%)")
    else:
        _value_axis(axes[0], "y", values, f"final {metric.title} ({metric.unit})")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    _legend(fig, handles=handles, labels=labels)
    fig.suptitle(f"{title}: sensitivity on the validation split\n"
                 "ring: chosen value; x on top: every candidate diverged", fontsize=11)
    return fig


def time_to_target_chart(rows: pd.DataFrame, colours: dict[str, str], title: str, target: str,
                         by: str | None = None) -> Figure:
    """A dot per test cell at its median to reach ``target`` in measure ``by`` (``profile.MEASURES``:
    steps by default; rows of ``fair.time_to_target_cells``, in report order), labelled with its
    steps, epoch, seconds and how many seeds reached it; the axis is linear from zero, log only where
    the values span more than ``LOG_SPREAD`` times. A cell whose median run never got there (or
    without a value of the measure) gets a note instead of a dot."""
    m = measure(by)
    rows, note = shown(rows, MAX_ROWS)
    k = len(rows)
    fig = Figure(figsize=(9, 1.9 + 0.36 * k), layout="constrained")
    ax = fig.subplots()
    y = np.arange(k)[::-1]
    seconds = rows[m.column].to_numpy(dtype=float)
    ok = np.isfinite(seconds) & (seconds > 0)
    styles = _variant_styles(rows)
    for yi, (_, row), reached, style in zip(y, rows.iterrows(), ok, styles):
        seeds = f"{row['reached']} of {row['runs']} seeds reached it"
        if reached:
            ax.plot([row[m.column]], [yi], linestyle="none", marker=VARIANT_MARKERS[style % len(VARIANT_MARKERS)],
                    markersize=7, color=colours[row["optimizer"]], markeredgecolor="white", label=row["name"])
            ax.annotate(f"{progress_text(row, m)} ({seeds})", (row[m.column], yi),
                        xytext=(7, 0), textcoords="offset points", va="center", fontsize=8, color="#333333")
        else:
            missing = "not measured" if math.isfinite(row["seconds"]) else "not reached"
            ax.text(0.02, yi, f"{missing} ({seeds})", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="#B00000", style="italic")
    label = f"median {m.title}"
    log, spread = log_scale(seconds[ok])
    if log:
        lo, hi = float(seconds[ok].min()) / 1.5, float(seconds[ok].max())
        hi *= 10 ** max(0.45 * math.log10(hi / lo), 0.25)  # room for the labels
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        _log_ticks(ax.xaxis, lo, hi)
        ax.set_xlabel(f"{label} (log scale: the values span {spread:,.0f}x)")
    else:
        ax.set_xlim(0, float(seconds[ok].max()) * 2.3 if ok.any() else 1.0)  # room for the labels
        ax.set_xlabel(label)
    ax.grid(axis="x", which="major", alpha=0.35)
    ax.grid(axis="x", which="minor", alpha=0.12)
    ax.grid(axis="y", alpha=0.12)
    ax.set_axisbelow(True)
    ax.set_yticks(y, list(rows["name"]))
    ax.set_ylim(-0.7, k - 0.3)
    fig.suptitle(f"{title}: time to target {target} (test split), in {m.title.removesuffix(' to target')}\n"
                 "dot: median over seeds, a seed that never reached it counting as infinitely slow"
                 + (f"\n{note}" if note else ""), fontsize=11)
    return fig


def profile_chart(taus: list[float], rho: dict[str, list[float]], scores: dict[str, float], colours: dict[str, str],
                  problems: int, by: str | None = None) -> Figure:
    """Performance profiles: per optimizer the fraction of tasks on which it reached the target
    within tau times the fastest optimizer in measure ``by`` (``profile.MEASURES``: steps by default),
    tau from 1 to the end of ``taus``; the legend gives each optimizer's score (normalised area under
    its profile), best first."""
    m = measure(by)
    fig = Figure(figsize=(9, 4.6), layout="constrained")
    ax = fig.subplots()
    for name in sorted(rho, key=lambda s: (-scores[s], s)):
        ax.step(taus, rho[name], where="post", color=colours[name], linewidth=1.8,
                label=f"{name} (score {scores[name]:.2f})")
    ax.set_xlim(taus[0], taus[-1])
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlabel(f"τ: {m.title} relative to the fewest on the task")
    ax.set_ylabel(f"tasks reached within τ (of {problems})")
    ax.grid(alpha=0.3)
    _legend(fig, ax)
    fig.suptitle(f"Performance profile: {m.title} over {problems} task(s) ({m.tag})\n"
                 f"score: area under the profile over τ in [1, {taus[-1]:g}] / {taus[-1] - 1:g}", fontsize=11)
    return fig
