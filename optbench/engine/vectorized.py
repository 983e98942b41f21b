"""The vectorized engine: the K specs of one group (same task, data, optimizer, epochs, batch size
and training options; different seeds and hyperparameter values) trained in one pass.

How it stays equal to the eager engine (``optbench.engine.eager``):

- every replica's model is built exactly as its eager run builds it (``torch.manual_seed(seed)``
  then ``Task.build_model``), and the K models are stacked with ``torch.func.stack_module_state``;
- a group of several hyperparameter values of an optimizer ``optbench.engine.rowwise`` covers
  (sgd, momentum, nesterov, rmsprop, adagrad, adam, adamw, amsgrad) is one leaf per parameter for
  the whole group, stepped by ``RowwiseOptimizer`` with each row's own hyperparameters,
  bit-identical to torch.optim on each replica alone;
- otherwise one parameter leaf per hyperparameter value, stacked over the seeds that share it, and
  one optimizer per value built by the same registry call as eager: an elementwise optimizer's step
  on ``[K, ...]`` tensors is bit-identical to K separate steps (``OptimizerDef.elementwise``);
- the forward pass and the loss are batched over replicas (``optbench.engine.stacked``: one
  ``baddbmm`` per Linear layer, ``vmap`` for other models), the loss of each replica its batch
  mean, ``losses.sum().backward()`` gives each replica its own gradient;
- each replica draws its epoch permutation from its own seed's generator, so it sees the batches
  its eager run sees. What differs is the batched-matmul reduction order: about 1e-7 relative
  after one epoch, growing with training where it reaches the parameters (benchmarks/bench_equivalence.py:
  bit-identical final test RMSE on regression, up to 1.4e-2 relative on the MLP at its default budget).

Per step the loop does what a hand-written stacked loop does and no more: each epoch's rows are
gathered for all replicas by one ``index_select`` per block of batches (not per replica per step),
batch losses stay on the device until the epoch ends (one host read per epoch, also on CUDA), and
nothing runs per replica in Python. Evaluation is one batched pass over all replicas, outside
the clock, as eager's is.

Per replica a ``RunBook`` (the eager engine's bookkeeping) records the curve and decides when the
replica stops (diverged, converged, budget). A stopped replica leaves the stack: its rows are cut
from the parameters and from the optimizer's per-element state, so the others go on without it
(exact: the step is elementwise). Its record is the state at the epoch it stopped, as eager's is.
An optimizer with state that is neither per element nor scalar cannot be cut; its stopped replicas
stay in the stack, trained but never recorded.

Threads: the group trains under the thread policy (``optbench.engine.threads``): one torch thread
where its per-step work is small, so that no operation waits for a descheduled second thread.

Time: the group's training steps are timed once per epoch (device synchronised before each clock
read); each epoch's seconds are shared equally among the replicas trained in it, so a record's
``train_seconds`` is the cost of that run when its group trained together (the group's seconds
divided by K when no replica stopped early), the records' ``train_seconds`` add up to the group's,
``group_train_seconds`` is the group's own and ``group_size`` K.

Memory (``optbench.engine.memory``): a run's ``optimizer_state_bytes`` and ``parameter_bytes`` are
its share of its value's stacked state and leaves (per-element state 1/K, a scalar ``step`` fully),
equal to its eager run's; ``peak_rss_mb`` on CPU is the whole group's peak, on every run of it.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.func import stack_module_state

from optbench.devices import synchronize
from optbench.engine.base import RunEvents
from optbench.engine.bookkeeping import RunBook, failed_result, utc_now
from optbench.engine.eager import describe, load_data
from optbench.engine.memory import PeakRSS, memory_metrics
from optbench.engine.rowwise import RowwiseOptimizer, unsupported
from optbench.engine.threads import ThreadScope, thread_policy, work_of
from optbench.engine.stacked import Forward, Loss, stacked_forward, stacked_loss
from optbench.errors import UserError
from optbench.optim.construct import build_optimizer, resolve_impl
from optbench.optim.registry import get_optimizer
from optbench.engine.schedules import LRSchedule
from optbench.spec import RunResult, RunSpec
from optbench.spec.vocabulary import FLOAT32
from optbench.tasks import Task, TaskData, get_task
from optbench.optim.registry import spec_label

# Tasks whose models are small dense stacks that vmap well; the CNN gains little on a CPU.
TASKS = ("regression", "mlp")
# Why another task is not, where there is more to say than that.
NOT_VECTORIZED = {"charlm": "its per-position outputs would need a stacked loss and evaluation of their own, "
                            "and vmap over attention is untried"}


def ineligible(spec: RunSpec) -> str | None:
    """Why ``spec`` cannot be trained by the vectorized engine, or None when it can."""
    if spec.task not in TASKS:
        why = NOT_VECTORIZED.get(spec.task)
        return f"task '{spec.task}' is not vectorized (only {', '.join(TASKS)})" + (f": {why}" if why else "")
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
    if t.precision != FLOAT32:
        return f"--precision {t.precision} (autocast) is trained by the eager engine only"
    return None


def check_group(specs: Sequence[RunSpec]) -> None:
    """Raise UserError (one line, what to do) when the group cannot be vectorized."""
    for spec in specs:
        if spec.engine != "vectorized":
            raise ValueError(f"spec {spec_label(spec)} is for the {spec.engine} engine")
        why = ineligible(spec)
        if why is not None:
            raise UserError(f"--engine vectorized cannot run {spec_label(spec)} on {spec.task}: {why}; "
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


# Rows x features of training data gathered at once for the whole stack: each epoch's permuted
# rows are gathered in blocks of whole batches (one indexing op per block, not one per replica
# per step) of at most this many elements, which bounds the copy's memory on large datasets.
GATHER_ELEMENTS = 2**24
# Replicas x rows evaluated in one batched pass (bounds the activations' memory).
EVAL_ROWS = 2**18


@dataclass
class ValueGroup:
    """The replicas that share one hyperparameter value: one leaf ``[k, ...]`` per parameter name
    (row i is replica ``members[i]``) and one optimizer over those leaves."""

    members: list[int]
    leaf: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer | RowwiseOptimizer
    base_lrs: list[Any]

    def set_lr_factor(self, factor: float) -> None:
        """Every member at its base learning rate times ``factor``."""
        if isinstance(self.optimizer, RowwiseOptimizer):
            self.optimizer.set_lr_factor(factor)
            return
        for pg, lr in zip(self.optimizer.param_groups, self.base_lrs):
            pg["lr"] = lr * factor

    def lrs(self) -> list[float | None]:
        """Each member's learning rate now, in ``members`` order."""
        if isinstance(self.optimizer, RowwiseOptimizer):
            return self.optimizer.lrs()
        return [_lr(self.optimizer)] * len(self.members)

    def shrink(self, keep: list[int]) -> None:
        """Keep only rows ``keep`` (positions in ``members``): the leaves and every per-element
        optimizer state tensor are sliced, scalar state (the step count) is kept as it is."""
        index = torch.tensor(keep, device=next(iter(self.leaf.values())).device)
        renamed = {id(p): name for name, p in self.leaf.items()}
        for group in self.optimizer.param_groups:
            for i, old in enumerate(group["params"]):
                new = old.detach().index_select(0, index).requires_grad_(True)
                state = self.optimizer.state.pop(old, {})
                self.optimizer.state[new] = {key: value.index_select(0, index) if _per_element(value, old) else value
                                             for key, value in state.items()}
                group["params"][i] = new
                self.leaf[renamed[id(old)]] = new
        if isinstance(self.optimizer, RowwiseOptimizer):
            self.optimizer.keep(index)
        self.members = [self.members[i] for i in keep]

    def can_shrink(self) -> bool:
        """Whether every optimizer state tensor is per element (the parameter's shape) or a scalar:
        then dropping rows is exact. True for every elementwise torch optimizer; a plugin with other
        state keeps its stopped replicas in the stack instead (masked: trained, never recorded)."""
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                for value in self.optimizer.state.get(p, {}).values():
                    if isinstance(value, torch.Tensor) and value.dim() > 0 and not _per_element(value, p):
                        return False
        return True


