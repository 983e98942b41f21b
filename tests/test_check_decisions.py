"""The decisions of `optbench check` on synthetic samples: deterministic, no training, no clock.

A cell's runs are built by hand, so each test states exactly what the machine measured: a busy
machine (every time longer, the optimizer's cost relative to the reference step unchanged), an
optimizer step that costs 1.3x or 2x, a fluke that re-measuring does not confirm, a stale baseline.
"""

from __future__ import annotations

import math

import pytest

from optbench.check.baseline import Cell, SeedRun, make_baseline
from optbench.check.compare import compare, compare_confirmed
from optbench.check.output import failure_headline, markdown, update_advice
from optbench.check.runtime import slowdown
from optbench.check.steady import (
    detectable,
    noisy_cells,
    steady_cell,
    steady_sample,
)
from optbench.check.tolerance import Tolerances

ENV = {"cpu": "Test CPU", "cpu_count": 2, "torch_threads": 1, "device_name": "cpu", "torch": "2.5.0",
       "cuda": None, "python": "3.11.9", "optbench": "0.1.0", "git_commit": "abc"}
# Per-seed relative spread of step_cost between runs of unchanged code, as measured on a busy machine.
JITTER = (1.0, 1.03, 0.98, 1.01, 0.99)


def make_cell(step_costs, seconds=None, losses=None, env=None, optimizer="adam", device="cpu", statuses=None) -> Cell:
    n = len(step_costs)
    seconds = seconds or [1.0] * n
    losses = losses or [0.5 + 0.01 * i for i in range(n)]
    runs = [SeedRun(seed=i, status=(statuses or ["ok"] * n)[i], train_seconds=seconds[i], step_cost=step_costs[i],
                    final_train_loss=losses[i], test_loss=losses[i] * 1.1, test_rmse=1500 + i) for i in range(n)]
    return Cell(task="regression", dataset="synthetic", optimizer=optimizer, hparams={"lr": 0.001}, epochs=20,
                batch_size=64, device=device, label=optimizer, cell_hash=f"hash-{optimizer}-{device}",
                metric_name="rmse", runs=runs, environment=dict(env or ENV))


def costs(level: float, seeds: int = 2, offset: int = 0) -> list[float]:
    return [level * JITTER[(i + offset) % len(JITTER)] for i in range(seeds)]


def verdict(comparison, metric: str, optimizer: str = "adam"):
    return next(r for r in comparison.rows if r.metric == metric and r.label == optimizer)


def run_check(base_cells, cur_cells, *rules, exact=False, remeasured=None):
    return compare(make_baseline(base_cells), cur_cells, Tolerances.parse(list(rules)), exact=exact, remeasured=remeasured)


def test_unchanged_code_on_a_busy_machine_passes():
    # Another job beside it: every run takes 1.5x-4x as long, the step's cost relative to the
    # reference step measured beside it does not move.
    base = [make_cell(costs(4.3), seconds=[0.40, 0.41]), make_cell(costs(1.6), optimizer="sgd")]
    cur = [make_cell(costs(4.3, offset=2), seconds=[1.6, 0.62]), make_cell(costs(1.6, offset=3), seconds=[3.9, 4.1], optimizer="sgd")]
    result = run_check(base, cur)
    assert result.exit_code == 0
    assert verdict(result, "step_cost").verdict == "pass"
    assert verdict(result, "train_seconds", "sgd").verdict == "warn"  # whole-run time only warns, at 2x
    assert not result.suspects


@pytest.mark.parametrize("factor", [2.0, 1.5, 1.3])
def test_a_costlier_optimizer_step_fails_with_effect_size_and_interval(factor):
    base = [make_cell(costs(4.3))]
    cur = [make_cell(costs(4.3 * factor, offset=1))]
    row = verdict(run_check(base, cur), "step_cost")
    assert row.verdict == "fail"
    assert row.change == pytest.approx(factor, rel=0.03)
    assert 1 < row.ci_low < row.change < row.ci_high
    assert f"{row.change:.2f}x" == row.change_text and "95% CI" in row.note and "2 vs 2 runs" in row.note


def test_a_small_slowdown_within_the_tolerance_passes_or_warns():
    base = [make_cell(costs(4.3))]
    assert verdict(run_check(base, [make_cell(costs(4.3 * 1.04, offset=1))]), "step_cost").verdict == "pass"
    assert verdict(run_check(base, [make_cell(costs(4.3 * 1.15, offset=1))]), "step_cost").verdict == "warn"


