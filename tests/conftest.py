from __future__ import annotations

import json
import os
from pathlib import Path

# Two pytest-xdist workers share two cores, and many tests start optbench processes besides: one
# intra-op thread each (inherited by those processes). With torch's default of one thread per core,
# every worker and process spins waiting for a core another one holds: about a third of the suite's
# CPU time on a busy 2-core machine. Set OMP_NUM_THREADS yourself to test with more.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# This machine may train on the CPU with torch's CUDA build: the one-line notice saying so would be
# in every test's stderr; tests/test_cuda_notice.py unsets it.
os.environ.setdefault("OPTBENCH_NO_CUDA_NOTICE", "1")

import pytest
from typer.testing import CliRunner

from optbench.cli.app import app

@pytest.fixture(autouse=True)
def _no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped output is 160 columns unless $COLUMNS says otherwise; tests set it where they mean to
    (pytest-xdist workers can inherit one)."""
    monkeypatch.delenv("COLUMNS", raising=False)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class CLI:
    """Runs optbench in-process, as a user would type it, with results in a temp dir."""

    def __init__(self, results_dir: Path, data_dir: Path) -> None:
        self.results_dir = results_dir
        self.data_dir = data_dir
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(app, list(args), catch_exceptions=False)

    def run(self, *args: str):
        return self("run", "--results-dir", str(self.results_dir), "--data-dir", str(self.data_dir), *args)

    def run_json(self, *args: str) -> list[dict]:
        result = self.run("--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def stored(self) -> list[dict]:
        runs = self.results_dir / "runs"
        records = [json.loads(p.read_text()) for p in runs.glob("*.json")] if runs.exists() else []
        return sorted(records, key=lambda r: r["started_at"])


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path / "results", tmp_path / "data")


@pytest.fixture
def diamonds_dir() -> Path:
    if not (SHARED_DATA / "diamonds.csv").exists():
        pytest.skip("../shared/data/diamonds.csv is not present")
    return SHARED_DATA
