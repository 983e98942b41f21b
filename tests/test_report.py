"""`optbench report`: aggregates over seeds, exports, charts, and bad input.

Records are built from one real tiny run (the regression task, 3 epochs) with the spec and
metrics edited to values whose statistics are computed by hand here.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.colors import to_hex

from optbench.engine.eager import run
from optbench.optim.hparams import resolve_hparams
from optbench.errors import UserError
from optbench.report.build import build_report, chart_jobs
from optbench.report.colours import OKABE_ITO, colour_map
from optbench.spec import RunSpec
from optbench.store.records import save_record
from optbench.config.suite import build_specs, load_suite
from optbench.optim.registry import spec_label

# Student t, 97.5% quantile, 2 degrees of freedom (any printed t table: 4.303).
T975_DF2 = 4.302652729911275
T975_DF1 = 12.706204736174707


@pytest.fixture(scope="module")
def real_record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    suite = load_suite(None, {"tasks": ["regression"], "optimizers": ["sgd"], "epochs": 3, "device": "cpu"},
                       source="test")
    return run(build_specs(suite)[0], data_dir=tmp_path_factory.mktemp("data")).to_record()


def make_record(base: dict[str, Any], *, optimizer: str = "sgd", overrides: dict[str, Any] | None = None,
                seed: int = 0, status: str = "ok", task: str | None = None, metrics: dict[str, Any] | None = None,
                curve: list[tuple[float, float | None, float | None]] | None = None) -> dict[str, Any]:
    """A copy of ``base`` with another spec and, where given, replaced metrics and curve
    (``curve``: per epoch (seconds, train loss, test metric))."""
    rec = copy.deepcopy(base)
    spec_fields = {**rec["spec"], "optimizer": optimizer, "seed": seed,
                   "hparams": resolve_hparams(optimizer, overrides or {})}
    if task == "cifar10":
        spec_fields.update(task="cifar10", dataset="synthetic")
        rec["metric_name"] = "accuracy"
    spec = RunSpec.from_dict(spec_fields)
    rec.update(spec=spec.to_dict(), spec_hash=spec.spec_hash(), cell_hash=spec.cell_hash(), label=spec_label(spec), status=status,
               run_id=uuid.uuid4().hex[:12])
    if metrics is not None:
        rec["metrics"] = metrics
    if curve is not None:
        rec["curve"] = [{"epoch": i + 1, "time_s": t, "train_loss": loss,
                         "test_loss": None if loss is None else loss * 1.1, "test_metric": m}
                        for i, (t, loss, m) in enumerate(curve)]
    if status == "failed":
        rec.update(metrics={}, curve=[], error="RuntimeError: boom")
    return rec


def regression_metrics(seconds: float, rmse: float, steps_per_s: float, final: float, test_loss: float,
                       gap: float) -> dict[str, float]:
    return {"train_seconds": seconds, "epochs_completed": 3, "steps": 75, "steps_per_s": steps_per_s,
            "samples_per_s": steps_per_s * 64, "final_train_loss": final, "test_loss": test_loss,
            "test_rmse": rmse, "optimum_rmse": 10.0, "rmse_gap": gap}


def accuracy_metrics(seconds: float, accuracy: float) -> dict[str, float]:
    return {"train_seconds": seconds, "epochs_completed": 3, "steps": 75, "steps_per_s": 75 / seconds,
            "samples_per_s": 4800 / seconds, "final_train_loss": 1 - accuracy, "test_loss": 1.2 - accuracy,
            "test_accuracy": accuracy}


@pytest.fixture(scope="module")
def results(real_record: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Regression: sgd 3 ok + 1 diverged + 1 failed, adam 1 ok, sgd(lr=5) 2 diverged;
    cifar10: adam and sgd, 2 seeds each."""
    d = tmp_path_factory.mktemp("results")
    base = real_record
    sgd = [(1.0, 10.0, 100.0, 0.5, 0.1, 0.1), (2.0, 12.0, 200.0, 0.4, 0.2, 0.2), (4.0, 14.0, 300.0, 0.3, 0.3, 0.3)]
    for seed, values in enumerate(sgd):
        curve = [(values[0] * e / 3, 1.0 / (e + seed), None) for e in (1, 2, 3)]
        save_record(make_record(base, seed=seed, metrics=regression_metrics(*values), curve=curve), d)
    diverged = {"train_seconds": 100.0, "epochs_completed": 1, "steps": 50, "steps_per_s": 0.5,
                "samples_per_s": 32.0, "final_train_loss": None}
    save_record(make_record(base, seed=3, status="diverged", metrics=diverged,
                            curve=[(50.0, 3.0, None), (100.0, None, None)]), d)
    save_record(make_record(base, seed=4, status="failed"), d)
    save_record(make_record(base, optimizer="adam", metrics=regression_metrics(3.0, 20.0, 50.0, 0.6, 0.5, 1.0),
                            curve=[(1.0, 2.0, None), (2.0, 1.5, None), (3.0, 1.0, None)]), d)
    for seed in (0, 1):
        save_record(make_record(base, overrides={"lr": 5.0}, seed=seed, status="diverged", metrics=diverged,
                                curve=[(50.0, None, None)]), d)
    for opt, accuracies in (("adam", (0.9, 0.8)), ("sgd", (0.5, 0.7))):
        for seed, acc in enumerate(accuracies):
            curve = [(e * 1.0, 2.0 / e, acc * e / 3) for e in (1, 2, 3)]
            save_record(make_record(base, optimizer=opt, task="cifar10", seed=seed,
                                    metrics=accuracy_metrics(3.0, acc), curve=curve), d)
    return d


