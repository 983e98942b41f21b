"""`optbench run` end to end: every task, flag syntax, the store and the JSON output."""

from __future__ import annotations

import json
import math

import pytest

from optbench.optim.registry import REGISTRY


def test_default_suite_is_regression_with_the_four_classic_optimizers(cli):
    result = cli.run("--epochs", "3")
    assert result.exit_code == 0, result.output
    records = cli.stored()
    assert [(r["spec"]["task"], r["spec"]["dataset"], r["spec"]["optimizer"]) for r in records] == [
        ("regression", "synthetic", name) for name in ("sgd", "momentum", "rmsprop", "adam")
    ]
    assert "optbench results" in result.stdout and "momentum" in result.stdout


@pytest.mark.parametrize("task, metric", [("regression", "test_rmse"), ("mlp", "test_rmse"), ("cifar10", "test_accuracy")])
def test_each_task_end_to_end_records_runtime_loss_and_metric(cli, task, metric):
    # Batches of 256 on the CNN: a quarter of the steps of the default 64 (the slowest test in the suite otherwise).
    size = ["--batch-size", "256"] if task == "cifar10" else []
    (record,) = cli.run_json("--task", task, "--dataset", "synthetic", "--opt", "adam", "--epochs", "2", *size)
    assert record["status"] == "ok"
    m = record["metrics"]
    assert m["train_seconds"] > 0 and m["steps"] > 0 and m["steps_per_s"] > 0 and m["samples_per_s"] > 0
    assert math.isfinite(m["final_train_loss"]) and math.isfinite(m["test_loss"]) and math.isfinite(m[metric])
    assert [p["epoch"] for p in record["curve"]] == [1, 2]
    assert record["curve"][1]["time_s"] >= record["curve"][0]["time_s"] > 0
    assert record["curve"][-1]["test_metric"] == m[metric]
    assert cli.stored() == [record]  # the JSON printed is exactly what was stored
    if task == "cifar10":
        assert m["test_accuracy"] > 0.5  # synthetic images have learnable classes; chance is 0.1


@pytest.mark.parametrize("opt_args", [
    ["--opt", "adam", "sgd"],
    ["--opt", "adam", "--opt", "sgd"],
    ["--opt", "adam,sgd"],
    ["-o", "adam", "sgd"],
])
def test_several_optimizers_after_one_flag_repeated_or_comma_separated(cli, opt_args):
    records = cli.run_json("--epochs", "1", *opt_args)
    assert [r["spec"]["optimizer"] for r in records] == ["adam", "sgd"]


@pytest.mark.parametrize("task_args", [["--task", "regression", "mlp"], ["--task", "regression,mlp"],
                                       ["--task", "regression", "--task", "mlp"]])
def test_several_tasks_after_one_flag(cli, task_args):
    records = cli.run_json("--opt", "sgd", "--epochs", "1", *task_args)
    assert [r["spec"]["task"] for r in records] == ["regression", "mlp"]


def test_inline_hyperparameters_with_tuples_and_following_optimizer(cli):
    records = cli.run_json("--epochs", "1", "--opt", "adam:lr=3e-4,betas=0.9/0.98,weight_decay=1e-4,sgd")
    adam, sgd = (r["spec"] for r in records)
    assert adam["hparams"]["lr"] == 3e-4 and adam["hparams"]["betas"] == [0.9, 0.98]
    assert adam["hparams"]["weight_decay"] == 1e-4
    assert sgd["optimizer"] == "sgd" and sgd["hparams"] == {"lr": REGISTRY["sgd"].defaults["lr"]}


def test_seeds_repeat_every_cell(cli):
    records = cli.run_json("--opt", "sgd", "adam", "--epochs", "1", "--seed", "5", "--seeds", "2")
    assert [(r["spec"]["optimizer"], r["spec"]["seed"]) for r in records] == [
        ("sgd", 5), ("sgd", 6), ("adam", 5), ("adam", 6)]


def test_json_prints_only_the_array_on_stdout(cli):
    result = cli.run("--json", "--quiet", "--opt", "sgd", "--epochs", "1")
    assert result.exit_code == 0
    records = json.loads(result.stdout)
    assert len(records) == 1 and records[0]["spec"]["optimizer"] == "sgd"


