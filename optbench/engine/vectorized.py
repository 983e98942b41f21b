"""The vectorized engine: the K specs of one group (same task, data, optimizer, epochs, batch size
and training options; different seeds and hyperparameter values) trained in one pass.

How it stays equal to the eager engine (``optbench.engine.eager``):

- every replica's model is built exactly as its eager run builds it (``torch.manual_seed(seed)``
  then ``Task.build_model``), and the K models are stacked with ``torch.func.stack_module_state``;
- one parameter leaf per hyperparameter value, stacked over the seeds that share it, and one
  optimizer per value built by the same registry call as eager: an elementwise optimizer's step on
  ``[K, ...]`` tensors is bit-identical to K separate steps (``OptimizerDef.elementwise``);
- the forward pass is ``functional_call`` under ``vmap``, the loss of each replica its batch mean,
  ``losses.sum().backward()`` gives each replica its own gradient;
- each replica draws its epoch permutation from its own seed's generator, so it sees the batches
  its eager run sees. What differs is the batched-matmul reduction order: about 1e-7 relative.

Per replica a ``RunBook`` (the eager engine's bookkeeping) records the curve and decides when the
replica stops (diverged, converged, budget). A stopped replica is frozen: it is carried through
the remaining steps (its arithmetic never touches the others') but nothing of it is recorded, and
its record is the state at the epoch it stopped, as eager's is.

Time: the group's training steps are timed once (device synchronised before each clock read);
a record's ``train_seconds`` is the group's seconds divided by the group size K (the cost of one
replica when K train together), ``group_train_seconds`` the group's own, ``group_size`` K.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.func import functional_call, stack_module_state, vmap

from optbench.devices import synchronize
from optbench.engine.base import RunEvents
from optbench.engine.bookkeeping import RunBook, failed_result, utc_now
from optbench.engine.eager import describe, load_data
from optbench.errors import UserError
from optbench.optim.construct import build_optimizer, resolve_impl
from optbench.optim.registry import get_optimizer
from optbench.protocol.schedules import LRSchedule
from optbench.spec import RunResult, RunSpec
from optbench.tasks import get_task

# Tasks whose models are small dense stacks that vmap well; the CNN gains little on a CPU.
TASKS = ("regression", "mlp")


def ineligible(spec: RunSpec) -> str | None:
    """Why ``spec`` cannot be trained by the vectorized engine, or None when it can."""
    if spec.task not in TASKS:
        return f"task '{spec.task}' is not vectorized (only {', '.join(TASKS)})"
    if not get_optimizer(spec.optimizer).elementwise:
        return (f"optimizer '{spec.optimizer}' is not declared elementwise (a step on stacked replicas "
                "would not equal separate steps)")
    if resolve_impl(spec.optimizer, spec.impl, spec.device) == "fused":
        return "the fused implementation is not bit-identical on stacked replicas"
    t = spec.training
    if t.clip_norm is not None:
        return "gradient norm clipping is per run, not elementwise"
    if t.schedule == "plateau":
        return "the plateau schedule follows each run's own loss"
    return None


def check_group(specs: Sequence[RunSpec]) -> None:
    """Raise UserError (one line, what to do) when the group cannot be vectorized."""
    for spec in specs:
        if spec.engine != "vectorized":
            raise ValueError(f"spec {spec.label()} is for the {spec.engine} engine")
        why = ineligible(spec)
        if why is not None:
            raise UserError(f"--engine vectorized cannot run {spec.label()} on {spec.task}: {why}; "
                            "use --engine auto or eager")


class VectorizedEngine:
    """Trains a whole group in one pass; a group of one is still trained the vectorized way."""

    name = "vectorized"

    def run_group(self, specs: Sequence[RunSpec], data_dir: Path, events: RunEvents) -> Iterator[RunResult]:
        check_group(specs)
        started = utc_now()
        try:
            results = train_group(list(specs), data_dir, events)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken group is K failed records, not a lost suite
            error = describe(exc)
            results = [failed_result(spec, started, error) for spec in specs]
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        yield from results


def _hkey(spec: RunSpec) -> str:
    return repr(sorted(spec.hparams.items()))


def train_group(specs: list[RunSpec], data_dir: Path, events: RunEvents | None = None) -> list[RunResult]:
    """Train ``specs`` (one group) together; one result per spec, in the order given."""
    events = events or RunEvents()
    first = specs[0]
    task = get_task(first.task)
    device = torch.device(first.device)
    data = load_data(task, first.dataset, data_dir, first.device, first.training.split)
    # Replicas ordered by hyperparameter value, so each value's seeds are one contiguous slice.
    values: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        values.setdefault(_hkey(spec), []).append(i)
    order = [i for idx in values.values() for i in idx]
    replicas = [specs[i] for i in order]
    k = len(replicas)

    models = []
    for spec in replicas:
        torch.manual_seed(spec.seed)
        models.append(task.build_model(data).to(device))
    stacked, buffers = stack_module_state(models)
    if buffers:
        raise ValueError(f"task '{task.name}' has buffers; the vectorized engine trains buffer-free models only")
    base = models[0].to("meta")
    names = list(stacked)
    impl = resolve_impl(first.optimizer, first.impl, device)
    leaves: list[dict[str, torch.Tensor]] = []
    optimizers: list[torch.optim.Optimizer] = []
    start = 0
    for idx in values.values():
        leaf = {n: stacked[n][start : start + len(idx)].detach().clone().requires_grad_(True) for n in names}
        start += len(idx)
        leaves.append(leaf)
        optimizers.append(build_optimizer(first.optimizer, list(leaf.values()), specs[idx[0]].hparams, impl))
    schedule = LRSchedule(first.training, first.epochs)
    base_lrs = [[g.get("lr") for g in opt.param_groups] for opt in optimizers]
    if schedule.active and any(not isinstance(lr, (int, float)) for lrs in base_lrs for lr in lrs):
        raise ValueError(f"optimizer '{first.optimizer}' has no numeric learning rate 'lr' to schedule")
    all_params = [p for leaf in leaves for p in leaf.values()]
    clip_value = first.training.clip_value
    generators = [torch.Generator().manual_seed(spec.seed) for spec in replicas]
    books = [RunBook(spec, task.metric_name) for spec in replicas]
    keys = [spec.spec_hash() for spec in replicas]
    for key in keys:
        events.run_started(key)
    active = [True] * k

    def replica_loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return task.loss(functional_call(base, params, (x,)), y)

    batched_loss = vmap(replica_loss)
    x_train, y_train = data.x_train, data.y_train
    n = len(x_train)
    batch_size = first.batch_size
    group_seconds = 0.0
    scratch = task.build_model(data).to(device)
    for epoch in range(1, first.epochs + 1):
        if schedule.active:
            factor = schedule.factor(epoch)
            for opt, lrs in zip(optimizers, base_lrs):
                for g, lr in zip(opt.param_groups, lrs):
                    g["lr"] = lr * factor
        lrs = [opt.param_groups[0].get("lr") for opt, idx in zip(optimizers, values.values()) for _ in idx]
        perms = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
        losses: list[torch.Tensor] = []
        synchronize(device)
        t0 = time.perf_counter()
        for s in range(0, n, batch_size):
            idx = perms[:, s : s + batch_size]
            params = {name: torch.cat([leaf[name] for leaf in leaves]) if len(leaves) > 1 else leaves[0][name]
                      for name in names}
            loss = batched_loss(params, x_train[idx], y_train[idx])
            loss.sum().backward()
            if clip_value is not None:
                torch.nn.utils.clip_grad_value_(all_params, clip_value)
            for opt in optimizers:
                opt.step()
                opt.zero_grad(set_to_none=True)
            losses.append(loss.detach())
        synchronize(device)
        seconds = time.perf_counter() - t0
        group_seconds += seconds
        train_losses = (torch.stack(losses).sum(dim=0) / len(losses)).tolist()
        for r in range(k):
            if not active[r]:
                continue
            replica_lr = lrs[r]
            replica_lr = float(replica_lr) if isinstance(replica_lr, (int, float, torch.Tensor)) else None
            going = books[r].record_epoch(epoch, seconds / k, train_losses[r], replica_lr,
                                          lambda r=r: _evaluate(task, scratch, leaves, values, r, data))
            if books[r].status != "diverged":
                events.epoch_done(keys[r], epoch, first.epochs)
            active[r] = going
        if not any(active):
            break

    steps_per_epoch = math.ceil(n / batch_size)
    results: list[RunResult | None] = [None] * k
    for r, book in enumerate(books):
        extra = {"group_size": k, "group_train_seconds": group_seconds}
        result = book.result(book.metrics(steps_per_epoch, n, extra), first.device, impl)
        results[order[r]] = result
    return [r for r in results if r is not None]


@torch.no_grad()
def _evaluate(task: Any, scratch: torch.nn.Module, leaves: list[dict[str, torch.Tensor]],
              values: dict[str, list[int]], r: int, data: Any) -> dict[str, float]:
    """Replica ``r``'s held-out evaluation, by the task's own ``evaluate`` on its parameters."""
    for leaf, idx in zip(leaves, values.values()):
        if r < len(idx):
            for name, p in scratch.named_parameters():
                p.copy_(leaf[name][r])
            return task.evaluate(scratch, data)
        r -= len(idx)
    raise IndexError(r)
