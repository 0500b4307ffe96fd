"""Hierarchy-aware FixMatch (Sohn et al., 2020) on the images without a fine label.

Each such image in a batch whose group has more than one child is seen twice: its weak view (the training flip
and shift, in the batch, trained as before) gives a hard pseudo-label without gradient, and a strong view of the
same image, added to the training forward, is trained to predict it (engine.fixmatch_rows). The pseudo-label is
the likeliest fine class *among the children of the image's group*: the known coarse label where there is one,
else the coarse head's own answer on the weak view where that is confident. It counts only where that child holds
at least ``train.fixmatch_threshold`` of the group's probability. The strong view also learns the group (the
known one, or the confident guess), so every image teaches the coarse head under harder views too.

A first version put the strong view in the weak view's place (no extra forward): it lost the coarse head 1.4
points of validation group top-1 at 1 % fine labels (benchmarks/results/label_efficiency.md, Findings).

The strong view is milder than UDA's (hierarchy/uda.py): at 28 px, rotating 30° and shifting 20 % at once
leave a trained model at 0.52 top-1, so its targets were mostly wrong; this one was chosen by how well a trained
model still recognises it on validation images (benchmarks/results/fixmatch_views.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hierarchy.data.transforms import augment_batch

STRONG_VIEWS = {  # train.strong_view: how far the strong view departs from the image
    "mild": {"flip": 0.5, "rotate": 5.0, "translate": 0.08, "scale": 0.1, "jitter": 0.2, "erase": 0.25},
    "medium": {"flip": 0.5, "rotate": 10.0, "translate": 0.1, "scale": 0.15, "jitter": 0.3, "erase": 0.5},
    "strong": {"flip": 0.5, "rotate": 15.0, "translate": 0.15, "scale": 0.2, "jitter": 0.4, "erase": 1.0},
}


def strong_views(images: torch.Tensor, generator: torch.Generator, strength: str) -> torch.Tensor:
    """uint8 (B, C, H, W) → float [0, 1] strongly augmented views (``strength``: a key of STRONG_VIEWS)."""
    return augment_batch(images, generator, **STRONG_VIEWS[strength])


def hierarchy_fixmatch_loss(
    strong: dict[str, torch.Tensor],
    weak: dict[str, torch.Tensor],
    coarse_known: torch.Tensor,
    groups: torch.Tensor,
    threshold: float,
) -> torch.Tensor:
    """Mean over the R images of the strong views' cross-entropy against the weak views' pseudo-labels.

    Args:
        strong: ``{"coarse": (R, C), "fine": (R, F)}`` logits of the strong views (with gradient).
        weak: The same heads' logits of the weak views (their gradient is not used).
        coarse_known: (R,) the coarse label, -1 where unknown.
        groups: (F, C) 0/1, entry [f, c] = 1 when c is the parent of f.
        threshold: The probability a pseudo-label needs: a guessed group's, then the child's within its group.
    """
    with torch.no_grad():
        coarse_prob = weak["coarse"].float().softmax(-1)
        guess_conf, guess = coarse_prob.max(-1)
        known = coarse_known >= 0
        group = torch.where(known, coarse_known, guess)
        group_ok = known | (guess_conf >= threshold)
        children = groups.T[group] > 0  # (R, F)
        within = weak["fine"].float().masked_fill(~children, float("-inf")).softmax(-1)
        child_conf, child = within.max(-1)
        fine_ok = group_ok & (child_conf >= threshold)
    fine_loss = F.cross_entropy(strong["fine"].float(), child, reduction="none") * fine_ok
    coarse_loss = F.cross_entropy(strong["coarse"].float(), group, reduction="none") * group_ok
    return (fine_loss + coarse_loss).sum() / max(1, len(group))
