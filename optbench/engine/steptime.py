"""The optimizer's own cost, measured inside the training loop against interleaved controls.

Whole-run time hides the optimizer (on the CNN, forward and backward dominate) and follows the
machine's load. So every training step is split by clock marks::

    forward, backward, clip | mark | reference step | mark | empty step | mark | step() | mark | zero_grad() | mark

Two controls run just before the optimizer step, microseconds apart from it, so they see the same
machine state (clock speed, a neighbour on the other hyperthread). They come *before* it, after
backward, so the cache they find is left by code that does not change when the optimizer does: timed
after the step, they would inherit its cache footprint, and an optimizer that pollutes the cache
more would make its own unit look slower and hide part of its cost (a busy-wait of syscalls made a
2x step read as 1.6x that way). The controls are:

- the *reference step*: one plain SGD update (``w -= 0.001 * p``, torch's defaults) on private copies
  of the model's parameters; it costs what a minimal optimizer costs on this model and never
  touches training;
- the *empty step*: a ``torch.optim.Optimizer`` whose ``step()`` does nothing, over the same
  parameters, so it costs only the fixed per-step machinery every optimizer pays (the ``step()``
  wrapper, its hooks and profiling scope). Extra work in an optimizer does not grow it.

The measure ``optbench check`` compares is

    step_cost = median over steps of (step - e) / reference,  e = the run's median empty step

the optimizer's own work, net of the fixed overhead, in units of the reference step: an optimizer
whose update does 1.5x the work shows as about 1.5x against its baseline (1.48-1.67x in
``benchmarks/bench_check.py`` on every task at its load), where the gross ratio (step over
reference, ``gross_step_cost``; ``step_cost`` before this measure) dilutes it by the overhead
(1.26-1.28x for 1.5x on cifar10 when the issue was filed). The ratio moves with the machine's
state by up to about a tenth on the small models (the MLP's reads 0.91-0.99x of its baseline beside
three CPU burners and 1.03-1.16x without), since the reference and the optimizer's step are not the
same mix of memory and arithmetic; more load than that moves it further. A baseline of the earlier measure (gross, wall time, controls after the step) holds
another quantity: check leaves it out until it is refreshed (``optbench.check.baseline.STEP_CLOCK``). The
denominator stays the whole reference step: a difference of two small times would make a noisy
unit on a small model, and the unit cancels in check's current-over-baseline ratio anyway. A machine
that is uniformly slower cancels out, and a slow step is an outlier the median ignores.

Clocks: on CPU the controls and the steps are timed in CPU time of the training thread
(``time.thread_time``): a step preempted by another process (a busy shared machine) does not count
the time it waited, so load cannot inflate the measure; ``train_seconds`` stays wall time, and the
controls' wall time is taken out of it (``end_epoch``). On CUDA the marks are CUDA events recorded
on the stream, read once per epoch after the epoch's synchronise (no per-step host-device sync).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

CONTROL_LR = 1e-3


class EmptyStep(torch.optim.Optimizer):
    """An optimizer whose ``step()`` does nothing: the fixed per-step cost of torch's optimizer machinery."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        super().__init__(params, {})

    @torch.no_grad()
    def step(self, closure=None):
        return None


@dataclass
class StepTimes:
    """Per-step seconds of the whole run, in step order (CPU time on CPU, device time on CUDA)."""

    step: list[float] = field(default_factory=list)
    zero_grad: list[float] = field(default_factory=list)
    control: list[float] = field(default_factory=list)
    empty: list[float] = field(default_factory=list)

    def metrics(self, train_seconds: float) -> dict[str, float | None]:
        """``optimizer_seconds`` (``step()`` plus ``zero_grad()``), ``control_seconds`` (the reference
        steps; like the empty steps, not in ``train_seconds``), ``optimizer_share`` (of ``train_seconds``) and ``step_cost``
        (``step()`` net of the empty step over the reference step, see the module docstring); None where
        undefined."""
        opt = sum(self.step) + sum(self.zero_grad)
        return {
            "optimizer_seconds": opt,
            "control_seconds": sum(self.control),
            "optimizer_share": opt / train_seconds if train_seconds > 0 else None,
            "step_cost": step_cost(self.step, self.control, self.empty),
        }


