"""Training speed of the default Fashion-MNIST network on this machine: bf16 autocast vs fp32, eager vs compiled,
what the start-up measurement chooses, and where a training step's time goes.

    python benchmarks/train_speed.py [--steps 40]

Each arm runs the same training steps (the default network of configs/coarse.yaml, batch 256, 28 px, AdamW) one
after the other in this process, after warm-up steps that are not timed (they include torch.compile's compile
time, reported separately). Then ``hierarchy.precision``'s start-up measurement runs as a training run would
(uncached), and a real fine-stage step (the training loader, batch augmentation, both heads' losses, AdamW) is
timed phase by phase in each precision. Writes benchmarks/results/train_speed.{json,md} per machine kind; the
CPU's model name and whether it has native bf16 (AVX512-BF16 or AMX) are part of the result, since they decide
which arm wins.
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
from hierarchy.data import build_loader, build_splits  # noqa: E402
from hierarchy.data.transforms import augment_batch, to_model_input  # noqa: E402
from hierarchy.losses import compute_loss  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402
from hierarchy.models import build_model  # noqa: E402
from hierarchy.optim import build_optimizer  # noqa: E402
from hierarchy.precision import MIN_GAIN, time_steps  # noqa: E402
from hierarchy.runner import autocast, native_bf16  # noqa: E402
from hierarchy.taxonomy import load_taxonomy  # noqa: E402

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


def phases(bf16: bool, steps: int) -> dict:
    """Milliseconds per fine-stage training step in each phase: fetching the batch, augmenting it on the batch,
    the forward pass with both heads' losses, the backward pass and AdamW's step."""
    cfg = load_config("fine")
    cfg.model = load_config("coarse").model
    torch.manual_seed(0)
    train, _ = build_splits(cfg.data, load_taxonomy(cfg.data.taxonomy), 0)
    model = build_model(cfg.model, {"coarse": 6, "fine": 10}).to(memory_format=torch.channels_last).train()
    optimizer = build_optimizer(model, cfg.train)
    batches = iter(build_loader(train, cfg.train.batch_size, 0, shuffle_seed=0))
    generator, tc = torch.Generator().manual_seed(0), cfg.train
    device = torch.device("cpu")
    totals = dict.fromkeys(("data", "augment", "forward", "backward", "optimizer"), 0.0)
    for i in range(WARM_STEPS + steps):
        marks = [time.perf_counter()]
        batch = next(batches)
        marks.append(time.perf_counter())
        images = augment_batch(batch.images, generator, tc.flip, tc.rotate, tc.translate, tc.scale, tc.jitter)
        x = to_model_input(images)
        marks.append(time.perf_counter())
        with autocast(device, bf16):
            out = model(x)
        loss = compute_loss(out, batch.targets, tc)
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        if i >= WARM_STEPS:
            for key, begin, end in zip(totals, marks, marks[1:]):
                totals[key] += (end - begin) * 1000 / steps
    total = sum(totals.values())
    row = {"precision": "bf16 autocast" if bf16 else "fp32", **{k: round(v, 1) for k, v in totals.items()}}
    return {**row, "total_ms": round(total, 1), "img_per_s": round(cfg.train.batch_size * 1000 / total, 1)}


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
    choice = "fp32 (no native bf16: nothing to measure)"
    if bf16:
        cfg = load_config("coarse")
        model = build_model(cfg.model, {"coarse": 6, "fine": 10}).to(memory_format=torch.channels_last)
        fp32_s, bf16_s = time_steps(model, torch.device("cpu"), cfg.train.batch_size, cfg.data.image_size, True)
        speedup = fp32_s / bf16_s
        choice = f"{'bf16 autocast' if speedup >= MIN_GAIN else 'fp32'} (bf16 measured {speedup:.2f}x fp32)"
    steps = [phases(False, args.steps // 2), *([phases(True, args.steps // 2)] if bf16 else [])]
    step_table = format_table(steps, list(steps[0]))
    cpu = f"{cpu_name()}, {torch.get_num_threads()} threads, native bf16: {'yes' if bf16 else 'no'}"
    if os.environ.get("ONEDNN_MAX_CPU_ISA"):
        cpu += f", ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']}"
    print(f"{table}\n\nstart-up choice: {choice}\n\n{step_table}\n\n{cpu}")
    result = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu, "steps": args.steps, "arms": rows, "choice": choice,
              "phases_ms": steps}  # fmt: skip
    report = (
        f"`python benchmarks/train_speed.py` on {result['date']}; {cpu}; batch 256 at 28 px; {args.steps} timed "
        f"steps per arm after {WARM_STEPS} untimed ones (warm_s: those, compile time included).\n\n{table}\n\n"
        f"What a training run chooses here at start-up (hierarchy/precision.py, uncached): **{choice}**.\n\n"
        f"Where a fine-stage step's time goes (ms per step of 256, {args.steps // 2} steps, the Fashion-MNIST "
        f"training loader):\n\n{step_table}\n"
    )
    write_kind(cpu, result, report)


def write_kind(cpu: str, result: dict, report: str) -> None:
    """Replace this machine kind's section of benchmarks/results/train_speed.{json,md}, keep the others'."""
    out = ROOT / "benchmarks" / "results"
    path = out / "train_speed.json"
    earlier = json.loads(path.read_text()) if path.exists() else {}
    kinds = earlier.get("kinds") or ({earlier["cpu"]: earlier} if "cpu" in earlier else {})
    kinds[cpu] = {**result, "report": report}
    path.write_text(json.dumps({"kinds": kinds}, indent=2))
    sections = [f"## {kind}\n\n{entry.get('report') or legacy_report(entry)}" for kind, entry in kinds.items()]
    (out / "train_speed.md").write_text(
        "# Training speed of the default network: bf16 vs fp32, eager vs torch.compile\n\n"
        "One section per machine kind; each run replaces its own.\n\n" + "\n".join(sections)
    )


def legacy_report(entry: dict) -> str:
    """A section for a result written before the sections (its table only)."""
    table = format_table(entry["arms"], ["arm", "img_per_s", "vs_first", "warm_s"])
    return f"`python benchmarks/train_speed.py` on {entry['date']}; {entry['steps']} timed steps per arm.\n\n{table}\n"


if __name__ == "__main__":
    main()
