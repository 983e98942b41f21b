"""The report's tuning-budget chart (``budget.BudgetCurve`` per sweep of one comparable group),
drawn with matplotlib's object API like ``charts``: x = trials n (1..N), y = the expected best
validation score after n trials, a line per sweep in its optimizer's colour with its bootstrap 95%
band shaded. The y axis follows the report's rule (``charts.log_scale``: log where the values span
more than ``LOG_SPREAD`` times, said in the label; an accuracy in percent). Points where n trials
could all have failed (an infinitely bad expected best) are not drawn; the legend says how many
trials failed."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from optbench.metrics import Metric
from optbench.report.budget import BudgetCurve
from optbench.report.charts import LINE_STYLES, MARKER_MAX_POINTS, _legend, _log_ticks, log_scale

BAND_ALPHA = 0.15
# A positive error's axis ends at this many times the worst full-budget value (``_visible``).
CUT_FACTOR = 10.0


def budget_chart(curves: list[BudgetCurve], colours: dict[str, str], title: str, metric: Metric) -> Figure:
    """One panel: the expected best ``metric`` (validation) against the number of trials, per sweep."""
    fig = Figure(figsize=(9.5, 4.8), layout="constrained")
    ax = fig.subplots()
    percent = metric.unit == "fraction"
    seen: dict[str, int] = {}
    values = []
    bands = []
    for curve in curves:
        n = np.arange(1, curve.trials + 1)
        mean, low, high = (np.asarray(v, dtype=float) for v in (curve.expected, curve.low, curve.high))
        ok = np.isfinite(mean)
        colour = colours[curve.optimizer]
        style = LINE_STYLES[seen.setdefault(curve.optimizer, 0) % len(LINE_STYLES)]
        seen[curve.optimizer] += 1
        failed = f", {curve.failed} failed" if curve.failed else ""
        label = f"{curve.name or curve.optimizer} ({curve.trials} trials{failed})"
        ax.plot(n[ok], mean[ok], color=colour, linestyle=style, linewidth=1.9, label=label,
                marker="o" if curve.trials <= MARKER_MAX_POINTS else None, markersize=3.5)
        both = np.isfinite(low) & np.isfinite(high)
        values += [*mean[ok], *low[both], *high[both]]
        bands.append((n, low, high, colour))
    values, cut = _visible(np.asarray(values, dtype=float), curves, metric)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    most = max((c.trials for c in curves), default=1)
    ax.set_xlim(0.7, most + 0.3)
    ax.set_xlabel("trials n (hyperparameter settings tried, drawn at random without replacement)")
    label = f"expected best {metric.title}" + ("" if percent else f" ({metric.unit})" if metric.unit else "")
    log, spread = log_scale(values)
    if percent:  # from 0%, as the accuracy chart: a failed trial scores 0
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.set_ylabel(f"{label} (%)")
        ax.set_ylim(0, min(1.0, float(values.max()) * 1.06) if len(values) else 1.0)
    elif log:
        ax.set_yscale("log")
        ax.set_ylabel(f"{label}\n(log scale: the values span {spread:,.0f}x)")
        lo, hi = ax.get_ylim()
        if 0 < lo < hi:
            _log_ticks(ax.yaxis, lo, hi)
    else:
        ax.set_ylabel(label)
    if len(values) and not percent:
        lo, hi = float(values.min()), float(values.max())
        pad = (hi / lo) ** 0.05 if log else None
        ax.set_ylim(*((lo / pad, hi * pad) if log else (lo - 0.05 * (hi - lo or abs(hi) or 1), hi + 0.05 * (hi - lo or abs(hi) or 1))))
    bottom, top = ax.get_ylim()
    for n, low, high, colour in bands:  # an end off the axis (infinite: every trial may have failed) at its edge
        some = np.isfinite(low) | np.isfinite(high)
        ax.fill_between(n[some], np.clip(low[some], bottom, top), np.clip(high[some], bottom, top), color=colour,
                        alpha=BAND_ALPHA, linewidth=0)
    ax.set_ylim(bottom, top)
    ax.grid(which="major", alpha=0.35)
    ax.grid(which="minor", alpha=0.12)
    _legend(fig, ax)
    better = "higher" if metric.higher_is_better else "lower"
    fig.suptitle(f"{title}: tuning budget, expected best {metric.title} after n trials ({better} is better)\n"
                 "line: exact expectation over the trials run; band: bootstrap 95%"
                 + (f"\nlines from above the top: worse than {CUT_FACTOR:g}x the worst full-budget value" if cut else ""),
                 fontsize=11)
    return fig


def _visible(values: np.ndarray, curves: list[BudgetCurve], metric: Metric) -> tuple[np.ndarray, bool]:
    """The values the y axis spans, and whether some were left above it: for a positive error
    (lower is better) those up to ``CUT_FACTOR`` times the worst curve's full-budget value, so that one
    wild trial (an RMSE of 1e15 that did not count as diverged) does not flatten every curve."""
    ends = np.array([c.expected[-1] for c in curves if c.expected], dtype=float)
    ends = ends[np.isfinite(ends)]
    if metric.higher_is_better or len(ends) == 0 or ends.min() <= 0 or len(values) == 0:
        return values, False
    keep = values <= CUT_FACTOR * ends.max()
    return values[keep], bool((~keep).any())
