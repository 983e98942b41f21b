"""Tuning-budget curves (expected best validation score after n trials, with bootstrap bands), the
"trials needed" table, and the note where two optimizers' curves swap places late in the budget."""

from __future__ import annotations

import json
import math
import os
from itertools import combinations

import numpy as np
import pytest

from optbench.report.budget import curve_with_band, expected_best, reach_threshold, worst_score
from optbench.report.crossing import late_crossings

from conftest import CLI


def brute_force(scores: list[float], higher_is_better: bool) -> list[float]:
    """The mean, over every subset of n of the N trials, of the subset's best: n = 1..N."""
    best = max if higher_is_better else min
    out = []
    for n in range(1, len(scores) + 1):
        subsets = [best(s) for s in combinations(scores, n)]
        out.append(math.fsum(subsets) / len(subsets))
    return out


CASES = [
    [0.3],
    [2.0, 1.0],
    [1.0, 1.0, 1.0],  # all tied
    [5.0, 3.0, 3.0, 8.0, 1.0],  # ties inside
    [1469.0, 1358.0, 5584.0, 1359.0, 1400.0, 1358.0, 9000.0],  # N = 7, tied best
    [0.91, 0.5, 0.91, 0.2, 0.77, 0.0, 0.64],
]


@pytest.mark.parametrize("higher_is_better", [False, True])
@pytest.mark.parametrize("scores", CASES)
def test_the_estimator_equals_brute_force_enumeration_of_every_subset(scores, higher_is_better):
    got = expected_best(scores, higher_is_better)
    assert got == pytest.approx(brute_force(scores, higher_is_better), rel=1e-12)
    # The curve only improves with more trials and ends at the best trial (without replacement).
    assert got[-1] == (max(scores) if higher_is_better else min(scores))
    assert all(np.diff(got) >= -1e-9) if higher_is_better else all(np.diff(got) <= 1e-9)


def test_failed_trials_count_as_the_worst_score_without_any_nan():
    # Two failed trials of five (lower is better: +inf): any 1 or 2 trials may all have failed.
    scores = [3.0, math.inf, 1.0, math.inf, 2.0]
    got = expected_best(scores, higher_is_better=False)
    assert got[:2].tolist() == [math.inf, math.inf]
    assert got.tolist() == pytest.approx(brute_force(scores, False))
    expected, low, high = curve_with_band(scores, higher_is_better=False)
    assert not np.isnan(np.concatenate([expected, low, high])).any()
    # An accuracy: a failed trial scores 0, so the curve is finite from one trial on.
    assert worst_score("val_accuracy", True) == 0.0 and worst_score("val_rmse", False) == math.inf
    assert np.isfinite(expected_best([0.9, 0.0, 0.8], True)).all()
    every = curve_with_band([math.inf, math.inf], higher_is_better=False)
    assert [v.tolist() for v in every] == [[math.inf, math.inf]] * 3


def test_the_bootstrap_band_contains_the_estimate_and_is_the_same_every_time():
    scores = [5.0, 3.0, 3.0, 8.0, 1.0, 2.5, 4.0, 9.5]
    expected, low, high = curve_with_band(scores, higher_is_better=False)
    assert (low <= expected).all() and (expected <= high).all()
    assert (low < high)[:-1].all()  # a real band, not a line, where the trials differ
    again = curve_with_band(scores, higher_is_better=False)
    assert all((a == b).all() for a, b in zip((expected, low, high), again))
    other = curve_with_band(scores, higher_is_better=False, seed=1)
    assert (other[0] == expected).all() and not (other[1] == low).all()  # the seed moves the band only


def test_reaching_95_percent_of_the_best_means_95_percent_of_an_accuracy_and_5_percent_above_an_error():
    assert reach_threshold(0.8, higher_is_better=True) == pytest.approx(0.76)
    assert reach_threshold(1000.0, higher_is_better=False) == pytest.approx(1050.0)


# --- crossings -----------------------------------------------------------------------------------

def curve(values: list[float]) -> list[tuple[float, float]]:
    return [(float(e), v) for e, v in enumerate(values, start=1)]


