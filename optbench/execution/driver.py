"""The campaign driver: the one process that owns a suite from its specs to its records.

``run_campaign`` skips specs that already have a finished record (resume: the store is read once,
``optbench.store.index``), checks the data of every task once before the first run, claims the
rest (``optbench.store.claims``) so two processes never run one spec at once, hands units of
work to an executor (``optbench.execution.base``: this process, or a cluster) with what it knows of
them (stage, targets, experiment, git commit: ``RunContext``, which the engine's side writes into
each result), writes every record, runs the ``--select`` protocol between its stages from the
results it has, reports progress, and stops cleanly on SIGINT/SIGTERM or when the results folder
stops accepting records. Engines and executors never write records; the CLI only parses and renders.

A campaign whose specs are all finished never imports torch: the data check, the git commit and the
engines are only reached once a spec is to run (with ``--engine eager``, the default: deciding which
specs ``--engine auto`` or ``vectorized`` can vectorize asks the vectorized engine).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from optbench.engine.base import RunEvents
from optbench.errors import ClusterLost, StoreFailed
from optbench.execution.base import Executor, WorkUnit
from optbench.config.presets import get_preset
from optbench.execution.selection import SWEEP, Choice, Protocol
from optbench.spec.vocabulary import ENGINE_CHOICES, TUNE
from optbench.spec import RunContext, RunResult, RunSpec
from optbench.spec.identity import group_key
from optbench.spec.targets import Target
from optbench.store.claims import CLAIMS, Claim, claim, remove_claims_folder
from optbench.store.index import RecordIndex
from optbench.store.records import RUNS, ensure_writable, save_result


class CampaignEvents(RunEvents):
    """What a front end sees of a campaign; the defaults do nothing. Runs are keyed by spec hash."""

    def stage_started(self, stage: str | None, specs: list[RunSpec]) -> None: ...

    def run_skipped(self, spec_hash: str) -> None: ...

    def run_finished(self, result: RunResult, path: Path) -> None: ...

    def stage_finished(self, stage: str | None) -> None: ...


@dataclass
class Campaign:
    """A suite to run: its specs and how the driver treats them."""

    specs: list[RunSpec]
    results_dir: Path
    data_dir: Path = Path("data")
    force: bool = False  # re-run specs that already have a finished record
    select: bool = False  # the --select protocol (optbench.execution.selection)
    targets: dict[str, Target] = field(default_factory=dict)  # task -> time-to-target goal
    experiment: str | None = None  # the name every record of this campaign carries
    engine: str = "eager"
    # The named preset the suite follows (optbench.config.presets), stored in every record; it
    # implies ``select`` and says whether the --select protocol has a default stage.
    protocol: str | None = None
    command: str | None = None  # the invocation, stored in every record (``optbench list-runs`` shows it)
    selection_seeds: int = 1  # seeds per --select sweep candidate (optbench.execution.selection)
    # The results folder as read already (the CLI reads it once, to warn about files that are not
    # records); None: the driver reads it.
    index: RecordIndex | None = None


@dataclass
class CampaignOutcome:
    """What a campaign did. ``stopped`` is the signal number when SIGINT/SIGTERM ended it early
    (the finished records are kept, the runs in flight discarded)."""

    results: list[RunResult] = field(default_factory=list)
    skipped: int = 0
    choices: list[Choice] = field(default_factory=list)
    stopped: int | None = None


class Interrupted(BaseException):
    """SIGINT or SIGTERM during a campaign (a BaseException, so no run records it as a failure)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# A signal that arrives while a record is saved and counted waits here (signals_deferred).
_held: dict[str, Any] = {"depth": 0, "pending": None}


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into Interrupted, so a campaign stops between two clean states
    (only in the main thread, where Python delivers signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if _held["depth"]:
            _held["pending"] = signum
            return
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while a record is saved and counted; they arrive right after.

    A flag the handler reads, not a signal mask: a mask holds a signal back from this thread only,
    and the kernel hands a process's signal to any thread that does not block it (torch's worker
    threads), whose C handler then has Python run the handler here all the same."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        pending = _held["pending"] if not _held["depth"] else None
        if pending is not None:
            _held["pending"] = None
    if pending is not None:  # only when the body finished: an error in it goes first
        raise Interrupted(pending)


