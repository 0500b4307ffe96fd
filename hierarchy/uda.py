"""Unsupervised Data Augmentation (Xie et al., 2020) plumbing: the unlabelled pool and its two views.

The engine adds ``train.uda * consistency_loss`` (see losses.py) to every step: a batch of unlabelled images
is augmented weakly (its predictions, without gradient, are the targets) and strongly (trained to match).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator

import torch
from torch import nn

from hierarchy.config import TrainConfig
from hierarchy.data import build_loader, build_unlabeled
from hierarchy.data.images import Batch, labelled
from hierarchy.data.transforms import augment_batch, to_model_input
from hierarchy.errors import UserError
from hierarchy.runner import autocast

log = logging.getLogger(__name__)

STRONG_AUGMENT = {"flip": 0.5, "rotate": 30.0, "translate": 0.2, "scale": 0.25, "jitter": 0.5, "erase": 1.0}


@torch.no_grad()
def uda_views(
    model: nn.Module,
    images: torch.Tensor,
    generator: torch.Generator,
    cfg: TrainConfig,
    device: torch.device,
    bf16: bool,
    strong_view: dict[str, float] = STRONG_AUGMENT,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Two views of unlabelled images: the model's logits on a weak view (flip and shift, no gradient) and a
    strongly augmented view (``strong_view``: UDA's rotation, zoom, lighting and erasing by default) for the
    caller's training forward."""
    weak = augment_batch(images, generator, cfg.flip, 0.0, cfg.translate, 0.0, 0.0, 0.0)
    strong = augment_batch(images, generator, **strong_view)
    with autocast(device, bf16):
        weak_logits = model(to_model_input(weak, channels_last=True))
    return {h: v.float() for h, v in weak_logits.items()}, strong


def endless_batches(dataset, batch_size: int, workers: int, seeds: Callable[[int], int]) -> Iterator[Batch]:
    """Shuffled batches forever, reshuffled each round with ``seeds(round)``, skipping batches whose every file
    was unreadable."""
    for round_ in itertools.count():
        for batch in build_loader(dataset, batch_size, workers, shuffle_seed=seeds(round_)):
            if batch.sources:
                yield batch


def split_unlabelled(train_set, heads: list[str], tc: TrainConfig, image_size: int, fixmatch: bool = False):
    """(labelled training samples, pool of unlabelled images for UDA or FixMatch, or None).

    Samples with no label for any of the model's heads teach the supervised loss nothing: they leave the
    training set, and with ``train.uda`` (or ``fixmatch``: ``train.fixmatch`` applies to this model) they join
    the images of ``train.unlabeled`` as the pool.
    """
    known = labelled(train_set, heads)
    unknown = (~known).nonzero().flatten()
    if len(unknown):
        log.info("%d of %d training samples have no label for heads %s", len(unknown), len(known), heads)
        if not known.any():
            raise UserError(f"no training sample has a label for heads {heads}: check data.format and the taxonomy")
    semi = tc.uda > 0 or fixmatch
    parts = [train_set.subset(unknown)] if len(unknown) and semi else []
    if semi and tc.unlabeled:
        parts.append(build_unlabeled(tc.unlabeled, image_size))
    if tc.uda > 0 and not parts:
        raise UserError("train.uda needs unlabelled images: set train.unlabeled=FOLDER (or data.label_fraction < 1)")
    if parts:
        method, weight = ("UDA", tc.uda) if tc.uda > 0 else ("FixMatch", tc.fixmatch)
        log.info("%s: %d unlabelled images, consistency weight %g", method, sum(len(p) for p in parts), weight)
    pool = torch.utils.data.ConcatDataset(parts) if parts else None
    return (train_set.subset(known.nonzero().flatten()) if len(unknown) else train_set), pool
