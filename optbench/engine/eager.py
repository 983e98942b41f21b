"""The run engine: ``run(spec) -> RunResult``, the one place a model is trained.

Timing covers the training steps only; data loading, model construction and evaluation are
outside the clock, and on CUDA the device is synchronised before every clock read.

Training options (``spec.training``, see ``optbench.protocol.training``) cost nothing per step when unused:
the learning rate is set once per epoch, before its first step, and only when a schedule or warm-up
is asked for; gradient clipping is the one per-step addition, inside the clock, since it is part
of the step. Early stopping and the time budget are checked once per epoch.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from datetime import datetime, UTC
from pathlib import Path

import torch

from optbench.devices import synchronize
from optbench.engine.steptime import StepClock
from optbench.fingerprint import environment
from optbench.optim.registry import build_optimizer, resolve_impl
from optbench.protocol.schedules import LRSchedule
from optbench.spec import CurvePoint, RunResult, RunSpec
from optbench.tasks import Task, TaskData, get_task
from optbench.protocol.training import TrainingOptions

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


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def run(spec: RunSpec, data_dir: Path = DEFAULT_DATA_DIR, on_epoch: EpochCallback | None = None) -> RunResult:
    """Train ``spec.optimizer`` on ``spec.task`` and measure it. Deterministic on CPU for a given spec
    (but for ``time_budget_s``, which depends on the clock).

    A non-finite training loss stops the run with status ``diverged``; ``early_stop_delta`` stops it
    with ``converged`` and ``time_budget_s`` with ``budget`` (both record ``stopped_epoch``). A run
    on the validation split records ``val_loss`` and ``val_<metric>`` instead of test metrics.
    """
    started = utc_now()
    task = get_task(spec.task)
    device = torch.device(spec.device)
    options: TrainingOptions = spec.training
    validation = options.split == "validation"
    data = load_data(task, spec.dataset, data_dir, spec.device, options.split)

    torch.manual_seed(spec.seed)
    model = task.build_model(data).to(device)
    impl = resolve_impl(spec.optimizer, spec.impl, device)
    optimizer = build_optimizer(spec.optimizer, model.parameters(), spec.hparams, impl)
    shuffle = torch.Generator().manual_seed(spec.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    schedule = LRSchedule(options, spec.epochs)
    base_lrs = [group.get("lr") for group in optimizer.param_groups]
    if schedule.active and any(not isinstance(lr, (int, float)) for lr in base_lrs):
        raise ValueError(f"optimizer '{spec.optimizer}' has no numeric learning rate 'lr' to schedule")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    clip = _clipper(options, params)
    clock = StepClock(params, device)

    n, bs = len(data.x_train), spec.batch_size
    steps_per_epoch = math.ceil(n / bs)
    x_train, y_train = data.x_train, data.y_train
    curve: list[CurvePoint] = []
    train_seconds, status, evaluation = 0.0, "ok", {}
    metrics_extra: dict[str, float | int | None] = {}
    for epoch in range(1, spec.epochs + 1):
        if schedule.active:
            factor = schedule.factor(epoch)
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * factor
        lr = _lr(optimizer)
        perm = torch.randperm(n, generator=shuffle).to(device)
        # Batch losses are kept as tensors and summed once per epoch: no extra kernel, and no
        # host-device sync, per step.
        losses: list[torch.Tensor] = []
        synchronize(device)
        t0 = time.perf_counter()
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            loss = task.loss(model(x_train[idx]), y_train[idx])
            loss.backward()
            if clip is not None:
                clip()
            clock.mark()
            optimizer.step()
            clock.mark()
            optimizer.zero_grad(set_to_none=True)  # grads start as None: clearing them after the step is the same
            clock.mark()
            clock.control()
            losses.append(loss.detach())
        synchronize(device)
        train_seconds += time.perf_counter() - t0 - clock.end_epoch()

        train_loss = torch.stack(losses).sum().item() / steps_per_epoch
        if not math.isfinite(train_loss):
            status = "diverged"
            curve.append(CurvePoint(epoch, train_seconds, train_loss, None, None, lr))
            break
        evaluation = task.evaluate(model, data)
        loss_now, metric_now = evaluation["test_loss"], evaluation[f"test_{task.metric_name}"]
        if validation:
            evaluation = {"val_loss": loss_now, f"val_{task.metric_name}": metric_now}
            curve.append(CurvePoint(epoch, train_seconds, train_loss, None, None, lr, loss_now, metric_now))
        else:
            curve.append(CurvePoint(epoch, train_seconds, train_loss, loss_now, metric_now, lr))
        if on_epoch:
            on_epoch(epoch, spec.epochs)
        # Plateau watches the validation loss, or the training loss: never the test split.
        schedule.observe(epoch, loss_now if validation else train_loss)
        if epoch < spec.epochs:
            stop = _early_stop(options, curve, train_seconds)
            if stop:
                status, metrics_extra = stop, {"stopped_epoch": epoch}
                break

    steps = len(curve) * steps_per_epoch
    metrics: dict[str, float | int | None] = {
        "train_seconds": train_seconds,
        "epochs_completed": len(curve) - 1 if status == "diverged" else len(curve),
        "steps": steps,
        "steps_per_s": steps / train_seconds if train_seconds > 0 else None,
        "samples_per_s": len(curve) * n / train_seconds if train_seconds > 0 else None,
        "final_train_loss": curve[-1].train_loss if curve else None,
        **(evaluation if status != "diverged" else {}),
        **metrics_extra,
        **clock.times.metrics(train_seconds),
    }
    if device.type == "cuda":  # without the reference step's copy of the parameters
        metrics["peak_memory_mb"] = (torch.cuda.max_memory_allocated(device) - clock.control_bytes) / 2**20
    return RunResult(
        spec=spec, status=status, metrics=metrics, curve=curve, environment=environment(spec.device),
        started_at=started, finished_at=utc_now(), run_id=uuid.uuid4().hex[:12], metric_name=task.metric_name,
        optimizer_impl=impl,
    )


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


def _early_stop(options: TrainingOptions, curve: list[CurvePoint], train_seconds: float) -> str | None:
    """``converged`` when the epoch training loss changed by less than ``early_stop_delta`` of the
    previous epoch's, ``budget`` when the training seconds reached ``time_budget_s``, else None."""
    delta = options.early_stop_delta
    if delta is not None and len(curve) >= 2:
        previous, current = curve[-2].train_loss, curve[-1].train_loss
        if previous is not None and current is not None and abs(current - previous) < delta * abs(previous):
            return "converged"
    if options.time_budget_s is not None and train_seconds >= options.time_budget_s:
        return "budget"
    return None
