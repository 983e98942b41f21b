"""One colour per optimizer name for a whole report (no matplotlib here: the chart cache decides
whether a chart must be drawn before anything is imported to draw it)."""

from __future__ import annotations

from collections.abc import Iterable

# Okabe & Ito (2008), yellow and black last (weakest on white, and black reads as "axis").
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
# Beyond eight names: Paul Tol's "muted" scheme (also colour-blind safe), darkest and least like
# Okabe-Ito first, then a grey. (tableau-colorblind10 repeats Okabe-Ito's blue, orange and vermillion
# almost exactly, so a ninth optimizer looked like the first.)
MORE = ["#882255", "#332288", "#999933", "#CC6677", "#117733", "#44AA99", "#DDCC77", "#AA4499", "#88CCEE", "#888888"]


def colour_map(optimizers: Iterable[str]) -> dict[str, str]:
    """One colour per optimizer *name* (``adam``, not ``adam(lr=0.01)``), in sorted name order, so an
    optimizer keeps its colour in every chart of a report and between reports of the same names.
    Variants of one optimizer (hyperparameters, epochs, ...) share it and differ by marker or
    line style. Okabe-Ito first; past 18 names colours repeat (the legend still names each)."""
    palette = OKABE_ITO + MORE
    return {name: palette[i % len(palette)] for i, name in enumerate(sorted(set(optimizers)))}
