"""The report of an evaluation: its files (``metrics.json``, ``confusion_<head>.{png,csv}``, ``reliability_<head>.png``,
``coverage.{csv,png}`` for a fine model, ``predictions_<split>.csv``), its text for the log, and ``evaluate_run``:
``hierarchy eval`` and ``hierarchy calibrate`` on a run, measure then write."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy.calibration import reliability_diagram
from hierarchy.checkpoint import load_checkpoint, save_checkpoint
from hierarchy.config import apply, from_dict, parse_overrides, refuse_ignored, to_dict
from hierarchy.data import build_splits, build_test
from hierarchy.errors import NoTestSplit, UserError
from hierarchy.evaluate import Evaluation, evaluate, fit_calibration, model_latency, predict_split
from hierarchy.infer.abstention import save_coverage
from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.metrics import format_table, write_confusion
from hierarchy.runner import select_device
from hierarchy.taxonomy import Taxonomy, build_taxonomy


def write_report(evaluation: Evaluation, taxonomy: Taxonomy, out_dir: Path) -> None:
    """Every report file of ``evaluation`` into ``out_dir``."""
    report, split = evaluation.report, evaluation.report["split"]
    out_dir.mkdir(parents=True, exist_ok=True)
    for head, m in report["heads"].items():
        write_confusion(m["confusion"], taxonomy.names(head), out_dir / f"confusion_{head}",
                        f"{taxonomy.title(head)} ({split}, top-1 {m['top1']:.4f})")  # fmt: skip
    for head, curves in evaluation.reliability.items():
        reliability_diagram(curves, f"{taxonomy.title(head)} ({split})", out_dir / f"reliability_{head}.png")
    if evaluation.coverage:
        save_coverage(evaluation.coverage, out_dir)
    with open(out_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    probs = {h: evaluation.probs[h] for h in report["heads"]}
    write_predictions(out_dir / f"predictions_{split}.csv", evaluation.sources, probs, evaluation.targets, taxonomy)


def evaluate_run(
    model: str | Path,
    split: str | None = "test",
    out: str | Path | None = None,
    device: str = "auto",
    overrides: list[str] | None = None,
    min_prob: float = 0.0,
    calibrate: bool = False,
    precision: str = "fp32",
    latency: bool = False,
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
    ``model.tta_shift``; nothing that changes the network. The model's evaluation views at ``precision``;
    ``latency`` adds the single-image CPU latency to the report.
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
    classifier = TorchClassifiers([state], select_device(device), views="model", precision=precision)
    predictions = predict_split(classifier, dataset)
    if calibrate:
        fit_calibration(state, predictions)
    evaluation = evaluate(state, predictions, split, min_prob)
    if latency:
        evaluation.report["model"].update(model_latency(state, precision=precision))
    if no_test:
        evaluation.report["note"] = held_out_note("val", no_test, str(model))
    write_report(evaluation, taxonomy, out_dir)
    if calibrate:
        original = load_checkpoint(state["path"])
        original["temperatures"] = state["temperatures"]
        save_checkpoint(Path(original.pop("path")), original)
    return evaluation.report, out_dir


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
        latency = f", CPU latency {m['cpu_latency_ms']} ms/image" if "cpu_latency_ms" in m else ""
        text += f"model {m['size_mb']} MB, {m['parameters']:,} parameters{latency}\n"
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
