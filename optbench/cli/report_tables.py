"""Rich rendering of a report's tables for the terminal (``optbench report --format table``).

Numbers and statuses are never cut: labels wrap, and where a table's columns do not fit the
terminal they are split over several tables that each repeat the label column.
"""

from __future__ import annotations

from dataclasses import replace

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from optbench.report.tables import GroupTable
from optbench.report.experiments import Summary

# Rich's default box: one border at the left, then per column one space each side and one border.
_BORDER, _PER_COLUMN = 1, 3
LABEL_MIN, LABEL_MAX = 12, 28


def _cell_text(table: GroupTable, r: int, c: int) -> str:
    text = table.rows[r][c]
    if c == len(table.columns) - 1 and r in table.warnings:
        text = "⚠ " + text
    return text


def _needed(table: GroupTable, c: int, whole_header: bool = False) -> int:
    """Columns a column needs for every value whole (a header may wrap between words, unless
    ``whole_header``)."""
    words = table.columns[c].split()
    header = len(table.columns[c]) if whole_header else max((len(w) for w in words), default=1)
    return max([header, *(len(_cell_text(table, r, c)) for r in range(len(table.rows)))])


def _others_width(table: GroupTable, cols: list[int], whole: bool) -> int:
    """Terminal columns a table of ``cols`` takes besides its label column's text."""
    return _BORDER + _PER_COLUMN + sum(_needed(table, c, whole) + _PER_COLUMN for c in cols if c != 0)


def column_groups(table: GroupTable, width: int | None) -> list[list[int]]:
    """The column indices of each table to print: all of them when they fit in ``width``,
    else the label column plus as many of the others, in order, as fit whole."""
    others = list(range(1, len(table.columns)))
    if width is None:
        return [[0, *others]]
    label = min(_needed(table, 0), LABEL_MAX)
    groups: list[list[int]] = []
    used = _BORDER + label + _PER_COLUMN
    current: list[int] = []
    for c in others:
        need = _needed(table, c) + _PER_COLUMN
        if current and used + need > width:
            groups.append(current)
            current, used = [], _BORDER + label + _PER_COLUMN
        current.append(c)
        used += need
    groups.append(current)
    return [[0, *g] for g in groups]


def _without_all_ok_status(table: GroupTable, width: int | None) -> GroupTable:
    """The table without its status column when every row is ``ok`` and the whole table does not fit
    ``width``: a column that says nothing is not worth a second table (the caption says it instead)."""
    last = len(table.columns) - 1
    if (width is None or table.columns[last] != "status" or table.warnings
            or any(row[last] != "ok" for row in table.rows) or len(column_groups(table, width)) == 1):
        return table
    return replace(table, columns=table.columns[:last], numeric=table.numeric[:last],
                   rows=[row[:last] for row in table.rows], caption=f"{table.caption}; every run ok".lstrip("; "))


def report_tables(table: GroupTable, width: int | None = None) -> list[RenderableType]:
    """One task x dataset as one Rich table, or several when ``width`` (the terminal's columns) is too
    narrow: best means in bold, rows with diverged or failed runs flagged in yellow. The caption
    follows the last table as text as wide as the terminal (a table caption wraps at the table's width)."""
    table = _without_all_ok_status(table, width)
    groups = column_groups(table, width)
    # Headers on one line where the terminal has room for all of them, else wrapped between words.
    whole = width is not None and len(groups) == 1 and _BORDER + sum(
        min(_needed(table, c, True), LABEL_MAX) if c == 0 else _needed(table, c, True) + _PER_COLUMN
        for c in range(len(table.columns))) + _PER_COLUMN <= width
    out = []
    last = len(table.columns) - 1
    for i, cols in enumerate(groups):
        part = f" ({i + 1}/{len(groups)})" if len(groups) > 1 else ""
        rich = Table(title=table.title + part, title_justify="left")
        for c in cols:
            # Within a terminal's width every column gets exactly the width column_groups counted
            # (Rich's own collapsing can leave a table wider than the terminal, which then crops it).
            if c == 0:  # up to LABEL_MAX, or wider where this table's other columns leave room
                fixed = min(_needed(table, 0, whole), max(LABEL_MAX, width - _others_width(table, cols, whole))) \
                    if width is not None else None
                rich.add_column(table.columns[c], overflow="fold", width=fixed,
                                min_width=None if fixed else min(_needed(table, 0), LABEL_MIN))
            else:
                rich.add_column(table.columns[c], justify="right" if table.numeric[c] else "left",
                                no_wrap=False, min_width=_needed(table, c, whole), overflow="fold",
                                width=_needed(table, c, whole) if width is not None else None)
        for r, row in enumerate(table.rows):
            cells = []
            for c in cols:
                text = escape(row[c])
                if (r, c) in table.best:
                    text = f"[bold]{text}[/]"
                if c == last and r in table.warnings:
                    text = f"[yellow]⚠ {text}[/]"
                elif c == last and table.columns[c] == "status":
                    text = f"[green]{text}[/]"
                cells.append(text)
            rich.add_row(*cells)
        out.append(rich)
    if table.caption or table.notes:
        out[-1] = Group(out[-1], *(Text(line) for line in [table.caption, *table.notes] if line))
    return out


def experiments_table(summaries: list[Summary], width: int | None, results_dirs: list) -> Table:
    """``optbench list-runs``: one row per experiment, oldest first: its name, its last activity
    (the newest record's finish), its records by status, what ran (the command, for records that
    store it; else tasks and optimizers) and its ``--select`` stages; text wraps between words."""
    where = ", ".join(str(d) for d in results_dirs)
    table = Table(title=f"experiments in {where}", title_justify="left")
    table.add_column("experiment", overflow="fold", ratio=3, min_width=18)
    table.add_column("last run (UTC)", no_wrap=True, min_width=10)
    table.add_column("records", min_width=9)
    table.add_column("what ran", overflow="fold", ratio=6)
    staged = any(s.stages for s in summaries)
    if staged:
        table.add_column("stages", overflow="fold", min_width=7)
    for s in summaries:
        date, _, time = s.finished.partition("T")
        counts = "\n".join(f"{n} {status}" for status, n in s.statuses.items())
        ran = s.command or "\n".join([*s.tasks, ", ".join(s.optimizers)])
        cells = [escape(s.name), f"{date}\n{time[:5]}",
                 f"{s.records}: {counts}" if len(s.statuses) == 1 else f"{s.records}\n{counts}", escape(ran)]
        table.add_row(*cells, *([escape("\n".join(s.stages) or "-")] if staged else []))
    return table
