"""Evaluation measures: a checkpoint's predictions on a split (``predict_split``) and the metrics they give
(``evaluate``), nothing written. Writing the report (report.py), fitting temperatures (calibration.py) and tuning
multi-label thresholds (metrics.py) are separate steps that the recipes and ``hierarchy eval`` call; timing
(``model_latency``) runs only where it is asked for (``hierarchy eval --latency``, the benchmarks)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hierarchy.calibration import calibration_metrics, fit_temperatures
from hierarchy.config import from_dict
from hierarchy.data import build_loader
from hierarchy.data.images import SkipLog, multi_hot
from hierarchy.data.transforms import to_model_input
from hierarchy.errors import UserError
from hierarchy.infer.abstention import coverage_curve
from hierarchy.infer.classifier import TorchClassifiers, forward, model_from_checkpoint
from hierarchy.infer.decode import decode_model
from hierarchy.metrics import classification_metrics, hierarchical_metrics, multilabel_metrics, tune_thresholds
from hierarchy.runner import autocast
from hierarchy.taxonomy import build_taxonomy

log = logging.getLogger(__name__)
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # batch-norm statistics: not parameters


@dataclass
class Predictions:
    """A model's logits for every readable sample of a split, their targets and sources, and the files skipped."""

    logits: dict[str, torch.Tensor]  # {head: (N, K)}
    targets: dict[str, torch.Tensor]  # {head: (N,)}, -1 where a sample has no label for the head
    sources: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # {file: reason}


@dataclass
class Evaluation:
    """What ``evaluate`` measured: the report (``metrics.json``) and what the report files are drawn from."""

    report: dict[str, Any]
    probs: dict[str, np.ndarray]  # calibrated, per head (and implied_coarse)
    targets: dict[str, np.ndarray]
    sources: list[str]
    reliability: dict[str, dict] = field(default_factory=dict)  # {head: {curve name: (probs, targets)}}
    coverage: list[dict] = field(default_factory=list)  # the accuracy–coverage curve of a fine model


def predict_split(
    classifier: TorchClassifiers, dataset, batch_size: int = 256, workers: int = -1,
    already_skipped: dict[str, str] | None = None,
) -> Predictions:  # fmt: skip
    """The first model's logits for every readable sample of ``dataset``; unreadable files are counted once each,
    together with ``already_skipped`` (those met while training, for a run's report)."""
    skips = SkipLog()
    skips.reasons.update(already_skipped or {})
    logits, targets, sources = classifier.dataset_logits(build_loader(dataset, batch_size, workers), skips)
    return Predictions(logits, targets, sources, dict(skips.reasons))


def probabilities(state: dict[str, Any], logits: dict[str, torch.Tensor], calibrated: bool = True) -> dict:
    """A checkpoint's probabilities from its logits: its temperatures (when fitted and ``calibrated``), then its
    hierarchy rule."""
    cfg = from_dict(state["config"])
    temperatures = state.get("temperatures", {}) if calibrated else {}
    taxonomy = build_taxonomy(state["taxonomy"], source=state.get("path", "checkpoint"))
    return {k: v.numpy() for k, v in decode_model(logits, taxonomy, cfg, temperatures).items()}


def evaluate(state: dict[str, Any], predictions: Predictions, split: str, min_prob: float = 0.0) -> Evaluation:
    """Every metric of a checkpoint (its temperatures and thresholds as they are in ``state``) on a split's
    predictions: per head top-k, macro P/R/F1 and the confusion matrix, calibration before and after the
    temperatures, abstention (and at ``min_prob``, if given), multi-label F1 and mAP, hierarchy figures."""
    cfg = from_dict(state["config"])
    taxonomy = build_taxonomy(state["taxonomy"], source=state.get("path", "checkpoint"))
    if cfg.train.multilabel and "thresholds" not in state:
        raise UserError(f"{state.get('path')} is a multi-label model without tuned thresholds: retrain it")
    raw = probabilities(state, predictions.logits, calibrated=False)
    probs = probabilities(state, predictions.logits)
    target = {k: v.numpy() for k, v in predictions.targets.items()}
    heads = {head: classification_metrics(probs[head], target[head], taxonomy.names(head)) for head in state["heads"]}
    report: dict[str, Any] = {
        "split": split,
        "model": model_size(state),
        "checkpoint": state.get("path", ""),
        "stage": state.get("stage", ""),
        "taxonomy": taxonomy.name,
        "rule": cfg.hierarchy.rule,
        "n_images": len(predictions.sources),
        "skipped_images": len(predictions.skipped),
        "skipped_files": predictions.skipped,
        "heads": heads,
    }
    evaluation = Evaluation(report, probs, target, predictions.sources)
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
        evaluation.reliability[head] = curves
    if "fine" in probs and not cfg.train.multilabel:
        evaluation.coverage, report["abstention"] = coverage_curve(
            probs["fine"], probs["coarse"], target["fine"], target["coarse"], min_prob
        )
    if cfg.train.multilabel:
        hot = multi_hot(predictions.targets, probs["fine"].shape[1]).numpy()
        report["multilabel"] = multilabel_metrics(probs["fine"], hot, np.array(state["thresholds"]), taxonomy.fine)
    if "fine" in probs:
        report["hierarchy"] = hierarchical_metrics(
            probs["fine"], probs["coarse"], target["fine"], taxonomy, target["coarse"]
        )
    return evaluation


def fit_calibration(state: dict[str, Any], predictions: Predictions, thresholds: bool = False) -> None:
    """Fit every head's temperature on these (validation) predictions into ``state["temperatures"]``; with
    ``thresholds`` also tune a multi-label model's per-class thresholds for F1 on the calibrated probabilities."""
    cfg = from_dict(state["config"])
    taxonomy = build_taxonomy(state["taxonomy"], source=state.get("path", "checkpoint"))
    state["temperatures"] = fit_temperatures(
        predictions.logits, predictions.targets, taxonomy, cfg.hierarchy.rule, cfg.train.multilabel
    )
    if thresholds and cfg.train.multilabel:
        fine = probabilities(state, predictions.logits)["fine"]
        state["thresholds"] = tune_thresholds(fine, multi_hot(predictions.targets, fine.shape[1]).numpy()).tolist()


def model_size(state: dict[str, Any]) -> dict[str, Any]:
    """The network's parameter count and weights size."""
    size_mb = sum(v.numel() * v.element_size() for v in state["model"].values()) / 1e6
    return {
        "parameters": sum(v.numel() for k, v in state["model"].items() if not k.endswith(BUFFERS)),
        "size_mb": round(size_mb, 2),
    }


def model_latency(state: dict[str, Any], runs: int = 20, precision: str = "fp32") -> dict[str, Any]:
    """Single-image CPU latency with the model's evaluation views (batch 1, one thread per core, median of
    ``runs`` after 3 warm-up passes)."""
    model = model_from_checkpoint(state, torch.device("cpu")).eval()
    cfg = from_dict(state["config"])
    side = cfg.data.image_size
    x = to_model_input(torch.zeros(1, 3, side, side, dtype=torch.uint8))
    times = []
    with torch.no_grad(), autocast(torch.device("cpu"), precision == "bf16"):
        for i in range(runs + 3):
            start = time.perf_counter()
            forward(model, x, cfg.model.tta_flip, cfg.model.tta_shift)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return {"cpu_latency_ms": round(1000 * float(np.median(times)), 2), "cpu_threads": torch.get_num_threads()}
