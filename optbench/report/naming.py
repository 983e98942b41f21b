"""How a report names things: a cell's series name within its comparable group, a group's budget
text, and the file-stem prefixes of its charts."""

from __future__ import annotations

from typing import Any

import pandas as pd

from optbench.optim.registry import spec_label
from optbench.spec import RunSpec

VARIANT_COLUMNS = [("epochs", "{} ep"), ("batch_size", "bs {}"), ("device", "{}"), ("training", "{}"), ("code", "code {}")]


def varying(cells: pd.DataFrame) -> list[str]:
    """The columns among epochs, batch size, device, training options and code version whose value differs between these cells."""
    return [c for c, _ in VARIANT_COLUMNS if c in cells and cells[c].nunique() > 1]


def series_names(cells: pd.DataFrame) -> pd.Series:
    """A name per cell, unique within its comparable group (task x dataset x budget): the optimizer
    label, plus epochs, batch size, device, training options or code version where cells of the group differ in
    them (``adam · cuda``)."""
    names = pd.Series("", index=cells.index, dtype=object)
    keys = [c for c in ("task", "dataset", "budget") if c in cells]
    for _, group in cells.groupby(keys, sort=False):
        vary = varying(group)
        for i, cell in group.iterrows():
            parts = [fmt.format(cell[c]) for c, fmt in VARIANT_COLUMNS if c in vary and cell[c] != ""]
            names[i] = " · ".join([cell["label"], *parts])
    return names


def stored_label(spec: RunSpec, runs: pd.DataFrame) -> str:
    """The label the records of ``spec`` stored (``label``: computed where the optimizer's code was
    loaded, so a plugin shows only what differs from its own defaults); ``spec_label`` for a spec
    with no record among ``runs``. A report never imports a plugin to name it."""
    if "spec_hash" in runs and "label" in runs:
        stored = runs.loc[runs["spec_hash"] == spec.spec_hash(), "label"]
        if len(stored):
            return str(stored.iloc[0])
    return spec_label(spec)


def budget_text(epochs: Any, batch_size: Any, training: Any) -> str:
    """What makes cells comparable besides task and dataset: ``20 epochs, batch 64`` plus the
    training options but the split (a sweep's validation cells share their test cells' budget)."""
    options = [o for o in str(training or "").split(",") if o and not o.startswith("split=")]
    return ", ".join([f"{epochs} epochs", f"batch {batch_size}", *options])


def chart_stems(cells: pd.DataFrame) -> pd.Series:
    """Per cell, the file-stem prefix of its comparable group's charts: ``regression-synthetic-``,
    with the budget (``regression-synthetic-5ep-bs64-``) where the task x dataset has several."""
    stems = pd.Series("", index=cells.index, dtype=object)
    for (task, dataset), group in cells.groupby(["task", "dataset"], sort=False):
        several = group["budget"].nunique() > 1
        for i, cell in group.iterrows():
            budget = ""
            if several:
                options = [o for o in str(cell["training"] or "").split(",") if o and not o.startswith("split=")]
                budget = slug("-".join([f"{cell['epochs']}ep", f"bs{cell['batch_size']}", *options])) + "-"
            stems[i] = chart_prefix(task, dataset) + budget
    return stems


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "-" for c in str(text))


def chart_prefix(task: str, dataset: str) -> str:
    return f"{slug(task)}-{slug(dataset)}-"


# The cross-task chart and table: a "task" and "dataset" whose chart prefix names the chart.
PROFILE_TASK, PROFILE_DATASET = "all", "tasks"


PROFILE_STEM = chart_prefix(PROFILE_TASK, PROFILE_DATASET) + "performance-profile"
