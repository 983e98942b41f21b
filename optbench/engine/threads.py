"""The thread policy for small CPU work: how many intra-op threads torch uses for a vectorized group.

Torch splits an elementwise operation over its threads once it touches more than 32,768 elements
(its grain size), and by default runs one thread per core. On a busy machine a thread that is
descheduled holds up every split operation until it runs again: on this project's shared 2-core
CPU a vectorized regression group of 1,024 replicas fell from about 300k replica-steps/s (256
replicas, operations below the grain, one thread) to 47k–67k. Work this small gains little from a
second thread even on a quiet machine, so the policy runs it on one:

- a dense chain (``nn.Linear`` layers and elementwise activations: the regression and MLP tasks'
  models) whose work is at most ``SMALL_WORK`` elements per operation (replicas x batch x widest
  layer): one thread; larger work, and other models (convolutions, sequence models): torch's own
  count;
- never on CUDA (the CPU only launches kernels there), and never where the user chose: an
  ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` in the environment, or a ``torch.set_num_threads``
  call that changed the count from what it was when optbench's engines were imported, wins.

The choice depends only on the work's size, not on the machine's load, so the same suite runs with
the same thread count every time (a thread count changes how sums split, and ``optbench check``
compares ``torch_threads``). Each record's environment carries ``torch_threads`` (the count its
training ran with) and ``thread_policy`` (``small work: 1 thread``, ``torch default``, or the
user's setting). Both engines apply it, the eager engine per run, the vectorized engine per group;
the count is restored when the run or group is done.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from optbench.engine.stacked import ELEMENTWISE
from optbench.fingerprint import thread_policy_note

# Elements per operation up to which one thread runs the work: 8 times torch's grain size. Measured
# (benchmarks/bench_vectorized.py, regression Adam batch 64): K=4096 (262k elements) is about as
# fast on one thread as on two on a quiet machine, and far faster on a busy one.
SMALL_WORK = 2**18
USER_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Torch's count when the engines were imported: a different count later is the user's choice.
_INITIAL = torch.get_num_threads()


def user_setting() -> str | None:
    """How the user set torch's thread count (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(3)``),
    or None where they did not."""
    for name in USER_VARIABLES:
        if os.environ.get(name):
            return f"{name}={os.environ[name]}"
    threads = torch.get_num_threads()
    return f"torch.set_num_threads({threads})" if threads != _INITIAL else None


def work_of(model: nn.Module, batch_size: int, replicas: int = 1) -> int | None:
    """Elements one per-step operation of ``model`` touches, about, where it is a dense chain
    (``nn.Linear`` layers and parameter-free elementwise activations): ``replicas`` x the larger of
    the batch times the widest layer and the largest parameter. None for any other model (a
    convolution's or a sequence model's work is not measured by its widths)."""
    modules = [m for m in model.modules() if not list(m.children())]
    if not all(type(m) is nn.Linear or type(m) in ELEMENTWISE for m in modules):
        return None
    params = list(model.parameters())
    width = max((max(p.shape, default=1) for p in params), default=1)
    return replicas * max(batch_size * width, max((p.numel() for p in params), default=1))


def choose(work: int | None, device: torch.device | str) -> tuple[int, str]:
    """The thread count for work of ``work`` elements per operation on ``device`` (None: not known
    to be small), and why."""
    user = user_setting()
    if user is not None:
        return torch.get_num_threads(), user
    if torch.device(device).type != "cpu" or work is None or work > SMALL_WORK:
        return torch.get_num_threads(), "torch default"
    return 1, "small work: 1 thread"


class ThreadScope:
    """Applies ``choose`` once the work is known (``choose(work, device)``); see ``thread_policy``."""

    def __init__(self) -> None:
        self.before = torch.get_num_threads()
        self.threads = self.before
        self.reason = "torch default"

    def choose(self, work: int | None, device: torch.device | str) -> int:
        self.threads, self.reason = choose(work, device)
        if self.threads != torch.get_num_threads():
            torch.set_num_threads(self.threads)
        thread_policy_note(self.reason)
        return self.threads


@contextmanager
def thread_policy() -> Iterator[ThreadScope]:
    """A scope whose ``choose`` sets torch's thread count for the work; the count the scope found is
    restored when it ends (and the records made inside it name the policy)."""
    scope = ThreadScope()
    try:
        yield scope
    finally:
        if torch.get_num_threads() != scope.before:
            torch.set_num_threads(scope.before)
        thread_policy_note(None)