def run_campaign(campaign: Campaign, executor: Executor | None = None,
                 events: CampaignEvents | None = None) -> CampaignOutcome:
    """Run a campaign to its end (or to an interruption, in ``outcome.stopped``).

    Raises UserError for bad data (before anything is written), StoreFailed when a record cannot
    be written and ClusterLost when the executor's cluster failed (``kept`` on either exception: the
    records written before it are whole; the runs in flight leave no record).
    """
    from optbench.execution.local import LocalExecutor

    events = events or CampaignEvents()
    executor = executor or LocalExecutor()
    route(campaign.engine, None, campaign.specs)  # --engine vectorized: what cannot be, refused before anything runs
    outcome = CampaignOutcome()
    index = campaign.index if campaign.index is not None else RecordIndex(campaign.results_dir)
    preflight = _Preflight(campaign)
    context = RunContext(experiment=campaign.experiment, protocol=campaign.protocol,
                         targets=tuple(campaign.targets.items()), command=campaign.command)
    # optbench tune (TUNE) is --select over its trials, with its default stage; a preset says its own.
    preset = get_preset(campaign.protocol) if campaign.protocol not in (None, TUNE) else None
    select = campaign.select or preset is not None
    protocol = Protocol.from_specs(campaign.specs, preset.default_stage if preset else True,
                                   campaign.selection_seeds) if select else None
    if protocol:  # the candidates are what the sweep runs (and what its records are matched to)
        protocol.candidates = route(campaign.engine, SWEEP, protocol.candidates)
    stages = protocol.stages() if protocol else iter([(None, campaign.specs)])
    stage_run: _Stage | None = None
    try:
        with signals_raise():
            for stage, specs in stages:
                specs = route(campaign.engine, stage, specs)
                events.stage_started(stage, specs)
                stage_run = _Stage(campaign, stage, specs, replace(context, stage=stage), events, index, preflight)
                for result in executor.map(stage_run.work(), campaign.data_dir, events):
                    with signals_deferred():  # a record on disk is always counted as kept
                        outcome.results.append(stage_run.record(result))
                outcome.skipped += stage_run.skipped
                events.stage_finished(stage)
                if protocol and stage == SWEEP:
                    protocol.decide(stage_run.outcomes())
    except Interrupted as exc:
        outcome.stopped = exc.signum
    except (StoreFailed, ClusterLost) as exc:
        exc.kept = len(outcome.results)
        if stage_run is not None:  # the runs in flight leave no record: give their claims back
            stage_run.release_claims()
        raise
    finally:
        with contextlib.suppress(OSError):
            remove_claims_folder(campaign.results_dir)
        if protocol:
            outcome.choices = protocol.choices
    return outcome


