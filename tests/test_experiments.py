"""Experiments, budgets and targets kept apart in `optbench report`; `optbench list-runs`.

Records are built from one real tiny run with the spec, experiment, target, metrics and curve
edited, so each test states exactly what the results folder holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from optbench.report.build import build_report, chart_jobs
from optbench.spec import RunSpec
from optbench.store.records import save_record
from test_report import make_record, real_record, regression_metrics  # noqa: F401 (real_record: a fixture)


def record(base: dict[str, Any], experiment: str, optimizer: str, *, day: int, epochs: int = 3,
           dataset: str = "synthetic", seed: int = 0, rmse: float = 1500.0, reach_s: float | None = None,
           target: str | None = None, stage: str | None = None) -> dict[str, Any]:
    """A regression record of ``experiment`` started on January ``day``; its test loss falls below 0.5
    at ``reach_s`` training seconds (never when None); ``target`` (``loss=0.5``) is what it asked for."""
    seconds = (reach_s or 1.0) * 2
    loss_at = [(seconds / 2, 0.4 if reach_s else 1.0), (seconds, 0.3 if reach_s else 0.9)]
    rec = make_record(base, optimizer=optimizer, seed=seed, metrics=regression_metrics(seconds, rmse, 100.0, 0.3, 0.3, 0.1),
                      curve=[(t, loss / 1.1, None) for t, loss in loss_at])
    spec = RunSpec.from_dict({**rec["spec"], "epochs": epochs, "dataset": dataset})
    stamp = f"2026-01-{day:02d}T00:00:{seed:02d}.000+00:00"
    rec.update(spec=spec.to_dict(), spec_hash=spec.spec_hash(), cell_hash=spec.cell_hash(), experiment=experiment,
               started_at=stamp, finished_at=stamp)
    rec.pop("target", None)
    rec.pop("stage", None)
    if target:
        metric, value = target.split("=")
        rec["target"] = {"metric": metric, "value": float(value)}
    if stage:
        rec["stage"] = stage
    return rec


@pytest.fixture(scope="module")
def two_experiments(real_record: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """'plain' (January 1): momentum 50 epochs, very fast to loss=0.5, and sgd 50 epochs;
    'tuned' (January 2): sgd and momentum at 3 epochs, 2 seeds, slower to loss=0.5."""
    d = tmp_path_factory.mktemp("experiments")
    for opt, reach in (("momentum", 0.01), ("sgd", 0.02)):
        save_record(record(real_record, "plain", opt, day=1, epochs=50, reach_s=reach, target="loss=0.5"), d)
    for seed in (0, 1):
        for opt, reach, rmse in (("sgd", 1.0, 1480.0), ("momentum", 2.0, 1490.0)):
            save_record(record(real_record, "tuned", opt, day=2, seed=seed, reach_s=reach, rmse=rmse,
                               target="loss=0.5", stage="final"), d)
    return d


def test_a_report_over_several_experiments_keeps_each_in_its_own_section(two_experiments: Path, tmp_path: Path) -> None:
    # The fixture's optimizers differ in seconds to the target, not in epochs: profiles on seconds.
    report = build_report([two_experiments], out_dir=tmp_path, fmt="markdown", profile_on="seconds")
    assert [s.experiment for s in report.sections] == ["plain", "tuned"]  # in the order they ran
    # Every table belongs to one experiment and says which.
    for t in report.tables:
        assert t.title.startswith(f"experiment {t.experiment}: ")
        section = next(s for s in report.sections if s.experiment == t.experiment)
        assert {row[0].split(":")[0] for row in t.rows} <= set(section.cells["label"])
    # Each experiment has its own performance profile: the plain suite's fast momentum does not
    # push the tuned runs' scores down (nor does it appear there).
    plain, tuned = (s.profile for s in report.sections)
    assert plain.scores["momentum"] == 1.0 and tuned.scores["sgd"] == 1.0
    assert tuned.cells == {"regression/synthetic": {"momentum": "momentum", "sgd": "sgd"}}
    assert tuned.times["regression/synthetic"] == {"sgd": 1.0, "momentum": 2.0}
    # Charts in one folder per experiment, linked from report.md.
    for name in ("plain", "tuned"):
        assert (tmp_path / name / "regression-synthetic-comparison.png").stat().st_size > 0
        assert (tmp_path / name / "all-tasks-performance-profile.png").is_file()
        assert f"]({name}/regression-synthetic-comparison.png)" in report.markdown


def test_name_and_latest_select_experiments_and_unknown_names_exit_2(cli, two_experiments: Path) -> None:
    def experiments(*args: str) -> list[str]:
        result = cli("report", "--results-dir", str(two_experiments), "--no-charts", "--format", "json", *args)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert {r["experiment"] for r in doc["tables"]["cells"]} == {e["name"] for e in doc["experiments"]}
        return [e["name"] for e in doc["experiments"]]

    assert experiments() == ["plain", "tuned"]
    assert experiments("--name", "tuned") == ["tuned"]
    assert experiments("--name", "tuned,plain") == ["plain", "tuned"]
    assert experiments("--latest") == ["tuned"]
    table = cli("report", "--results-dir", str(two_experiments), "--no-charts", "--name", "plain")
    assert "experiment plain" not in table.stdout and "regression on synthetic (50 epochs" in table.stdout

    for args, message in ((["--name", "tund"], "no experiment named 'tund' (did you mean 'tuned'?); the results hold: plain, tuned"),
                          (["--name", "plain", "--latest"], "--name and --latest both choose experiments")):
        result = cli("report", "--results-dir", str(two_experiments), "--no-charts", *args)
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and not (two_experiments / "report").exists()


def test_cells_of_different_budgets_are_never_ranked_against_each_other(real_record, tmp_path: Path) -> None:
    """One experiment ran sgd and adam at 3 and at 20 epochs: one table and one set of charts per
    budget, "best" bolded within each, never across."""
    d = tmp_path / "results"
    for epochs, rmses in ((3, {"sgd": 1600.0, "adam": 1700.0}), (20, {"sgd": 1470.0, "adam": 1490.0})):
        for opt, rmse in rmses.items():
            save_record(record(real_record, "budgets", opt, day=1, epochs=epochs, rmse=rmse), d)
    report = build_report([d], draw_charts=False)
    cells_tables = [t for t in report.tables if t.kind == "cells"]
    assert [t.title for t in cells_tables] == ["regression on synthetic (3 epochs, batch 64, cpu)",
                                               "regression on synthetic (20 epochs, batch 64, cpu)"]
    for t, best_label in zip(cells_tables, ("sgd", "sgd")):
        assert [r[0] for r in t.rows] == ["sgd", "adam"] and "epochs" not in t.columns
        rmse_column = t.columns.index("test RMSE")
        assert (0, rmse_column) in t.best and (1, rmse_column) not in t.best  # 1,600 is bold in its own table
    stems = [chart.stem for chart in chart_jobs(report)]
    assert {"regression-synthetic-3ep-bs64-comparison", "regression-synthetic-20ep-bs64-comparison"} <= set(stems)
    assert not any(stem == "regression-synthetic-comparison" for stem in stems)


@pytest.fixture(scope="module")
def mixed_targets(real_record: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One experiment: regression/synthetic runs that asked for loss=0.5 (sgd reaches it at 1 s,
    adam at 2 s), regression/diamonds runs that asked for no target (adam would be the fastest)."""
    d = tmp_path_factory.mktemp("targets")
    for opt, reach in (("sgd", 1.0), ("adam", 2.0)):
        save_record(record(real_record, "mix", opt, day=1, reach_s=reach, target="loss=0.5"), d)
    for opt, reach in (("sgd", 9.0), ("adam", 0.5)):
        save_record(record(real_record, "mix", opt, day=1, dataset="diamonds", reach_s=reach, rmse=1400.0), d)
    return d