def _per_element(value: Any, param: torch.Tensor) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape == param.shape


def _stacked_params(groups: list[ValueGroup], names: list[str]) -> dict[str, torch.Tensor]:
    """The whole stack's parameters: the one group's leaves, or the groups' leaves concatenated
    (part of the autograd graph, so each leaf gets its rows' gradient)."""
    if len(groups) == 1:
        return groups[0].leaf
    return {name: torch.cat([g.leaf[name] for g in groups]) for name in names}


def train_group(specs: list[RunSpec], data_dir: Path, events: RunEvents | None = None) -> list[RunResult]:
    """Train ``specs`` (one group) together; one result per spec, in the order given. Torch's thread
    count is the thread policy's for the group's work (``optbench.engine.threads``) until it returns."""
    with thread_policy() as threads:
        return _train_group(specs, data_dir, events, threads)


def _train_group(specs: list[RunSpec], data_dir: Path, events: RunEvents | None, threads: ThreadScope) -> list[RunResult]:
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
        # What torch.manual_seed(seed) does for a model built on the CPU (as eager builds it),
        # without queueing a lazy CUDA seed (with its stack trace) per replica.
        torch.default_generator.manual_seed(spec.seed)
        models.append(task.build_model(data).to(device))
    threads.choose(work_of(models[0], first.batch_size, k), device)
    stacked, buffers = stack_module_state(models)
    if buffers:
        raise ValueError(f"task '{task.name}' has buffers; the vectorized engine trains buffer-free models only")
    base = models[0].to("meta")
    del models
    names = list(stacked)
    forward, loss_fn = stacked_forward(base), stacked_loss(task)
    impl = resolve_impl(first.optimizer, first.impl, device)
    groups: list[ValueGroup] = []
    start = 0
    rows = [spec.hparams for spec in replicas]
    if len(values) > 1 and unsupported(first.optimizer, rows, impl, device) is None:
        # One leaf per parameter for the whole group, each row stepped with its own hyperparameters.
        leaf = {n: stacked[n].detach().clone().requires_grad_(True) for n in names}
        groups.append(ValueGroup(list(range(k)), leaf, RowwiseOptimizer(first.optimizer, list(leaf.values()), rows,
                                                                         impl), []))
    for idx in [] if groups else values.values():
        members = list(range(start, start + len(idx)))
        leaf = {n: stacked[n][start : start + len(idx)].detach().clone().requires_grad_(True) for n in names}
        start += len(idx)
        optimizer = build_optimizer(first.optimizer, list(leaf.values()), specs[idx[0]].hparams, impl)
        groups.append(ValueGroup(members, leaf, optimizer, [g.get("lr") for g in optimizer.param_groups]))
    del stacked
    schedule = LRSchedule(first.training, first.epochs)
    if schedule.active and any(not isinstance(lr, (int, float)) for g in groups for lr in g.base_lrs):
        raise ValueError(f"optimizer '{first.optimizer}' has no numeric learning rate 'lr' to schedule")
    clip_value = first.training.clip_value
    generators = [torch.Generator().manual_seed(spec.seed) for spec in replicas]
    books = [RunBook(spec, task.metric_name) for spec in replicas]
    keys = [spec.spec_hash() for spec in replicas]
    for key in keys:
        events.run_started(key)
    frozen: set[int] = set()  # stopped replicas still in the stack (an optimizer that cannot shrink)

    x_train, y_train = data.x_train, data.y_train
    n = len(x_train)
    batch_size = first.batch_size
    group_seconds = 0.0
    memory: dict[int, dict[str, float]] = {}  # replica -> its optimizer state and parameter bytes
    rss = PeakRSS()
    if device.type == "cpu":
        rss.start()
    for epoch in range(1, first.epochs + 1):
        if schedule.active:
            factor = schedule.factor(epoch)
            for g in groups:
                g.set_lr_factor(factor)
        stack = [r for g in groups for r in g.members]
        lrs = [lr for g in groups for lr in g.lrs()]
        perms = torch.stack([torch.randperm(n, generator=generators[r]) for r in stack]).to(device)
        block = _block_rows(len(stack), x_train, y_train, batch_size)
        losses: list[torch.Tensor] = []
        leaves = [p for g in groups for p in g.leaf.values()]  # what gradient clipping sees this epoch
        synchronize(device)
        t0 = time.perf_counter()
        for b in range(0, n, block):
            rows = perms[:, b : b + block]
            xs, ys = _gather(x_train, rows), _gather(y_train, rows)
            for s in range(0, rows.shape[1], batch_size):
                loss = loss_fn(forward(_stacked_params(groups, names), xs[:, s : s + batch_size]),
                               ys[:, s : s + batch_size])
                loss.sum().backward()
                if clip_value is not None:
                    torch.nn.utils.clip_grad_value_(leaves, clip_value)
                for g in groups:
                    g.optimizer.step()
                    g.optimizer.zero_grad(set_to_none=True)
                losses.append(loss.detach())
        synchronize(device)
        seconds = time.perf_counter() - t0
        group_seconds += seconds
        if epoch == 1:  # each value's optimizer state after its first steps, per replica (clock stopped)
            for g in groups:
                counted = memory_metrics([g.optimizer], g.leaf.values(), len(g.members))
                memory.update({r: counted for r in g.members})
        train_losses = (torch.stack(losses).sum(dim=0) / len(losses)).tolist()
        # Batched evaluation: once per epoch, and only when some replica is evaluated.
        held_out = functools.cache(lambda: _evaluate(task, forward, loss_fn, _stacked_params(groups, names), data))
        stopped: set[int] = set()
        for pos, r in enumerate(stack):
            if r in frozen:
                continue
            # Each replica's share of the epoch: its seconds over the replicas trained in it.
            going = books[r].record_epoch(epoch, seconds / len(stack), train_losses[pos], lrs[pos],
                                          lambda pos=pos: held_out()[pos])
            if books[r].status != "diverged":
                events.epoch_done(keys[r], epoch, first.epochs)
            if not going:
                stopped.add(r)
        if stopped:
            groups = _drop(groups, stopped | frozen, frozen)
        if not groups:
            break

    steps_per_epoch = math.ceil(n / batch_size)
    peak_rss = rss.peak_mb()
    extra = {"group_size": k, "group_train_seconds": group_seconds,
             **({"peak_rss_mb": peak_rss} if peak_rss is not None else {})}
    by_replica = [book.result(book.metrics(steps_per_epoch, n, {**extra, **memory.get(r, {})}), first.device, impl)
                  for r, book in enumerate(books)]
    return [by_replica[r] for r in sorted(range(k), key=order.__getitem__)]  # back in the order given


