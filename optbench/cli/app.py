"""The command line: parse, validate, call one function, render. No training logic lives here."""

from __future__ import annotations

import functools
import inspect
import json
import re
import signal
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from typer import Abort

try:  # recent typer vendors click
    from typer._click import ClickException
except ImportError:  # pragma: no cover - typer on the click package
    from click import ClickException

from optbench import __version__
from optbench.errors import ClusterLost, StoreFailed, UserError
from optbench.limits import MAX_CONFIRM_ROUNDS
from optbench.config.presets import PRESETS
from optbench.optim.registry import spec_label
from optbench.spec.training import SCHEDULE_PARAMS
from optbench.tasks.catalog import TASKS
from optbench.spec.vocabulary import BF16, ENGINE_CHOICES, IMPLS, PRECISIONS, PROGRESS_MEASURES, SCHEDULES, SEARCH_METHODS, SPLITS

PRESETS_HELP = "; ".join(p.describe() for p in PRESETS.values())
PRECISION_HELP = ("Forward passes in float32, or bf16 (bfloat16 autocast, weights and optimizer float32; tasks "
                  f"{', '.join(t.name for t in TASKS.values() if BF16 in t.precisions)}; eager engine; its own cell). "
                  "Slower than float32 on a CPU without AVX-512 BF16 or AMX.")
# none, step[:step_size=V,gamma=V], cosine, plateau[:factor=V,patience=V]
SCHEDULES_HELP = ", ".join(name + (f"[:{','.join(f'{k}=V' for k in SCHEDULE_PARAMS[name])}]" if SCHEDULE_PARAMS[name] else "")
                           for name in SCHEDULES)

# Typer 0.29's rich help prints a flag's type (``--debug <bool>``) as if it took a value; a flag
# takes none (``--debug true`` is a command named "true"), so its help shows no type. A repeatable
# option shows its item type once, followed by "..." (``<text>...``, not ``<list[str]>``).
_display_type_rich = typer.core.TyperOption.display_type_rich
_ITEM_TYPES = {"str": "text", "Path": "path", "int": "int", "float": "float"}


def _flag_shows_no_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    if self.is_flag or self.count:
        return None
    shown = _display_type_rich(self, ctx)
    item = re.fullmatch(r"<list\[(\w+)\]>", shown or "")
    return f"<{_ITEM_TYPES.get(item.group(1), item.group(1).lower())}>..." if item else shown


typer.core.TyperOption.display_type_rich = _flag_shows_no_type  # type: ignore[method-assign]
_BOOL_WORDS = ("true", "false", "yes", "no", "on", "off", "1", "0")


