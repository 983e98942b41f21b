"""The results store: one JSON document per finished run under ``<results-dir>/runs/``.

Writes are atomic (a temporary file in the same folder, flushed, then renamed), and every file
name carries the run's unique id, so a reader never sees half a record and no run overwrites another.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optbench.errors import UserError
from optbench.files import probe_writable, write_atomic
from optbench.spec import SCHEMA_VERSION, SUCCESS, RunResult, RunSpec

RUNS = "runs"


def ensure_writable(results_dir: Path) -> Path:
    """Create ``<results_dir>/runs`` and prove it is writable before any run starts."""
    runs = Path(results_dir) / RUNS
    try:
        probe_writable(runs)
    except OSError as exc:
        raise UserError(f"cannot write results to {runs} ({exc.strerror or exc}); pass --results-dir DIR that you can write") from None
    return runs


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


def load_records(results_dirs: Iterable[Path]) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Every valid run record under ``<dir>/runs/`` of each directory, plus the files that were skipped."""
    records, problems = [], []
    for results_dir in results_dirs:
        runs = Path(results_dir) / RUNS
        if not runs.is_dir():
            continue
        for path in sorted(runs.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                problems.append(Problem(path, f"not readable JSON ({exc})"))
                continue
            reason = _invalid(record)
            if reason:
                problems.append(Problem(path, reason))
            else:
                record["_path"] = str(path)
                records.append(record)
    return records, problems


# A finished run is not repeated on resume; a failed one is (its cause may have been transient).
FINISHED = (*SUCCESS, "diverged")


def has_finished(results_dir: Path, spec_hash: str) -> bool:
    """Whether a finished record of this spec exists now (another process may have written it)."""
    for path in (Path(results_dir) / RUNS).glob(f"*_{spec_hash}_*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and not _invalid(record) and record.get("status") in FINISHED \
                and record.get("spec_hash") == spec_hash:
            return True
    return False


def _invalid(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "not a run record (top level is not an object)"
    missing = [k for k in ("schema_version", "spec", "spec_hash", "status", "metrics", "curve", "environment")
               if k not in record]
    if missing:
        return f"not a run record (missing {', '.join(missing)})"
    try:  # the spec itself decides what a complete spec is
        RunSpec.from_dict(record["spec"])
    except (KeyError, TypeError, AttributeError):
        return "not a run record (incomplete spec)"
    if not isinstance(record["metrics"], dict) or not isinstance(record["curve"], list):
        return "not a run record (metrics or curve malformed)"
    if record["schema_version"] != SCHEMA_VERSION:
        return f"schema version {record['schema_version']!r}, this optbench reads {SCHEMA_VERSION}"
    return None
