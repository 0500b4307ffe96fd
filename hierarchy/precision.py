"""Training precision chosen by what this machine does, not by what its CPU flags promise.

A CPU's bf16 support says little about speed: with AMX, bf16 trains much faster than fp32; with AVX512-BF16
alone it was measured both faster (AMD EPYC) and slower (Intel Xeon) than fp32 for the same network
(benchmarks/results/train_speed.md). So with ``train.amp`` on, ``choose_precision`` times a few training
steps of the run's own network and batch both ways at start-up, on a copy of the network (the run's weights
and batch-norm statistics are untouched), and keeps bf16 only where it is clearly faster. CUDA GPUs with bf16
keep it without a measurement: there it is the tensor cores' format.

The verdict is remembered in ``~/.cache/hierarchy/precision.json`` per machine kind and network shape, so runs
with the same settings on the same machine train in the same precision (and reproduce each other) and later
runs skip the few seconds of timing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from hierarchy.paths import atomic_write
from hierarchy.runner import autocast, native_bf16

log = logging.getLogger(__name__)

CACHE = Path.home() / ".cache" / "hierarchy" / "precision.json"
MIN_GAIN = 1.05  # bf16 must be this much faster: below it fp32's exact arithmetic is worth more than the time
WARM_STEPS = 2  # per precision, untimed: first calls pick and cache kernels
TIMED_ROUNDS = 4  # alternating fp32 and bf16 steps, so a change in the machine's load hits both alike


@dataclass
class Precision:
    """The training precision of a run and why: ``bf16`` (autocast on), the measured speed-up of bf16 over fp32
    (None where nothing was measured) and the reason in words (logged and kept in the checkpoint)."""

    bf16: bool
    speedup: float | None
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def choose_precision(
    model: nn.Module, device: torch.device, batch_size: int, image_size: int, channels_last: bool, requested: bool
) -> Precision:
    """fp32 or bf16 autocast for training ``model`` on ``device`` with batches of ``batch_size`` images of
    ``image_size`` px; ``requested`` is ``train.amp`` (off: always fp32)."""
    if not requested:
        return Precision(False, None, "train.amp=false")
    if not native_bf16(device):
        return Precision(False, None, f"{device.type} without native bf16")
    if device.type == "cuda":
        return Precision(True, None, "CUDA GPU with bf16")
    key = machine_key(model, batch_size, image_size, channels_last)
    known = read_cache().get(key)
    if known is not None:
        return Precision(**known)
    fp32_s, bf16_s = time_steps(model, device, batch_size, image_size, channels_last)
    speedup = round(fp32_s / bf16_s, 2)
    when = time.strftime("%Y-%m-%d")
    if speedup >= MIN_GAIN:
        precision = Precision(True, speedup, f"bf16 measured {speedup}x fp32's speed on this CPU on {when}")
    else:
        precision = Precision(False, speedup, f"bf16 measured {speedup}x fp32's speed on this CPU on {when}, "
                              f"under the {MIN_GAIN}x that would pay for it")  # fmt: skip
    remember(key, precision)
    return precision


def machine_key(model: nn.Module, batch_size: int, image_size: int, channels_last: bool) -> str:
    """What the measurement depends on: the CPU, its oneDNN cap, torch's version and threads, the network's
    shape and the batch."""
    shapes = str([(name, tuple(p.shape)) for name, p in model.named_parameters()])
    parts = [
        cpu_model(), os.environ.get("ONEDNN_MAX_CPU_ISA", ""), torch.__version__, str(torch.get_num_threads()),
        hashlib.sha1(shapes.encode()).hexdigest()[:12], str(batch_size), str(image_size), str(channels_last),
    ]  # fmt: skip
    return "|".join(parts)


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")


def read_cache() -> dict:
    try:
        return json.loads(CACHE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def remember(key: str, precision: Precision) -> None:
    """Add the verdict to the cache; a cache that cannot be written (read-only home, a concurrent writer) only
    means the next run measures again."""
    cache = read_cache()
    cache[key] = precision.to_dict()
    try:
        with atomic_write(CACHE) as f:
            json.dump(cache, f, indent=1)
    except OSError:
        pass


def time_steps(
    model: nn.Module, device: torch.device, batch_size: int, image_size: int, channels_last: bool
) -> tuple[float, float]:
    """Median seconds of one forward and backward pass in fp32 and in bf16 autocast, on a copy of ``model`` with
    random images (the optimizer's step costs the same in both, so it is left out)."""
    rng_state = torch.get_rng_state()  # the probe's images and dropout must not shift the run's random draws
    probe = copy.deepcopy(model).to(device).train()
    memory = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(batch_size, 3, image_size, image_size, device=device).contiguous(memory_format=memory)

    def step(bf16: bool) -> float:
        start = time.perf_counter()
        with autocast(device, bf16):
            out = probe(x)
        sum(value.float().logsumexp(1).mean() for value in out.values()).backward()
        probe.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    for bf16 in (False, True):
        for _ in range(WARM_STEPS):
            step(bf16)
    times = {False: [], True: []}
    for _ in range(TIMED_ROUNDS):
        for bf16 in (False, True):
            times[bf16].append(step(bf16))
    torch.set_rng_state(rng_state)
    return statistics.median(times[False]), statistics.median(times[True])


def restored(saved: dict | None) -> Precision | None:
    """The precision a checkpoint recorded (a resumed run keeps it, so it trains as it began), or None."""
    return Precision(**saved) if saved else None


def log_choice(precision: Precision) -> None:
    log.info("training precision: %s (%s)", "bf16 autocast" if precision.bf16 else "fp32", precision.reason)
