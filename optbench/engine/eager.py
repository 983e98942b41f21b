"""The run engine: ``run(spec) -> RunResult``, the one place a model is trained.

Timing covers the training steps only; data loading, model construction and evaluation are
outside the clock, and on CUDA the device is synchronised before every clock read. Memory (the
optimizer's state and parameter bytes, the peak resident set on CPU: ``optbench.engine.memory``)
is read outside the clock too.

Training options (``spec.training``, see ``optbench.spec.training``) cost nothing per step when unused:
the learning rate is set once per epoch, before its first step, and only when a schedule or warm-up
is asked for; gradient clipping is the one per-step addition, inside the clock, since it is part
of the step. Early stopping and the time budget are checked once per epoch. ``--precision bf16``
runs each step's forward pass and loss, and the evaluation, under ``torch.autocast`` (bfloat16);
the backward pass follows the forward's dtypes, and the optimizer's step runs outside autocast,
in float32 (an optimizer with matrix products of its own, such as Muon, keeps its arithmetic).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager

import torch

from optbench.devices import require_bf16, synchronize
from optbench.engine.base import RunEvents
from optbench.engine.bookkeeping import RunBook, failed_result, utc_now
from optbench.engine.memory import PeakRSS, memory_metrics
from optbench.engine.steptime import StepClock
from optbench.engine.threads import ThreadScope, thread_policy, work_of
from optbench.errors import UserError
from optbench.optim.construct import build_optimizer, resolve_impl
from optbench.engine.schedules import LRSchedule
from optbench.spec.training import TrainingOptions
from optbench.spec import RunResult, RunSpec
from optbench.spec.vocabulary import BF16
from optbench.tasks import Task, TaskData, get_task

DEFAULT_DATA_DIR = Path("data")

# (task, dataset, data dir, device, split) -> TaskData: data is prepared once per process.
_DATA_CACHE: dict[tuple[str, str, str, str, str], TaskData] = {}

EpochCallback = Callable[[int, int], None]


def load_data(task: Task, dataset: str, data_dir: Path, device: str, split: str = "test") -> TaskData:
    """The task's data on ``device``; with ``split="validation"`` the validation view of it
    (``TaskData.validation_split``: train minus the validation rows, evaluated on those rows)."""
    key = (task.name, dataset, str(Path(data_dir).resolve()), device, split)
    if key not in _DATA_CACHE:
        if split == "validation":
            _DATA_CACHE[key] = load_data(task, dataset, data_dir, "cpu").validation_split().to(torch.device(device))
        else:
            _DATA_CACHE[key] = task.load(dataset, Path(data_dir)).to(torch.device(device))
    return _DATA_CACHE[key]


@dataclass
class Session:
    """Everything a run builds before its clock starts (the set-up phase)."""

    task: Task
    data: TaskData
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    impl: str
    schedule: LRSchedule
    base_lrs: list[Any]
    clip: Callable[[], object] | None
    clock: StepClock
    shuffle: torch.Generator
    precision: Callable[[], ContextManager[object]]  # the context of forward passes: autocast, or none


def set_up(spec: RunSpec, data_dir: Path) -> Session:
    """Data on the device, the model initialised from the seed, the optimizer in the implementation
    the spec asks for (resolved once, here), the schedule, clipping and the step clock."""
    task = get_task(spec.task)
    device = torch.device(spec.device)
    data = load_data(task, spec.dataset, data_dir, spec.device, spec.training.split)
    torch.manual_seed(spec.seed)
    model = task.build_model(data).to(device)
    impl = resolve_impl(spec.optimizer, spec.impl, device)
    optimizer = build_optimizer(spec.optimizer, model.parameters(), spec.hparams, impl)
    schedule = LRSchedule(spec.training, spec.epochs)
    base_lrs = [group.get("lr") for group in optimizer.param_groups]
    if schedule.active and any(not isinstance(lr, (int, float)) for lr in base_lrs):
        raise ValueError(f"optimizer '{spec.optimizer}' has no numeric learning rate 'lr' to schedule")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return Session(task, data, device, model, optimizer, impl, schedule, base_lrs, _clipper(spec.training, params),
                   StepClock(params, device), torch.Generator().manual_seed(spec.seed),
                   precision_context(spec.training.precision, spec.device))


def train_epoch(s: Session, epoch: int, batch_size: int) -> tuple[float, float, float | None]:
    """One timed epoch: ``(training seconds, mean training loss, learning rate)``.

    The learning rate is set before the clock starts; batch losses are kept as tensors and summed
    once per epoch (no extra kernel and no host-device sync per step); the device is synchronised
    before each clock read, and the step clock's reference steps are taken out of the seconds.
    """
    if s.schedule.active:
        factor = s.schedule.factor(epoch)
        for group, base in zip(s.optimizer.param_groups, s.base_lrs):
            group["lr"] = base * factor
    lr = _lr(s.optimizer)
    x_train, y_train = s.data.x_train, s.data.y_train
    n = len(x_train)
    perm = torch.randperm(n, generator=s.shuffle).to(s.device)
    model, optimizer, loss_fn, clip, clock, precision = s.model, s.optimizer, s.task.loss, s.clip, s.clock, s.precision
    losses: list[torch.Tensor] = []
    synchronize(s.device)
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        with precision():
            loss = loss_fn(model(x_train[idx]), y_train[idx])
        loss.backward()
        if clip is not None:
            clip()
        clock.control()  # the reference and empty steps, timed before the optimizer's (optbench.engine.steptime)
        optimizer.step()
        clock.mark()
        optimizer.zero_grad(set_to_none=True)  # grads start as None: clearing them after the step is the same
        clock.mark()
        losses.append(loss.detach())
    synchronize(s.device)
    seconds = time.perf_counter() - t0 - clock.end_epoch()
    return seconds, torch.stack(losses).sum().item() / len(losses), lr


def run(spec: RunSpec, data_dir: Path = DEFAULT_DATA_DIR, on_epoch: EpochCallback | None = None) -> RunResult:
    """Train ``spec.optimizer`` on ``spec.task`` and measure it. Deterministic on CPU for a given spec
    (but for ``time_budget_s``, which depends on the clock).

    Phases: ``set_up`` (outside the clock), then per epoch ``train_epoch`` (timed) and the
    evaluation (outside the clock) recorded by a ``RunBook``, which stops the run on divergence
    (``diverged``), early stopping (``converged``) or the time budget (``budget``). Torch's thread
    count is the thread policy's for the run (``optbench.engine.threads``) until it returns.
    """
    with thread_policy() as threads:
        return _run(spec, data_dir, on_epoch, threads)


def _run(spec: RunSpec, data_dir: Path, on_epoch: EpochCallback | None, threads: ThreadScope) -> RunResult:
    book = RunBook(spec, get_task(spec.task).metric_name)
    s = set_up(spec, data_dir)
    threads.choose(work_of(s.model, spec.batch_size), s.device)
    memory: dict[str, float] = {}
    rss = PeakRSS()
    if s.device.type == "cpu":
        rss.start()
    for epoch in range(1, spec.epochs + 1):
        seconds, train_loss, lr = train_epoch(s, epoch, spec.batch_size)
        if epoch == 1:  # the state the first step created, read with the clock stopped
            memory = memory_metrics([s.optimizer], [p for g in s.optimizer.param_groups for p in g["params"]])
        going = book.record_epoch(epoch, seconds, train_loss, lr, functools.partial(_evaluate, s))
        if book.status != "diverged":
            if on_epoch:
                on_epoch(epoch, spec.epochs)
            s.schedule.observe(epoch, book.plateau_signal())
        if not going:
            break
    n = len(s.data.x_train)
    peak_rss = rss.peak_mb()
    metrics = book.metrics(math.ceil(n / spec.batch_size), n, s.clock.times.metrics(book.train_seconds))
    metrics.update(memory)
    if peak_rss is not None:
        metrics["peak_rss_mb"] = peak_rss
    if s.device.type == "cuda":  # without the reference step's copy of the parameters
        metrics["peak_memory_mb"] = (torch.cuda.max_memory_allocated(s.device) - s.clock.control_bytes) / 2**20
    return book.result(metrics, spec.device, s.impl)


class EagerEngine:
    """The eager engine: the specs of a group one after another, each a ``run``."""

    name = "eager"

    def run_group(self, specs: Sequence[RunSpec], data_dir: Path, events: RunEvents) -> Iterator[RunResult]:
        for spec in specs:
            key = spec.spec_hash()
            events.run_started(key)
            started = utc_now()
            try:
                result = run(spec, data_dir, lambda epoch, epochs, key=key: events.epoch_done(key, epoch, epochs))
            except UserError:
                raise  # missing or bad data: the user must fix it, every later run would fail the same way
            except Exception as exc:  # noqa: BLE001 - one broken run must not lose the suite
                result = failed_result(spec, started, describe(exc))
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()  # give the next run the memory an out-of-memory run held
            yield result


def describe(exc: BaseException) -> str:
    """A failed run's ``error``: the exception on its first line, then the traceback's tail."""
    return f"{type(exc).__name__}: {exc}".strip() + "\n" + traceback.format_exc(limit=-3)


def precision_context(precision: str, device: str) -> Callable[[], ContextManager[object]]:
    """What each forward pass runs in: ``torch.autocast`` with bfloat16 for ``bf16`` (UserError on a
    device without bfloat16 arithmetic: a GPU before Ampere), else nothing."""
    if precision != BF16:
        return contextlib.nullcontext
    require_bf16(device)
    return functools.partial(torch.autocast, device_type=torch.device(device).type, dtype=torch.bfloat16)


def _evaluate(s: Session) -> dict[str, float]:
    with s.precision():
        return s.task.evaluate(s.model, s.data)


def _lr(optimizer: torch.optim.Optimizer) -> float | None:
    lr = optimizer.param_groups[0].get("lr")
    return float(lr) if isinstance(lr, (int, float, torch.Tensor)) else None


def _clipper(options: TrainingOptions, params: list[torch.Tensor]) -> Callable[[], object] | None:
    """The per-step gradient clipping the options ask for, or None."""
    max_norm, max_value = options.clip_norm, options.clip_value
    if max_norm is not None:
        return lambda: torch.nn.utils.clip_grad_norm_(params, max_norm)
    if max_value is not None:
        return lambda: torch.nn.utils.clip_grad_value_(params, max_value)
    return None