def test_time_to_target_and_the_profile_use_only_runs_that_asked_for_the_target(mixed_targets: Path) -> None:
    # Both reach it in the same epoch, sgd in half adam's seconds: a profile on seconds tells them apart.
    report = build_report([mixed_targets], draw_charts=False, profile_on="seconds")
    ttt = report.time_to_target
    assert set(ttt["dataset"]) == {"synthetic"} and set(ttt["target"]) == {"loss=0.5"}
    profile = report.sections[0].profile
    # diamonds never asked for a target: not an all-"not reached" problem that caps every score
    assert profile.problems == ["regression/synthetic"]
    assert profile.scores == {"sgd": 1.0, "adam": pytest.approx((4 - 2) / 3)}
    assert not any("diamonds" in t.title for t in report.tables if t.kind in ("time_to_target", "profile"))


def test_a_report_target_applies_only_to_the_tasks_it_names(cli, mixed_targets: Path) -> None:
    def ttt(*targets: str) -> set[tuple[str, str]]:
        args = [a for t in targets for a in ("--target", t)]
        result = cli("report", "--results-dir", str(mixed_targets), "--no-charts", "--format", "json",
                     "--table", "time_to_target", *args)
        assert result.exit_code == 0, result.output
        return {(r["dataset"], r["target"]) for r in json.loads(result.stdout)}

    # Without a task it replaces the goal of the runs that asked for one, and only theirs.
    assert ttt("loss=0.35") == {("synthetic", "loss=0.35")}
    # Naming the task and dataset applies it there too; the synthetic runs keep what they asked for.
    assert ttt("regression/diamonds:loss=0.35") == {("synthetic", "loss=0.5"), ("diamonds", "loss=0.35")}
    assert ttt("regression:rmse=2000") == {("synthetic", "rmse=2000"), ("diamonds", "rmse=2000")}

    for target, message in (("cifar10:accuracy=0.5", "--target cifar10:accuracy=0.5: no run of cifar10"),
                            ("regression:accuracy=0.5", "task 'regression' measures rmse, not accuracy"),
                            ("accuracy=0.5", "applies to no test run")):
        result = cli("report", "--results-dir", str(mixed_targets), "--no-charts", "--target", target)
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1


