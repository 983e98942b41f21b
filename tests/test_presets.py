"""Protocol presets: ``optbench run --protocol deepobs`` builds the DeepOBS protocol (a 36-point
log learning-rate grid tuned on validation, each winner re-run with seeds 42-51 on test), says what
wins over the user's own flags, and refuses what contradicts it in one line."""

from __future__ import annotations

import math

import pytest

from optbench.errors import UserError
from optbench.config.presets import PRESETS, get_preset
from optbench.execution.selection import DEFAULT, FINAL, SWEEP, Protocol, choose
from optbench.config.suite import build_specs, load_suite
from optbench.config.sweep import value_range
from optbench.store.records import load_records


def deepobs(**overrides):
    return load_suite(None, {"tasks": ["regression"], "device": "cpu", "protocol": "deepobs", **overrides})


def test_deepobs_grid_is_36_log_spaced_learning_rates_from_1e_5_to_1e2():
    grid = get_preset("deepobs").lr_grid()
    assert len(grid) == 36 and grid[0] == 1e-5 and grid[-1] == 100.0
    ratios = [b / a for a, b in zip(grid, grid[1:])]
    assert all(math.isclose(r, 10 ** 0.2, rel_tol=1e-5) for r in ratios)  # 5 points per decade
    # the same values a hand-written suite range gives, so the runs are the same specs
    assert grid == value_range("lr", {"log": [1e-5, 1e2], "num": 36})


def test_deepobs_sweeps_36_candidates_per_optimizer_on_validation_and_reruns_each_winner_with_seeds_42_to_51():
    suite = deepobs(optimizers=["adam", "sgd"])
    assert (suite.select, suite.seeds, suite.engine) == (True, 10, "auto")
    protocol = Protocol.from_specs(build_specs(suite), default_stage=get_preset("deepobs").default_stage)
    sweep = protocol.candidates
    assert len(sweep) == 72
    assert {s.training.split for s in sweep} == {"validation"} and {s.seed for s in sweep} == {42}
    for name in ("adam", "sgd"):
        assert [s.hparams["lr"] for s in sweep if s.optimizer == name] == get_preset("deepobs").lr_grid()
    # the winner is the lowest validation RMSE; it is re-run on test with seeds 42..51, as DeepOBS
    protocol.choices = choose((s, "ok", {"val_rmse": abs(math.log10(s.hparams["lr"]) + 2)}, "rmse") for s in sweep)
    stages = dict(protocol.stages())
    assert set(stages) == {SWEEP, FINAL}  # DeepOBS has no default-hyperparameter stage
    assert DEFAULT not in stages
    final = stages[FINAL]
    assert len(final) == 20 and sorted({s.seed for s in final}) == list(range(42, 52))
    assert {s.hparams["lr"] for s in final} == {0.01} and {s.training.split for s in final} == {"test"}


def test_other_hyperparameters_are_kept_and_crossed_with_the_grid_inline_or_in_a_table():
    inline = build_specs(deepobs(optimizers=["adam:eps=1e-6"], seeds=1))
    table = build_specs(load_suite({"protocol": "deepobs", "tasks": ["regression"], "device": "cpu", "seeds": 1,
                                    "optimizers": [{"name": "adam", "eps": 1e-6}]}))
    assert [s.spec_hash() for s in inline] == [s.spec_hash() for s in table]
    assert len(inline) == 36 and {s.hparams["eps"] for s in inline} == {1e-6}
    crossed = build_specs(deepobs(optimizers=["adam:eps=1e-6|1e-8"], seeds=1))
    assert len(crossed) == 72


def test_seeds_and_engine_given_by_the_user_win():
    suite = deepobs(seeds=3, engine="eager")
    assert (suite.seeds, suite.engine, suite.select) == (3, "eager", True)
    assert load_suite({"protocol": "deepobs", "seeds": 2}).seeds == 2  # a suite key counts as given too
    assert deepobs().seed == 42 and deepobs(seed=0).seed == 0  # DeepOBS's seeds, unless the user names one
    assert deepobs(select=True).select  # --select is implied, so saying it too is fine
    assert load_suite(None, {"protocol": "DeepOBS"}).protocol == "deepobs"  # any case, stored as named


