"""Stored run records as one flat pandas table: one row per run, one column per field.

Columns: ``path``, ``run_id``, ``status``, ``error``, ``metric_name``, ``spec_hash``, ``cell_hash``,
the spec (``task``, ``dataset``, ``optimizer``, ``hparams`` as the inline string, ``epochs``,
``batch_size``, ``seed``, ``device``), ``code`` (the plugin or task code version, short; '' for
built-in code), ``training`` (non-default training options as one string but
the per-optimizer ones, which the ``label`` shows; '' for none, see optbench.spec.training), ``split`` (``test`` or ``validation``), ``stage`` (``sweep``,
``final``, ``default`` or None), ``protocol`` (a preset's name, e.g. ``deepobs``, or None), ``label`` (optimizer with non-default hyperparameters),
every metric (``train_seconds``, ``steps_per_s``, ``final_train_loss``, ``test_loss``, ``test_rmse``,
``test_accuracy``, ``rmse_gap``, ``val_rmse``, ``time_to_target_s``, ...), and the environment prefixed
``env_`` (``env_cpu``, ``env_torch``, ...). The ``curve`` column keeps each run's list of per-epoch
points, ``spec`` the stored spec and ``target`` the time-to-target goal (a dict, or None).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from optbench.optim.registry import spec_label
from optbench.spec import RunSpec, code_text, format_hparams

# A cell is its cell key (optbench.spec.identity.cell_key: the spec but the seed, code version,
# engine and implementation included); the other columns are its display, constant within a cell.
CELL_KEY = "cell_hash"
CELL_COLUMNS = [CELL_KEY, "task", "dataset", "label", "hparams", "epochs", "batch_size", "device", "training", "code"]


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for rec in records:
        spec = RunSpec.from_dict(rec["spec"])
        rows.append({
            "path": rec.get("_path"),
            "run_id": rec.get("run_id"),
            "status": rec["status"],
            "error": rec.get("error"),
            "metric_name": rec.get("metric_name"),
            "spec_hash": rec.get("spec_hash") or spec.spec_hash(),
            "cell_hash": rec.get("cell_hash") or spec.cell_hash(),
            **{k: v for k, v in rec["spec"].items() if k != "hparams"},
            "hparams": format_hparams(spec.hparams),
            "label": rec.get("label") or spec_label(spec),
            "experiment": rec.get("experiment"),
            # Per-optimizer options (clip_value, ...) are in the label, not here: this column is
            # part of the report's budget, what every cell of a table shares (optbench.spec.training).
            "training": spec.training.shared_text(),
            "code": code_text(spec.code),
            "split": spec.training.split,
            "stage": rec.get("stage"),
            "protocol": rec.get("protocol"),
            **rec["metrics"],
            **{f"env_{k}": v for k, v in rec["environment"].items()},
            "curve": rec["curve"],
            "spec": rec["spec"],
            "target": rec.get("target"),
            "started_at": rec.get("started_at"),
        })
    frame = pd.DataFrame(rows)
    if len(frame):  # a label stored by an older optbench may be spelled otherwise: one per cell
        frame["label"] = frame.groupby(CELL_KEY, sort=False)["label"].transform("first")
    return frame