def gross_step_cost(step: list[float], control: list[float]) -> float | None:
    """The median per-step ratio of optimizer step to reference step, gross of the fixed overhead
    (what ``step_cost`` was before the empty step; for comparison)."""
    ratios = [s / c for s, c in zip(step, control) if c > 0]
    return statistics.median(ratios) if ratios else None


def step_cost(step: list[float], control: list[float], empty: list[float]) -> float | None:
    """The median per-step ratio of the optimizer step less the run's median empty step, to the
    reference step; None without positive samples (a step as cheap as the empty one)."""
    if not empty:
        return None
    e = statistics.median(empty)
    ratios = [(s - e) / c for s, c in zip(step, control) if c > 0 and s > e]
    return statistics.median(ratios) if ratios else None


class StepClock:
    """Five marks per step (``control()``'s three: before the reference step, after it, after the
    empty step; then after ``step()`` and after ``zero_grad()``); ``end_epoch()`` after the epoch's
    synchronise collects them."""

    MARKS = 5

    def __init__(self, params: list[torch.Tensor], device: torch.device) -> None:
        with torch.no_grad():
            self._shadow = [p.detach().clone().requires_grad_(p.requires_grad) for p in params]
            for w in self._shadow:
                w.grad = w.clone()  # a fixed "gradient": the reference step never reads the model
        # torch's defaults, as "auto" resolves them: for-loop on CPU, foreach on CUDA.
        self._reference = torch.optim.SGD(self._shadow, lr=CONTROL_LR)
        self._empty = EmptyStep(self._shadow)
        self.control_bytes = 2 * sum(t.numel() * t.element_size() for t in self._shadow)
        self._cuda = device.type == "cuda"
        # Events go on the stream the training runs on, which is that device's current stream.
        self._stream = torch.cuda.current_stream(device) if self._cuda else None
        self._events: list[torch.cuda.Event] = []
        self._marks: list[float] = []
        self._wall = 0.0
        self._n = 0
        self.times = StepTimes()

    def mark(self) -> None:
        """After ``optimizer.step()`` and after ``zero_grad()``; ``control()`` marks itself."""
        if self._cuda:
            if self._n == len(self._events):
                self._events.append(torch.cuda.Event(enable_timing=True))
            self._events[self._n].record(self._stream)
        else:
            self._marks.append(time.thread_time())
        self._n += 1

    def control(self) -> None:
        """Just before ``optimizer.step()``: a mark, the reference step and the empty step, each
        followed by its mark (the last one is the step's start)."""
        start = time.perf_counter()
        self.mark()
        self._reference.step()
        self.mark()
        self._empty.step()
        self.mark()
        self._wall += time.perf_counter() - start

    def end_epoch(self) -> float:
        """Collect this epoch's per-step times (call after synchronising); returns the wall seconds
        the controls took, to be taken out of the epoch's training time."""
        if self._cuda:
            marks = [0.0] * self._n
            for i in range(1, self._n):  # elapsed_time is in milliseconds; only differences matter
                marks[i] = marks[i - 1] + self._events[i - 1].elapsed_time(self._events[i]) / 1000
        else:
            marks = self._marks
        k, t = self.MARKS, self.times
        t.control += [marks[i + 1] - marks[i] for i in range(0, self._n, k)]
        t.empty += [marks[i + 2] - marks[i + 1] for i in range(0, self._n, k)]
        t.step += [marks[i + 3] - marks[i + 2] for i in range(0, self._n, k)]
        t.zero_grad += [marks[i + 4] - marks[i + 3] for i in range(0, self._n, k)]
        wall, self._wall = self._wall, 0.0
        steps = self._n // k
        if self._cuda and steps:  # the controls' device time; their host time overlaps the queued work
            wall = sum(t.control[-steps:]) + sum(t.empty[-steps:])
        self._marks, self._n = [], 0
        return wall
