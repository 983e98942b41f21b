"""What a run is (RunSpec) and what it produces (RunResult).

A run is a pure function of its spec: the engine turns one RunSpec into one RunResult, and
everything else (CLI, executors, store, report, check) is a layer around that seam.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from collections.abc import Mapping
from typing import Any

from optbench.spec.targets import Target
from optbench.spec.training import TrainingOptions
from optbench.spec.vocabulary import Status

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's outcome. Units: epochs and batch size in samples."""

    task: str
    dataset: str
    optimizer: str
    hparams: dict[str, Any]
    epochs: int
    batch_size: int
    seed: int
    device: str
    # Which optimizer implementation: auto, forloop, foreach or fused (optbench.optim.registry.resolve_impl).
    impl: str = "auto"
    # Schedule, clipping, early stopping, budget, evaluation split (optbench.spec.training).
    training: TrainingOptions = field(default_factory=TrainingOptions)
    # The code behind the run where optbench cannot pin it by its own and torch's versions:
    # {"optimizer": "sha256:<source file>" or "<distribution>==<version>", "task": "<task version>"}
    # (optbench.optim.registry.code_version, Task.version). Empty for built-in optimizers on tasks
    # at their first version, and then left out of the stored spec (hashes stay as they were).
    code: dict[str, str] = field(default_factory=dict)
    # The engine that trains it (optbench.engine): "eager", or "vectorized" (trained with the other
    # seeds and values of its group in one pass). Part of the cell, so a vectorized run's time is
    # never compared with an eager one's; left out of the stored spec when "eager" (hashes stay).
    engine: str = "eager"

    def to_dict(self) -> dict[str, Any]:
        """The stored spec. ``impl`` is left out when it is "auto", so default runs keep the record
        format and hashes they had before ``impl`` existed (those runs ran what "auto" means)."""
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}  # every field is replaced or a scalar
        d["hparams"] = {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(self.hparams.items())}
        if self.impl == "auto":
            del d["impl"]
        # Likewise only non-default training options are stored, and none at all for plain training.
        d["training"] = self.training.to_dict()
        if not d["training"]:
            del d["training"]
        if self.engine == "eager":
            del d["engine"]
        if not self.code:
            del d["code"]
        else:
            d["code"] = dict(sorted(self.code.items()))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k not in ("impl", "training", "code", "engine")}
        fields["engine"] = d.get("engine", "eager")
        fields["code"] = dict(d.get("code") or {})
        fields["impl"] = d.get("impl", "auto")
        fields["training"] = TrainingOptions.from_dict(d.get("training"))
        fields["hparams"] = {k: tuple(v) if isinstance(v, list) else v for k, v in d["hparams"].items()}
        return cls(**fields)

    def cell(self) -> dict[str, Any]:
        """The spec without its seed: runs of one cell differ only by seed and are aggregated
        (optbench.spec.identity.cell_key is its hash)."""
        d = self.to_dict()
        del d["seed"]
        return d

    def spec_hash(self) -> str:
        return digest(self.to_dict())

    def cell_hash(self) -> str:
        return digest(self.cell())


