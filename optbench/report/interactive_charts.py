"""The interactive report's charts as plotly figures (``optbench.report.interactive`` lays them out;
the fair-comparison ones, sensitivity, tuning budget, time to target and profile, are in
``interactive_fair``, with the styling and hover conventions set here).

Each function draws what the static chart of the same name draws (``charts``, ``bars``), from the
same aggregates (``aggregate.cell_stats``, ``curve_stats``) and in the same colours
(``colours.colour_map``: one per optimizer name), so the two reports never disagree:

- ``comparison``: per cell a dot at the mean over seeds, a whisker over the 95% interval of the
  mean, and each seed as a faint dot; runtime left, the task's main metric right.
- ``bars``: runtime (linear, from 0) and the main error (log axis, every bar from the decade floor).
- ``curves``: training loss and the test metric per epoch, mean over seeds with a min-max band;
  buttons switch the x axis between training time and epochs.

Every trace carries its optimizer's name in ``meta`` (the page's optimizer filter hides by it) and
every point a hover text: the cell's label (optimizer and hyperparameters), seed, status and value.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from optbench.metrics import Metric, metric as registry_metric
from optbench.report.bars import Panel, as_error, decade_floor, error_panel, runtime_panel
from optbench.report.charts import MAX_LINES, MAX_ROWS, SEED_ALPHA, SEED_BAND, log_scale, shown
from optbench.report.tables import status_text

FONT = {"family": 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', "size": 12, "color": "#222"}
MARKERS = ["circle", "square", "triangle-up", "diamond"]
DASHES = ["solid", "dash", "dot", "dashdot"]
REFERENCE_DASHES = ["dash", "dot", "dashdot"]
SECONDS = registry_metric("train_seconds")


def layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    # No plotly template (loading one costs a tenth of a second per figure): white, light grid, set here.
    fig.update_layout(template=None, paper_bgcolor="white", plot_bgcolor="white", font=FONT, height=height,
                      hovermode="closest",
                      title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
                      margin={"l": 10, "r": 10, "t": 70, "b": 50}, legend={"tracegroupgap": 2},
                      hoverlabel={"align": "left"})
    for update in (fig.update_xaxes, fig.update_yaxes):
        update(automargin=True, showline=True, linecolor="#999", zeroline=False, showgrid=True, gridcolor="#ebebeb",
               ticks="outside", tickcolor="#999")
    return fig


def esc(text: str) -> str:
    """A label as hover text: plotly reads hover text as HTML-like markup, so ``<`` and ``&`` are escaped."""
    return html.escape(str(text), quote=False)


def rgba(colour: str, alpha: float) -> str:
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def variants(cells: pd.DataFrame) -> list[int]:
    """0 for the first cell of each optimizer, 1 for the second, ...: picks the marker or dash."""
    return cells.groupby("optimizer", sort=False).cumcount().tolist()


def value_text(value: float, metric: Metric) -> str:
    return metric.format(value) + (" s" if metric.unit == "s" else "")


def _interval(low: float, high: float, metric: Metric) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval (one seed)"
    return f"95% CI {value_text(low, metric)} to {value_text(high, metric)}"


def axis_kind(values: Sequence[float]) -> dict[str, Any]:
    """A log axis where the values span more than ``LOG_SPREAD`` times (said in the title), else linear."""
    log, spread = log_scale(values)
    return {"type": "log", "note": f" (log scale: the values span {spread:,.0f}x)"} if log else {"type": "linear", "note": ""}


def _references(fig: go.Figure, references: Sequence[tuple[Metric, float]], col: int, span: tuple[float, float],
                shown_as=None) -> list[float]:
    """Reference values (least-squares optimum, noise floor, chance) as grey vertical lines over the
    rows (``span``: y from, to), named in the legend; ``shown_as`` maps a value to the axis (an accuracy
    to an error). Returns the values drawn, which the axis must hold."""
    drawn = []
    for (ref, value), dash in zip(references, REFERENCE_DASHES):
        x = shown_as(value) if shown_as else value
        drawn.append(x)
        text = f"{ref.title}: {ref.format(value)}"
        fig.add_trace(go.Scatter(x=[x, x], y=list(span), mode="lines", name=text, legendgroup=text,
                                 line={"color": "#555", "dash": dash, "width": 1.3}, hovertemplate=f"{text}<extra></extra>"),
                      row=1, col=col)
    return drawn


# --- comparison ------------------------------------------------------------------------------------

def comparison(cells: pd.DataFrame, runs: pd.DataFrame, colours: dict[str, str], title: str, main: Metric,
               references: Sequence[tuple[Metric, float]] = ()) -> go.Figure:
    """Dots at the means with 95% whiskers and every seed as a faint dot: runtime left, ``main`` right.
    ``runs``: the records of the cells' task and dataset (``status``, ``seed`` and the metrics)."""
    cells, note = shown(cells, MAX_ROWS)
    k = len(cells)
    runtime = SECONDS
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=("runtime (training seconds)", main.title))
    y = np.arange(k)[::-1].astype(float)
    span = (-0.7, k - 0.3)
    by_cell = {h: part for h, part in runs.groupby("cell_hash", sort=False)}
    for col, m in ((1, runtime), (2, main)):
        values: list[float] = _references(fig, references, col, span) if m is main else []
        for i, ((_, cell), variant) in enumerate(zip(cells.iterrows(), variants(cells))):
            name, optimizer = cell["name"], cell["optimizer"]
            colour = colours[optimizer]
            mean, low, high = (float(cell[f"{m.name}_{s}"]) for s in ("mean", "ci95_low", "ci95_high"))
            seeds = by_cell.get(cell["cell_hash"], runs.iloc[:0])
            seeds = seeds.sort_values("seed") if len(seeds) else seeds
            seed_x = pd.to_numeric(seeds[m.name], errors="coerce") if m.name in seeds else pd.Series(dtype=float)
            ok = seed_x.notna().to_numpy() & np.isfinite(seed_x.to_numpy(dtype=float))
            if ok.any():
                xs = seed_x.to_numpy(dtype=float)[ok]
                values += list(xs)
                offsets = np.linspace(-SEED_BAND[0], -SEED_BAND[1], len(xs)) if len(xs) > 1 else [-0.24]
                fig.add_trace(go.Scatter(
                    x=xs, y=y[i] + np.asarray(offsets), mode="markers", name=name, legendgroup=name, showlegend=False,
                    marker={"color": colour, "size": 7, "opacity": SEED_ALPHA + 0.15}, meta=optimizer,
                    hovertemplate="%{text}<extra></extra>",
                    text=[f"<b>{esc(name)}</b><br>seed {s} · {st}<br>{m.title}: {value_text(v, m)}"
                          for s, st, v in zip(seeds["seed"][ok], seeds["status"][ok], xs)]), row=1, col=col)
            if not math.isfinite(mean):
                fig.add_annotation(x=0.02, xref=f"x{'' if col == 1 else col} domain", y=y[i], yref="y",
                                   text=f"no ok run ({status_text(cell)})", showarrow=False, xanchor="left",
                                   font={"color": "#B00000", "size": 11})
                continue
            values.append(mean)
            whisker = None
            if math.isfinite(low) and math.isfinite(high):
                # A non-negative quantity's interval is cut at zero, a fraction's at 100% (as ``charts``).
                low = max(low, 0.0) if mean >= 0 and min(values) >= 0 else low
                high = min(high, 1.0) if m.unit == "fraction" else high
                if m.unit == "fraction":  # a bounded interval: the axis holds all of it
                    values += [low, high]
                whisker = {"type": "data", "symmetric": False, "array": [high - mean], "arrayminus": [mean - low],
                           "color": colour, "thickness": 1.8, "width": 6}
            text = (f"<b>{esc(name)}</b><br>{m.title}: mean {value_text(mean, m)}, {_interval(low, high, m)}"
                    f"<br>{int(cell['n'])} ok of {int(cell['runs'])} run(s), seeds "
                    f"{', '.join(map(str, cell['seeds']))}<br>status: {status_text(cell)}")
            fig.add_trace(go.Scatter(
                x=[mean], y=[y[i]], mode="markers", name=name, legendgroup=name, showlegend=col == 1, meta=optimizer,
                error_x=whisker, marker={"color": colour, "size": 11, "symbol": MARKERS[variant % len(MARKERS)],
                                         "line": {"color": "white", "width": 1}},
                hovertemplate="%{text}<extra></extra>", text=[text]), row=1, col=col)
        axis = axis_kind(values)
        fig.update_xaxes(type=axis["type"], title_text=f"{m.title} ({'%' if m.unit == 'fraction' else m.unit})"
                         + axis["note"], range=_range(values, axis["type"] == "log"), row=1, col=col)
        if m.unit == "fraction":
            fig.update_xaxes(tickformat=".0%", row=1, col=col)
    fig.update_yaxes(tickvals=list(y), ticktext=list(cells["name"]), range=list(span), row=1, col=1)
    return layout(fig, f"{title}: runtime and {main.title} per optimizer"
                   + (f"<br><sup>{note}</sup>" if note else "")
                   + "<br><sup>dot: mean over seeds; whisker: 95% confidence interval of the mean; faint dots: one "
                     "seed each</sup>", 190 + 46 * k)


