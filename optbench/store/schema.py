"""The run record's schema (version 1), as the store reads it back.

``RunRecord`` validates a parsed JSON document: strict types (no strings for numbers, no floats
for whole numbers, no booleans for either), finite numbers, documented ranges, a spec whose hash
is its ``spec_hash``, and metric names that cannot shadow a spec or record field. A document that
fails is not a run record; the store reports it and skips it, so nothing downstream (report,
check, baseline, resume) ever sees a wrong-typed field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

from optbench.limits import MAX_METRIC_VALUE, MAX_SEED
from optbench.spec import SCHEMA_VERSION, RunSpec, digest
from optbench.spec.vocabulary import ENGINES, FLOAT32, IMPLS, PRECISIONS, SCHEDULES, SPLITS, STAGES, STATUSES, TARGET_METRICS

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=0)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=1000)]
# Strings in hyperparameters and the environment end up in labels and table cells: a few hundred characters at most.
ShortStr = Annotated[str, Field(strict=True, max_length=1000)]
Scalar = StrictBool | StrictInt | Finite | ShortStr | None
Number = Finite  # a whole number is accepted as a float; the stored document keeps it as written

# Names a metric may not take: the record's own keys and the flat table's columns (optbench.store.frame),
# so that a metric can never stand in for a spec field, a status or a label.
RESERVED = frozenset({
    "schema_version", "run_id", "spec", "spec_hash", "cell_hash", "status", "error", "metric_name", "metrics",
    "optimizer_impl", "curve", "environment", "started_at", "finished_at", "stage", "target", "experiment", "protocol",
    "command",
    "task", "dataset", "optimizer", "hparams", "epochs", "batch_size", "seed", "device", "impl", "training", "code",
    "path", "label", "split",
})


def metric_range_error(name: str, value: float | None) -> str | None:
    """What is wrong with ``value`` as metric ``name`` (None when nothing): accuracy is a fraction in
    [0, 1]; times, losses, RMSE, memory (``_mb``, ``_bytes``) and counts are not negative; no value is larger than
    ``MAX_METRIC_VALUE`` in size (so means and sums of any number of them stay finite). The rules of
    run records, and of baselines (optbench.check.baseline)."""
    if value is None:
        return None
    if abs(value) > MAX_METRIC_VALUE:
        return f"metric '{name}' = {value:g} is beyond ±{MAX_METRIC_VALUE:g}, not a measurement"
    if name.endswith("accuracy") and not 0 <= value <= 1:
        return f"metric '{name}' = {value:g} is not a fraction in [0, 1]"
    if (name.endswith(("_seconds", "_s", "_rmse", "_loss", "_mb", "_bytes", "step_cost")) or name in ("steps", "stopped_epoch")
            or name.startswith("epochs")) and value < 0:
        return f"metric '{name}' = {value:g} is negative"
    return None


class _Strict(BaseModel):
    # A field's docstring is its description (docs/results-schema.md is generated from them).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class TrainingModel(_Strict):
    """Non-default training options (optbench.spec.training.TrainingOptions: the same fields, checked by a test)."""

    schedule: Literal[SCHEDULES] = "none"  # type: ignore[valid-type]
    """Learning-rate schedule per epoch: none, step, cosine or plateau (see Fair comparisons)."""
    step_size: Annotated[int, Field(strict=True, ge=1)] | None = None
    """step schedule: epochs between decays (default a third of the epochs after warm-up)."""
    gamma: Finite | None = None
    """step schedule: the factor of each decay (default 0.1)."""
    factor: Finite | None = None
    """plateau schedule: the factor of each decay (default 0.1)."""
    patience: Count | None = None
    """plateau schedule: epochs without improvement before a decay (default 2)."""
    warmup_epochs: Count = 0
    """Linear warm-up epochs before the schedule."""
    clip_norm: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] | None = None
    """The gradients' global L2 norm clipped to this before every step."""
    clip_value: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] | None = None
    """Every gradient element clipped to [-v, v] before every step."""
    early_stop_delta: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] | None = None
    """Stop (status converged) once the epoch training loss changes by less than this fraction."""
    time_budget_s: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] | None = None
    """Stop (status budget) once the run's training seconds reach this."""
    split: Literal[SPLITS] = "test"  # type: ignore[valid-type]
    """What the run is evaluated on: test, or validation (a part of the training data)."""
    precision: Literal[PRECISIONS] = FLOAT32  # type: ignore[valid-type]
    """The forward passes' arithmetic: float32, or bf16 (torch.autocast with bfloat16; parameters and optimizer float32)."""