def test_record_has_spec_schema_and_environment(cli):
    (record,) = cli.run_json("--opt", "adam", "--epochs", "1")
    assert record["schema_version"] == 1
    assert set(record["spec"]) == {"task", "dataset", "optimizer", "hparams", "epochs", "batch_size", "seed", "device"}
    assert record["spec"]["device"] == "cpu" and record["spec"]["batch_size"] == 64
    env = record["environment"]
    for key in ("optbench", "torch", "python", "cpu", "device", "device_name", "cuda", "git_commit"):
        assert key in env
    assert env["device_name"] == "cpu"
    assert len(record["spec_hash"]) == 16 and record["spec_hash"] != record["cell_hash"]


def test_regression_records_least_squares_floor_and_gap(cli):
    (record,) = cli.run_json("--opt", "momentum", "--epochs", "30")
    m = record["metrics"]
    assert 1300 < m["optimum_rmse"] < 1700  # the synthetic noise level is 1500 dollars
    assert m["rmse_gap"] == pytest.approx((m["test_rmse"] - m["optimum_rmse"]) / m["optimum_rmse"])
    assert abs(m["rmse_gap"]) < 0.05  # momentum converges to the floor on this problem


def test_each_run_is_one_new_file_and_nothing_is_overwritten(cli):
    cli.run_json("--opt", "sgd", "--epochs", "1")
    cli.run_json("--opt", "sgd", "--epochs", "1", "--force")
    files = list((cli.results_dir / "runs").iterdir())
    assert len(files) == 2 and all(f.suffix == ".json" for f in files)


def test_list_shows_tasks_datasets_and_optimizer_defaults(cli):
    result = cli("list")
    assert result.exit_code == 0
    for name in ["regression", "mlp", "cifar10", "synthetic", "diamonds", *REGISTRY]:
        assert name in result.stdout
    assert "lr=0.001" in result.stdout


def test_config_file_with_flag_overrides(cli, tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('tasks = [{name = "mlp", epochs = 3}]\noptimizers = ["adam:lr=0.01", "sgd"]\nseeds = 2\n')
    records = cli.run_json("--config", str(config), "--epochs", "1", "--seeds", "1", "--opt", "adam")
    assert [(r["spec"]["task"], r["spec"]["optimizer"], r["spec"]["epochs"]) for r in records] == [("mlp", "adam", 1)]
    records = cli.run_json("--config", str(config), "--epochs", "1", "--force")
    assert [(r["spec"]["optimizer"], r["spec"]["hparams"]["lr"], r["spec"]["seed"]) for r in records] == [
        ("adam", 0.01, 0), ("adam", 0.01, 1), ("sgd", 0.01, 0), ("sgd", 0.01, 1)]


def test_shipped_configs_are_valid(cli):
    from pathlib import Path

    from optbench.config.suite import build_specs, load_suite, read_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    quick = build_specs(load_suite(read_config(configs / "quick.toml")))
    assert quick == build_specs(load_suite())  # quick.toml is the built-in default suite
    cifar = build_specs(load_suite(read_config(configs / "cifar10.toml")))
    assert {(s.task, s.optimizer, s.batch_size) for s in cifar} == {("cifar10", "adam", 64), ("cifar10", "momentum", 64)}


def test_a_diverging_run_is_recorded_and_the_suite_goes_on(cli):
    result = cli.run("--opt", "sgd:lr=1e6", "momentum", "--epochs", "3")
    assert result.exit_code == 0  # diverging is a result, not an error
    diverged, ok = cli.stored()
    assert diverged["status"] == "diverged" and diverged["metrics"]["final_train_loss"] is None
    assert ok["status"] == "ok" and ok["spec"]["optimizer"] == "momentum"
    assert "diverged" in result.stdout


def test_json_quiet_when_everything_was_already_done_prints_valid_json_and_says_why(cli):
    cli.run_json("--quiet", "--opt", "sgd", "--epochs", "1")
    result = cli.run("--json", "--quiet", "--opt", "sgd", "--epochs", "1")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []  # still a JSON array: `| jq '.[]'` works
    assert "skipped 1 run(s) already finished" in result.stderr and "--force re-runs them" in result.stderr
