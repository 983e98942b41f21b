"""Baseline files: the per-seed results of a suite that ``optbench check`` compares against.

A baseline is JSON, written with sorted keys and an indent so that a change reads well in a diff::

    {"schema_version": 1, "created_at": "...", "step_clock": 2,   # how step_cost was measured: STEP_CLOCK
     "environment": {"cpu", "cpu_count", "torch_threads", "device_name", "torch", "cuda", "python",
                     "optbench", "git_commit"},
     "cells": [{"task", "dataset", "optimizer", "hparams", "epochs", "batch_size", "device",
                "impl", "training", "code", "engine",   # each only when not its default
                "label", "cell_hash", "metric_name",
                "runs": [{"seed", "status", <metric>: sample, ...}, ...],  # sampled_metrics
                "repeats", "noise": {<runtime metric>: spread},  # only when baseline save re-measured

                "environment": {...}   # only when it differs from the top-level one
               }, ...]}

A cell is a spec without its seed; ``cell_hash`` is the records' ``cell_hash`` of that spec. A run's
samples are keyed by metric name: those ``optbench check`` compares (the registry's metrics with a
tolerance, ``optbench.metrics``), for the cell's task (``sampled_metrics``: ``train_seconds``,
``step_cost``, ``final_train_loss``, ``test_loss`` and ``test_rmse`` or ``test_accuracy`` today).
Samples are rounded to 6 significant digits, but exact sizes (``optimizer_state_bytes``), kept to the
byte; a diverged or failed run keeps its status and null metrics. A baseline saved before a metric
was sampled lacks it and still loads (check: not comparable; for an exact size the guard is skipped).
When a results directory holds several records of one cell and seed, the newest finished one counts
(``optbench.store.records.newest_per_spec``). When it holds several code versions of one cell (a
plugin edited between runs into the same folder), only the current code counts (``current_code``):
``baseline save``, ``baseline update`` and ``check`` all judge the code as it is now.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from optbench.errors import UserError, write_failed
from optbench.files import Refused, parse_json, read_regular, write_atomic
from optbench.limits import MAX_BASELINE_BYTES, MAX_NESTING
from optbench.metrics import checked_metrics, held_out
from optbench.optim.registry import file_digest, spec_label
from optbench.spec import RunSpec
from optbench.spec.identity import cell_key_of, code_free_key, code_free_key_of
from optbench.spec.vocabulary import Engine, Impl, Status
from optbench.store.records import (
    RUNS,
    Problem,
    load_records,
    newest_per_spec,
    refuse_inside_runs,
)
from optbench.store.schema import metric_range_error
from optbench.tasks.catalog import FALLBACK_METRIC, TASKS, reported_metrics

BASELINE_SCHEMA_VERSION = 1
FINGERPRINT_KEYS = ("cpu", "cpu_count", "torch_threads", "device_name", "torch", "cuda", "python", "optbench", "git_commit",
                    "executor", "node")
SIGNIFICANT_DIGITS = 6
# A baseline cell carries its spec's fields but the seed, derived from RunSpec (a field added there
# is a field here: tests/test_vocabulary.py checks that Cell declares each one).
CELL_SPEC_FIELDS = tuple(name for name in RunSpec.__dataclass_fields__ if name != "seed")


def sampled_metrics(task: str, metric_name: str | None = None) -> list[str]:
    """The metrics a baseline samples per seed, and check compares, for a cell of ``task`` (whose main
    metric is ``metric_name``): the registry's checked run metrics, then the checked test metrics of
    the task's held-out metrics (``optbench.tasks.catalog``), registry order. A run metric added there
    is sampled from the next baseline on; an older baseline lacks it (check: "not comparable")."""
    held = reported_metrics(task, metric_name)
    return [name for name, m in checked_metrics().items() if m.split is None or (m.split == "test" and m.bare in held)]


def _sampled_name(name: str) -> str:
    if name not in checked_metrics():
        raise ValueError(f"'{name}' is not a metric optbench check samples ({', '.join(checked_metrics())})")
    return name


class SeedRun(BaseModel):
    """One seed of a cell: its status and metric samples by registered name (seconds, loss, RMSE in
    target units, accuracy as a fraction). In the file the samples sit beside ``seed`` and ``status``
    (``{"seed": 0, "status": "ok", "test_rmse": 1500.2, ...}``); a sample may be null (a diverged run),
    and a name optbench check does not compare is refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    seed: int
    status: Status
    # Strict: a sample is a JSON number (true, "7151" are refused, not read as 1.0 and 7151), finite,
    # and within its metric's range (optbench.store.schema.metric_range_error), as in a run record.
    samples: dict[Annotated[str, AfterValidator(_sampled_name)], Annotated[float, Field(strict=True, allow_inf_nan=False)] | None] = Field(default_factory=dict)

    @field_validator("samples")
    @classmethod
    def _in_range(cls, samples: dict[str, float | None]) -> dict[str, float | None]:
        for name, value in samples.items():
            problem = metric_range_error(name, value)
            if problem:
                raise ValueError(problem)
        return samples

    @model_validator(mode="before")
    @classmethod
    def _gather_samples(cls, data: Any) -> Any:
        # Every key but seed and status is a sample (``SeedRun(seed=0, status="ok", test_loss=0.1)`` too).
        if isinstance(data, dict):
            fixed = {k: data[k] for k in ("seed", "status") if k in data}
            return {**fixed, "samples": {k: v for k, v in data.items() if k not in fixed}}
        return data

    @model_serializer(mode="wrap")
    def _flat(self, handler: Any) -> dict[str, Any]:
        doc = handler(self)
        return {**{k: v for k, v in doc.items() if k != "samples"}, **doc.get("samples", {})}

    def value(self, metric: str) -> float | None:
        return self.samples.get(metric)

    def __getattr__(self, name: str) -> Any:
        # ``run.test_rmse``: a sampled metric reads as an attribute, None where the run has no sample.
        if name in checked_metrics():
            return self.value(name)
        return super().__getattr__(name)  # type: ignore[misc]


