"""The exported model against the torch model it came from: CPU latency at batch 1, throughput at batch 64,
file size, and agreement — torch fp32 vs torch bf16 (autocast) vs onnxruntime, one run, same inputs.

Every arm computes the whole inference: normalisation, the model's test-time views, temperatures and the
hierarchy decoding (inside the ONNX graph; ``TorchClassifiers.probabilities`` for torch). Inputs are Fashion-MNIST
test images letterboxed to the model's size.

Usage: python benchmarks/export.py [--model RUN] [--runs 50]
Writes benchmarks/results/export.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fashion_mnist import save_results  # noqa: E402
from benchmarks.label_efficiency import cpu_kind  # noqa: E402
from hierarchy.data.fashion_mnist import find_file, read_idx  # noqa: E402
from hierarchy.data.transforms import letterbox  # noqa: E402
from hierarchy.infer.classifier import TorchClassifiers  # noqa: E402
from hierarchy.infer.onnx import OnnxClassifier, export_onnx  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402
from hierarchy.paths import newest_run  # noqa: E402
from hierarchy.runner import native_bf16  # noqa: E402

FINDINGS = "## Findings"

FASHIONHOW_MAX_MB = 25.0  # Fashion-How's single-model size rule

def test_images(n: int, size: int) -> torch.Tensor:
    images = read_idx(find_file("t10k-images-idx3-ubyte", "")).numpy()[:n]
    return torch.stack([letterbox(Image.fromarray(im).convert("RGB"), size) for im in images])


def timings(probabilities, x: torch.Tensor, runs: int) -> dict:
    """Median ms per call at batch 1 (``runs`` calls) and images/s at batch 64 (``runs // 5`` calls)."""
    for _ in range(5):
        probabilities([x[:1]])
        probabilities([x[:64]])
    one = []
    for i in range(runs):
        start = time.perf_counter()
        probabilities([x[i % len(x) : i % len(x) + 1]])
        one.append(time.perf_counter() - start)
    start, batches = time.perf_counter(), max(3, runs // 5)
    for i in range(batches):
        probabilities([x[(i * 64) % (len(x) - 64) :][:64]])
    per_s = 64 * batches / (time.perf_counter() - start)
    return {"batch1_ms": round(1000 * float(np.median(one)), 2), "batch64_img_s": round(per_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="run folder (default: the newest artifacts/fine run)")
    parser.add_argument("--runs", type=int, default=50, help="timed batch-1 calls per arm")
    args = parser.parse_args()
    model = args.model or str(newest_run("fine") or "")
    if not model:
        raise SystemExit("no fine run under artifacts/fine: run the README's first command, or pass --model RUN")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, _ = export_onnx(model, tmp, views="model")
        size_mb = onnx_path.stat().st_size / 1e6
        fp32 = TorchClassifiers.load([model], torch.device("cpu"), views="model")
        bf16 = TorchClassifiers.load([model], torch.device("cpu"), views="model", precision="bf16")
        onnx = OnnxClassifier(onnx_path)
        cfg = fp32.configs[0]
        x = test_images(1024, cfg.data.image_size)
        reference = fp32.probabilities([x])
        arms = {"torch fp32": fp32, "torch bf16 autocast": bf16, "onnxruntime (fp32)": onnx}
        rows = []
        for name, arm in arms.items():
            probs = reference if arm is fp32 else arm.probabilities([x])
            diff = max(float((probs[h] - reference[h]).abs().max()) for h in reference)
            agree = min(float((probs[h].argmax(1) == reference[h].argmax(1)).float().mean()) for h in reference)
            rows.append({"arm": name, **timings(arm.probabilities, x, args.runs),
                         "max_abs_diff_vs_fp32": f"{diff:.2e}", "top1_agreement": round(agree, 4)})  # fmt: skip
            print(rows[-1], flush=True)
    views = (1 + 4 * (cfg.model.tta_shift > 0)) * (1 + int(cfg.model.tta_flip))
    results = {
        "cpu": cpu_kind(), "threads": torch.get_num_threads(), "native_bf16": native_bf16(torch.device("cpu")),
        "model": model, "backbone": cfg.model.backbone, "image_size": cfg.data.image_size, "views": views,
        "onnx_mb": round(size_mb, 2), "within_fashionhow_25mb": size_mb <= FASHIONHOW_MAX_MB, "rows": rows,
        "images": len(x),
    }  # fmt: skip
    text = (
        f"CPU: {results['cpu']}, {results['threads']} threads. Model `{model}` ({cfg.model.backbone}, "
        f"{cfg.data.image_size} px, {views} test-time views per image, all arms).\n\n"
        + format_table(rows, ["arm", "batch1_ms", "batch64_img_s", "max_abs_diff_vs_fp32", "top1_agreement"])
        + f"\n\nONNX file: {size_mb:.2f} MB (Fashion-How's single-model rule: {FASHIONHOW_MAX_MB:g} MB: "
        f"{'within' if results['within_fashionhow_25mb'] else 'over'}). Differences and agreement over "
        f"{len(x)} test images, every head.\n"
    )
    print(text)
    save_results("export", "Exported model: latency, throughput, size and agreement", results, text, FINDINGS)


if __name__ == "__main__":
    main()
