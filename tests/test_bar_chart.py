"""The report's log-scale bar chart (the article's runtime/RMSE bar chart), the markdown summary's
chart counts, and runtimes shared by a vectorized group: shown without a spread, never ranked.

Records are the hand-made ones of ``test_report`` (one real run, edited); charts are checked on
the drawn figure and, for colours, in the SVG the report writes.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_report import make_record, real_record, regression_metrics, results  # noqa: F401  (fixtures)

from optbench.optim.registry import spec_label
from optbench.report.bars import decade_floor
from optbench.report.build import Filters, build_report, chart_jobs
from optbench.report.colours import colour_map
from optbench.spec import RunSpec
from optbench.store.records import save_record

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def two_budgets(results: Path, real_record, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The report fixture's runs plus two regression cells trained for 5 epochs: a second budget."""
    d = tmp_path_factory.mktemp("budgets")
    shutil.copytree(results, d, dirs_exist_ok=True)
    for optimizer, rmse in (("adam", 30.0), ("sgd", 3000.0)):
        for seed in (0, 1):
            rec = make_record(real_record, optimizer=optimizer, seed=seed,
                              metrics=regression_metrics(2.0 + seed, rmse + seed, 90.0, 0.3, 0.2, 0.1))
            spec = RunSpec.from_dict({**rec["spec"], "epochs": 5})
            rec.update(spec=spec.to_dict(), spec_hash=spec.spec_hash(), cell_hash=spec.cell_hash())
            save_record(rec, d)
    return d


def test_every_task_and_budget_gets_a_bar_chart_with_a_log_error_axis_from_a_stated_floor(two_budgets: Path) -> None:
    report = build_report([two_budgets], draw_charts=False)
    jobs = {chart.stem: chart for chart in chart_jobs(report)}
    groups = {(t, d, b) for t, d, b, s in zip(report.cells["task"], report.cells["dataset"], report.cells["budget"],
                                             report.cells["split"]) if s == "test"}
    bars = sorted(stem for stem in jobs if stem.endswith("-bars"))
    assert len(groups) == 3 and bars == ["cifar10-synthetic-bars", "regression-synthetic-3ep-bs64-bars",
                                         "regression-synthetic-5ep-bs64-bars"]
    for stem in bars:  # beside the dot/interval chart of the same group, which stays
        assert stem.replace("-bars", "-comparison") in jobs
        fig = jobs[stem].build()
        runtime, error = fig.axes[:2]
        assert runtime.get_xscale() == "linear" and runtime.get_xlim()[0] == 0
        assert "bars start at 0" in runtime.get_xlabel()
        assert error.get_xscale() == "log"
        floor = error.get_xlim()[0]
        assert "log scale" in error.get_xlabel() and "every bar starts at" in error.get_xlabel()
        bars_drawn = [p for p in error.patches if p.get_gid() and p.get_gid().startswith("bar-error-")]
        assert bars_drawn and all(p.get_x() == pytest.approx(floor) for p in bars_drawn)  # one stated origin
        assert all(p.get_x() + p.get_width() > floor for p in bars_drawn)
    # adam 30-31, sgd 3,000-3,001 and the least-squares optimum's line at 10, itself a power of ten: from 1
    five = jobs["regression-synthetic-5ep-bs64-bars"].build().axes[1]
    assert five.get_xlim()[0] == 1.0 and "every bar starts at 1.00, the power of ten below" in " ".join(five.get_xlabel().split())
    cifar = jobs["cifar10-synthetic-bars"].build().axes[1]
    assert "test error (100% - accuracy)" in cifar.get_xlabel()  # an accuracy is drawn as its error


def test_the_decade_floor_is_the_power_of_ten_below_the_smallest_value() -> None:
    import numpy as np

    assert decade_floor(np.array([1475.0, 5105.0, 440.0])) == 100.0
    assert decade_floor(np.array([100.0, 300.0])) == 10.0  # never a bar of zero length
    assert decade_floor(np.array([0.15, 0.3, np.nan, -1.0])) == pytest.approx(0.1)


def _fills(svg: Path, prefix: str) -> dict[str, str]:
    """Per element id starting with ``prefix``: the fill colour drawn inside it."""
    out = {}
    for g in ET.parse(svg).getroot().iter(f"{SVG}g"):
        gid = g.get("id", "")
        if gid.startswith(prefix):
            styles = [e.get("style", "") for e in g.iter() if "fill: #" in e.get("style", "")]
            out[gid.removeprefix(prefix)] = re.search(r"fill: (#[0-9a-f]{6})", styles[0]).group(1)
    return out


