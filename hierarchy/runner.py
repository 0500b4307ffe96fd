"""Where the work runs: device choice, mixed precision, thread counts."""

from __future__ import annotations

import contextlib
import os

import torch

from hierarchy.errors import UserError


def select_device(spec: str = "auto") -> torch.device:
    """``auto`` → the first CUDA GPU if there is one, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UserError(f"device {spec!r} is not valid; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {spec!r} asked for, but no CUDA GPU is visible; use device=cpu")
    return device


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA GPUs that support it; full precision on the CPU and on older GPUs.

    bf16 keeps fp32's exponent range, so no gradient scaler is needed and training code stays the same.
    """
    if not enabled or device.type != "cuda" or not torch.cuda.is_bf16_supported():
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def configure_threads() -> None:
    """Use every core the process may run on (containers often allow fewer than os.cpu_count())."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(max(1, cores))
