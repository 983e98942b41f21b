"""Rich rendering of a check's verdicts for the terminal (``optbench check``).

Rows that pass are folded into a count unless asked for (``--all``): the table shows what needs a
look. Below ``WIDE`` columns, or wherever the columns would not fit whole beside a note of
``NOTE_MIN`` columns (a long cell name), each row is one block (cell and metric, the numbers on a
line of their own, the note wrapped beneath), so no number is ever cut.
"""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

from optbench.check.compare import Comparison
from optbench.check.output import HEADERS, row_cells

STYLE = {"fail": "bold red", "warn": "yellow", "not comparable": "magenta", "missing": "yellow", "new": "cyan", "pass": "green"}
WIDE = 140
NOTE_MIN = 24
# Rich's default box: one border at the left, then per column one space each side and one border.
BORDER, PER_COLUMN = 1, 3


def rich_table(comparison: Comparison, width: int, show_all: bool = False) -> Table | None:
    """The table of verdicts (None when every row passes and ``show_all`` is off)."""
    rows = comparison.rows if show_all else [r for r in comparison.rows if r.verdict != "pass"]
    if not rows:
        return None
    hidden = len(comparison.rows) - len(rows)
    title = f"optbench check: {comparison.results_dir or 'results'} against {comparison.baseline_path or 'baseline'}"
    caption = f"{hidden} passing row(s) not shown; --all lists them" if hidden else None
    whole = BORDER + NOTE_MIN + PER_COLUMN * len(HEADERS) + sum(
        max(len(HEADERS[i]), *(len(row_cells(r)[i]) for r in rows)) for i in range(len(HEADERS) - 1))
    if width < WIDE or whole > width:  # verdict, then one block per row: what, the numbers, the note wrapped beneath
        table = Table(title=title, title_justify="left", caption=caption, caption_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, show_lines=False)
        table.add_column("verdict", no_wrap=True)
        # fold, never "…": a long cell name (a plugin's path) wraps onto further lines
        table.add_column("cell · metric / baseline -> current (change) / why", ratio=1, overflow="fold")
        for row in rows:
            verdict, cell, metric, base, cur, change, note = (escape(c) for c in row_cells(row))
            numbers = f"{base} -> {cur}" + (f" ({change})" if change else "")
            # the numbers on a line of their own, so a long cell name never splits them
            text = f"{cell} · [bold]{metric}[/]\n{numbers}" + (f"\n[dim]{note}[/]" if note else "")
            table.add_row(f"[{STYLE[row.verdict]}]{verdict}[/]", text)
        return table
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for name in HEADERS:
        justify = "right" if name in ("baseline", "current", "change") else "left"
        table.add_column(name, justify=justify, no_wrap=name != "note")
    for row in rows:
        cells = [escape(c) for c in row_cells(row)]
        cells[0] = f"[{STYLE[row.verdict]}]{cells[0]}[/]"
        table.add_row(*cells)
    return table
