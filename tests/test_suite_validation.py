"""The whole suite file is checked before anything runs: strict types for every key, a bound for every
value (optbench.limits), and the ``[check]`` table too, each refused in one line with nothing written."""

from __future__ import annotations

import pytest

from optbench.limits import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_TIME_BUDGET_S


def refused(cli, result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in result.output, err
    for needle in needles:
        assert needle in err, err
    assert not cli.results_dir.exists()  # nothing written, not even runs/
    return err


@pytest.mark.parametrize(("toml", "needles"), [
    ('gpus_per_run = "1"\n', ["gpus_per_run: input should be a valid number", "'1'"]),
    ("cpus_per_run = true\n", ["cpus_per_run: input should be a valid number", "True"]),
    ('seeds = "3"\n', ["seeds: input should be a valid integer"]),
    ("epochs = 99999999999999\n", ["epochs: input should be less than or equal to", f"{MAX_EPOCHS}", "limit"]),
    ('tasks = [{name = "regression", epochs = 99999999999999}]\n', ["tasks.0.epochs", f"{MAX_EPOCHS}"]),
    (f"batch_size = {MAX_BATCH_SIZE + 1}\n", ["batch_size", f"{MAX_BATCH_SIZE}"]),
    ("time_budget_s = 1e9\n", ["time_budget_s", f"{MAX_TIME_BUDGET_S:g}"]),
    ("cpus_per_run = 100000.0\n", ["cpus_per_run", "1024"]),
    ("gpus_per_run = 1000\n", ["gpus_per_run", "64"]),
    ("selection_seeds = 0\n", ["selection_seeds"]),
    ('[check]\ntol = ["test_rmse=banana"]\n', ["[check]", "banana"]),
], ids=["gpus-str", "cpus-bool", "seeds-str", "epochs", "task-epochs", "batch", "budget", "cpus", "gpus",
        "selection-seeds", "check-tol"])
def test_a_bad_suite_value_is_refused_before_anything_runs(cli, tmp_path, toml, needles):
    suite = tmp_path / "suite.toml"
    suite.write_text('optimizers = ["sgd"]\n' + ("" if "epochs" in toml else "epochs = 1\n") + toml)
    refused(cli, cli.run("--config", str(suite)), *needles)


@pytest.mark.parametrize(("args", "needles"), [
    (["--epochs", "99999999999999999999999"], ["epochs: input should be less than or equal to", f"{MAX_EPOCHS}"]),
    (["--batch-size", str(2**40)], ["batch_size", f"{MAX_BATCH_SIZE}"]),
    (["--time-budget", "1e12"], ["time_budget_s"]),
    (["--executor", "ray", "--cpus-per-run", "1e9"], ["cpus_per_run", "1024"]),
])
def test_a_flag_past_its_limit_is_one_line_naming_the_limit(cli, args, needles):
    refused(cli, cli.run("--opt", "sgd", *args), *needles)


def test_a_good_check_table_still_runs(cli, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text('optimizers = ["sgd"]\nepochs = 1\n[check]\ntol = ["test_rmse=10%"]\nconfirm = 2\n')
    result = cli.run("--config", str(suite), "--quiet")
    assert result.exit_code == 0, result.output
    assert len(cli.stored()) == 1
