"""Suites: a TOML config and command-line flags merged into a validated list of RunSpecs.

Config format (every key optional; flags given on the command line override it)::

    tasks = ["regression", {name = "cifar10", dataset = "synthetic", epochs = 2}]
    optimizers = ["sgd", "adam:lr=3e-4", {name = "momentum", lr = 0.05}]
    epochs = 20          # default: each task's own
    batch_size = 64      # default: each task's own
    seed = 0             # first seed
    seeds = 1            # seeds per task x optimizer cell: seed, seed+1, ...
    device = "auto"
    dataset = "synthetic"  # for every task that does not name its own
    impl = "auto"        # optimizer implementation: auto, forloop, foreach, fused (see optbench.optim.registry)

Fair comparisons (optbench.spec.training, optbench.config.sweep, optbench.execution.selection, optbench.spec.targets)::

    optimizers = ["adam:lr=1e-4|1e-3|1e-2", {name = "sgd", lr = {log = [1e-3, 1], num = 7}}]  # sweeps
    select = true        # tune every optimizer on a validation split, re-run the best on test
    split = "test"       # or "validation": evaluate every run on the validation part of the training data
    schedule = "cosine"  # none, step, cosine, plateau; "step:step_size=10,gamma=0.5" or {name = "step", ...}
    warmup_epochs = 2
    clip_norm = 1.0      # or clip_value = 1.0
    early_stop_delta = 1e-4
    time_budget_s = 60
    target = "loss=0.5"  # time to target for every task; a task table may set its own target
    protocol = "deepobs" # a named preset (optbench.config.presets): lr grid, select, seeds, engine

optbench tune only (optbench.config.search; docs/tuning.md)::

    trials = 20          # trials per optimizer, the same for every one
    method = "halton"    # halton, sobol or random
    search_seed = 0
    [search.adam]        # replaces adam's default search space
    lr = {log = [1e-4, 1e-2]}
    one_minus_beta1 = {log = [4e-3, 0.1]}
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, InstanceOf, TypeAdapter, ValidationError,
                      create_model, field_validator)
from pydantic_core import PydanticCustomError

from optbench.errors import UserError
from optbench.config.hparams import OptimizerSweep
from optbench.optim.hparams import check_hparams, coerce_hparams
from optbench.optim.registry import code_version
from optbench.spec import RunSpec
from optbench.spec.training import PER_OPTIMIZER
from optbench.spec.vocabulary import BF16, ENGINE_CHOICES, FLOAT32, IMPLS, SEARCH_METHODS
from optbench.files import Refused, nesting, read_regular
from optbench.limits import (MAX_BATCH_SIZE, MAX_CONFIG_BYTES, MAX_CONFIRM_ROUNDS, MAX_CPUS_PER_RUN, MAX_EPOCHS,
                             MAX_GPUS_PER_RUN, MAX_NESTING, MAX_SEED, MAX_SELECTION_SEEDS, MAX_TRIALS, check_runs)
from optbench.config.presets import apply_preset
from optbench.config.sweep import count, expand
from optbench.spec.targets import Target, parse_target
from optbench.tasks import TaskInfo, check_dataset, task_info
from optbench.config.training import TRAINING_KEYS, resolve_training, suite_fields

DEFAULT_TASKS = ["regression"]
DEFAULT_OPTIMIZERS = ["sgd", "momentum", "rmsprop", "adam"]


class TaskEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    dataset: str | None = None
    epochs: int | None = Field(default=None, ge=1, le=MAX_EPOCHS, strict=True)
    batch_size: int | None = Field(default=None, ge=1, le=MAX_BATCH_SIZE, strict=True)
    target: str | None = None  # time-to-target goal for this task, e.g. "accuracy=0.6"


class OptimizerEntry(BaseModel):
    """A suite table's optimizer: ``name`` plus any hyperparameters as further keys (checked against
    the optimizer later)."""

    model_config = ConfigDict(extra="allow")
    name: str


# What an optimizer entry may be in a suite file or --opt: an inline string or a table.
_WRITTEN_ENTRY: TypeAdapter[str | OptimizerEntry] = TypeAdapter(str | OptimizerEntry)
# The pydantic error type of a mistake inside an entry (``adam:lr=1e-3||1e-2``); reported after the
# suite's own schema errors, as itself (``_one_line``).
_ENTRY_ERROR = "optimizer_entry"


def _parse_entry(entry: Any) -> Any:
    """An optimizer entry as written, parsed once into typed values (optbench.config.hparams)."""
    if isinstance(entry, OptimizerSweep):
        return entry
    written = _WRITTEN_ENTRY.validate_python(entry)
    try:
        if isinstance(written, str):
            return OptimizerSweep.parse(written)
        return OptimizerSweep.from_table(written.name, written.model_extra or {})
    except UserError as exc:
        raise PydanticCustomError(_ENTRY_ERROR, "{message}", {"message": str(exc)}) from None


_Optimizer = Annotated[InstanceOf[OptimizerSweep], BeforeValidator(_parse_entry)]


class CheckConfig(BaseModel):
    """The ``[check]`` table, read by ``optbench check --config``: ``tol`` rules as for ``--tol``
    (see optbench.check.tolerance), applied before the command line's; ``strict``, ``exact`` and
    ``confirm`` as ``--strict``, ``--exact`` and ``--confirm`` (the command line wins)."""

    model_config = ConfigDict(extra="forbid")
    tol: list[str] = Field(default_factory=list)
    strict: bool = Field(default=False, strict=True)
    # Quality must reproduce the baseline exactly on the same torch build, threads and CPU (as --exact).
    exact: bool = Field(default=False, strict=True)
    # Re-measurement rounds for a suspected runtime regression (as --confirm); None: the default.
    confirm: int | None = Field(default=None, ge=0, le=MAX_CONFIRM_ROUNDS, strict=True)


class _SuiteRuns(BaseModel):
    """What runs: the first keys of a suite (``SuiteConfig``)."""

    model_config = ConfigDict(extra="forbid")
    tasks: list[str | TaskEntry] = Field(default_factory=lambda: list(DEFAULT_TASKS), min_length=1)
    optimizers: list[_Optimizer] = Field(
        default_factory=lambda: [OptimizerSweep.parse(name) for name in DEFAULT_OPTIMIZERS], min_length=1)
    dataset: str | None = None
    epochs: int | None = Field(default=None, ge=1, le=MAX_EPOCHS, strict=True)
    batch_size: int | None = Field(default=None, ge=1, le=MAX_BATCH_SIZE, strict=True)
    seed: int = Field(default=0, ge=0, le=MAX_SEED, strict=True)
    seeds: int = Field(default=1, ge=1, strict=True)  # bounded by the run limit (check_size)
    # Seeds per sweep candidate of --select (and --protocol deepobs): the candidate's validation
    # metric is their mean (optbench.execution.selection). 1, as DeepOBS.
    selection_seeds: int = Field(default=1, ge=1, le=MAX_SELECTION_SEEDS, strict=True)
    device: str = "auto"
    impl: Literal[IMPLS] = "auto"  # type: ignore[valid-type]

    @field_validator("tasks", "optimizers", mode="before")
    @classmethod
    def _single_to_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, (str, dict)) else v


# Training options (optbench.spec.training), the same for every run of the suite: one key per
# TrainingOptions field, with its name (schedule, warmup_epochs, clip_norm, ..., split).
_SuiteTraining = create_model("_SuiteTraining", __base__=_SuiteRuns, **suite_fields())


class SuiteConfig(_SuiteTraining):  # type: ignore[misc, valid-type]
    """A suite: every key of a suite file. A flag of ``optbench run`` sets the key its parameter is
    named after (``--early-stop-delta``, also ``--early-stop``: ``early_stop_delta``); optimizer
    entries hold typed values (``OptimizerSweep``), parsed once from the text or table written."""

    # Tune on validation, re-run the best on test (optbench.execution.selection); time-to-target goal for every task.
    select: bool = Field(default=False, strict=True)
    # A named tuning protocol (optbench.config.presets): "deepobs". Applied by load_suite.
    protocol: str | None = Field(default=None, min_length=1, max_length=100)
    target: str | None = None
    # The experiment every record of this suite carries (optbench report --name); default: the
    # suite file's name, or the time the run started.
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[\w.:+@=-][\w .:+@=-]*$")
    # Where the runs execute (optbench.execution): this process, or a Ray cluster.
    executor: Literal["local", "ray"] = "local"
    # Which engine trains (optbench.execution.driver.route): eager one run at a time, vectorized
    # groups of seeds and values in one pass, auto vectorizes the --select sweep and big groups.
    engine: Literal[ENGINE_CHOICES] = "eager"  # type: ignore[valid-type]
    address: str | None = Field(default=None, min_length=1, max_length=300)  # Ray: "auto" or HOST:PORT; none: a local cluster
    cpus_per_run: float = Field(default=1.0, gt=0, le=MAX_CPUS_PER_RUN, strict=True, allow_inf_nan=False)
    gpus_per_run: float = Field(default=0.0, ge=0, le=MAX_GPUS_PER_RUN, strict=True, allow_inf_nan=False)
    check: CheckConfig | None = None
    # optbench tune (optbench.config.search): per optimizer its search space ([search.adam] lr =
    # {log = [1e-4, 1e-2]}), the trials per optimizer, how they are drawn and the draw's seed.
    # `optbench run` refuses them.
    search: dict[str, dict[str, Any]] = Field(default_factory=dict)
    trials: int | None = Field(default=None, ge=1, le=MAX_TRIALS, strict=True)
    method: Literal[SEARCH_METHODS] | None = None  # type: ignore[valid-type]
    search_seed: int | None = Field(default=None, ge=0, le=MAX_SEED, strict=True)

    def training(self) -> dict[str, Any]:
        """The training options as given (None: not given), by their TrainingOptions names."""
        return {key: getattr(self, key) for key in TRAINING_KEYS}


def _one_line(exc: ValidationError, source: str) -> UserError:
    errors = exc.errors()
    # A table in a "str | Table" list fails both branches; the table's error is the useful one. A
    # mistake inside an optimizer entry is reported only when the suite's schema is right.
    err = next((e for e in errors if e["type"] not in ("string_type", _ENTRY_ERROR)), None)
    if err is None:
        entry = next((e for e in errors if e["type"] == _ENTRY_ERROR), errors[0])
        if entry["type"] == _ENTRY_ERROR:
            return UserError(entry["ctx"]["message"])
        err = entry
    loc = [str(p) for p in err["loc"] if p not in ("str", "TaskEntry", "OptimizerEntry")]
    if err["type"] == "extra_forbidden":
        model = SuiteConfig if len(loc) == 1 else CheckConfig if loc[0] == "check" else TaskEntry
        return UserError(f"{source}: unknown key '{'.'.join(loc)}'; valid keys: {', '.join(model.model_fields)}")
    got = "" if isinstance(err.get("input"), (dict, list)) else f" (got {_shown(err.get('input'))})"
    limit = "; that is optbench's limit (docs/limits.md)" if err["type"] in ("less_than_equal", "less_than") else ""
    return UserError(f"{source}: {'.'.join(loc)}: {err['msg'].lower()}{got}{limit}")


def _shown(value: Any) -> str:
    """A value in a message, short: a huge number by its digits' count, a long string cut."""
    text = repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and len(text) > 30:
        return f"a {len(text.lstrip('-'))}-digit number"
    return text if len(text) <= 80 else text[:77] + "..."


