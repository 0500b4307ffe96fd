"""Inference: the one code path of ``hierarchy eval``, ``hierarchy label`` and a web server.

- ``Classifiers``: one or more checkpoints of one taxonomy, their probabilities averaged (soft voting).
- ``forward``: logits averaged over the test-time views (mirror image, one-pixel shifts).
- ``decode_hierarchy``: head logits → coarse and fine probabilities that never contradict each other.
- ``top_k_columns``: per head, the label, its probability and the top k, as output columns.

Rules of ``hierarchy.rule``:
- ``product``: p(fine) = p(coarse = parent) · p(fine | coarse), where p(fine | coarse) renormalises the
  fine softmax inside each coarse group. The fine probabilities sum to one and imply the coarse ones.
- ``mask``: the fine choice is restricted to the children of the most likely coarse class.
- ``flat``: the fine head alone; consistency with the coarse head is then measured, not enforced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from hierarchy.checkpoint import load_checkpoint
from hierarchy.config import Config, apply, from_dict, to_dict
from hierarchy.data.images import Batch, SkipLog
from hierarchy.data.transforms import letterbox, to_model_input
from hierarchy.errors import UserError
from hierarchy.models import build_model
from hierarchy.runner import autocast
from hierarchy.taxonomy import Taxonomy, build_taxonomy

TOP_K = 5


def shifted_views(x: torch.Tensor, shift: int) -> list[torch.Tensor]:
    """``x`` (model input) and, with ``shift`` > 0, its copies moved ``shift`` pixels left, right, up and down.

    The uncovered border is black, as in the letterbox padding and the training shifts (replicating the edge
    scored lower on validation; benchmarks/results/fashion_mnist.md).
    """
    if shift <= 0:
        return [x]
    h, w = x.shape[-2:]
    black = to_model_input(torch.zeros(1, 3, 1, 1, device=x.device), channels_last=False).to(x.dtype)
    padded = F.pad(x - black, (shift, shift, shift, shift)) + black
    offsets = ((0, 0), (0, -shift), (0, shift), (-shift, 0), (shift, 0))
    return [padded[..., shift + dy : shift + dy + h, shift + dx : shift + dx + w] for dy, dx in offsets]


def forward(model: nn.Module, x: torch.Tensor, tta_flip: bool, tta_shift: int = 0) -> dict[str, torch.Tensor]:
    """Logits per head, averaged over the test-time views: with ``tta_flip`` the mirrored image (garments are
    left-right symmetric), with ``tta_shift`` copies shifted by that many pixels (small images, where one
    pixel of framing moves the prediction)."""
    views = shifted_views(x, tta_shift)
    if tta_flip:
        views += [v.flip(-1) for v in views]
    outs = [model(v) for v in views]
    if len(outs) == 1:
        return outs[0]
    return {head: sum(out[head].float() for out in outs) / len(outs) for head in outs[0]}


def over_loader(loader, outputs: Callable[[Batch], dict[str, torch.Tensor]], skips: SkipLog | None = None):
    """``outputs(batch)`` for every readable batch, joined: ``({head: (N, K)}, {head: (N,)} targets, sources)``."""
    found: dict[str, list[torch.Tensor]] = {}
    targets: dict[str, list[torch.Tensor]] = {}
    sources: list[str] = []
    for batch in loader:
        if skips is not None:
            skips.add(batch.skipped)
        if not batch.sources:
            continue
        for head, value in outputs(batch).items():
            found.setdefault(head, []).append(value)
        for head, value in batch.targets.items():
            targets.setdefault(head, []).append(value)
        sources += batch.sources
    return {k: torch.cat(v) for k, v in found.items()}, {k: torch.cat(v) for k, v in targets.items()}, sources


@torch.no_grad()
def predict(
    model: nn.Module,
    loader,
    device: torch.device,
    amp: bool = True,
    channels_last: bool = True,
    skips: SkipLog | None = None,
    tta_flip: bool = False,
    tta_shift: int = 0,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """Logits of one network for every readable image: ``({head: (N, K)}, {head: (N,)} targets, sources)``."""
    model.eval()

    def logits(batch: Batch) -> dict[str, torch.Tensor]:
        x = to_model_input(batch.images.to(device, non_blocking=True), channels_last)
        with autocast(device, amp):
            return {head: value.float().cpu() for head, value in forward(model, x, tta_flip, tta_shift).items()}

    return over_loader(loader, logits, skips)


def group_matrix(taxonomy: Taxonomy, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n_fine, n_coarse) 0/1 matrix: entry [f, c] is 1 when c is the parent of f."""
    m = torch.zeros(taxonomy.num_classes("fine"), taxonomy.num_classes("coarse"), device=device)
    m[torch.arange(len(taxonomy.parents)), torch.tensor(taxonomy.parents)] = 1.0
    return m