@pytest.mark.parametrize(("overrides", "config", "message"), [
    ({"protocol": "deepob"}, None, "unknown protocol preset 'deepob' (did you mean 'deepobs'?); choose from: deepobs"),
    (None, {"protocol": "deep-obs"}, "unknown protocol preset 'deep-obs' (did you mean 'deepobs'?)"),
    ({"protocol": "deepobs", "optimizers": ["sgd", "adam:lr=1e-3"]}, None,
     "--protocol deepobs sweeps lr itself (36 log-spaced values from 1e-5 to 1e2); leave lr out of 'adam:lr=1e-3'"),
    (None, {"protocol": "deepobs", "optimizers": [{"name": "adam", "lr": [1e-3, 1e-2]}]}, "leave lr out of"),
    ({"protocol": "deepobs", "split": "validation"}, None, "leave out --split"),
    ({"protocol": "deepobs", "select": False}, None, "leave out --no-select"),
])
def test_what_contradicts_the_preset_is_refused_in_one_line(overrides, config, message):
    with pytest.raises(UserError) as info:
        load_suite(config, overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_every_preset_has_one_line_for_list_and_help(cli):
    listing = cli("list")
    assert listing.exit_code == 0
    for preset in PRESETS.values():
        assert "\n" not in preset.summary and preset.name in listing.output
    assert "deepobs" in cli("run", "--help").output


def test_a_small_deepobs_run_end_to_end(cli):
    """One epoch, two seeds: the grid runs vectorized on validation, the winners on test; every
    record says its preset and stage; a second invocation resumes (nothing re-run)."""
    records = cli.run_json("--task", "regression", "--opt", "adam", "--protocol", "deepobs",
                           "--epochs", "1", "--seeds", "2", "--quiet")
    sweep = [r for r in records if r["stage"] == "sweep"]
    final = [r for r in records if r["stage"] == "final"]
    assert len(sweep) == 36 and len(final) == 2 and len(records) == 38
    assert {r["protocol"] for r in records} == {"deepobs"}
    assert {r["spec"]["engine"] for r in sweep} == {"vectorized"} and {r["metrics"]["group_size"] for r in sweep} == {36}
    assert {r["spec"]["training"]["split"] for r in sweep} == {"validation"}
    assert [r["spec"]["seed"] for r in final] == [42, 43] and "engine" not in final[0]["spec"]  # 2 seeds: eager
    best = min((r for r in sweep if r["metrics"].get("val_rmse") is not None), key=lambda r: r["metrics"]["val_rmse"])
    assert {r["spec"]["hparams"]["lr"] for r in final} == {best["spec"]["hparams"]["lr"]}
    stored, problems = load_records([cli.results_dir])
    assert len(stored) == 38 and not problems  # the stored documents pass the schema
    again = cli.run("--task", "regression", "--opt", "adam", "--protocol", "deepobs", "--epochs", "1", "--seeds", "2")
    assert again.exit_code == 0 and "skipped 38 already finished" in again.output


def test_under_auto_the_grid_of_an_optimizer_that_is_not_elementwise_goes_to_eager():
    from optbench.execution.driver import route

    suite = deepobs(optimizers=["adam", "torch.optim:SGD"])  # an import path is never declared elementwise
    sweep = route(suite.engine, SWEEP, Protocol.from_specs(build_specs(suite)).candidates)
    engines = {(s.optimizer, s.engine) for s in sweep}
    assert engines == {("adam", "vectorized"), ("torch.optim:SGD", "eager")}


def test_the_shipped_deepobs_suite_file_is_the_preset():
    from pathlib import Path

    from optbench.config.suite import read_config

    path = Path(__file__).resolve().parents[1] / "configs" / "deepobs.toml"
    from_file = load_suite(read_config(path))
    from_flags = load_suite(None, {"tasks": ["regression", "mlp"], "optimizers": ["sgd", "momentum", "adam"],
                                   "protocol": "deepobs"})
    assert from_file == from_flags and from_file.protocol == "deepobs"
    assert len(build_specs(from_file)) == 2 * 3 * 36 * 10  # every seed of every candidate, before selection


def test_selection_seeds_average_each_candidate_over_several_seeds_and_store_them_as_sweep_records(cli):
    """--selection-seeds 2: every candidate runs on seeds 42 and 43 on validation (ordinary sweep
    records, distinct seeds), the winner is the best mean, and the suite key says the same."""
    records = cli.run_json("--task", "regression", "--opt", "sgd", "--protocol", "deepobs", "--selection-seeds", "2",
                           "--epochs", "1", "--seeds", "1", "--engine", "eager", "--quiet")
    sweep = [r for r in records if r["stage"] == "sweep"]
    assert len(sweep) == 72 and {r["spec"]["seed"] for r in sweep} == {42, 43}
    assert len({r["spec_hash"] for r in sweep}) == 72  # one record per candidate and seed
    means: dict[float, list[float]] = {}
    for r in sweep:
        if r["status"] == "ok":
            means.setdefault(r["spec"]["hparams"]["lr"], []).append(r["metrics"]["val_rmse"])
    best = min((lr for lr, v in means.items() if len(v) == 2), key=lambda lr: sum(means[lr]) / 2)
    final = [r for r in records if r["stage"] == "final"]
    assert [r["spec"]["hparams"]["lr"] for r in final] == [best] and [r["spec"]["seed"] for r in final] == [42]
    assert load_suite({"protocol": "deepobs", "selection_seeds": 3}).selection_seeds == 3


def test_a_candidate_is_its_seeds_mean_and_one_bad_seed_rules_it_out():
    base = build_specs(load_suite(None, {"tasks": ["regression"], "optimizers": ["sgd:lr=0.1|0.01"], "device": "cpu",
                                        "select": True}))
    candidates = Protocol.from_specs(base, selection_seeds=2).candidates
    assert [(s.hparams["lr"], s.seed) for s in candidates] == [(0.1, 0), (0.1, 1), (0.01, 0), (0.01, 1)]
    values = {(0.1, 0): 1.0, (0.1, 1): 5.0, (0.01, 0): 2.0, (0.01, 1): 2.5}
    [choice] = choose((s, "ok", {"val_rmse": values[(s.hparams["lr"], s.seed)]}, "rmse") for s in candidates)
    assert [(c.value, c.values) for c in choice.candidates] == [(3.0, (1.0, 5.0)), (2.25, (2.0, 2.5))]
    assert choice.best is not None and choice.best.spec.hparams["lr"] == 0.01  # the best mean, not the best seed
    statuses = {(0.1, 0): "ok", (0.1, 1): "ok", (0.01, 0): "ok", (0.01, 1): "diverged"}
    [choice] = choose((s, statuses[(s.hparams["lr"], s.seed)], {"val_rmse": values[(s.hparams["lr"], s.seed)]}, "rmse")
                      for s in candidates)
    assert choice.best.spec.hparams["lr"] == 0.1 and choice.candidates[1].status == "diverged"
