"""A plugin optimizer for ``benchmarks/bench_check.py``: Adam with a regression you switch on
from the environment, so the spec (and its cell) stays the same as unchanged code's.

- ``OPTBENCH_SLOWDOWN=2``: every ``step()`` costs 2x: after the real step, busy-wait for as long
  as it took (1.5: for half as long). The wait is CPU work, like a slower implementation, counted in
  the thread's CPU time: a wait that another process preempts still does the extra work. It spins in
  the interpreter and reads the clock (a system call) only every few microseconds.
- ``OPTBENCH_LR_SCALE=0.5``: the step silently uses half the learning rate (a quality bug).

    optbench run --opt benchmarks/slow_adam.py:SlowAdam
"""

from __future__ import annotations

import os
import time

import torch

SLOWDOWN = float(os.environ.get("OPTBENCH_SLOWDOWN", "1"))
LR_SCALE = float(os.environ.get("OPTBENCH_LR_SCALE", "1"))
SPIN = 200  # loop iterations per clock read while busy-waiting: a few microseconds


class SlowAdam(torch.optim.Adam):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        for group in self.param_groups:
            group["lr"] *= LR_SCALE

    def step(self, closure=None):
        start = time.thread_time()
        loss = super().step(closure)
        if SLOWDOWN > 1:
            now = time.thread_time()
            until = now + (SLOWDOWN - 1) * (now - start)
            while time.thread_time() < until:
                for _ in range(SPIN):  # interpreter work between clock reads: a read is a system call
                    pass
        return loss
