"""What a run holds in memory: the optimizer's state and the parameters in bytes (exact, the same on
every device), and the peak memory of the training window (measured, where it can be honestly).

``optimizer_state_bytes``: the sum of ``numel * element_size`` over every tensor in
``optimizer.state`` once the optimizer has stepped (torch creates an optimizer's state at its
first step). The engines read it when the first epoch's clock has stopped, so the timing is
untouched; an optimizer whose state grows after its first epoch is counted as it was then.
Non-tensor state (a Python int or float step count) counts 0. Examples on torch 2.x: SGD without
momentum 0; with momentum one buffer the size of the parameters; Adam two buffers plus a ``step``
kept per parameter as a float32 scalar tensor (4 bytes each).

In a vectorized group the parameters are stacked ``[K, ...]`` and one optimizer steps K replicas
(``optbench.engine.vectorized``): a state tensor whose first dimension is K (per element, or per
replica) counts 1/K of its bytes per run, a scalar (the ``step`` torch keeps per parameter) counts
fully, as the replica's own optimizer would hold it. So a run's figure is its eager run's.

``peak_rss_mb`` (CPU, Linux): the process's peak resident set size (``VmHWM`` in
``/proc/self/status``) over the training window, after resetting it by writing ``5`` to
``/proc/self/clear_refs`` just before the first epoch. Both are read outside the clock. It is the
whole process's peak: the data already loaded, the model, torch's allocator caches and the
evaluation between epochs are in it, and in a vectorized group it is the group's (every run of the
group carries it). Absent where ``/proc`` is missing or the reset is refused (not Linux, a
sandbox): a peak not reset would be the process's lifetime peak, not the run's.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

PROC = Path("/proc/self")
MIB = 2**20


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def parameter_bytes(params: Iterable[torch.Tensor], replicas: int = 1) -> float:
    """The bytes of the trained parameters, per replica of a stack of ``replicas``."""
    return sum(tensor_bytes(p) for p in params) / replicas


def optimizer_state_bytes(optimizer: torch.optim.Optimizer, replicas: int = 1) -> float:
    """The bytes of ``optimizer``'s state tensors, per replica where its parameters stack ``replicas``
    runs (a tensor whose first dimension is ``replicas`` counts 1/``replicas``; a scalar fully);
    non-tensor state counts 0."""
    total = 0.0
    for state in optimizer.state.values():
        for value in state.values():
            if not isinstance(value, torch.Tensor):
                continue
            share = replicas if replicas > 1 and value.dim() > 0 and value.shape[0] == replicas else 1
            total += tensor_bytes(value) / share
    return total


def memory_metrics(optimizers: Iterable[torch.optim.Optimizer], params: Iterable[torch.Tensor],
                   replicas: int = 1) -> dict[str, float]:
    """``optimizer_state_bytes`` and ``parameter_bytes`` per run of ``replicas`` stacked runs, whole
    numbers of bytes (the sum over ``optimizers`` that step one set of runs together)."""
    state = sum(optimizer_state_bytes(o, replicas) for o in optimizers)
    return {"optimizer_state_bytes": round(state), "parameter_bytes": round(parameter_bytes(params, replicas))}


class PeakRSS:
    """The process's peak resident set over a window: ``start()`` resets it, ``peak_mb()`` reads it
    (None where it cannot be measured: no ``/proc`` or a refused reset)."""

    def __init__(self, proc: Path = PROC) -> None:
        self._proc = proc
        self._reset = False

    def start(self) -> None:
        try:
            (self._proc / "clear_refs").write_text("5")  # 5: reset the peak resident set size (proc(5))
            self._reset = True
        except OSError:
            self._reset = False

    def peak_mb(self) -> float | None:
        if not self._reset:
            return None
        try:
            for line in (self._proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MIB  # kB
        except (OSError, ValueError, IndexError):
            return None
        return None
