"""The forms a check's result takes outside the terminal: markdown, JUnit XML and JSON
(the terminal table is ``optbench.cli.check_table``).

JUnit: one test case per cell and metric; a "fail" verdict is a ``<failure>``, "not comparable" and
"new" are ``<skipped>``, and a warning passes with the reason in ``<system-out>``.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from optbench.check.compare import Comparison, Row
from optbench.errors import UserError, write_failed
from optbench.files import Refused, append_regular, write_atomic
from optbench.metrics import metric
from optbench.store.records import refuse_inside_runs

ICON = {"fail": "❌", "warn": "⚠️", "not comparable": "➖", "missing": "❔", "new": "🆕", "pass": "✅"}
HEADERS = ("verdict", "cell", "metric", "baseline", "current", "change", "note")


def format_value(name: str, value: float | str | None) -> str:
    """A value as the metric registry formats it (``optbench.metrics``), seconds with their unit."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    m = metric(name)
    return f"{m.format(value)} s" if m.unit == "s" else m.format(value)


def row_cells(row: Row) -> list[str]:
    return [row.verdict, row.cell, row.metric, format_value(row.metric, row.baseline),
            format_value(row.metric, row.current), row.change_text, row.note]


def summary_line(comparison: Comparison) -> str:
    """``FAIL: 12 cell(s) compared with results/baseline-ci.json; 1 fail, 2 warn, 45 pass``."""
    counts = ", ".join(f"{n} {verdict}" for verdict, n in comparison.counts().items() if n)
    against = f" with {comparison.baseline_path}" if comparison.baseline_path else ""
    return f"{comparison.outcome.upper()}: {comparison.compared_cells} cell(s) compared{against}; {counts or 'no rows'}"


def failure_headline(comparison: Comparison) -> str:
    """What a failed check found, first: a regression, or (only) a stale baseline."""
    regressed = comparison.regressed
    if regressed:
        return f"Regression in {len(regressed)} cell(s): each fail row above gives its evidence."
    if comparison.stale:
        return ("Stale baseline: the quality numbers no longer reproduce it exactly on the same torch build, threads "
                "and CPU, though within the tolerances.")
    return ""


def update_advice(comparison: Comparison) -> str:
    """What to say before the ``baseline update`` command: only after the evidence, and only if intended."""
    if comparison.regressed:
        return "If the change was intended (not a regression to fix), accept it into the baseline (and commit the file)"
    if comparison.stale:
        return "If the change was intended, update the baseline (and commit the file)"
    return "If the change was intended, update the baseline"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_table(rows: list[Row]) -> list[str]:
    lines = [_md_row(list(HEADERS)), "|" + "|".join(["---"] * 3 + ["--:"] * 3 + ["---"]) + "|"]
    for row in rows:
        cells = row_cells(row)
        cells[0] = f"{ICON[row.verdict]} {row.verdict}"
        lines.append(_md_row(cells))
    return lines


def markdown(comparison: Comparison) -> str:
    """A GitHub-flavoured summary: problems in a table, passing rows folded away, the update command."""
    problems = [r for r in comparison.rows if r.verdict != "pass"]
    passing = [r for r in comparison.rows if r.verdict == "pass"]
    lines = [f"### optbench check: {comparison.outcome}", "", summary_line(comparison), ""]
    lines += [*(f"> {note}" for note in comparison.notes), ""] if comparison.notes else []
    if problems:
        lines += [*_md_table(problems), ""]
    if passing:
        lines += [f"<details><summary>{len(passing)} passing</summary>", "", *_md_table(passing), "", "</details>", ""]
    command = comparison.update_command()
    if comparison.exit_code == 1 and failure_headline(comparison):
        lines += [f"**{failure_headline(comparison)}**", ""]
    if comparison.exit_code == 1 and command:
        lines += [f"{update_advice(comparison)}:", "", "```bash", command, "```", ""]
    return "\n".join(lines)


def junit_xml(comparison: Comparison) -> str:
    cases = []
    for row in comparison.rows:
        case = ET.Element("testcase", classname=f"optbench.{row.task}.{row.dataset}", name=f"{row.label} [{row.device}] {row.metric}")
        detail = (f"baseline {format_value(row.metric, row.baseline)}, current {format_value(row.metric, row.current)}"
                  f"{', change ' + row.change_text if row.change_text else ''}"
                  f"{', tolerance ' + row.tolerance if row.tolerance else ''}")
        if row.verdict == "fail":
            ET.SubElement(case, "failure", message=row.note, type="regression").text = detail
        elif row.verdict in ("not comparable", "new"):
            ET.SubElement(case, "skipped", message=f"{row.verdict}: {row.note}")
        elif row.verdict in ("warn", "missing"):
            ET.SubElement(case, "system-out").text = f"WARNING: {row.note}; {detail}"
        cases.append(case)
    counts = comparison.counts()
    attrs = {"name": "optbench check", "tests": str(len(cases)), "failures": str(counts["fail"]),
             "errors": "0", "skipped": str(counts["not comparable"] + counts["new"])}
    suites = ET.Element("testsuites", **attrs)
    suite = ET.SubElement(suites, "testsuite", **attrs)
    suite.extend(cases)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def comparison_json(comparison: Comparison) -> str:
    return json.dumps(comparison.to_dict(), indent=2, allow_nan=False) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write an output file whole or not at all (``optbench.files.write_atomic``): a full disk is
    OutputFailed (exit 73), a path that cannot be written a UserError (exit 2)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text.encode())
    except OSError as exc:
        raise write_failed(path, exc) from None


def append_summary(path: Path, text: str, results_dirs: list[Path]) -> str | None:
    """Append the markdown to ``$GITHUB_STEP_SUMMARY``: a regular file (created if absent) outside every
    results folder's ``runs/``. Anything else is not written to: the returned warning says why (the
    check's verdict stands; the summary is a courtesy). /dev/null is skipped without a word."""
    if str(path) == os.devnull:
        return None
    try:
        refuse_inside_runs(path, results_dirs, "GITHUB_STEP_SUMMARY")
    except UserError as exc:
        return f"{exc}; the summary was not written"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        append_regular(path, text.encode())
    except Refused as exc:
        return f"GITHUB_STEP_SUMMARY {path} is {exc}; the summary was not written"
    except OSError as exc:
        raise write_failed(path, exc) from None
    return None
