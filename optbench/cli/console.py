"""Rich rendering for the terminal: live progress of a suite and the table of its results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from optbench.cli.fit import Column, fitted_tables
from optbench.execution.driver import CampaignEvents

from optbench.execution import selection
from optbench.spec import RunResult, RunSpec, format_hparams
from optbench.spec.vocabulary import TUNE
from optbench.metrics import Metric, beside, held_out_variants, metric
from optbench.tasks.catalog import main_metric_name
from optbench.optim.registry import spec_label

STATUS_STYLE = {"ok": "green", "converged": "green", "budget": "cyan", "diverged": "yellow", "failed": "red"}


class QuietProgress(CampaignEvents):
    """No display."""

    def __enter__(self) -> QuietProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class LiveProgress(QuietProgress):
    """Progress of a campaign in epochs (so the ETA is meaningful): one bar for the stage, one per
    run in flight (keyed by spec hash: a cluster runs several at once)."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True,
        )
        self._specs: dict[str, RunSpec] = {}
        self._running: dict[str, Any] = {}
        self._epochs: dict[str, int] = {}
        self._stage: Any = None
        self._done = 0

    def __enter__(self) -> LiveProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def stage_started(self, stage: str | None, specs: list[RunSpec]) -> None:
        self._specs = {s.spec_hash(): s for s in specs}
        self._epochs = {}
        self._done = 0
        if self._stage is not None:
            self._bar.remove_task(self._stage)
        name = f"{stage} " if stage else ""
        self._stage = self._bar.add_task(f"{name}runs 0/{len(specs)}", total=sum(s.epochs for s in specs))

    def _describe(self) -> str:
        return f"runs {self._done}/{len(self._specs)}"

    def run_started(self, spec_hash: str) -> None:
        spec = self._specs.get(spec_hash)
        if spec is not None:
            label = f"  {spec.task}/{spec.dataset} {spec_label(spec)} seed {spec.seed}"
            self._running[spec_hash] = self._bar.add_task(label, total=spec.epochs)

    def epoch_done(self, spec_hash: str, epoch: int, epochs: int) -> None:
        if spec_hash in self._running:
            self._bar.update(self._running[spec_hash], completed=epoch)
        self._epochs[spec_hash] = epoch
        self._bar.update(self._stage, completed=sum(self._epochs.values()))

    def _finish(self, spec_hash: str) -> None:
        task = self._running.pop(spec_hash, None)
        if task is not None:
            self._bar.remove_task(task)
        spec = self._specs.get(spec_hash)
        self._epochs[spec_hash] = spec.epochs if spec else 0
        self._done += 1
        self._bar.update(self._stage, completed=sum(self._epochs.values()), description=self._describe())

    def run_finished(self, result: RunResult, path: Path) -> None:
        self._finish(result.spec.spec_hash())

    def run_skipped(self, spec_hash: str) -> None:
        self._finish(spec_hash)

def _fmt(metrics: dict[str, Any], name: str) -> str:
    """A run's metric as every optbench table shows it (``optbench.metrics``: ``1,469``, ``93.41%``)."""
    return metric(name).format(metrics.get(name))


def main_columns(results: list[RunResult]) -> list[Metric]:
    """The main held-out metrics of the results' tasks (the task catalog's, or a record's
    ``metric_name``), test then validation split, registry order within each, that some run has."""
    mains = {main_metric_name(r.spec.task, [r.metric_name]) for r in results}
    return [m for m in held_out_variants() if m.bare in mains and any(m.name in r.metrics for r in results)]


def _beside_word(m: Metric, host: Metric) -> str:
    """How ``m`` is named in parentheses after ``host``: its title without the host's (``RMSE gap``: ``gap``)."""
    return m.title.replace(metric(host.bare).title, "").strip() or m.title


def _with_beside(m: dict[str, Any], host: Metric) -> str:
    """``1,469 (+2.1%)``: ``host``'s value, then each metric shown beside it that the run has."""
    extra = [_fmt(m, b.name) for b in beside(host.name) if m.get(b.name) is not None]
    return _fmt(m, host.name) + "".join(f" ({text})" for text in extra)


def results_table(results: list[RunResult], width: int | None = None) -> list[Table]:
    """One row per run; the tasks' main metric columns (test, validation; ``main_columns``) and the
    time to target appear only when some run has them. Fitted to ``width`` (``optbench.cli.fit``):
    labels wrap, numbers whole."""
    mains = main_columns(results)
    to_target = any("time_to_target_s" in r.metrics for r in results)
    staged = any(r.stage for r in results)
    columns = [Column("task", hoist=True), Column("dataset", hoist=True), Column("optimizer"),
               Column("seed", value=True, justify="right", hoist=True),
               *([Column("stage", hoist=True)] if staged else []),
               Column("runtime s", value=True, justify="right"), Column("final loss", value=True, justify="right")]
    for m in mains:
        words = "".join(f" ({_beside_word(b, m)})" for b in beside(m.name))
        columns.append(Column(m.short_title + words, value=True, justify="right"))
    columns += [Column("to target s (epoch)", value=True, justify="right")] if to_target else []
    columns += [Column("status", value=True)]
    rows = []
    for r in results:
        m = r.metrics
        row = [escape(r.spec.task), escape(r.spec.dataset), escape(r.label or spec_label(r.spec)), str(r.spec.seed),
               *([escape(r.stage or "-")] if staged else []),
               _fmt(m, "train_seconds"), _fmt(m, "final_train_loss")]
        row += [_with_beside(m, main) for main in mains]
        if to_target:
            reached = m.get("time_to_target_s")
            row.append("-" if "time_to_target_s" not in m else "never" if reached is None
                       else f"{_fmt(m, 'time_to_target_s')} ({m.get('epochs_to_target')})")
        row.append(f"[{STATUS_STYLE.get(r.status, 'white')}]{escape(r.status)}[/]")
        rows.append(row)
    return fitted_tables("optbench results", columns, rows, width)


def selection_table(choices: list[selection.Choice], width: int | None = None, protocol: str | None = None) -> list[Table]:
    """What ``--select`` chose: per task x optimizer the winning candidate and its validation metric
    (``optbench tune``, protocol TUNE: the winning trial, with every hyperparameter it searched)."""
    tune = protocol == TUNE
    columns = [Column("task", hoist=True), Column("dataset", hoist=True), Column("optimizer"),
               *([] if tune else [Column("swept")]),
               Column("trials" if tune else "candidates", value=True, justify="right"),
               Column("chosen (the values searched)" if tune else "chosen"),
               Column("validation metric", value=True, justify="right")]
    rows = []
    for c in choices:
        finished = f"{c.finished} of {len(c.candidates)}"
        if c.best is None:
            chosen, value = "[red]none finished[/]", "-"
        else:  # tune: one searched value a line, whole
            chosen = escape("\n".join(format_hparams({k: c.best.spec.hparams[k]}) for k in c.swept()) if tune
                            else spec_label(c.best.spec))
            value = f"{c.metric.removeprefix('val_')} {metric(c.metric).format(c.best.value)}"
        swept = [] if tune else [escape(", ".join(c.swept()) or "-")]
        rows.append([escape(c.task), escape(c.dataset), escape(c.optimizer), *swept, finished, chosen, value])
    title = ("tuning: best trial on the validation split, re-run on test" if tune
             else "selection: best candidate on the validation split, re-run on test")
    return fitted_tables(title, columns, rows, width)