def scaled(logits: dict[str, torch.Tensor], temperatures: dict[str, float]) -> dict[str, torch.Tensor]:
    """Each head's logits divided by its temperature (see calibration.py); heads without one as they are."""
    return {h: v.float() / temperatures[h] if h in temperatures else v for h, v in logits.items()}


def decode_hierarchy(
    logits: dict[str, torch.Tensor], taxonomy: Taxonomy, rule: str = "product", multilabel: bool = False
) -> dict[str, torch.Tensor]:
    """Probabilities per level from a model's logits (``rule`` is checked where settings are read).

    Args:
        logits: ``{"coarse": (B, n_coarse)}`` and, for a fine model, ``"fine": (B, n_fine)``; attribute heads
            (``{"daily": (B, n_daily)}`` …) stand beside the tree and are decoded by a softmax of their own.

    Returns:
        ``{"coarse": (B, n_coarse)}`` (the coarse head's own probabilities) and, for a fine model,
        ``"fine": (B, n_fine)`` decoded by ``rule`` and ``"implied_coarse": (B, n_coarse)``, the coarse
        probabilities the fine ones imply (summed per group); one entry per attribute head. With ``multilabel``
        the fine probabilities are independent sigmoids and a group is as likely as its likeliest member.
    """
    out = {head: value.float().softmax(-1) for head, value in logits.items() if head != "fine"}
    if "fine" not in logits:
        return out
    groups = group_matrix(taxonomy, logits["fine"].device)  # (F, C)
    if multilabel:  # one sigmoid per fine class; a group is as likely as its likeliest member
        out["fine"] = logits["fine"].float().sigmoid()
        out["implied_coarse"] = (out["fine"][:, :, None] * groups).amax(1)  # (B, C)
        return out
    fine = logits["fine"].float().softmax(-1)  # (B, F)
    if rule != "flat":
        within = fine / (fine @ groups @ groups.T).clamp_min(1e-12)  # p(f | parent(f)), (B, F)
        parent_prob = out["coarse"] @ groups.T  # p(parent(f)) per fine column, (B, F)
        if rule == "mask":
            best = torch.nn.functional.one_hot(out["coarse"].argmax(-1), groups.shape[1]).float()
            parent_prob = best @ groups.T
        fine = within * parent_prob
    out["fine"] = fine
    out["implied_coarse"] = fine @ groups  # (B, C)
    return out


def model_from_checkpoint(state: dict[str, Any], device: torch.device) -> nn.Module:
    """Rebuild the network a checkpoint was trained with (no pretrained weights: the checkpoint has them all)."""
    cfg = from_dict(state["config"])
    cfg.model.pretrained, cfg.model.weights = False, ""
    model = build_model(cfg.model, state["heads"])
    model.load_state_dict(state["model"])
    return model.to(device).to(memory_format=torch.channels_last)


