"""One vocabulary: every field of the spec enters every identity that should hold it, and the report,
the baseline and check derive the same cell from it; the schemas and allowed values are the spec's.

A field added to RunSpec fails ``test_every_spec_field_has_a_variant`` until it is given a variant
here, and then every other test of this file checks it everywhere."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from typing import Any, get_args

import pytest

from optbench.check.baseline import CELL_SPEC_FIELDS, Cell, cells_from_records
from optbench.engine import ENGINE_CLASSES
from optbench.optim.registry import spec_label
from optbench.report.aggregate import cell_stats
from optbench.spec import RunSpec, vocabulary
from optbench.spec.identity import cell_key, code_free_key, group_key, sweep_key
from optbench.spec.training import TrainingOptions
from optbench.store.frame import records_frame
from optbench.store.schema import RunRecord, SpecModel, TrainingModel, why_invalid

BASE = RunSpec(task="regression", dataset="synthetic", optimizer="sgd", hparams={"lr": 0.01, "momentum": 0.0},
               epochs=3, batch_size=64, seed=0, device="cpu")

# One other value per spec field: the spec that differs from BASE in that field alone.
VARIANTS: dict[str, dict[str, Any]] = {
    "task": {"task": "mlp"},
    "dataset": {"dataset": "diamonds"},
    "optimizer": {"optimizer": "nesterov"},
    "hparams": {"hparams": {"lr": 0.1, "momentum": 0.0}},
    "epochs": {"epochs": 4},
    "batch_size": {"batch_size": 32},
    "seed": {"seed": 1},
    "device": {"device": "cuda"},
    "impl": {"impl": "foreach"},
    "training": {"training": TrainingOptions(clip_norm=1.0)},
    "code": {"code": {"optimizer": "sha256:0123456789abcdef"}},
    "engine": {"engine": "vectorized"},
}
# The evaluation split is a training option that a sweep's candidates and its final runs do not share.
SPLIT = {"training": TrainingOptions(split="validation")}


def record(spec: RunSpec, rmse: float = 1500.0) -> dict[str, Any]:
    """A valid stored record of ``spec`` (what the driver writes)."""
    return {
        "schema_version": 1, "run_id": uuid.uuid4().hex[:12], "spec": spec.to_dict(), "spec_hash": spec.spec_hash(),
        "cell_hash": spec.cell_hash(), "label": spec_label(spec), "status": "ok", "error": None,
        "metric_name": "rmse", "optimizer_impl": "forloop",
        "metrics": {"train_seconds": 0.5, "final_train_loss": 0.1, "test_loss": 0.1, "test_rmse": rmse},
        "curve": [{"epoch": 1, "time_s": 0.5, "train_loss": 0.1, "test_loss": 0.1, "test_metric": rmse}],
        "environment": {"cpu": "x86_64", "torch": "2.x"}, "started_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:00:01+00:00",
    }


def test_every_spec_field_has_a_variant() -> None:
    assert set(VARIANTS) == set(RunSpec.__dataclass_fields__)


@pytest.mark.parametrize("field", sorted(VARIANTS))
def test_every_identity_holds_the_fields_it_should(field: str) -> None:
    other = dataclasses.replace(BASE, **VARIANTS[field])
    assert other.spec_hash() != BASE.spec_hash()
    assert (cell_key(other) == cell_key(BASE)) == (field == "seed")
    # One cell across edits of its code: what check matches a baseline cell by.
    assert (code_free_key(other) == code_free_key(BASE)) == (field in ("seed", "code"))
    # A work unit shares everything but seeds and hyperparameter values.
    assert (group_key(other) == group_key(BASE)) == (field in ("seed", "hparams"))
    # A sweep's candidates share everything but seeds, hyperparameters and the split.
    assert (sweep_key(other) == sweep_key(BASE)) == (field in ("seed", "hparams"))
    assert sweep_key(dataclasses.replace(BASE, **SPLIT)) == sweep_key(BASE)
    assert group_key(dataclasses.replace(BASE, **SPLIT)) != group_key(BASE)


@pytest.mark.parametrize("field", sorted(VARIANTS))
def test_the_report_and_the_baseline_derive_the_same_cells(field: str) -> None:
    """Two records that differ in one field: two cells in the report and the baseline (one cell of
    two runs where the field is the seed), each with the same cell key."""
    other = dataclasses.replace(BASE, **VARIANTS[field])
    records = [record(BASE, 1500.0), record(other, 1700.0)]
    same = field == "seed"

    cells = cell_stats(records_frame(records))
    assert len(cells) == (1 if same else 2)
    assert sorted(cells["cell_hash"]) == sorted({cell_key(BASE), cell_key(other)})
    if not same:  # never averaged: each cell keeps its own value
        assert sorted(cells["test_rmse_mean"]) == [1500.0, 1700.0]

    baseline = cells_from_records(records)
    assert len(baseline) == (1 if same else 2)
    assert sorted(c.cell_hash for c in baseline) == sorted(cells["cell_hash"])
    for cell in baseline:  # the baseline cell rebuilds its spec, hence its hash (what check re-measures)
        spec = RunSpec.from_dict({**cell.spec_fields(), "seed": cell.runs[0].seed})
        assert spec.cell_hash() == cell.cell_hash


def test_a_report_never_merges_two_code_versions() -> None:
    """Records that differ only in a plugin's code version are two cells, named apart."""
    old = dataclasses.replace(BASE, code={"optimizer": "sha256:aaaaaaaaaaaaaaaa"})
    new = dataclasses.replace(BASE, code={"optimizer": "sha256:bbbbbbbbbbbbbbbb"})
    records = [record(dataclasses.replace(old, seed=s), 1500.0) for s in (0, 1)]
    records += [record(dataclasses.replace(new, seed=s), 1700.0) for s in (0, 1)]
    cells = cell_stats(records_frame(records))
    assert sorted(cells["n"]) == [2, 2]
    assert sorted(cells["test_rmse_mean"]) == [1500.0, 1700.0]
    assert sorted(cells["code"]) == ["optimizer aaaaaaaa", "optimizer bbbbbbbb"]


