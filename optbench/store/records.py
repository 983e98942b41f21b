"""The results store: one JSON document per finished run under ``<results-dir>/runs/``.

Writes are atomic (a temporary file in the same folder, flushed, then renamed), and every file
name carries the run's unique id, so a reader never sees half a record and no run overwrites another.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from optbench.errors import UserError
from optbench.files import Refused, parse_json, probe_writable, read_regular, write_atomic
from optbench.limits import MAX_NESTING, MAX_RECORD_BYTES
from optbench.spec import FINISHED, RunResult, RunSpec
from optbench.store.schema import why_invalid

RUNS = "runs"


def ensure_writable(results_dir: Path) -> Path:
    """Create ``<results_dir>/runs`` and prove it is writable before any run starts."""
    runs = Path(results_dir) / RUNS
    try:
        probe_writable(runs)
    except OSError as exc:
        raise UserError(f"cannot write results to {runs} ({exc.strerror or exc}); pass --results-dir DIR that you can write") from None
    return runs


def refuse_inside_runs(path: Path, results_dirs: Iterable[Path], flag: str) -> None:
    """UserError when ``path`` lies in a results directory's ``runs/``: only run records live there
    (anything else would be warned about, as not a record, by every later command)."""
    resolved = Path(path).resolve()
    for results_dir in results_dirs:
        runs = (Path(results_dir) / RUNS).resolve()
        if resolved.is_relative_to(runs):
            raise UserError(f"{flag} {path} is inside {Path(results_dir) / RUNS}, where only run records live; "
                            "choose a path outside it")


def record_filename(record: dict[str, Any]) -> str:
    spec = record["spec"]
    stamp = record["started_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    opt = "".join(c if c.isalnum() else "-" for c in spec["optimizer"])[:40]
    return f"{stamp}_{spec['task']}_{opt}_s{spec['seed']}_{record['spec_hash']}_{record['run_id']}.json"


def save_result(result: RunResult, results_dir: Path) -> Path:
    """Write one run's record atomically; returns its path."""
    return save_record(result.to_record(), results_dir)


def save_record(record: dict[str, Any], results_dir: Path) -> Path:
    runs = Path(results_dir) / RUNS
    runs.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"
    # Linked, not renamed, into place: no run ever overwrites another.
    return write_atomic(runs / record_filename(record), text.encode(), replace=False)


@dataclass
class Problem:
    """A file in a results directory that is not a valid run record; reported, never touched."""

    path: Path
    reason: str


def read_record(path: Path) -> dict[str, Any]:
    """One validated run record; Refused (with the reason) for anything else.

    Only regular files are read (a pipe, device, socket or folder is refused without blocking),
    at most MAX_RECORD_BYTES of them, as strict JSON nested at most MAX_NESTING deep, and the
    document must pass the schema (optbench.store.schema), including its spec hash.
    """
    doc = parse_json(read_regular(path, MAX_RECORD_BYTES), MAX_NESTING)
    reason = why_invalid(doc)
    if reason:
        raise Refused(reason)
    if doc.get("cell_hash") is None:
        doc["cell_hash"] = RunSpec.from_dict(doc["spec"]).cell_hash()
    doc["_path"] = str(path)
    return doc


def load_records(results_dirs: Iterable[Path], every_run: bool = False) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The valid run records under ``<dir>/runs/`` of each directory, plus the files that were skipped.

    By default one record per spec (``newest_per_spec``: the newest finished one wins), across all
    directories, so a spec that ran twice never counts twice; ``every_run`` keeps them all.
    """
    records, problems = [], []
    for results_dir in results_dirs:
        runs = Path(results_dir) / RUNS
        if not runs.is_dir():
            continue
        for path in sorted(runs.glob("*.json")):
            try:
                records.append(read_record(path))
            except Refused as exc:
                problems.append(Problem(path, str(exc)))
    return (records if every_run else newest_per_spec(records)), problems


def age_key(record: dict[str, Any]) -> tuple[bool, datetime, datetime, str]:
    """What orders the records of one spec: finished before failed, then the newest."""
    return (record["status"] in FINISHED, datetime.fromisoformat(record["finished_at"]),
            datetime.fromisoformat(record["started_at"]), record["run_id"])


def newest_per_spec(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The one rule for several records of one spec (a --force re-run, concurrent writers, merged
    results directories): the newest finished record wins; a spec with no finished record is
    represented by its newest failed one. Records keep their order otherwise."""
    best: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for rec in records:
        key = rec["spec_hash"]
        if key not in best:
            order.append(key)
            best[key] = rec
        elif age_key(rec) > age_key(best[key]):
            best[key] = rec
    return [best[k] for k in order]


def finished_record(results_dir: Path, spec_hash: str) -> dict[str, Any] | None:
    """The newest finished record of this spec now (another process may have just written it).

    It lists the whole folder: a campaign asks ``optbench.store.index.RecordIndex`` instead, which
    reads the folder once and decides the same."""
    found = []
    for path in (Path(results_dir) / RUNS).glob(f"*_{spec_hash}_*.json"):
        try:
            rec = read_record(path)
        except Refused:
            continue
        if rec["spec_hash"] == spec_hash and rec["status"] in FINISHED:
            found.append(rec)
    return max(found, key=age_key) if found else None