@pytest.fixture(scope="module")
def html_report(results: Path, tmp_path_factory: pytest.TempPathFactory):
    return build_report([results], out_dir=tmp_path_factory.mktemp("out"), fmt="html",
                        chart_formats=("svg", "pdf"))  # the charts for papers beside the interactive page


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def cell(cells: pd.DataFrame, task: str, label: str) -> pd.Series:
    rows = cells[(cells["task"] == task) & (cells["label"] == label)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# --- aggregates ----------------------------------------------------------------------------------

def test_cells_aggregate_ok_runs_over_seeds_and_count_the_rest(results: Path) -> None:
    cells = build_report([results], draw_charts=False).cells
    sgd = cell(cells, "regression", "sgd")
    assert (sgd["runs"], sgd["n"], sgd["n_diverged"], sgd["n_failed"]) == (5, 3, 1, 1)
    assert sgd["seeds"] == [0, 1, 2, 3, 4]
    # runtime 1, 2, 4 s: the diverged run's 100 s is not averaged in
    mean, std = 7 / 3, math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    half = T975_DF2 * std / math.sqrt(3)
    assert sgd["train_seconds_mean"] == pytest.approx(mean)
    assert sgd["train_seconds_std"] == pytest.approx(math.sqrt(7 / 3))
    assert (sgd["train_seconds_ci95_low"], sgd["train_seconds_ci95_high"]) == pytest.approx((mean - half, mean + half))
    # RMSE 10, 12, 14: mean 12, std 2
    assert (sgd["test_rmse_mean"], sgd["test_rmse_std"]) == pytest.approx((12.0, 2.0))
    assert sgd["test_rmse_ci95_high"] == pytest.approx(12 + T975_DF2 * 2 / math.sqrt(3))
    assert (sgd["steps_per_s_mean"], sgd["final_train_loss_mean"], sgd["test_loss_mean"], sgd["rmse_gap_mean"]) \
        == pytest.approx((200.0, 0.4, 0.2, 0.2))

    adam = cell(cells, "regression", "adam")
    assert (adam["n"], adam["test_rmse_mean"]) == (1, 20.0)
    assert math.isnan(adam["test_rmse_std"]) and math.isnan(adam["test_rmse_ci95_low"])  # unknown with one seed

    blown = cell(cells, "regression", "sgd(lr=5)")
    assert (blown["runs"], blown["n"], blown["n_diverged"]) == (2, 0, 2)
    assert math.isnan(blown["test_rmse_mean"]) and math.isnan(blown["train_seconds_mean"])

    cifar_adam = cell(cells, "cifar10", "adam")
    assert cifar_adam["metric_name"] == "accuracy"
    assert (cifar_adam["test_accuracy_mean"], cifar_adam["test_accuracy_std"]) == pytest.approx((0.85, math.sqrt(0.005)))
    assert cifar_adam["test_accuracy_ci95_high"] == pytest.approx(0.85 + T975_DF1 * math.sqrt(0.005) / math.sqrt(2))


def test_cells_sorted_by_main_metric_best_first(results: Path) -> None:
    cells = build_report([results], draw_charts=False).cells
    order = [(t, lab) for t, lab in zip(cells["task"], cells["label"])]
    # RMSE ascending with the all-diverged cell last; accuracy descending
    assert order == [("cifar10", "adam"), ("cifar10", "sgd"),
                     ("regression", "sgd"), ("regression", "adam"), ("regression", "sgd(lr=5)")]


def test_convergence_curves_average_ok_runs_per_epoch(results: Path) -> None:
    curves = build_report([results], draw_charts=False).curves
    sgd = curves[(curves["task"] == "regression") & (curves["label"] == "sgd")].sort_values("epoch")
    assert list(sgd["n"]) == [3, 3, 3]  # the diverged run's curve is left out
    # epoch 1: train losses 1/1, 1/2, 1/3; seconds 1/3, 2/3, 4/3
    assert sgd["train_loss_mean"].iloc[0] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert (sgd["train_loss_min"].iloc[0], sgd["train_loss_max"].iloc[0]) == pytest.approx((1 / 3, 1.0))
    assert sgd["time_s"].iloc[0] == pytest.approx(7 / 9)


# --- exports -------------------------------------------------------------------------------------

def test_markdown_has_one_table_per_task_with_best_in_bold_and_problems_flagged(results: Path, tmp_path: Path) -> None:
    report = build_report([results], out_dir=tmp_path, fmt="markdown", draw_charts=False)
    md = report.markdown
    assert md.startswith("## optbench report\n")
    assert (tmp_path / "report.md").read_text() == md
    assert "### regression on synthetic (3 epochs, batch 64, cpu)" in md
    assert "### cifar10 on synthetic (3 epochs, batch 64, cpu)" in md
    assert ("| optimizer | n | test RMSE | RMSE gap | test loss | final train loss | runtime (s) | steps/s | status |"
            in md)
    # 4 significant digits, trailing zeros kept (2 for a spread), so a column's digits line up
    assert ("| sgd | 3 | **12.00 ± 2.0** | **+20.0% ± 10.0%** | **0.2000 ± 0.10** | **0.4000 ± 0.10** "
            "| **2.333 ± 1.5** | **200.0 ± 100** | ⚠️ 1 of 5 diverged, 1 of 5 failed |") in md
    assert "| adam | 1 | 20.00 | +100.0% | 0.5000 | 0.6000 | 3.000 | 50.00 | ok |" in md
    assert "| sgd(lr=5) | 0 | - | - | - | - | - | - | ⚠️ 2 of 2 diverged |" in md
    assert "| adam | 2 | **85.00% ± 7.07%** |" in md


def test_csv_and_json_have_one_row_per_cell_with_the_aggregates(results: Path, tmp_path: Path) -> None:
    report = build_report([results], out_dir=tmp_path, fmt="csv", draw_charts=False, table="cells")
    assert report.export == tmp_path / "report.csv"
    frame = pd.read_csv(report.export)
    assert len(frame) == 5
    for col in ("task", "dataset", "optimizer", "label", "hparams", "epochs", "batch_size", "device", "n",
                "n_diverged", "n_failed", "train_seconds_mean", "train_seconds_std", "train_seconds_ci95_low",
                "test_rmse_mean", "test_accuracy_ci95_high", "rmse_gap_mean", "steps_per_s_std"):
        assert col in frame.columns
    sgd = frame[(frame["task"] == "regression") & (frame["label"] == "sgd")].iloc[0]
    assert (sgd["n"], sgd["n_diverged"], sgd["n_failed"], sgd["seeds"]) == (3, 1, 1, "0 1 2 3 4")
    assert (sgd["test_rmse_mean"], sgd["test_rmse_std"], sgd["train_seconds_mean"]) == pytest.approx((12, 2, 7 / 3))
    assert sgd["hparams"] == "lr=0.01"

    report = build_report([results], out_dir=tmp_path, fmt="json", draw_charts=False)
    rows = json.loads(report.export.read_text())["tables"]["cells"]
    adam = next(r for r in rows if r["task"] == "regression" and r["label"] == "adam")
    assert adam["n"] == 1 and adam["test_rmse_mean"] == 20.0 and adam["test_rmse_std"] is None
    assert {r["label"] for r in rows} == {"sgd", "adam", "sgd(lr=5)"}


def test_html_is_one_self_contained_interactive_file(html_report) -> None:
    """plotly.js inline once, the figures as JSON, a chart per group and kind (the static accuracy
    chart is the curves' second panel); opened in a browser by tests/test_html_browser.py."""
    page = html_report.export.read_text()
    assert html_report.export.name == "report.html"
    assert [p.name for p in html_report.out_dir.iterdir() if p.suffix == ".html"] == ["report.html"]
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)  # plotly.js holds URL strings it never loads
    assert not re.search(r'(?:src|href)\s*=\s*"(?!#)', markup)  # nothing fetched from anywhere
    assert "<link" not in markup and "<img" not in markup  # the PNG charts are for papers (markdown)
    assert page.count("<script") == 3 and page.count("plotly.js v") == 1  # figures, plotly.js, the page's own
    kinds = re.findall(r'<div class="chart" id="chart-\d+" data-kind="([a-z-]+)"', page)
    assert kinds == ["comparison", "bars", "curves"] * 2
    assert "sgd(lr=5)" in page and "<strong>12.00 ± 2.0</strong>" in page
    assert '<tr class="warn" data-optimizer="sgd">' in page


