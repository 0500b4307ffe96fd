"""Inference over a loader: logits per head for every readable image (validation, evaluation, labelling)."""

from __future__ import annotations

import torch
from torch import nn

from hierarchy.data.images import SkipLog
from hierarchy.data.transforms import to_model_input
from hierarchy.runner import autocast


def forward(model: nn.Module, x: torch.Tensor, tta_flip: bool) -> dict[str, torch.Tensor]:
    """Logits per head; with ``tta_flip`` averaged with the mirrored image's (garments are left-right symmetric)."""
    out = model(x)
    if tta_flip:
        mirrored = model(x.flip(-1))
        out = {head: (out[head].float() + mirrored[head].float()) / 2 for head in out}
    return out


@torch.no_grad()
def predict(
    model: nn.Module,
    loader,
    device: torch.device,
    amp: bool = True,
    channels_last: bool = True,
    skips: SkipLog | None = None,
    tta_flip: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """Logits for every readable image: ``({head: (N, K)}, {head: (N,)} targets, sources)``."""
    model.eval()
    logits: dict[str, list[torch.Tensor]] = {}
    targets: dict[str, list[torch.Tensor]] = {}
    sources: list[str] = []
    for batch in loader:
        if skips is not None:
            skips.add(batch.skipped)
        if not batch.sources:
            continue
        x = to_model_input(batch.images.to(device, non_blocking=True), channels_last)
        with autocast(device, amp):
            out = forward(model, x, tta_flip)
        for head, value in out.items():
            logits.setdefault(head, []).append(value.float().cpu())
        for head, value in batch.targets.items():
            targets.setdefault(head, []).append(value)
        sources += batch.sources
    return ({k: torch.cat(v) for k, v in logits.items()}, {k: torch.cat(v) for k, v in targets.items()}, sources)
