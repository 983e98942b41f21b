"""What the CLI prints fits an 80-column terminal: labels wrap or move into the title, numbers and
statuses are never cut (no "…")."""

from __future__ import annotations

import re

import pytest

from optbench.cli.fit import Column, fitted_tables
from optbench.metrics import metric
from rich.console import Console


def _lines(text: str) -> list[str]:
    """The tables' lines (the closing "recorded in <path>" line never wraps, whatever its length)."""
    return [line for line in text.splitlines() if line.strip() and "recorded in" not in line]


def test_run_table_at_80_columns_keeps_every_number_and_status_whole(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli.run("--opt", "sgd:lr=1e6", "adam:lr=0.003,betas=0.8/0.95,weight_decay=1e-4", "--epochs", "2",
                     "--seeds", "2", "--target", "loss=0.5")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "…" not in out
    assert all(len(line) <= 80 for line in _lines(out)), out
    # the task and dataset every row shares move into the title
    assert "task regression, dataset synthetic" in out
    assert "diverged" in out and re.search(r"\bok\b", out)
    for record in cli.stored():
        m = record["metrics"]
        if m.get("test_rmse") is not None:
            assert metric("test_rmse").format(m["test_rmse"]) in out
            assert metric("train_seconds").format(m["train_seconds"]) in out


def test_tables_too_wide_for_the_terminal_split_and_repeat_the_labels():
    columns = [Column("task", hoist=True), Column("optimizer"),
               *(Column(f"metric number {i}", value=True, justify="right") for i in range(6)), Column("status", value=True)]
    rows = [["regression", "adam(lr=0.001,betas=0.9/0.999)", *(f"{12345.678 * i:,.2f}" for i in range(6)), "diverged"],
            ["regression", "sgd", *(f"{1.5 * i:.4g}" for i in range(6)), "ok"]]
    tables = fitted_tables("results", columns, rows, 80)
    console = Console(width=80, record=True)
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert len(tables) > 1 and "(1/" in text
    assert "…" not in text and all(len(line) <= 80 for line in _lines(text))
    for value in rows[0][2:]:
        assert value in text
    assert text.count("regression") == len(tables)  # hoisted into each title, not a column
    # wide enough: one table as it always looked, with the task column
    (wide,) = fitted_tables("results", columns, rows, None)
    assert [c.header for c in wide.columns][0] == "task"


def test_long_labels_wrap_between_values_never_inside_a_number():
    columns = [Column("optimizer"), Column("stage"),
               *(Column(f"metric {i}", value=True, justify="right") for i in range(4)), Column("status", value=True)]
    label = "adamw(betas=0.981895/0.999,lr=0.000259687,weight_decay=0.0605253) [vectorized]"
    rows = [[label, "sweep", "0.02377", "1.070", "7,151 (+386.8%)", "6,620", "ok"]]
    console = Console(width=80, record=True)
    for table in fitted_tables("results", columns, rows, 80):
        console.print(table)
    text = console.export_text()
    assert all(len(line) <= 80 for line in _lines(text))
    for word in ("adamw(betas=0.981895/0.999,", "lr=0.000259687,", "weight_decay=0.0605253)", "7,151 (+386.8%)"):
        assert word in text, text


@pytest.mark.parametrize("command", [["list"]])
def test_list_at_80_columns_cuts_no_value(cli, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli(*command)
    assert result.exit_code == 0
    assert "…" not in result.stdout
    assert "eps=1e-08" in result.stdout  # whole hyperparameter values, wrapped between them


@pytest.mark.parametrize("command", [[], ["run"], ["report"], ["check"], ["list"], ["baseline", "save"], ["baseline", "update"]])
def test_help_shows_flags_without_a_value_type(cli, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "200")
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout and "--help" in result.stdout
    assert "<list[" not in result.stdout  # a repeatable option shows its item type: <text>...


def test_help_paragraphs_flow_to_the_terminals_width(cli, monkeypatch):
    """The docstring's source line breaks do not show: at 200 columns a paragraph is one line."""
    monkeypatch.setenv("COLUMNS", "200")
    result = cli("run", "--help")
    assert "(the regression task on its built-in data with sgd, momentum, rmsprop and adam)" in result.stdout


def test_a_value_after_a_flag_says_the_flag_takes_none(cli):
    result = cli("--debug", "true")
    assert result.exit_code == 2
    assert "--debug is a flag and takes no value" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_select_overrides_a_suite_files_select(cli, tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('select = true\noptimizers = ["sgd"]\nepochs = 1\n')
    records = cli.run_json("--config", str(config), "--no-select")
    assert [r.get("stage") for r in records] == [None]  # one plain run, no sweep or final stage


def test_check_report_and_run_format_a_number_alike():
    from optbench.check.output import format_value
    from optbench.metrics import METRICS as METRIC_BY_COLUMN
    from optbench.report.tables import format_number

    for name, value, text in [("test_rmse", 1468.8, "1,469"), ("final_train_loss", 1468.8, "1,469"),
                              ("test_loss", 12345.6, "12,346"), ("test_rmse", 3.14159, "3.142"),
                              ("test_accuracy", 0.93412, "93.41%"), ("rmse_gap", -0.00001, "+0.0%")]:
        assert format_number(value, METRIC_BY_COLUMN[name]) == text, name
        assert format_value(name, value) == text, name
    assert format_value("train_seconds", 1468.8) == "1,469 s"


def test_check_at_80_columns_keeps_each_comparison_on_one_line(cli, monkeypatch, tmp_path):
    cli.run_json("--opt", "sgd", "--epochs", "1")
    baseline = tmp_path / "b.json"
    assert cli("baseline", "save", "--results-dir", str(cli.results_dir), "--out", str(baseline), "--repeats", "0").exit_code == 0
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("check", "--baseline", str(baseline), "--results-dir", str(cli.results_dir), "--all")
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert "…" not in result.stdout and all(len(line) <= 80 for line in lines if not line.startswith("PASS"))
    rmse = next(i for i, line in enumerate(lines) if "· test_rmse" in line)
    assert re.fullmatch(r"\s*([\d,.]+) -> \1 \(\+0\.0%\)\s*", lines[rmse + 1]), lines[rmse + 1]


def test_bold_marks_the_best_and_every_cell_within_seed_noise_of_it_never_a_coin_toss(cli):
    # Two learning rates a hair apart end within each other's seed noise: both are bold, so the
    # table does not crown one of them. A learning rate 50x too small is clearly worse on 5 seeds: not bold.
    result = cli.run("--opt", "sgd:lr=0.05|0.0501|0.001", "--epochs", "3", "--seeds", "5", "-q")
    assert result.exit_code == 0, result.output
    report = cli("report", "--results-dir", str(cli.results_dir), "--format", "markdown", "--no-charts")
    assert report.exit_code == 0, report.output
    assert "within seed noise of it (their 95% intervals overlap)" in report.stdout
    rows = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in report.stdout.splitlines()
            if line.startswith("| sgd(")}
    rmse = rows
    assert rmse["sgd(lr=0.05)"].startswith("**") and rmse["sgd(lr=0.0501)"].startswith("**"), rows
    assert not rmse["sgd(lr=0.001)"].startswith("**"), rows


def test_a_label_longer_than_the_usual_cap_stays_whole_where_the_table_has_room(cli, monkeypatch):
    # 29 characters: past the label column's usual 28, but this table's numbers leave room at 80 columns
    monkeypatch.setenv("COLUMNS", "80")
    assert cli.run("--opt", "momentum:lr=0.1,clip_value=1", "sgd", "--epochs", "1", "-q").exit_code == 0
    result = cli("report", "--results-dir", str(cli.results_dir), "--no-charts")
    assert result.exit_code == 0, result.output
    assert "momentum(lr=0.1,clip_value=1)" in result.stdout, result.stdout
    assert all(len(line) <= 80 for line in _lines(result.stdout)), result.stdout