def _range(values: Sequence[float], log: bool) -> list[float] | None:
    """A value axis over the means, seeds and references (whiskers longer than that run off it, as in
    ``charts``: the hover gives their ends): from zero for non-negative values, log from a little
    below the smallest."""
    v = np.asarray([x for x in values if math.isfinite(x) and (x > 0 or not log)], dtype=float)
    if not len(v):
        return None
    if log:
        return [math.log10(v.min() / 1.4), math.log10(v.max() * 1.4)]
    lo, hi = min(0.0, float(v.min())), float(v.max())
    pad = 0.06 * (hi - lo or 1.0)
    return [lo - (pad if lo < 0 else 0), hi + pad]


# --- bars ------------------------------------------------------------------------------------------

def bars(cells: pd.DataFrame, colours: dict[str, str], title: str, main: Metric,
         references: Sequence[tuple[Metric, float]] = ()) -> go.Figure:
    """Runtime bars (linear, from 0) and main-error bars (log axis, every bar from the decade floor,
    as ``bars.bar_chart``), each with its 95% interval."""
    cells, note = shown(cells, MAX_ROWS)
    k = len(cells)
    runtime, error = runtime_panel(cells), error_panel(cells, main)
    if error.percent:  # an error is at most 100%, however wide the accuracy's interval
        error = replace(error, high=np.minimum(error.high, 1.0))
    refs = [(m, 1 - v if error.percent else v) for m, v in references]
    shared = cells["runtime_shared"].to_numpy(dtype=bool) if "runtime_shared" in cells else np.zeros(k, bool)
    ok = np.isfinite(error.mean) & (error.mean > 0)
    floor = decade_floor(np.concatenate([error.mean[ok], error.low[np.isfinite(error.low) & (error.low > 0)],
                                         np.asarray([v for _, v in refs], dtype=float)]))
    unit = "" if error.percent else f" ({error.unit})"
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06, subplot_titles=(
        "runtime (training seconds), linear: bars start at 0",
        f"{error.title}{unit}, log scale: bars start at {_panel_text(floor, error)}"))
    y = np.arange(k)[::-1].astype(float)
    _references(fig, [(as_error(m), v) for m, v in refs] if error.percent else refs, 2, (-0.7, k - 0.3))
    for col, panel, base in ((1, runtime, 0.0), (2, error, floor)):
        for i, ((_, cell), variant) in enumerate(zip(cells.iterrows(), variants(cells))):
            name, optimizer = cell["name"], cell["optimizer"]
            mean = float(panel.mean[i])
            if not math.isfinite(mean) or (col == 2 and mean <= 0):
                fig.add_annotation(x=0.02, xref=f"x{'' if col == 1 else col} domain", y=y[i], yref="y",
                                   text=f"no ok run ({status_text(cell)})" if cell["n"] == 0 else "no value",
                                   showarrow=False, xanchor="left", font={"color": "#B00000", "size": 11})
                continue
            is_shared = bool(shared[i]) and col == 1
            low, high = (math.nan, math.nan) if is_shared else (float(panel.low[i]), float(panel.high[i]))
            hover = (f"<b>{esc(name)}</b><br>{panel.title}: mean {_panel_text(mean, panel)}"
                     + (" (a vectorized group's seconds per replica: no interval)" if is_shared else
                        (f", 95% CI {_panel_text(low, panel)} to {_panel_text(high, panel)}"
                         if math.isfinite(low) and math.isfinite(high) else ", no interval (one seed)"))
                     + f"<br>{int(cell['n'])} ok of {int(cell['runs'])} run(s); status: {status_text(cell)}")
            pattern = "/" if is_shared else ["", ".", "x", "\\"][variant % 4]
            fig.add_trace(go.Bar(
                x=[mean - base], base=[base], y=[y[i]], orientation="h", name=name, legendgroup=name,
                showlegend=col == 1, meta=optimizer, width=0.62, hovertemplate="%{text}<extra></extra>", text=[hover],
                textposition="none", marker={"color": colours[optimizer], "pattern": {"shape": pattern}}),
                row=1, col=col)
            if math.isfinite(low) and math.isfinite(high):
                lo = max(low, base)  # an interval reaching below the floor (or zero seconds) ends there
                fig.add_trace(go.Scatter(
                    x=[mean], y=[y[i]], mode="markers", marker={"size": 1, "opacity": 0}, showlegend=False,
                    legendgroup=name, name=name, meta=optimizer, hoverinfo="skip",
                    error_x={"type": "data", "symmetric": False, "array": [high - mean], "arrayminus": [mean - lo],
                             "color": "#333", "thickness": 1.4, "width": 5}), row=1, col=col)
    fig.update_xaxes(rangemode="tozero", title_text="training seconds", row=1, col=1)
    tops = [v for v in np.concatenate([error.mean[ok], error.high[np.isfinite(error.high)]]) if v > 0]
    top = max(tops + [v for _, v in refs] + [floor * 10])
    fig.update_xaxes(type="log", range=[math.log10(floor), math.log10(top * 1.6)],
                     title_text=f"{error.title}{unit}", row=1, col=2)
    if error.percent:
        fig.update_xaxes(tickformat=".2~%", row=1, col=2)
    fig.update_xaxes(dtick="D2", row=1, col=2)  # 1, 2, 5 per decade: every label readable
    fig.update_yaxes(tickvals=list(y), ticktext=list(cells["name"]), range=[-0.7, k - 0.3], row=1, col=1)
    fig.update_layout(barmode="overlay")
    return layout(fig, f"{title}: runtime and {error.title.split(' (')[0]} per optimizer (bars)"
                   + (f"<br><sup>{note}</sup>" if note else "")
                   + "<br><sup>bar: mean over seeds; error bar: 95% confidence interval of the mean</sup>",
                   190 + 46 * k)