class Classifiers:
    """One or more checkpoints of the same taxonomy and heads; probabilities averaged across them (soft voting).

    Each model keeps its own input size, test-time views, mixed precision and decoding rule (its saved config).
    """

    def __init__(self, states: list[dict[str, Any]], device: torch.device) -> None:
        self.states, self.device = states, device
        self.taxonomy = build_taxonomy(states[0]["taxonomy"], source=states[0].get("path", "checkpoint"))
        self.heads = list(states[0]["heads"])
        for state in states[1:]:
            if state["taxonomy"] != states[0]["taxonomy"] or list(state["heads"]) != self.heads:
                raise UserError(
                    f"{state['path']} and {states[0]['path']} differ in taxonomy or heads: an ensemble "
                    "needs models of one taxonomy and stage"
                )
        self.configs: list[Config] = [from_dict(s["config"]) for s in states]
        if len({c.train.multilabel for c in self.configs}) > 1:
            raise UserError("an ensemble needs all multi-label or all single-label models, not a mix")
        self.multilabel = self.configs[0].train.multilabel
        # Multi-label styles: a style is given when its averaged probability reaches the averaged threshold.
        self.thresholds = (
            torch.tensor([s["thresholds"] for s in states]).mean(0)
            if self.multilabel and all("thresholds" in s for s in states)
            else None
        )
        self.models = [model_from_checkpoint(s, device).eval() for s in states]

    @classmethod
    def load(
        cls, paths: list[str], device: torch.device, views: str = "model", tta_shift: int | None = None
    ) -> Classifiers:
        """Checkpoints (files or run folders) and the test-time views to use: ``views`` "model" (the views each is
        evaluated with), "one" (the crop as it is) or "" (what its owner set in ``label.views``, else one: the
        labelling default); ``tta_shift`` then replaces the shifted views."""
        states = [load_checkpoint(p) for p in paths]
        for state in states:
            cfg = from_dict(state["config"])
            if (views or cfg.label.views or "one") == "one":
                apply(cfg.model, {"tta_flip": False, "tta_shift": 0}, "model.")
            if tta_shift is not None:
                apply(cfg.model, {"tta_shift": tta_shift}, "model.")
            state["config"] = to_dict(cfg)
        return cls(states, device)

    def logits(self, k: int, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Model ``k``'s logits per head for a uint8 batch (B, 3, S, S), averaged over its test-time views."""
        cfg = self.configs[k]
        x = to_model_input(batch.to(self.device, non_blocking=True), cfg.model.channels_last)
        with torch.no_grad(), autocast(self.device, cfg.train.amp):
            return {
                h: v.float() for h, v in forward(self.models[k], x, cfg.model.tta_flip, cfg.model.tta_shift).items()
            }

    def decode(self, k: int, logits: dict[str, torch.Tensor], calibrated: bool = True) -> dict[str, torch.Tensor]:
        """Model ``k``'s probabilities from its logits: its temperatures (when fitted and ``calibrated``), then
        its hierarchy rule."""
        cfg, temperatures = self.configs[k], self.states[k].get("temperatures", {}) if calibrated else {}
        return decode_hierarchy(scaled(logits, temperatures), self.taxonomy, cfg.hierarchy.rule, cfg.train.multilabel)

    def probabilities(self, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Averaged probabilities per head for one batch, given each model's uint8 input (B, 3, S, S)."""
        total: dict[str, torch.Tensor] = {}
        for k, batch in enumerate(inputs):
            probs = self.decode(k, self.logits(k, batch))
            for head in self.heads:
                total[head] = total.get(head, 0) + probs[head].cpu() / len(self.models)
        return total

    def crops(self, images: list[Image.Image], boxes: list) -> dict[str, torch.Tensor]:
        """Probabilities per head for crops ``(image, box in that image's pixels or None for all of it)``."""
        return self.probabilities([letterboxed(images, boxes, cfg.data.image_size) for cfg in self.configs])

    def dataset_logits(self, loader, skips: SkipLog | None = None) -> tuple[dict, dict, list[str]]:
        """The first model's logits for every readable sample of a loader (for calibration and its report)."""
        return over_loader(loader, lambda batch: {h: v.cpu() for h, v in self.logits(0, batch.images).items()}, skips)


def letterboxed(images: list[Image.Image], boxes: list, size: int) -> torch.Tensor:
    """uint8 (N, 3, size, size): each image's box (or all of it, for None) letterboxed to the model's input."""
    return torch.stack([letterbox(image, size, box) for image, box in zip(images, boxes)])


def top_k(probs: dict[str, torch.Tensor], i: int, taxonomy: Taxonomy, k: int = TOP_K) -> dict[str, list]:
    """Row ``i``'s k likeliest classes per head, likeliest first: ``{head: [(name, probability), …]}``."""
    out = {}
    for level, p in probs.items():
        names = taxonomy.names(level)
        top = p[i].topk(min(k, len(names)))
        out[level] = [(names[int(c)], float(v)) for v, c in zip(*top)]
    return out


def top_k_columns(probs: dict[str, torch.Tensor], i: int, taxonomy: Taxonomy, thresholds=None) -> dict:
    """Row ``i``'s columns: per head the label, its probability and the top k (``name:p|…``); multi-label
    models add ``fine_labels`` (every fine class at or above its threshold, ``|``-separated)."""
    row = {}
    if thresholds is not None:
        row["fine_labels"] = "|".join(
            n for n, p, t in zip(taxonomy.fine, probs["fine"][i].tolist(), thresholds) if p >= t
        )
    for level, top in top_k(probs, i, taxonomy).items():
        row[level] = top[0][0]
        row[f"{level}_prob"] = round(top[0][1], 4)
        row[f"{level}_top{TOP_K}"] = "|".join(f"{name}:{p:.3f}" for name, p in top)
    return row
