"""Long suites must never lose finished work: interruption, resume, damaged files, failures (concurrent
writers and readers: tests/test_store.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optbench.store.records import load_records

# Runs of about a second each: a signal sent once the first record lands finds the second in flight.
SUITE = ["run", "--opt", "sgd", "momentum", "adam", "rmsprop", "--epochs", "200", "--quiet"]


def optbench(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "optbench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)


def wait_for_records(runs: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(list(runs.glob("*.json"))) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no record appeared"
        time.sleep(0.05)


def assert_store_intact(runs: Path) -> list[dict]:
    records, problems = load_records([runs.parent])
    assert not problems, problems
    assert not [p for p in runs.iterdir() if not p.name.endswith(".json")], "temporary files left behind"
    return records


@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_signal_keeps_finished_runs_and_discards_the_one_in_progress(tmp_path, cli, sig, code, name):
    runs = tmp_path / "results" / "runs"
    proc = optbench(*SUITE, "--results-dir", str(tmp_path / "results"))
    wait_for_records(runs, 1, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    records = assert_store_intact(runs)
    assert 1 <= len(records) < 4 and all(r["status"] == "ok" for r in records)
    assert f"interrupted by {name}: kept {len(records)} finished run(s)" in err
    assert "Traceback" not in err

    if sig == signal.SIGINT:  # the same command again resumes: nothing repeated, nothing lost
        # (in this process: the store the killed process left is the point)
        again = cli(*SUITE, "--results-dir", str(tmp_path / "results"))
        assert again.exit_code == 0, again.output
        assert f"skipped {len(records)} already finished" in again.stdout
        final = assert_store_intact(runs)
        assert sorted(r["spec"]["optimizer"] for r in final) == ["adam", "momentum", "rmsprop", "sgd"]
        assert len({r["spec_hash"] for r in final}) == 4
        # ... and continues its experiment: one section in the report, not two
        assert len({r["experiment"] for r in final}) == 1, {r["experiment"] for r in final}


def test_force_reruns_finished_specs_without_overwriting(cli):
    cli.run_json("--opt", "sgd", "--epochs", "1")
    assert cli.run_json("--opt", "sgd", "--epochs", "1") == []
    cli.run_json("--opt", "sgd", "--epochs", "1", "--force")
    records = cli.stored()
    assert len(records) == 2 and records[0]["run_id"] != records[1]["run_id"]


def test_damaged_files_are_reported_skipped_and_left_alone(cli):
    runs = cli.results_dir / "runs"
    cli.run_json("--opt", "sgd", "--epochs", "1")
    damaged = {"empty.json": b"", "truncated.json": (next(runs.glob("*.json")).read_bytes()[:50]),
               "foreign.json": b'{"hello": "world"}'}
    for name, content in damaged.items():
        (runs / name).write_bytes(content)
    result = cli.run("--opt", "sgd", "adam", "--epochs", "1")
    assert result.exit_code == 0
    for name in damaged:
        assert f"warning: skipped {runs / name}" in result.stderr.replace("\n", "")
    assert "skipped 1 already finished" in result.stdout  # resume still recognised the good record
    for name, content in damaged.items():
        assert (runs / name).read_bytes() == content


BOOM = '''
import torch

class Boom(torch.optim.SGD):
    """SGD that runs out of memory on its fifth step, as a too-large model on a GPU would."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        if self.steps == 5:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().step(closure)
'''


def test_exception_inside_a_run_is_recorded_as_failed_and_the_suite_goes_on(cli, tmp_path, monkeypatch):
    (tmp_path / "boom.py").write_text(BOOM)
    monkeypatch.chdir(tmp_path)
    result = cli.run("--opt", "boom.py:Boom", "sgd", "--epochs", "2")
    assert result.exit_code == 1
    failed, ok = cli.stored()
    assert failed["status"] == "failed" and "CUDA out of memory" in failed["error"]
    assert ok["status"] == "ok" and ok["spec"]["optimizer"] == "sgd"
    assert "failed" in result.stdout and "CUDA out of memory" in result.stdout
    rerun = cli.run("--opt", "boom.py:Boom", "sgd", "--epochs", "2")  # failed runs are retried on resume
    assert "skipped 1 already finished" in rerun.stdout


def test_a_data_error_names_the_value_in_plain_words(tmp_path: Path, diamonds_dir: Path) -> None:
    # An empty price used to be reported as np.float64(nan), a numpy repr.
    from optbench.datasets.diamonds import load_diamonds
    from optbench.errors import UserError

    lines = (diamonds_dir / "diamonds.csv").read_text().splitlines()[:40]
    header = lines[0].replace('"', "").split(",")
    row = lines[4].split(",")
    row[header.index("price")] = ""
    lines[4] = ",".join(row)
    (tmp_path / "diamonds.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as caught:
        load_diamonds(tmp_path)
    assert "column 'price' has a non-numeric or non-finite value nan on data row 4;" in str(caught.value)
    assert "np." not in str(caught.value)