def test_list_runs_shows_each_experiment_in_80_columns_and_as_json(cli, two_experiments: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("list-runs", "--results-dir", str(two_experiments))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in result.stdout
    plain = next(i for i, line in enumerate(lines) if "│ plain" in line)
    tuned = next(i for i, line in enumerate(lines) if "│ tuned" in line)
    assert plain < tuned and "2026-01-01" in lines[plain] and "4: 4 ok" in lines[tuned]
    assert "final" in result.stdout and "momentum" in result.stdout

    result = cli("list-runs", "--results-dir", str(two_experiments), "--format", "json")
    doc = json.loads(result.stdout)
    assert [(e["name"], e["records"], e["statuses"], e["stages"], e["targets"]) for e in doc] == [
        ("plain", 2, {"ok": 2}, [], ["loss=0.5"]), ("tuned", 4, {"ok": 4}, ["final"], ["loss=0.5"])]
    assert doc[1]["tasks"] == ["regression/synthetic"] and doc[1]["optimizers"] == ["momentum", "sgd"]

    empty = cli("list-runs", "--results-dir", str(two_experiments / "nowhere"))
    assert empty.exit_code == 2 and "no run records found" in empty.stderr


def test_report_tables_at_80_columns_are_whole_never_cropped(cli, two_experiments: Path, monkeypatch) -> None:
    """Rich crops a table wider than the terminal at its right edge: every table row must end in its border."""
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("report", "--results-dir", str(two_experiments), "--no-charts")
    assert result.exit_code == 0, result.output
    rows = [line.rstrip() for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert rows and all(len(line) <= 80 and line[-1] in "┓┃┩│┘" for line in rows), result.stdout
    assert "1,480 ± 0" in result.stdout and "experiment tuned: regression on synthetic" in result.stdout


def test_experiment_names_become_safe_distinct_chart_folders(real_record, tmp_path: Path) -> None:
    """Names come from the records: '..' must not write outside --out, and 'a b' and 'a-b' must not share a folder."""
    d = tmp_path / "results"
    for day, name in enumerate(("..", "a b", "a-b"), start=1):
        save_record(record(real_record, name, "sgd", day=day), d)
    out = tmp_path / "out" / "report"
    report = build_report([d], out_dir=out)
    assert all(p.resolve().is_relative_to(out.resolve()) for p in report.charts)
    folders = {p.relative_to(out).parts[0] for p in report.charts}
    assert len(folders) == 3 and ".." not in folders


@pytest.mark.parametrize("args, message", [
    (["--table", "cells"], "--table picks one table of a csv or json export; add --format csv or --format json"),
    (["--format", "json", "--table", "celss"], "unknown table 'celss' (did you mean 'cells'?)"),
])
def test_a_bad_table_choice_is_one_line_and_exit_2(cli, two_experiments: Path, args, message) -> None:
    result = cli("report", "--results-dir", str(two_experiments), "--no-charts", *args)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_narrow_terminal_drops_an_all_ok_status_column_instead_of_a_second_table(cli, real_record, tmp_path: Path,
                                                                                   monkeypatch) -> None:
    """A terminal too narrow for the status column too (this table needs about 80 columns with it):
    a second table holding only 'ok' is noise; the caption, not cut to the table's width,
    says every run was ok instead."""
    d = tmp_path / "results"
    for opt in ("sgd", "adam"):
        save_record(record(real_record, "plain", opt, day=1), d)
    monkeypatch.setenv("COLUMNS", "76")
    narrow = cli("report", "--results-dir", str(d), "--no-charts")
    assert narrow.exit_code == 0, narrow.output
    assert "(1/2)" not in narrow.stdout and "status" not in narrow.stdout and "every run ok" in narrow.stdout
    monkeypatch.setenv("COLUMNS", "200")
    wide = cli("report", "--results-dir", str(d), "--no-charts")
    assert "status" in wide.stdout and "every run ok" not in wide.stdout
