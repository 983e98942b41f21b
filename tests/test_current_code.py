"""check judges a cell's current code: the baseline cell is matched to the results by everything but
the code version; of several code versions in one results folder the one the plugin's files hash to
wins, else the newest by finish time; the others' runs are left out and counted, never compared and
never a "new" cell. ``baseline update`` puts the new code version in the old one's place."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from optbench.check.baseline import cells_from_records, current_code, make_baseline, update_baseline
from optbench.check.compare import Comparison, Row, compare
from optbench.cli.check_table import rich_table
from optbench.check.tolerance import Tolerances
from optbench.spec import RunSpec

SPEC = RunSpec(task="regression", dataset="synthetic", optimizer="myopt.py:MyAdam", hparams={"lr": 0.01},
               epochs=2, batch_size=64, seed=0, device="cpu")
OLD, NEW = {"optimizer": "sha256:aaaaaaaaaaaaaaaa"}, {"optimizer": "sha256:bbbbbbbbbbbbbbbb"}


def record(code: dict[str, str], seed: int, rmse: float, finished: str) -> dict[str, Any]:
    spec = dataclasses.replace(SPEC, code=code, seed=seed)
    return {
        "schema_version": 1, "run_id": f"{seed}{finished}", "spec": spec.to_dict(), "spec_hash": spec.spec_hash(),
        "cell_hash": spec.cell_hash(), "label": "myopt.py:MyAdam(lr=0.01)", "status": "ok", "error": None,
        "metric_name": "rmse", "optimizer_impl": "native",
        "metrics": {"train_seconds": 0.5, "step_cost": 5.0, "final_train_loss": rmse / 1e4, "test_loss": rmse / 1e4,
                    "test_rmse": rmse},
        "curve": [], "environment": {"cpu": "x86_64", "torch": "2.x"},
        "started_at": f"2026-01-01T00:{finished}:00+00:00", "finished_at": f"2026-01-01T00:{finished}:01+00:00",
    }


def runs(code: dict[str, str], rmse: float, minute: int) -> list[dict[str, Any]]:
    return [record(code, seed, rmse * (1 + seed / 100), f"{minute + seed:02d}") for seed in (0, 1)]


def test_the_newest_code_is_judged_and_the_older_runs_counted() -> None:
    records = runs(OLD, 1500.0, 0) + runs(NEW, 3000.0, 10)
    kept, other = current_code(records)
    assert {r["spec"]["code"]["optimizer"] for r in kept} == {NEW["optimizer"]}
    (free,) = other
    assert other[free] == 2
    # finish time decides, not the order the files are read in
    assert current_code(list(reversed(records)))[0] == list(reversed(kept))


def test_a_regression_of_new_code_fails_and_is_never_new() -> None:
    baseline = make_baseline(cells_from_records(runs(OLD, 1500.0, 0)))
    kept, other = current_code(runs(OLD, 1500.0, 0) + runs(NEW, 3000.0, 10))
    comparison = compare(baseline, cells_from_records(kept), Tolerances(), other_runs=other)
    verdicts = {r.metric: r.verdict for r in comparison.rows}
    assert comparison.exit_code == 1 and comparison.compared_cells == 1
    assert verdicts["test_rmse"] == "fail" and "new" not in verdicts.values()
    (code,) = [r for r in comparison.rows if r.metric == "code"]
    assert code.note == "optimizer code changed: aaaaaaaa… → bbbbbbbb…; current code judged, 2 run(s) of other code left out"


def test_an_edit_undone_exactly_is_judged_though_its_runs_are_older(tmp_path: Path, monkeypatch) -> None:
    """``optbench run`` skips the runs of code it ran before; the files here say which code is current."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myopt.py").write_text("class MyAdam: pass\n")
    (tmp_path / "helper.py").write_text("SCALE = 1.0\n")
    here = {key: "sha256:" + hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()[:16]
            for key, name in (("optimizer", "myopt.py"), ("optimizer:helper.py", "helper.py"))}
    slip = {**here, "optimizer:helper.py": "sha256:cccccccccccccccc"}
    kept, other = current_code(runs(here, 1500.0, 0) + runs(slip, 3000.0, 10))
    assert [r["spec"]["code"] for r in kept] == [here, here] and list(other.values()) == [2]
    (tmp_path / "helper.py").write_text("SCALE = 0.5\n")  # files that match neither: the newest wins
    assert [r["spec"]["code"] for r in current_code(runs(here, 1500.0, 0) + runs(slip, 3000.0, 10))[0]] == [slip, slip]


def test_the_same_code_passes_and_notes_the_runs_left_out() -> None:
    baseline = make_baseline(cells_from_records(runs(NEW, 1500.0, 10)))
    kept, other = current_code(runs(OLD, 9000.0, 0) + runs(NEW, 1500.0, 10))
    comparison = compare(baseline, cells_from_records(kept), Tolerances(), other_runs=other)
    assert comparison.exit_code == 0 and {r.verdict for r in comparison.rows} == {"pass"}
    assert comparison.notes == ["regression/myopt.py:MyAdam(lr=0.01) (cpu): its current code is the baseline's; "
                                "2 run(s) of other code left out"]


@pytest.mark.parametrize("saved", ["old first", "new first"])
def test_a_baseline_holding_two_code_versions_compares_the_one_that_ran(saved: str) -> None:
    cells = cells_from_records(runs(OLD, 1500.0, 0) + runs(NEW, 1500.0, 10))
    baseline = make_baseline(cells if saved == "old first" else cells[::-1])
    comparison = compare(baseline, cells_from_records(runs(NEW, 1500.0, 10)), Tolerances())
    assert comparison.compared_cells == 1 and {r.verdict for r in comparison.rows} == {"pass"}
    assert any("1 cell(s) of other code" in note for note in comparison.notes)


def test_baseline_update_puts_the_new_code_in_place_of_the_old() -> None:
    baseline = make_baseline(cells_from_records(runs(OLD, 1500.0, 0)))
    updated, update = update_baseline(baseline, cells_from_records(runs(NEW, 1500.0, 10)))
    assert [c.code for c in updated.cells] == [NEW]
    assert update.replaced == ["regression/myopt.py:MyAdam(lr=0.01)"] and not update.added


@pytest.mark.parametrize("width", [80, 160])
def test_a_long_plugin_label_never_cuts_check_numbers(width: int) -> None:
    """A plugin at a deep path with many hyperparameters: the numbers stay whole at any width."""
    label = "plugins/optimizers/experimental/myopt.py:MyAdam(betas=0.8/0.95,eps=1e-06,lr=0.003,weight_decay=0.1)"
    row = Row("regression", "synthetic", label, "cpu", "test_rmse", "fail", 1500.0, 3000.0, 1.0, "+100.0%",
              "worse beyond fail level 10%")
    console = Console(width=width, record=True)
    console.print(rich_table(Comparison([row], 1), width))
    text = console.export_text()
    assert "…" not in text and "1,500 -> 3,000 (+100.0%)" in text
    assert max(map(len, text.splitlines())) <= width
