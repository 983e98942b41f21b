"""optbench tune: the same trials everywhere, the same budget for every optimizer, spaces as data,
one-line errors before anything runs, and a tune that resumes like any campaign."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from optbench.config.search import _sampler, tune_suite
from optbench.config.suite import build_specs, load_suite
from optbench.errors import UserError
from optbench.spec.search import (
    Choice,
    Fixed,
    IntUniform,
    LogUniform,
    Uniform,
    parse_inline_space,
    parse_table,
)
from optbench.spec.vocabulary import FINAL, SWEEP, TUNE


def trials_of(overrides: dict, inline: tuple[str, ...] = (), config: dict | None = None) -> list:
    suite = tune_suite(load_suite(config, {"epochs": 1, "device": "cpu", **overrides}), inline)
    return [(s.optimizer, sorted(s.hparams.items())) for s in build_specs(suite)]


def test_the_trials_are_the_same_for_any_executor_worker_count_and_process():
    opts = {"tasks": ["regression"], "optimizers": ["sgd", "momentum", "adam"], "trials": 7}
    local = trials_of(opts)
    cluster = trials_of({**opts, "executor": "ray", "cpus_per_run": 2.0})
    assert local == cluster and len(local) == 21
    # the points come from (method, dimensions, seed) alone: a fresh process draws the same ones
    code = ("import json; from optbench.config.search import _sampler;"
            "print(json.dumps([_sampler(m, 3, 5)(4) for m in ('halton', 'sobol', 'random')]))")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(fresh) == [_sampler(m, 3, 5)(4) for m in ("halton", "sobol", "random")]


@pytest.mark.parametrize("method", ["halton", "sobol", "random"])
def test_every_optimizer_gets_exactly_the_trial_budget_of_distinct_trials(method):
    trials = trials_of({"optimizers": ["sgd", "momentum", "adam", "rmsprop"], "trials": 20, "method": method})
    per_optimizer = Counter(opt for opt, _ in trials)
    assert per_optimizer == {"sgd": 20, "momentum": 20, "adam": 20, "rmsprop": 20}
    assert len(set(map(repr, trials))) == 80
    # another seed, other trials; the same seed, the same ones
    assert trials_of({"optimizers": ["adam"], "trials": 5, "method": method, "search_seed": 1}) != \
        trials_of({"optimizers": ["adam"], "trials": 5, "method": method})


def test_points_that_collide_after_rounding_are_replaced_deterministically_never_dropped():
    # three choices, three trials: quasi-random draws repeat a choice, the sequence goes on until all three are in
    trials = trials_of({"optimizers": ["sgd"], "trials": 3}, ("sgd:lr=choice(0.1,0.2,0.3)",))
    assert sorted(dict(h)["lr"] for _, h in trials) == [0.1, 0.2, 0.3]
    assert trials == trials_of({"optimizers": ["sgd"], "trials": 3}, ("sgd:lr=choice(0.1,0.2,0.3)",))
    with pytest.raises(UserError, match="only 3 distinct point"):
        trials_of({"optimizers": ["sgd"], "trials": 4}, ("sgd:lr=choice(0.1,0.2,0.3)",))
    # a range that rounds (6 significant digits) onto two values cannot give five trials
    with pytest.raises(UserError, match="only 2 distinct trial"):
        trials_of({"optimizers": ["sgd"], "trials": 5}, ("sgd:lr=uniform(0.1,0.1000006)",))


def test_a_space_reads_the_same_from_a_suite_file_and_inline_and_runs_the_same_trials():
    table = {"lr": {"log": [1e-4, 1e-2]}, "momentum": {"uniform": [0.8, 0.99]}, "nesterov": {"choice": [True, False]},
             "dampening": 0.0}
    inline = "momentum:lr=log(1e-4,1e-2),momentum=uniform(0.8,0.99),nesterov=choice(true,false),dampening=0.0"
    name, space = parse_inline_space(inline)
    assert name == "momentum" and space == parse_table("momentum", table) == {
        "lr": LogUniform(1e-4, 1e-2), "momentum": Uniform(0.8, 0.99), "nesterov": Choice((True, False)), "dampening": Fixed(0.0)}
    assert parse_inline_space("po:lion:betas=0.9/0.99,n=int(1,3)") == ("po:lion", {"betas": Fixed((0.9, 0.99)), "n": IntUniform(1, 3)})
    base = {"optimizers": ["momentum"], "trials": 6}
    assert trials_of(base, (inline,)) == trials_of(base, config={"search": {"momentum": table}})


def test_one_minus_beta1_sets_the_first_beta_or_the_momentum_on_a_log_scale():
    adam = [dict(h) for _, h in trials_of({"optimizers": ["adam"], "trials": 10})]
    assert all(1e-4 <= h["lr"] <= 1e-2 and 0.9 <= h["betas"][0] <= 0.996 and h["betas"][1] == 0.999 for h in adam)
    momentum = [dict(h) for _, h in trials_of({"optimizers": ["momentum"], "trials": 10})]
    assert all(0.7 <= h["momentum"] <= 0.995 for h in momentum)
    # a value the entry fixes stays fixed and leaves the default space
    fixed = [dict(h) for _, h in trials_of({"optimizers": ["adam:lr=0.003"], "trials": 4})]
    assert {h["lr"] for h in fixed} == {0.003} and len({h["betas"] for h in fixed}) == 4


ERRORS = [
    (["--opt", "adam", "--space", "adam:lr=log(1e-2,1e-4)"], "inverted"),
    (["--opt", "adam", "--space", "adam:lr=uniform(0.1,0.1)"], "empty"),
    (["--opt", "adam", "--space", "adam:lr=log(0,1e-2)"], "lo > 0"),
    (["--opt", "adam", "--space", "adam:lrr=log(1e-4,1e-2)"], "unknown hyperparameter 'lrr'"),
    (["--opt", "adam", "--space", "adam:lr=uniform(-1,1)"], "must be > 0"),
    (["--opt", "adam", "--space", "adam:one_minus_beta1=uniform(0.5,1.5)"], "must lie in (0, 1]"),
    (["--opt", "adam", "--space", "adam:amsgrad=choice()"], "empty choice"),
    (["--opt", "adam", "--space", "sgd:lr=log(1e-3,1)"], "'sgd', which is not in the run"),
    (["--opt", "adam", "--trials", "0"], "trials"),
    (["--opt", "adam", "--trials", "1001"], "optbench's limit"),
    (["--opt", "adam", "--space", "adam:amsgrad=choice(true,false)", "--trials", "3"], "only 2 distinct point"),
    (["--opt", "adam:lr=1e-3|1e-2"], "sweeps lr"),
    (["--opt", "adam", "adam:eps=1e-6"], "given twice"),
    (["--opt", "adam:lr=1e-3", "--space", "adam:lr=log(1e-4,1e-2)"], "both fixed in --opt and searched"),
    (["--opt", "adam", "--method", "grid"], "'halton', 'sobol' or 'random'"),
]


@pytest.mark.parametrize(("args", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_every_search_space_error_is_one_line_exit_2_and_writes_nothing(cli, args, message):
    result = cli("tune", "--results-dir", str(cli.results_dir), "--data-dir", str(cli.data_dir), "--epochs", "1", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not cli.results_dir.exists()


def test_a_suite_file_with_a_search_table_is_for_tune_not_run(cli, tmp_path: Path):
    suite = tmp_path / "tune.toml"
    suite.write_text('tasks = ["regression"]\noptimizers = ["adam"]\ntrials = 2\n[search.adam]\nlr = {log = [1e-4, 1e-2]}\n')
    result = cli.run("--config", str(suite), "--epochs", "1")
    assert result.exit_code == 2 and "are for optbench tune" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('optimizers = ["adam"]\n[search.adam]\nlr = {log = [1e-4, 1e-2], num = 3}\n')
    result = cli("tune", "--results-dir", str(cli.results_dir), "--config", str(bad))
    assert result.exit_code == 2 and "[search.adam] lr: a dimension is" in result.stderr
    assert not cli.results_dir.exists()


def test_a_small_tune_end_to_end_records_trials_and_winners_and_resumes_skipping_everything(cli):
    args = ("tune", "--results-dir", str(cli.results_dir), "--data-dir", str(cli.data_dir), "--task", "regression",
            "--opt", "sgd", "adam", "--trials", "3", "--epochs", "1", "--quiet")
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert "tuning: best trial on the validation split" in first.stdout
    records = cli.stored()
    assert {r["protocol"] for r in records} == {TUNE}
    sweep = [r for r in records if r["stage"] == SWEEP]
    assert Counter(r["spec"]["optimizer"] for r in sweep) == {"sgd": 3, "adam": 3}
    assert all(r["spec"]["engine"] == "vectorized" and r["spec"]["training"]["split"] == "validation" for r in sweep)
    finals = [r for r in records if r["stage"] == FINAL]
    assert sorted(r["spec"]["optimizer"] for r in finals) == ["adam", "sgd"]
    assert all(r["spec"].get("training", {}).get("split", "test") == "test" for r in finals)
    again = cli(*args)
    assert again.exit_code == 0 and "0 run(s) recorded" in again.stdout and f"skipped {len(records)}" in again.stdout
    assert len(cli.stored()) == len(records)


def test_list_spaces_shows_each_default_space_and_its_source(cli):
    result = cli("list", "--spaces")
    assert result.exit_code == 0
    assert "lr=log(0.0001,0.01)" in result.stdout and "AlgoPerf NadamW baseline" in result.stdout
    assert "one_minus_beta1=log(0.005,0.3)" in result.stdout  # momentum: AlgoPerf Nesterov


def test_the_search_methods_are_declared_once():
    from typing import get_args

    from optbench.spec.vocabulary import SEARCH_METHODS, SearchMethod

    assert get_args(SearchMethod) == SEARCH_METHODS
