"""Mistakes a user can make end in one line on stderr, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("args, message", [
    (["--opt", "adamm"], "unknown optimizer 'adamm' (did you mean 'adam'?); choose from: adadelta"),
    (["--opt", "adam:learning_rate=0.1"], "unknown hyperparameter 'learning_rate' for optimizer 'adam'"),
    (["--opt", "adam:lr=abc"], "hyperparameter 'lr' of 'adam' must be a number, got 'abc'"),
    (["--opt", "sgd:lr=-1"], "learning rate of 'sgd' must be > 0"),
    (["--opt", "adam:betas=0.9/1.2"], "betas of 'adam' must each be in [0, 1)"),
    (["--task", "regresion"], "unknown task 'regresion' (did you mean 'regression'?)"),
    (["--task", "cifar10", "--dataset", "diamonds"], "unknown dataset 'diamonds' for task 'cifar10'; choose from: cifar10, synthetic"),
    (["--epochs", "0"], "Invalid value for '--epochs'"),
    (["--batch-size", "0"], "Invalid value for '--batch-size'"),
    (["--seeds", "0"], "Invalid value for '--seeds'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--frobnicate"], "No such option: --frobnicate"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(cli, args, message):
    result = cli.run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (cli.results_dir / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda(cli):
    result = cli.run("--device", "cuda")
    assert result.exit_code == 2 and "CUDA is not available here" in result.stderr and "--device cpu" in result.stderr


@pytest.mark.parametrize("content, message", [
    ("tasks = [", "is not valid TOML"),
    ('tasks = ["regression"]\nepochz = 3\n', "unknown key 'epochz'; valid keys: tasks, optimizers"),
    ('tasks = [{name = "mlp", epoch = 3}]\n', "unknown key 'tasks.0.epoch'"),
    ("seeds = 0\n", "seeds: input should be greater than or equal to 1 (got 0)"),
    ('optimizers = [{name = "adam", lr = "fast"}]\n', "hyperparameter 'lr' of 'adam' must be a number"),
])
def test_bad_config_file(cli, tmp_path, content, message):
    config = tmp_path / "suite.toml"
    config.write_text(content)
    result = cli.run("--config", str(config))
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_config_file(cli, tmp_path):
    result = cli.run("--config", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2 and "nope.toml" in result.stderr


def test_unwritable_results_dir(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = cli("run", "--results-dir", str(blocker), "--epochs", "1")
    assert result.exit_code == 2 and "pass --results-dir DIR that you can write" in result.stderr



def test_each_way_a_command_can_stop_has_its_own_exit_code():
    # docs/limits.md#exit-codes: a script tells a regression (1) from a user error (2), nothing
    # comparable (3), a failed output (73), a failed store (74) and a failed cluster (75).
    from optbench.cli.stdout import CLOSED_PIPE_EXIT
    from optbench.errors import ClusterLost, OutputFailed, StoreFailed

    codes = [0, 1, 2, 3, OutputFailed.EXIT_CODE, StoreFailed.EXIT_CODE, ClusterLost.EXIT_CODE, CLOSED_PIPE_EXIT, 130, 143]
    assert codes == [0, 1, 2, 3, 73, 74, 75, 141, 130, 143]
    assert len(set(codes)) == len(codes)
