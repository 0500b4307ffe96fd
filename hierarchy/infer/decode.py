"""Hierarchy decoding: a model's head logits → probabilities per level that never contradict each other.

Rules of ``hierarchy.rule``:
- ``product``: p(fine) = p(coarse = parent) · p(fine | coarse), where p(fine | coarse) renormalises the
  fine softmax inside each coarse group. The fine probabilities sum to one and imply the coarse ones.
- ``mask``: the fine choice is restricted to the children of the most likely coarse class.
- ``flat``: the fine head alone; consistency with the coarse head is then measured, not enforced.
"""

from __future__ import annotations

import torch

from hierarchy.config import Config
from hierarchy.taxonomy import Taxonomy


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


def decode_model(
    logits: dict[str, torch.Tensor], taxonomy: Taxonomy, cfg: Config, temperatures: dict[str, float]
) -> dict[str, torch.Tensor]:
    """A model's probabilities from its logits: its temperatures, then its settings' hierarchy rule."""
    return decode_hierarchy(scaled(logits, temperatures), taxonomy, cfg.hierarchy.rule, cfg.train.multilabel)