class Cell(BaseModel):
    """A task x dataset x optimizer-with-hyperparameters x epochs x batch size x device, with its runs by seed."""

    model_config = ConfigDict(extra="forbid")
    task: str
    dataset: str
    optimizer: str
    hparams: dict[str, Any]
    epochs: int
    batch_size: int
    device: str
    impl: Impl = "auto"  # optimizer implementation; left out of the file when "auto"
    training: dict[str, Any] = Field(default_factory=dict)  # non-default training options; left out when none
    code: dict[str, str] = Field(default_factory=dict)  # the plugin/task code version (RunSpec.code); left out when none
    engine: Engine = "eager"  # the engine (RunSpec.engine); left out when "eager"
    label: str
    cell_hash: str
    metric_name: str
    runs: list[SeedRun] = Field(min_length=1)
    # Runtime metric -> the spread of its repeated measurements (a robust standard deviation of the logs,
    # within seeds: optbench.check.steady) when ``baseline save`` re-measured the cell.
    noise: dict[Annotated[str, AfterValidator(_sampled_name)], Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(default_factory=dict)
    repeats: int = 0  # how many times baseline save re-measured each seed (0: the stored runs only)
    environment: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies a cell across spec changes: (task, dataset, label, device)."""
        return (self.task, self.dataset, self.label, self.device)

    @property
    def code_free_key(self) -> str:
        """The cell's identity but its code version (``optbench.spec.identity.code_free_key``): one
        cell of an optimizer across edits of its code."""
        return code_free_key(RunSpec.from_dict({**self.spec_fields(), "seed": 0}))

    @property
    def name(self) -> str:
        """``task/label``: what a ``--cell`` or ``--tol ...@`` glob is matched against."""
        return f"{self.task}/{self.label}"

    def metrics(self) -> list[str]:
        return sampled_metrics(self.task, self.metric_name)

    def matches(self, glob: str) -> bool:
        return any(fnmatch.fnmatchcase(f"{self.task}/{name}", glob) for name in (self.label, self.optimizer))

    def chosen(self, globs: list[str] | None) -> bool:
        """Whether ``--cell`` globs ``globs`` choose this cell (no globs: every cell)."""
        return not globs or any(self.matches(g) for g in globs)

    def spec_fields(self) -> dict[str, Any]:
        """The cell's spec (``RunSpec.cell()``'s fields: every spec field but the seed)."""
        return {k: getattr(self, k) for k in CELL_SPEC_FIELDS}


# How step_cost was measured (optbench.engine.steptime): 1, or absent, the optimizer step over a
# reference step timed after it, in wall time; 2, net of the empty step, controls before the step, CPU
# time. Samples of another clock do not compare: check leaves them out until the baseline is refreshed.
STEP_CLOCK = 2
CLOCKED = "step_cost"


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1]
    created_at: str
    environment: dict[str, Any]
    cells: list[Cell]
    step_clock: int = 1  # see STEP_CLOCK; a baseline saved before it was recorded has the first

    @property
    def outdated_clock(self) -> bool:
        return self.step_clock != STEP_CLOCK

    def without_clocked(self) -> Baseline:
        """This baseline without its step_cost samples (measured by another step clock)."""
        cells = [c.model_copy(update={"runs": [SeedRun(seed=r.seed, status=r.status, **{k: v for k, v in r.samples.items()
                                                                                          if k != CLOCKED})
                                               for r in c.runs], "noise": {k: v for k, v in c.noise.items() if k != CLOCKED}})
                 for c in self.cells]
        return self.model_copy(update={"cells": cells, "step_clock": STEP_CLOCK})

    def cell_environment(self, cell: Cell) -> dict[str, Any]:
        return cell.environment if cell.environment is not None else self.environment


def _round(value: Any, exact: bool = False) -> float | None:
    """A sample to ``SIGNIFICANT_DIGITS``; an exact size (``Metric.exact``) as it is, so that one
    byte more is seen."""
    if value is None:
        return None
    return float(value) if exact else float(f"{float(value):.{SIGNIFICANT_DIGITS}g}")


def fingerprint(environment: dict[str, Any]) -> dict[str, Any]:
    # executor and node only where a cluster set them (runs of this process have neither)
    return {k: environment.get(k) for k in FINGERPRINT_KEYS if k not in ("executor", "node") or k in environment}


def cells_from_records(records: list[dict[str, Any]]) -> list[Cell]:
    """Group run records into cells (one record per cell and seed: the store's newest-finished rule,
    ``newest_per_spec``), each with its environment set."""
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for rec in newest_per_spec(records):
        by_cell.setdefault(cell_key_of(rec), []).append(rec)
    cells = []
    for cell_hash, recs in by_cell.items():
        recs.sort(key=lambda r: r["spec"]["seed"])
        spec = RunSpec.from_dict(recs[0]["spec"])
        metric_name = recs[0].get("metric_name") or _measured_main_metric(recs)
        keys = sampled_metrics(spec.task, metric_name)
        checked = checked_metrics()
        runs = [SeedRun(seed=r["spec"]["seed"], status=r["status"],
                        **{k: _round(r["metrics"].get(k), checked[k].exact) for k in keys})
                for r in recs]
        fields = {k: v for k, v in spec.cell().items() if k in CELL_SPEC_FIELDS}  # defaults are left out
        cells.append(Cell(**fields, label=recs[0].get("label") or spec_label(spec), cell_hash=cell_hash,
                          metric_name=metric_name, runs=runs, environment=fingerprint(recs[-1]["environment"])))
    return sorted(cells, key=lambda c: (c.task, c.dataset, c.device, c.optimizer, c.label, c.cell_hash))


def _measured_main_metric(recs: list[dict[str, Any]]) -> str:
    """The main metric of records that name none (``metric_name``): the first catalog task's main
    metric whose test metric they hold, else the catalog's fallback."""
    mains = dict.fromkeys(t.metric_name for t in TASKS.values())
    return next((name for r in recs for name in mains if held_out(name).name in r["metrics"]), FALLBACK_METRIC)