def _drop(groups: list[ValueGroup], stopped: set[int], frozen: set[int]) -> list[ValueGroup]:
    """The groups without their ``stopped`` replicas: a group left empty goes, one whose optimizer
    cannot shrink keeps them (added to ``frozen``), the others shrink."""
    kept = []
    for g in groups:
        keep = [i for i, r in enumerate(g.members) if r not in stopped]
        if not keep:
            continue
        if len(keep) < len(g.members):
            if g.can_shrink():
                g.shrink(keep)
            else:
                frozen.update(r for r in g.members if r in stopped)
        kept.append(g)
    if all(r in frozen for g in kept for r in g.members):
        return []
    return kept


def _gather(data: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``data[rows]`` for ``rows`` ``[K, m]``: ``[K, m, ...]``. One ``index_select`` on the flat row
    indices, several times faster on the CPU than advanced indexing with a 2-D index (and rows of
    one element, as the regression's one feature, are gathered as a vector: faster still)."""
    flat = data.view(-1) if data[0].numel() == 1 and data.is_contiguous() else data
    return flat.index_select(0, rows.reshape(-1)).view(*rows.shape, *data.shape[1:])


def _block_rows(k: int, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> int:
    """Rows per gathered block: whole batches, at most ``GATHER_ELEMENTS`` elements for ``k`` replicas."""
    row = (x[0].numel() + y[0].numel()) * k
    return batch_size * max(1, GATHER_ELEMENTS // (row * batch_size))


def _lr(optimizer: torch.optim.Optimizer) -> float | None:
    lr = optimizer.param_groups[0].get("lr")
    return float(lr) if isinstance(lr, (int, float, torch.Tensor)) else None


@torch.no_grad()
def _evaluate(task: Task, forward: Forward, loss_fn: Loss, params: dict[str, torch.Tensor],
              data: TaskData) -> list[dict[str, float]]:
    """Every replica's held-out evaluation in one batched pass: ``Task.evaluate``'s dicts, in stack
    order (each replica's mean loss over the same rows, its accuracy for classification)."""
    x, y = data.x_test, data.y_test
    k, n = len(next(iter(params.values()))), len(x)
    rows = max(1, min(task.eval_batch_size, EVAL_ROWS // k))
    loss_sum = torch.zeros(k, device=x.device)
    correct = torch.zeros(k, device=x.device)
    for i in range(0, n, rows):
        xb, yb = x[i : i + rows], y[i : i + rows]
        yk = yb.expand(k, *yb.shape)
        out = forward(params, xb.expand(k, *xb.shape))
        loss_sum += loss_fn(out, yk) * len(xb)
        if task.kind == "classification":
            correct += (out.argmax(dim=-1) == yk).sum(dim=1)
    accuracy = [c / n for c in correct.tolist()] if task.kind == "classification" else [math.nan] * k
    return [task.held_out_metrics(s / n, a, data) for s, a in zip(loss_sum.tolist(), accuracy)]
