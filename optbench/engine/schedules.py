"""Learning-rate schedules, per epoch: the multiplier of every parameter group's base learning rate.

With E epochs, W warm-up epochs, epoch e counted from 1 and k = e - W - 1 the index among the
N = E - W epochs after warm-up, epoch e runs at ``base_lr * factor(e)`` where

- warm-up (e <= W): e / (W + 1), a linear ramp that reaches the base rate at epoch W + 1;
- ``none``: 1;
- ``step``: gamma ** (k // step_size);
- ``cosine``: (1 + cos(pi * k / N)) / 2: 1 at the first epoch after warm-up, approaching 0 at the last;
- ``plateau``: starts at 1 and is multiplied by ``factor`` after an epoch that makes ``patience`` + 1
  epochs in a row without a relative improvement of ``PLATEAU_THRESHOLD`` in the monitored loss
  (torch's ReduceLROnPlateau in mode "min" with its default threshold, no cooldown, no floor);
  the change applies from the next epoch. Warm-up epochs are not monitored.

The rate changes once per epoch, before the epoch's first step, so it costs nothing per step.
These are closed forms rather than torch's scheduler objects because torch cannot chain a warm-up
with ReduceLROnPlateau, and because the curve records exactly the documented rate.
"""

from __future__ import annotations

import math

from optbench.spec.training import TrainingOptions

PLATEAU_THRESHOLD = 1e-4


class LRSchedule:
    """The learning-rate multiplier of each epoch of one run (stateful only for ``plateau``)."""

    def __init__(self, options: TrainingOptions, epochs: int) -> None:
        self.options = options
        self.epochs = epochs
        self._scale = 1.0
        self._best = math.inf
        self._bad_epochs = 0

    @property
    def active(self) -> bool:
        """Whether the rate ever differs from the base rate (else the engine never touches it)."""
        return self.options.schedule != "none" or self.options.warmup_epochs > 0

    def factor(self, epoch: int) -> float:
        """The multiplier for ``epoch`` (1-based)."""
        o, warmup = self.options, self.options.warmup_epochs
        if epoch <= warmup:
            return epoch / (warmup + 1)
        k, n = epoch - warmup - 1, self.epochs - warmup
        if o.schedule == "step":
            return o.gamma ** (k // o.step_size)
        if o.schedule == "cosine":
            return (1 + math.cos(math.pi * k / n)) / 2
        if o.schedule == "plateau":
            return self._scale
        return 1.0

    def observe(self, epoch: int, loss: float) -> None:
        """Tell the schedule the monitored loss at the end of ``epoch`` (used by ``plateau`` only)."""
        if self.options.schedule != "plateau" or epoch <= self.options.warmup_epochs:
            return
        if loss < self._best * (1 - PLATEAU_THRESHOLD):
            self._best, self._bad_epochs = loss, 0
        else:
            self._bad_epochs += 1
        if self._bad_epochs > self.options.patience:
            self._scale *= self.options.factor
            self._bad_epochs = 0
