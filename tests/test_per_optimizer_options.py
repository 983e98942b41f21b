"""Per-optimizer training options: ``--opt "sgd:lr=0.1,clip_value=1" adam`` is one experiment and one
table, the clipping shown in the cell's label and left out of the budget its table shares."""

from __future__ import annotations

import pytest

from optbench.config.suite import build_specs, load_suite
from optbench.report.build import build_report
from optbench.spec.identity import group_key

CPU = {"tasks": ["regression"], "device": "cpu", "epochs": 1}


def specs(optimizers, **overrides):
    return build_specs(load_suite(None, {**CPU, "optimizers": optimizers, **overrides}))


def test_one_optimizer_clipped_and_one_not_give_one_table_with_the_clipping_in_the_label(cli):
    records = cli.run_json("--opt", "sgd:lr=0.1,clip_value=1", "adam", "--epochs", "1", "--quiet")
    assert [r["spec"].get("training") for r in records] == [{"clip_value": 1.0}, None]
    assert [r["label"] for r in records] == ["sgd(lr=0.1,clip_value=1)", "adam"]
    assert len({r["experiment"] for r in records}) == 1
    report = build_report([cli.results_dir], draw_charts=False)
    assert len(report.tables) == 1
    assert set(report.cells["budget"]) == {"1 epochs, batch 64"}  # what both cells share
    assert set(report.cells["label"]) == {"sgd(lr=0.1,clip_value=1)", "adam"}
    shown = cli("report", "--results-dir", str(cli.results_dir), "--no-charts").stdout
    assert "sgd(lr=0.1,clip_value=1)" in shown and "clip_value=1 " not in shown.replace("clip_value=1)", "")


def test_the_option_is_part_of_the_spec_and_its_identity():
    plain, clipped, normed = specs(["sgd", "sgd:clip_value=1", "sgd:clip_norm=1"])
    assert clipped.training.clip_value == 1.0 and normed.training.clip_norm == 1.0 and plain.training.clip_value is None
    assert len({s.spec_hash() for s in (plain, clipped, normed)}) == 3
    assert len({group_key(s) for s in (plain, clipped, normed)}) == 3  # a vectorized group never mixes clipping
    table = build_specs(load_suite({**CPU, "optimizers": [{"name": "sgd", "clip_value": 1.0}]}))
    assert [s.spec_hash() for s in table] == [clipped.spec_hash()]  # a suite table says the same


def test_a_global_clip_sets_every_optimizer_and_an_entry_overrides_it():
    sgd, adam = specs(["sgd:clip_value=0.5", "adam"], clip_value=2.0)
    assert (sgd.training.clip_value, adam.training.clip_value) == (0.5, 2.0)
    sgd, adam = specs(["sgd:clip_value=0.5", "adam"], clip_norm=3.0)  # the entry's clipping replaces the suite's
    assert (sgd.training.clip_value, sgd.training.clip_norm, adam.training.clip_norm) == (0.5, None, 3.0)


def test_clip_value_can_be_swept_with_the_hyperparameters():
    swept = specs(["sgd:lr=0.1|0.01,clip_value=1|2"])
    assert [(s.hparams["lr"], s.training.clip_value) for s in swept] == [(0.1, 1.0), (0.1, 2.0), (0.01, 1.0), (0.01, 2.0)]


@pytest.mark.parametrize(("entry", "message"), [
    ("sgd:clip_value=-1", "optimizer 'sgd:clip_value=-1': clip_value must be a number > 0, got -1"),
    ("sgd:clip_value=1,clip_norm=1", "choose one of clip_norm (--clip-norm) and clip_value (--clip-value), not both"),
    ("sgd:clip_norm=abc", "clip_norm must be a number > 0, got 'abc'"),
])
def test_a_bad_per_optimizer_option_is_one_line_and_exit_2(cli, entry, message):
    result = cli.run("--opt", entry, "adam", "--epochs", "1")
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not cli.results_dir.exists()