# --- charts --------------------------------------------------------------------------------------

def test_every_chart_is_written_in_each_format_asked_for(html_report) -> None:
    names = sorted(p.name for p in html_report.charts)
    stems = ["cifar10-synthetic-accuracy", "cifar10-synthetic-bars", "cifar10-synthetic-comparison",
             "cifar10-synthetic-convergence", "regression-synthetic-bars", "regression-synthetic-comparison",
             "regression-synthetic-convergence"]
    assert names == sorted(f"{s}.{ext}" for s in stems for ext in ("svg", "pdf"))
    for path in html_report.charts:
        data = path.read_bytes()
        start = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}[path.suffix]
        assert data.startswith(start), path
        if path.suffix == ".svg":  # text stays text: a paper's editor can change it, a reader can search it
            assert "<text" in data.decode() and "on synthetic" in data.decode()


def test_an_unknown_chart_format_is_refused_before_anything_is_written(results: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unknown chart format 'jpg' \(did you mean 'png'\?\); choose from: png, svg, pdf"):
        build_report([results], out_dir=tmp_path / "out", chart_formats=["png", "jpg"])
    assert not (tmp_path / "out").exists()


def test_charts_choose_scales_by_spread_and_keep_legends_off_the_data(html_report) -> None:
    """Small spreads on linear axes from zero, the task's main metric in the comparison (accuracy for
    classification, not cross-entropy), its references as lines; log only with the reason in the label."""
    figures = {chart.stem: chart.build() for chart in chart_jobs(html_report)}
    runtime, error = figures["regression-synthetic-comparison"].axes
    assert runtime.get_xscale() == error.get_xscale() == "linear"  # 1-4 s and 10-20 RMSE: no log needed
    assert runtime.get_xlim()[0] == error.get_xlim()[0] == 0
    assert "training seconds" in runtime.get_xlabel() and "RMSE" in error.get_xlabel()
    assert [line.get_xdata()[0] for line in error.get_lines() if line.get_label() == "_reference"] == [10.0]
    accuracy = figures["cifar10-synthetic-comparison"].axes[1]
    assert "accuracy (%)" in accuracy.get_xlabel() and "cross-entropy" not in accuracy.get_xlabel()
    for stem in ("regression-synthetic-convergence", "cifar10-synthetic-convergence"):
        by_epoch, by_time = figures[stem].axes
        assert by_epoch.get_yscale() == by_time.get_yscale()
        assert (by_epoch.get_yscale() == "log") == ("log scale" in by_epoch.get_ylabel())
        assert (by_epoch.get_xlabel(), by_time.get_xlabel()) == ("epoch", "training time (s)")
    accuracy = figures["cifar10-synthetic-accuracy"].axes[0]
    assert accuracy.get_yscale() == "linear" and "%" in accuracy.get_ylabel()
    for stem, fig in figures.items():
        assert fig._suptitle is not None and fig._suptitle.get_text()
        assert all(ax.get_legend() is None for ax in fig.axes), stem  # legends sit outside the axes
    legend = figures["regression-synthetic-convergence"].legends[0]
    assert "sgd(lr=5) (no ok run: 2 of 2 diverged)" in [t.get_text() for t in legend.get_texts()]


def test_one_colour_per_optimizer_across_all_charts(html_report) -> None:
    """Colour follows the optimizer name, not the label: sgd and sgd(lr=5) share sgd's colour in every
    chart (lines, bars, profile), and different optimizers never share one."""
    figures = {chart.stem: chart.build() for chart in chart_jobs(html_report)}
    colours: dict[str, set[str]] = {}

    def optimizer(series: str) -> str:
        return re.split(r"[( ]", series, maxsplit=1)[0]

    for fig in figures.values():
        for ax in fig.axes:
            for line in ax.get_lines():
                if not line.get_label().startswith("_"):
                    colours.setdefault(optimizer(line.get_label()), set()).add(to_hex(line.get_color()))
            names = [t.get_text().split("\n")[0] for t in ax.get_yticklabels()]
            bars = [p for p in ax.patches if p.get_height() > 0]
            if names and len(bars) == len(names):  # horizontal bar charts: one bar per tick, bottom up
                for name, bar in zip(names, sorted(bars, key=lambda b: -b.get_y())):
                    colours.setdefault(optimizer(name), set()).add(to_hex(bar.get_facecolor()))
    assert {"sgd", "adam"} <= set(colours)
    assert colours["adam"] == {to_hex("#0072B2")}  # Okabe-Ito blue, in both tasks
    assert all(len(c) == 1 for c in colours.values()), colours
    assert len({next(iter(c)) for c in colours.values()}) == len(colours)


def test_colour_map_is_per_name_stable_and_distinct_past_eight() -> None:
    names = [f"opt{i:02d}" for i in range(14)]
    colours = colour_map(reversed(names))
    assert colours == colour_map(names + names[:3])  # order and repeats do not matter
    assert len(set(colours.values())) == 14
    assert list(colours.values())[:8] == OKABE_ITO


# --- the command ---------------------------------------------------------------------------------

def test_report_reads_a_real_run_and_writes_charts_next_to_it(cli) -> None:
    assert cli.run("--task", "regression", "--opt", "sgd", "adam", "--epochs", "2", "-q").exit_code == 0
    before = snapshot(cli.results_dir / "runs")
    result = cli("report", "--results-dir", str(cli.results_dir))
    assert result.exit_code == 0, result.output
    assert "regression on synthetic" in result.stdout and "test RMSE" in result.stdout
    assert f"wrote 3 chart(s), PNG, to {cli.results_dir / 'report'}" in result.stdout
    assert (cli.results_dir / "report" / "regression-synthetic-comparison.png").is_file()
    assert snapshot(cli.results_dir / "runs") == before
    again = cli("report", "--results-dir", str(cli.results_dir), "--chart-format", "png,svg")
    assert f"wrote 3 chart(s), PNG and SVG, to {cli.results_dir / 'report'}" in again.stdout  # no SVG yet
    again = cli("report", "--results-dir", str(cli.results_dir), "--chart-format", "svg")
    assert f"3 chart(s), SVG, in {cli.results_dir / 'report'}: unchanged, the data they show is the same" \
        in again.stdout


def test_markdown_goes_to_stdout_and_the_paths_to_stderr(cli, results: Path, tmp_path: Path) -> None:
    result = cli("report", "--results-dir", str(results), "--format", "markdown", "--no-charts", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout == (tmp_path / "report.md").read_text()
    assert result.stdout.startswith("## optbench report")
    assert f"wrote {tmp_path / 'report.md'}" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_csv_and_json_pipe_to_stdout_without_out(cli, results: Path, fmt: str) -> None:
    """`optbench report --format csv > out.csv` leaves the data in the file; messages go to stderr."""
    result = cli("report", "--results-dir", str(results), "--format", fmt, "--table", "cells")
    assert result.exit_code == 0, result.output
    text = result.stdout
    rows = pd.read_csv(io.StringIO(text)) if fmt == "csv" else pd.DataFrame(json.loads(text))
    assert len(rows) > 0 and {"task", "label", "cell_hash"} <= set(rows.columns)
    assert "chart(s)" not in text and "chart(s), PNG" in result.stderr  # the charts' message
    assert not (results / "report" / f"report.{fmt}").exists()


def test_markdown_file_embeds_its_charts(cli, results: Path, tmp_path: Path) -> None:
    result = cli("report", "--results-dir", str(results), "--format", "markdown", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    md = (tmp_path / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert links and all((tmp_path / link).is_file() and link.endswith(".png") for link in links)


def test_tables_fit_80_columns_with_every_number_and_status_whole(cli, results: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    wide = cli("report", "--results-dir", str(results), "--no-charts", "--wide")
    narrow = cli("report", "--results-dir", str(results), "--no-charts")
    assert narrow.exit_code == 0 and wide.exit_code == 0, narrow.output
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    assert max(len(line) for line in wide.stdout.splitlines()) > 80  # the data does not fit in one 80-column table
    assert "…" not in narrow.stdout

    def values(text: str) -> set[str]:  # every cell of every table, label column aside
        return {v.strip() for line in text.splitlines() if line.startswith("│")
                for v in line.strip("│").split("│")[1:] if v.strip()}
    assert values(wide.stdout) == values(narrow.stdout)


def test_filters_keep_matching_runs_only(cli, results: Path, tmp_path: Path) -> None:
    def labels(*args: str) -> list[tuple[str, str]]:
        result = cli("report", "--results-dir", str(results), "--format", "json", "--no-charts", "--out",
                     str(tmp_path), *args)
        assert result.exit_code == 0, result.output
        return [(r["task"], r["label"]) for r in json.loads((tmp_path / "report.json").read_text())["tables"]["cells"]]

    assert labels("--opt", "adam") == [("cifar10", "adam"), ("regression", "adam")]
    assert labels("--opt", "sgd:lr=5") == [("regression", "sgd(lr=5)")]
    assert labels("--task", "regression", "--opt", "sgd", "adam") == [("regression", "sgd"), ("regression", "adam"),
                                                                      ("regression", "sgd(lr=5)")]
    assert labels("--dataset", "synthetic", "--device", "cpu", "--task", "cifar10") == [("cifar10", "adam"),
                                                                                          ("cifar10", "sgd")]
    result = cli("report", "--results-dir", str(results), "--task", "mlp", "--no-charts")
    assert result.exit_code == 2
    assert "no run matches --task mlp" in result.stderr and "cifar10, regression" in result.stderr


def test_corrupt_and_foreign_files_are_named_and_skipped_and_left_alone(cli, results: Path, tmp_path: Path) -> None:
    copy_dir = tmp_path / "results"
    shutil.copytree(results, copy_dir)
    runs = copy_dir / "runs"
    good = next(runs.glob("*.json")).read_text()
    (runs / "truncated.json").write_text(good[: len(good) // 2])
    (runs / "foreign.json").write_text('{"name": "not a run"}')
    (runs / "array.json").write_text("[1, 2, 3]")
    (runs / "bad-spec.json").write_text(json.dumps(
        {"schema_version": 1, "spec": {"task": "x"}, "status": "ok", "metrics": {}, "curve": [], "environment": {}}))
    before = snapshot(copy_dir)

    result = cli("report", "--results-dir", str(copy_dir), "--format", "csv", "--table", "cells", "--no-charts",
                 "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    for name in ("truncated.json", "foreign.json", "array.json", "bad-spec.json"):
        assert re.search(rf"warning: skipped \S*{re.escape(name)}: ", result.stderr), result.stderr
    assert len(pd.read_csv(tmp_path / "out" / "report.csv")) == 5  # the rest is reported
    assert snapshot(copy_dir) == before  # nothing in the results directory changed, nothing added


def test_no_results_is_one_line_saying_where_and_how(cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "runs").mkdir(parents=True)
    for results_dir in (empty, tmp_path / "missing"):
        result = cli("report", "--results-dir", str(results_dir))
        assert result.exit_code == 2
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert f"no run records found in {results_dir / 'runs'}" in lines[0] and "optbench run" in lines[0]
    assert [p.name for p in empty.iterdir()] == ["runs"]  # no report directory was created
    assert not (tmp_path / "missing").exists()


def test_out_may_not_be_the_runs_directory(cli, results: Path) -> None:
    before = snapshot(results)
    result = cli("report", "--results-dir", str(results), "--out", str(results / "runs"), "--format", "csv")
    assert result.exit_code == 2 and "where run records live" in result.stderr
    assert snapshot(results) == before


def test_opt_filter_matches_plugin_names_by_their_import_path(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from optbench.cli.app import app

    (tmp_path / "my_opt.py").write_text("import torch\n\nclass Plain(torch.optim.SGD):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["run", "--opt", "my_opt.py:Plain", "sgd", "--epochs", "1", "-q"]).exit_code == 0
    elsewhere = tmp_path / "elsewhere"  # the report runs where the plugin cannot be imported
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(app, ["report", "--results-dir", str(tmp_path / "results"), "--opt", "my_opt.py:Plain",
                                 "--no-charts", "--format", "csv", "--table", "cells", "--out", str(elsewhere)])
    assert result.exit_code == 0, result.output
    rows = (elsewhere / "report.csv").read_text().splitlines()
    assert len(rows) == 2 and "my_opt.py:Plain" in rows[1]


def test_changes_that_round_to_zero_never_read_minus_zero() -> None:
    from optbench.metrics import signed_percent
    from optbench.metrics import METRICS as METRIC_BY_COLUMN
    from optbench.report.tables import format_number

    assert format_number(-0.00001, METRIC_BY_COLUMN["rmse_gap"]) == "+0.0%"
    assert signed_percent(-0.0004) == "+0.0%" and signed_percent(-0.012) == "-1.2%" and signed_percent(0.5) == "+50.0%"
    assert format_number(1468.8, METRIC_BY_COLUMN["test_rmse"]) == "1,469"
