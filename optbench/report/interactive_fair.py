"""The interactive report's fair-comparison charts as plotly figures: sensitivity to the swept
hyperparameters, tuning-budget curves, time to target and the performance profile (the static
ones are in ``charts``, ``budget_chart``; the styling and hover conventions in
``interactive_charts``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from optbench.metrics import Metric, metric as registry_metric
from optbench.report import fair
from optbench.report import profile as perf_profile
from optbench.report.charts import MAX_ROWS, log_scale, progress_text, shown
from optbench.report.interactive_charts import (DASHES, MARKERS, axis_kind, esc, layout, rgba,
                                                value_text, variants)


def sensitivity(sweeps: list[fair.Sensitivity], names: list[str], colours: dict[str, str], title: str,
                metric: Metric, labels: dict[str, str]) -> go.Figure:
    """One panel per swept hyperparameter: the best validation value at each value (line), every
    candidate (faint dots: label, seeds, status, value) and a ring on the chosen value.
    ``labels``: spec hash -> the label its records stored."""
    keys = sorted({k for s in sweeps for k in s.curves})
    fig = make_subplots(rows=1, cols=len(keys), shared_yaxes=True, horizontal_spacing=0.06, subplot_titles=keys)
    values: list[float] = []
    seen: dict[str, int] = {}
    for s, name in zip(sweeps, names):
        optimizer = s.choice.optimizer
        colour = colours[optimizer]
        variant = seen.setdefault(optimizer, 0)
        seen[optimizer] += 1
        for col, key in enumerate(keys, start=1):
            points = s.curves.get(key)
            if not points:
                continue
            done = [p for p in points if p.metric is not None]
            values += [p.metric for p in done]
            fig.add_trace(go.Scatter(
                x=[p.value for p in done], y=[p.metric for p in done], mode="lines+markers", name=name,
                legendgroup=name, showlegend=col == 1, meta=optimizer, hovertemplate="%{text}<extra></extra>",
                text=[f"<b>{esc(name)}</b><br>{key}={p.value:g}: best {metric.title} {metric.format(p.metric)}"
                      + (" (chosen)" if p.chosen else "") for p in done],
                line={"color": colour, "dash": DASHES[variant % len(DASHES)], "width": 2}, marker={"size": 6}),
                row=1, col=col)
            cands = [c for c in s.choice.candidates if c.value is not None and isinstance(c.spec.hparams.get(key), (int, float))]
            if cands:
                fig.add_trace(go.Scatter(
                    x=[float(c.spec.hparams[key]) for c in cands], y=[c.value for c in cands], mode="markers",
                    name=name, legendgroup=name, showlegend=False, meta=optimizer,
                    marker={"color": colour, "size": 9, "opacity": 0.3}, hovertemplate="%{text}<extra></extra>",
                    text=[f"<b>{esc(labels.get(c.spec.spec_hash(), c.spec.optimizer))}</b><br>seed {c.spec.seed}"
                          + (f" (+{len(c.values) - 1} more)" if len(c.values) > 1 else "")
                          + f" · {c.status}<br>{metric.title}: {metric.format(c.value)}" for c in cands]),
                    row=1, col=col)
            chosen = [p for p in done if p.chosen]
            if chosen:
                fig.add_trace(go.Scatter(
                    x=[p.value for p in chosen], y=[p.metric for p in chosen], mode="markers", name=name,
                    legendgroup=name, showlegend=False, meta=optimizer, hoverinfo="skip",
                    marker={"symbol": "circle-open", "size": 18, "color": colour, "line": {"width": 2.5}}),
                    row=1, col=col)
            failed = [p for p in points if p.metric is None]
            for p in failed:
                fig.add_annotation(x=math.log10(p.value) if p.value > 0 else p.value, y=1, yref="y domain",
                                   xref=f"x{'' if col == 1 else col}", text="✕", showarrow=False,
                                   font={"color": colour, "size": 14},
                                   hovertext=f"{name}: every candidate with {key}={p.value:g} diverged or failed")
    for col, key in enumerate(keys, start=1):
        all_values = [p.value for s in sweeps for p in s.curves.get(key, [])]
        log = bool(all_values) and min(all_values) > 0
        fig.update_xaxes(type="log" if log else "linear", title_text=key + (" (log scale)" if log else ""),
                         exponentformat="power", row=1, col=col)
    if metric.unit == "fraction":
        fig.update_yaxes(tickformat=".0%", rangemode="tozero", title_text=f"final {metric.title}", row=1, col=1)
    else:
        axis = axis_kind(values)
        fig.update_yaxes(type=axis["type"], title_text=f"final {metric.title} ({metric.unit}){axis['note']}",
                         row=1, col=1)
    return layout(fig, f"{title}: sensitivity on the validation split<br><sup>line: best candidate at each value; "
                        "faint dots: every candidate; ring: chosen value; ✕ on top: every candidate diverged</sup>", 440)


def budget(curves_list: list[Any], colours: dict[str, str], title: str) -> go.Figure:
    """Tuning-budget curves (``budget.BudgetCurve``): the expected best validation score after n
    trials with its bootstrap 95% band, one line per optimizer."""
    fig = go.Figure()
    metric_titles = set()
    for c in curves_list:
        n = np.arange(1, len(c.expected) + 1)
        colour = colours.get(c.optimizer, "#555555")
        name = getattr(c, "name", "") or c.optimizer
        metric = _metric_or_none(c.metric)
        metric_titles.add(metric.title if metric else c.metric)
        fig.add_trace(go.Scatter(
            x=np.concatenate([n, n[::-1]]), y=_finite(np.concatenate([np.asarray(c.high, float), np.asarray(c.low, float)[::-1]])),
            fill="toself", mode="lines", line={"width": 0}, fillcolor=rgba(colour, 0.15), hoverinfo="skip",
            showlegend=False, name=name, legendgroup=name, meta=c.optimizer))
        fig.add_trace(go.Scatter(
            x=n, y=_finite(c.expected), mode="lines+markers", name=name, legendgroup=name, meta=c.optimizer,
            line={"color": colour, "width": 2}, marker={"size": 5}, hovertemplate="%{text}<extra></extra>",
            text=[f"<b>{esc(name)}</b><br>{k} trial(s): expected best {_plain(e, metric)} (95% band {_plain(lo, metric)} to "
                  f"{_plain(hi, metric)})"
                  for k, e, lo, hi in zip(n, c.expected, c.low, c.high)]))
    better = "higher" if curves_list and curves_list[0].higher_is_better else "lower"
    longest = max((len(c.expected) for c in curves_list), default=1)
    fig.update_xaxes(title_text="tuning trials (n)", range=[0.8, longest + 0.2], dtick=1 if longest <= 20 else None)
    fig.update_yaxes(title_text=f"expected best {', '.join(sorted(metric_titles))} ({better} is better)")
    return layout(fig, f"{title}: tuning budget<br><sup>line: expected best validation score after n trials; "
                        "band: bootstrap 95% interval</sup>", 420)


def _finite(values: Any) -> list[float | None]:
    """Values with the non-finite ones as gaps (None: JSON null), e.g. an expected best of +inf
    while every trial so far could have diverged."""
    return [float(v) if v is not None and math.isfinite(v) else None for v in values]


def _plain(value: float, metric: Metric | None) -> str:
    if not math.isfinite(value):
        return "none yet (every trial could have diverged)"
    return metric.format(value) if metric is not None else f"{value:.4g}"


def _metric_or_none(name: str) -> Metric | None:
    try:
        return registry_metric(name)
    except Exception:  # a metric this optbench does not register: shown as a plain number
        return None


STEP_COST = registry_metric("step_cost")


def time_to_target(rows: pd.DataFrame, colours: dict[str, str], title: str, target: str,
                   by: str | None = None) -> go.Figure:
    """A dot per test cell at its median to reach ``target`` in measure ``by`` (``profile.MEASURES``:
    steps by default); the hover gives its steps, epoch and seconds and how many seeds got there; a
    cell whose median run never did (or without a value of the measure) gets a note instead."""
    m = perf_profile.measure(by)
    rows, note = shown(rows, MAX_ROWS)
    k = len(rows)
    y = np.arange(k)[::-1].astype(float)
    fig = go.Figure()
    values = rows[m.column].to_numpy(dtype=float)
    for i, ((_, row), variant) in enumerate(zip(rows.iterrows(), variants(rows))):
        seeds = f"{row['reached']} of {row['runs']} seeds reached it"
        if not (math.isfinite(row[m.column]) and row[m.column] > 0):
            missing = "not measured" if math.isfinite(row["seconds"]) else "not reached"
            fig.add_annotation(x=0.02, xref="x domain", y=y[i], text=f"{missing} ({seeds})", showarrow=False,
                               xanchor="left", font={"color": "#B00000", "size": 11})
            continue
        fig.add_trace(go.Scatter(
            x=[row[m.column]], y=[y[i]], mode="markers", name=row["name"], meta=row["optimizer"],
            marker={"color": colours[row["optimizer"]], "size": 11, "symbol": MARKERS[variant % len(MARKERS)]},
            hovertemplate="%{text}<extra></extra>",
            text=[f"<b>{esc(row['name'])}</b><br>{esc(progress_text(row, m))} to {target}"
                  f"<br>step cost {value_text(row['step_cost'], STEP_COST)}<br>{seeds}"]))
    finite = values[np.isfinite(values) & (values > 0)]
    log, spread = log_scale(finite)
    fig.update_xaxes(type="log" if log else "linear", range=None if log else [0, float(finite.max()) * 1.15]
                     if len(finite) else None, title_text=f"median {m.title}" + (f" (log scale: the values span {spread:,.0f}x)" if log else ""))
    fig.update_yaxes(tickvals=list(y), ticktext=list(rows["name"]), range=[-0.7, k - 0.3])
    return layout(fig, f"{title}: time to target {target} (test split), in {m.title.removesuffix(' to target')}"
                  + (f"<br><sup>{note}</sup>" if note else "")
                   + "<br><sup>dot: median over seeds, a seed that never reached it counting as infinitely slow</sup>",
                   170 + 40 * k)


def profile(prof: fair.Profile, colours: dict[str, str]) -> go.Figure:
    """Performance profiles (``profile.profile``): per optimizer the fraction of tasks reached within
    tau times the fewest in the profile's measure (``prof.by``), with its score in the legend, best first."""
    m = prof.by
    taus = perf_profile.tau_grid()
    rho = perf_profile.profile(prof.times, taus)
    fig = go.Figure()
    for name in sorted(rho, key=lambda s: (-prof.scores[s], s)):
        fig.add_trace(go.Scatter(
            x=taus, y=rho[name], mode="lines", line={"shape": "hv", "color": colours.get(name, "#555"), "width": 2},
            name=f"{name} (score {prof.scores[name]:.2f})", meta=name,
            hovertemplate=f"<b>{esc(name)}</b><br>τ=%{{x:.2f}}: %{{y:.0%}} of tasks<extra></extra>"))
    fig.update_xaxes(title_text=f"τ: {m.title} relative to the fewest on the task", range=[taus[0], taus[-1]])
    fig.update_yaxes(title_text=f"tasks reached within τ (of {len(prof.problems)})", tickformat=".0%", range=[-0.03, 1.03])
    return layout(fig, f"Performance profile: {m.title} over {len(prof.problems)} task(s) "
                       f"({m.tag})<br><sup>score: area "
                        f"under the profile over τ in [1, {taus[-1]:g}] / {taus[-1] - 1:g}</sup>", 420)

