"""The run engine: ``run(spec) -> RunResult``, the one place a model is trained.

Timing covers the training steps only; data loading, model construction and evaluation are
outside the clock, and on CUDA the device is synchronised before every clock read.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from optbench.devices import synchronize
from optbench.fingerprint import environment
from optbench.optimizers import build_optimizer, resolve_impl
from optbench.spec import CurvePoint, RunResult, RunSpec
from optbench.tasks import Task, TaskData, get_task

DEFAULT_DATA_DIR = Path("data")

# (task, dataset, data dir, device) -> TaskData: data is prepared once per process.
_DATA_CACHE: dict[tuple[str, str, str, str], TaskData] = {}

EpochCallback = Callable[[int, int], None]


def load_data(task: Task, dataset: str, data_dir: Path, device: str) -> TaskData:
    key = (task.name, dataset, str(Path(data_dir).resolve()), device)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = task.load(dataset, Path(data_dir)).to(torch.device(device))
    return _DATA_CACHE[key]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run(spec: RunSpec, data_dir: Path = DEFAULT_DATA_DIR, on_epoch: EpochCallback | None = None) -> RunResult:
    """Train ``spec.optimizer`` on ``spec.task`` and measure it. Deterministic on CPU for a given spec.

    A non-finite training loss stops the run with status ``diverged``.
    """
    started = utc_now()
    task = get_task(spec.task)
    device = torch.device(spec.device)
    data = load_data(task, spec.dataset, data_dir, spec.device)

    torch.manual_seed(spec.seed)
    model = task.build_model(data).to(device)
    impl = resolve_impl(spec.optimizer, spec.impl, device)
    optimizer = build_optimizer(spec.optimizer, model.parameters(), spec.hparams, impl)
    shuffle = torch.Generator().manual_seed(spec.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    n, bs = len(data.x_train), spec.batch_size
    steps_per_epoch = math.ceil(n / bs)
    x_train, y_train = data.x_train, data.y_train
    curve: list[CurvePoint] = []
    train_seconds, status, evaluation = 0.0, "ok", {}
    for epoch in range(1, spec.epochs + 1):
        perm = torch.randperm(n, generator=shuffle).to(device)
        loss_sum = torch.zeros((), device=device)
        synchronize(device)
        t0 = time.perf_counter()
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            optimizer.zero_grad(set_to_none=True)
            loss = task.loss(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
        synchronize(device)
        train_seconds += time.perf_counter() - t0

        train_loss = loss_sum.item() / steps_per_epoch
        if not math.isfinite(train_loss):
            status = "diverged"
            curve.append(CurvePoint(epoch, train_seconds, train_loss, None, None))
            break
        evaluation = task.evaluate(model, data)
        curve.append(CurvePoint(epoch, train_seconds, train_loss, evaluation["test_loss"],
                                evaluation[f"test_{task.metric_name}"]))
        if on_epoch:
            on_epoch(epoch, spec.epochs)

    steps = len(curve) * steps_per_epoch
    metrics: dict[str, float | int | None] = {
        "train_seconds": train_seconds,
        "epochs_completed": len(curve) if status == "ok" else len(curve) - 1,
        "steps": steps,
        "steps_per_s": steps / train_seconds if train_seconds > 0 else None,
        "samples_per_s": len(curve) * n / train_seconds if train_seconds > 0 else None,
        "final_train_loss": curve[-1].train_loss if curve else None,
        **(evaluation if status == "ok" else {}),
    }
    if device.type == "cuda":
        metrics["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return RunResult(
        spec=spec, status=status, metrics=metrics, curve=curve, environment=environment(spec.device),
        started_at=started, finished_at=utc_now(), run_id=uuid.uuid4().hex[:12], metric_name=task.metric_name,
        optimizer_impl=impl,
    )
