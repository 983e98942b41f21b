"""Stored run records as one flat pandas table: one row per run, one column per field.

Columns: ``path``, ``run_id``, ``status``, ``error``, ``metric_name``, ``spec_hash``, ``cell_hash``,
the spec (``task``, ``dataset``, ``optimizer``, ``hparams`` as the inline string, ``epochs``,
``batch_size``, ``seed``, ``device``), ``label`` (optimizer with non-default hyperparameters),
every metric (``train_seconds``, ``steps_per_s``, ``final_train_loss``, ``test_loss``, ``test_rmse``,
``test_accuracy``, ``rmse_gap``, ...), and the environment prefixed ``env_`` (``env_cpu``, ``env_torch``, ...).
The ``curve`` column keeps each run's list of per-epoch points.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from optbench.optimizers import format_hparams
from optbench.spec import RunSpec

CELL_COLUMNS = ["task", "dataset", "label", "hparams", "epochs", "batch_size", "device"]


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
            "label": spec.label(),
            **rec["metrics"],
            **{f"env_{k}": v for k, v in rec["environment"].items()},
            "curve": rec["curve"],
            "started_at": rec.get("started_at"),
        })
    return pd.DataFrame(rows)
