"""Drawing a report's charts: only those whose data changed, several at a time.

**Reuse.** A chart is a pure function of its inputs (the cells, curves and colours it shows) and
of the code that draws it. ``ChartIndex`` keeps, in the output folder, a digest of both for every
chart it wrote, with a digest of each file; a chart whose digest is unchanged and whose files
are still there, byte for byte, is not drawn again. A report over a results folder where one
task got new runs redraws that task's charts only, and a repeated report redraws none (without
even importing matplotlib).

**Parallel.** matplotlib draws on one core and a report's charts are independent, so on Linux
``draw`` forks one worker per core (they inherit the report's data: only a chart's index goes to
them and only the file bytes come back). Where ``fork`` is not how processes start (macOS,
Windows), or for a single chart or core, charts are drawn here one after another. The caller
writes the files, so a failed or interrupted worker never leaves a partial one.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import multiprocessing
import os
import pickle
import signal
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from optbench.files import Refused, parse_json, read_regular, write_atomic

# In the output folder: what was drawn from what (one JSON object per chart stem).
INDEX_FILE = ".charts.json"
# Past these sizes the index or a chart file is not read (it is not one this code wrote): the
# charts are drawn again. An index entry is about 250 bytes; a chart a few hundred KiB.
MAX_INDEX_BYTES = 16 * 2**20
MAX_INDEX_DEPTH = 4
MAX_CHART_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Chart:
    """One chart of a report: its file stem (no extension), the ``optbench.report.charts`` function
    that draws it, and that function's arguments."""

    stem: str
    kind: str
    args: tuple[Any, ...]

    def build(self) -> Any:
        """The matplotlib ``Figure`` (imports matplotlib)."""
        for name in CHART_MODULES:
            module = importlib.import_module(name)
            if hasattr(module, self.kind):
                return getattr(module, self.kind)(*self.args)
        raise AttributeError(f"no chart function {self.kind} in {', '.join(CHART_MODULES)}")

    def digest(self) -> str:
        """What the chart's files depend on: its arguments and the code and libraries that draw it.
        Two equal inputs always pickle alike here, so a changed input is never taken for an
        unchanged one (at worst an unchanged one is drawn again)."""
        return hashlib.sha256(pickle.dumps((self.kind, self.args, _code_version()), protocol=5)).hexdigest()


# The modules whose functions draw charts (``Chart.kind`` names one of them).
CHART_MODULES = ("optbench.report.charts", "optbench.report.bars", "optbench.report.budget_chart")


@cache
def _code_version() -> tuple[str, ...]:
    digests = []
    for name in CHART_MODULES:
        spec = importlib.util.find_spec(name)
        source = Path(spec.origin).read_bytes() if spec and spec.origin else b""
        digests.append(hashlib.sha256(source).hexdigest())
    return (*digests, importlib.metadata.version("matplotlib"))


class ChartIndex:
    """The output folder's record of the charts drawn into it (``INDEX_FILE``).

    Everything here is read with ``files.read_regular`` (regular files only, size-capped, opened
    without blocking): a named pipe or a link to ``/dev/zero`` in place of the index or of a chart
    is never waited on. An index that is not what this code writes (not JSON, not an object of
    ``{"digest": str, "files": {format: str}}`` entries) is set aside whole: ``problem`` says why,
    and every chart is drawn again. A chart file that is not a regular file is not fresh: it is
    drawn again, and the new file replaces it (``write_atomic`` renames over it, link or pipe).
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / INDEX_FILE
        self.entries: dict[str, Any] = {}
        self.problem: str | None = None
        if not os.path.lexists(self.path):
            return  # none yet: every chart is drawn
        try:
            doc = parse_json(read_regular(self.path, MAX_INDEX_BYTES), MAX_INDEX_DEPTH)
        except Refused as exc:
            self.problem = f"chart index refused: {exc}; every chart is drawn again"
            return
        bad = _index_shape(doc)
        if bad:
            self.problem = f"chart index damaged ({bad}); every chart is drawn again"
            return
        self.entries = doc

    def fresh(self, chart: Chart, digest: str, formats: Sequence[str]) -> bool:
        """Whether the files of ``chart`` in every one of ``formats`` are there, as drawn from ``digest``."""
        entry = self.entries.get(chart.stem)
        if not isinstance(entry, dict) or entry.get("digest") != digest:
            return False
        files = entry["files"]
        for fmt in formats:
            try:
                data = read_regular(self.path.parent / f"{chart.stem}.{fmt}", MAX_CHART_BYTES)
            except Refused:  # missing, a pipe, a device, a folder or too large: drawn again
                return False
            if files.get(fmt) != hashlib.sha256(data).hexdigest():
                return False
        return True

    def record(self, chart: Chart, digest: str, rendered: dict[str, bytes]) -> None:
        entry = self.entries.get(chart.stem)
        files = dict(entry.get("files", {})) if isinstance(entry, dict) and entry.get("digest") == digest else {}
        files.update({fmt: hashlib.sha256(data).hexdigest() for fmt, data in rendered.items()})
        self.entries[chart.stem] = {"digest": digest, "files": files}

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.entries, indent=1, sort_keys=True).encode())


def _index_shape(doc: Any) -> str | None:
    """Why ``doc`` is not an index as ``ChartIndex.save`` writes it, or None when it is."""
    if not isinstance(doc, dict):
        return f"a JSON {type(doc).__name__}, not an object"
    for stem, entry in doc.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str) \
                or not isinstance(entry.get("files"), dict) \
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in entry["files"].items()):
            return f"its entry for {stem[:80]} is not {{digest: text, files: {{format: text}}}}"
    return None


# At most this many workers: a container may see every core of its host and be allowed two.
MAX_WORKERS = 8


def workers(charts: int) -> int:
    """How many processes draw ``charts`` charts: one per core this process may use, at most one per
    chart and ``MAX_WORKERS``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, charts, MAX_WORKERS))


# Forked workers find the charts to draw here (set before the pool starts, inherited by fork).
_CHARTS: Sequence[Chart] = ()
_FORMATS: tuple[str, ...] = ()


def draw(charts: Sequence[Chart], formats: Sequence[str]) -> Iterator[tuple[Chart, dict[str, bytes]]]:
    """Each chart with its ``{format: bytes}``, in the order of ``charts``."""
    global _CHARTS, _FORMATS
    n = workers(len(charts))
    if n == 1 or sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        for chart in charts:
            yield chart, _render(chart, formats)
        return
    for name in CHART_MODULES:  # matplotlib once, here, not in every worker
        importlib.import_module(name)

    _CHARTS, _FORMATS = charts, tuple(formats)
    try:
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"), initializer=_quiet) as pool:
            yield from zip(charts, pool.map(_render_nth, range(len(charts))))
    finally:
        _CHARTS, _FORMATS = (), ()


def _render(chart: Chart, formats: Sequence[str]) -> dict[str, bytes]:
    from optbench.report.charts import render

    return render(chart.build(), formats)


def _render_nth(i: int) -> dict[str, bytes]:
    return _render(_CHARTS[i], _FORMATS)


def _quiet() -> None:
    """In a worker: Ctrl-C is the parent's to handle (it stops the pool); no traceback per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