def test_a_cell_keeps_one_label_whatever_its_records_stored() -> None:
    """An older optbench may have stored another spelling of a cell's label: still one cell."""
    first, second = record(BASE), record(dataclasses.replace(BASE, seed=1))
    second["label"] = "sgd(lr=0.01)"
    cells = cell_stats(records_frame([first, second]))
    assert len(cells) == 1 and cells["n"].iloc[0] == 2


def test_the_schemas_declare_the_spec_fields() -> None:
    assert set(SpecModel.model_fields) == set(RunSpec.__dataclass_fields__)
    assert set(TrainingModel.model_fields) == {f.name for f in dataclasses.fields(TrainingOptions)}
    assert set(CELL_SPEC_FIELDS) == set(RunSpec.__dataclass_fields__) - {"seed"}
    assert set(CELL_SPEC_FIELDS) <= set(Cell.model_fields)


def test_allowed_values_are_declared_once() -> None:
    assert get_args(SpecModel.model_fields["engine"].annotation) == vocabulary.ENGINES
    assert get_args(SpecModel.model_fields["impl"].annotation) == vocabulary.IMPLS
    assert set(ENGINE_CLASSES) == set(vocabulary.ENGINES)
    assert set(vocabulary.SUCCESS) <= set(vocabulary.FINISHED) <= set(vocabulary.STATUSES)
    assert get_args(vocabulary.Status) == vocabulary.STATUSES
    assert get_args(vocabulary.Engine) == vocabulary.ENGINES
    assert get_args(vocabulary.Impl) == vocabulary.IMPLS
    assert get_args(vocabulary.Stage) == vocabulary.STAGES


@pytest.mark.parametrize(("where", "value"), [("status", "finished"), ("spec.engine", "warp"),
                                              ("spec.impl", "cuda-graph"), ("stage", "tuning")])
def test_a_value_outside_the_vocabulary_is_not_a_record(where: str, value: str) -> None:
    rec = record(BASE)
    doc = copy.deepcopy(rec)
    *path, key = where.split(".")
    target = doc
    for part in path:
        target = target[part]
    target[key] = value
    if path:  # a spec edited in place no longer has its hash: rebuild it so only the value is wrong
        doc["spec_hash"] = "0" * 16
    assert RunRecord.model_validate(rec)
    assert why_invalid(doc) is not None
