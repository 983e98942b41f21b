"""docs/guide-ci.md, run as written: its files are written and its commands run, in page order, as
real ``optbench`` processes in an empty folder. The page and the test cannot drift: the test reads
the page. A ``python file=NAME`` (or ``toml file=NAME``) block writes NAME; each line of a ``bash``
block is a command, expected to exit 0 unless it ends in ``# exit N``.

What the walkthrough must show: a regression run into the same results folder fails the check and
names the changed file; a behaviour-preserving refactor passes; the plugin's label shows only what
differs from its defaults, in check's output and the report; at 80 columns nothing is cut."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide-ci.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
LABEL = "myopt.py:MyAdam(lr=0.01)"
UNWRAPPED = ("PASS:", "FAIL:", "note:", "If the change", "  optbench baseline update")


@dataclass(frozen=True)
class Step:
    """A file the page writes (``path``, ``text``) or a command it runs (``args``, ``exit``)."""

    path: str = ""
    text: str = ""
    args: tuple[str, ...] = ()
    exit: int = 0


def guide_steps(markdown: str) -> list[Step]:
    steps = []
    for lang, info, body in FENCE.findall(markdown):
        target = re.search(r"\bfile=(\S+)", info)
        if target:
            steps.append(Step(path=target.group(1), text=body))
        elif lang == "bash":
            for line in body.splitlines():
                command, _, comment = line.partition("#")
                if command.strip():
                    code = re.match(r"\s*exit (\d+)", comment)
                    steps.append(Step(args=tuple(shlex.split(command)), exit=int(code.group(1)) if code else 0))
    return steps


def run_guide(folder: Path) -> list[tuple[Step, subprocess.CompletedProcess]]:
    """Every step of the page in ``folder``; each command with its result, in order (a command that
    fails does not stop the page: each test says what it expected)."""
    env = {**os.environ, "COLUMNS": "80"}
    done = []
    for step in guide_steps(GUIDE.read_text()):
        if step.path:
            (folder / step.path).write_text(step.text)
            continue
        assert step.args[0] == "optbench", step.args
        proc = subprocess.run([sys.executable, "-m", "optbench", *step.args[1:]], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=180, check=False)
        done.append((step, proc))
    return done


COMMANDS = ["run", "baseline save", "run", "check", "run", "check", "baseline update", "check", "report"]
NAMES = ["first", "save", "hurt", "failed", "refactored", "passed", "update", "updated", "report"]


def test_the_guide_runs_as_written(tmp_path: Path) -> None:
    """One run of the page (about 35 s: each ``optbench run`` process imports torch), then each claim.
    The commands by what they do: the ``first`` run, ``save``, ``hurt`` (the run after the slip),
    ``failed`` (its check), ``refactored``, ``passed``, ``update``, ``updated`` (the check after it), ``report``."""
    done = run_guide(tmp_path)
    assert [" ".join(a for a in step.args[1:3] if not a.startswith("-")) for step, _ in done] == COMMANDS
    for step, proc in done:
        assert proc.returncode == step.exit, f"{shlex.join(step.args)}\n{proc.stdout}\n{proc.stderr}"
    guide = dict(zip(NAMES, (proc for _, proc in done)))
    a_regression_run_into_the_same_folder_fails_and_names_the_changed_file(guide)
    a_behaviour_preserving_refactor_passes(guide)
    baseline_update_records_the_new_code_in_place_of_the_old(guide)
    a_plugin_label_shows_only_what_differs_from_its_defaults(guide)
    at_80_columns_nothing_is_cut(guide)


def a_regression_run_into_the_same_folder_fails_and_names_the_changed_file(guide: dict[str, subprocess.CompletedProcess]) -> None:
    hurt, failed = guide["hurt"], guide["failed"]
    assert "skipped" not in hurt.stdout  # new code: new runs
    assert failed.returncode == 1, failed.stdout
    # judged, never a "new" cell: the older code's runs are left out, and counted
    # the code change is one warning; on a loaded machine a runtime that could not be settled may add one
    assert re.search(r"^FAIL: 1 cell\(s\) compared with baseline.json; \d+ fail, [1-9]\d* warn, \d+ pass$", failed.stdout, re.M)
    words = " ".join(failed.stdout.split())
    assert re.search(r"optimizer:helper\.py code changed: [0-9a-f]{8}… → [0-9a-f]{8}…; current code judged, "
                     r"2 run\(s\) of other code left out", words), words
    assert re.search(r"fail\s+regression/synthetic myopt\.py:MyAdam\(lr=0\.01\) \(cpu\) · test_rmse", failed.stdout)


def a_behaviour_preserving_refactor_passes(guide: dict[str, subprocess.CompletedProcess]) -> None:
    passed = guide["passed"]
    assert "skipped" not in guide["refactored"].stdout
    assert passed.returncode == 0, passed.stdout
    assert re.search(r"^PASS: 1 cell\(s\) compared with baseline.json; [1-9]\d* warn, \d+ pass$", passed.stdout, re.M)
    words = " ".join(passed.stdout.split())
    assert "optimizer:helper.py code changed:" in words and "4 run(s) of other code left out" in words


def baseline_update_records_the_new_code_in_place_of_the_old(guide: dict[str, subprocess.CompletedProcess]) -> None:
    update, updated = guide["update"], guide["updated"]
    assert f"replaced: regression/{LABEL}" in update.stdout and "wrote baseline.json: 1 cell(s)" in update.stdout
    # the next check compares the same code: no code row, no warning
    assert re.search(r"^PASS: 1 cell\(s\) compared with baseline.json; \d+ pass$", updated.stdout, re.M), updated.stdout


def a_plugin_label_shows_only_what_differs_from_its_defaults(guide: dict[str, subprocess.CompletedProcess]) -> None:
    for name in ("first", "failed", "passed", "report"):
        proc = guide[name]
        assert proc.returncode in (0, 1) and LABEL in proc.stdout, proc.stdout + proc.stderr
        assert "betas" not in proc.stdout and "eps=" not in proc.stdout
    # three code versions in the report, each a row of its own (in each table it is split into), named by code
    # (where a label wraps depends on the room each table leaves it, so the short hashes are counted)
    report = guide["report"].stdout
    assert "optimizer+1" in report, report
    assert len(set(re.findall(r"(?<![0-9a-f])[0-9a-f]{8}(?![0-9a-f])", report))) == 3, report


def at_80_columns_nothing_is_cut(guide: dict[str, subprocess.CompletedProcess]) -> None:
    """No table wider than 80 columns and no "…" but a short hash's (the summary, notes and the update
    command are printed unwrapped on purpose, to be copied whole)."""
    for proc in guide.values():
        assert not re.search(r"(?<![0-9a-f]{8})…", proc.stdout), proc.stdout
        wrapped = [line for line in proc.stdout.splitlines() if not line.startswith(UNWRAPPED)]
        assert max(map(len, wrapped), default=0) <= 80, proc.stdout
    # each failing metric's numbers whole, on a line of their own
    failed = guide["failed"].stdout
    assert len(re.findall(r"^ +[\d,.]+ -> [\d,.]+ \(\+[\d.]+%\) *$", failed, re.M)) >= 2, failed


def test_the_guide_shows_its_commands_output() -> None:
    """Each command block is followed by the output it printed (pasted from a real run)."""
    text = GUIDE.read_text()
    blocks = FENCE.findall(text)
    for i, (lang, info, body) in enumerate(blocks):
        if lang == "bash":
            assert blocks[i + 1][0] == "text" and "OUTPUT" not in blocks[i + 1][2], body
