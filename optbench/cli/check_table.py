"""Rich rendering of a check's verdicts for the terminal (``optbench check``)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from optbench.check.compare import Comparison
from optbench.check.output import HEADERS, row_cells

STYLE = {"fail": "bold red", "warn": "yellow", "not comparable": "magenta", "missing": "yellow", "new": "cyan", "pass": "green"}


def rich_table(comparison: Comparison) -> Table:
    table = Table(title=f"optbench check: {comparison.results_dir or 'results'} against {comparison.baseline_path or 'baseline'}",
                  title_justify="left")
    for name in HEADERS:
        justify = "right" if name in ("baseline", "current", "change") else "left"
        table.add_column(name, justify=justify, no_wrap=name != "note")
    for row in comparison.rows:
        cells = [escape(c) for c in row_cells(row)]
        cells[0] = f"[{STYLE[row.verdict]}]{cells[0]}[/]"
        table.add_row(*cells)
    return table
