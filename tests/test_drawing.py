"""Drawing a report's charts: in worker processes, and only those whose data changed since they
were drawn into the output folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from optbench.report import drawing
from optbench.report.build import build_report, chart_jobs
from optbench.store.records import save_record
from test_report import make_record, real_record, regression_metrics, results  # noqa: F401  (fixtures)


def files(out: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.glob("*-*.*"))}


def test_a_report_redraws_only_the_charts_whose_data_or_files_changed(results: Path, real_record,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    data, out = tmp_path / "results", tmp_path / "out"
    shutil.copytree(results, data)
    first = build_report([data], out_dir=out)
    assert first.charts_drawn == len(first.charts) == 7 and (out / drawing.INDEX_FILE).is_file()
    before = files(out)

    again = build_report([data], out_dir=out)
    assert again.charts_drawn == 0 and [p.name for p in again.charts] == [p.name for p in first.charts]
    assert files(out) == before  # not even rewritten

    # A new adam run on regression: that task's charts change, cifar10's stay as they were.
    save_record(make_record(real_record, optimizer="adam", seed=7,
                            metrics=regression_metrics(3.5, 21.0, 55.0, 0.6, 0.5, 1.0),
                            curve=[(1.0, 2.0, None), (2.0, 1.4, None), (3.5, 0.9, None)]), data)
    changed = build_report([data], out_dir=out)
    assert changed.charts_drawn == 3
    now = files(out)
    redrawn = {name for name in now if now[name] != before[name]}
    assert redrawn == {"regression-synthetic-comparison.png", "regression-synthetic-bars.png",
                       "regression-synthetic-convergence.png"}

    # A chart file deleted or changed by hand is drawn again; the others are kept.
    (out / "cifar10-synthetic-accuracy.png").unlink()
    (out / "cifar10-synthetic-comparison.png").write_bytes(b"not the chart")
    assert build_report([data], out_dir=out).charts_drawn == 2
    assert files(out)["cifar10-synthetic-comparison.png"][0] == now["cifar10-synthetic-comparison.png"][0]

    # A format not drawn before is drawn for every chart; an unreadable index means drawing everything.
    assert build_report([data], out_dir=out, chart_formats=["png", "svg"]).charts_drawn == 7
    assert build_report([data], out_dir=out, chart_formats=["svg"]).charts_drawn == 0
    (out / drawing.INDEX_FILE).write_text("{ not json")
    assert build_report([data], out_dir=out).charts_drawn == 7


def test_charts_drawn_in_worker_processes_are_the_charts_drawn_here(results: Path, tmp_path: Path) -> None:
    report = build_report([results], out_dir=tmp_path, draw_charts=False, fmt="markdown")
    jobs = chart_jobs(report)
    if drawing.workers(len(jobs)) < 2:
        pytest.skip("one core: charts are drawn in this process")
    parallel = list(drawing.draw(jobs, ["png", "svg"]))
    assert [chart.stem for chart, _ in parallel] == [chart.stem for chart in jobs]  # in order
    for chart, rendered in parallel:
        assert rendered == drawing._render(chart, ["png", "svg"]), chart.stem  # byte for byte, SVG included