def current_code(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The records of each cell's current code version, and per cell (by code-free key) how many runs
    of other code versions were left out.

    Records of one cell but for the code version (``optbench.spec.identity.code_free_key``) are
    grouped by version (``cell_hash``). The current version is the one a plugin's files here hash to
    (``code_on_disk``), where the folder holds runs of it: an edit undone exactly is a run that
    ``optbench run`` skips, as it finished before. Else it is the version whose newest record finished
    last, so after an edit, a run into the same results folder is what ``check`` judges. Runs are
    counted one per spec (``newest_per_spec``), so a ``--force`` re-run counts once."""
    records = newest_per_spec(records)
    versions: dict[str, dict[str, dict[str, Any]]] = {}  # code-free key -> cell key -> its newest record
    for rec in records:
        newest = versions.setdefault(code_free_key_of(rec), {})
        cell = cell_key_of(rec)
        if cell not in newest or _finished(rec) > _finished(newest[cell]):
            newest[cell] = rec
    chosen = {}
    for free, cells in versions.items():
        here = [c for c, rec in cells.items() if len(cells) > 1
                and code_on_disk(rec["spec"]["optimizer"], rec["spec"].get("code") or {})]
        chosen[free] = here[0] if here else max(cells, key=lambda c: _finished(cells[c]))
    kept, other = [], {}
    for rec in records:
        free = code_free_key_of(rec)
        if cell_key_of(rec) == chosen[free]:
            kept.append(rec)
        else:
            other[free] = other.get(free, 0) + 1
    return kept, other


def _finished(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["finished_at"])


def code_on_disk(optimizer: str, code: dict[str, str]) -> bool:
    """Whether a plugin file's code version ``code`` (``optbench.optim.registry.code_version``) is what
    its files here hash to: ``optimizer`` is ``path/to/file.py:Class`` (relative to the current
    directory, as ``optbench run`` reads it) and each ``optimizer:helper.py`` entry a file beside it.
    Hashed, never imported. False for anything else (built-ins, packages, files not here)."""
    plugin = Path(optimizer.partition(":")[0])
    if plugin.suffix != ".py" or "optimizer" not in code or not plugin.is_file():
        return False
    paths = {key: plugin if key == "optimizer" else plugin.parent / key.removeprefix("optimizer:")
             for key in code if key.partition(":")[0] == "optimizer"}
    try:
        return all(path.is_file() and file_digest(path.resolve()) == code[key] for key, path in paths.items())
    except OSError:
        return False


@dataclass
class Current:
    """The current results as ``check`` and the baseline commands see them: the cells of each cell's
    current code version (``current_code``), the files that were skipped, and per code-free key how
    many runs of other code versions were left out."""

    cells: list[Cell]
    problems: list[Problem]
    other_runs: dict[str, int] = field(default_factory=dict)


def load_current(results_dir: Path) -> Current:
    """The current code's cells of every valid record under ``<results_dir>/runs``; UserError when
    there is none."""
    records, problems = load_records([results_dir])
    if not records:
        raise UserError(f"no run records under {Path(results_dir) / RUNS}; run a suite first "
                        f"(optbench run --config FILE --results-dir {results_dir})")
    kept, other = current_code(records)
    return Current(cells_from_records(kept), problems, other)


def load_cells(results_dir: Path) -> tuple[list[Cell], list[Problem]]:
    """``load_current``'s cells and skipped files."""
    current = load_current(results_dir)
    return current.cells, current.problems


def make_baseline(cells: list[Cell]) -> Baseline:
    """A baseline whose top-level environment is the most common one; other cells keep their own."""
    envs = [json.dumps(c.environment, sort_keys=True) for c in cells]
    common = json.loads(Counter(envs).most_common(1)[0][0]) if envs else {}
    kept = [c.model_copy(update={"environment": None if c.environment == common else c.environment}) for c in cells]
    kept.sort(key=lambda c: (c.task, c.dataset, c.device, c.optimizer, c.label, c.cell_hash))
    return Baseline(schema_version=BASELINE_SCHEMA_VERSION, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    environment=common, cells=kept, step_clock=STEP_CLOCK)


def to_json(baseline: Baseline) -> str:
    doc = baseline.model_dump(mode="json", exclude_unset=True)
    for cell, model in zip(doc["cells"], baseline.cells):
        if model.environment is None:
            cell.pop("environment", None)
        if not model.repeats:  # a cell saved without re-measuring reads as before
            cell.pop("noise", None), cell.pop("repeats", None)
    return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_baseline(baseline: Baseline, path: Path) -> Path:
    """Write atomically (temporary file in the same folder, then rename): a reader never sees half a file."""
    path = Path(path)
    text = to_json(baseline)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, text.encode())
    except OSError as exc:  # a full disk: OutputFailed (exit 73); a path that cannot be written: UserError
        raise write_failed(f"baseline {path}", exc) from None


