"""The metric registry: every measured quantity's name, title, unit, direction, display format
and default ``optbench check`` tolerance, in one place. Aggregation, tolerances, targets,
selection, the report, the console and check all read it; none of them encodes a direction.

A task's held-out metrics come in two splits: ``test_<m>`` and, for runs on the validation split
(``--select`` sweeps), ``val_<m>``; ``TASK_METRICS`` declares each ``<m>`` once and both names are
registered (``held_out``). Which of them a task reports, and which is its main one, is the task's
entry in ``optbench.tasks.catalog``. A metric name not registered here (a newer task's, read from a
record) is shown with the defaults: lower is better, 4 significant digits, not checked.

A new metric is one entry here: a task metric in ``TASK_METRICS`` (and its name in a task's
catalog entry), a run metric in ``RUN_METRICS``. The report aggregates those marked ``summarised``,
check compares those with a ``tolerance``; no other module lists metric names
(tests/test_metric_registry.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One measured quantity. ``fmt`` says how ``format`` shows it: a percent spec for fractions
    (``.1%``; ``+.1%`` signed), ``d`` for counts, else a number (``.4g``: the one rule below);
    ``tolerance`` is the default check rule in ``--tol`` syntax (``warn:5%,fail:10%``), None when
    check skips it; ``runtime`` marks time measures (noisy: a checked one is judged by the runtime
    method, optbench.check; the report shows them after the quality columns);
    ``reference_of`` marks a reference value (a fact about the task's data, not about the run) and
    names the metric it is a reference for: the report draws it as a line on that metric's axis;
    ``summarised``: the report aggregates it per cell (mean, spread, interval over seeds) and shows it
    in its tables where some cell has it; ``beside`` names the metric it is shown beside (``rmse_gap``
    in parentheses after ``test_rmse`` in the run table, the next column in the report); ``split``
    is a task metric's held-out split (``test`` or ``val``; None for run metrics and bare names);
    ``exact`` marks a deterministic count (a size in bytes): it has no seed noise, so the report shows
    it without a spread and ``optbench check`` compares it exactly, any worsening a regression, with
    no tolerance (``tolerance`` stays None; ``checked_metrics`` includes it). ``fmt`` ``bytes`` shows
    a size in binary units (``0 B``, ``12.5 KiB``, ``1.21 MiB``). ``description``: what it measures and
    how, in a sentence or two, for the documentation (docs/results-schema.md) and a table's note."""

    name: str
    title: str
    unit: str
    higher_is_better: bool = False
    fmt: str = ".4g"
    tolerance: str | None = None
    runtime: bool = False
    reference_of: str | None = None
    summarised: bool = False
    beside: str | None = None
    split: str | None = None
    exact: bool = False
    description: str = ""

    @property
    def bare(self) -> str:
        """The name without its split prefix (``test_rmse``: ``rmse``); a run metric's own name."""
        return self.name.removeprefix(f"{self.split}_") if self.split else self.name

    @property
    def short_title(self) -> str:
        """The title where a column is narrow: ``val RMSE`` for ``validation RMSE``."""
        return f"{self.split} {metric(self.bare).title}" if self.split and self.split != "test" else self.title

    def format(self, value: float | None, spread: bool = False) -> str:
        """Display text of one value, the same in every table optbench prints (run, report, check):
        4 significant digits, trailing zeros included (``0.3540`` beside ``0.3449``), whole numbers
        with thousands separators from 1,000 (``1,469``, never ``1469`` or ``1.469e+03``),
        fractions as percent, ``-`` for none. ``spread``: a standard
        deviation or interval width beside a mean (2 significant digits, unsigned)."""
        if value is None or not math.isfinite(value):
            return "-"
        if self.fmt.endswith("%"):
            if self.fmt.startswith("+") and not spread:
                return signed_percent(value, int(self.fmt[2:-1] or 1))
            return format(value, self.fmt.lstrip("+"))
        if self.fmt == "d":
            return f"{round(value):,d}"
        if self.fmt == "bytes":
            return binary_size(value)
        if abs(value) >= (100 if spread else 1000):
            return f"{value:,.0f}"
        # Trailing zeros kept (``0.3540``, ``2.000``), so values in one column show the same number
        # of significant digits; a bare trailing point goes (``12.`` from ``#.2g`` is ``12``).
        return (f"{value:#.2g}" if spread else f"{value:#.4g}").rstrip(".")


_QUALITY = "warn:5%,fail:10%"

