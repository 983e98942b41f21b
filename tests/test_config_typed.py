"""Hyperparameters and training options travel typed: ``--opt`` text and suite tables parse once
into an ``OptimizerSweep`` (names and bools, ints, floats, tuples, ranges), presets and sweeps work
on those values, and the registry coerces and checks each distinct set once. A training option has
one name from the flag to the record. The specs are the ones optbench built before (pinned hashes)."""

from __future__ import annotations

import ast
import hashlib
import inspect
from pathlib import Path
from typing import get_args

import pytest
import typer

from optbench.cli.app import app, run
from optbench.config import hparams as config_hparams
from optbench.config.hparams import Listed, OptimizerSweep, Range
from optbench.config.presets import get_preset
from optbench.config.suite import SuiteConfig, build_specs, load_suite, read_config
from optbench.config.sweep import count, expand
from optbench.config.training import TRAINING_KEYS, resolve_training
from optbench.optim import construct
from optbench.spec.training import SCHEDULE_PARAMS, TrainingOptions
from optbench.spec.vocabulary import ENGINE_CHOICES, IMPLS, SPLITS

ROOT = Path(__file__).resolve().parents[1]
CPU = {"tasks": ["regression"], "device": "cpu"}


def hashes(config: dict | None = None, **overrides) -> list[str]:
    return [s.spec_hash() for s in build_specs(load_suite(config, {**CPU, **overrides}))]


def digest(config: dict | None = None, **overrides) -> tuple[str, int]:
    """A short fingerprint of every spec hash, in order, and how many there are."""
    found = hashes(config, **overrides)
    return hashlib.sha256(" ".join(found).encode()).hexdigest()[:16], len(found)


# --- parsed once --------------------------------------------------------------------------------

def test_inline_text_parses_once_into_typed_values():
    entry = OptimizerSweep.parse("adam:lr=1e-3|1e-2,betas=0.9/0.98,amsgrad=true,weight_decay=0")
    assert entry.name == "adam"
    assert entry.values == {"lr": (0.001, 0.01), "betas": ((0.9, 0.98),), "amsgrad": (True,), "weight_decay": (0,)}
    assert [type(v) for v in entry.values["lr"] + entry.values["betas"][0]] == [float] * 4
    assert OptimizerSweep.parse("mypkg.opt:Lion:lr=1e-4") == OptimizerSweep("mypkg.opt:Lion", {"lr": (1e-4,)})
    assert OptimizerSweep.parse("po:lion") == OptimizerSweep("po:lion")


def test_a_suite_table_parses_into_the_same_types():
    entry = OptimizerSweep.from_table("adam", {"lr": {"log": [1e-5, 1e-1], "num": 5}, "betas": [0.9, 0.98],
                                               "eps": [[1e-8], 1e-6], "amsgrad": True})
    assert entry.values == {"lr": Range("log", 1e-5, 1e-1, 5), "betas": Listed((0.9, 0.98)),
                            "eps": ((1e-8,), 1e-6), "amsgrad": (True,)}
    # a flat list is one tuple value where the default is a tuple, alternatives elsewhere
    assert expand(OptimizerSweep.from_table("adam", {"betas": [0.9, 0.98]})) == [{"betas": (0.9, 0.98)}]
    assert expand(OptimizerSweep.from_table("adam", {"lr": [1e-3, 1e-2]})) == [{"lr": 1e-3}, {"lr": 1e-2}]
    assert count(entry) == 5 * 1 * 2 * 1


def test_a_value_stays_the_value_it_was_parsed_as_through_to_the_spec():
    suite = load_suite(None, {**CPU, "optimizers": ["adam:lr=1e-3|1e-2,betas=0.9/0.98", "sgd:lr=1"]})
    assert all(isinstance(entry, OptimizerSweep) for entry in suite.optimizers)
    specs = build_specs(suite)
    assert [s.hparams["lr"] for s in specs] == [0.001, 0.01, 1.0]
    assert all(type(s.hparams["lr"]) is float for s in specs)  # sgd's lr=1 coerced to its default's type
    assert {s.hparams["betas"] for s in specs[:2]} == {(0.9, 0.98)}


def test_text_is_parsed_once_and_each_distinct_set_is_probed_once(monkeypatch):
    parsed, probed = [], []
    real_parse, real_probe = config_hparams.parse_inline, construct.probe
    monkeypatch.setattr(config_hparams, "parse_inline", lambda text, *a, **k: parsed.append(text) or real_parse(text, *a, **k))
    monkeypatch.setattr(construct, "probe", lambda name, hp: probed.append((name, dict(hp))) or real_probe(name, hp))
    # adam's default lr is 1e-3: "adam", "adam:lr=0.001" and the sweep's first value are one set
    specs = build_specs(load_suite(None, {**CPU, "optimizers": ["adam", "adam:lr=0.001", "adam:lr=1e-3|1e-2"],
                                          "seeds": 2, "tasks": ["regression", "mlp"]}))
    assert parsed == ["adam", "adam:lr=0.001", "adam:lr=1e-3|1e-2"]  # once each, never re-read as text
    assert len(specs) == 2 * 4 * 2
    # adam at its defaults is not probed at all: a built-in's defaults train (tests/test_startup.py),
    # and building its class would import torch where a resume needs none
    assert [hp["lr"] for _, hp in probed] == [0.01]


# --- inline and table: the same specs -------------------------------------------------------------

