"""Choosing the device a run uses, and synchronising it so timings are honest."""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING

from optbench.errors import UserError

if TYPE_CHECKING:
    import torch

# torch is imported where it is needed, not with this module: a run that skips every spec (resume)
# resolves its device, and so its specs' hashes, without it where the machine has no GPU device at all.
# Device files of the drivers torch reaches a GPU through: NVIDIA's, WSL's, Jetson's, and AMD's (ROCm).
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/dxg", "/dev/nvhost-ctrl", "/dev/kfd")

DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"


def resolve_device(requested: str) -> str:
    """Turn ``auto|cpu|cuda|cuda:N`` into a concrete device string, or explain why it cannot run here."""
    requested = requested.strip().lower()
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    import torch

    match = re.fullmatch(r"cuda(?::(\d+))?", requested)
    if not match:
        raise UserError(f"unknown device '{requested}'; use {DEVICE_HELP}")
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise UserError(
            f"--device {requested}: CUDA is not available here (torch {torch.__version__}, {build}); "
            f"use --device cpu or --device auto"
        )
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        raise UserError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0")
    return requested


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, answered without importing torch on a Linux machine with no GPU
    driver's device file (torch could not reach a GPU there either)."""
    if sys.platform == "linux" and not any(os.path.exists(path) for path in GPU_DEVICE_FILES):
        return False
    import torch

    return torch.cuda.is_available()


def remote_device(requested: str, gpus_per_run: float) -> str:
    """The device of runs that execute on other machines (a Ray cluster): checked for syntax only,
    since this machine's CUDA says nothing about theirs. ``auto`` is ``cuda`` when each run reserves
    a GPU (Ray makes the GPU it assigns the task's ``cuda``), else ``cpu``."""
    requested = requested.strip().lower()
    if requested == "auto":
        return "cuda" if gpus_per_run > 0 else "cpu"
    if requested != "cpu" and not re.fullmatch(r"cuda(?::\d+)?", requested):
        raise UserError(f"unknown device '{requested}'; use {DEVICE_HELP}")
    if requested.startswith("cuda") and gpus_per_run == 0:
        raise UserError(f"--device {requested} with --executor ray needs --gpus-per-run (e.g. 1, or 0.25 to share a GPU)")
    return requested


# PyTorch's CPU-only wheels: a few hundred MB, where the default (CUDA) build pulls several GB of CUDA libraries.
CPU_ONLY_INSTALL = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def unused_cuda_build(device: str) -> str | None:
    """The CUDA version of the installed torch when runs on ``device`` train on the CPU although torch
    is a CUDA build and this machine has no usable GPU (the CPU-only build would do the same work in a
    fraction of the disk); None otherwise. Saying so is the CLI's business."""
    import torch

    if device != "cpu" or not torch.version.cuda or torch.cuda.is_available():
        return None
    return str(torch.version.cuda)


def require_bf16(device: str) -> None:
    """UserError when ``device`` cannot run bfloat16 autocast (``--precision bf16``). Every CPU can
    (oneDNN's bfloat16 kernels, emulated where the CPU lacks AVX-512 BF16 or AMX, and then slower
    than float32); a GPU needs bfloat16 arithmetic of its own (NVIDIA Ampere or later)."""
    if not device.startswith("cuda"):
        return
    import torch

    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name(torch.device(device))
        raise UserError(f"--precision bf16 on {device}: {name} has no bfloat16 arithmetic; use --precision float32")


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a clock read after this covers the work before it."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"
