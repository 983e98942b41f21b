"""The report flags a selection whose top two candidates are within their seed noise: with several
selection seeds per candidate, when their 95% intervals overlap; with one, when they are within
``fair.NEAR_TIE_MARGIN`` (1%) of each other. Read from the sweep records, however many seeds each
candidate ran with.

Sweep and final records are made from one real run (``test_report``'s), with the validation
metric set by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_report import make_record, real_record, regression_metrics  # noqa: F401  (real_record: a fixture)

from optbench.report import fair
from optbench.report.build import build_report
from optbench.spec import RunSpec
from optbench.store.records import save_record


def sweep_record(base: dict[str, Any], optimizer: str, lr: float, seed: int, val_rmse: float) -> dict[str, Any]:
    rec = make_record(base, optimizer=optimizer, overrides={"lr": lr}, seed=seed,
                      metrics={"train_seconds": 1.0, "final_train_loss": 0.1, "val_rmse": val_rmse, "val_loss": 0.1})
    spec = RunSpec.from_dict({**rec["spec"], "training": {"split": "validation"}})
    rec.update(spec=spec.to_dict(), spec_hash=spec.spec_hash(), cell_hash=spec.cell_hash(), stage="sweep",
               experiment="tie")
    return rec


def final_record(base: dict[str, Any], optimizer: str, lr: float, seed: int) -> dict[str, Any]:
    rec = make_record(base, optimizer=optimizer, overrides={"lr": lr}, seed=seed,
                      metrics=regression_metrics(1.0, 1500.0 + seed, 100.0, 0.1, 0.1, 0.02))
    rec.update(stage="final", experiment="tie")
    return rec


def results_with(tmp_path: Path, base: dict[str, Any], sweeps: dict[tuple[str, float], list[float]]) -> Path:
    """A results folder with, per (optimizer, lr), one sweep record per value (seeds 0, 1, ...),
    and two final runs of each optimizer's lowest candidate."""
    d = tmp_path / "results"
    for (optimizer, lr), values in sweeps.items():
        for seed, value in enumerate(values):
            save_record(sweep_record(base, optimizer, lr, seed, value), d)
    for optimizer in {o for o, _ in sweeps}:
        best = min((min(v), lr) for (o, lr), v in sweeps.items() if o == optimizer)[1]
        for seed in (0, 1):
            save_record(final_record(base, optimizer, best, seed), d)
    return d


def notes(report) -> list[str]:
    return [note for t in report.tables if t.kind == "default_vs_tuned" for note in t.notes]


def test_one_seed_a_lead_within_one_percent_is_flagged_and_a_clear_one_is_not(real_record, tmp_path: Path) -> None:  # noqa: F811
    d = results_with(tmp_path, real_record, {("sgd", 0.1): [1500.0], ("sgd", 0.03): [1504.0], ("sgd", 0.01): [1800.0],
                                             ("adam", 0.01): [1500.0], ("adam", 0.001): [1530.0]})
    report = build_report([d], fmt="markdown", draw_charts=False)
    assert notes(report) == [("near tie: sgd: lr=0.1 chosen over lr=0.03 by 0.27% on 1 seed, within the 1% margin used "
                              "when there is no seed noise to compare; a coin toss, not a clear winner")]  # adam: by 2%
    md = report.markdown
    assert "| sgd | lr | 3 of 3 | sgd(lr=0.1) (near tie) |" in md and "| adam | lr | 2 of 2 | adam(lr=0.01) |" in md
    assert "> near tie: sgd: lr=0.1 chosen over lr=0.03 by 0.27% on 1 seed" in md
    assert "each candidate ran on the validation split (1 seed)" in md
    rows = {r["optimizer"]: r for r in json.loads(build_report([d], fmt="json", draw_charts=False).text)
            ["tables"]["default_vs_tuned"]}
    assert rows["sgd"]["near_tie"] is True and rows["sgd"]["runner_up"] == "lr=0.03"
    assert rows["sgd"]["lead"] == pytest.approx(4 / 1500) and rows["sgd"]["near_tie_rule"] == "margin"
    assert rows["adam"]["near_tie"] is False and rows["adam"]["runner_up"] is None


def test_several_seeds_the_intervals_decide_not_the_margin(real_record, tmp_path: Path) -> None:  # noqa: F811
    d = results_with(tmp_path, real_record, {
        # 0.5% apart but each steady to 0.1: a real difference, not flagged although within 1%
        ("sgd", 0.1): [1000.0, 1000.1, 1000.2], ("sgd", 0.03): [1005.0, 1005.1, 1005.2],
        # 0.3% apart on average with seeds spread by 1%: the intervals overlap, flagged
        ("adam", 0.01): [990.0, 1000.0, 1010.0], ("adam", 0.001): [995.0, 1003.0, 1011.0]})
    report = build_report([d], fmt="markdown", draw_charts=False)
    assert notes(report) == [("near tie: adam: lr=0.01 chosen over lr=0.001 by 0.3% on 3 seeds each, their 95% "
                              "intervals overlap; a coin toss, not a clear winner")]
    assert "each candidate ran on the validation split (3 seeds)" in report.markdown


def test_no_tie_without_a_runner_up_or_a_winner(real_record, tmp_path: Path) -> None:  # noqa: F811
    d = results_with(tmp_path, real_record, {("sgd", 0.1): [1500.0]})
    report = build_report([d], draw_charts=False)
    (choice,) = report.sections[0].choices
    assert fair.near_tie(choice, report.cells) is None and notes(report) == []
