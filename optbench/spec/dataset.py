"""A run's dataset with its options: ``diamonds`` or ``diamonds:rows=20000`` (the inline syntax,
``optbench.spec.inline``), declared once.

The options are part of the dataset's name in the spec (``RunSpec.dataset``, written canonically:
keys sorted, whole numbers plain), so they change the spec hash and every identity, and a report
shows them wherever it shows the dataset. Which dataset of which task accepts which option is the
task catalog's (``TaskInfo.dataset_options``, optbench.tasks.catalog); what each option means and
how it is checked is declared here:

- ``rows``: a seeded sample of this many rows of the table (the same rows for every run and seed:
  ``SAMPLE_SEED``), made before the 80/20 train/test split; for a built-in synthetic dataset, the
  number of rows generated. A whole number from ``MIN_TABLE_ROWS`` to ``MAX_DATASET_ROWS``, and at
  most the table's rows (checked when the table is read, before anything runs).
"""

from __future__ import annotations

from dataclasses import dataclass

from optbench.errors import UserError
from optbench.limits import MAX_DATASET_ROWS, MIN_TABLE_ROWS
from optbench.spec.inline import parse_inline

EXAMPLE = "diamonds:rows=20000"
# Each option: what it means (``optbench list`` and messages show it).
DATASET_OPTIONS: dict[str, str] = {
    "rows": f"a seeded sample of this many rows (synthetic data: rows generated), {MIN_TABLE_ROWS} to {MAX_DATASET_ROWS:,}",
}
# The sample's seed: numpy's RandomState(42).shuffle of the row order, then the first ``rows`` rows,
# which picks the same rows as the from-scratch article's ``np.random.seed(42); np.random.shuffle(xy)``.
SAMPLE_SEED = 42


@dataclass(frozen=True)
class DatasetRef:
    """A dataset name and its options (option -> whole number)."""

    name: str
    options: tuple[tuple[str, int], ...] = ()

    @classmethod
    def parse(cls, text: str) -> DatasetRef:
        """``NAME[:key=value,...]`` with every option declared in DATASET_OPTIONS and valid; a bad one
        is a UserError. Which options this dataset accepts is checked by the catalog (``accepting``)."""
        parsed = parse_inline(str(text), "dataset option", EXAMPLE)
        if not parsed.name:
            raise UserError(f"empty dataset name in '{text}'; write NAME or NAME:key=value, e.g. {EXAMPLE}")
        options = []
        for key, raw in parsed.items:
            if key not in DATASET_OPTIONS:
                raise UserError(f"unknown dataset option '{key}' in '{text}'; valid options: {', '.join(DATASET_OPTIONS)}")
            options.append((key, _rows(raw, text)))
        return cls(parsed.name, tuple(sorted(options)))

    def text(self) -> str:
        """The canonical spelling stored in the spec: ``diamonds`` or ``diamonds:rows=20000``."""
        return self.name + (":" + ",".join(f"{k}={v}" for k, v in self.options) if self.options else "")

    def option(self, key: str) -> int | None:
        return dict(self.options).get(key)

    def accepting(self, allowed: tuple[str, ...], where: str) -> DatasetRef:
        """This reference, or a UserError naming the options ``where`` (``dataset 'diamonds' of task
        'regression'``) accepts when it has another."""
        for key, _ in self.options:
            if key not in allowed:
                valid = f"it accepts {', '.join(allowed)}" if allowed else "it takes none"
                raise UserError(f"{where} has no option '{key}'; {valid}")
        return self


def dataset_rows(text: str) -> int | None:
    """The ``rows`` option of a spec's dataset text (None when not given)."""
    return DatasetRef.parse(text).option("rows")


def _rows(raw: str, text: str) -> int:
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = None
    if value is None or not MIN_TABLE_ROWS <= value <= MAX_DATASET_ROWS:
        raise UserError(f"rows in '{text}' must be a whole number from {MIN_TABLE_ROWS} to {MAX_DATASET_ROWS:,} "
                        f"(the rows to sample), got '{raw}'")
    return value