def digest(obj: Any) -> str:
    """The 16-hex-digit identity of a JSON-able value (spec_hash, cell_hash): sha256 of its canonical JSON."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class CurvePoint:
    """One epoch. ``time_s`` is cumulative training seconds at the end of the epoch; ``lr`` the
    learning rate of the first parameter group during the epoch (None when the optimizer has none).

    A run evaluated on the validation split has ``val_loss`` and ``val_metric`` instead of test
    values; they are stored only there. Records written before ``lr`` existed have no ``lr``:
    readers use ``point.get("lr")``.
    """

    epoch: int
    time_s: float
    train_loss: float | None
    test_loss: float | None
    test_metric: float | None
    lr: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.val_loss is None and self.val_metric is None:
            del d["val_loss"], d["val_metric"]
        return d


@dataclass(frozen=True)
class RunContext:
    """What the driver knows about a run that its spec does not: the protocol stage, the
    experiment, the preset, the time-to-target goal of each task, the git commit. It rides in the
    work unit to wherever the unit runs, and the engine's results come back final
    (``optbench.engine.bookkeeping.finish``): the driver only saves them."""

    stage: str | None = None
    experiment: str | None = None
    protocol: str | None = None
    targets: tuple[tuple[str, Target], ...] = ()  # (task, goal) pairs
    git_commit: str | None = None
    command: str | None = None  # the invocation that asked for it: ``optbench run --opt adam --seeds 4``

    def target_for(self, task: str) -> Target | None:
        return dict(self.targets).get(task)


@dataclass
class RunResult:
    """The outcome of one run; ``to_record`` gives the stored JSON document."""

    spec: RunSpec
    status: Status
    metrics: dict[str, float | int | None]
    curve: list[CurvePoint]
    environment: dict[str, Any]
    started_at: str
    finished_at: str
    run_id: str
    metric_name: str = "test_metric"
    error: str | None = None
    # The implementation that ran (forloop, foreach, fused, native); None if it never started.
    optimizer_impl: str | None = None
    # The protocol stage that ran it: "sweep", "final" or "default" under --select (optbench.execution.selection); None otherwise.
    stage: str | None = None
    # The time-to-target goal it was measured against, {"metric": "loss", "value": 0.5} (optbench.spec.targets).
    target: dict[str, Any] | None = None
    # The campaign it belonged to: --name, the suite's name or file stem, or a name derived from what
    # the invocation asked for (optbench.config.experiment), so a resumed command continues it.
    experiment: str | None = None
    # The invocation that ran it, as typed (``optbench run --task mlp --opt adam --seeds 4``).
    command: str | None = None
    # The named protocol preset it ran under (optbench.config.presets), e.g. "deepobs"; None otherwise.
    protocol: str | None = None
    # The display label (optbench.optim.registry.spec_label), set by the engine: stored so that
    # reading records never imports plugin code. None only for a result not yet finished.
    label: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON document; ``stage``, ``target``, ``experiment``, ``protocol`` and ``command`` appear only when set. The
        display ``label`` is stored at write time, so reading records never imports plugin code."""
        extra = {k: v for k, v in (("stage", self.stage), ("target", self.target), ("experiment", self.experiment),
                                      ("protocol", self.protocol), ("command", self.command)) if v is not None}
        return _finite_or_null({
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "spec": self.spec.to_dict(),
            "spec_hash": self.spec.spec_hash(),
            "cell_hash": self.spec.cell_hash(),
            "label": self.label or self.spec.optimizer,
            "status": self.status,
            "error": self.error,
            "metric_name": self.metric_name,
            "metrics": self.metrics,
            "optimizer_impl": self.optimizer_impl,
            "curve": [p.to_dict() for p in self.curve],
            "environment": self.environment,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            **extra,
        })


def format_hparams(hparams: Mapping[str, Any]) -> str:
    """``lr=0.001,betas=0.9/0.999``: the inline syntax, so a label can be pasted back into --opt."""
    def fmt(v: Any) -> str:
        if isinstance(v, (tuple, list)):
            return "/".join(fmt(x) for x in v)
        if isinstance(v, bool):
            return str(v).lower()
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ",".join(f"{k}={fmt(v)}" for k, v in sorted(hparams.items()))


def code_text(code: Mapping[str, str]) -> str:
    """A spec's code version, as short as a table cell must be ('' for built-in code): ``optimizer
    3f2a9c1b`` for each part (a digest's first 8 hex digits, or a version); a plugin with local
    modules (``optimizer:helper.py``, ...) as ``optimizer+2 77d0e4a1``: its file and 2 modules, one
    digest over all three that changes when any of them does (check's note names the files)."""
    parts: dict[str, dict[str, str]] = {}
    for key, value in code.items():
        parts.setdefault(key.partition(":")[0], {})[key] = value
    texts = []
    for part, entries in sorted(parts.items()):
        if list(entries) == [part]:
            value = entries[part]
            texts.append(f"{part} {value.removeprefix('sha256:')[:8] if value.startswith('sha256:') else value}")
        else:
            combined = hashlib.sha256("\n".join(f"{k}={v}" for k, v in sorted(entries.items())).encode()).hexdigest()
            texts.append(f"{part}+{len(entries) - 1} {combined[:8]}")
    return ", ".join(texts)


def _finite_or_null(obj: Any) -> Any:
    """JSON has no NaN or infinity: a diverged loss is stored as null."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    return obj