def test_beyond_the_fail_level_but_not_significant_only_warns():
    base = [make_cell([4.0, 6.0])]  # runs that disagree by 50%: no verdict can rest on them
    row = verdict(run_check(base, [make_cell([5.5, 8.0])]), "step_cost")
    assert row.verdict == "warn" and "not significantly" in row.note and row.ci_low < 1


def test_one_run_a_side_has_no_interval_and_the_tolerance_decides():
    row = verdict(run_check([make_cell([4.3])], [make_cell([6.0])]), "step_cost")
    assert row.verdict == "fail" and row.ci_low is None and "too few runs" in row.note


def test_a_slowdown_on_another_machine_only_warns():
    other = {**ENV, "cpu": "Other CPU", "torch_threads": 4}
    row = verdict(run_check([make_cell(costs(4.3))], [make_cell(costs(8.6), env=other)]), "step_cost")
    assert row.verdict == "warn" and "another environment (cpu Test CPU -> Other CPU, torch_threads 1 -> 4)" in row.note
    # A different optbench version or commit is the code under test, not another machine.
    row = verdict(run_check([make_cell(costs(4.3))], [make_cell(costs(8.6), env={**ENV, "git_commit": "def"})]), "step_cost")
    assert row.verdict == "fail"


def test_a_suspect_is_confirmed_or_cleared_by_re_measuring():
    base = [make_cell(costs(4.3)), make_cell(costs(1.6), optimizer="sgd")]
    cur = [make_cell(costs(8.6)), make_cell(costs(1.6), optimizer="sgd")]
    first = run_check(base, cur)
    assert [c.label for c in first.suspects] == ["adam"] and verdict(first, "step_cost").suspect
    # The re-measured runs are as slow: confirmed, on 2 + 6 runs.
    slow = {"hash-adam-cpu": {"step_cost": costs(8.6, seeds=6, offset=1)}}
    row = verdict(run_check(base, cur, remeasured=slow), "step_cost")
    assert (row.verdict, row.remeasured, row.n_current) == ("fail", 6, 8) and "6 of them re-measured" in row.note
    assert not row.suspect
    # A fluke: the re-measured runs are as fast as the baseline, so the pooled effect is small.
    fast = {"hash-adam-cpu": {"step_cost": costs(4.3, seeds=6, offset=1)}}
    assert verdict(run_check(base, cur, remeasured=fast), "step_cost").verdict != "fail"


def test_only_suspects_are_re_measured_with_the_rounds_asked():
    base = make_baseline([make_cell(costs(4.3)), make_cell(costs(1.6), optimizer="sgd")])
    current = [make_cell(costs(8.6)), make_cell(costs(1.6), optimizer="sgd")]
    calls = []

    def remeasure(cells, rounds):
        calls.append(([c.label for c in cells], rounds))
        return {c.cell_hash: {"step_cost": costs(8.6, seeds=2 * rounds)} for c in cells}

    result = compare_confirmed(base, current, Tolerances(), confirm=2, remeasure=remeasure)
    assert calls == [(["adam"], 2)]
    assert verdict(result, "step_cost").remeasured == 4 and result.exit_code == 1
    calls.clear()
    assert compare_confirmed(base, current, Tolerances(), confirm=0, remeasure=remeasure).exit_code == 1
    assert calls == []
    compare_confirmed(make_baseline(current), current, Tolerances(), confirm=2, remeasure=remeasure)
    assert calls == []  # nothing looked slower


def test_step_cost_tolerance_can_be_overridden():
    base, cur = [make_cell(costs(4.3))], [make_cell(costs(6.0))]
    assert run_check(base, cur, "step_cost=1.5x").exit_code == 0
    assert run_check(base, cur, "step_cost@*/sgd=off").exit_code == 1
    assert run_check(base, [make_cell(costs(4.3), seconds=[3.0, 3.1])], "train_seconds=1.5x").exit_code == 1


def test_exact_reproduction_passes_when_every_seed_matches():
    result = run_check([make_cell(costs(4.3))], [make_cell(costs(4.4))], exact=True)
    assert verdict(result, "reproduction").verdict == "pass" and result.exit_code == 0


