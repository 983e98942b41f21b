"""``optbench report --format html``: one self-contained interactive page.

The page holds the report's tables (click a header to sort; numbers sort as numbers), each
followed by the charts that illustrate it, as plotly figures (``interactive_charts``,
``interactive_fair``): hover a point for its seed, label (optimizer and hyperparameters), status
and value; click a legend entry to hide a series; switch the curves between training time and
epochs. A checkbox per optimizer
hides its series in every chart and its rows in every table. plotly.js is embedded once, inline,
so the file opens anywhere with no network; the figures are one JSON document in the page.

Nothing here computes a statistic: the figures read the report's cells, curves, sweeps, times to
target, profile and budget curves, the tables are the report's ``GroupTable`` texts.
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from optbench.report import fair
from optbench.report import interactive_charts as ic
from optbench.report import interactive_fair as ifair
from optbench.report.aggregate import main_metric, reference_values
from optbench.report.colours import colour_map
from optbench.report.naming import PROFILE_STEM, chart_prefix
from optbench.report.tables import GroupTable, Section, sweeps_by_group, validation_metric
from optbench.spec import SUCCESS
from optbench.tasks.catalog import TASKS

# The charts key of the profile table (``tables._profile_table``) and figure.
PROFILE_KEY = PROFILE_STEM.removesuffix("performance-profile")

STYLE = """
:root{--fg:#222;--muted:#555;--line:#ddd;--head:#f4f4f4}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;max-width:1280px;
color:var(--fg);padding:0 1rem}
h1{margin:.2rem 0 .6rem}h2{margin:2.2rem 0 .3rem;font-size:1.25rem}h3{font-size:1.05rem;margin:1.4rem 0 .3rem}
.context{color:var(--muted);font-size:.9rem;margin:.3rem 0}
#filter{position:sticky;top:0;z-index:10;background:#fffffff0;border:1px solid var(--line);border-radius:6px;
padding:.4rem .8rem;margin:.8rem 0;display:flex;flex-wrap:wrap;gap:.3rem 1rem;align-items:center;font-size:.92rem}
#filter .what{color:var(--muted)}
#filter label{display:inline-flex;align-items:center;gap:.35rem;cursor:pointer;white-space:nowrap}
.swatch{display:inline-block;width:.9rem;height:.9rem;border-radius:2px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.9rem}
th,td{padding:.3rem .55rem;border-bottom:1px solid var(--line);white-space:nowrap}
th{background:var(--head);text-align:left;cursor:pointer;user-select:none}
th:hover{background:#e8e8e8}
th::after{content:" \\2195";color:#aaa;font-size:.8em}
th[aria-sort=ascending]::after{content:" \\25B2";color:var(--fg)}
th[aria-sort=descending]::after{content:" \\25BC";color:var(--fg)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.warn td{background:#fff6e0}
tr[hidden]{display:none}
.caption{color:var(--muted);font-size:.88rem;margin:.2rem 0}
.note{color:#6a4a00;font-size:.88rem;margin:.2rem 0}
.chart{width:100%;border:1px solid #eee;border-radius:4px;margin:.6rem 0 1.2rem}
nav.toc{font-size:.9rem;columns:2;margin:.4rem 0 0}
nav.toc a{color:#0b5cad;text-decoration:none}
footer{color:var(--muted);font-size:.85rem;margin:2rem 0}
"""

# Sorting, the optimizer filter and drawing the figures; ``window.optbenchReady`` resolves to the
# number of charts drawn (the browser test waits on it).
SCRIPT = r"""
(function () {
  "use strict";
  var figures = JSON.parse(document.getElementById("optbench-figures").textContent);
  var config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"],
                toImageButtonOptions: {format: "png", scale: 2}};
  var hidden = new Set();
  var UNITS = {B: 1, KiB: 1024, MiB: 1048576, GiB: 1073741824};

  function visibility(div) {
    return div.data.map(function (t) {
      if (hidden.has(t.meta)) return false;
      return t.visible === "legendonly" ? "legendonly" : true;
    });
  }

  var drawn = Object.keys(figures).map(function (id) {
    var div = document.getElementById(id);
    var fig = figures[id];
    return Plotly.newPlot(div, fig.data, fig.layout, config);
  });
  window.optbenchReady = Promise.all(drawn).then(function () {
    document.body.setAttribute("data-charts-drawn", String(drawn.length));
    return drawn.length;
  });

  function applyFilter() {
    document.querySelectorAll("div.chart").forEach(function (div) {
      if (div.data) Plotly.restyle(div, {visible: visibility(div)});
    });
    document.querySelectorAll("tr[data-optimizer]").forEach(function (tr) {
      tr.hidden = hidden.has(tr.getAttribute("data-optimizer"));
    });
  }
  document.querySelectorAll("#filter input[type=checkbox]").forEach(function (box) {
    box.addEventListener("change", function () {
      if (box.checked) hidden.delete(box.value); else hidden.add(box.value);
      applyFilter();
    });
  });

  // The number a cell starts with ("1,469", "12.00 ± 2.0", "93.1%", "1.50 MiB"); NaN for "-", "never", text.
  function number(text) {
    var t = text.replace(/[\u26a0,]/g, "").trim();
    var m = t.match(/^([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*(B|KiB|MiB|GiB)?/i);
    if (!m) return NaN;
    return parseFloat(m[1]) * (m[2] ? UNITS[m[2]] || 1 : 1);
  }
  window.optbenchNumber = number;

  function sortBy(th) {
    var table = th.closest("table");
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.classList.contains("num");
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (row, i) {
      var text = row.cells[col] ? row.cells[col].textContent : "";
      return {row: row, i: i, text: text, value: numeric ? number(text) : NaN};
    });
    var sign = dir === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      if (numeric) {
        var an = isNaN(a.value), bn = isNaN(b.value);
        if (an || bn) return an === bn ? a.i - b.i : (an ? 1 : -1);  // no value: last either way
        if (a.value !== b.value) return sign * (a.value - b.value);
        return a.i - b.i;
      }
      return sign * a.text.localeCompare(b.text, undefined, {numeric: true}) || a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(th); } });
  });
})();
"""


def to_html(report: Any, context: Iterable[str]) -> str:
    """The page of ``report`` (``build.Report``: its sections, tables and cells); ``context``: the
    lines said under the heading (runs, experiments, machines, files skipped)."""
    e = html.escape
    colours = colour_map(report.cells["optimizer"]) if not report.cells.empty else {}
    figures = _figures(report.sections, colours)
    names = sorted(colours)
    body = ["<h1>optbench report</h1>", '<ul class="context">']
    body += [f"<li>{e(line)}</li>" for line in context]
    body.append(f"<li>generated {e(datetime.now(UTC).isoformat(timespec='seconds'))}; hover a point for its "
                "seed, hyperparameters, status and value; click a legend entry to hide it, a table header to sort"
                "</li></ul>")
    if names:
        body.append('<div id="filter" role="group" aria-label="optimizers shown"><span class="what">optimizers shown:</span>')
        body += [f'<label><input type="checkbox" value="{e(n)}" checked><span class="swatch" '
                 f'style="background:{colours[n]}"></span>{e(n)}</label>' for n in names]
        body.append("</div>")
    toc, parts = [], []
    ids = itertools.count()
    charts: dict[str, dict[str, Any]] = {}
    previous: tuple[str, str] | None = None
    for t in report.tables:
        key = (t.experiment, t.charts.rsplit("/", 1)[-1])
        if previous is not None and key != previous:  # the group's charts no table of it called for
            parts += _chart_divs(figures.pop(previous, []), charts, ids)
        previous = key
        anchor = f"t{next(ids)}"
        toc.append(f'<li><a href="#{anchor}">{e(t.title)}</a></li>')
        parts += _table(t, anchor, names)
        group = figures.get(key, [])
        if t.kind in SHOWN_AFTER.values():  # each chart right under the table it illustrates
            mine = [f for f in group if SHOWN_AFTER[f[0]] == t.kind]
            mine = mine[:1] if t.kind == "time_to_target" else mine  # one table, one chart per target
            figures[key] = [f for f in group if all(f is not m for m in mine)]
            parts += _chart_divs(mine, charts, ids)
    for rest in figures.values():  # charts of a group with no table of the kind (none today): at the end
        parts += _chart_divs(rest, charts, ids)
    body += ['<nav class="toc"><ul>', *toc, "</ul></nav>", *parts]
    body.append('<footer>optbench interactive report: plotly.js is embedded, so this file needs no network. '
                "The static charts (PNG, SVG, PDF) for papers: optbench report --format markdown --out DIR."
                "</footer>")
    blob = json.dumps(charts, separators=(",", ":")).replace("</", "<\\/")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>optbench report</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body)
            + f'\n<script type="application/json" id="optbench-figures">{blob}</script>\n'
            + f"<script>{get_plotlyjs()}</script>\n<script>{SCRIPT}</script>\n</body></html>\n")


# The table kind (``GroupTable.kind``) each chart kind is shown under, in its group.
SHOWN_AFTER = {"comparison": "cells", "bars": "cells", "curves": "cells", "sensitivity": "default_vs_tuned",
               "time-to-target": "time_to_target", "budget": "trials_needed", "profile": "profile"}
NUM = ' class="num"'


def _table(t: GroupTable, anchor: str, optimizers: list[str]) -> list[str]:
    e = html.escape
    out = [f'<h2 id="{anchor}">{e(t.title)}</h2>', f'<p class="caption">{e(t.caption)}</p>',
           f'<div class="scroll"><table class="sortable" data-kind="{e(t.kind)}"><thead><tr>']
    out += [f'<th scope="col"{NUM if num else ""}>{e(col)}</th>' for col, num in zip(t.columns, t.numeric)]
    out.append("</tr></thead><tbody>")
    for r, row in enumerate(t.rows):
        owner = optimizer_of(row[0], optimizers) if row else None
        attrs = (' class="warn"' if r in t.warnings else "") + (f' data-optimizer="{e(owner)}"' if owner else "")
        out.append(f"<tr{attrs}>")
        for c, text in enumerate(row):
            inner = f"<strong>{e(text)}</strong>" if (r, c) in t.best else e(text)
            if c == len(row) - 1 and r in t.warnings:
                inner = f"⚠ {inner}"
            out.append(f'<td{NUM if t.numeric[c] else ""}>{inner}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    out += [f'<p class="note">{e(note)}</p>' for note in t.notes]
    return out


def optimizer_of(name: str, optimizers: list[str]) -> str | None:
    """The optimizer a table row is about, from its first column (``sgd(lr=5)``, ``adam · cuda``,
    ``momentum · 5 ep``, ``adam``): the longest optimizer name it starts with, followed by nothing,
    ``(`` or a space; None for a row that names none."""
    hits = [n for n in optimizers if name == n or name.startswith((f"{n}(", f"{n} "))]
    return max(hits, key=len) if hits else None


def _chart_divs(figs: list[tuple[str, go.Figure]], charts: dict[str, dict[str, Any]], ids: Iterator[int]) -> list[str]:
    out = []
    for kind, fig in figs:
        chart_id = f"chart-{next(ids)}"
        charts[chart_id] = json.loads(fig.to_json())
        title = fig.layout.title.text.split("<br>")[0] if fig.layout.title.text else kind
        out.append(f'<div class="chart" id="{chart_id}" data-kind="{kind}" role="img" '
                   f'aria-label="{html.escape(title)}"></div>')
    return out


def _figures(sections: list[Section], colours: dict[str, str]) -> dict[tuple[str, str], list[tuple[str, go.Figure]]]:
    """Per (experiment, chart prefix of a comparable group) its figures, in the order the static
    report draws them (``build.chart_jobs``): comparison, bars, curves, sensitivity, tuning budget,
    time to target; per experiment the performance profile (key ``PROFILE_KEY``)."""
    out: dict[tuple[str, str], list[tuple[str, go.Figure]]] = {}
    for section in sections:
        if section.cells.empty:
            continue
        sweeps_of = sweeps_by_group(section)
        labels = dict(zip(section.runs["spec_hash"], section.runs["label"]))
        for (task, dataset, budget), group in section.cells.groupby(["task", "dataset", "budget"], sort=False):
            stem = group["charts"].iloc[0]
            figs = out.setdefault((section.experiment, stem), [])
            main = main_metric(task, section.runs)
            title = f"{task} on {dataset}" + (f", {budget}" if stem != chart_prefix(task, dataset) else "")
            runs = section.runs[(section.runs["task"] == task) & (section.runs["dataset"] == dataset)]
            tested = group[group["split"] != "validation"] if "split" in group else group
            if not tested.empty:
                refs = reference_values(runs, main.name)
                figs.append(("comparison", ic.comparison(tested, runs[runs["status"].isin(SUCCESS)], colours, title,
                                                         main, refs)))
                figs.append(("bars", ic.bars(tested, colours, title, main, refs)))
                curves = section.curves[(section.curves["task"] == task) & (section.curves["dataset"] == dataset)
                                        & (section.curves["budget"] == budget)
                                        & section.curves["name"].isin(tested["name"])]
                if not curves.empty:
                    cross_entropy = main.unit == "fraction" or (task in TASKS and TASKS[task].kind == "classification")
                    loss = "training loss, cross-entropy" if cross_entropy else "training loss, MSE on standardised target"
                    figs.append(("curves", ic.curves(tested, curves, colours, title, loss, main)))
            choices = sweeps_of.get((task, dataset, budget), [])
            sweeps = [(fair.sensitivity(c), name) for c, name in zip(choices, fair.sweep_names(choices))]
            sweeps = [(s, name) for s, name in sweeps if s.curves]
            if sweeps:
                figs.append(("sensitivity", ifair.sensitivity([s for s, _ in sweeps], [n for _, n in sweeps], colours,
                                                           title, validation_metric(main), labels)))
            budget_curves = [c for c in getattr(section, "budget", []) or []
                             if (c.task, c.dataset, c.group) == (task, dataset, budget)]
            if budget_curves:
                figs.append(("budget", ifair.budget(budget_curves, colours, title)))
            ttt = section.time_to_target
            if not ttt.empty:
                ttt = ttt[(ttt["task"] == task) & (ttt["dataset"] == dataset) & (ttt["budget"] == budget)]
                for goal, part in ttt.groupby("target", sort=False):
                    figs.append(("time-to-target", ifair.time_to_target(part.reset_index(drop=True), colours, title, goal,
                                                                        section.measure)))
        if section.profile is not None:
            out.setdefault((section.experiment, PROFILE_KEY), []).append(("profile", ifair.profile(section.profile, colours)))
    return out