def read_config(path: Path) -> dict[str, Any]:
    """The raw TOML table of a suite file: a regular file of at most MAX_CONFIG_BYTES, nested at
    most MAX_NESTING deep, without NUL or other control characters in its strings."""
    if not Path(path).exists():
        raise UserError(f"config file {path} not found; see configs/ for examples")
    try:
        doc = tomllib.loads(read_regular(Path(path), MAX_CONFIG_BYTES).decode("utf-8"))
    except Refused as exc:
        raise UserError(f"cannot read config file {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        doc = None
    if doc is None or nesting(doc) > MAX_NESTING:
        raise UserError(f"{path} nests tables or arrays more than {MAX_NESTING} deep; a suite file needs 3")
    return doc


def _check_strings(obj: Any, source: str, where: str = "") -> None:
    """UserError for a NUL or other control character in any key or string (a path or name with
    one would fail deep inside the OS or torch)."""
    stack = [(obj, where)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, str):
            bad = next((c for c in value if ord(c) < 32 and c not in "\t\n\r" or c == "\x7f"), None)
            if bad is not None:
                raise UserError(f"{source}: {at or 'value'} contains the control character {bad!r}; remove it")
        elif isinstance(value, dict):
            for k, v in value.items():
                stack += [(k, f"{at}.{k}" if at else str(k)), (v, f"{at}.{k}" if at else str(k))]
        elif isinstance(value, list):
            stack += [(v, f"{at}[{i}]") for i, v in enumerate(value)]


def load_suite(config: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
               source: str = "options") -> SuiteConfig:
    """Validate a config table with command-line overrides (None values mean "not given") applied,
    parsing every optimizer entry once into typed values (optbench.config.hparams), then apply its
    protocol preset (``protocol``, see optbench.config.presets) to those values."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    merged = {**(config or {}), **given}
    _check_strings(merged, source)
    # A flag overrides the same key inside per-task tables too.
    if isinstance(merged.get("tasks"), list):
        merged["tasks"] = [
            {k: v for k, v in t.items() if k not in given} if isinstance(t, dict) else t for t in merged["tasks"]
        ]
    try:
        suite = SuiteConfig.model_validate(merged)
    except ValidationError as exc:
        raise _one_line(exc, source) from None
    if suite.protocol is None:
        return suite
    given = {key: getattr(suite, key) for key in suite.model_fields_set}
    return suite.model_copy(update=apply_preset(suite.protocol, suite.optimizers, given))


def build_specs(suite: SuiteConfig) -> list[RunSpec]:
    """Every task x optimizer x seed, in that order, with hyperparameters resolved and checked.

    An optimizer entry with alternatives (``adam:lr=1e-3|1e-2``, see ``optbench.config.sweep``) stands
    for each of its combinations, in order. Each distinct set of hyperparameters is checked once
    (``check_hparams`` builds the optimizer).
    """
    # Devices and implementations are checked against torch; reading a suite (optbench check's
    # [check] table) does not need it.
    from optbench.devices import remote_device, resolve_device

    check_size(suite)
    # Runs on other machines (a Ray cluster) resolve against theirs, not this machine's CUDA.
    device = resolve_device(suite.device) if suite.executor == "local" else remote_device(suite.device, suite.gpus_per_run)
    if suite.select and suite.split == "validation":
        raise UserError("--select runs the sweep on the validation split and the final runs on test; leave out split")
    optimizers = []
    checked: set[str] = set()
    for entry in suite.optimizers:
        for overrides in expand(entry):
            own = {k: overrides.pop(k) for k in PER_OPTIMIZER if k in overrides}
            hparams = coerce_hparams(entry.name, overrides)
            if (key := repr((entry.name, sorted(hparams.items())))) not in checked:
                check_hparams(entry.name, hparams)
                checked.add(key)
            optimizers.append((entry.name, hparams, own, entry))
        if suite.impl != "auto":  # auto always resolves; a named implementation is checked against torch
            from optbench.optim.construct import resolve_impl

            resolve_impl(entry.name, suite.impl, device)  # an optimizer without the chosen implementation fails here
    optimizer_code = {name: code_version(name) for name, *_ in optimizers}
    specs = []
    for entry in suite.tasks:
        entry = TaskEntry(name=entry) if isinstance(entry, str) else entry
        task = task_info(entry.name)
        dataset = check_dataset(task, entry.dataset or suite.dataset)
        epochs = entry.epochs or suite.epochs or task.default_epochs
        check_precision(task, suite.precision or FLOAT32, device)
        for name, hparams, own, written in optimizers:
            training = _training(epochs, suite.training(), own, written)
            code = {**optimizer_code[name], **({"task": str(task.version)} if task.version != 1 else {})}
            for seed in range(suite.seed, suite.seed + suite.seeds):
                specs.append(RunSpec(
                    task=task.name, dataset=dataset, optimizer=name, hparams=hparams, epochs=epochs,
                    batch_size=entry.batch_size or suite.batch_size or task.default_batch_size,
                    seed=seed, device=device, impl=suite.impl, training=training, code=code,
                ))
    return specs


def _training(epochs: int, suite_options: dict[str, Any], own: dict[str, Any], entry: OptimizerSweep) -> Any:
    """The checked training options of one optimizer setting: the suite's, where the entry names
    a per-optimizer option (``PER_OPTIMIZER``: clipping) with the entry's clipping in place of the
    suite's (``sgd:clip_value=1`` under ``--clip-norm 1`` clips sgd by value only)."""
    if not own:
        return resolve_training(epochs, suite_options)
    options = {**suite_options, **dict.fromkeys(PER_OPTIMIZER), **own}
    try:
        return resolve_training(epochs, options)
    except UserError as exc:
        raise UserError(f"optimizer '{entry.written()}': {exc}") from None


def check_precision(task: TaskInfo, precision: str, device: str) -> None:
    """UserError when ``task`` or ``device`` cannot run in ``precision`` (``--precision bf16``)."""
    from optbench.devices import require_bf16

    if precision not in task.precisions:
        raise UserError(f"task '{task.name}' runs in {' or '.join(task.precisions)} only, not --precision {precision}; "
                        f"leave out --precision for it")
    if precision == BF16:
        require_bf16(device)


def check_size(suite: SuiteConfig) -> None:
    """UserError, before anything is built, when the suite asks for more runs than the limit
    (tasks x optimizer settings x seeds, see optbench.limits) or for seeds torch cannot take."""
    last_seed = suite.seed + suite.seeds - 1
    if last_seed > MAX_SEED:
        raise UserError(f"seeds {suite.seed}..{last_seed} go past the largest seed, 2**63 - 1 = {MAX_SEED}; "
                        "choose a smaller --seed or fewer --seeds")
    settings = sum(count(entry) for entry in suite.optimizers)
    tasks = len(suite.tasks)
    check_runs(tasks * settings * suite.seeds,
               f"{tasks:,} task(s) x {settings:,} optimizer setting(s) x {suite.seeds:,} seed(s)")


def targets_for(suite: SuiteConfig) -> dict[str, Target]:
    """Task name -> its time-to-target goal: the task table's ``target``, else the suite's (``--target``).
    A target on a metric the task does not measure is a UserError."""
    targets = {}
    for entry in suite.tasks:
        entry = TaskEntry(name=entry) if isinstance(entry, str) else entry
        text = entry.target or suite.target
        if text:
            task = task_info(entry.name)
            targets[task.name] = parse_target(text, task.metric_name, task.name)
    return targets
