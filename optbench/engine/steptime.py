"""The optimizer's own cost, measured inside the training loop against an interleaved control.

Whole-run time hides the optimizer (on the CNN, forward and backward dominate) and follows the
machine's load. So every training step is split by three clock marks::

    forward, backward, clip | mark | optimizer.step(), zero_grad() | mark | reference step | mark

The *reference step* is the control: one plain SGD update (``w -= 0.001 * p``, a for-loop over
tensors) on private copies of the model's parameters, so it costs what a minimal optimizer costs on
this model and never touches training. Measured a few microseconds after the optimizer step, it
sees the same machine state (clock speed, cache, a busy neighbour), so

    step_cost = median over steps of (optimizer time / reference time)

is the optimizer's cost in units of the reference step: a machine that is uniformly slower
cancels out, a preempted step is an outlier the median ignores, and an optimizer whose step
costs 2x shows as 2x. ``optbench check`` compares ``step_cost``, not seconds.

On CPU the marks are ``time.perf_counter()``; on CUDA they are CUDA events recorded on the
stream, read once per epoch after the epoch's synchronise (no per-step host-device sync). The
reference step's time is kept out of ``train_seconds``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

CONTROL_LR = 1e-3


@dataclass
class StepTimes:
    """Per-step seconds of the whole run, in step order."""

    step: list[float] = field(default_factory=list)
    zero_grad: list[float] = field(default_factory=list)
    control: list[float] = field(default_factory=list)

    def metrics(self, train_seconds: float) -> dict[str, float | None]:
        """``optimizer_seconds`` (``step()`` plus ``zero_grad()``), ``control_seconds`` (the reference
        steps; not in ``train_seconds``), ``optimizer_share`` (of ``train_seconds``) and ``step_cost``
        (``step()`` over the reference step, dimensionless); None where undefined."""
        opt, ctl = sum(self.step) + sum(self.zero_grad), sum(self.control)
        ratios = [s / c for s, c in zip(self.step, self.control) if c > 0]
        return {
            "optimizer_seconds": opt,
            "control_seconds": ctl,
            "optimizer_share": opt / train_seconds if train_seconds > 0 else None,
            "step_cost": statistics.median(ratios) if ratios else None,
        }


class StepClock:
    """Four marks per step (before ``step()``, after it, after ``zero_grad()``, after the reference
    step); ``end_epoch()`` after the epoch's synchronise collects them."""

    MARKS = 4

    def __init__(self, params: list[torch.Tensor], device: torch.device) -> None:
        with torch.no_grad():
            self._shadow = [p.detach().clone().requires_grad_(p.requires_grad) for p in params]
            for w in self._shadow:
                w.grad = w.clone()  # a fixed "gradient": the reference step never reads the model
        # torch's defaults, as "auto" resolves them: for-loop on CPU, foreach on CUDA.
        self._reference = torch.optim.SGD(self._shadow, lr=CONTROL_LR)
        self.control_bytes = 2 * sum(t.numel() * t.element_size() for t in self._shadow)
        self._cuda = device.type == "cuda"
        # Events go on the stream the training runs on, which is that device's current stream.
        self._stream = torch.cuda.current_stream(device) if self._cuda else None
        self._events: list[torch.cuda.Event] = []
        self._marks: list[float] = []
        self._n = 0
        self.times = StepTimes()

    def mark(self) -> None:
        """Before ``optimizer.step()``, after it and after ``zero_grad()``; ``control()`` marks itself."""
        if self._cuda:
            if self._n == len(self._events):
                self._events.append(torch.cuda.Event(enable_timing=True))
            self._events[self._n].record(self._stream)
        else:
            self._marks.append(time.perf_counter())
        self._n += 1

    def control(self) -> None:
        """The reference step, then its closing mark."""
        self._reference.step()
        self.mark()

    def end_epoch(self) -> float:
        """Collect this epoch's per-step times (call after synchronising); returns its reference-step seconds."""
        if self._cuda:
            marks = [0.0] * self._n
            for i in range(1, self._n):  # elapsed_time is in milliseconds; only differences matter
                marks[i] = marks[i - 1] + self._events[i - 1].elapsed_time(self._events[i]) / 1000
        else:
            marks = self._marks
        k = self.MARKS
        self.times.step += [marks[i + 1] - marks[i] for i in range(0, self._n, k)]
        self.times.zero_grad += [marks[i + 2] - marks[i + 1] for i in range(0, self._n, k)]
        control = [marks[i + 3] - marks[i + 2] for i in range(0, self._n, k)]
        self.times.control += control
        self._marks, self._n = [], 0
        return sum(control)
