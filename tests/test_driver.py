"""The campaign driver and the executor seam: resume, annotations, events by spec hash, the
--select protocol deciding from the results it is given, and the record's identity fields."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from optbench.engine.base import RunEvents
from optbench.execution.base import WorkUnit, execute_unit
from optbench.spec.identity import group_key
from optbench.execution.driver import Campaign, CampaignEvents, run_campaign
from optbench.execution.local import LocalExecutor
from optbench.execution.selection import Protocol
from optbench.config.suite import build_specs, load_suite
from optbench.spec import RunResult, RunSpec
from optbench.store.records import load_records


def specs(**overrides) -> list[RunSpec]:
    base = {"tasks": ["regression"], "optimizers": ["sgd", "adam"], "epochs": 2, "device": "cpu"}
    return build_specs(load_suite(None, {**base, **overrides}, source="test"))


class Recorder(CampaignEvents):
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def run_started(self, spec_hash: str) -> None:
        self.log.append(("started", spec_hash))

    def epoch_done(self, spec_hash: str, epoch: int, epochs: int) -> None:
        self.log.append(("epoch", spec_hash))

    def run_skipped(self, spec_hash: str) -> None:
        self.log.append(("skipped", spec_hash))

    def run_finished(self, result: RunResult, path: Path) -> None:
        self.log.append(("finished", result.spec.spec_hash()))


def test_driver_writes_annotated_records_and_resumes(tmp_path: Path) -> None:
    suite = specs()
    events = Recorder()
    first = run_campaign(Campaign(suite, tmp_path / "r", tmp_path / "d", experiment="exp-1"), events=events)
    assert [r.spec for r in first.results] == suite and first.skipped == 0
    hashes = {s.spec_hash() for s in suite}
    assert {h for kind, h in events.log if kind == "finished"} == hashes
    assert sum(kind == "epoch" for kind, _ in events.log) == 2 * len(suite)  # every event names its run
    records, _ = load_records([tmp_path / "r"])
    assert {r["experiment"] for r in records} == {"exp-1"}
    assert {r["label"] for r in records} == {"sgd", "adam"}
    again = Recorder()
    second = run_campaign(Campaign(suite, tmp_path / "r", tmp_path / "d"), events=again)
    assert second.results == [] and second.skipped == len(suite)
    assert {h for kind, h in again.log if kind == "skipped"} == hashes


def test_force_three_times_is_still_one_run_per_seed(cli) -> None:
    for _ in range(3):
        assert cli.run("--opt", "adam", "--epochs", "1", "--force", "--quiet").exit_code == 0
    assert len(cli.stored()) == 3
    records, _ = load_records([cli.results_dir])
    assert len(records) == 1  # the newest finished record of the spec stands for it


class ReversingExecutor:
    """An executor that finishes its units in the opposite order (as a cluster may)."""

    name = "reversing"

    def map(self, work: Iterable[WorkUnit], data_dir: Path, events: RunEvents) -> Iterator[RunResult]:
        units = list(work)
        for unit in reversed(units):
            yield from execute_unit(unit, data_dir, events)

    def close(self) -> None:
        pass


def test_results_in_completion_order_are_recorded_and_select_decides_from_them(tmp_path: Path) -> None:
    suite = specs(optimizers=["sgd:lr=0.001|0.1"], select=True)
    outcome = run_campaign(Campaign(suite, tmp_path / "r", tmp_path / "d", select=True), executor=ReversingExecutor())
    assert [c.best.spec.hparams["lr"] for c in outcome.choices] == [0.1]
    stages = [r.stage for r in outcome.results]
    assert stages.count("sweep") == 2 and stages.count("final") == 1 and stages.count("default") == 1


def test_protocol_decides_only_from_the_records_it_is_given() -> None:
    protocol = Protocol.from_specs(specs(optimizers=["sgd:lr=0.001|0.1"]))
    stages = protocol.stages()
    stage, candidates = next(stages)
    assert stage == "sweep"
    protocol.decide([])  # no records given: nothing finished, nothing chosen, nothing read from disk
    assert next(stages) == ("final", [])


def test_group_key_ignores_seed_and_hyperparameter_values_only() -> None:
    a, b = specs(optimizers=["sgd:lr=0.001|0.1"], seeds=2)[:2]
    c = specs(optimizers=["adam"])[0]
    assert group_key(a) == group_key(b) != group_key(c)


def test_local_executor_runs_each_spec_once(tmp_path: Path) -> None:
    suite = specs()
    units = [WorkUnit((s,)) for s in suite]
    results = list(LocalExecutor().map(units, tmp_path, RunEvents()))
    assert [r.spec for r in results] == suite and all(r.status == "ok" for r in results)


def test_an_unknown_engine_is_a_user_error(tmp_path: Path) -> None:
    from optbench.errors import UserError

    with pytest.raises(UserError, match="unknown engine 'warp'"):
        list(execute_unit(WorkUnit(tuple(specs()[:1]), engine="warp"), tmp_path))


def test_run_name_is_stored_in_every_record(cli) -> None:
    assert cli.run("--opt", "sgd", "--epochs", "1", "--name", "baseline-study", "--quiet").exit_code == 0
    assert [r["experiment"] for r in cli.stored()] == ["baseline-study"]


def finished(spec: RunSpec) -> RunResult:
    """A finished run of ``spec`` as another process records it (no training)."""
    import uuid

    from optbench.spec import CurvePoint

    return RunResult(spec, "ok", {"train_seconds": 0.1, "test_rmse": 1.0}, [CurvePoint(1, 0.1, 1.0, 1.0, 1.0)],
                     {"device": "cpu"}, "2026-01-01T00:00:00.000+00:00", "2026-01-01T00:00:01.000+00:00",
                     uuid.uuid4().hex[:12], metric_name="rmse")


def test_resume_reads_the_store_once_and_still_skips_what_another_writer_records_meanwhile(tmp_path: Path) -> None:
    """The index is read before the campaign starts; another writer (claim held, record written,
    claim released, as a second ``optbench run`` does) then finishes specs 2 and 3: the campaign
    runs only spec 1, seeing 2 when it claims it and 3 after waiting for its claim."""
    import threading

    from optbench.store.claims import claim
    from optbench.store.index import RecordIndex
    from optbench.store.records import save_result

    results = tmp_path / "r"
    one, two, three, done = specs(optimizers=["sgd", "adam", "rmsprop", "momentum"])
    save_result(finished(done), results)  # finished before: skipped from the index alone
    index = RecordIndex.read(results)
    held = {s.spec_hash(): claim(results, s.spec_hash()) for s in (two, three)}  # the other writer's runs in flight
    handed: list[RunSpec] = []
    got_one = threading.Event()

    def other_writer() -> None:  # finishes three once the campaign runs spec 1 (it waits for the claim then)
        got_one.wait(timeout=30)
        save_result(finished(three), results)
        held.pop(three.spec_hash()).release()

    class Recording:
        name = "recording"

        def map(self, work: Iterable[WorkUnit], data_dir: Path, events: RunEvents) -> Iterator[RunResult]:
            for unit in work:
                handed.extend(unit.specs)
                if unit.specs == (one,):  # the other writer finishes two while one runs here
                    save_result(finished(two), results)
                    held.pop(two.spec_hash()).release()
                    got_one.set()
                yield from (finished(s) for s in unit.specs)

        def close(self) -> None:
            pass

    writer = threading.Thread(target=other_writer)
    writer.start()
    try:
        outcome = run_campaign(Campaign([one, two, three, done], results, tmp_path / "d", index=index),
                               executor=Recording())
    finally:
        writer.join(timeout=30)
    assert handed == [one] and outcome.skipped == 3
    assert sorted(r["spec_hash"] for r in load_records([results])[0]) == sorted(s.spec_hash() for s in (one, two, three, done))
    assert len(load_records([results], every_run=True)[0]) == 4  # each spec recorded once
