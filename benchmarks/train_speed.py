"""Training speed of the default Fashion-MNIST network on this machine: bf16 autocast vs fp32, eager vs compiled.

    python benchmarks/train_speed.py [--steps 40]

Each arm runs the same training steps (the default network of configs/coarse.yaml, batch 256, 28 px, AdamW) one
after the other in this process, after warm-up steps that are not timed (they include torch.compile's compile
time, reported separately). Writes benchmarks/results/train_speed.{json,md}; the CPU's model name and whether it
has native bf16 (AVX512-BF16 or AMX) are part of the result, since they decide which arm wins.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from hierarchy.config import load_config  # noqa: E402
from hierarchy.data.transforms import to_model_input  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402
from hierarchy.models import build_model  # noqa: E402
from hierarchy.optim import build_optimizer  # noqa: E402
from hierarchy.runner import autocast, native_bf16  # noqa: E402

WARM_STEPS = 8


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def arm(name: str, amp: bool, compiled: bool, steps: int) -> dict:
    """Images per second of ``steps`` training steps after ``WARM_STEPS`` untimed ones."""
    cfg = load_config("coarse")
    torch.manual_seed(0)
    model = build_model(cfg.model, {"coarse": 6}).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.train)
    step_fn = torch.compile(model) if compiled else model
    device = torch.device("cpu")
    images = torch.randint(0, 256, (cfg.train.batch_size, 1, 28, 28), dtype=torch.uint8)
    targets = torch.randint(0, 6, (cfg.train.batch_size,))
    x = to_model_input(images.expand(-1, 3, -1, -1))

    def step() -> None:
        with autocast(device, amp):
            loss = torch.nn.functional.cross_entropy(step_fn(x)["coarse"].float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for _ in range(WARM_STEPS):
        step()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {"arm": name, "img_per_s": round(steps * cfg.train.batch_size / seconds, 1), "warm_s": round(warm, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per arm")
    args = parser.parse_args()
    bf16 = native_bf16(torch.device("cpu"))
    arms = [("fp32, eager", False, False), ("fp32, torch.compile", False, True)]
    if bf16:
        arms = [("bf16 autocast, eager (the default here)", True, False), ("bf16, torch.compile", True, True), *arms]
    rows = [arm(name, amp, compiled, args.steps) for name, amp, compiled in arms]
    base = rows[0]["img_per_s"]
    for row in rows:
        row["vs_first"] = round(row["img_per_s"] / base, 2)
    table = format_table(rows, ["arm", "img_per_s", "vs_first", "warm_s"])
    cpu = f"{cpu_name()}, {torch.get_num_threads()} threads, native bf16: {'yes' if bf16 else 'no'}"
    print(table + f"\n\n{cpu}")
    out = ROOT / "benchmarks" / "results"
    result = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu, "steps": args.steps, "arms": rows}
    (out / "train_speed.json").write_text(json.dumps(result, indent=2))
    (out / "train_speed.md").write_text(
        "# Training speed of the default network: bf16 vs fp32, eager vs torch.compile\n\n"
        f"`python benchmarks/train_speed.py` on {result['date']}; {cpu}; batch 256 at 28 px; "
        f"{args.steps} timed steps per arm after {WARM_STEPS} untimed ones (warm_s: those, compile time included)."
        "\n\n" + table + "\n"
    )


if __name__ == "__main__":
    main()
