"""The one record reader: no file in a results folder can hang, crash or skew a command, and a
spec that ran twice never counts twice."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from optbench.cli.app import app
from optbench.execution.driver import Campaign, run_campaign
from optbench.limits import MAX_RECORD_BYTES
from optbench.optim.registry import spec_label
from optbench.spec import RunSpec
from optbench.store.records import load_records, newest_per_spec, save_record


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real record (regression, sgd, 2 epochs)."""
    from optbench.engine.eager import run
    from optbench.config.suite import build_specs, load_suite

    suite = load_suite(None, {"optimizers": ["sgd"], "epochs": 2, "device": "cpu"})
    return run(build_specs(suite)[0], data_dir=tmp_path_factory.mktemp("data")).to_record()


def variant(rec: dict[str, Any], *, seed: int | None = None, **top: Any) -> dict[str, Any]:
    """A copy with another seed (rehashed, as a real run of that spec would be) and a new run id."""
    rec = copy.deepcopy(rec)
    if seed is not None:
        spec = RunSpec.from_dict({**rec["spec"], "seed": seed})
        rec.update(spec=spec.to_dict(), spec_hash=spec.spec_hash(), cell_hash=spec.cell_hash(), label=spec_label(spec))
    rec.update(run_id=uuid.uuid4().hex[:12], **top)
    return rec


def optbench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """optbench in a real process; the timeout is the guard against a hang."""
    return subprocess.run([sys.executable, "-m", "optbench", *args], capture_output=True, text=True, timeout=timeout)


