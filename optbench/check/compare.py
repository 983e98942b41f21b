"""Compare current results with a baseline: one verdict per cell and metric. Pure: no rendering.

Pairing: a current cell and a baseline cell with the same ``cell_hash`` are compared. So are two
that differ only in the code version (``Cell.code_free_key``: a plugin's or a task's code was
edited), with a "code" row naming the files that changed: the code under test is exactly what check
is for. The current results hold one code version per cell (``check_results`` reads them with
``optbench.check.baseline.load_current``: the version a plugin's files here hash to, else the newest
by finish time); the code row also says how many runs of other code were left out. A baseline
cell whose key (task, dataset, label, device) is found only under another spec (other epochs, batch
size or hyperparameters) is "not comparable", never passed or failed. The rest of the baseline is
"missing" (a failure under ``strict``, else a warning) and the rest of the current results "new".

Deciding, per compared cell:

- status: a current run that diverged or failed fails the cell (one stopped early, ``converged`` or
  ``budget``, finished: its metrics are compared like those of an ``ok`` run).
- quality (the compared metrics that are not runtime, ``baseline.sampled_metrics``: final_train_loss,
  test_loss, test_rmse lower is better; test_accuracy higher; the registry says which way): the means
  over seeds are compared. Worse beyond the fail tolerance fails only when the difference also
  exceeds ``NOISE_SE`` standard errors of seed noise (``noise_ratio``: paired by seed when both
  sides ran the same seeds, else Welch's); within the noise, or beyond the warn tolerance only,
  it warns. With one seed on each side the tolerance alone decides.
- runtime (``step_cost``, and ``train_seconds`` which by default only warns): the ratio of geometric
  means with a confidence interval, failing only beyond the fail level with the interval above 1x,
  and only on the same runtime fingerprint; a cell beyond the warn level is re-measured first by
  ``check_results`` (see ``optbench.check.runtime`` and ``optbench.check.confirm``).
- exact sizes (``Metric.exact``: ``optimizer_state_bytes``): deterministic, so there is no noise and
  no tolerance; any increase over the baseline (the largest over seeds on each side) fails, a
  decrease passes. A baseline saved before the size was measured has none: the guard is skipped for
  its cells, and a note says so (``optbench baseline update`` adds it).
- reproduction (``exact``): on the same torch build, thread count and CPU, every seed's quality
  numbers must equal the baseline's; a difference means the baseline is stale, and fails.

Exit code: 3 when no cell could be compared, else 1 when some verdict is "fail", else 0.
"""

from __future__ import annotations

import math
import shlex
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from optbench.check.baseline import (
    CLOCKED,
    Baseline,
    Cell,
    load_current,
    read_baseline,
    sampled_metrics,
)
from optbench.check.runtime import fingerprint_change, runtime_verdict, slowdown
from optbench.check.tolerance import Tolerance, Tolerances
from optbench.metrics import metric as registry_metric
from optbench.metrics import signed_percent
from optbench.spec import SUCCESS, code_text
from optbench.store.records import Problem

NOISE_SE = 2.0
NOISE_SHOWN = 1000.0  # more standard errors than this read as "far beyond seed noise"
# The first word of a failing row's note: a regression (the code got worse), or a stale baseline
# (quality differs from the baseline's exact numbers, within the tolerances).
REGRESSION, STALE = "regression", "stale baseline"
# Quality numbers are reproduced bit for bit only by the same torch build on the same CPU with the same
# number of threads (the thread count changes how sums are split); CUDA kernels may be nondeterministic.
EXACT_KEYS = ("torch", "cuda", "torch_threads", "cpu", "device_name")
CONFIRM_ROUNDS = 3
# cell_hash -> metric -> extra samples of the current code, from re-measuring (optbench.check.confirm)
Remeasured = dict[str, dict[str, list[float]]]

Verdict = Literal["fail", "warn", "not comparable", "missing", "new", "pass"]
VERDICTS: tuple[Verdict, ...] = ("fail", "warn", "not comparable", "missing", "new", "pass")
EXIT_PASS, EXIT_REGRESSION, EXIT_NOTHING_COMPARABLE = 0, 1, 3


