"""Training losses: per-head cross-entropy (class weights, CutMix mixing), multi-label BCE, UDA consistency."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from hierarchy.config import TrainConfig
from hierarchy.data.images import head_labels, multi_hot


def class_weights(dataset: Any, heads: dict[str, int]) -> dict[str, torch.Tensor]:
    """Inverse class frequency per head, normalised to mean 1 over the classes present."""
    weights = {}
    for head, n in heads.items():
        ids = head_labels(dataset, head)
        counts = torch.bincount(ids[ids >= 0], minlength=n).float()
        w = torch.where(counts > 0, counts.sum() / counts.clamp_min(1), torch.zeros_like(counts))
        weights[head] = w / w[counts > 0].mean()
    return weights


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, smoothing: float):
    """Mean cross-entropy over the labelled rows (target >= 0); zero, still in the graph, when there are none.

    Class weights weight each sample by its true class, normalised by the batch's weight sum. (Passing them to
    ``F.cross_entropy`` would also weight the label-smoothing term, which pulls every sample's target towards
    the rare classes.)
    """
    labelled = target >= 0
    if not labelled.any():
        return logits.sum() * 0.0
    if weight is None:
        return F.cross_entropy(logits.float(), target, ignore_index=-1, label_smoothing=smoothing)
    logits, target = logits[labelled].float(), target[labelled]
    per_sample = F.cross_entropy(logits, target, reduction="none", label_smoothing=smoothing)
    w = weight[target]
    return (per_sample * w).sum() / w.sum()


def binary_cross_entropy(logits: torch.Tensor, hot: torch.Tensor) -> torch.Tensor:
    """Mean BCE over the samples with at least one label; zero, still in the graph, when there are none."""
    rows = hot.sum(1) > 0
    if not rows.any():
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits.float()[rows], hot[rows])


def compute_loss(
    logits: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    cfg: TrainConfig,
    weights: dict[str, torch.Tensor] | None = None,
    mix: tuple[torch.Tensor, float] | None = None,
) -> torch.Tensor:
    """Weighted mean of per-head cross-entropies; targets of -1 (label unknown for that head) are ignored.

    Args:
        mix: CutMix ``(perm, lam)``: every head's loss is ``lam * CE(y) + (1 - lam) * CE(y[perm])``.
    """
    total, weight_sum = sum(out.sum() * 0.0 for out in logits.values()), 0.0  # a graph even with no labels
    for head, out in logits.items():
        target = targets[head]
        if not (target >= 0).any():
            continue
        w = weights[head].to(out.device) if weights else None
        if head == "fine" and cfg.multilabel:  # independent yes/no per style
            hot = multi_hot(targets, out.shape[1])
            loss = binary_cross_entropy(out, hot)
            if mix is not None:
                loss = mix[1] * loss + (1 - mix[1]) * binary_cross_entropy(out, hot[mix[0]])
        else:
            loss = cross_entropy(out, target, w, cfg.label_smoothing)
            if mix is not None:
                loss = mix[1] * loss + (1 - mix[1]) * cross_entropy(out, target[mix[0]], w, cfg.label_smoothing)
        head_weight = cfg.loss_weights.get(head, 1.0)
        total, weight_sum = total + head_weight * loss, weight_sum + head_weight
    return total / weight_sum if weight_sum else total


def consistency_loss(logits: dict[str, torch.Tensor], weak_logits: dict[str, torch.Tensor], cfg: TrainConfig):
    """Unsupervised Data Augmentation (Xie et al., 2020), averaged over the heads: cross-entropy between the
    weak view's sharpened prediction (temperature ``uda_temperature``) and the strong view's, counted only
    where the weak view is confident (max probability ≥ ``uda_threshold``); divided by the whole batch."""
    losses = []
    for head, out in logits.items():
        confident = (weak_logits[head].softmax(-1).max(-1).values >= cfg.uda_threshold).float()
        target = (weak_logits[head] / cfg.uda_temperature).softmax(-1)
        losses.append((-(target * out.float().log_softmax(-1)).sum(-1) * confident).mean())
    return sum(losses) / len(losses)


def group_pseudo_loss(
    fine_logits: torch.Tensor, targets: dict[str, torch.Tensor], groups: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Cross-entropy of the fine head against its own likeliest child of the known coarse group, on the samples
    labelled only at the coarse level, counted where that child holds at least ``threshold`` of the group's
    probability; divided by all such samples. A one-child group's label is the child itself.

    Args:
        fine_logits: (B, F) the fine head's logits.
        targets: ``{"coarse": (B,), "fine": (B,)}`` class ids, -1 = unknown.
        groups: (F, C) 0/1, entry [f, c] = 1 when c is the parent of f.
    """
    rows = (targets["fine"] < 0) & (targets["coarse"] >= 0)
    if not rows.any():
        return fine_logits.sum() * 0.0
    logits = fine_logits[rows].float()  # (R, F)
    with torch.no_grad():
        children = groups.T[targets["coarse"][rows]] > 0  # (R, F): the fine classes the label allows
        within = logits.masked_fill(~children, float("-inf")).softmax(-1)
        confidence, pseudo = within.max(-1)
    per_sample = F.cross_entropy(logits, pseudo, reduction="none")
    return (per_sample * (confidence >= threshold)).sum() / len(per_sample)