def test_special_huge_and_deep_files_are_skipped_without_blocking(record, tmp_path):
    results = tmp_path / "results"
    save_record(record, results)
    runs = results / "runs"
    os.mkfifo(runs / "pipe.json")  # opening it for reading would block forever
    (runs / "zero.json").symlink_to("/dev/zero")  # reading it would never end
    (runs / "folder.json").mkdir()
    with open(runs / "huge.json", "wb") as f:  # sparse: costs no disk
        f.truncate(MAX_RECORD_BYTES + 1)
    (runs / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (runs / "nan.json").write_text(json.dumps(record).replace('"train_seconds": ', '"train_seconds": NaN, "x": '))
    before = sorted((p.name, p.lstat().st_mode) for p in runs.iterdir())

    for args in (["report", "--results-dir", str(results), "--no-charts"],
                 ["run", "--opt", "sgd", "--epochs", "2", "--results-dir", str(results), "--data-dir", str(tmp_path)],
                 ["baseline", "save", "--results-dir", str(results), "--out", str(tmp_path / "b.json"), "--repeats", "0"]):
        done = optbench(*args)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        err = done.stderr.replace("\n", "")
        for name, why in (("pipe.json", "not a regular file (a named pipe)"),
                          ("zero.json", "not a regular file (a character device)"),
                          ("folder.json", "not a regular file (a folder)"),
                          ("huge.json", f"over the limit of {MAX_RECORD_BYTES:,}"),
                          ("deep.json", "nested more than"), ("nan.json", "NaN is not valid JSON")):
            assert f"warning: skipped {runs / name}: " in err and why in err, (name, err)
    assert sorted((p.name, p.lstat().st_mode) for p in runs.iterdir()) == before  # nothing touched


@pytest.mark.parametrize("edit, reason", [
    (lambda r: r["spec"].update(seed="x"), "spec.seed: Input should be a valid integer, got 'x'"),
    (lambda r: r["spec"].update(seed=1.5), "spec.seed: Input should be a valid integer, got 1.5"),
    (lambda r: r["spec"].update(epochs=-5), "spec.epochs: Input should be greater than or equal to 1"),
    (lambda r: r["spec"].update(seed=2**64), "spec.seed: Input should be less than or equal to"),
    (lambda r: r["metrics"].update(train_seconds="slow"), "metrics.train_seconds"),
    (lambda r: r["metrics"].update(test_accuracy=7.0), "not a fraction in [0, 1]"),
    (lambda r: r["metrics"].update(task=1.0), "metric 'task' would shadow a spec or record field"),
    (lambda r: r["metrics"].update(env_cpu=1.0), "metric 'env_cpu' would shadow"),
    (lambda r: r.update(curve=[None]), "curve.0"),
    (lambda r: r.update(started_at=12345), "started_at: Input should be a valid string, got 12345"),
    (lambda r: r.update(finished_at="yesterday"), "finished_at: not an ISO 8601 time"),
    (lambda r: r.update(status="great"), "status"),
    (lambda r: r["spec"].update(optimizer="adam"), "is not the hash of its spec"),
    (lambda r: r.update(environment={"cpu": {"nested": 1}}), "environment.cpu"),
    (lambda r: r["environment"].update(cpu="x" * 5000), "environment.cpu: String should have at most 1000 characters"),
], ids=["seed-str", "seed-float", "epochs-negative", "seed-2**64", "seconds-str", "accuracy-7", "metric-task",
        "metric-env", "curve-null", "started-int", "finished-text", "status", "spec-edited", "env-nested", "env-long"])
def test_a_well_formed_record_with_a_wrong_field_is_skipped_by_every_command(record, tmp_path, edit, reason):
    results = tmp_path / "results"
    save_record(record, results)
    bad = variant(record, seed=1)
    edit(bad)
    bad_path = results / "runs" / "bad.json"
    bad_path.write_text(json.dumps(bad))
    runner = CliRunner()
    for args in (["report", "--no-charts"], ["baseline", "save", "--out", str(tmp_path / "b.json"), "--force", "--repeats", "0"],
                 ["check", "--baseline", str(tmp_path / "b.json")]):
        result = runner.invoke(app, [*args, "--results-dir", str(results)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert f"warning: skipped {bad_path}: " in result.stderr.replace("\n", "")
        assert reason in result.stderr.replace("\n", ""), result.stderr
    baseline = json.loads((tmp_path / "b.json").read_text())
    assert [[r["seed"] for r in c["runs"]] for c in baseline["cells"]] == [[0]]  # the bad record counts nowhere


def test_duplicates_of_a_spec_count_once_and_the_newest_finished_wins(record, tmp_path):
    results = tmp_path / "results"
    older = variant(record, finished_at="2026-01-01T00:00:00.000+00:00", started_at="2026-01-01T00:00:00.000+00:00")
    older["metrics"]["test_rmse"] = 1000.0
    newer = variant(record, finished_at="2026-01-02T00:00:00.000+00:00", started_at="2026-01-02T00:00:00.000+00:00")
    newer["metrics"]["test_rmse"] = 2000.0
    failed_later = variant(record, status="failed", error="RuntimeError: x", metrics={}, curve=[],
                           finished_at="2026-01-03T00:00:00.000+00:00", started_at="2026-01-03T00:00:00.000+00:00")
    only_failed = variant(record, seed=1, status="failed", error="RuntimeError: y", metrics={}, curve=[])
    for rec in (newer, failed_later, older, only_failed):
        save_record(rec, results)

    kept = load_records([results])[0]
    assert sorted((r["spec"]["seed"], r["run_id"]) for r in kept) == [(0, newer["run_id"]), (1, only_failed["run_id"])]
    assert len(load_records([results], every_run=True)[0]) == 4
    # across results folders too (the same spec merged from two machines' copies)
    copy_dir = tmp_path / "copy"
    save_record(older, copy_dir)
    assert [r["run_id"] for r in newest_per_spec(load_records([copy_dir, results], every_run=True)[0])
            if r["spec"]["seed"] == 0] == [newer["run_id"]]

    from optbench.report.build import build_report

    report = build_report([copy_dir, results], fmt="table", draw_charts=False)
    row = report.cells.iloc[0]
    assert (row["n"], row["n_failed"], row["test_rmse_mean"]) == (1, 1, 2000.0)

    from optbench.check.baseline import load_cells

    [cell], _ = load_cells(results)
    assert [(r.seed, r.status, r.test_rmse) for r in cell.runs] == [(0, "ok", 2000.0), (1, "failed", None)]


# --- concurrent writers, claims, faults -----------------------------------------------------------

def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "optbench", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_concurrent_runs_of_overlapping_specs_run_each_spec_once_and_a_reader_sees_whole_records(tmp_path):
    results = tmp_path / "results"
    # Two processes at once sharing 6 of their 8 specs. Runs of 20 epochs keep them in flight
    # together: without claims each of 5 tries here recorded 3 to 6 specs twice.
    procs = [spawn("run", "--opt", "sgd", "adam", "--seed", str(first), "--seeds", "4", "--epochs", "20", "--quiet",
                   "--results-dir", str(results), "--data-dir", str(tmp_path / "data"))
             for first in (0, 1)]
    while any(p.poll() is None for p in procs):  # a reader running alongside never sees half a record
        assert not load_records([results])[1]
        time.sleep(0.01)
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    records = assert_whole(results)
    assert sorted((r["spec"]["optimizer"], r["spec"]["seed"]) for r in records) == \
        sorted((o, s) for o in ("adam", "sgd") for s in range(5))  # 10 specs, 10 records: none ran twice
    assert not (results / ".claims").exists()


CLAIMER = """
import sys, time
from optbench.store.claims import claim
held = claim(sys.argv[1], "0123456789abcdef")
print("held" if held else "busy", flush=True)
time.sleep(600)
"""


def test_a_claim_ends_with_its_process_however_it_dies(tmp_path):
    import signal

    from optbench.store.claims import claim

    holder = subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert claim(tmp_path, "0123456789abcdef") is None  # held by the other process
        holder.send_signal(signal.SIGKILL)  # no cleanup runs: the claim file stays behind
        holder.wait(timeout=30)
        assert (tmp_path / ".claims" / "0123456789abcdef").exists()
        taken = claim(tmp_path, "0123456789abcdef")  # the stale file is taken over at once
        assert taken is not None
        taken.release()
        assert not (tmp_path / ".claims" / "0123456789abcdef").exists()
    finally:
        holder.kill()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 64 KiB file system (tmpfs), so that a disk really fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def assert_whole(results: Path) -> list[dict]:
    records, problems = load_records([results], every_run=True)
    assert not problems, problems
    runs = results / "runs"
    assert not [p.name for p in runs.iterdir() if not p.name.endswith(".json")], "temporary files left behind"
    assert not (results / ".claims").exists() or not list((results / ".claims").iterdir())
    return records


def test_a_full_disk_stops_the_suite_with_one_line_and_the_next_run_resumes(small_tmpfs, tmp_path):
    results = small_tmpfs / "results"
    suite = ["run", "--opt", "sgd", "--seeds", "40", "--epochs", "1", "--quiet", "--results-dir", str(results),
             "--data-dir", str(tmp_path / "data")]
    done = optbench(*suite)
    assert done.returncode == 74, done.stderr
    kept = assert_whole(results)
    assert 0 < len(kept) < 40
    assert done.stderr.strip().splitlines() == [
        f"error: cannot write to {results / 'runs'} (No space left on device): stopped the suite; kept the "
        f"{len(kept)} run(s) finished before in {results / 'runs'}; free space or fix the folder's permissions, "
        "then run the same command again to resume"]

    subprocess.run(["mount", "-o", "remount,size=4m", str(small_tmpfs)], check=True)  # space freed
    again = CliRunner().invoke(app, suite, catch_exceptions=False)  # in this process: the store left is the point
    assert again.exit_code == 0, again.output
    assert f"skipped {len(kept)} already finished" in again.stdout
    assert len(assert_whole(results)) == 40


def test_a_folder_turned_read_only_mid_suite_stops_it_with_one_line(small_tmpfs, tmp_path):
    import time

    subprocess.run(["mount", "-o", "remount,size=4m", str(small_tmpfs)], check=True)
    results = small_tmpfs / "results"
    proc = spawn("run", "--opt", "sgd", "--seeds", "50", "--epochs", "200", "--quiet", "--results-dir", str(results),
                 "--data-dir", str(tmp_path / "data"))
    deadline = time.monotonic() + 120
    while not list((results / "runs").glob("*.json")) if (results / "runs").exists() else True:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    for _ in range(100):  # a record may be being written at this instant (the file system is busy): retry
        if subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 74, err
    assert "(Read-only file system): stopped the suite; kept the" in err and len(err.strip().splitlines()) == 1
    records, problems = load_records([results], every_run=True)
    assert records and not problems


def test_reading_records_never_imports_the_code_they_name(record, tmp_path):
    """A record is data: one naming a plugin file in the current folder, or any importable module,
    must not make report, check or baseline run it (code execution, output on stdout, a hang).
    (``baseline save`` re-measures by default, which runs the suite like ``optbench run``;
    ``--repeats 0`` saves the stored runs only, and only reads.)"""
    work = tmp_path / "work"
    work.mkdir()
    (work / "evil.py").write_text("import pathlib\npathlib.Path('IMPORTED').write_text('x')\nwhile True:\n    pass\n")
    results = work / "results"
    for seed, optimizer in enumerate(("evil.py:Opt", "this:Opt", "antigravity:Opt")):
        spec = RunSpec.from_dict({**record["spec"], "optimizer": optimizer, "seed": seed})
        save_record(variant(record) | {"spec": spec.to_dict(), "spec_hash": spec.spec_hash(),
                                       "cell_hash": spec.cell_hash()}, results)
    for args in (["report", "--no-charts", "--format", "markdown"], ["baseline", "save", "--out", "b.json", "--repeats", "0"],
                 ["check", "--baseline", "b.json"]):
        done = subprocess.run([sys.executable, "-m", "optbench", *args, "--results-dir", "results"], cwd=work,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "Beautiful is better than ugly" not in done.stdout  # `import this` would print it
    assert not (work / "IMPORTED").exists()
    assert "evil.py:Opt" in (work / "b.json").read_text()


def test_report_on_a_full_disk_is_one_line(record, small_tmpfs, tmp_path):
    results = tmp_path / "results"
    save_record(record, results)
    done = optbench("report", "--results-dir", str(results), "--out", str(small_tmpfs / "report"), "--format", "html")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: cannot write the report to {small_tmpfs / 'report'} (No space left on device); "
        "free space or pass --out DIR that you can write"]
    assert not [p for p in (small_tmpfs / "report").iterdir() if p.name.endswith(".part")]


class PrefetchingExecutor:
    """An executor that takes two units before running any, as a cluster with two workers would;
    the barrier makes two campaigns each claim their first spec before either asks for its second."""

    name = "prefetch"

    def __init__(self, barrier) -> None:
        self.barrier = barrier

    def map(self, work, data_dir, events):
        from optbench.execution.base import execute_unit

        units = iter(work)
        first = next(units)
        self.barrier.wait(timeout=60)
        taken = [first, *units]
        for unit in taken:
            yield from execute_unit(unit, data_dir, events)

    def close(self) -> None:
        pass


def test_campaigns_with_work_in_flight_never_wait_on_each_other(tmp_path):
    """A claims x then wants y; B claims y then wants x. Waiting while holding a claim would deadlock."""
    import threading

    from optbench.execution.driver import Campaign, run_campaign
    from optbench.config.suite import build_specs, load_suite

    x, y = build_specs(load_suite(None, {"optimizers": ["sgd", "adam"], "epochs": 2, "device": "cpu"}))
    barrier = threading.Barrier(2)
    outcomes: dict = {}

    def campaign(name, specs):
        try:
            outcomes[name] = run_campaign(Campaign(specs, tmp_path / "results", tmp_path / "data"),
                                          executor=PrefetchingExecutor(barrier))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcomes[name] = exc

    threads = [threading.Thread(target=campaign, args=(n, s), daemon=True) for n, s in (("a", [x, y]), ("b", [y, x]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "the two campaigns deadlocked"
    assert all(not isinstance(o, BaseException) for o in outcomes.values()), outcomes
    records, problems = load_records([tmp_path / "results"])
    assert not problems and sorted(r["spec"]["optimizer"] for r in records) == ["adam", "sgd"]  # each counted once


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_a_claim_file_that_is_not_a_regular_file_is_one_line_not_a_hang(tmp_path, kind):
    # A named pipe used to hang `optbench run` in open(); now it is refused at once, nothing run.
    from optbench.config.suite import build_specs, load_suite
    from optbench.errors import UserError

    spec = build_specs(load_suite(None, {"epochs": 1, "optimizers": ["sgd"], "device": "cpu"}, source="test"))[0]
    claims = tmp_path / "results" / ".claims"
    claims.mkdir(parents=True)
    target = claims / spec.spec_hash()
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    with pytest.raises(UserError, match=rf"claim file .*{spec.spec_hash()} is (not a regular file|a symbolic link), "
                                        "not one optbench made; remove it"):
        run_campaign(Campaign([spec], tmp_path / "results", tmp_path / "data"))
    assert not (tmp_path / "results" / "runs").exists() or not list((tmp_path / "results" / "runs").iterdir())


# --- resume reads the store once ------------------------------------------------------------------

def test_the_index_decides_every_spec_exactly_as_looking_up_its_files_did(record, tmp_path):
    """RecordIndex (one listing, each file read once) against finished_record (one listing per spec)
    on a folder with older and newer, failed, damaged, foreign and misplaced files, and files added
    and removed after the index was read."""
    from optbench.store.index import RecordIndex
    from optbench.store.records import finished_record, record_filename

    results = tmp_path / "results"
    runs = results / "runs"
    day = lambda d: {"started_at": f"2026-01-0{d}T00:00:00.000+00:00", "finished_at": f"2026-01-0{d}T00:00:01.000+00:00"}
    recs = {seed: variant(record, seed=seed) for seed in range(8)}
    hashes = {seed: rec["spec_hash"] for seed, rec in recs.items()}
    save_record(variant(recs[0], **day(1)), results)  # 0: older finished, newer failed
    save_record(variant(recs[0], status="failed", error="E", metrics={}, curve=[], **day(2)), results)
    save_record(variant(recs[1], status="failed", error="E", metrics={}, curve=[]), results)  # 1: only failed
    save_record(variant(recs[2], **day(1)), results)  # 2: older and newer finished (+ a converged one in between)
    save_record(variant(recs[2], status="converged", **day(2)), results)
    newest = save_record(variant(recs[2], **day(3)), results)
    good = json.loads(newest.read_text())
    (runs / record_filename(variant(recs[3]))).write_text(json.dumps(recs[3])[:300])  # 3: a partial (damaged) file
    (runs / f"copied_{hashes[4]}.json").write_text(json.dumps(recs[4]))  # 4: its hash not between '_'s in the name
    misplaced = record_filename(recs[5]).replace(hashes[5], hashes[6])  # 5's record under 6's name: counts for neither
    (runs / misplaced).write_text(json.dumps(recs[5]))
    (runs / f"x_{hashes[7]}_dir.json").mkdir()  # 7: a folder and a link to a finished record, both named for it
    (runs / f".hidden_{hashes[7]}_1.json").symlink_to(save_record(variant(recs[7]), tmp_path / "elsewhere"))
    (runs / f"x_{hashes[7]}_y.json.part").write_text(json.dumps(recs[7]))  # not *.json
    (runs / f"x_{hashes[1]}_y.json").write_text(json.dumps({**good, "metrics": {"test_rmse": "1"}}))  # 1: schema fails
    wanted = [*hashes.values(), "0123456789abcdef"]

    def decided(index):
        return {h: (rec["run_id"] if (rec := index.finished(h)) else None) for h in wanted}

    listed = {h: (rec["run_id"] if (rec := finished_record(results, h)) else None) for h in wanted}
    index = RecordIndex.read(results)
    assert decided(index) == listed
    assert sum(v is not None for v in listed.values()) == 3  # 0, 2 and 7 are finished, the rest not
    _, problems = load_records([results])
    assert sorted(p.path.name for p in index.problems) == sorted(p.path.name for p in problems)

    # Written and removed after the index was read: a refresh sees both, reading only what is new.
    save_record(variant(recs[1], **day(4)), results)
    newest.unlink()
    assert decided(index)[hashes[1]] is None  # not refreshed yet
    index.refresh()
    listed = {h: (rec["run_id"] if (rec := finished_record(results, h)) else None) for h in wanted}
    assert decided(index) == listed and listed[hashes[1]] is not None
    assert listed[hashes[2]] not in (None, good["run_id"])  # the next newest finished stands for 2 now


@pytest.mark.parametrize("doc", [1, "[[{", [], {}, [[[]]], {"a": "]]}", "b": ["x\"[", {"c": [1, 2, [3]]}]}, {"k\\": "\\"},
                                 [{"a": []}, [[[[{}]]]]], {"\\\"[": ["\\\\", "\n{"]}])
def test_the_depth_counted_on_the_text_is_the_parsed_documents(doc):
    """Records are checked for depth on their text (fast: brackets outside strings); it must be the
    depth of the document, whatever brackets, quotes and escapes its strings hold."""
    from optbench.files import nesting, text_nesting

    for text in (json.dumps(doc), json.dumps(doc, indent=1, ensure_ascii=False)):
        assert text_nesting(text.encode()) == nesting(doc)


def test_a_record_nested_past_the_limit_is_refused_though_it_parses(record, tmp_path):
    from optbench.files import Refused
    from optbench.limits import MAX_NESTING
    from optbench.store.records import read_record

    path = tmp_path / "deep.json"
    path.write_text(json.dumps({**record, "extra": json.loads("[" * MAX_NESTING + "]" * MAX_NESTING)}))
    with pytest.raises(Refused, match=f"nested more than {MAX_NESTING} deep"):
        read_record(path)