@dataclass
class Row:
    """One verdict. ``metric`` is a metric name, ``status`` (diverged/failed runs), ``spec`` or ``cell``.

    ``baseline``/``current``: mean over seeds for quality, geometric mean over runs for runtime
    (seconds, or ``step_cost``), text otherwise. ``change``: current/baseline ratio for runtime (with
    its confidence interval ``ci_low``-``ci_high``), difference for accuracy, relative change for the rest.
    """

    task: str
    dataset: str
    label: str
    device: str
    metric: str
    verdict: Verdict
    baseline: float | str | None = None
    current: float | str | None = None
    change: float | None = None
    change_text: str = ""
    note: str = ""
    tolerance: str = ""
    n_baseline: int = 0
    n_current: int = 0
    ci_low: float | None = None  # runtime: confidence interval of ``change``
    ci_high: float | None = None
    remeasured: int = 0  # runtime: how many of the current samples come from re-measuring
    suspect: bool = False  # runtime: beyond the warn level on the same machine, not yet re-measured

    @property
    def cell(self) -> str:
        return f"{self.task}/{self.dataset} {self.label} ({self.device})"

    @property
    def name(self) -> str:
        """``task/label``, the form ``baseline update --cell`` takes."""
        return f"{self.task}/{self.label}"


@dataclass
class Comparison:
    rows: list[Row]
    compared_cells: int
    strict: bool = False
    baseline_path: str = ""
    results_dir: str = ""
    problems: list[Problem] = field(default_factory=list)
    suspects: list[Cell] = field(default_factory=list)  # cells with a runtime row beyond its warn level, same machine
    notes: list[str] = field(default_factory=list)  # about the whole comparison, e.g. exact reproduction not checked

    @property
    def stale(self) -> bool:
        """Some cell's quality numbers no longer reproduce the baseline (``exact``)."""
        return any(r.metric == "reproduction" and r.verdict == "fail" for r in self.rows)

    @property
    def regressed(self) -> list[str]:
        """The cells with a failing row other than reproduction: a regression, not only a stale baseline."""
        return list(dict.fromkeys(r.cell for r in self.rows if r.verdict == "fail" and r.metric != "reproduction"))

    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.rows) for v in VERDICTS}

    @property
    def exit_code(self) -> int:
        if self.compared_cells == 0:
            return EXIT_NOTHING_COMPARABLE
        return EXIT_REGRESSION if any(r.verdict == "fail" for r in self.rows) else EXIT_PASS

    @property
    def outcome(self) -> str:
        return {EXIT_PASS: "pass", EXIT_REGRESSION: "fail", EXIT_NOTHING_COMPARABLE: "nothing comparable"}[self.exit_code]

    def update_command(self) -> str | None:
        """The command that accepts the failing and not comparable cells into the baseline, if any."""
        rows = [r for r in self.rows if r.verdict in ("fail", "not comparable")]
        if not rows:
            return None
        names = list(dict.fromkeys(r.name for r in rows))
        args = ["optbench", "baseline", "update", "--baseline", self.baseline_path, "--results-dir", self.results_dir]
        for name in names:
            args += ["--cell", fnmatch_escape(name)]
        if any(r.metric == "cell" for r in rows):  # a missing cell under --strict: drop it
            args.append("--prune")
        return shlex.join(args)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "exit_code": self.exit_code, "compared_cells": self.compared_cells,
            "strict": self.strict, "counts": self.counts(), "baseline": self.baseline_path,
            "results_dir": self.results_dir, "update_command": self.update_command(), "notes": self.notes,
            "rows": [{**asdict(r), "cell": r.cell} for r in self.rows],
        }