class _Preflight:
    """What a campaign needs once, before its first run, and only if something runs: every dataset
    present and valid (so a bad suite writes nothing; optbench.execution.campaign), the results folder
    writable, and the git commit the records carry. A campaign whose specs are all finished skips
    them (and torch with them)."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.commit: str | None = None
        self.done = False

    def __call__(self) -> str | None:
        """The git commit, once every dataset of the campaign is checked (a bad one raises UserError)
        and its results folder proven writable (UserError if not)."""
        if not self.done:
            from optbench.execution.campaign import validate_campaign
            from optbench.fingerprint import git_commit

            validate_campaign(self.campaign.specs, self.campaign.data_dir)
            ensure_writable(self.campaign.results_dir)
            self.commit, self.done = git_commit(), True
        return self.commit


# With --engine auto, a group of at least this many seeds x values is vectorized outside the sweep.
AUTO_GROUP = 8


def route(engine: str, stage: str | None, specs: list[RunSpec]) -> list[RunSpec]:
    """The specs with the engine each runs on. ``eager``: all eager. ``vectorized``: all vectorized,
    or a UserError naming what cannot be. ``auto``: the eligible specs of the ``--select`` sweep
    (only quality matters there) and of groups of ``AUTO_GROUP`` or more runs are vectorized; the
    rest, and the final and default stages whose runtime is reported, stay eager."""
    if engine not in ENGINE_CHOICES:
        from optbench.errors import unknown

        raise unknown("engine", engine, ENGINE_CHOICES)
    if engine == "eager":
        return [replace(s, engine="eager") for s in specs]
    from optbench.engine.vectorized import check_group, ineligible

    if engine == "vectorized":
        routed = [replace(s, engine="vectorized") for s in specs]
        check_group(routed)
        return routed
    sizes: dict[str, int] = {}
    for s in specs:
        key = group_key(replace(s, engine="vectorized"))
        sizes[key] = sizes.get(key, 0) + 1
    out = []
    for s in specs:
        vec = replace(s, engine="vectorized")
        wanted = stage == SWEEP or sizes[group_key(vec)] >= AUTO_GROUP
        out.append(vec if wanted and ineligible(s) is None else replace(s, engine="eager"))
    return out


class _Stage:
    """One stage of a campaign: which of its specs run (resume, claims), and the records they leave."""

    def __init__(self, campaign: Campaign, stage: str | None, specs: list[RunSpec], context: RunContext,
                 events: CampaignEvents, index: RecordIndex, preflight: _Preflight) -> None:
        self.campaign, self.stage, self.specs, self.events = campaign, stage, specs, events
        self.context = context
        self.index, self.preflight = index, preflight
        self.skipped = 0
        self.claims: dict[str, Claim] = {}
        self.records: dict[str, dict[str, Any]] = {}  # spec hash -> its newest finished or new record
        self.since = datetime.now().astimezone()

    def work(self) -> Iterator[WorkUnit]:
        """Units for the executor: one per eager spec, one per group (``group_key``) of vectorized
        specs, which are held (claimed) until the stage's specs are all claimed."""
        groups: dict[str, list[RunSpec]] = {}
        for spec in self._runnable():
            if spec.engine == "eager":
                yield WorkUnit((spec,), "eager", self.context)
            else:
                groups.setdefault(group_key(spec), []).append(spec)
        for group in groups.values():
            yield WorkUnit(tuple(group), group[0].engine, self.context)

    def _runnable(self) -> Iterator[RunSpec]:
        """Specs to run, claimed as they are taken: finished specs are skipped (the index), specs
        another process is running now are left for the end and skipped if it recorded them.

        A claimed spec is looked up again in the index refreshed after its claim was taken (another
        process records a spec while it holds the claim, so its record is seen then): an eager spec
        at once, as it runs next; vectorized specs, which wait for their whole group, together with
        the next eager spec or at the end, so a group costs one listing of the folder, not one per spec.
        """
        deferred: list[tuple[RunSpec, str]] = []
        claimed: list[tuple[RunSpec, str]] = []  # claimed, to be looked up again after the next refresh
        for spec in self.specs:
            spec_hash = spec.spec_hash()
            if self._already_done(spec_hash):
                continue
            self._ready()
            held = self._claim(spec_hash, wait=False)
            if held is None:
                deferred.append((spec, spec_hash))
                continue
            self.claims[spec_hash] = held
            claimed.append((spec, spec_hash))
            if spec.engine == "eager":
                yield from self._still_to_run(claimed)
                claimed = []
        yield from self._still_to_run(claimed)
        for spec, spec_hash in deferred:
            # Wait for the other process only while this one holds no claim of its own: an executor
            # with units in flight (a cluster) waiting on a process that waits on it would deadlock.
            # Holding claims, it runs the spec now; the store's newest-finished rule counts it once.
            held = self._claim(spec_hash, wait=not self.claims)
            if held is None:
                yield spec
                continue
            if self._recorded_by_another(spec_hash):
                held.release()
                self._skip(spec_hash, self.index.finished(spec_hash))
                continue
            self.claims[spec_hash] = held
            yield spec

    def _still_to_run(self, claimed: list[tuple[RunSpec, str]]) -> Iterator[RunSpec]:
        """The ``claimed`` specs not finished meanwhile (by another process, before the claims were
        taken): one refresh of the index for all of them; the finished ones are released and skipped."""
        if not claimed:
            return
        self.index.refresh()
        for spec, spec_hash in claimed:
            if self._already_done(spec_hash):
                self.claims.pop(spec_hash).release()
            else:
                yield spec

    def _ready(self) -> None:
        """Before a claim: the campaign's data checked, its folder writable, the git commit known (once)."""
        self.context = replace(self.context, git_commit=self.preflight())

    def record(self, result: RunResult) -> RunResult:
        """Save one result (final as its work unit returned it), then release its claim."""
        c = self.campaign
        try:
            path = save_result(result, c.results_dir)
        except OSError as exc:  # full disk, permission or mount change: stop, the records so far are whole
            raise StoreFailed(Path(c.results_dir) / RUNS, exc) from None
        finally:
            held = self.claims.pop(result.spec.spec_hash(), None)
            if held is not None:
                held.release()
        self.records[result.spec.spec_hash()] = result.to_record()
        self.events.run_finished(result, path)
        return result

    def release_claims(self) -> None:
        """Give up the claims of runs that will not be recorded (the campaign stopped)."""
        for held in self.claims.values():
            held.release()
        self.claims.clear()

    def outcomes(self) -> list[dict[str, Any]]:
        """The records of this stage's specs: new ones and those found finished on disk."""
        return list(self.records.values())

    def _already_done(self, spec_hash: str) -> bool:
        if self.campaign.force:
            return False
        record = self.index.finished(spec_hash)
        if record is None:
            return False
        self._skip(spec_hash, record)
        return True

    def _skip(self, spec_hash: str, record: dict[str, Any] | None) -> None:
        self.skipped += 1
        if record is not None:
            self.records[spec_hash] = record
        self.events.run_skipped(spec_hash)

    def _claim(self, spec_hash: str, wait: bool) -> Claim | None:
        try:
            return claim(self.campaign.results_dir, spec_hash, wait=wait)
        except OSError as exc:
            raise StoreFailed(Path(self.campaign.results_dir) / CLAIMS, exc) from None

    def _recorded_by_another(self, spec_hash: str) -> bool:
        """Whether the process that held the claim recorded the spec (with ``force``: since we started)."""
        self.index.refresh()
        record = self.index.finished(spec_hash)
        if record is None:
            return False
        return not self.campaign.force or datetime.fromisoformat(record["finished_at"]) >= self.since