# The held-out metrics a task can report, without the split prefix.
TASK_METRICS: tuple[Metric, ...] = (
    Metric("loss", "loss", "loss", tolerance=_QUALITY),
    Metric("rmse", "RMSE", "target units", tolerance=_QUALITY),
    # Accuracy in absolute points: 0.02 is two points, 20 test images in 1,000.
    Metric("accuracy", "accuracy", "fraction", higher_is_better=True, fmt=".2%", tolerance="warn:abs=0.01,fail:abs=0.02"),
    # Bits per character: a language model's cross-entropy in bits (loss / ln 2), checked as its loss is.
    Metric("bpc", "bits/char", "bits per character", tolerance=_QUALITY),
)
SPLIT_TITLES = {"test": "test", "val": "validation"}
SPLITS = tuple(SPLIT_TITLES)

RUN_METRICS: tuple[Metric, ...] = (
    # Whole-run time follows the machine's load (0.8x-4.3x between runs of unchanged code on a busy
    # 2-core machine): it only warns, and only at 2x. Set a fail level on a dedicated machine.
    Metric("train_seconds", "runtime", "s", tolerance="warn:2x,fail:off", runtime=True, summarised=True),
    # The optimizer's step net of the fixed per-step overhead (an empty step), over the in-run reference
    # step, timed in CPU time on CPU so that a preempted step does not count its wait
    # (optbench.engine.steptime); 1.25x fails, with a confirming re-measurement first.
    Metric("step_cost", "step cost", "reference steps", tolerance="warn:1.1x,fail:1.25x", runtime=True,
           description=("the optimizer's step() less the run's median empty step() (the fixed per-step overhead), "
                        "over an in-run reference SGD step, median over steps; CPU time of the training thread on "
                        "CPU, device time on CUDA (optbench.engine.steptime)")),
    Metric("steps_per_s", "steps/s", "steps/s", higher_is_better=True, runtime=True, summarised=True),
    Metric("samples_per_s", "samples/s", "samples/s", higher_is_better=True, runtime=True),
    Metric("optimizer_seconds", "optimizer time", "s", runtime=True),
    Metric("optimizer_share", "optimizer share", "fraction of train_seconds", fmt=".1%"),
    # The in-run controls (reference and empty steps) timed beside the optimizer steps (optbench.engine.steptime), not in train_seconds.
    Metric("control_seconds", "reference-step time", "s", runtime=True),
    Metric("final_train_loss", "final train loss", "loss", tolerance=_QUALITY, summarised=True),
    Metric("rmse_gap", "RMSE gap", "fraction above the least-squares optimum", fmt="+.1%", summarised=True,
           beside="test_rmse"),
    # Reference values a task stores with its test metrics (TaskData.reference), drawn as lines by the report.
    Metric("optimum_rmse", "least-squares optimum", "target units", reference_of="test_rmse"),
    Metric("noise_floor_rmse", "noise floor (noise σ)", "target units", reference_of="test_rmse"),
    Metric("chance_accuracy", "chance", "fraction", higher_is_better=True, fmt=".1%", reference_of="test_accuracy"),
    Metric("chance_loss", "chance (uniform guess)", "loss", reference_of="test_loss"),
    Metric("chance_bpc", "uniform guess", "bits per character", reference_of="test_bpc"),
    Metric("unigram_bpc", "character frequencies (no context)", "bits per character", reference_of="test_bpc"),
    Metric("time_to_target_s", "time to target", "s", runtime=True),
    Metric("epochs_to_target", "epochs to target", "epochs", fmt="d"),
    # The report's load-independent progress measures (optbench.report.fair), from the curve and the record.
    Metric("steps_to_target", "steps to target", "steps", fmt="d", description=(
        "optimizer steps until the end of the first epoch whose test metric reached the target: that epoch "
        "x the run's steps per epoch (its ``steps`` over its epochs); the machine's load cannot change it")),
    Metric("adjusted_steps_to_target", "cost-adjusted steps", "reference-cost steps", fmt="d", description=(
        "steps to target, each weighted by its measured cost against a step whose update is the in-run "
        "reference step: (rest + step_cost) / (rest + 1), the rest of the step (forward, backward) in "
        "reference steps (training time outside the optimizer over the reference steps' time), the median "
        "over the comparable group's runs")),
    Metric("peak_memory_mb", "peak memory", "MiB", description=(
        "CUDA only: torch's peak allocated device memory during training (max_memory_allocated after a "
        "reset at set-up), less the step clock's reference copy of the parameters")),
    # optbench.engine.memory says how these are measured.
    Metric("peak_rss_mb", "peak resident memory", "MiB", description=(
        "CPU on Linux only: the process's peak resident set (VmHWM) over training and its evaluations, "
        "reset through /proc/self/clear_refs before the first epoch; the whole process's (data, model, "
        "torch's allocator caches), a vectorized group's on each of its runs; absent where it cannot be reset")),
    Metric("optimizer_state_bytes", "state", "bytes", fmt="bytes", summarised=True, exact=True, description=(
        "the optimizer's state per run, in bytes of its state tensors, the same for every seed and device; "
        "the sum of numel x element size over the tensors in optimizer.state once it has stepped, read after "
        "the first epoch; non-tensor state (a Python int) counts 0; a vectorized run counts its 1/K share of "
        "the stacked per-element state and a scalar step fully, which equals its eager run's")),
    Metric("parameter_bytes", "parameters", "bytes", fmt="bytes", description=(
        "the trained parameters' bytes per run (numel x element size of the optimizer's parameters)")),
)


