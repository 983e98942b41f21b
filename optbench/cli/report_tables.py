"""Rich rendering of a report's tables for the terminal (``optbench report --format table``)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from optbench.report.build import GroupTable


def report_table(table: GroupTable) -> Table:
    """One task x dataset: best means in bold, rows with diverged or failed runs flagged in yellow."""
    out = Table(title=table.title, caption=table.caption, title_justify="left", caption_justify="left")
    for name, numeric in zip(table.columns, table.numeric):
        out.add_column(name, justify="right" if numeric else "left", no_wrap=True)
    last = len(table.columns) - 1
    for r, row in enumerate(table.rows):
        cells = []
        for c, text in enumerate(row):
            text = escape(text)
            if (r, c) in table.best:
                text = f"[bold]{text}[/]"
            if c == last:
                text = f"[yellow]⚠ {text}[/]" if r in table.warnings else f"[green]{text}[/]"
            cells.append(text)
        out.add_row(*cells)
    return out