def fnmatch_escape(name: str) -> str:
    """A glob that matches exactly ``name``: ``adam[fused]`` -> ``adam[[]fused]``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


Remeasure = Callable[[list[Cell], int], Remeasured]


def check_results(baseline_path: Path, results_dir: Path, tolerances: Tolerances, strict: bool = False,
                  exact: bool = False, confirm: int = CONFIRM_ROUNDS, remeasure: Remeasure | None = None) -> Comparison:
    """Read the baseline and the records under ``results_dir`` and compare them (see ``compare``).

    Cells beyond the warn level on runtime are first re-measured: ``remeasure(cells, confirm)`` runs
    their seeds ``confirm`` more times and the verdict is taken on all samples (none when
    ``confirm`` is 0 or no ``remeasure`` is given).
    """
    baseline = read_baseline(baseline_path)
    current = load_current(results_dir)
    comparison = compare_confirmed(baseline, current.cells, tolerances, strict, exact, confirm, remeasure,
                                   current.other_runs)
    comparison.baseline_path, comparison.results_dir = str(baseline_path), str(results_dir)
    comparison.problems = current.problems
    return comparison


def compare_confirmed(baseline: Baseline, current: list[Cell], tolerances: Tolerances, strict: bool = False,
                      exact: bool = False, confirm: int = CONFIRM_ROUNDS, remeasure: Remeasure | None = None,
                      other_runs: dict[str, int] | None = None) -> Comparison:
    """``compare``, then again with re-measured samples when some cell is beyond its runtime warn level."""
    comparison = compare(baseline, current, tolerances, strict, exact, other_runs=other_runs)
    if comparison.suspects and confirm > 0 and remeasure is not None:
        comparison = compare(baseline, current, tolerances, strict, exact, remeasure(comparison.suspects, confirm),
                             other_runs)
    return comparison


def compare(baseline: Baseline, current: list[Cell], tolerances: Tolerances, strict: bool = False,
            exact: bool = False, remeasured: Remeasured | None = None,
            other_runs: dict[str, int] | None = None) -> Comparison:
    """Every verdict, regressions first (fail, warn, not comparable, missing, new, pass).

    ``current`` holds one code version per cell (``optbench.check.baseline.current_code``);
    ``other_runs`` counts, per code-free key, the runs of other code left out of it (said in the
    cell's code row, or in a note). ``remeasured`` adds samples of the current code to runtime metrics."""
    other_runs = other_runs or {}
    notes: list[str] = []
    if baseline.outdated_clock:
        baseline = baseline.without_clocked()
        notes.append(f"{CLOCKED} not compared: the baseline measured it with an older step clock (gross of the fixed "
                     "per-step overhead, in wall time), which does not compare with this one; optbench baseline "
                     "update refreshes it")
    rows: list[Row] = []
    unmatched = {c.cell_hash: c for c in current}
    pairs: list[tuple[Cell, Cell]] = []
    unpaired: list[Cell] = []
    for base in baseline.cells:  # the same spec first, so a baseline cell of other code never takes its place
        cur = unmatched.pop(base.cell_hash, None)
        if cur is not None:
            pairs.append((base, cur))
        else:
            unpaired.append(base)
    compared_keys = {base.code_free_key for base, _ in pairs}
    superseded = 0  # baseline cells of another code version beside the one compared
    for base in unpaired:
        cur = next((c for c in unmatched.values() if c.code_free_key == base.code_free_key and c.code != base.code), None)
        if cur is not None:
            # The code under test changed (a plugin's source, a task's version): exactly what check is for.
            del unmatched[cur.cell_hash]
            pairs.append((base, cur))
            compared_keys.add(base.code_free_key)
            continue
        if base.code_free_key in compared_keys:
            superseded += 1
            continue
        moved = next((c for c in unmatched.values() if c.key == base.key), None)
        if moved is not None:
            del unmatched[moved.cell_hash]
            rows.append(_row(base, "spec", "not comparable", baseline=_spec_text(base), current=_spec_text(moved),
                             note=f"spec changed ({_spec_change(base, moved)}); the baseline no longer applies"))
        else:
            rows.append(_row(base, "cell", "fail" if strict else "missing", baseline=f"{len(base.runs)} run(s)",
                             current="-", n_baseline=len(base.runs),
                             note="not in the current results" + (" (--strict)" if strict else "")))
    suspects: list[Cell] = []
    unchecked: dict[str, int] = {}  # environment change -> cells whose exact reproduction it prevents
    unguarded: dict[str, int] = {}  # exact metric -> cells whose baseline predates it
    for base, cur in pairs:
        base_env = baseline.cell_environment(base)
        other = other_runs.get(cur.code_free_key, 0)
        code_changed = base.code != cur.code
        if code_changed:
            rows.append(_row(cur, "code", "warn", baseline=_code_text(base), current=_code_text(cur),
                             note=_code_change(base, cur) + (f"; current code judged, {_other_text(other)}" if other else "")))
        elif other:
            notes.append(f"{cur.name} ({cur.device}): its current code is the baseline's; {_other_text(other)}")
        same_code_exact = exact and not code_changed
        cell_rows = compare_cell(base, base_env, cur, tolerances, same_code_exact, (remeasured or {}).get(cur.cell_hash, {}))
        for name in _unguarded(base, cur):
            unguarded[name] = unguarded.get(name, 0) + 1
        change = fingerprint_change(base_env, cur.environment or {}, EXACT_KEYS)
        if same_code_exact and cur.device == "cpu" and change:
            unchecked[change] = unchecked.get(change, 0) + 1
        if any(r.suspect for r in cell_rows):
            suspects.append(cur)
        rows += cell_rows
    for cur in unmatched.values():
        other = other_runs.get(cur.code_free_key, 0)
        rows.append(_row(cur, "cell", "new", baseline="-", current=f"{len(cur.runs)} run(s)", n_current=len(cur.runs),
                         note="not in the baseline" + (f"; {_other_text(other)}" if other else "")))
    rows.sort(key=lambda r: VERDICTS.index(r.verdict))
    notes += [f"exact reproduction not checked for {n} cell(s): another environment ({change}); the tolerances decided"
              for change, n in unchecked.items()]
    notes += [f"{name} not guarded for {n} cell(s): the baseline was saved before it was measured; "
              "optbench baseline update adds it" for name, n in unguarded.items()]
    if superseded:
        notes.append(f"the baseline holds {superseded} cell(s) of other code beside the code compared; "
                     "optbench baseline update replaces them")
    return Comparison(rows, len(pairs), strict, suspects=suspects, notes=notes)


def _other_text(n: int) -> str:
    return f"{n} run(s) of other code left out"


def compare_cell(base: Cell, base_env: dict[str, Any], cur: Cell, tolerances: Tolerances, exact: bool = False,
                 remeasured: dict[str, list[float]] | None = None) -> list[Row]:
    rows = []
    bad = [r for r in cur.runs if r.status not in SUCCESS]
    if bad:
        rows.append(_row(cur, "status", "fail", baseline=_ok_count(base), current=_ok_count(cur),
                         note=f"{REGRESSION}: " + "; ".join(f"seed {r.seed} {r.status}" for r in bad)))
    if exact:
        rows += _reproduction_rows(base, base_env, cur)
    env_change = fingerprint_change(base_env, cur.environment or {})
    for metric in sampled_metrics(cur.task, cur.metric_name):
        b = _samples(base, metric)
        c = _samples(cur, metric)
        if not c:
            continue  # no finished run: the status row says why
        if registry_metric(metric).exact:
            if b:  # none: a baseline from before it was measured, said once in a note (compare)
                rows.append(_exact_row(cur, metric, b, c))
            continue
        tol = tolerances.for_cell(metric, cur.task, cur.label, cur.optimizer)
        if not b:
            finished = any(r.status in SUCCESS for r in base.runs)
            rows.append(_row(cur, metric, "not comparable", current=statistics.fmean(c.values()), n_current=len(c),
                             note=f"the baseline has no {metric} (saved before it was measured); refresh it with "
                                  "optbench baseline update" if finished else "no finished baseline run"))
        elif registry_metric(metric).runtime:
            extra = (remeasured or {}).get(metric, [])
            rows.append(_runtime_row(cur, metric, list(b.values()), list(c.values()) + extra, tol, env_change, len(extra)))
        else:
            rows.append(_quality_row(cur, metric, b, c, tol))
    if any(r.verdict == "fail" and r.metric != "reproduction" for r in rows):
        # The numbers differ because the cell got worse: not a stale baseline to refresh.
        for r in rows:
            if r.metric == "reproduction" and r.verdict == "fail":
                r.note = f"{REGRESSION}: " + r.note.removeprefix(f"{STALE}: ").replace("reproduce it", "reproduce the baseline", 1)
    return rows


def noise_ratio(b: dict[int, float], c: dict[int, float], higher_is_better: bool) -> tuple[float, str]:
    """How many standard errors of seed noise the worsening from ``b`` to ``c`` is (inf: no noise estimate).

    Losses and RMSE are compared on a log scale (a regression scales them), accuracy as is (it
    moves by points). With the same two or more seeds on both sides the comparison is paired: a
    seed fixes the initialisation and the data order, so the spread of the per-seed differences is
    the noise. Otherwise Welch's standard error ``sqrt(s_b^2/n_b + s_c^2/n_c)`` over the sides with
    two or more seeds. With one seed on each side there is no estimate: the tolerance alone decides.
    """
    if not higher_is_better and min(*b.values(), *c.values()) > 0:
        b, c = {k: math.log(v) for k, v in b.items()}, {k: math.log(v) for k, v in c.items()}
    sign = -1 if higher_is_better else 1
    if len(b) >= 2 and b.keys() == c.keys():
        diffs = [sign * (c[seed] - b[seed]) for seed in b]
        se, how = (statistics.variance(diffs) / len(diffs)) ** 0.5, "paired by seed"
        worse = statistics.fmean(diffs)
    else:
        se = sum(statistics.variance(s) / len(s) for s in (list(b.values()), list(c.values())) if len(s) >= 2) ** 0.5
        worse, how = sign * (statistics.fmean(c.values()) - statistics.fmean(b.values())), "unpaired seeds"
    if se == 0:
        return (math.inf if worse > 0 else 0.0), how
    return worse / se, how


def _quality_row(cell: Cell, metric: str, b: dict[int, float], c: dict[int, float], tol: Tolerance) -> Row:
    higher = registry_metric(metric).higher_is_better
    mb, mc = statistics.fmean(b.values()), statistics.fmean(c.values())
    z, how = noise_ratio(b, c, higher)
    beyond_noise = z > NOISE_SE
    if higher:
        change, text = mc - mb, f"{(mc - mb) * 100:+.1f} pt"
    else:
        change = (mc - mb) / abs(mb) if mb else None
        text = signed_percent(change) if change is not None else f"{mc - mb:+.3g}"
    if tol.fail.exceeded(mb, mc, higher) and beyond_noise:
        # every seed worse by the same amount leaves no spread: the noise is nil, not a number to print
        noise = f"{z:.1f} SE of seed noise, {how}" if z < NOISE_SHOWN else f"far beyond seed noise, {how}"
        verdict, note = "fail", f"{REGRESSION}: worse beyond fail level {tol.fail} ({text}; {noise})"
    elif tol.fail.exceeded(mb, mc, higher):
        verdict, note = "warn", f"worse beyond fail level {tol.fail}, but within seed noise ({z:.1f} SE, {how}; fails above {NOISE_SE:g})"
    elif tol.warn.exceeded(mb, mc, higher):
        verdict, note = "warn", f"worse beyond warn level {tol.warn}"
    else:
        verdict, note = "pass", "better beyond the warn level; consider updating the baseline" if tol.warn.exceeded(mc, mb, higher) else ""
    return _row(cell, metric, verdict, baseline=mb, current=mc, change=change, change_text=text, note=note,
                tolerance=str(tol), n_baseline=len(b), n_current=len(c))


def _unguarded(base: Cell, cur: Cell) -> list[str]:
    """The exact metrics the current runs of a cell have and its baseline runs lack."""
    return [m for m in sampled_metrics(cur.task, cur.metric_name)
            if registry_metric(m).exact and _samples(cur, m) and not _samples(base, m)]


def _exact_row(cell: Cell, metric: str, b: dict[int, float], c: dict[int, float]) -> Row:
    """An exact size (``Metric.exact``) against the baseline: the largest over seeds on each side
    (a size is the same for every seed); any increase fails, with no tolerance and no noise."""
    m = registry_metric(metric)
    mb, mc = max(b.values()), max(c.values())
    change = (mc - mb) / mb if mb else None
    grown = m.format(abs(mc - mb))
    percent = f" ({signed_percent(change)})" if change is not None and abs(change) >= 0.0005 else ""
    text = ("+" if mc > mb else "-") + grown + percent
    # Where the units round a difference away (38.5 KiB on both sides), the note gives the bytes.
    exact = f" ({mb:,.0f} B -> {mc:,.0f} B)" if m.format(mb) == m.format(mc) else ""
    if mc > mb:
        verdict, note = "fail", (f"{REGRESSION}: the optimizer's state grew by {grown}{exact}: an exact size with no "
                                 "seed noise, so any increase is a regression (no tolerance)")
    elif mc < mb:
        verdict, note = "pass", f"the optimizer's state shrank by {grown}{exact}; consider updating the baseline"
    else:
        verdict, note, text = "pass", "", "same"
    return _row(cell, metric, verdict, baseline=mb, current=mc, change=change, change_text=text,
                note=note, tolerance="exact", n_baseline=len(b), n_current=len(c))


def _runtime_row(cell: Cell, metric: str, b: list[float], c: list[float], tol: Tolerance, env_change: str,
                 remeasured: int = 0) -> Row:
    if min(b + c) <= 0:  # a zero time cannot be compared as a ratio; nothing to judge
        return _row(cell, metric, "pass", baseline=statistics.median(b), current=statistics.median(c),
                    note="zero time", n_baseline=len(b), n_current=len(c))
    effect = slowdown(b, c)
    verdict, note = runtime_verdict(effect, tol, env_change, remeasured)
    row = _row(cell, metric, verdict, baseline=effect.baseline, current=effect.current, change=effect.ratio,
               change_text=f"{effect.ratio:.2f}x", note=note, tolerance=str(tol), n_baseline=len(b), n_current=len(c),
               ci_low=effect.low, ci_high=effect.high, remeasured=remeasured)
    # Beyond the warn level is enough to be re-measured: a slowdown that two noisy runs show just under
    # the fail level gets its confirming samples too (a fail still needs the fail level and the interval).
    row.suspect = not env_change and not remeasured and tol.warn.exceeded(effect.baseline, effect.current, False) \
        and tol.fail.kind != "off"
    return row


def _reproduction_rows(base: Cell, base_env: dict[str, Any], cur: Cell) -> list[Row]:
    """Under ``exact``: a pass or fail row, whether every seed's quality numbers equal the baseline's,
    on the environment that reproduces them (``EXACT_KEYS``, CPU only); elsewhere none (``compare``
    adds one note for all such cells)."""
    if cur.device != "cpu" or fingerprint_change(base_env, cur.environment or {}, EXACT_KEYS):
        return []
    base_runs = {r.seed: r for r in base.runs}
    quality = [m for m in sampled_metrics(cur.task, cur.metric_name) if not registry_metric(m).runtime]
    diffs = []
    for run in cur.runs:
        old = base_runs.get(run.seed)
        if old is None:
            continue
        if old.status != run.status:
            diffs.append(f"seed {run.seed} status {old.status} -> {run.status}")
        diffs += [f"seed {run.seed} {m} {old.value(m):.6g} -> {run.value(m):.6g}" for m in quality
                  if old.value(m) != run.value(m) and None not in (old.value(m), run.value(m))]
    if not diffs:
        return [_row(cur, "reproduction", "pass", baseline="exact", current="exact")]
    shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
    return [_row(cur, "reproduction", "fail", baseline="exact", current=f"{len(diffs)} differ",
                 note=f"{STALE}: quality does not reproduce it exactly on the same torch build, threads and CPU ({shown})")]


def _ok_count(cell: Cell) -> str:
    return f"{sum(r.status in SUCCESS for r in cell.runs)}/{len(cell.runs)} ok"


def _samples(cell: Cell, metric: str) -> dict[int, float]:
    """Seed -> value of the runs that finished."""
    return {r.seed: v for r in cell.runs if r.status in SUCCESS and (v := r.value(metric)) is not None}


def _row(cell: Cell, metric: str, verdict: Verdict, **fields: Any) -> Row:
    return Row(cell.task, cell.dataset, cell.label, cell.device, metric, verdict, **fields)


def _spec_text(cell: Cell) -> str:
    return f"epochs={cell.epochs}, batch_size={cell.batch_size}"


def _code_text(cell: Cell) -> str:
    return code_text(cell.code) or "built in"


def _code_change(base: Cell, cur: Cell) -> str:
    """``optimizer code changed: 3f2a… → 9c41…`` for each part of the code that changed, a plugin's local
    module by its file (``optimizer:helper.py code changed: …``; ``-`` for a side without it); the
    first three, then how many more."""
    changes = []
    for key in sorted(set(base.code) | set(cur.code)):
        old, new = (c.code.get(key, "-") for c in (base, cur))
        if old != new:
            old, new = (v.removeprefix("sha256:")[:8] + "…" if v.startswith("sha256:") else v for v in (old, new))
            changes.append(f"{key} code changed: {old} → {new}")
    if len(changes) > 3:
        changes[3:] = [f"{len(changes) - 3} more changed"]
    return "; ".join(changes)


def _spec_change(base: Cell, cur: Cell) -> str:
    old, new = base.spec_fields(), cur.spec_fields()
    changed = [f"{k} {old[k]} -> {new[k]}" for k in old if old[k] != new[k]]
    return ", ".join(changed) or f"hash {base.cell_hash} -> {cur.cell_hash}"
