"""One-time notices on stderr that are advice, not errors: said once per process, each silenced by
its environment variable."""

from __future__ import annotations

import os

from rich.console import Console

from optbench.devices import CPU_ONLY_INSTALL, unused_cuda_build
from optbench.limits import CUDA_BUILD_NOTICE_VARIABLE

_said: set[str] = set()


def cuda_build_notice(device: str) -> None:
    """Say once, in one line, that the runs train on the CPU with torch's CUDA build installed and no
    GPU here, and how to install the CPU-only build; whether the disk is worth it is the user's call."""
    cuda = unused_cuda_build(device)
    if cuda is None or "cuda_build" in _said or os.environ.get(CUDA_BUILD_NOTICE_VARIABLE, "") not in ("", "0"):
        return
    _said.add("cuda_build")
    Console(stderr=True, soft_wrap=True).print(
        f"note: training on the CPU with torch's CUDA {cuda} build and no GPU here; the CPU-only build saves "
        f"several GB of disk: {CPU_ONLY_INSTALL} (set {CUDA_BUILD_NOTICE_VARIABLE}=1 to hide this)",
        markup=False, highlight=False)
