"""Evaluate a checkpoint on a split and write metrics.json, confusion matrices and predictions."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hierarchy.checkpoint import load_checkpoint
from hierarchy.config import apply, from_dict, parse_overrides, to_dict
from hierarchy.data import build_loader, build_splits, build_test
from hierarchy.data.images import SkipLog
from hierarchy.decode import decode
from hierarchy.engine import predict
from hierarchy.errors import UserError
from hierarchy.metrics import classification_metrics, format_table, hierarchical_metrics, write_confusion
from hierarchy.models import build_model
from hierarchy.runner import select_device
from hierarchy.taxonomy import Taxonomy, build_taxonomy

log = logging.getLogger(__name__)


def model_from_checkpoint(state: dict[str, Any], device: torch.device) -> torch.nn.Module:
    """Rebuild the network a checkpoint was trained with (no pretrained weights: the checkpoint has them all)."""
    cfg = from_dict(state["config"])
    cfg.model.pretrained, cfg.model.weights = False, ""
    model = build_model(cfg.model, state["heads"])
    model.load_state_dict(state["model"])
    return model.to(device).to(memory_format=torch.channels_last)


def evaluate_checkpoint(
    state: dict[str, Any],
    dataset,
    out_dir: Path,
    split: str,
    device: str = "auto",
    batch_size: int = 256,
    workers: int = -1,
    already_skipped: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Predict ``dataset`` with a checkpoint and write the report files into ``out_dir``.

    Writes ``metrics.json``, ``confusion_<head>.{png,csv}`` and ``predictions_<split>.csv``. Unreadable files
    are counted once each, together with ``already_skipped`` (those met while training, for a run's report).
    """
    cfg = from_dict(state["config"])
    taxonomy = build_taxonomy(state["taxonomy"], source=f"checkpoint {state.get('path', '')}")
    dev = select_device(device)
    model = model_from_checkpoint(state, dev)
    skips = SkipLog()
    skips.reasons.update(already_skipped or {})
    loader = build_loader(dataset, batch_size, workers)
    logits, targets, sources = predict(
        model, loader, dev, cfg.train.amp, cfg.model.channels_last, skips, cfg.model.tta_flip
    )
    probs = {k: v.numpy() for k, v in decode(logits, taxonomy, cfg.hierarchy.rule).items()}
    target = {k: v.numpy() for k, v in targets.items()}

    out_dir.mkdir(parents=True, exist_ok=True)
    heads: dict[str, Any] = {}
    for level in ("coarse", "fine"):
        if level in probs:
            names = taxonomy.names(level)
            heads[level] = classification_metrics(probs[level], target[level], names)
            write_confusion(
                heads[level]["confusion"],
                names,
                out_dir / f"confusion_{level}",
                f"{taxonomy.titles[level]} ({split}, top-1 {heads[level]['top1']:.4f})",
            )
    report: dict[str, Any] = {
        "split": split,
        "checkpoint": state.get("path", ""),
        "stage": state.get("stage", ""),
        "taxonomy": taxonomy.name,
        "rule": cfg.hierarchy.rule,
        "n_images": len(sources),
        "skipped_images": len(skips),
        "skipped_files": skips.reasons,
        "heads": heads,
    }
    if "fine" in probs:
        report["hierarchy"] = hierarchical_metrics(
            probs["fine"], probs["coarse"], target["fine"], taxonomy, target["coarse"]
        )
    with open(out_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    write_predictions(out_dir / f"predictions_{split}.csv", sources, probs, target, taxonomy)
    return report


def evaluate_run(
    model: str | Path,
    split: str = "test",
    out: str | Path | None = None,
    device: str = "auto",
    overrides: list[str] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Evaluate a run folder or checkpoint on its data's ``split``; files go to ``out`` (default ``<run>/<split>``).

    ``overrides`` may set ``data.*`` (e.g. where the data moved) and ``hierarchy.*`` (the decoding rule) only.
    """
    state = load_checkpoint(model)
    cfg = from_dict(state["config"])
    values = parse_overrides(overrides or [])
    if set(values) - {"data", "hierarchy", "detect"}:
        raise UserError(
            "eval takes data.*, detect.* and hierarchy.* settings only (e.g. data.root=DIR hierarchy.rule=mask)"
        )
    apply(cfg, values)
    state["config"] = to_dict(cfg)  # the decoding rule and data location used for this report
    taxonomy = build_taxonomy(state["taxonomy"], source=state["path"])
    where = str(select_device(device))
    if split == "test":
        dataset = build_test(cfg.data, taxonomy, cfg.detect, where)
    else:
        dataset = build_splits(cfg.data, taxonomy, cfg.train.seed, cfg.detect, where)[1]
    out_dir = Path(out) if out else Path(state["path"]).parent.parent / split
    return evaluate_checkpoint(state, dataset, out_dir, split, device), out_dir


def write_predictions(
    path: Path, sources: list[str], probs: dict[str, np.ndarray], targets: dict[str, np.ndarray], taxonomy: Taxonomy
) -> None:
    levels = [lv for lv in ("coarse", "fine") if lv in probs]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["source", *[c for lv in levels for c in (f"{lv}_true", f"{lv}_pred", f"{lv}_prob")]])
        for i, source in enumerate(sources):
            row: list[Any] = [source]
            for lv in levels:
                names, t, p = taxonomy.names(lv), int(targets[lv][i]), probs[lv][i]
                row += [names[t] if t >= 0 else "", names[int(p.argmax())], f"{float(p.max()):.4f}"]
            writer.writerow(row)


def summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per head, plus the hierarchy figures for a fine model."""
    rows = []
    for level, m in report["heads"].items():
        rows.append(
            {
                "head": level,
                "top1": m["top1"],
                "top5": m.get("top5", ""),
                "macro_f1": m["macro_f1"],
                "mean_class_acc": m["mean_class_accuracy"],
                "n": m["n"],
            }
        )
    h = report.get("hierarchy")
    if h:
        rows.append({"head": "coarse implied by fine", "top1": h["implied_coarse_top1"], "n": report["n_images"]})
    return rows


def format_report(report: dict[str, Any]) -> str:
    text = f"{report['split']} split, {report['n_images']} images, taxonomy {report['taxonomy']}\n"
    text += format_table(summary_rows(report), ["head", "top1", "top5", "macro_f1", "mean_class_acc", "n"])
    h = report.get("hierarchy")
    if h:
        text += (
            f"\nhierarchy rule {report['rule']}: consistency {h['consistency']:.4f}, "
            f"mistake severity {h['mistake_severity']:.2f} (2 = sibling, 4 = other group), "
            f"sibling errors {h['sibling_error_share']:.1%}"
        )
    return text