class SpecModel(_Strict):
    """A stored spec (optbench.spec.RunSpec: the same fields, checked by a test)."""

    task: Name
    """The task's name (optbench list)."""
    dataset: Name
    """The dataset, with its options (diamonds:rows=20000)."""
    optimizer: Name
    """The optimizer: a registry name, `po:NAME` of the zoo, or a plugin (`file.py:Class`, `module:Class`)."""
    hparams: dict[str, Scalar | list[Scalar]]
    """Every hyperparameter, defaults included; tuples as lists."""
    epochs: Annotated[int, Field(strict=True, ge=1)]
    """Epochs of training."""
    batch_size: Annotated[int, Field(strict=True, ge=1)]
    """Samples per mini-batch."""
    seed: Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]
    """The seed of the data split, the model's initialisation and the batch order."""
    device: Name
    """cpu, cuda or cuda:N."""
    impl: Literal[IMPLS] = "auto"  # type: ignore[valid-type]
    """The optimizer implementation asked for (--impl); optimizer_impl says which one ran."""
    training: TrainingModel | None = None
    """The training options that differ from the defaults; absent for plain training, so older hashes stay
    valid."""
    code: dict[str, Annotated[str, Field(strict=True, max_length=200)]] | None = None
    """What pins code that optbench's and torch's versions do not: `optimizer`: `sha256:<16 hex digits>` of a
    plugin's source (plus `optimizer:<path>` for each local module it imports) or `<distribution>==<version>`
    (zoo, entry points); `task`: `<version>` for a task past its first version. Absent for built-in optimizers."""
    # Absent for eager runs (their hashes predate engines); "vectorized" for optbench.engine.vectorized.
    engine: Literal[ENGINES] = "eager"  # type: ignore[valid-type]
    """`vectorized` for a run trained by the vectorized engine; absent for eager runs, so their hashes stay valid."""


class CurvePointModel(_Strict):
    epoch: Annotated[int, Field(strict=True, ge=1)]
    """The epoch, from 1."""
    time_s: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
    """Training seconds up to the end of this epoch."""
    train_loss: Finite | None
    """Mean training loss of the epoch."""
    test_loss: Finite | None
    """Loss on the test split after the epoch (null on the validation split)."""
    test_metric: Finite | None
    """The task's main metric on the test split after the epoch."""
    lr: Finite | None = None
    """The learning rate the epoch ran at (first parameter group); records written before it existed
    lack it."""
    val_loss: Finite | None = None
    """Loss on the validation split, for runs on it."""
    val_metric: Finite | None = None
    """The task's main metric on the validation split, for runs on it."""


class TargetModel(_Strict):
    metric: Literal[TARGET_METRICS]  # type: ignore[valid-type]
    """The metric the target is set on."""
    value: Finite
    """The value the metric has to reach (time_to_target_s, epochs_to_target)."""


