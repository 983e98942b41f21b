"""Tables that fit the terminal without cutting a number: ``optbench run``'s results and selection.

A table's columns are labels (task, optimizer: they may wrap) or values (numbers, statuses: never
cut, never wrapped). Where the whole table does not fit the width it is given:

1. label columns whose value is the same in every row move into the title (``task regression``);
2. the box loses its edges (a rule under the header, as ``optbench check`` prints at that width),
   labels wrap between words (after a comma: one hyperparameter a line), value columns keep exactly
   the width their longest value needs (headers wrap between words);
3. if the values do not fit beside labels as wide as their longest word (``lr=0.00259687,``; at
   most ``LABEL_WORD_MAX``), they are split over several tables that each repeat the label columns,
   so a value is never folded in the middle of a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich import box
from rich.table import Table
from rich.text import Text

# Rich's default box: one border at the left, then per column one space each side and one border.
BORDER, PER_COLUMN = 1, 3
# The narrow layout (the check table's): a rule under the header, no outer edge, no edge padding.
NARROW_BORDER = -3
# The narrowest a wrapping label column gets, and the longest word it keeps whole (a longer word
# folds onto the next line).
LABEL_MIN, LABEL_WORD_MAX = 8, 28


@dataclass(frozen=True)
class Column:
    header: str
    value: bool = False  # a number or status: never cut, never wrapped
    justify: str = "left"
    hoist: bool = False  # may move into the title when every row has the same value


def _len(cell: str) -> int:
    return Text.from_markup(cell).cell_len


def _need(header: str, cells: list[str]) -> int:
    """Width for every cell whole; the header may wrap between words."""
    return max([max((len(w) for w in header.split()), default=1), *(_len(c) for c in cells)])


def _label_width(header: str, cells: list[str]) -> int:
    """A wrapping label column's width: its longest word whole (``LABEL_MIN`` to ``LABEL_WORD_MAX``),
    never wider than the column needs unwrapped."""
    words = [len(w) for c in cells for w in _wrappable(Text.from_markup(c).plain).split()]
    return min(_need(header, cells), max(LABEL_MIN, min(max(words, default=0), LABEL_WORD_MAX)))


def _wrappable(label: str) -> str:
    """A label that may break after a comma rather than inside a value: ``adam(lr=0.003, betas=0.8/0.95)``."""
    return re.sub(r",(?=\S)", ", ", label)


def _natural(header: str, cells: list[str]) -> int:
    return max([len(header), *(_len(c) for c in cells)])


def fitted_tables(title: str, columns: list[Column], rows: list[list[str]], width: int | None) -> list[Table]:
    """One table as wide as it needs when ``width`` is None or it fits; else narrower ones (module doc)."""
    cells = [[row[c] for row in rows] for c in range(len(columns))]
    keep = list(range(len(columns)))
    natural = BORDER + sum(_natural(columns[c].header, cells[c]) + PER_COLUMN for c in keep)
    if width is None or natural <= width:
        return [_table(title, columns, rows, keep, wrap=False)]

    constant = [c for c in keep if columns[c].hoist and rows and len(set(cells[c])) == 1]
    if constant and len(constant) < len(keep):
        title += ": " + ", ".join(f"{columns[c].header} {Text.from_markup(cells[c][0]).plain}" for c in constant)
        keep = [c for c in keep if c not in constant]
    labels = [c for c in keep if not columns[c].value]
    values = [c for c in keep if columns[c].value]
    label_width = NARROW_BORDER + sum(_label_width(columns[c].header, cells[c]) + PER_COLUMN for c in labels)
    groups: list[list[int]] = []
    current: list[int] = []
    used = label_width
    for c in values:
        need = _need(columns[c].header, cells[c]) + PER_COLUMN
        if current and used + need > width:
            groups.append(current)
            current, used = [], label_width
        current.append(c)
        used += need
    groups.append(current)
    if len(groups) == 1:
        return [_table(title, columns, rows, labels + groups[0], wrap=True)]
    return [_table(f"{title} ({i + 1}/{len(groups)})", columns, rows, labels + g, wrap=True)
            for i, g in enumerate(groups)]


def _table(title: str, columns: list[Column], rows: list[list[str]], keep: list[int], wrap: bool) -> Table:
    table = (Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
             if wrap else Table(title=title, title_justify="left"))
    for c in keep:
        col = columns[c]
        if not wrap:
            table.add_column(col.header, justify=col.justify, no_wrap=True)  # type: ignore[arg-type]
        elif col.value:  # a fixed width: Rich never narrows it; the header wraps inside it
            table.add_column(col.header, justify=col.justify, width=_need(col.header, [r[c] for r in rows]),  # type: ignore[arg-type]
                             no_wrap=False, overflow="fold")
        else:  # at least its longest word (up to LABEL_WORD_MAX) wide: values were split to leave it that room
            table.add_column(col.header, justify=col.justify, overflow="fold",  # type: ignore[arg-type]
                             min_width=_label_width(col.header, [r[c] for r in rows]))
    for row in rows:
        table.add_row(*(row[c] if columns[c].value or not wrap else _wrappable(row[c]) for c in keep))
    return table
