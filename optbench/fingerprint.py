"""The environment a result came from, so results from different machines are never confused."""

from __future__ import annotations

import functools
import platform
import os
import subprocess
from pathlib import Path
from typing import Any

import torch

import optbench
from optbench.devices import device_name


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def git_commit(cwd: str = ".") -> str | None:
    """HEAD of the repository the command runs in (with ``-dirty`` if it has changes), else None."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def _static() -> dict[str, Any]:
    return {
        "optbench": optbench.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": _cpu_count(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "git_commit": git_commit(),
    }


def _cpu_count() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# Why torch runs with its thread count now, where an engine's thread policy chose it
# (optbench.engine.threads); None elsewhere.
_THREAD_POLICY: list[str | None] = [None]


def thread_policy_note(reason: str | None) -> None:
    """Record why torch's thread count is what it is (None: no policy applies any more)."""
    _THREAD_POLICY[0] = reason


def environment(device: str) -> dict[str, Any]:
    """Versions, hardware and git commit; ``device_name`` is the GPU's name on CUDA, else ``cpu``;
    ``torch_threads`` the thread count now, and ``thread_policy`` why, where an engine chose it."""
    policy = {"thread_policy": _THREAD_POLICY[0]} if _THREAD_POLICY[0] is not None else {}
    return {**_static(), "torch_threads": torch.get_num_threads(), **policy, "device": device,
            "device_name": device_name(device)}