def read_baseline(path: Path) -> Baseline:
    """Read and validate a baseline file; any problem is a one-line UserError."""
    path = Path(path)
    fix = f"recreate it with: optbench baseline save --out {path}"
    if not path.exists():
        raise UserError(f"baseline {path} not found; create it with: optbench baseline save --out {path}")
    try:  # a regular file within the size limit, strict JSON (NaN and Infinity are refused), depth-safe
        doc = parse_json(read_regular(path, MAX_BASELINE_BYTES), MAX_NESTING)
    except Refused as exc:
        reason = str(exc)
        raise UserError(f"baseline {path} {'is ' if reason.startswith('not ') else ''}{reason}; {fix}") from None
    if isinstance(doc, dict) and doc.get("schema_version") not in (None, BASELINE_SCHEMA_VERSION):
        raise UserError(f"baseline {path} has schema version {doc['schema_version']!r}, this optbench reads "
                        f"{BASELINE_SCHEMA_VERSION}; {fix}")
    try:
        return Baseline.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        # ``samples`` is the model's, not the file's: there a sample sits beside seed and status
        loc = ".".join(str(p) for p in err["loc"] if p != "samples") or "top level"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        if err["type"] != "value_error" and not isinstance(got, (dict, list)):
            msg += f", not {json.dumps(got)}"  # JSON's words: true, "7151"
        raise UserError(f"baseline {path} is not an optbench baseline ({loc}: {msg[:1].lower() + msg[1:]}); {fix}") from None