def test_the_same_sweep_inline_and_as_a_suite_table_gives_the_same_specs(tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('optimizers = [\n'
                      '  { name = "adam", lr = [1e-4, 1e-3], betas = [[0.9, 0.98], [0.8, 0.99]] },\n'
                      '  { name = "momentum", lr = { log = [1e-3, 1e-1], num = 3 }, momentum = 0.8 },\n'
                      '  { name = "adam", betas = [0.9, 0.98], amsgrad = true },\n'
                      ']\n')
    table = hashes(read_config(config))
    inline = hashes(optimizers=["adam:lr=1e-4|1e-3,betas=0.9/0.98|0.8/0.99", "momentum:lr=1e-3|1e-2|1e-1,momentum=0.8",
                                "adam:betas=0.9/0.98,amsgrad=true"])
    assert table == inline and len(table) == 4 + 3 + 1


def test_inline_sweeps_keep_the_specs_they_had():
    """Pinned before hyperparameters were typed end to end (the text round trip built these)."""
    assert hashes(optimizers=["adam:lr=1e-4|1e-3,betas=0.9/0.98|0.8/0.99"]) == [
        "a19c140d9cf74160", "44e6f14183728ef9", "4ece779443b27ac2", "c5b89c5fe4fab589"]


# --- presets on typed values ----------------------------------------------------------------------

def test_a_preset_is_a_range_added_to_the_typed_entries():
    deepobs = get_preset("deepobs")
    suite = load_suite(None, {**CPU, "protocol": "deepobs", "optimizers": ["adam:eps=1e-6"]})
    (entry,) = suite.optimizers
    assert entry.values == {"eps": (1e-6,), "lr": deepobs.lr}  # the grid after the keys written
    assert deepobs.lr == Range("log", 1e-5, 1e2, 36) and deepobs.lr_grid() == list(deepobs.lr.values())


@pytest.mark.parametrize(("config", "overrides", "pinned"), [
    (None, {"optimizers": ["adam", "sgd"]}, ("327a9779c2e7be5e", 72)),
    (None, {"optimizers": ["adam:eps=1e-6|1e-8"]}, ("76a0e98e71470558", 72)),
    ({"protocol": "deepobs", "optimizers": [{"name": "momentum", "momentum": [0.8, 0.9]}]}, {"seeds": 2},
     ("ed4460abe7f89c86", 144)),
])
def test_a_preset_gives_the_specs_it_gave_as_text(config, overrides, pinned):
    """Digests of the spec hashes the text-appending preset built (``--protocol deepobs``, one task),
    from seed 0 (the preset now starts at DeepOBS's seed 42 unless a seed is given)."""
    overrides = {"seeds": 1, "seed": 0, **overrides} if config else {"protocol": "deepobs", "seeds": 1, "seed": 0, **overrides}
    assert digest(config, **overrides) == pinned


# --- training options: one name -------------------------------------------------------------------

def test_each_training_option_has_one_name_from_the_flag_to_the_record():
    stored = {f for f in TrainingOptions.__dataclass_fields__} - {k for p in SCHEDULE_PARAMS.values() for k in p}
    assert set(TRAINING_KEYS) == stored
    run_parameters = set(inspect.signature(run).parameters)
    assert set(TRAINING_KEYS) <= set(SuiteConfig.model_fields) and set(TRAINING_KEYS) <= run_parameters
    # every parameter of `optbench run` but where to read and write and how to print is a suite key
    assert run_parameters - set(SuiteConfig.model_fields) == {"config", "data_dir", "results_dir", "quiet",
                                                               "json_out", "force"}


@pytest.mark.parametrize(("flags", "key", "value"), [
    (["--early-stop", "0.01"], "early_stop_delta", 0.01), (["--early-stop-delta", "0.01"], "early_stop_delta", 0.01),
    (["--warmup", "2"], "warmup_epochs", 2), (["--warmup-epochs", "2"], "warmup_epochs", 2),
    (["--time-budget", "60"], "time_budget_s", 60.0), (["--time-budget-s", "60"], "time_budget_s", 60.0),
    (["--clip-norm", "1"], "clip_norm", 1.0), (["--split", "validation"], "split", "validation"),
])
def test_todays_flags_and_the_key_spelled_as_a_flag_set_the_same_option(flags, key, value):
    command = typer.main.get_command(app).commands["run"]
    ctx = command.make_context("run", list(flags))
    assert ctx.params[key] == value


def test_resolve_training_takes_the_suites_training_options():
    suite = load_suite(None, {**CPU, "schedule": "step", "warmup_epochs": 2, "clip_norm": 1, "early_stop_delta": 1e-3,
                              "time_budget_s": 60.0, "split": "validation", "epochs": 8, "optimizers": ["sgd"]})
    options = resolve_training(8, suite.training())
    assert options == TrainingOptions(schedule="step", step_size=2, gamma=0.1, warmup_epochs=2, clip_norm=1.0,
                                      early_stop_delta=1e-3, time_budget_s=60.0, split="validation")
    assert resolve_training(8, {}) == TrainingOptions()
    with pytest.raises(TypeError, match="early_stop"):
        resolve_training(8, {"early_stop": 0.1})  # a name is the field's, or nothing
    (spec,) = build_specs(suite)
    assert spec.training == options


def test_training_options_keep_their_hashes():
    assert hashes(optimizers=["sgd:lr=0.1"], schedule="step:step_size=2", warmup_epochs=1, clip_norm=1,
                  early_stop_delta=1e-3, time_budget_s=60.0, split="validation", epochs=6) == ["edf990bf972b68f6"]


# --- vocabulary and layering ------------------------------------------------------------------------

def test_the_suite_schema_reads_the_vocabulary():
    fields = SuiteConfig.model_fields
    assert get_args(fields["engine"].annotation) == ENGINE_CHOICES
    assert get_args(fields["impl"].annotation) == IMPLS
    assert get_args(get_args(fields["split"].annotation)[0]) == SPLITS


def test_presets_do_not_import_the_suite():
    tree = ast.parse((ROOT / "optbench" / "config" / "presets.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "optbench.config.suite" not in imported
