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


def rank_device(spec: str, rank: int = 0, world: int = 1) -> torch.device:
    """The device of one process: ``select_device(spec)``; under torchrun on GPUs, the process's own GPU
    (torchrun's ``LOCAL_RANK``: one GPU per process on each machine)."""
    device = select_device(spec)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank % torch.cuda.device_count())))
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bf16 in hardware: CUDA GPUs from Ampere on, CPUs with AVX512-BF16 or AMX.

    Elsewhere bf16 is emulated and slower than fp32, so mixed precision stays off there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private but stable since torch 2.1
    return device.type == "cpu" and any(getattr(cpu, name, lambda: False)() for name in checks)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast where the hardware has native bf16 (see native_bf16); full precision elsewhere.

    bf16 keeps fp32's exponent range, so no gradient scaler is needed and training code stays the same.
    """
    if not enabled or not native_bf16(device):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def cores_per_process() -> int:
    """The cores this process may use (containers often allow fewer than os.cpu_count()), shared among the
    processes torchrun started on this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def decode_workers() -> int:
    """Training's image-decoding processes to run beside the compute: none with 2 cores or fewer per process,
    where they would take the very cores the network runs on, else up to 4, leaving half the cores to the
    network. (Labelling decodes in threads instead: image_files.decoded_batches.)"""
    cores = cores_per_process()
    return 0 if cores <= 2 else min(4, cores // 2)


def configure_threads() -> None:
    """Give torch the cores this process may use (``cores_per_process``), so torchrun's processes on one
    machine do not oversubscribe it."""
    torch.set_num_threads(cores_per_process())


def distributed() -> tuple[int, int]:
    """``(rank, world size)``; under torchrun the process group is started here (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return torch.distributed.get_rank(), world
