"""Evaluate a checkpoint on a split and write metrics.json, confusion matrices and predictions."""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hierarchy.calibration import calibration_metrics, fit_temperatures, reliability_diagram
from hierarchy.checkpoint import load_checkpoint, save_checkpoint
from hierarchy.config import apply, from_dict, parse_overrides, refuse_ignored, to_dict
from hierarchy.data import build_loader, build_splits, build_test
from hierarchy.data.images import SkipLog, multi_hot
from hierarchy.data.transforms import to_model_input
from hierarchy.errors import NoTestSplit, UserError
from hierarchy.infer.abstention import coverage_report
from hierarchy.infer.classifier import TorchClassifiers, forward, model_from_checkpoint
from hierarchy.metrics import (
    classification_metrics,
    format_table,
    hierarchical_metrics,
    multilabel_metrics,
    tune_thresholds,
    write_confusion,
)
from hierarchy.runner import autocast, select_device
from hierarchy.taxonomy import Taxonomy, build_taxonomy

log = logging.getLogger(__name__)
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # batch-norm statistics: not parameters


FASHIONHOW_MAX_MB = 25.0  # Fashion-How's single-model size rule


def model_footprint(state: dict[str, Any], model: torch.nn.Module, runs: int = 20) -> dict[str, Any]:
    """Weights size and single-image CPU latency (batch 1, one thread per core, median of ``runs``).

    ``model`` is the checkpoint's network, already built; on another device a CPU copy is built for timing.
    """
    if next(model.parameters()).device.type != "cpu":
        model = model_from_checkpoint(state, torch.device("cpu"))
    model.eval()
    size_mb = sum(v.numel() * v.element_size() for v in state["model"].values()) / 1e6
    cfg = from_dict(state["config"])
    side = cfg.data.image_size
    x = to_model_input(torch.zeros(1, 3, side, side, dtype=torch.uint8))
    times = []
    with torch.no_grad(), autocast(torch.device("cpu"), cfg.train.amp):
        for i in range(runs + 3):  # 3 warm-up passes
            start = time.perf_counter()
            forward(model, x, cfg.model.tta_flip, cfg.model.tta_shift)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return {
        "parameters": sum(v.numel() for k, v in state["model"].items() if not k.endswith(BUFFERS)),
        "size_mb": round(size_mb, 2),
        "within_fashionhow_25mb": size_mb <= FASHIONHOW_MAX_MB,
        "cpu_latency_ms": round(1000 * float(np.median(times)), 2),
        "cpu_threads": torch.get_num_threads(),
    }