def split_variants(m: Metric) -> list[Metric]:
    """A task metric's registered names, one per split: ``rmse`` -> ``test_rmse``, ``val_rmse``.
    Each is summarised by the report; only the test one is checked."""
    out = []
    for prefix, split in SPLIT_TITLES.items():
        title = m.title if prefix == "test" and m.name == "accuracy" else f"{split} {m.title}"
        tolerance = m.tolerance if prefix == "test" else None  # check compares test results only
        out.append(Metric(f"{prefix}_{m.name}", title, m.unit, m.higher_is_better, m.fmt, tolerance,
                          summarised=True, split=prefix))
    return out


def build_registry() -> dict[str, Metric]:
    """Every registered name from ``RUN_METRICS`` and ``TASK_METRICS``: the run metrics, then each task
    metric's split variants (this order is the order of check's rows and of the report's columns of one kind)."""
    return {m.name: m for m in [*RUN_METRICS, *(v for t in TASK_METRICS for v in split_variants(t))]}


METRICS: dict[str, Metric] = build_registry()


def metric(name: str) -> Metric:
    """The registered metric, or the defaults (lower is better) for a name this optbench lacks.
    The bare task metric names (a --target's ``loss``, ``rmse``, ``accuracy``) read as their test metric."""
    return METRICS.get(name) or next((m for m in TASK_METRICS if m.name == name), None) \
        or Metric(name, name.replace("_", " "), "")


def held_out(name: str, split: str = "test") -> Metric:
    """Task metric ``name`` (bare: ``rmse``) on a split: ``test_rmse``, or ``val_rmse`` for ``split="val"``."""
    return metric(f"{split}_{name}")


def is_task_metric(name: str) -> bool:
    """Whether ``name`` is a registered bare task metric (``rmse``; not ``test_rmse``)."""
    return any(m.name == name for m in TASK_METRICS)


def held_out_variants() -> list[Metric]:
    """Every registered task metric on each split: the test split's first, registry order within a split."""
    return sorted((m for m in METRICS.values() if m.split), key=lambda m: SPLITS.index(m.split or ""))


def summarised_metrics() -> list[Metric]:
    """The metrics the report aggregates per cell, in the order of its exported columns: the run
    metrics, then the task metrics split by split, each followed by those shown beside it."""
    summarised = [m for m in METRICS.values() if m.summarised]
    names = {m.name for m in summarised}
    hosts = sorted((m for m in summarised if m.beside not in names),
                   key=lambda m: -1 if m.split is None else SPLITS.index(m.split))
    return [shown for host in hosts for shown in (host, *(m for m in summarised if m.beside == host.name))]


def beside(name: str) -> list[Metric]:
    """The metrics shown beside metric ``name`` (``test_rmse``: the RMSE gap)."""
    return [m for m in METRICS.values() if m.beside == name]


def references_of(name: str) -> list[Metric]:
    """The registered reference values for metric ``name`` (``test_rmse``: the least-squares optimum and the noise floor)."""
    return [m for m in METRICS.values() if m.reference_of == name]


def higher_is_better(name: str) -> bool:
    return metric(name).higher_is_better


def checked_metrics() -> dict[str, Metric]:
    """The metrics ``optbench check`` compares by default: those with a tolerance, and the exact ones."""
    return {name: m for name, m in METRICS.items() if m.tolerance is not None or m.exact}


BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def binary_size(value: float) -> str:
    """A size in bytes in binary units, 3 significant digits: ``0 B``, ``512 B``, ``12.5 KiB``, ``1.21 MiB``,
    ``1,023 KiB``."""
    size, unit = float(value), 0
    while abs(size) >= 1024 and unit < len(BINARY_UNITS) - 1:
        size, unit = size / 1024, unit + 1
    if round(size) >= 1024 and unit < len(BINARY_UNITS) - 1:  # 1023.9 KiB reads 1.00 MiB
        size, unit = size / 1024, unit + 1
    if unit == 0 or abs(size) >= 999.5:  # whole numbers from 1,000 (1,023 KiB), never 1.02e+03
        return f"{size:,.0f} {BINARY_UNITS[unit]}"
    return f"{size:#.3g}".rstrip(".") + f" {BINARY_UNITS[unit]}"


def signed_percent(fraction: float, digits: int = 1) -> str:
    """``+12.3%`` / ``-4.0%`` for a relative change; a change that rounds to zero reads ``+0.0%``, never ``-0.0%``."""
    text = f"{fraction:+.{digits}%}"
    return "+" + text[1:] if float(text[:-1]) == 0 else text