def _timestamp(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError("an ISO 8601 time without a time zone")
    return value


class RunRecord(BaseModel):
    """One stored run (see docs/results-schema.md). Unknown top-level keys are allowed
    (a newer optbench of the same schema version may add some); every known key is checked."""

    model_config = ConfigDict(extra="allow", frozen=True, use_attribute_docstrings=True)

    schema_version: Literal[1]
    """The record format's version."""
    run_id: Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{12}$")]
    """12 hex characters, unique per run."""
    spec: SpecModel
    """What was run: the run's identity."""
    spec_hash: Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{16}$")]
    """16 hex characters of SHA-256 over the canonical JSON of `spec`: the identity used to resume."""
    cell_hash: Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{16}$")] | None = None
    """The same over the spec without its seed: runs of one cell differ only by seed; the report groups
    cells by it."""
    status: Literal[STATUSES]  # type: ignore[valid-type]
    """`ok`, `converged` (stopped by `--early-stop`), `budget` (stopped by `--time-budget`), `diverged`
    (non-finite training loss; the curve ends at that epoch) or `failed` (an exception, see `error`); the
    first three count as finished."""
    error: StrictStr | None = None
    """null, or the exception and the last frames of its traceback."""
    metric_name: Annotated[str, Field(strict=True, max_length=100)] | None = None
    """The task's main test metric (rmse, accuracy, bpc)."""
    metrics: dict[str, Number | None]
    """Name to value (null when not finite); the names are in the metric registry below."""
    optimizer_impl: StrictStr | None = None
    """The implementation actually used (forloop, foreach, fused, ...)."""
    curve: list[CurvePointModel]
    """One point per epoch."""
    environment: dict[str, Scalar]
    """`optbench`, `torch`, `python`, `platform`, `cpu` (model name), `cpu_count`, `torch_threads` (the count
    training ran with), `thread_policy` (why: `small work: 1 thread`, `torch default` or the user's setting such as
    `OMP_NUM_THREADS=1`), `cuda` (the CUDA version of the torch build, or null), `cudnn`, `git_commit` (HEAD of the repository the command ran
    in, `-dirty` with changes; null outside one), `device`, `device_name` (GPU name or `cpu`)."""
    started_at: StrictStr
    """UTC, ISO 8601 with milliseconds."""
    finished_at: StrictStr
    """UTC, ISO 8601 with milliseconds."""
    stage: Literal[STAGES] | None = None  # type: ignore[valid-type]
    """Only under --select: sweep, final or default (see Fair comparisons)."""
    target: TargetModel | None = None
    """Only with a target."""
    label: Annotated[str, Field(strict=True, max_length=1000)] | None = None
    """The display name, e.g. `adam(lr=0.0003)`, stored when the run is written, so reading records never
    imports a plugin."""
    experiment: Annotated[str, Field(strict=True, max_length=200)] | None = None
    """The campaign the run belonged to: `--name`, the suite's `name`, the suite file's stem, or a name derived
    from what the command asked for (the same command gives the same name)."""
    protocol: Annotated[str, Field(strict=True, min_length=1, max_length=100)] | None = None  # a preset's name
    """Only under --protocol: the preset's name, e.g. deepobs."""
    command: Annotated[str, Field(strict=True, max_length=2000)] | None = None  # the invocation, as typed
    """The invocation that ran it, as typed; absent in records made in-process or by older versions."""

    _check_times = field_validator("started_at", "finished_at")(_timestamp)

    @field_validator("metrics")
    @classmethod
    def _metric_names_and_ranges(cls, metrics: dict[str, Any]) -> dict[str, Any]:
        for name, value in metrics.items():
            if name in RESERVED or name.startswith("env_"):
                raise ValueError(f"metric '{name}' would shadow a spec or record field")
            problem = metric_range_error(name, value)
            if problem:
                raise ValueError(problem)
        return metrics

    @model_validator(mode="after")
    def _hashes_match_the_spec(self) -> RunRecord:
        canonical = RunSpec.from_dict(self.spec.model_dump(exclude_unset=True)).to_dict()
        spec_hash = digest(canonical)
        if spec_hash != self.spec_hash:
            raise ValueError(f"spec_hash {self.spec_hash} is not the hash of its spec ({spec_hash}): "
                             "the spec was edited or the record is not optbench's")
        del canonical["seed"]  # RunSpec.cell()
        if self.cell_hash is not None and digest(canonical) != self.cell_hash:
            raise ValueError(f"cell_hash {self.cell_hash} is not the hash of its spec without the seed")
        return self


def why_invalid(doc: Any) -> str | None:
    """None for a valid run record, else one short phrase saying what is wrong with it."""
    from pydantic import ValidationError

    if not isinstance(doc, dict):
        return "not a run record (top level is not an object)"
    if "schema_version" in doc and doc["schema_version"] != SCHEMA_VERSION:
        return f"schema version {doc['schema_version']!r}, this optbench reads {SCHEMA_VERSION}"
    missing = [k for k in ("schema_version", "spec", "spec_hash", "status", "metrics", "curve", "environment") if k not in doc]
    if missing:
        return f"not a run record (missing {', '.join(missing)})"
    try:
        RunRecord.model_validate(doc)
    except ValidationError as exc:
        errors = exc.errors()
        # In a union every branch reports; the one that is not a plain type mismatch says what is wrong.
        err = next((e for e in errors if not e["type"].endswith(("_type", "_parsing"))), errors[0])
        where = ".".join(str(p) for p in err["loc"] if str(p) not in _UNION_TAGS and "[" not in str(p)) or "record"
        got = err.get("input")
        shown = "" if isinstance(got, (dict, list)) or err["type"] == "value_error" else f", got {_short(got)}"
        msg = err["msg"].removeprefix("Value error, ")
        return f"invalid run record ({where}: {msg}{shown})"
    return None


_UNION_TAGS = {"bool", "int", "float", "str", "none", "constrained-float", "constrained-int", "constrained-str",
               "function-after[_short(), str]"}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