def test_bar_colours_are_the_colours_of_every_other_chart(results: Path, tmp_path: Path) -> None:  # noqa: F811
    report = build_report([results], out_dir=tmp_path, chart_formats=["svg"])  # colours by name: adam, sgd
    colours = colour_map(report.cells["optimizer"])
    for task in ("regression", "cifar10"):
        bars = _fills(tmp_path / f"{task}-synthetic-bars.svg", "bar-runtime-")
        dots = _fills(tmp_path / f"{task}-synthetic-comparison.svg", "mean-train_seconds-")
        assert bars and bars == dots  # the same cells, the same colours
        assert all(colour == colours[name.split("-")[0]].lower() for name, colour in bars.items())
    assert _fills(tmp_path / "regression-synthetic-bars.svg", "bar-error-") == {"sgd": "#e69f00", "adam": "#0072b2"}


def test_markdown_counts_its_charts_by_format_and_embeds_only_png_or_svg(results: Path, tmp_path: Path) -> None:  # noqa: F811
    regression = Filters(tasks=["regression"])  # 3 charts: comparison, bars, convergence
    build_report([results], regression, out_dir=tmp_path, chart_formats=["png", "svg", "pdf"])  # drawn once here
    for formats, summary, embedded in ((["png"], "charts: 3 PNG in", ".png"),
                                       (["svg", "pdf"], "charts: 3 SVG, 3 PDF in", ".svg"),
                                       (["png", "svg"], "charts: 3 PNG, 3 SVG in", ".png"),
                                       (["pdf"], "charts: 3 PDF in", None)):
        md = build_report([results], regression, out_dir=tmp_path, fmt="markdown", chart_formats=formats).markdown
        assert summary in md, formats
        links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
        if embedded is None:  # GitHub cannot show a PDF inline: none is embedded, the summary says so
            assert links == [] and "markdown viewers cannot show PDF" in md
        else:
            assert len(links) == 3 and all(link.endswith(embedded) for link in links), links
            assert f"shown below as {embedded[1:].upper()}" in md


# --- runtimes shared by a vectorized group ------------------------------------------------------

@pytest.fixture(scope="module")
def shared(real_record, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """One experiment: sgd and adam trained as vectorized groups of 3 (every replica 0.5 s: the
    group's 1.5 s shared), momentum eager (1, 2, 3 s)."""
    d = tmp_path_factory.mktemp("shared")
    for optimizer in ("sgd", "adam", "momentum"):
        for seed in range(3):
            vectorized = optimizer != "momentum"
            metrics = regression_metrics(0.5 if vectorized else 1.0 + seed, 12.0 + seed, 100.0, 0.4, 0.2, 0.2)
            if vectorized:
                metrics.update(group_size=3, group_train_seconds=1.5)
            rec = make_record(real_record, optimizer=optimizer, seed=seed, metrics=metrics)
            if vectorized:
                spec = RunSpec.from_dict({**rec["spec"], "engine": "vectorized"})
                rec.update(spec=spec.to_dict(), spec_hash=spec.spec_hash(), cell_hash=spec.cell_hash(),
                           label=spec_label(spec))
            rec["experiment"] = "shared"
            save_record(copy.deepcopy(rec), d)
    return d


def test_shared_runtimes_have_no_spread_and_are_never_ranked_or_bolded(shared: Path, tmp_path: Path) -> None:
    report = build_report([shared], out_dir=tmp_path, fmt="markdown")
    md = report.markdown
    header = next(line for line in md.splitlines() if line.startswith("| optimizer"))
    runtime = header.strip("|").split(" | ").index("runtime (s)")
    rows = {line.strip("|").split(" | ")[0].strip(): line.strip("| ").split(" | ")
            for line in md.splitlines() if line.startswith("| ") and not line.startswith("| optimizer")}
    shared_rows = [name for name in rows if "vectorized" in name]
    assert len(shared_rows) == 2
    for name in shared_rows:
        assert rows[name][runtime] == "0.5000 shared"  # no ± 0, no bold
    assert rows["momentum"][runtime] == "2.000 ± 1.0"  # alone among eager runs: nothing to rank, no bold
    assert "**" not in "".join(row[runtime] for row in rows.values())
    assert "runtime is the group's seconds divided among its replicas" in md

    doc = json.loads(build_report([shared], fmt="json", draw_charts=False).text)
    by_label = {row["label"]: row for row in doc["tables"]["cells"]}
    for label, row in by_label.items():
        vectorized = "vectorized" in label
        assert row["runtime_shared"] is vectorized and row["group_size"] == (3 if vectorized else 0)
        assert (row["train_seconds_std"] is None) is vectorized and (row["train_seconds_ci95_low"] is None) is vectorized
    csv = build_report([shared], fmt="csv", draw_charts=False, table="cells").text
    assert "runtime_shared" in csv.splitlines()[0]

    bars = next(c for c in chart_jobs(report) if c.stem.endswith("bars")).build()
    runtime_panel = bars.axes[0]
    intervals = [c for c in runtime_panel.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(intervals) == 1  # momentum's only: a shared runtime has no interval
    labels = [t.get_text() for t in runtime_panel.texts]
    assert sum(text.endswith(" shared") for text in labels) == 2