def test_a_stale_baseline_fails_under_exact_with_the_update_command():
    base = make_cell(costs(4.3), losses=[0.5, 0.51])
    cur = make_cell(costs(4.3), losses=[0.5, 0.5100001])  # within every tolerance, but not the same number
    result = run_check([base], [cur], exact=True)
    row = verdict(result, "reproduction")
    assert row.verdict == "fail" and result.exit_code == 1 and result.stale
    assert row.note.startswith("stale baseline") and "seed 1 final_train_loss 0.51 -> 0.51" in row.note
    assert verdict(result, "final_train_loss").verdict == "pass"
    result.baseline_path, result.results_dir = "results/baseline-ci.json", "/tmp/ci"
    assert result.update_command() == "optbench baseline update --baseline results/baseline-ci.json --results-dir /tmp/ci --cell regression/adam"
    assert failure_headline(result).startswith("Stale baseline") and "Regression in" not in markdown(result)
    # Without --exact the same numbers pass: they are within the tolerances.
    assert run_check([base], [cur]).exit_code == 0


def test_exact_is_not_demanded_across_threads_torch_builds_or_on_cuda():
    base = make_cell(costs(4.3), losses=[0.5, 0.51])
    cur_env = {**ENV, "torch_threads": 2}
    result = run_check([base], [make_cell(costs(4.3), losses=[0.5, 0.5101], env=cur_env)], exact=True)
    assert result.exit_code == 0 and not [r for r in result.rows if r.metric == "reproduction"]
    assert result.notes == ["exact reproduction not checked for 1 cell(s): another environment (torch_threads 1 -> 2); "
                            "the tolerances decided"]
    assert "> exact reproduction not checked for 1 cell(s)" in markdown(result)
    cuda = [make_cell(costs(4.3), device="cuda")], [make_cell(costs(4.3), losses=[0.5, 0.5101], device="cuda")]
    assert not [r for r in run_check(*cuda, exact=True).rows if r.metric == "reproduction"]


def test_baseline_without_step_cost_says_to_refresh_it():
    old = make_cell([None, None])
    row = verdict(run_check([old], [make_cell(costs(4.3))]), "step_cost")
    assert row.verdict == "not comparable" and "baseline update" in row.note


def test_slowdown_interval_is_the_pooled_student_t_interval_on_logs():
    effect = slowdown([1.0, 1.02], [2.0, 2.04, 1.98])
    assert effect.ratio == pytest.approx(math.exp((math.log(2.0) + math.log(2.04) + math.log(1.98)) / 3
                                                  - (math.log(1.0) + math.log(1.02)) / 2))
    assert effect.low < effect.ratio < effect.high and effect.high / effect.low < 1.1
    assert slowdown([1.0], [2.0]).low is None
    same = slowdown([1.0, 1.0], [2.0, 2.0])
    assert same.low == same.high == pytest.approx(2.0)


def test_a_slowdown_just_under_the_fail_level_is_re_measured_and_then_fails():
    """Two noisy runs may show a 1.5x step as 1.2x: beyond the warn level is enough to re-measure."""
    base = [make_cell(costs(4.3))]
    cur = [make_cell(costs(4.3 * 1.2, offset=1))]
    first = run_check(base, cur)
    assert verdict(first, "step_cost").verdict == "warn" and [c.label for c in first.suspects] == ["adam"]
    slow = {"hash-adam-cpu": {"step_cost": costs(4.3 * 1.5, seeds=6, offset=2)}}
    assert verdict(run_check(base, cur, remeasured=slow), "step_cost").verdict == "fail"
    # whole-run time, which never fails by default, is never a reason to re-measure
    assert not run_check(base, [make_cell(costs(4.3), seconds=[5.0, 5.0])]).suspects