class OneLineErrors(TyperGroup):
    """Usage errors (bad flag, bad value) as one line on stderr with exit code 2, like UserError."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            given = kwargs.get("args") or (args[0] if args else None) or sys.argv[1:]
            for flag, word in zip(given, given[1:]):
                if flag.startswith("--") and word.lower() in _BOOL_WORDS and re.search(rf"['(]{re.escape(word)}[')]", exc.format_message()):
                    hint = f"; {flag} is a flag and takes no value: write {flag} alone, or leave it out{hint}"
                    break
            Console(stderr=True).print(f"[bold red]error:[/] {exc.format_message().rstrip('.')}{hint}", highlight=False, soft_wrap=True)
            code = exc.exit_code
        except Abort:
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code or 0)


app = typer.Typer(
    name="optbench",
    cls=OneLineErrors,
    help="Benchmark PyTorch optimizers: runtime, loss, RMSE and accuracy, side by side.",
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])


def one_line_paragraphs(func: F) -> F:
    """The command's docstring with each paragraph on one line: Typer's help keeps a docstring's line
    breaks, which a terminal narrower or wider than the source then breaks mid-sentence."""
    doc = inspect.cleandoc(func.__doc__ or "")
    func.__doc__ = "\n\n".join(" ".join(p.split("\n")) for p in doc.split("\n\n"))
    return func


def user_errors(func: F) -> F:
    """Turn a UserError into one line on stderr and exit code 2 (``--debug`` shows the traceback);
    the help text's paragraphs on one line each (``one_line_paragraphs``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            if _state["debug"]:
                raise
            Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return one_line_paragraphs(wrapper)  # type: ignore[return-value]


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
    """The terminal's width on a terminal; elsewhere $COLUMNS when set (``COLUMNS=80 optbench report | less``), else 160."""
    if sys.stdout.isatty():
        return Console()
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() and int(columns) > 0 else 160)


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
    tasks: Annotated[list[str] | None, typer.Option("--task", "-t", help="Task(s): regression, mlp, cifar10, charlm (see `optbench list`). Several after one flag, repeated, or comma-separated.", show_default="regression")] = None,
    optimizers: Annotated[list[str] | None, typer.Option("--opt", "-o", help='Optimizer(s) with inline hyperparameters, e.g. --opt adam sgd or "adam:lr=3e-4,betas=0.9/0.98,weight_decay=1e-4"; "|" sweeps alternatives: "adam:lr=1e-4|1e-3|1e-2"; per-optimizer clipping: "sgd:lr=0.1,clip_value=1" (or clip_norm).', show_default="sgd momentum rmsprop adam")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset for every task (see `optbench list`), with options: diamonds:rows=20000 samples 20,000 rows (seeded).", show_default="each task's default")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs per run.", show_default="each task's default")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Mini-batch size.", show_default="each task's default")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="First seed.", show_default="0")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Seeds per task x optimizer cell (seed, seed+1, ...).", show_default="1")] = None,
    selection_seeds: Annotated[int | None, typer.Option("--selection-seeds", min=1, help="With --select or --protocol: seeds per sweep candidate; it is chosen by their mean validation metric.", show_default="1, as DeepOBS")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.", show_default="auto")] = None,
    impl: Annotated[str | None, typer.Option(metavar="|".join(IMPLS), help="Optimizer implementation for every optimizer; auto: foreach on CUDA, the for-loop on CPU.", show_default="auto")] = None,
    config: Annotated[Path | None, typer.Option(help="Suite file (TOML); flags override it.", dir_okay=False)] = None,
    data_dir: Annotated[Path, typer.Option(help="Where datasets are read from and downloaded to.")] = Path("data"),
    results_dir: Annotated[Path, typer.Option(help="Where run records are written (under runs/).")] = Path("results"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the records of these runs as a JSON array on stdout, nothing else.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-run specs that already have a finished record (default: skip them, so a re-run resumes).")] = False,
    select: Annotated[bool | None, typer.Option("--select/--no-select", help="Tune: run every sweep candidate on a validation split, re-run the best per optimizer (and its defaults) on test with --seeds. --no-select overrides a suite file's select = true.", show_default="off")] = None,
    split: Annotated[str | None, typer.Option(metavar="|".join(SPLITS), help="Evaluate on test, or on validation (a part of the training data; test is never touched).", show_default="test")] = None,
    schedule: Annotated[str | None, typer.Option(metavar="NAME[:K=V,...]", help=f"Learning-rate schedule per epoch: {SCHEDULES_HELP}.", show_default="none")] = None,
    warmup_epochs: Annotated[int | None, typer.Option("--warmup-epochs", "--warmup", min=0, help="Linear warm-up epochs before the schedule.", show_default="0")] = None,
    clip_norm: Annotated[float | None, typer.Option(help="Clip the gradient's global L2 norm to this before every step (every optimizer; \"sgd:clip_norm=1\" for one).")] = None,
    clip_value: Annotated[float | None, typer.Option(help="Clip every gradient element to [-v, v] before every step (every optimizer; \"sgd:clip_value=1\" for one).")] = None,
    early_stop_delta: Annotated[float | None, typer.Option("--early-stop-delta", "--early-stop", metavar="DELTA", help="Stop (status converged) once the epoch training loss changes by less than this fraction.")] = None,
    time_budget_s: Annotated[float | None, typer.Option("--time-budget-s", "--time-budget", metavar="SECONDS", help="Stop a run (status budget) once its training seconds reach this.")] = None,
    precision: Annotated[str | None, typer.Option(metavar="|".join(PRECISIONS), help=PRECISION_HELP, show_default="float32")] = None,
    executor: Annotated[str | None, typer.Option(help="Where runs execute: local (this process) or ray (a Ray cluster; pip install \"optbench[ray]\").", show_default="local")] = None,
    address: Annotated[str | None, typer.Option(help="With --executor ray: auto or HOST:PORT of a running cluster (ray start --head).", show_default="a local Ray cluster in this process")] = None,
    cpus_per_run: Annotated[float | None, typer.Option(help="With --executor ray: CPUs each run reserves.", show_default="1")] = None,
    gpus_per_run: Annotated[float | None, typer.Option(help="With --executor ray: GPUs each run reserves; fractions share a GPU (0.25: four runs).", show_default="0")] = None,
    engine: Annotated[str | None, typer.Option(metavar="|".join(ENGINE_CHOICES), help="eager: one run at a time; vectorized: each group of seeds and hyperparameter values of one cell in one pass (regression, mlp; elementwise optimizers); auto: vectorize the --select sweep and groups of 8+ runs that can be, the rest eager.", show_default="eager")] = None,
    protocol: Annotated[str | None, typer.Option(metavar="PRESET", help=f"A named tuning protocol: {PRESETS_HELP}. It adds the learning-rate grid, implies --select, and sets --seeds and --engine unless given.", show_default="none")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Experiment name stored in every record (optbench report --name selects it).", show_default="the suite file's name, else the start time")] = None,
    target: Annotated[str | None, typer.Option(metavar="METRIC=VALUE", help="Record the training time and epoch at which the test metric first reaches this: loss=0.5, rmse=1600, accuracy=0.6.")] = None,
) -> None:
    """Train the chosen optimizers on the chosen tasks and record runtime, loss, RMSE and accuracy.

    With no options: the default suite (the regression task on its built-in data with
    sgd, momentum, rmsprop and adam).
    """
    # Every parameter named like a suite key (``SuiteConfig``: tasks, epochs, early_stop_delta, ...)
    # overrides it; None: not given. One name per setting, from the flag to the record.
    given = dict(locals())
    from optbench.config.search import refuse_search

    suite = _load_suite(given, config)
    refuse_search(suite, config)
    _run_suite(suite, config, results_dir, data_dir, force, quiet, json_out)


def _load_suite(given: dict[str, Any], config: Path | None) -> Any:
    """The suite of ``run`` or ``tune``: the suite file with the flags over it (every parameter named
    like a suite key, ``SuiteConfig``, overrides it; None: not given)."""
    from optbench.config.suite import SuiteConfig, load_suite, read_config

    overrides = {key: value for key, value in given.items() if key in SuiteConfig.model_fields}
    overrides.update(tasks=split_list(given["tasks"]), optimizers=split_list(given["optimizers"], split_optimizers=True))
    raw = read_config(config) if config else None
    return load_suite(raw, overrides, source=str(config) if config else "options")


def _run_suite(suite: Any, config: Path | None, results_dir: Path, data_dir: Path, force: bool, quiet: bool,
               json_out: bool) -> None:
    """Run a loaded suite to its end and print what it did: the body of ``run`` and ``tune``."""
    from optbench.cli.console import LiveProgress, QuietProgress, results_table, selection_table
    from optbench.cli.notices import cuda_build_notice
    from optbench.execution import make_executor
    from optbench.execution.driver import Campaign, run_campaign
    from optbench.config.experiment import command_line, experiment_name
    from optbench.config.suite import build_specs, targets_for
    from optbench.store.index import RecordIndex
    from optbench.store.records import RUNS

    if suite.check is not None:  # the whole suite file is checked before anything runs, [check] too
        from optbench.check.tolerance import Tolerances

        try:
            Tolerances.parse(suite.check.tol)
        except UserError as exc:
            raise UserError(f"{config}: [check] {exc}") from None
    specs = build_specs(suite)
    index = RecordIndex.read(results_dir)  # the store, read once: its warnings here, resume in the driver
    # Only when something may run: a resume that skips every spec never imports torch.
    if suite.executor == "local" and specs and (force or any(index.finished(s.spec_hash()) is None for s in specs)):
        cuda_build_notice(specs[0].device)
    campaign = Campaign(specs, results_dir, data_dir, force=force, select=suite.select, targets=targets_for(suite),
                        experiment=experiment_name(suite.name, config, specs, suite.protocol, suite.select),
                        engine=suite.engine, protocol=suite.protocol, selection_seeds=suite.selection_seeds,
                        command=command_line(_state["argv"]) if "argv" in _state else None, index=index)

    err = Console(stderr=True)
    out = err if json_out else _stdout_console()
    _warn_skipped(index.problems)
    if suite.executor == "local" and (suite.address or suite.gpus_per_run or suite.cpus_per_run != 1.0):
        raise UserError("--address, --cpus-per-run and --gpus-per-run go with --executor ray")
    progress = QuietProgress() if quiet or not err.is_terminal else LiveProgress(err)
    runner = make_executor(suite.executor, suite.address, suite.cpus_per_run, suite.gpus_per_run)
    try:
        with progress:
            outcome = run_campaign(campaign, executor=runner, events=progress)
    except StoreFailed as exc:
        err.print(
            f"[bold red]error:[/] {escape(str(exc))}: stopped the suite; kept the {exc.kept} run(s) finished before "
            f"in {escape(str(results_dir / RUNS))}; free space or fix the folder's permissions, then run the same "
            "command again to resume", highlight=False, soft_wrap=True)
        raise typer.Exit(StoreFailed.EXIT_CODE) from None
    except ClusterLost as exc:
        lost = f", recorded none of the {exc.in_flight} in flight" if exc.in_flight else ""
        err.print(
            f"[bold red]error:[/] {escape(str(exc))}: stopped the suite; kept the {exc.kept} run(s) finished before "
            f"in {escape(str(results_dir / RUNS))}{lost}; run the same command again to resume",
            highlight=False, soft_wrap=True)
        raise typer.Exit(ClusterLost.EXIT_CODE) from None
    finally:
        runner.close()
    # In the suite's order (an executor delivers them in completion order).
    order = {s.spec_hash(): i for i, s in enumerate(campaign.specs)} if outcome.results else {}  # (hashing 10,000 specs takes 0.3 s)
    results = sorted(outcome.results, key=lambda r: order.get(r.spec.spec_hash(), len(order)))
    if outcome.stopped is not None:
        err.print(
            f"interrupted by {signal.Signals(outcome.stopped).name}: kept {len(results)} finished run(s) in "
            f"{results_dir / RUNS}, discarded the run in progress; run the same command again to resume",
            highlight=False, soft_wrap=True)
        raise typer.Exit(128 + outcome.stopped)

    if json_out:
        sys.stdout.write(json.dumps([r.to_record() for r in results], indent=2) + "\n")
    if not (json_out and quiet):
        for table in (results_table(results, out.width) if results else []):
            out.print(table)
        for table in (selection_table(outcome.choices, out.width, suite.protocol) if suite.select else []):
            out.print(table)
        for r in results:
            if r.status == "failed":
                out.print(f"[red]failed[/]: {r.spec.task} {spec_label(r.spec)} seed {r.spec.seed}: "
                          f"{(r.error or '').splitlines()[0]}", highlight=False, soft_wrap=True)
        skipped = f"; skipped {outcome.skipped} already finished (--force re-runs them)" if outcome.skipped else ""
        out.print(f"{len(results)} run(s) recorded in {results_dir / RUNS}{skipped}", highlight=False, soft_wrap=True)
    elif outcome.skipped:  # --json --quiet: stdout holds the JSON only; say why it may be short or empty
        err.print(f"skipped {outcome.skipped} run(s) already finished in {results_dir / RUNS} (not in the JSON, which holds "
                  f"the {len(results)} run(s) made now); --force re-runs them, optbench report reads them",
                  highlight=False, soft_wrap=True)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


class TuneCommand(MultiValueCommand):
    """``--space`` also takes several values after one flag (one optimizer's space each)."""

    multi_flags = (*MultiValueCommand.multi_flags, "--space")


@app.command(cls=TuneCommand)
@user_errors
def tune(
    tasks: Annotated[list[str] | None, typer.Option("--task", "-t", help="Task(s), as for optbench run.", show_default="regression")] = None,
    optimizers: Annotated[list[str] | None, typer.Option("--opt", "-o", help='Optimizer(s) to tune, each named once; a value given inline ("adam:eps=1e-6") is fixed and leaves the default space.', show_default="sgd momentum rmsprop adam")] = None,
    trials: Annotated[int | None, typer.Option("--trials", metavar="N", help="Trials per optimizer: every optimizer gets exactly N distinct ones.", show_default="20")] = None,
    method: Annotated[str | None, typer.Option("--method", metavar="|".join(SEARCH_METHODS), help="How trials are drawn: scrambled Halton or Sobol (quasi-random, scipy), or random (numpy).", show_default="halton")] = None,
    search_seed: Annotated[int | None, typer.Option("--search-seed", help="Seed of the draw: the same seed gives the same trials on every machine and worker count.", show_default="0")] = None,
    space: Annotated[list[str] | None, typer.Option("--space", metavar="OPT:KEY=DIM,...", help='Search space replacing an optimizer\'s default (optbench list --spaces), e.g. "adam:lr=log(1e-4,1e-2),weight_decay=log(5e-3,1)"; DIM: log(lo,hi), uniform(lo,hi), int(lo,hi), choice(a,b,...) or a value (fixed); one_minus_beta1 sets betas[0] or momentum to 1 - x.')] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset for every task, as for optbench run.", show_default="each task's default")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs per run.", show_default="each task's default")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Mini-batch size.", show_default="each task's default")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="First seed.", show_default="0")] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Seeds of each winner's re-run on test (seed, seed+1, ...).", show_default="1")] = None,
    selection_seeds: Annotated[int | None, typer.Option("--selection-seeds", min=1, help="Seeds per trial; a trial is judged by their mean validation metric.", show_default="1")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.", show_default="auto")] = None,
    impl: Annotated[str | None, typer.Option(metavar="|".join(IMPLS), help="Optimizer implementation for every optimizer.", show_default="auto")] = None,
    config: Annotated[Path | None, typer.Option(help="Suite file (TOML) with [search.NAME] tables, trials, method, search_seed; flags override it.", dir_okay=False)] = None,
    data_dir: Annotated[Path, typer.Option(help="Where datasets are read from and downloaded to.")] = Path("data"),
    results_dir: Annotated[Path, typer.Option(help="Where run records are written (under runs/).")] = Path("results"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the records of these runs as a JSON array on stdout, nothing else.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-run trials and runs that already have a finished record (default: skip them, so a re-run resumes).")] = False,
    schedule: Annotated[str | None, typer.Option(metavar="NAME[:K=V,...]", help=f"Learning-rate schedule per epoch: {SCHEDULES_HELP}.", show_default="none")] = None,
    warmup_epochs: Annotated[int | None, typer.Option("--warmup-epochs", "--warmup", min=0, help="Linear warm-up epochs before the schedule.", show_default="0")] = None,
    clip_norm: Annotated[float | None, typer.Option(help="Clip the gradient's global L2 norm to this before every step.")] = None,
    clip_value: Annotated[float | None, typer.Option(help="Clip every gradient element to [-v, v] before every step.")] = None,
    time_budget_s: Annotated[float | None, typer.Option("--time-budget-s", "--time-budget", metavar="SECONDS", help="Stop a run (status budget) once its training seconds reach this.")] = None,
    precision: Annotated[str | None, typer.Option(metavar="|".join(PRECISIONS), help=PRECISION_HELP, show_default="float32")] = None,
    executor: Annotated[str | None, typer.Option(help="Where runs execute: local or ray, as for optbench run.", show_default="local")] = None,
    address: Annotated[str | None, typer.Option(help="With --executor ray: auto or HOST:PORT of a running cluster.", show_default="a local Ray cluster in this process")] = None,
    cpus_per_run: Annotated[float | None, typer.Option(help="With --executor ray: CPUs each run reserves.", show_default="1")] = None,
    gpus_per_run: Annotated[float | None, typer.Option(help="With --executor ray: GPUs each run reserves.", show_default="0")] = None,
    engine: Annotated[str | None, typer.Option(metavar="|".join(ENGINE_CHOICES), help="auto: each task x optimizer's trials in one vectorized pass where the optimizer allows, the re-runs on test eager; eager; vectorized.", show_default="auto")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Experiment name stored in every record.", show_default="the suite file's name, else the start time")] = None,
    target: Annotated[str | None, typer.Option(metavar="METRIC=VALUE", help="Record the time to this test metric, as for optbench run.")] = None,
) -> None:
    """Tune every optimizer with the same budget: N trials from its search space on the validation split, the best re-run on test.

    The trials are quasi-random points of each optimizer's search space (its default: optbench list
    --spaces; docs/tuning.md), the same on every machine; each is an ordinary run of stage sweep, so a
    re-run resumes. Each task x optimizer's best trial (mean validation metric) is re-run on test with
    --seeds, beside the optimizer at its defaults.
    """
    given = dict(locals())
    from optbench.config.search import tune_suite

    suite = _load_suite(given, config)
    if engine is None and "engine" not in suite.model_fields_set:
        suite = suite.model_copy(update={"engine": "auto"})
    _run_suite(tune_suite(suite, space or ()), config, results_dir, data_dir, force, quiet, json_out)


@app.command("list")
@one_line_paragraphs
def list_choices(
    zoo: Annotated[bool, typer.Option("--zoo", help="Also name every third-party optimizer (po:NAME; imports pytorch_optimizer, a few seconds).")] = False,
    spaces: Annotated[bool, typer.Option("--spaces", help="Only each optimizer's default search space for optbench tune, with its source.")] = False,
) -> None:
    """List tasks (with datasets), optimizers (with default hyperparameters) and protocol presets."""
    from optbench.cli.listing import optimizers_table, presets_table, spaces_table, tasks_table, zoo_status

    console = _stdout_console()
    if spaces:
        console.print(spaces_table())
        return
    console.print(tasks_table())
    console.print(optimizers_table())
    console.print(presets_table())
    console.print(zoo_status(zoo), highlight=False)


@app.command(cls=MultiValueCommand)
@user_errors
def report(
    results_dir: Annotated[list[Path] | None, typer.Option("--results-dir", help="Results directory to read (repeatable: runs from several machines in one report).", show_default="results")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="Only these task(s).")] = None,
    opt: Annotated[list[str] | None, typer.Option("--opt", "-o", help='Only these optimizer(s): a name (every adam cell), a label "adam(lr=0.0003)" or "adam:lr=3e-4".')] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="Only these dataset(s) (repeatable or comma-separated).")] = None,
    device: Annotated[list[str] | None, typer.Option("--device", help="Only runs on these device(s), e.g. cpu, cuda:0.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where charts and the export file are written (markdown, csv and json go to stdout without it).", show_default="<first results dir>/report", file_okay=False)] = None,
    fmt: Annotated[Literal["table", "markdown", "csv", "json", "html"], typer.Option("--format", "-f", metavar="FORMAT", help="table: print to the terminal; markdown, csv, json: print on stdout (with --out: write report.<ext> there instead); html: write report.html.")] = "table",
    charts: Annotated[bool, typer.Option("--charts/--no-charts", help="Draw the charts.")] = True,
    chart_format: Annotated[list[str] | None, typer.Option("--chart-format", metavar="png|svg|pdf", help="Chart file format (repeatable or comma-separated): svg and pdf keep text as text, for papers.", show_default="png")] = None,
    wide: Annotated[bool, typer.Option("--wide", help="One table per task however wide (default: split the columns over several tables where the terminal is too narrow for every number whole).")] = False,
    target: Annotated[list[str] | None, typer.Option(metavar="[TASK:]METRIC=V", help="Time-to-target goal, recomputed from the curves (repeatable): regression:rmse=1600 for that task; loss=0.5 without a task for the runs that asked for a target and the --task tasks.", show_default="the target stored with the runs")] = None,
    name: Annotated[list[str] | None, typer.Option("--name", help="Only these experiment(s) (optbench run --name; see optbench list-runs). Repeatable or comma-separated.")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Only the newest experiment.")] = False,
    table: Annotated[str | None, typer.Option("--table", metavar="NAME", help="With csv or json: only this table (cells, default_vs_tuned, sensitivity, time_to_target, profile, trials_needed, budget), as plain CSV or a JSON list.", show_default="every table")] = None,
    profile_on: Annotated[str | None, typer.Option("--profile-on", metavar="|".join(PROGRESS_MEASURES), help="What time to target is ranked by and the performance profile computed on: steps to target (the machine's load cannot change them), wall seconds (they include the load and each step's cost), or steps weighted by each step's cost measured against the in-run reference step.", show_default=PROGRESS_MEASURES[0])] = None,
) -> None:
    """Aggregate stored runs over seeds into tables (mean ± std, 95% CI) and charts.

    Each experiment is reported on its own, and cells are compared only with cells of the same
    epochs, batch size and training options. Reads every record under <results-dir>/runs/ and
    never changes it; writes only into --out.
    """
    from optbench.report.build import Filters, build_report
    from optbench.cli.report_tables import report_tables

    filters = Filters(tasks=split_list(task), optimizers=split_list(opt, split_optimizers=True),
                      datasets=split_list(dataset), devices=split_list(device), experiments=split_list(name),
                      latest=latest)
    if table is not None and fmt not in ("csv", "json"):
        raise UserError("--table picks one table of a csv or json export; add --format csv or --format json")
    result = build_report(results_dir or [Path("results")], filters, out, fmt, draw_charts=charts, target=target,
                          table=table, chart_formats=split_list(chart_format) or ["png"], profile_on=profile_on)

    err = Console(stderr=True)
    for problem in result.problems:
        err.print(f"warning: skipped {problem.path}: {problem.reason}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    out_console = _stdout_console()
    if fmt == "table":
        for table in result.tables:
            for part in report_tables(table, None if wide else out_console.width):
                # --wide: the table as wide as its numbers need, whatever the terminal (the pager or file wraps)
                (Console(width=10_000) if wide else out_console).print(part)
    elif fmt == "markdown" or fmt in ("csv", "json") and not result.export:
        sys.stdout.write(result.text or "")
    notes = out_console if fmt == "table" else err  # an export on stdout stays pure: paths go to stderr
    if result.export:
        notes.print(f"wrote {result.export}", markup=False, highlight=False, soft_wrap=True)
    if result.charts:
        formats = list(dict.fromkeys(p.suffix[1:].upper() for p in result.charts))
        count = len(result.charts) // len(formats)
        kinds = ", ".join(formats[:-1]) + " and " + formats[-1] if len(formats) > 1 else formats[0]
        kept = count - result.charts_drawn
        if not result.charts_drawn:
            message = f"{count} chart(s), {kinds}, in {result.out_dir}: unchanged, the data they show is the same"
        else:
            message = f"wrote {result.charts_drawn} chart(s), {kinds}, to {result.out_dir}" + (
                f"; {kept} more there unchanged, the data they show is the same" if kept else "")
        notes.print(message, markup=False, highlight=False, soft_wrap=True)


@app.command("list-runs")
@user_errors
def list_runs(
    results_dir: Annotated[list[Path] | None, typer.Option("--results-dir", "--results", help="Results directory to read (repeatable).", show_default="results")] = None,
    fmt: Annotated[Literal["table", "json"], typer.Option("--format", "-f", help="table: print to the terminal; json: one object per experiment on stdout.")] = "table",
) -> None:
    """What a results folder holds: per experiment its name, when it ran, its records by status,
    tasks, optimizers and --select stages (the names optbench report --name takes)."""
    from optbench.cli.report_tables import experiments_table
    from optbench.report.build import experiment_summaries

    dirs = results_dir or [Path("results")]
    summaries, problems = experiment_summaries(dirs)
    _warn_skipped(problems)
    if fmt == "json":
        sys.stdout.write(json.dumps([s.to_dict() for s in summaries], indent=2) + "\n")
        return
    console = _stdout_console()
    console.print(experiments_table(summaries, console.width, dirs))
    console.print("optbench report --name NAME reports one of them; --latest the newest", markup=False,
                  highlight=False, soft_wrap=True)


baseline_app = typer.Typer(
    help="Save or refresh the baseline file that `optbench check` compares against.",
    no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(baseline_app, name="baseline")


def _warn_skipped(problems: list[Any]) -> None:
    err = Console(stderr=True)
    for problem in problems:
        err.print(f"warning: skipped {problem.path}: {problem.reason}", style="yellow", markup=False, highlight=False, soft_wrap=True)


def _steadier(repeats: int, data_dir: Path) -> Any:
    """``baseline save``/``update``'s re-measurement (``optbench.check.steady``), saying what it does on stderr."""
    from optbench.check.compare import CONFIRM_ROUNDS
    from optbench.check.steady import HIDDEN, REFUSED, busy_machine, steady_cells

    err = Console(stderr=True)

    def steady(cells: list[Any]) -> list[Any]:
        if repeats and cells:
            err.print(f"measuring the runtime of {len(cells)} cell(s) {repeats} more time(s) per seed, as check confirms a "
                      "slowdown (--repeats 0: the stored runs only)", markup=False, highlight=False, soft_wrap=True)
        steadied, noisy = steady_cells(cells, repeats, data_dir, CONFIRM_ROUNDS)
        for cell in noisy:
            missed = f"even a {REFUSED:g}x" if cell.smallest > REFUSED else f"a {HIDDEN:g}x"
            err.print(f"warning: the step cost of {cell.name} varied between repeats (spread {cell.spread_text}): check "
                      f"could miss {missed} slower step (it fails from {cell.smallest:.2f}x); save it on a quieter "
                      "machine or with more --repeats", style="yellow", markup=False, highlight=False, soft_wrap=True)
        busy = busy_machine(os.getloadavg()[0], os.cpu_count() or 1) if repeats and cells else None
        if busy:
            err.print(f"warning: {busy}", style="yellow", markup=False, highlight=False, soft_wrap=True)
        return steadied

    return steady


@baseline_app.command("save")
@user_errors
def baseline_save(
    out: Annotated[Path, typer.Option("--out", help="Baseline file to write (JSON; commit it).", dir_okay=False)],
    results_dir: Annotated[Path, typer.Option(help="Results to take the baseline from: every record under runs/.")] = Path("results"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing baseline file.")] = False,
    repeats: Annotated[int, typer.Option(min=0, max=MAX_CONFIRM_ROUNDS, metavar="N", help="Re-measure each seed's runtime N more times and keep the median, as check confirms (0: the stored runs only).")] = 3,
    data_dir: Annotated[Path, typer.Option(help="Datasets for re-measuring (as optbench run --data-dir).")] = Path("data"),
) -> None:
    """Write a baseline from stored results: per cell, its spec hash and every seed's runtime, loss and RMSE or accuracy."""
    from optbench.check.baseline import save_baseline

    baseline, problems = save_baseline(results_dir, out, force, _steadier(repeats, data_dir))
    _warn_skipped(problems)
    runs = sum(len(c.runs) for c in baseline.cells)
    _stdout_console().print(f"wrote {out}: {len(baseline.cells)} cell(s), {runs} run(s)", markup=False, highlight=False, soft_wrap=True)


@baseline_app.command("update")
@user_errors
def baseline_update(
    baseline: Annotated[Path, typer.Option("--baseline", help="Baseline file to refresh in place (written atomically).", dir_okay=False)],
    results_dir: Annotated[Path, typer.Option(help="Results to take the new samples from.")] = Path("results"),
    cell: Annotated[list[str] | None, typer.Option("--cell", metavar="GLOB", help="Only cells matching TASK/OPTIMIZER glob(s), e.g. regression/adam or 'cifar10/*' (repeatable).")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Drop (selected) baseline cells that are not in the results.")] = False,
    repeats: Annotated[int, typer.Option(min=0, max=MAX_CONFIRM_ROUNDS, metavar="N", help="Re-measure each seed's runtime N more times and keep the median, as check confirms (0: the stored runs only).")] = 3,
    data_dir: Annotated[Path, typer.Option(help="Datasets for re-measuring (as optbench run --data-dir).")] = Path("data"),
) -> None:
    """Refresh a baseline from stored results: replaced and new cells are taken from the results, the rest kept."""
    from optbench.check.baseline import update_baseline_file

    updated, update, problems = update_baseline_file(baseline, results_dir, split_list(cell), prune, _steadier(repeats, data_dir))
    _warn_skipped(problems)
    console = _stdout_console()
    for verb, names in (("replaced", update.replaced), ("added", update.added), ("removed", update.removed)):
        if names:
            console.print(f"{verb}: {', '.join(names)}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"wrote {baseline}: {len(updated.cells)} cell(s), {update.kept} kept unchanged", markup=False, highlight=False, soft_wrap=True)


@app.command()
@user_errors
def check(
    baseline: Annotated[Path, typer.Option("--baseline", help="Baseline file written by `optbench baseline save`.", dir_okay=False)],
    results_dir: Annotated[Path, typer.Option(help="Current results: every record under runs/.")] = Path("results"),
    tol: Annotated[list[str] | None, typer.Option("--tol", metavar="RULE", help="Tolerance METRIC\\[@TASK/OPTIMIZER]=VALUE, VALUE like 10%, 1.2x, abs=0.01, off or warn:5%,fail:10% (repeatable).")] = None,
    config: Annotated[Path | None, typer.Option(help="Suite file (TOML) whose \\[check] table gives tol rules, strict, exact and confirm.", dir_okay=False)] = None,
    strict: Annotated[bool | None, typer.Option("--strict/--no-strict", help="A baseline cell missing from the results fails (else it warns). --no-strict overrides the suite file's strict = true.", show_default="off")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="List the passing rows too (by default the table shows what did not pass).")] = False,
    exact: Annotated[bool | None, typer.Option("--exact/--no-exact", help="Quality must reproduce the baseline exactly on the same torch build, threads and CPU; a difference fails as a stale baseline. --no-exact overrides the suite file's exact = true.", show_default="off")] = None,
    confirm: Annotated[int | None, typer.Option(min=0, max=MAX_CONFIRM_ROUNDS, metavar="N", help="Re-measure a suspected runtime regression N more rounds before failing (default 3; 0: never).")] = None,
    data_dir: Annotated[Path, typer.Option(help="Datasets for re-measuring (as optbench run --data-dir).")] = Path("data"),
    fmt: Annotated[Literal["table", "markdown"], typer.Option("--format", "-f", help="table: rich table; markdown: GitHub-flavoured markdown on stdout.")] = "table",
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write JUnit XML: one test case per cell and metric.", dir_okay=False)] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Also write the full comparison as JSON.", dir_okay=False)] = None,
) -> None:
    """Compare current results with a baseline; exit 0 pass (warnings allowed), 1 regression, 2 usage or file error, 3 nothing comparable.

    The markdown is also appended to $GITHUB_STEP_SUMMARY when that is set (GitHub Actions).
    """
    import os

    from optbench.check.compare import CONFIRM_ROUNDS, check_results
    from optbench.check.confirm import remeasure
    from optbench.check.output import (append_summary, comparison_json, failure_headline, junit_xml, markdown, summary_line,
                                       update_advice, write_text)
    from optbench.cli.check_table import rich_table
    from optbench.config.suite import load_suite, read_config
    from optbench.check.tolerance import Tolerances
    from optbench.store.records import refuse_inside_runs

    for path, flag in ((junit, "--junit"), (json_file, "--json")):
        if path is not None:
            refuse_inside_runs(path, [results_dir], flag)
    settings = load_suite(read_config(config), source=str(config)).check if config else None
    tolerances = Tolerances.parse(settings.tol if settings else None, tol)
    if confirm is None:
        confirm = settings.confirm if settings and settings.confirm is not None else CONFIRM_ROUNDS
    err = Console(stderr=True)

    def remeasure_cells(cells: list[Any], rounds: int) -> Any:
        err.print(f"re-measuring {len(cells)} cell(s) that look slower, {rounds} more round(s): "
                  + ", ".join(c.name for c in cells), markup=False, highlight=False, soft_wrap=True)
        return remeasure(cells, rounds, data_dir)

    strict = strict if strict is not None else bool(settings and settings.strict)
    exact = exact if exact is not None else bool(settings and settings.exact)
    comparison = check_results(baseline, results_dir, tolerances, strict, exact, confirm, remeasure_cells)
    _warn_skipped(comparison.problems)

    text = markdown(comparison)
    if fmt == "markdown":
        sys.stdout.write(text)
    else:
        console = _stdout_console()
        table = rich_table(comparison, console.width, show_all)
        if table is not None:
            console.print(table)
        console.print(summary_line(comparison), markup=False, highlight=False, soft_wrap=True)
        for note in comparison.notes:
            console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
        command = comparison.update_command()
        if comparison.exit_code == 1 and failure_headline(comparison):
            console.print(failure_headline(comparison), markup=False, highlight=False)
        if comparison.exit_code == 1 and command:
            console.print(f"{update_advice(comparison)}:\n  {command}", markup=False, highlight=False, soft_wrap=True)
    if comparison.exit_code == 3:
        Console(stderr=True).print("nothing comparable: no current cell has the spec of a baseline cell; run the suite the "
                                   "baseline was saved from, or refresh it with `optbench baseline update`", highlight=False, soft_wrap=True)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        warning = append_summary(Path(os.environ["GITHUB_STEP_SUMMARY"]), text + "\n", [results_dir])
        if warning:
            err.print(f"warning: {warning}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    if junit:
        write_text(junit, junit_xml(comparison))
    if json_file:
        write_text(json_file, comparison_json(comparison))
    raise typer.Exit(comparison.exit_code)


def main() -> None:
    from optbench.cli.stdout import output_failed
    from optbench.errors import OutputFailed
    from optbench.files import CheckedStream

    _state["argv"] = sys.argv[1:]  # the invocation as typed, stored in every record `run` writes
    stdout, sys.stdout = sys.stdout, CheckedStream(sys.stdout)  # a failed write to stdout is OutputFailed, told apart from other OSErrors
    code: Any = 0
    try:
        try:
            app()
        except SystemExit as exc:
            code = exc.code
        sys.stdout.flush()  # what is still buffered: a full disk shows here, not after the exit code is chosen
    except OutputFailed as exc:
        code = output_failed(exc)
    finally:  # an app invoked again in this process (tests) is not this invocation
        _state.pop("argv", None)
        sys.stdout = stdout
    ray_executor = sys.modules.get("optbench.execution.ray_setup")
    if ray_executor is not None and ray_executor.connect_abandoned():
        # Ray's client, still trying to connect in a helper thread, would abort the interpreter's shutdown
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)
    sys.exit(code)