def evaluate_checkpoint(
    state: dict[str, Any],
    dataset,
    out_dir: Path,
    split: str,
    device: str = "auto",
    batch_size: int = 256,
    workers: int = -1,
    already_skipped: dict[str, str] | None = None,
    fit_thresholds: bool = False,
    calibrate: bool = False,
    min_prob: float = 0.0,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Predict ``dataset`` with a checkpoint and write the report files into ``out_dir``.

    Writes ``metrics.json``, ``confusion_<head>.{png,csv}``, ``reliability_<head>.png``, ``coverage.{csv,png}``
    (a fine model) and ``predictions_<split>.csv``. Unreadable files are counted once each, together with
    ``already_skipped`` (those met while training, for a run's report). With ``fit_thresholds`` a multi-label
    model's per-class thresholds are tuned for F1 on these predictions (a run's validation split) and put into
    ``state["thresholds"]``; with ``calibrate`` every head's temperature is fitted on them and put into
    ``state["temperatures"]`` (see calibration.py), so one pass serves all. ``min_prob``: also report the
    abstention figures at that threshold. The model's evaluation views (``model.tta_*``) at ``precision``.
    """
    cfg = from_dict(state["config"])
    classifier = TorchClassifiers([state], select_device(device), views="model", precision=precision)
    taxonomy = classifier.taxonomy
    skips = SkipLog()
    skips.reasons.update(already_skipped or {})
    logits, targets, sources = classifier.dataset_logits(build_loader(dataset, batch_size, workers), skips)
    if calibrate:
        state["temperatures"] = fit_temperatures(logits, targets, taxonomy, cfg.hierarchy.rule, cfg.train.multilabel)
    raw = {k: v.numpy() for k, v in classifier.decode(0, logits, calibrated=False).items()}
    probs = {k: v.numpy() for k, v in classifier.decode(0, logits).items()}
    target = {k: v.numpy() for k, v in targets.items()}
    hot = multi_hot(targets, probs["fine"].shape[1]).numpy() if cfg.train.multilabel else None
    if cfg.train.multilabel and fit_thresholds:
        state["thresholds"] = tune_thresholds(probs["fine"], hot).tolist()
    if cfg.train.multilabel and "thresholds" not in state:
        raise UserError(f"{state.get('path')} is a multi-label model without tuned thresholds: retrain it")

    out_dir.mkdir(parents=True, exist_ok=True)
    heads: dict[str, Any] = {}
    for head in state["heads"]:
        names = taxonomy.names(head)
        heads[head] = classification_metrics(probs[head], target[head], names)
        write_confusion(
            heads[head]["confusion"],
            names,
            out_dir / f"confusion_{head}",
            f"{taxonomy.title(head)} ({split}, top-1 {heads[head]['top1']:.4f})",
        )
    report: dict[str, Any] = {
        "split": split,
        "model": model_footprint(state, classifier.models[0]),
        "checkpoint": state.get("path", ""),
        "stage": state.get("stage", ""),
        "taxonomy": taxonomy.name,
        "rule": cfg.hierarchy.rule,
        "n_images": len(sources),
        "skipped_images": len(skips),
        "skipped_files": skips.reasons,
        "heads": heads,
    }
    report["calibration"] = {"temperatures": state.get("temperatures", {})}
    if "implied_coarse" in probs and cfg.hierarchy.rule == "product":  # the two levels still agree: ~0
        gap = float(np.abs(probs["implied_coarse"] - probs["coarse"]).max())
        report["calibration"]["coarse_marginal_max_gap"] = round(gap, 7)
    for head in state["heads"]:
        if head == "fine" and cfg.train.multilabel:
            continue
        before, after = calibration_metrics(raw[head], target[head]), calibration_metrics(probs[head], target[head])
        if not before:  # no sample of this split has a label for this head
            continue
        report["calibration"][head] = {"before": before, "after": after}
        curves = {"uncalibrated": (raw[head], target[head])}
        if state.get("temperatures"):
            curves[f"T = {state['temperatures'].get(head, 1.0):.3g}"] = (probs[head], target[head])
        reliability_diagram(curves, f"{taxonomy.title(head)} ({split})", out_dir / f"reliability_{head}.png")
    if "fine" in probs and not cfg.train.multilabel:
        report["abstention"] = coverage_report(probs["fine"], probs["coarse"], target["fine"], target["coarse"],
                                               out_dir, min_prob)  # fmt: skip
    if cfg.train.multilabel:
        report["multilabel"] = multilabel_metrics(probs["fine"], hot, np.array(state["thresholds"]), taxonomy.fine)
    if "fine" in probs:
        report["hierarchy"] = hierarchical_metrics(
            probs["fine"], probs["coarse"], target["fine"], taxonomy, target["coarse"]
        )
    with open(out_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    write_predictions(out_dir / f"predictions_{split}.csv", sources, {h: probs[h] for h in heads}, target, taxonomy)
    return report


def evaluate_run(
    model: str | Path,
    split: str | None = "test",
    out: str | Path | None = None,
    device: str = "auto",
    overrides: list[str] | None = None,
    min_prob: float = 0.0,
    calibrate: bool = False,
    precision: str = "fp32",
) -> tuple[dict[str, Any], Path | None]:
    """Evaluate a run folder or checkpoint on its data's ``split``; files go to ``out`` (default ``<run>/<split>``).

    ``split=None`` (``hierarchy eval`` without ``--split``) is the test split when the data has one, else the
    run's validation split, with a ``note`` in the report that says so and how to add a test split; a run that
    held nothing out (no test split, ``data.val_fraction=0``) gets ``({"split": None, "note": …}, None)`` and no
    files. ``split="test"`` asked for explicitly on data without one raises ``NoTestSplit`` (a ``UserError``):
    a user who names the test split wants test figures, not validation ones under another name.

    With ``calibrate`` the temperatures are fitted on this split and written into the checkpoint file (only
    them: the overrides below are not saved). ``overrides`` may set ``data.*`` (e.g. where the data moved),
    ``detect.*``, ``hierarchy.*`` (the decoding rule) and the test-time views ``model.tta_flip`` /
    ``model.tta_shift``; nothing that changes the network.
    """
    state = load_checkpoint(model)
    cfg = from_dict(state["config"])
    values = parse_overrides(overrides or [])
    refuse_ignored("eval", values)  # nothing that changes the network (config.COMMANDS)
    apply(cfg, values)
    state["config"] = to_dict(cfg)  # the decoding rule and data location used for this report
    taxonomy = build_taxonomy(state["taxonomy"], source=state["path"])
    where = str(select_device(device))
    no_test = ""  # why there is no test split and how to add one, when split=None found none
    if split in (None, "test"):
        try:
            dataset, split = build_test(cfg.data, taxonomy, cfg.detect, where), "test"
        except NoTestSplit as missing:
            if split == "test":
                raise
            split, no_test = "val", str(missing)
    if split != "test":
        dataset = build_splits(cfg.data, taxonomy, cfg.train.seed, cfg.detect, where)[1]
        if dataset is None and no_test:
            return {"split": None, "note": held_out_note(None, no_test, str(model))}, None
        if dataset is None and calibrate:
            raise UserError(
                f"{model} trained on every training image (data.val_fraction=0): there is no validation split to "
                "fit temperatures on; retrain with data.val_fraction=0.1 (the default)"
            )
        if dataset is None:
            raise UserError(f"{model} trained on every training image (data.val_fraction=0): use --split test")
    out_dir = Path(out) if out else Path(state["path"]).parent.parent / split
    report = evaluate_checkpoint(state, dataset, out_dir, split, device, calibrate=calibrate, min_prob=min_prob,
                                 precision=precision)
    if no_test:
        report["note"] = held_out_note("val", no_test, str(model))
    if calibrate:
        original = load_checkpoint(state["path"])
        original["temperatures"] = state["temperatures"]
        save_checkpoint(Path(original.pop("path")), original)
    return report, out_dir


def held_out_note(split: str | None, no_test: str, model: str) -> str:
    """What a report on data without a test split says: which split it is on instead (``val``, or None when
    nothing was held out) and, from ``no_test`` (the data adapter's words), how to add a test split."""
    then = f"{no_test}, then run hierarchy eval --model {model}."
    if split == "val":
        return (
            "No test split was given, so these figures are on the validation split, which also chose the best epoch: "
            f"expect slightly lower ones on new photos. {then}"
        )
    return (
        f"No test split was given and nothing else was held out ({model} trained on every training image: "
        f"data.val_fraction=0), so the model is not measured. {then}"
    )


def write_predictions(
    path: Path, sources: list[str], probs: dict[str, np.ndarray], targets: dict[str, np.ndarray], taxonomy: Taxonomy
) -> None:
    levels = [head for head in probs if head != "implied_coarse"]
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
                "top3": m.get("top3", ""),
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
    """The report as text: a table per head, then calibration, abstention and hierarchy lines, and last its
    ``note`` (e.g. that there was no test split), the one line of a report on nothing held out."""
    if report["split"] is None:
        return report["note"]
    text = f"{report['split']} split, {report['n_images']} images, taxonomy {report['taxonomy']}\n"
    m = report.get("model")
    if m:
        text += f"model {m['size_mb']} MB, {m['parameters']:,} parameters, CPU latency {m['cpu_latency_ms']} ms/image\n"
    text += format_table(summary_rows(report), ["head", "top1", "top3", "top5", "macro_f1", "mean_class_acc", "n"])
    ml = report.get("multilabel")
    if ml:
        text += (
            f"\nmulti-label fine head: micro F1 {ml['micro_f1']:.4f}, macro F1 {ml['macro_f1']:.4f}, "
            f"mAP {ml['mean_average_precision']:.4f} at per-class thresholds tuned on validation"
        )
    text += "".join("\n" + line for line in trust_lines(report))
    h = report.get("hierarchy")
    if h:
        text += (
            f"\nhierarchy rule {report['rule']}: consistency {h['consistency']:.4f}, "
            f"mistake severity {h['mistake_severity']:.2f} (2 = sibling, 4 = other group), "
            f"sibling errors {h['sibling_error_share']:.1%}"
        )
    return text + (f"\n{report['note']}" if report.get("note") else "")


def trust_lines(report: dict[str, Any]) -> list[str]:
    """Calibration per head (before and after its temperature) and the abstention figures, one line each."""
    lines, c = [], report.get("calibration", {})
    for head in report["heads"]:
        if head in c:
            b, a, t = c[head]["before"], c[head]["after"], c["temperatures"].get(head)
            line = f"{head}: ECE {b['ece']:.4f}, NLL {b['nll']:.4f}, Brier {b['brier']:.4f} uncalibrated"
            if t:
                line += f"; T = {t:.3f}: ECE {a['ece']:.4f}, NLL {a['nll']:.4f}, Brier {a['brier']:.4f}"
            lines.append(line)
    for key, name in (("at_95_coverage", "keeping 95 % of fine labels"), ("at_min_prob", "at --min-prob")):
        m = report.get("abstention", {}).get(key)
        if m:
            lines.append(
                f"abstention {name}: min_prob {m['min_prob']:.3f}, fine coverage {m['fine_coverage']:.3f}, fine "
                f"accuracy of the kept {m['fine_accuracy_kept']}, {m['fell_back']} fell back to coarse (coarse "
                f"accuracy {m['coarse_accuracy_fell_back']}), {m['neither']} kept neither"
            )
    return lines
