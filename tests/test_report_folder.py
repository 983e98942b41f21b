"""The report folder as someone else may have left it: a named pipe or a link to a device in place
of the chart index or of a chart, a damaged index. ``optbench report`` reads each through the
one safe reader (regular files only, size-capped, opened without blocking), never hangs, prints
one warning line for a damaged index, draws what it cannot trust again and replaces it whole.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLI

from optbench.report import drawing

# A report of a few cells takes seconds; a hang is what this waits for.
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[CLI, Path]:
    """A real run and its report, made once: the CLI (its results dir) and the report folder."""
    root = tmp_path_factory.mktemp("folder")
    cli = CLI(root / "results", root / "data")
    assert cli.run("--task", "regression", "--opt", "sgd", "adam", "--epochs", "1", "-q").exit_code == 0
    out = root / "out"
    assert cli("report", "--results-dir", str(cli.results_dir), "--out", str(out)).exit_code == 0
    assert (out / drawing.INDEX_FILE).is_file() and (out / "regression-synthetic-convergence.png").is_file()
    return cli, out


@pytest.fixture
def reported(base, tmp_path: Path) -> tuple[Path, Path]:
    """(results dir, a fresh copy of the report folder: its charts and index, all up to date)."""
    cli, out = base
    shutil.copytree(out, tmp_path / "out")
    return cli.results_dir, tmp_path / "out"


def is_png(path: Path) -> bool:
    return path.is_file() and not path.is_symlink() and path.read_bytes().startswith(b"\x89PNG")


def test_pipes_and_device_links_in_the_report_folder_never_hang_the_report(reported) -> None:
    results, out = reported
    index = out / drawing.INDEX_FILE
    index.unlink()
    os.mkfifo(index)  # nobody will ever write into it: a plain open() waits forever
    (out / "regression-synthetic-comparison.png").unlink()
    (out / "regression-synthetic-comparison.png").symlink_to("/dev/zero")  # reads without end
    (out / "regression-synthetic-convergence.png").unlink()
    os.mkfifo(out / "regression-synthetic-convergence.png")
    try:
        done = subprocess.run([sys.executable, "-m", "optbench", "report", "--results-dir", str(results),
                               "--out", str(out)], capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"optbench report hung on a pipe or device in {out} (killed after {TIMEOUT_S} s)")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "chart index refused: not a regular file (a named pipe)" in warnings[0]
    assert "wrote 3 chart(s)" in done.stdout  # all drawn again, each replaced whole
    for name in ("regression-synthetic-comparison.png", "regression-synthetic-bars.png",
                 "regression-synthetic-convergence.png"):
        assert is_png(out / name), name
    assert index.is_file() and set(json.loads(index.read_text())) == {
        "regression-synthetic-comparison", "regression-synthetic-bars", "regression-synthetic-convergence"}


def _damage(index: Path, how: str) -> None:
    doc = json.loads(index.read_text())
    stem = "regression-synthetic-comparison"
    if how == "files is a list":  # with the digest still right: the entry is otherwise believed
        doc[stem]["files"] = []
    elif how == "files is text":
        doc[stem]["files"] = "abc"
    elif how == "digest is a number":
        doc[stem]["digest"] = 7
    elif how == "a file digest is a number":
        doc[stem]["files"]["png"] = 7
    elif how == "entry is a list":
        doc[stem] = ["digest", "files"]
    elif how == "not an object":
        doc = [doc]
    elif how == "not JSON":
        index.write_text("{ not json")
        return
    elif how == "not UTF-8":
        index.write_bytes(b"\xff\xfe{}")
        return
    index.write_text(json.dumps(doc))


DAMAGE = ["files is a list", "files is text", "digest is a number", "a file digest is a number", "entry is a list",
          "not an object", "not JSON", "not UTF-8"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_chart_index_is_set_aside_whole_with_the_reason(reported, how: str) -> None:
    _, out = reported
    _damage(out / drawing.INDEX_FILE, how)
    index = drawing.ChartIndex(out)
    assert index.entries == {}  # nothing in it is believed: every chart is drawn again
    assert index.problem.startswith("chart index") and index.problem.endswith("; every chart is drawn again")
    assert "\n" not in index.problem


@pytest.mark.parametrize("how", ["files is a list", "not JSON"])
def test_a_damaged_chart_index_is_one_warning_and_a_full_redraw(base, reported, how: str) -> None:
    cli, _ = base
    results, out = reported
    _damage(out / drawing.INDEX_FILE, how)
    result = cli("report", "--results-dir", str(results), "--out", str(out))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "chart index" in warnings[0] and "every chart is drawn again" in warnings[0]
    assert "wrote 3 chart(s)" in result.stdout
    again = cli("report", "--results-dir", str(results), "--out", str(out))  # the index is whole again
    assert "warning" not in again.stderr and "3 chart(s), PNG, in" in again.stdout and "unchanged" in again.stdout


def test_a_chart_that_is_a_folder_or_too_large_is_drawn_again(base, reported, monkeypatch) -> None:
    cli, _ = base
    results, out = reported
    (out / "regression-synthetic-convergence.png").unlink()
    (out / "regression-synthetic-convergence.png").mkdir()  # cannot be replaced by a file: one line, exit 2
    result = cli("report", "--results-dir", str(results), "--out", str(out))
    assert result.exit_code == 2 and "cannot write the report" in result.output
    (out / "regression-synthetic-convergence.png").rmdir()
    monkeypatch.setattr(drawing, "MAX_CHART_BYTES", 100)  # every chart is now "too large" to be trusted
    result = cli("report", "--results-dir", str(results), "--out", str(out))
    assert result.exit_code == 0 and "wrote 3 chart(s)" in result.stdout
