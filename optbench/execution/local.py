"""Run a list of specs in this process, store each result as it finishes, and report progress.

A failure inside one run (an exception, CUDA out of memory) is recorded as status ``failed``
and the suite goes on; the engine itself stays a pure function of its spec.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import torch

from optbench.engine.eager import DEFAULT_DATA_DIR, run, utc_now
from optbench.errors import StoreFailed, UserError
from optbench.fingerprint import environment
from optbench.spec import RunResult, RunSpec
from optbench.store.claims import CLAIMS, Claim, claim, remove_claims_folder
from optbench.store.records import RUNS, finished_record, has_finished, save_result
from optbench.protocol.targets import Target, target_metrics


class Progress:
    """Hooks a front end implements to show progress; the defaults do nothing."""

    def run_started(self, index: int, total: int, spec: RunSpec) -> None: ...

    def epoch_done(self, epoch: int, epochs: int) -> None: ...

    def run_finished(self, index: int, total: int, result: RunResult, path: Path) -> None: ...

    def run_skipped(self, index: int, total: int, spec: RunSpec) -> None: ...


def run_suite(specs: list[RunSpec], results_dir: Path, data_dir: Path = DEFAULT_DATA_DIR,
              progress: Progress | None = None, force: bool = False, stage: str | None = None,
              targets: dict[str, Target] | None = None) -> Iterator[RunResult]:
    """Run every spec in order, saving each record before the next run starts; yields results.

    A spec that already has a finished record in ``results_dir`` (written earlier, or by another
    process running at the same time) is skipped unless ``force``: re-running a command resumes it.
    A spec another process is running right now (its claim is held, ``optbench.store.claims``) is
    left for the end, then skipped if that process recorded it. A record that cannot be written
    (full disk, permissions) raises StoreFailed: the suite stops, earlier records stay whole.
    Each record is marked with ``stage`` (see ``optbench.protocol.selection``) and, for a task in ``targets``,
    the target with its ``time_to_target_s`` and ``epochs_to_target`` (test-split runs only).
    """
    progress = progress or Progress()
    since = utc_now()
    deferred: list[tuple[int, RunSpec]] = []
    try:
        for index, spec in enumerate(specs):
            if not force and has_finished(results_dir, spec.spec_hash()):
                progress.run_skipped(index, len(specs), spec)
                continue
            held = _claim(results_dir, spec, wait=False)
            if held is None:  # another process is running this spec now: come back to it at the end
                deferred.append((index, spec))
                continue
            with held:
                if not force and has_finished(results_dir, spec.spec_hash()):  # finished while we claimed it
                    progress.run_skipped(index, len(specs), spec)
                    continue
                yield from _run_claimed(index, spec, specs, results_dir, data_dir, progress, stage, targets)
        for index, spec in deferred:
            with _claim(results_dir, spec, wait=True) as held:  # type: ignore[union-attr]
                if _recorded_by_another(results_dir, spec, force, since):
                    progress.run_skipped(index, len(specs), spec)
                    continue
                yield from _run_claimed(index, spec, specs, results_dir, data_dir, progress, stage, targets)
    finally:
        remove_claims_folder(results_dir)


def _claim(results_dir: Path, spec: RunSpec, wait: bool) -> Claim | None:
    try:
        return claim(results_dir, spec.spec_hash(), wait=wait)
    except OSError as exc:
        raise StoreFailed(Path(results_dir) / CLAIMS, exc) from None


def _recorded_by_another(results_dir: Path, spec: RunSpec, force: bool, since: str) -> bool:
    """Whether the process that held the claim recorded the spec (with ``force``: since ``since``)."""
    record = finished_record(results_dir, spec.spec_hash())
    if record is None:
        return False
    return not force or datetime.fromisoformat(record["finished_at"]) >= datetime.fromisoformat(since)


def _run_claimed(index: int, spec: RunSpec, specs: list[RunSpec], results_dir: Path, data_dir: Path,
                 progress: Progress, stage: str | None, targets: dict[str, Target] | None) -> Iterator[RunResult]:
    """Run one claimed spec and save its record; a record that cannot be written stops the suite (StoreFailed)."""
    progress.run_started(index, len(specs), spec)
    started = utc_now()
    try:
        result = run(spec, data_dir=data_dir, on_epoch=progress.epoch_done)
    except UserError:
        raise  # missing or bad data: the user must fix it, every later run would fail the same way
    except Exception as exc:  # noqa: BLE001 - one broken run must not lose the suite
        result = RunResult(
            spec=spec, status="failed", metrics={}, curve=[], environment=environment(spec.device),
            started_at=started, finished_at=utc_now(), run_id=uuid.uuid4().hex[:12],
            error=f"{type(exc).__name__}: {exc}".strip() + "\n" + traceback.format_exc(limit=-3),
        )
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # give the next run the memory an out-of-memory run held
    result.stage = stage
    target = (targets or {}).get(spec.task)
    if target is not None and spec.training.split == "test":
        result.target = target.to_dict()
        result.metrics.update(target_metrics([p.to_dict() for p in result.curve], target))
    try:
        path = save_result(result, results_dir)
    except OSError as exc:  # full disk, permission or mount change: stop, the records so far are whole
        raise StoreFailed(Path(results_dir) / RUNS, exc) from None
    progress.run_finished(index, len(specs), result, path)
    yield result
