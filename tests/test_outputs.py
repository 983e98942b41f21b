"""Every write is checked: standard output on a full disk (/dev/full) is one line and exit 73, a
closed pipe ends the process quietly (exit 141, nothing on stderr), an output file on a full disk
(a real 64 KiB tmpfs) is never left in part, and $GITHUB_STEP_SUMMARY is appended to only when it is
a regular file outside runs/. Real processes where the process boundary is the point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from optbench.errors import OutputFailed

FULL = "/dev/full"
pytestmark = pytest.mark.skipif(not os.path.exists(FULL), reason="needs /dev/full (Linux)")


def optbench(*args: str, stdout=None, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optbench", *args], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=120, check=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two records and a baseline of them (in-process: fast)."""
    from typer.testing import CliRunner

    from optbench.cli.app import app

    root = tmp_path_factory.mktemp("outputs")
    runner = CliRunner()
    done = runner.invoke(app, ["run", "--results-dir", str(root / "results"), "--data-dir", str(root / "data"),
                               "--epochs", "1", "--opt", "sgd", "adam", "--device", "cpu", "--quiet"])
    assert done.exit_code == 0, done.output
    saved = runner.invoke(app, ["baseline", "save", "--out", str(root / "base.json"), "--results-dir", str(root / "results"),
                                    "--repeats", "0"])
    assert saved.exit_code == 0, saved.output
    return root


COMMANDS = {
    "list-runs": lambda r: ["list-runs", "--results-dir", str(r / "results")],
    "report json": lambda r: ["report", "--results-dir", str(r / "results"), "--no-charts", "--format", "json"],
    # timings on a busy machine are no verdict here: the step cost is not checked
    "check": lambda r: ["check", "--baseline", str(r / "base.json"), "--results-dir", str(r / "results"), "--confirm", "0",
                        "--tol", "step_cost=off"],
    "run --json": lambda r: ["run", "--results-dir", str(r / "run-json"), "--data-dir", str(r / "data"), "--json",
                             "--quiet", "--epochs", "1", "--opt", "sgd", "--device", "cpu", "--force"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_stdout_on_a_full_disk_is_one_line_and_its_own_exit_code(results: Path, command: str) -> None:
    with open(FULL, "w") as full:
        done = optbench(*COMMANDS[command](results), stdout=full)
    assert done.returncode == OutputFailed.EXIT_CODE == 73, done.stderr  # never 0, never check's 1
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: cannot write standard output (No space left on device); free space or write the output elsewhere")


@pytest.mark.parametrize("command", ["list-runs", "check"])
def test_a_closed_pipe_ends_the_process_quietly(results: Path, command: str) -> None:
    read, write = os.pipe()
    os.close(read)  # `| head` that has already exited: every write gets EPIPE
    try:
        done = optbench(*COMMANDS[command](results), stdout=write)
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr  # as a process that SIGPIPE ended
    assert done.stderr == ""


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Path:
    """A real 64 KiB file system (tmpfs), filled up, so that every write runs out of space."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with open(mnt / "filler", "wb") as f:
            f.write(b"x" * (1 << 20))
    except OSError:
        pass
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_output_files_on_a_full_disk_are_never_left_in_part(results: Path, full_tmpfs: Path) -> None:
    check = COMMANDS["check"](results)
    for flag in ("--junit", "--json"):
        done = optbench(*check, flag, str(full_tmpfs / "out.file"), stdout=subprocess.DEVNULL)
        assert done.returncode == 73, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith(f"error: cannot write {full_tmpfs / 'out.file'} (No space left")
    done = optbench("baseline", "save", "--out", str(full_tmpfs / "base.json"), "--results-dir", str(results / "results"),
                    stdout=subprocess.DEVNULL)
    assert done.returncode == 73, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in full_tmpfs.iterdir()) == ["filler"]  # no partial file, no temporary file


def test_the_step_summary_is_appended_only_to_a_regular_file_outside_runs(results: Path, tmp_path: Path) -> None:
    check = COMMANDS["check"](results)
    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo)
    done = optbench(*check, env={"GITHUB_STEP_SUMMARY": str(fifo)}, stdout=subprocess.DEVNULL)  # used to hang
    assert done.returncode == 0, done.stderr
    assert f"warning: GITHUB_STEP_SUMMARY {fifo} is not a regular file (a named pipe); the summary was not written" in done.stderr

    inside = results / "results" / "runs" / "sum.json"
    done = optbench(*check, env={"GITHUB_STEP_SUMMARY": str(inside)}, stdout=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert not inside.exists()
    assert "inside" in done.stderr and "the summary was not written" in done.stderr

    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    for _ in range(2):
        done = optbench(*check, env={"GITHUB_STEP_SUMMARY": str(summary)}, stdout=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
    text = summary.read_text()
    assert text.startswith("earlier step\n") and text.count("PASS") == 2


def test_stdout_redirected_to_a_file_on_a_full_disk_is_not_exit_0(results: Path, full_tmpfs: Path) -> None:
    # `optbench report --format json > out.json` on a full disk used to exit 0 with the JSON cut short.
    with open(full_tmpfs / "report.json", "w") as out:
        done = optbench(*COMMANDS["report json"](results), stdout=out)
    assert done.returncode == 73, done.stderr
    assert "error: cannot write standard output (No space left on device)" in done.stderr
