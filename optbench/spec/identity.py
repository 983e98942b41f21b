"""The identities of a run, defined once from the spec's own fields, never from a hand-kept list.

- ``spec_key``: the whole spec (``spec_hash``): what resume skips and the store's newest-record rule keys on.
- ``cell_key``: everything but the seed (``cell_hash``): the runs a report, a baseline and ``check``
  aggregate into one cell. Two code versions of a plugin, two engines, two implementations are
  different cells.
- ``code_free_key``: everything but the seed and the code version (``RunSpec.code``): one cell of
  an optimizer across edits of its code. ``check`` matches a baseline cell to the current results
  by it, and judges the current code version (``optbench.check.baseline.current_code``: the one
  a plugin's files hash to, else the newest by finish time).
- ``group_key``: everything but the seed and the hyperparameter *values* (their names are kept,
  so one optimizer construction fits all): the specs one work unit, and one vectorized pass, may hold.
- ``sweep_key``: everything but the seed, the hyperparameters and the evaluation split: the
  candidates among which ``--select`` chooses, and the final runs that share their budget.

A field added to ``RunSpec`` enters every key (tests/test_identity.py varies each field).
"""

from __future__ import annotations

from typing import Any

from optbench.spec.run import RunSpec, digest


def spec_key(spec: RunSpec) -> str:
    return spec.spec_hash()


def cell_key(spec: RunSpec) -> str:
    return spec.cell_hash()


def code_free_key(spec: RunSpec) -> str:
    d = spec.cell()
    d.pop("code", None)
    return digest(d)


def group_key(spec: RunSpec) -> str:
    d = spec.cell()
    d["hparams"] = sorted(d["hparams"])
    return digest(d)


def sweep_key(spec: RunSpec) -> str:
    d = spec.cell()
    del d["hparams"]
    training = spec.training.without_split()
    if training:
        d["training"] = training
    else:
        d.pop("training", None)
    return digest(d)


def cell_key_of(record: dict[str, Any]) -> str:
    """A stored record's cell key (its ``cell_hash``, computed for records written before it was stored)."""
    return record.get("cell_hash") or RunSpec.from_dict(record["spec"]).cell_hash()


def code_free_key_of(record: dict[str, Any]) -> str:
    """A stored record's code-free key (see ``code_free_key``)."""
    return code_free_key(RunSpec.from_dict(record["spec"]))