def test_a_quality_regression_says_regression_first_and_offers_the_update_only_if_intended():
    base = make_cell(costs(4.3), losses=[0.5, 0.51])
    cur = make_cell(costs(4.3), losses=[0.6, 0.62])  # 20% worse, the same on both seeds: beyond the noise
    for exact in (False, True):  # under exact the cell no longer reproduces either: still a regression first
        result = run_check([base], [cur], exact=exact)
        row = verdict(result, "final_train_loss")
        assert row.verdict == "fail" and row.note.startswith("regression: worse beyond fail level 10% (+20.8%; 29.1 SE of seed noise, paired by seed)")
        assert failure_headline(result) == "Regression in 1 cell(s): each fail row above gives its evidence."
        same = verdict(run_check([base], [make_cell(costs(4.3), losses=[0.6, 0.612])], exact=exact), "final_train_loss")
        assert same.note.endswith("(+20.0%; far beyond seed noise, paired by seed)")  # every seed 1.2x: no spread
        assert update_advice(result).startswith("If the change was intended (not a regression to fix)")
        text = markdown(result)
        assert "stale" not in text.lower()
        assert text.index("Regression in 1 cell(s)") < text.index("If the change was intended") < text.index("optbench baseline update")


def test_a_baseline_keeps_a_stored_sample_that_agrees_with_its_repeats_and_drops_an_inflated_one():
    assert steady_sample(4.3, [4.2, 4.4, 4.35], "step_cost") == 4.3  # within 5% of the median: kept as it was
    assert steady_sample(9.0, [4.2, 4.4, 4.3], "step_cost") == pytest.approx(4.35)  # a load burst: the median
    assert steady_sample(3.0, [1.0, 1.1, 1.05], "train_seconds") == pytest.approx(1.075)  # beyond 1.5x (half of 2x)


def test_a_re_measured_baseline_cell_records_its_median_and_noise():
    cell = make_cell([9.0, 4.3])
    steadied = steady_cell(cell, {0: {"step_cost": [4.2, 4.4, 4.3]}, 1: {"step_cost": [4.3, 4.3, 4.3]}}, rounds=3)
    assert [r.step_cost for r in steadied.runs] == [pytest.approx(4.35), 4.3]
    assert steadied.repeats == 3 and steadied.noise["step_cost"] > 0 and "train_seconds" not in steadied.noise
    assert [r.final_train_loss for r in steadied.runs] == [r.final_train_loss for r in cell.runs]  # quality untouched


def test_a_baseline_whose_noise_would_hide_a_1_5x_step_is_named_with_its_spread():
    # 2 seeds, 3 confirming rounds, fail level 1.25x: a 3% spread catches 1.3x; 12% only 1.53x; 40% not even 2x
    assert detectable(0.03, 2, 3, 1.25) < 1.35 and 1.5 < detectable(0.12, 2, 3, 1.25) < 2 < detectable(0.4, 2, 3, 1.25)
    cells = [make_cell(costs(4.3), optimizer=name).model_copy(update={"noise": {"step_cost": spread}, "repeats": 3})
             for name, spread in (("adam", 0.03), ("sgd", 0.12), ("rmsprop", 0.4))]
    noisy = noisy_cells(cells, confirm=3)
    assert [n.name for n in noisy] == ["regression/rmsprop", "regression/sgd"]
    assert str(noisy[0]).startswith("regression/rmsprop: spread 49%, smallest slowdown caught 2.")


def test_a_baseline_of_the_older_step_clock_leaves_step_cost_out_until_refreshed():
    """Before the empty step and the CPU clock, step_cost was another quantity (gross, wall time):
    comparing it with today's would read as a speed-up and hide a real slowdown."""
    base = make_baseline([make_cell(costs(4.3))])
    assert base.step_clock == 2
    old = base.model_copy(update={"step_clock": 1})
    result = compare(old, [make_cell(costs(9.0))], Tolerances())
    assert verdict(result, "step_cost").verdict == "not comparable" and result.exit_code == 0
    assert result.notes[0].startswith("step_cost not compared: the baseline measured it with an older step clock")
    assert compare(base, [make_cell(costs(9.0))], Tolerances()).exit_code == 1


def test_a_baseline_measured_on_a_busy_machine_is_warned_about():
    """Load through every repeat is no burst the median drops: on small models it lowers step_cost,
    so a baseline measured under it makes a quiet check fail. Above one runnable process per core
    `baseline save` says so, in one line that says what to do."""
    from optbench.check.steady import busy_machine

    assert busy_machine(1.9, 2) is None and busy_machine(2.0, 2) is None
    warning = busy_machine(8.2, 2)
    assert warning.startswith("the machine is busy (load average 8.2 on 2 cores)")
    assert warning.endswith("save it on a quiet machine") and "\n" not in warning
