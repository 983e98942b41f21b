"""Re-running a command continues its experiment: the default name is derived from what the
command asks for, so a resume or a --force re-run lands in the same report section and a
different command in another. Invocations go through ``optbench.cli.main`` with their argv, as the
``optbench`` script does (in this process: each new process would import torch again); the
interrupted-and-resumed case is tests/test_robustness.py's, with a real signal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from optbench.store.records import load_records, save_record

RUN = ["run", "--task", "regression", "--opt", "sgd", "--epochs", "2", "--quiet"]


@dataclass
class Invocation:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def optbench(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Invocation]:
    """``optbench ARGS`` in folder ``cwd``, through the script's entry point (``main``, argv and all)."""
    from optbench.cli import main

    def invoke(*args: str, cwd: Path) -> Invocation:
        monkeypatch.chdir(cwd)
        monkeypatch.setenv("COLUMNS", "100")
        monkeypatch.setattr(sys, "argv", ["optbench", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return Invocation(code, out.out, out.err)

    return invoke


def experiments(results: Path) -> dict[str, list[dict]]:
    records, problems = load_records([results], every_run=True)
    assert not problems
    out: dict[str, list[dict]] = {}
    for rec in records:
        out.setdefault(rec.get("experiment"), []).append(rec)
    return out


def test_the_same_command_continues_its_experiment_and_another_starts_one(tmp_path: Path, optbench) -> None:
    first = optbench(*RUN, "--seeds", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = optbench(*RUN, "--seeds", "2", "--force", cwd=tmp_path)  # a --force re-run of the same command
    assert again.returncode == 0, again.stderr
    other = optbench(*RUN, "--seeds", "2", "--batch-size", "32", cwd=tmp_path)
    assert other.returncode == 0, other.stderr

    groups = experiments(tmp_path / "results")
    assert sorted(len(recs) for recs in groups.values()) == [2, 4]  # the forced re-runs stayed in theirs
    names = sorted(groups)
    assert all(name.startswith("regression-sgd-") for name in names), names
    # The report counts each spec once: the newest record of a forced re-run replaces the older one.
    report = optbench("report", "--no-charts", "--format", "json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    cells = doc["tables"]["cells"]
    assert sorted(c["n"] for c in cells) == [2, 2] and len({c["experiment"] for c in cells}) == 2

    listing = optbench("list-runs", "--format", "json", cwd=tmp_path)
    summaries = {s["name"]: s for s in json.loads(listing.stdout)}
    assert set(summaries) == set(names)
    commands = sorted(s["command"] for s in summaries.values())
    assert commands == sorted(["optbench " + " ".join([*RUN, "--seeds", "2", "--force"]),
                               "optbench " + " ".join([*RUN, "--seeds", "2", "--batch-size", "32"])])
    table = optbench("list-runs", cwd=tmp_path)
    assert "what ran" in table.stdout and "--batch-size" in table.stdout


def test_a_name_and_a_suite_file_still_name_the_experiment(tmp_path: Path, optbench) -> None:
    assert optbench(*RUN, "--name", "mine", cwd=tmp_path).returncode == 0
    (tmp_path / "quick.toml").write_text('tasks = ["regression"]\noptimizers = ["adam"]\nepochs = 2\n')
    assert optbench("run", "--config", "quick.toml", "--quiet", cwd=tmp_path).returncode == 0
    assert sorted(experiments(tmp_path / "results")) == ["mine", "quick"]


def test_old_records_keep_their_experiment(tmp_path: Path, cli) -> None:
    """Records of an older optbench (a ``run-<time>`` name, or none at all) group as before."""
    cli.run(*RUN[1:])
    (stored,) = cli.stored()
    old = dict(stored, run_id="0123456789ab", experiment="run-20250101-120000")
    unnamed = {k: v for k, v in dict(stored, run_id="0123456789ac").items() if k not in ("experiment", "command")}
    save_record(old, cli.results_dir)
    save_record(unnamed, cli.results_dir)
    listing = cli("list-runs", "--results-dir", str(cli.results_dir), "--format", "json")
    names = [s["name"] for s in json.loads(listing.stdout)]
    assert sorted(names) == sorted([stored["experiment"], "run-20250101-120000", "unnamed"])
