"""Why UDA lost points in benchmarks/results/stage_two.md: how a trained model sees UDA's two views.

UDA trains the strong view to match the weak view's sharpened prediction, counted where the weak view is
confident. That helps only where the strong view is still recognisable. This measures, for a trained run on
the 10,000 Fashion-MNIST test images: top-1 on the clean images, on the weak view (the training flip and
shift), on UDA's strong view (``hierarchy.uda.STRONG_AUGMENT``) and on each of its parts alone; and the share
of weak views confident enough (``train.uda_threshold``) to count.

Usage: python benchmarks/uda_views.py --model RUN   (a fine or coarse run on Fashion-MNIST)
Writes benchmarks/results/uda_views.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hierarchy.checkpoint import load_checkpoint  # noqa: E402
from hierarchy.config import from_dict  # noqa: E402
from hierarchy.data import build_test  # noqa: E402
from hierarchy.data.transforms import augment_batch, to_model_input  # noqa: E402
from hierarchy.infer.classifier import model_from_checkpoint  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402
from hierarchy.taxonomy import build_taxonomy  # noqa: E402
from hierarchy.uda import STRONG_AUGMENT  # noqa: E402

NONE = {"flip": 0.0, "rotate": 0.0, "translate": 0.0, "scale": 0.0, "jitter": 0.0, "erase": 0.0}


@torch.no_grad()
def views_accuracy(model, images, labels, head: str, augment: dict, threshold: float) -> dict:
    generator = torch.Generator().manual_seed(0)
    correct, confident = 0, 0
    for start in range(0, len(images), 500):
        view = augment_batch(images[start : start + 500], generator, **augment)
        probs = model(to_model_input(view))[head].float().softmax(-1)
        correct += int((probs.argmax(-1) == labels[start : start + 500]).sum())
        confident += int((probs.max(-1).values >= threshold).sum())
    return {"top1": correct / len(images), "confident_share": confident / len(images)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a run folder trained on Fashion-MNIST")
    args = parser.parse_args()
    state = load_checkpoint(Path(args.model), prefer="best.pt")
    cfg = from_dict(state["config"])
    model = model_from_checkpoint(state, torch.device("cpu")).eval()
    test = build_test(cfg.data, build_taxonomy(state["taxonomy"]))
    head = "fine" if "fine" in state["heads"] else "coarse"
    labels = torch.as_tensor(getattr(test, head))
    tc = cfg.train
    weak = {**NONE, "flip": tc.flip, "translate": tc.translate}
    arms = {"clean": NONE, "weak (training flip and shift)": weak, "strong (UDA)": STRONG_AUGMENT}
    arms.update({f"strong part: {k}={v}": {**NONE, k: v} for k, v in STRONG_AUGMENT.items() if k != "flip"})
    rows = [{"view": name, **views_accuracy(model, test.images, labels, head, aug, tc.uda_threshold)}
            for name, aug in arms.items()]  # fmt: skip
    table = format_table(rows, ["view", "top1", "confident_share"])
    note = (f"\n\nRun {args.model} ({state['config']['stage']} stage, head {head}); confident = top probability "
            f">= {tc.uda_threshold} (train.uda_threshold).")  # fmt: skip
    print(table + note)
    out = ROOT / "benchmarks" / "results"
    (out / "uda_views.json").write_text(json.dumps({"model": str(args.model), "head": head, "rows": rows}, indent=2))
    (out / "uda_views.md").write_text(
        "# How a trained model sees UDA's views (Fashion-MNIST test images)\n\n"
        f"`python benchmarks/uda_views.py --model RUN` on {time.strftime('%Y-%m-%d')}\n\n" + table + note + "\n"
    )


if __name__ == "__main__":
    main()