def _panel_text(value: float, panel: Panel) -> str:
    if panel.percent:
        return f"{value * 100:.3g}%"
    return f"{value:,.4g}" + (" s" if panel.name == "runtime" else "")


# --- curves ----------------------------------------------------------------------------------------

# The x axes the curves chart switches between: (curve column, axis title, button label).
X_AXES = (("time_s", "training time (s)", "x: training time"), ("epoch", "epoch", "x: epochs"))


def curves(cells: pd.DataFrame, curves_frame: pd.DataFrame, colours: dict[str, str], title: str, loss_label: str,
           main: Metric) -> go.Figure:
    """Training loss (left) and the test metric (right, where the runs recorded one) per epoch: mean
    over seeds with a min-max band; buttons switch the x axis between training time and epochs."""
    cells, note = shown(cells, MAX_LINES)
    curves_frame = curves_frame[curves_frame["name"].isin(cells["name"])]
    fields = [("train_loss", loss_label)]
    if curves_frame["test_metric_mean"].notna().any():
        fields.append(("test_metric", main.title))
    fig = make_subplots(rows=1, cols=len(fields), horizontal_spacing=0.08, subplot_titles=[t for _, t in fields])
    xs: dict[str, list[Any]] = {x: [] for x, _, _ in X_AXES}
    by_name = {name: part.sort_values("epoch") for name, part in curves_frame.groupby("name", sort=False)}
    for col, (field, label) in enumerate(fields, start=1):
        values: list[float] = []
        for (_, cell), variant in zip(cells.iterrows(), variants(cells)):
            name, optimizer = cell["name"], cell["optimizer"]
            c = by_name.get(name)
            if c is None or c[f"{field}_mean"].isna().all():
                continue
            colour = colours[optimizer]
            mean, lo, hi = (c[f"{field}_{s}"].to_numpy(dtype=float) for s in ("mean", "min", "max"))
            values += [v for v in np.concatenate([lo, hi]) if math.isfinite(v)]
            if (c["n"] > 1).any():
                for x, _, _ in X_AXES:
                    xv = c[x].to_numpy(dtype=float)
                    xs[x].append(np.concatenate([xv, xv[::-1]]))
                fig.add_trace(go.Scatter(
                    x=xs["time_s"][-1], y=np.concatenate([hi, lo[::-1]]), fill="toself", mode="lines",
                    line={"width": 0}, fillcolor=rgba(colour, 0.15), hoverinfo="skip", showlegend=False,
                    name=name, legendgroup=name, meta=optimizer), row=1, col=col)
            for x, _, _ in X_AXES:
                xs[x].append(c[x].to_numpy(dtype=float))
            metric = main if field == "test_metric" else None
            text = [f"<b>{esc(name)}</b><br>epoch {int(e)} · {t:.3g} s of training<br>{label}: "
                    f"{_curve_value(m, metric)} (mean of {int(n)} seed(s); min {_curve_value(a, metric)}, "
                    f"max {_curve_value(b, metric)})<br>status: {status_text(cell)}"
                    for e, t, m, n, a, b in zip(c["epoch"], c["time_s"], mean, c["n"], lo, hi)]
            fig.add_trace(go.Scatter(
                x=xs["time_s"][-1], y=mean, mode="lines+markers" if len(c) <= 25 else "lines", name=name,
                legendgroup=name, showlegend=col == 1, meta=optimizer, text=text, hovertemplate="%{text}<extra></extra>",
                line={"color": colour, "width": 2, "dash": DASHES[variant % len(DASHES)]},
                marker={"size": 5, "symbol": MARKERS[variant % len(MARKERS)]}), row=1, col=col)
        axis = axis_kind(values) if not (field == "test_metric" and main.unit == "fraction") else \
            {"type": "linear", "note": ""}
        fig.update_yaxes(type=axis["type"], title_text=label + axis["note"], row=1, col=col)
        if field == "test_metric" and main.unit == "fraction":
            fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=1, col=col)
        elif axis["type"] == "linear":
            fig.update_yaxes(rangemode="tozero", row=1, col=col)
    axes = ["xaxis"] + [f"xaxis{i}" for i in range(2, len(fields) + 1)]
    buttons = [{"label": button, "method": "update",  # plain lists: the page passes them to Plotly.update as they are
                "args": [{"x": [list(map(float, v)) for v in xs[x]]}, {f"{a}.title.text": axis_title for a in axes}]}
               for x, axis_title, button in X_AXES]
    fig.update_xaxes(title_text=X_AXES[0][1], rangemode="tozero")
    fig.update_layout(updatemenus=[{"type": "buttons", "direction": "right", "buttons": buttons, "active": 0,
                                    "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom", "pad": {"b": 24},
                                    "showactive": True, "font": {"size": 11}}])
    return layout(fig, f"{title}: convergence" + (f"<br><sup>{note}</sup>" if note else "")
                   + "<br><sup>line: mean over seeds; band: min-max across seeds</sup>", 460)


def _curve_value(value: float, metric: Metric | None) -> str:
    if not math.isfinite(value):
        return "-"
    return metric.format(value) if metric is not None else f"{value:.4g}"
