"""Fair comparisons: sweeps and --select, the validation split, schedules, clipping, early stopping,
time budgets, time to target and the performance profile.

Runs are real and tiny (the linear regression task on its built-in data, a few epochs); the
profile and time to target are checked against numbers worked out by hand here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import CLI
from optbench.engine.eager import run
from optbench.optim.hparams import resolve_hparams
from optbench.report.profile import profile, ratios, scores
from optbench.engine.schedules import LRSchedule
from optbench.spec import RunSpec
from optbench.config.suite import build_specs, load_suite, read_config, targets_for
from optbench.config.hparams import OptimizerSweep
from optbench.config.sweep import expand
from optbench.spec.targets import Target, time_to_target
from optbench.tasks import get_task
from optbench.config.training import resolve_training

ROOT = Path(__file__).resolve().parents[1]


def spec(optimizer: str = "sgd", epochs: int = 6, **training) -> RunSpec:
    """A linear-regression spec on the CPU with the given training options (optbench.config.training.resolve_training)."""
    name, _, lr = optimizer.partition("@")
    hparams = resolve_hparams(name, {"lr": float(lr)} if lr else {})
    return RunSpec("regression", "synthetic", name, hparams, epochs, 64, 0, "cpu", training=resolve_training(epochs, training))


def lrs(result) -> list[float]:
    return [p.lr for p in result.curve]


# --- the spec ------------------------------------------------------------------------------------

def test_specs_without_training_options_keep_their_hashes():
    # Pinned before training options existed: results/baseline-ci.json pairs cells by these hashes.
    plain = RunSpec("regression", "synthetic", "sgd", {"lr": 0.01}, 50, 64, 0, "cpu")
    assert (plain.spec_hash(), plain.cell_hash()) == ("87d5253f3faf30d0", "333f79633749a6ef")
    assert "training" not in plain.to_dict()
    ci = build_specs(load_suite(read_config(ROOT / "configs" / "ci.toml")))
    baseline = json.loads((ROOT / "results" / "baseline-ci.json").read_text())
    assert {s.cell_hash() for s in ci} == {c["cell_hash"] for c in baseline["cells"]}


def test_training_options_are_stored_and_read_back_and_change_the_hash():
    s = spec(schedule="step:step_size=2", warmup_epochs=1, clip_norm=1.0, split="validation")
    assert s.to_dict()["training"] == {"schedule": "step", "step_size": 2, "gamma": 0.1, "warmup_epochs": 1,
                                       "clip_norm": 1.0, "split": "validation"}
    assert RunSpec.from_dict(s.to_dict()) == s
    assert s.spec_hash() != spec().spec_hash()


def test_a_suite_file_sets_training_options_and_per_task_targets(tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('tasks = [{ name = "regression", target = "rmse=1500" }, { name = "cifar10", dataset = "synthetic", '
                      'target = "accuracy=0.6" }]\noptimizers = ["sgd"]\nepochs = 9\n'
                      'schedule = { name = "step", step_size = 4 }\nclip_value = 1.0\n')
    suite = load_suite(read_config(config))
    assert {s.training.to_dict()["step_size"] for s in build_specs(suite)} == {4}
    assert {s.training.clip_value for s in build_specs(suite)} == {1.0}
    assert {k: t.text() for k, t in targets_for(suite).items()} == {"regression": "rmse=1500", "cifar10": "accuracy=0.6"}


def test_list_says_weight_decay_is_a_hyperparameter_and_how_to_sweep(cli):
    result = cli("list")
    assert 'adam:weight_decay=1e-4' in result.stdout and "lr=1e-4|1e-3|1e-2" in result.stdout


# --- sweeps and selection ------------------------------------------------------------------------

def test_inline_alternatives_expand_to_their_product_in_order():
    assert expand(OptimizerSweep.parse("adam:lr=1e-3|1e-2,betas=0.9/0.99|0.8/0.9")) == [
        {"lr": 1e-3, "betas": (0.9, 0.99)}, {"lr": 1e-3, "betas": (0.8, 0.9)},
        {"lr": 1e-2, "betas": (0.9, 0.99)}, {"lr": 1e-2, "betas": (0.8, 0.9)}]
    assert expand(OptimizerSweep.parse("adam:lr=3e-4")) == [{"lr": 3e-4}]


def test_config_lists_and_log_ranges_expand():
    def expand_table(name, table):
        return expand(OptimizerSweep.from_table(name, table))

    assert expand_table("sgd", {"lr": {"log": [1e-5, 1e-1], "num": 5}}) == [
        {"lr": 1e-5}, {"lr": 1e-4}, {"lr": 1e-3}, {"lr": 1e-2}, {"lr": 1e-1}]
    assert expand_table("adam", {"betas": [0.9, 0.98]}) == [{"betas": (0.9, 0.98)}]  # one tuple value
    assert expand_table("adam", {"betas": [[0.9, 0.98], [0.8, 0.9]], "lr": [1e-3, 1e-2]}) == [
        {"betas": (0.9, 0.98), "lr": 1e-3}, {"betas": (0.9, 0.98), "lr": 1e-2},
        {"betas": (0.8, 0.9), "lr": 1e-3}, {"betas": (0.8, 0.9), "lr": 1e-2}]
    suite = load_suite({"optimizers": [{"name": "momentum", "lr": {"log": [1e-3, 1e-1], "num": 3}}]})
    assert [s.hparams["lr"] for s in build_specs(suite)] == [1e-3, 1e-2, 1e-1]


@pytest.fixture(scope="module")
def selected(tmp_path_factory: pytest.TempPathFactory):
    """A real --select run: momentum and sgd learning-rate sweeps, 3 epochs, 2 final seeds, a loss target."""
    root = tmp_path_factory.mktemp("select")
    cli = CLI(root / "results", root / "data")
    result = cli.run("--opt", "momentum:lr=1e-4|1e-3|1e-2", "sgd:lr=1e-4|1e-1", "--epochs", "3", "--select",
                     "--seeds", "2", "--target", "loss=0.3", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    return cli, json.loads(result.stdout)


def test_select_tunes_on_validation_and_reruns_the_best_and_the_defaults_on_test(selected):
    cli, records = selected
    sweep = [r for r in records if r.get("stage") == "sweep"]
    # Every candidate ran once, with the first seed, on the validation split: no test metric seen.
    assert [(r["spec"]["optimizer"], r["spec"]["hparams"]["lr"]) for r in sweep] == [
        ("momentum", 1e-4), ("momentum", 1e-3), ("momentum", 1e-2), ("sgd", 1e-4), ("sgd", 1e-1)]
    assert all(r["spec"]["training"] == {"split": "validation"} and r["spec"]["seed"] == 0 for r in sweep)
    assert all("val_rmse" in r["metrics"] and "test_rmse" not in r["metrics"] for r in sweep)
    # In 3 epochs a tiny learning rate clearly underfits: the largest candidate wins for both.
    final = [r for r in records if r.get("stage") == "final"]
    assert [(r["spec"]["optimizer"], r["spec"]["hparams"]["lr"], r["spec"]["seed"]) for r in final] == [
        ("momentum", 1e-2, 0), ("momentum", 1e-2, 1), ("sgd", 1e-1, 0), ("sgd", 1e-1, 1)]
    assert all("training" not in r["spec"] and "test_rmse" in r["metrics"] for r in final)
    # Defaults on test for comparison; momentum's default (lr=0.01) won, so it is not repeated.
    default = [r for r in records if r.get("stage") == "default"]
    assert [(r["spec"]["optimizer"], r["spec"]["hparams"]["lr"]) for r in default] == [("sgd", 0.01), ("sgd", 0.01)]
    assert len(cli.stored()) == len(records) == 11


def test_select_resumes_without_repeating_any_run(selected):
    cli, records = selected
    again = cli.run("--opt", "momentum:lr=1e-4|1e-3|1e-2", "sgd:lr=1e-4|1e-1", "--epochs", "3", "--select",
                    "--seeds", "2", "--target", "loss=0.3")
    assert again.exit_code == 0, again.output
    assert "skipped 11 already finished" in again.stdout
    assert "momentum(lr=0.0001)" not in again.stdout.split("selection")[0]  # no run was repeated
    assert len(cli.stored()) == 11


def test_report_shows_default_vs_tuned_sensitivity_time_to_target_and_profile(selected, tmp_path):
    cli, _ = selected
    result = cli("report", "--results-dir", str(cli.results_dir), "--out", str(tmp_path), "--format", "markdown")
    assert result.exit_code == 0, result.output
    md = result.stdout
    assert "### regression on synthetic: default vs tuned" in md
    assert "| sgd | lr | 2 of 2 | sgd(lr=0.1) |" in md
    assert "sweep candidates on the validation split" in md
    assert "### regression on synthetic: time to target loss=0.3" in md
    assert "### performance profile over 1 task(s)" in md
    for stem in ("regression-synthetic-sensitivity", "regression-synthetic-time-to-target",
                 "all-tasks-performance-profile", "regression-synthetic-comparison"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
    other = cli("report", "--results-dir", str(cli.results_dir), "--no-charts", "--target", "loss=0.05")
    assert other.exit_code == 0 and "time to target loss=0.05" in other.stdout


def test_json_and_csv_exports_carry_every_table_the_terminal_shows(selected):
    from optbench.report.build import EXPORT_TABLES, TABLE_KINDS, build_report

    cli, _ = selected
    shown = build_report([cli.results_dir], draw_charts=False).tables
    assert {t.kind for t in shown} == {"cells", "validation", "default_vs_tuned", "time_to_target", "profile",
                                       "trials_needed"}
    result = cli("report", "--results-dir", str(cli.results_dir), "--no-charts", "--format", "json")
    assert result.exit_code == 0, result.output
    tables = json.loads(result.stdout)["tables"]
    assert set(tables) == set(EXPORT_TABLES)
    for t in shown:  # each terminal table's rows are in the export, under its key
        rows = [r for r in tables[TABLE_KINDS[t.kind]] if r["experiment"] == t.experiment]
        if t.kind in ("cells", "validation"):
            split = "test" if t.kind == "cells" else "validation"
            exported = [r["label"] for r in rows if r["task"] == t.task and r["split"] == split]
        elif t.kind == "profile":
            exported = list(dict.fromkeys(r["optimizer"] for r in rows))
        else:
            exported = [r["name"] for r in rows if r["task"] == t.task]
        assert sorted(exported) == sorted(row[0] for row in t.rows), t.title
    ttt = {r["name"]: r for r in tables["time_to_target"]}
    assert all(r["target"] == "loss=0.3" and r["runs"] == 2 for r in ttt.values())
    sgd = next(r for r in tables["default_vs_tuned"] if r["optimizer"] == "sgd")
    assert (sgd["chosen"], sgd["tuned_n"], sgd["default_n"], sgd["candidates"]) == ("sgd(lr=0.1)", 2, 2, 2)
    # The sensitivity chart's numbers: per sweep and value the best validation metric, one chosen.
    assert sorted((r["optimizer"], r["value"], r["chosen"]) for r in tables["sensitivity"]) == [
        ("momentum", 1e-4, False), ("momentum", 1e-3, False), ("momentum", 1e-2, True),
        ("sgd", 1e-4, False), ("sgd", 1e-1, True)]

    csv = cli("report", "--results-dir", str(cli.results_dir), "--no-charts", "--format", "csv").stdout
    assert [line for line in csv.splitlines() if line.startswith("# table: ")] == [f"# table: {n}" for n in EXPORT_TABLES]
    one = cli("report", "--results-dir", str(cli.results_dir), "--no-charts", "--format", "csv", "--table", "profile")
    assert one.stdout.splitlines()[0] == ("experiment,optimizer,score,measure,problem,label,value,steps,epochs,seconds,"
                                          "step_cost,ratio")
    assert len(one.stdout.splitlines()) == 1 + len(tables["profile"])


# --- the validation split ------------------------------------------------------------------------

def test_validation_rows_come_from_training_are_disjoint_from_test_and_fixed_by_the_seed():
    data = get_task("regression").load("synthetic", Path("unused"))
    val = data.validation_split()

    def rows(x: torch.Tensor, y: torch.Tensor) -> set[tuple[float, float]]:
        return {(float(a), float(b)) for a, b in zip(x[:, 0], y)}

    train, test = rows(data.x_train, data.y_train), rows(data.x_test, data.y_test)
    fit, held = rows(val.x_train, val.y_train), rows(val.x_test, val.y_test)
    assert len(held) == round(0.2 * len(train)) and fit | held == train and not fit & held
    assert not held & test and not fit & test
    again = data.validation_split()
    assert torch.equal(again.x_test, val.x_test) and torch.equal(again.x_train, val.x_train)
    assert not torch.equal(data.validation_split(seed=1).x_test, val.x_test)


def test_a_validation_run_is_evaluated_on_validation_only():
    result = run(spec(epochs=2, split="validation"))
    assert {"val_loss", "val_rmse"} <= set(result.metrics) and "test_rmse" not in result.metrics
    point = result.to_record()["curve"][-1]
    assert point["test_loss"] is None and point["val_metric"] == result.metrics["val_rmse"]


# --- schedules -----------------------------------------------------------------------------------

@pytest.mark.parametrize("options, expected", [
    ({}, [0.1] * 6),
    ({"schedule": "step:step_size=2,gamma=0.5"}, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]),
    ({"schedule": "cosine", "warmup_epochs": 2},
     [0.1 / 3, 0.2 / 3, *(0.1 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4))]),
    ({"warmup_epochs": 3}, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1]),
])
def test_each_schedule_gives_the_documented_learning_rate_per_epoch(options, expected):
    assert lrs(run(spec("sgd@0.1", **options))) == pytest.approx(expected)


def test_plateau_cuts_the_rate_after_patience_epochs_without_improvement():
    # lr 1e-9 leaves the loss flat: after the first epoch no epoch improves by the 1e-4 threshold.
    flat = run(spec("sgd@1e-9", schedule="plateau:patience=1,factor=0.5"))
    assert lrs(flat) == pytest.approx([1e-9, 1e-9, 1e-9, 5e-10, 5e-10, 2.5e-10])
    # An improving loss resets the count: only the two flat epochs at the end cut the rate.
    schedule = LRSchedule(resolve_training(8, {"schedule": "plateau:patience=1,factor=0.5"}), 8)
    factors = []
    for epoch, loss in enumerate([5.0, 4.0, 4.0, 3.0, 3.0, 3.0, 2.0, 2.0], start=1):
        factors.append(schedule.factor(epoch))
        schedule.observe(epoch, loss)
    assert factors == [1, 1, 1, 1, 1, 1, 0.5, 0.5]


# --- clipping, early stopping, budget ------------------------------------------------------------

def test_clipping_by_norm_tames_a_diverging_learning_rate_and_is_a_no_op_above_the_norm():
    wild = run(spec("sgd@3", epochs=4))
    assert wild.status == "diverged"
    clipped = run(spec("sgd@3", epochs=4, clip_norm=0.1))
    assert clipped.status == "ok" and clipped.metrics["rmse_gap"] < 0.2
    plain, loose = run(spec("sgd@0.01", epochs=3)), run(spec("sgd@0.01", epochs=3, clip_norm=1e9))
    assert [p.train_loss for p in plain.curve] == [p.train_loss for p in loose.curve]


def test_clipping_by_value_bounds_every_step():
    # With sgd (no momentum) a step moves each parameter by at most lr * clip_value, so from the
    # same start a tight clip learns far less in one epoch than no clip.
    free, tight = run(spec("sgd@0.1", epochs=1)), run(spec("sgd@0.1", epochs=1, clip_value=1e-3))
    assert tight.curve[0].train_loss > 5 * free.curve[0].train_loss


def test_early_stopping_ends_the_run_as_converged_at_the_first_small_change():
    result = run(spec("sgd@0.01", epochs=50, early_stop_delta=0.01))
    assert result.status == "converged"
    losses = [p.train_loss for p in result.curve]
    stopped = result.metrics["stopped_epoch"]
    assert stopped == len(losses) == result.metrics["epochs_completed"] < 50
    changes = [abs(b - a) / a for a, b in zip(losses, losses[1:])]
    assert changes[-1] < 0.01 and all(c >= 0.01 for c in changes[:-1])
    assert "test_rmse" in result.metrics


def test_a_time_budget_stops_the_run_with_status_budget():
    result = run(spec("sgd@0.01", epochs=5, time_budget_s=1e-9))
    assert (result.status, result.metrics["stopped_epoch"], len(result.curve)) == ("budget", 1, 1)


def test_converged_runs_count_as_finished_for_resume_report_and_check(cli, tmp_path):
    args = ("--opt", "sgd", "--epochs", "50", "--early-stop", "0.01", "--seeds", "2", "--quiet")
    assert cli.run(*args).exit_code == 0
    assert {r["status"] for r in cli.stored()} == {"converged"}
    assert "skipped 2 already finished" in cli.run(*args).stdout
    report = cli("report", "--results-dir", str(cli.results_dir), "--no-charts", "--format", "markdown")
    assert "| sgd | 2 |" in report.stdout and "2 of 2 converged" in report.stdout
    baseline = tmp_path / "baseline.json"
    assert cli("baseline", "save", "--results-dir", str(cli.results_dir), "--out", str(baseline), "--repeats", "0").exit_code == 0
    check = cli("check", "--baseline", str(baseline), "--results-dir", str(cli.results_dir))
    assert check.exit_code == 0, check.output


# --- time to target ------------------------------------------------------------------------------

def test_time_to_target_is_the_first_epoch_that_reaches_it():
    curve = [{"epoch": 1, "time_s": 0.5, "test_loss": 1.0, "test_metric": 0.3},
             {"epoch": 2, "time_s": 1.0, "test_loss": None, "test_metric": None},
             {"epoch": 3, "time_s": 1.5, "test_loss": 0.5, "test_metric": 0.61},
             {"epoch": 4, "time_s": 2.0, "test_loss": 0.4, "test_metric": 0.7}]
    assert time_to_target(curve, Target("loss", 0.5)) == (1.5, 3)  # <= reaches it
    assert time_to_target(curve, Target("accuracy", 0.6)) == (1.5, 3)  # >= for accuracy
    assert time_to_target(curve, Target("rmse", 0.3)) == (0.5, 1)
    assert time_to_target(curve, Target("loss", 0.1)) == (None, None)


def test_runs_record_time_to_target_from_their_curve(cli):
    never, = cli.run_json("--opt", "sgd:lr=1e-4", "--epochs", "2", "--target", "rmse=1500")
    assert never["target"] == {"metric": "rmse", "value": 1500.0}
    assert never["metrics"]["time_to_target_s"] is None and never["metrics"]["epochs_to_target"] is None
    reached, = cli.run_json("--opt", "sgd", "--epochs", "5", "--target", "loss=0.5")
    first = next(p for p in reached["curve"] if p["test_loss"] <= 0.5)
    assert (reached["metrics"]["time_to_target_s"], reached["metrics"]["epochs_to_target"]) == (
        first["time_s"], first["epoch"])


# --- performance profile -------------------------------------------------------------------------

def test_performance_profile_and_score_match_a_hand_computed_example():
    # Task A: x 1 s, y 2 s, z never. Task B: x 3 s, y 1.5 s, z 4.5 s. Task C: nobody reached it.
    times = {"A": {"x": 1.0, "y": 2.0, "z": None}, "B": {"x": 3.0, "y": 1.5, "z": 4.5},
             "C": {"x": None, "y": None, "z": None}}
    r = ratios(times)
    assert r["A"] == {"x": 1.0, "y": 2.0, "z": math.inf} and r["B"] == {"x": 2.0, "y": 1.0, "z": 3.0}
    assert profile(times, [1, 2, 3, 4]) == {"x": [1 / 3, 2 / 3, 2 / 3, 2 / 3], "y": [1 / 3, 2 / 3, 2 / 3, 2 / 3],
                                            "z": [0, 0, 1 / 3, 1 / 3]}
    # Area over [1, 4] / 3: x gets (4-1)/3 on A and (4-2)/3 on B, over 3 tasks: (1 + 2/3) / 3 = 5/9.
    assert scores(times) == pytest.approx({"x": 5 / 9, "y": 5 / 9, "z": 1 / 9})
    assert scores({"A": {"x": 1.0, "y": 4.0}}) == pytest.approx({"x": 1.0, "y": 0.0})


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--opt", "adam:lr=1e-3||1e-2"], "empty alternative"),
    (["--opt", "adam:lr=1e-3|fast"], "must be a number"),
    (["--target", "speed=3"], "unknown target metric 'speed'"),
    (["--target", "loss"], "write METRIC=VALUE"),
    (["--target", "accuracy=0.6"], "task 'regression' measures rmse, not accuracy"),
    (["--schedule", "linear"], "unknown schedule 'linear'"),
    (["--schedule", "step:gamma=fast"], "must be a number"),
    (["--schedule", "cosine:step_size=2"], "unknown parameter 'step_size' for schedule 'cosine'"),
    (["--schedule", "plateau:factor=2"], "factor of schedule 'plateau' must be a number in (0, 1)"),
    (["--clip-norm", "1", "--clip-value", "1"], "choose one of clip_norm"),
    (["--clip-norm", "-1"], "clip_norm"),
    (["--warmup", "5"], "warmup_epochs (5) must be less than the epochs (5)"),
    (["--split", "train"], "split"),
    (["--select", "--split", "validation"], "--select runs the sweep on the validation split"),
])
def test_bad_fair_comparison_options_exit_2_with_one_line_and_write_nothing(cli, args, message):
    result = cli.run("--epochs", "5", *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not cli.results_dir.exists()


def test_a_bad_range_in_a_suite_file_is_one_line(cli, tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('optimizers = [{ name = "sgd", lr = { log = [0, 1], num = 3 } }]\n')
    result = cli.run("--config", str(config))
    assert result.exit_code == 2 and "a log range needs positive ends" in result.stderr
