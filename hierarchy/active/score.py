"""A model's probabilities for every readable image of a dataset (a pool, held-back answers, a test split), in
the dataset's order, with the files it could not read: what the questions are asked from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hierarchy.data import build_loader
from hierarchy.data.images import SkipLog
from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.infer.decode import group_matrix


@dataclass
class Scores:
    probs: dict[str, torch.Tensor]  # {head: (N, K)} and implied_coarse, for the readable samples
    targets: dict[str, torch.Tensor]  # {head: (N,)}: -1 where unknown
    index: torch.Tensor  # (N,) each readable sample's position in the dataset
    skipped: dict[str, str] = field(default_factory=dict)  # {file: reason}


def score(classifiers: TorchClassifiers, dataset, batch_size: int = 256, workers: int = -1) -> Scores:
    """Calibrated probabilities (the models' own views, averaged over an ensemble) for every readable sample.
    The dataset's ``subset`` must keep names unique per sample (``source``) for positions to be recovered."""
    names = {dataset.source(i): i for i in range(len(dataset))}
    probs: dict[str, list[torch.Tensor]] = {}
    targets: dict[str, list[torch.Tensor]] = {}
    index: list[int] = []
    skips = SkipLog()
    for batch in build_loader(dataset, batch_size, workers):
        skips.add(batch.skipped)
        if not batch.sources:
            continue
        for head, value in classifiers.probabilities([batch.images] * len(classifiers.models)).items():
            probs.setdefault(head, []).append(value)
        for head, value in batch.targets.items():
            targets.setdefault(head, []).append(value)
        index += [names[s] for s in batch.sources]
    joined = {h: torch.cat(v) for h, v in probs.items()}
    if "fine" in joined:  # the groups the fine probabilities imply (what the hierarchy's answer is judged by)
        joined["implied_coarse"] = joined["fine"] @ group_matrix(classifiers.taxonomy)
    return Scores(
        joined,
        {h: torch.cat(v) for h, v in targets.items()},
        torch.tensor(index, dtype=torch.long),
        dict(skips.reasons),
    )


def accuracy(scores: Scores) -> dict[str, float | int | None]:
    """Share right at each sample's known level: fine top-1 where the fine label is known, else group top-1
    (the group of the fine prediction); ``fine_top1`` over the fine-labelled ones alone."""
    fine_true, coarse_true = scores.targets["fine"], scores.targets["coarse"]
    if not len(fine_true):
        return {"n": 0, "score": None, "fine_top1": None}
    fine_hit = scores.probs["fine"].argmax(-1) == fine_true
    coarse_hit = scores.probs["implied_coarse"].argmax(-1) == coarse_true
    has_fine = fine_true >= 0
    right = torch.where(has_fine, fine_hit, coarse_hit)
    fine_top1 = fine_hit[has_fine].float().mean().item() if has_fine.any() else None
    return {"n": len(right), "score": round(right.float().mean().item(), 4),
            "fine_top1": None if fine_top1 is None else round(fine_top1, 4)}  # fmt: skip
