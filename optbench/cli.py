"""The command line: parse, validate, call one function, render. No training logic lives here."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from typer.core import TyperCommand

from optbench import __version__
from optbench.errors import UserError

app = typer.Typer(
    name="optbench",
    help="Benchmark PyTorch optimizers: runtime, loss, RMSE and accuracy, side by side.",
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn a UserError into one line on stderr and exit code 2 (``--debug`` shows the traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            if _state["debug"]:
                raise
            Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


class MultiValueCommand(TyperCommand):
    """Lets list options take several values after one flag: ``--opt adam sgd`` = ``--opt adam --opt sgd``."""

    multi_flags = ("--opt", "-o", "--task", "-t")

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_multi_flags(args, self.multi_flags))


def expand_multi_flags(args: list[str], flags: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    current: str | None = None
    for arg in args:
        if arg.startswith("-"):
            name = arg.split("=", 1)[0]
            current = name if name in flags and "=" not in arg else None
            out.append(arg)
        elif current is not None and out and out[-1] != current:
            out += [current, arg]  # a further value after a multi-value flag
        else:
            out.append(arg)
    return out


def split_list(values: list[str] | None, split_optimizers: bool = False) -> list[str] | None:
    """Expand comma lists: ``adam,sgd`` -> ``[adam, sgd]``; for optimizers a ``key=value`` item stays
    with the optimizer before it (``adam:lr=1e-3,eps=1e-6,sgd``)."""
    if not values:
        return None
    out: list[str] = []
    for value in values:
        for item in (s.strip() for s in value.split(",")):
            if not item:
                continue
            if split_optimizers and "=" in item and ":" not in item and out:
                out[-1] += "," + item
            else:
                out.append(item)
    return out


def _stdout_console() -> Console:
    # Piped or logged output (CI) gets a wide table instead of rich's 80-column fallback.
    return Console() if sys.stdout.isatty() else Console(width=160)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"optbench {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    _state["debug"] = debug


@app.command(cls=MultiValueCommand)
@user_errors
def run(
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="Task(s): regression, mlp, cifar10. Several after one flag, repeated, or comma-separated.", show_default="regression")] = None,
    opt: Annotated[list[str] | None, typer.Option("--opt", "-o", help='Optimizer(s) with inline hyperparameters, e.g. --opt adam sgd or "adam:lr=3e-4,betas=0.9/0.98".', show_default="sgd momentum rmsprop adam")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset for every task (see `optbench list`).", show_default="each task's default")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs per run.", show_default="each task's default")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Mini-batch size.", show_default="each task's default")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="First seed.", show_default="0")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Seeds per task x optimizer cell (seed, seed+1, ...).", show_default="1")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.", show_default="auto")] = None,
    config: Annotated[Path | None, typer.Option(help="Suite file (TOML); flags override it.", dir_okay=False)] = None,
    data_dir: Annotated[Path, typer.Option(help="Where datasets are read from and downloaded to.")] = Path("data"),
    results_dir: Annotated[Path, typer.Option(help="Where run records are written (under runs/).")] = Path("results"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the records of these runs as a JSON array on stdout, nothing else.")] = False,
) -> None:
    """Train the chosen optimizers on the chosen tasks and record runtime, loss, RMSE and accuracy.

    With no options: the default suite (the regression task on its built-in data with
    sgd, momentum, rmsprop and adam).
    """
    from optbench.console import LiveProgress, results_table
    from optbench.executor import run_suite
    from optbench.store import RUNS, ensure_writable
    from optbench.suite import build_specs, load_suite, read_config

    overrides = {
        "tasks": split_list(task), "optimizers": split_list(opt, split_optimizers=True), "dataset": dataset,
        "epochs": epochs, "batch_size": batch_size, "seed": seed, "seeds": seeds, "device": device,
    }
    raw = read_config(config) if config else None
    suite = load_suite(raw, overrides, source=str(config) if config else "options")
    specs = build_specs(suite)
    ensure_writable(results_dir)

    err = Console(stderr=True)
    out = err if json_out else _stdout_console()
    results = []
    if quiet or not err.is_terminal:
        results = list(run_suite(specs, results_dir, data_dir))
    else:
        with LiveProgress(specs, err) as progress:
            results = list(run_suite(specs, results_dir, data_dir, progress))

    if json_out:
        sys.stdout.write(json.dumps([r.to_record() for r in results], indent=2) + "\n")
    if not (json_out and quiet):
        out.print(results_table(results))
        out.print(f"{len(results)} run(s) recorded in {results_dir / RUNS}", highlight=False)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


@app.command("list")
def list_choices() -> None:
    """List tasks (with datasets) and optimizers (with default hyperparameters)."""
    from optbench.console import optimizers_table, tasks_table

    console = _stdout_console()
    console.print(tasks_table())
    console.print(optimizers_table())


@app.command(cls=MultiValueCommand)
@user_errors
def report(
    results_dir: Annotated[list[Path] | None, typer.Option("--results-dir", help="Results directory to read (repeatable: runs from several machines in one report).", show_default="results")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="Only these task(s).")] = None,
    opt: Annotated[list[str] | None, typer.Option("--opt", "-o", help='Only these optimizer(s): a name (every adam cell), a label "adam(lr=0.0003)" or "adam:lr=3e-4".')] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="Only these dataset(s) (repeatable or comma-separated).")] = None,
    device: Annotated[list[str] | None, typer.Option("--device", help="Only runs on these device(s), e.g. cpu, cuda:0.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where charts and the export file are written.", show_default="<first results dir>/report", file_okay=False)] = None,
    fmt: Annotated[Literal["table", "markdown", "csv", "json", "html"], typer.Option("--format", "-f", help="table: print to the terminal; markdown: print and write report.md; csv, json, html: write report.<ext>.")] = "table",
    charts: Annotated[bool, typer.Option("--charts/--no-charts", help="Draw the charts (PNG and SVG).")] = True,
) -> None:
    """Aggregate stored runs over seeds into tables (mean ± std, 95% CI) and log-scale charts.

    Reads every record under <results-dir>/runs/ and never changes it; writes only into --out.
    """
    from optbench.report import Filters, build_report
    from optbench.report_tables import report_table

    filters = Filters(tasks=split_list(task), optimizers=split_list(opt, split_optimizers=True),
                      datasets=split_list(dataset), devices=split_list(device))
    result = build_report(results_dir or [Path("results")], filters, out, fmt, draw_charts=charts)

    err = Console(stderr=True)
    for problem in result.problems:
        err.print(f"warning: skipped {problem.path}: {problem.reason}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    out_console = _stdout_console()
    if fmt == "table":
        for table in result.tables:
            out_console.print(report_table(table))
    elif fmt == "markdown":
        sys.stdout.write(result.markdown or "")
    notes = err if fmt == "markdown" else out_console  # markdown on stdout stays pure markdown
    if result.export:
        notes.print(f"wrote {result.export}", markup=False, highlight=False, soft_wrap=True)
    if result.charts:
        notes.print(f"wrote {len(result.charts) // 2} chart(s), PNG and SVG, to {result.out_dir}", markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    app()