@dataclass
class Update:
    """What ``baseline update`` changed, by cell name (``task/label``)."""

    replaced: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: int = 0


def update_baseline(baseline: Baseline, current: list[Cell], globs: list[str] | None = None,
                    prune: bool = False) -> tuple[Baseline, Update]:
    """Replace the baseline's cells with the current ones (those matching ``globs``, or all).

    A current cell replaces every baseline cell with its key (task, dataset, label, device), its hash or
    its code-free key, so a changed spec becomes comparable again and a new code version takes the
    place of the old one. With ``prune``, selected baseline cells absent from the
    current results are dropped; otherwise they stay.
    """
    if baseline.outdated_clock:  # the cells kept must not carry step_cost samples of the old clock
        baseline = baseline.without_clocked()
    chosen = [c for c in current if c.chosen(globs)]
    for glob in globs or []:
        if not any(c.matches(glob) for c in chosen) and not (prune and any(c.matches(glob) for c in baseline.cells)):
            names = sorted({c.name for c in current})
            raise UserError(f"--cell {glob} matches no cell in the current results; cells: {', '.join(names)}")
    def ids(cell: Cell) -> set[Any]:
        return {cell.key, cell.cell_hash, cell.code_free_key}

    chosen_ids = set().union(*map(ids, chosen))
    old_ids = set().union(*map(ids, baseline.cells))
    update = Update()
    cells = []
    for cell in baseline.cells:
        cell = cell.model_copy(update={"environment": baseline.cell_environment(cell)})
        if ids(cell) & chosen_ids:
            continue  # replaced by the current cell below
        if prune and cell.chosen(globs):
            update.removed.append(cell.name)
        else:
            cells.append(cell)
            update.kept += 1
    for cell in chosen:
        (update.replaced if ids(cell) & old_ids else update.added).append(cell.name)
    return make_baseline(cells + chosen), update


Steady = Callable[[list[Cell]], list[Cell]]


def save_baseline(results_dir: Path, out: Path, force: bool = False,
                  steady: Steady | None = None) -> tuple[Baseline, list[Problem]]:
    """Build a baseline from every record under ``results_dir`` and write it to ``out``; ``steady``
    re-measures the cells' runtime first (``optbench.check.steady``)."""
    refuse_inside_runs(out, [results_dir], "--out")
    if Path(out).exists() and not force:
        raise UserError(f"{out} exists; refresh it with: optbench baseline update --baseline {out} "
                        f"--results-dir {results_dir} (or pass --force to overwrite)")
    cells, problems = load_cells(results_dir)
    baseline = make_baseline(steady(cells) if steady else cells)
    write_baseline(baseline, out)
    return baseline, problems


def update_baseline_file(path: Path, results_dir: Path, globs: list[str] | None = None,
                         prune: bool = False, steady: Steady | None = None) -> tuple[Baseline, Update, list[Problem]]:
    """Read ``path``, refresh it from ``results_dir`` (see ``update_baseline``), write it back
    atomically; ``steady`` re-measures the selected cells' runtime first (``optbench.check.steady``)."""
    baseline = read_baseline(path)
    cells, problems = load_cells(results_dir)
    if steady:
        chosen = [c for c in cells if c.chosen(globs)]
        done = {c.cell_hash: c for c in steady(chosen)}
        cells = [done.get(c.cell_hash, c) for c in cells]
    updated, update = update_baseline(baseline, cells, globs, prune)
    write_baseline(updated, path)
    return updated, update, problems