def test_curves_that_cross_before_half_way_get_no_note():
    # 10 epochs: sgd is ahead (lower loss) from epoch 3 on, i.e. before half way.
    curves = {"adam": curve([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), "sgd": curve([2, 3, 2, 3, 4, 5, 6, 7, 8, 9])}
    assert late_crossings(curves) == []


def test_curves_that_swap_places_after_half_way_get_a_note_at_the_first_epoch_of_the_new_order():
    adam = [1.0] * 10
    sgd = [2.0] * 6 + [1.5, 0.9, 0.8, 0.7]  # overtakes adam at epoch 8 of 10
    [crossing] = late_crossings({"adam": curve(adam), "sgd": curve(sgd)})
    assert (crossing.leader, crossing.other, crossing.epoch, crossing.epochs) == ("sgd", "adam", 8, 10)
    assert crossing.text() == ("adam and sgd swap places at epoch 8 of 10 (sgd ahead from then on): "
                               "a ranking taken before then would flip")
    # Higher is better (accuracy): the same numbers mean the opposite order, and the same swap.
    [flipped] = late_crossings({"adam": curve(adam), "sgd": curve(sgd)}, higher_is_better=True)
    assert (flipped.leader, flipped.epoch) == ("adam", 8)
    # The budget's epochs decide where half way is: with 20 planned epochs, epoch 8 is early.
    assert late_crossings({"adam": curve(adam), "sgd": curve(sgd)}, epochs=20) == []


def test_curves_that_touch_without_crossing_get_no_note_and_several_crossings_name_the_last():
    adam = [1.0] * 10
    touching = [2.0] * 6 + [1.0, 1.0, 1.5, 2.0]  # meets adam at epochs 7-8, stays behind
    assert late_crossings({"adam": curve(adam), "sgd": curve(touching)}) == []
    through_a_tie = [2.0] * 6 + [1.0, 0.5, 0.5, 0.5]  # equal at 7, ahead from 8: one swap, at 8
    assert [c.epoch for c in late_crossings({"adam": curve(adam), "sgd": curve(through_a_tie)})] == [8]
    twice = [2.0] * 6 + [0.5, 0.5, 1.5, 0.5]  # ahead at 7, behind at 9, ahead again at 10
    [c] = late_crossings({"adam": curve(adam), "sgd": curve(twice)})
    assert (c.leader, c.epoch, c.count) == ("sgd", 10, 3) and "last of 3 crossings" in c.text("training loss")
    # With a tolerance, curves that end level and jitter about each other never swap places.
    jitter = [2.0] * 5 + [1.004, 0.997, 1.003, 0.998, 1.002]
    assert len(late_crossings({"adam": curve(adam), "sgd": curve(jitter)})) == 1
    assert late_crossings({"adam": curve(adam), "sgd": curve(jitter)}, tolerance=0.01) == []
    # Missing or non-finite points are skipped, not read as a crossing.
    gaps = [(1.0, 2.0), (6.0, math.nan), (9.0, 2.0)]
    assert late_crossings({"adam": curve(adam), "sgd": gaps}) == []


# --- end to end ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> CLI:
    """A tiny real --select run: sgd with 3 learning rates, one of which diverges, adam with 2."""
    root = tmp_path_factory.mktemp("budget")
    cli = CLI(root / "results", root / "data")
    result = cli.run("--opt", "sgd:lr=1e-3|1e-1|1e4", "adam:lr=1e-3|1e-1", "--epochs", "2", "--select", "--quiet")
    assert result.exit_code == 0, result.output
    return cli


def test_a_select_sweep_gets_budget_curves_a_chart_and_a_trials_needed_table(swept, tmp_path, monkeypatch):
    from optbench.report.budget import budget_curves

    curves = {c.optimizer: c for c in budget_curves(swept.stored())}
    assert sorted(curves) == ["adam", "sgd"]
    sgd = curves["sgd"]
    assert (sgd.trials, sgd.failed, sgd.metric, sgd.higher_is_better) == (3, 1, "val_rmse", False)
    assert sgd.expected[0] == math.inf and math.isfinite(sgd.expected[1])  # 1 trial may be the diverged one
    assert sgd.group == "2 epochs, batch 64" and curves["adam"].failed == 0

    monkeypatch.setenv("COLUMNS", "80")
    result = swept("report", "--results-dir", str(swept.results_dir), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "regression-synthetic-budget.png").stat().st_size > 0
    table = result.stdout.split(": trials needed")[1].split("\nwrote ")[0]
    assert max(map(len, table.splitlines())) <= 80
    assert "│ sgd " in table and "│ adam " in table
    assert "│ sgd       │      3 │         ∞ │" in table  # one trial drawn may be the diverged one

    md = swept("report", "--results-dir", str(swept.results_dir), "--out", str(tmp_path), "--format", "markdown")
    assert "trials needed" in md.stdout and "](regression-synthetic-budget.png)" in (tmp_path / "report.md").read_text()
    doc = json.loads(swept("report", "--results-dir", str(swept.results_dir), "--no-charts", "--format", "json").stdout)
    needed = {r["optimizer"]: r for r in doc["tables"]["trials_needed"]}
    assert needed["sgd"]["trials"] == 3 and needed["sgd"]["failed"] == 1 and needed["sgd"]["best_of_1"] is None
    assert len(doc["tables"]["budget"]) == 3 + 2  # a point per trial count per sweep
    assert os.path.exists(tmp_path / "regression-synthetic-budget.png")


def test_the_report_notes_a_late_swap_under_the_groups_test_table_only():
    import pandas as pd

    from optbench.report.build import _add_crossing_notes
    from optbench.report.tables import GroupTable, Section

    group = {"task": "regression", "dataset": "synthetic", "budget": "10 epochs, batch 64", "epochs": 10,
             "charts": "regression-synthetic-"}
    cells = pd.DataFrame([{**group, "name": n, "split": "test"} for n in ("adam", "sgd")])
    sgd = [2.0] * 6 + [1.5, 0.9, 0.8, 0.7]
    curves = pd.DataFrame([{**group, "name": name, "epoch": e, "train_loss_mean": v, "test_metric_mean": 1.0}
                           for name, values in (("adam", [1.0] * 10), ("sgd", sgd))
                           for e, v in enumerate(values, start=1)])
    tables = [GroupTable("regression", "synthetic", t, "", [], [], [], kind=kind, charts="regression-synthetic-")
              for t, kind in (("cells", "cells"), ("tuning", "default_vs_tuned"))]
    _add_crossing_notes(tables, Section("e", pd.DataFrame({"task": []}), cells, curves))
    assert tables[0].notes == ["adam and sgd swap places in training loss at epoch 8 of 10 (sgd ahead from then on): "
                               "a ranking taken before then would flip"]
    assert tables[1].notes == []
