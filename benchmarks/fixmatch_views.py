"""Which strong view keeps the label at 28 px: how a trained model sees candidate FixMatch views.

FixMatch trains a strong view of an image to predict the weak view's pseudo-label; that teaches only where the
strong view still shows the garment. For a trained run this measures, on its *validation* images (never the
test split: the chosen view is a setting), top-1 and top-1 within the true group on the clean images, the weak
view, UDA's strong view and each candidate strong view, and the share of views whose likeliest child of their
group reaches ``train.fixmatch_threshold``.

Usage: python benchmarks/fixmatch_views.py --model RUN   (a fine run on Fashion-MNIST trained with
data.val_fraction > 0). Writes benchmarks/results/fixmatch_views.{json,md}.
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
from hierarchy.data import build_splits  # noqa: E402
from hierarchy.data.transforms import augment_batch, to_model_input  # noqa: E402
from hierarchy.infer.classifier import model_from_checkpoint  # noqa: E402
from hierarchy.infer.decode import group_matrix  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402
from hierarchy.semi import STRONG_VIEWS  # noqa: E402
from hierarchy.taxonomy import build_taxonomy  # noqa: E402
from hierarchy.uda import STRONG_AUGMENT  # noqa: E402

NONE = {"flip": 0.0, "rotate": 0.0, "translate": 0.0, "scale": 0.0, "jitter": 0.0, "erase": 0.0}
CANDIDATES = {f"train.strong_view={name}": view for name, view in STRONG_VIEWS.items()}


@torch.no_grad()
def views_accuracy(model, images, fine, coarse, groups, augment: dict, threshold: float) -> dict:
    generator = torch.Generator().manual_seed(0)
    correct = within = confident = 0
    for start in range(0, len(images), 500):
        part = slice(start, start + 500)
        view = augment_batch(images[part], generator, **augment)
        logits = model(to_model_input(view))["fine"].float()
        correct += int((logits.argmax(-1) == fine[part]).sum())
        children = groups.T[coarse[part]] > 0
        probs = logits.masked_fill(~children, float("-inf")).softmax(-1)
        within += int((probs.argmax(-1) == fine[part]).sum())
        confident += int((probs.max(-1).values >= threshold).sum())
    n = len(images)
    return {"top1": round(correct / n, 4), "top1_within_group": round(within / n, 4),
            "confident_share": round(confident / n, 4)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a fine run on Fashion-MNIST with a validation split")
    args = parser.parse_args()
    state = load_checkpoint(Path(args.model), prefer="best.pt")
    cfg = from_dict(state["config"])
    taxonomy = build_taxonomy(state["taxonomy"])
    model = model_from_checkpoint(state, torch.device("cpu")).eval()
    _, val = build_splits(cfg.data, taxonomy, cfg.train.seed)
    if val is None:
        raise SystemExit(f"{args.model} was trained without a validation split (data.val_fraction=0)")
    threshold = cfg.train.fixmatch_threshold
    weak = {**NONE, "flip": cfg.train.flip, "translate": cfg.train.translate}
    arms = {"clean": NONE, "weak (training flip and shift)": weak, "UDA's strong view": STRONG_AUGMENT, **CANDIDATES}
    groups = group_matrix(taxonomy, torch.device("cpu"))
    rows = [{"view": name, **views_accuracy(model, val.images, val.fine, val.coarse, groups, aug, threshold)}
            for name, aug in arms.items()]  # fmt: skip
    table = format_table(rows, ["view", "top1", "top1_within_group", "confident_share"])
    views = "\n".join(f"- {name}: {aug}" for name, aug in arms.items() if name != "clean")
    note = (f"\n\nRun {args.model} ({len(val)} validation images); confident = the likeliest child of the true group "
            f"holds >= {threshold} of the group's probability (train.fixmatch_threshold).\n\n{views}")  # fmt: skip
    print(table + note)
    out = ROOT / "benchmarks" / "results"
    result = {"date": time.strftime("%Y-%m-%d"), "model": str(args.model), "rows": rows, "views": arms}
    (out / "fixmatch_views.json").write_text(json.dumps(result, indent=2))
    (out / "fixmatch_views.md").write_text(
        "# How a trained model sees FixMatch's candidate strong views (Fashion-MNIST validation images)\n\n"
        f"`python benchmarks/fixmatch_views.py --model RUN` on {result['date']}\n\n" + table + note + "\n"
    )


if __name__ == "__main__":
    main()
