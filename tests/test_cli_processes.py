"""Every command, as a real process: a user's mistake is one line on stderr, exit 2, no traceback,
and nothing is written; --debug shows the traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baseline-ci.json"


def optbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optbench", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


# One case per command and kind of failure (a usage error from the option parser; a UserError from
# deep inside): each runs as a process of its own, which costs seconds. Other messages of the same
# kinds are checked in-process (tests/test_errors.py, tests/test_presets.py).
CASES = [
    (["run", "--task", "regression", "--epochs", "-1"], "Invalid value for '--epochs'"),
    # an optimizer by import path is never declared elementwise (even torch's SGD): the vectorized engine refuses it
    (["run", "--opt", "adam", "torch.optim:SGD", "--engine", "vectorized"],
     "--engine vectorized cannot run torch.optim:SGD [vectorized] on regression: optimizer 'torch.optim:SGD' is not declared elementwise"),
    (["report"], "no run records found in results/runs"),
    (["check", "--baseline", "foreign.json"], "is not an optbench baseline"),
    (["check", "--baseline", str(BASELINE), "--tol", "test_rmse=lots"], "bad tolerance 'test_rmse=lots'"),
    (["baseline", "save", "--out", "b.json"], "no run records under results/runs"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:2]) for a, _ in CASES])
def test_user_errors_in_every_command(tmp_path, args, message):
    (tmp_path / "suite.toml").write_text("tasks = [\n")
    (tmp_path / "foreign.json").write_text('{"hello": 1}')
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = optbench(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.startswith("error: ")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_debug_shows_the_traceback(tmp_path):
    proc = optbench("--debug", "report", cwd=tmp_path)  # (report, not run: a second, not three, to start)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "UserError: no run records found in results/runs" in proc.stderr
