"""Dataset adapters behind one call: ``build_splits(data_cfg, taxonomy)`` and ``build_test(data_cfg, taxonomy)``.

Validation is carved out of the training split with a fixed seed unless the data has a split of its
own; the official test split is reached only through ``build_test`` (used by ``hierarchy eval``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from hierarchy.config import DataConfig, DetectConfig
from hierarchy.data import csv_manifest, fashion_mnist, fashionhow, image_folder, kfashion
from hierarchy.data.crops import LABELLED_BY_REGION, apply_crop_mode
from hierarchy.data.images import ImageFiles, collate, fine_labels_to_hide, head_labels, hide_labels
from hierarchy.data.suspects import drop_sources, read_suspects
from hierarchy.errors import UserError
from hierarchy.image_files import collect
from hierarchy.runner import decode_workers
from hierarchy.taxonomy import Taxonomy

log = logging.getLogger(__name__)


def _csv(cfg: DataConfig, split: str, taxonomy: Taxonomy):
    return csv_manifest.load(cfg.root, split, taxonomy, cfg.image_size, cfg.label_column, cfg.split_column)


FORMATS: dict[str, Callable] = {
    "fashion_mnist": lambda cfg, split, tax: fashion_mnist.load(cfg.root, split, tax, cfg.image_size),
    "folder": lambda cfg, split, tax: image_folder.load(
        cfg.root, split, tax, cfg.image_size, strict=cfg.crop not in LABELLED_BY_REGION
    ),
    "csv": _csv,
    "kfashion": lambda cfg, split, tax: kfashion.load(cfg.root, split, tax, cfg.image_size, cfg.mask == "polygon"),
    "fashionhow": lambda cfg, split, tax: fashionhow.load(cfg.root, split, tax, cfg.image_size),
}


def with_data_attributes(cfg: DataConfig, taxonomy: Taxonomy) -> Taxonomy:
    """The taxonomy plus the attribute heads the data labels, class counts read from the data (Fashion-How)."""
    if cfg.format == "fashionhow":
        return taxonomy.with_attributes(fashionhow.attribute_names(cfg.root, taxonomy))
    return taxonomy


def load_split(cfg: DataConfig, split: str, taxonomy: Taxonomy):
    return FORMATS[cfg.format](cfg, split, taxonomy)


def crop(dataset: Dataset, cfg: DataConfig, taxonomy: Taxonomy, detect: DetectConfig | None, device: str) -> Dataset:
    """Apply ``data.crop`` to image files; in-memory tensors (Fashion-MNIST) are whole images already."""
    if not isinstance(dataset, ImageFiles):
        if cfg.crop not in ("auto", "image"):
            raise UserError(f"data.crop={cfg.crop} needs photo files; data.format={cfg.format} has whole images only")
        return dataset
    return apply_crop_mode(dataset, cfg.crop, detect or DetectConfig(), taxonomy, device)


def build_splits(
    cfg: DataConfig, taxonomy: Taxonomy, seed: int, detect: DetectConfig | None = None, device: str = "cpu"
) -> tuple[Dataset, Dataset | None]:
    """(train, val) crops: the data's own validation split, or a seeded ``val_fraction`` carved from train.

    The carve-out picks whole images before they are cropped, so no image has crops on both sides. With
    ``val_fraction=0`` and no validation split in the data, val is None: every training image trains.
    """
    train = load_split(cfg, "train", taxonomy)
    if cfg.limit:
        train = train.subset(torch.arange(min(cfg.limit, len(train))))
    val = None if cfg.format == "fashion_mnist" else load_split(cfg, "val", taxonomy)
    if val is None and cfg.val_fraction > 0:
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
        n_val = max(1, round(len(train) * cfg.val_fraction))
        if len(train) - n_val < 1:
            raise UserError(f"only {len(train)} training images: too few to hold out validation")
        val, train = train.subset(order[:n_val].sort().values), train.subset(order[n_val:].sort().values)
    train = crop(train, cfg, taxonomy, detect, device)
    if cfg.label_fraction < 1:  # data-efficiency trials: keep a seeded share of the labels, hide the rest
        hidden = torch.rand(len(train), generator=torch.Generator().manual_seed(seed + 1)) >= cfg.label_fraction
        train = hide_labels(train, hidden)
        log.info("data.label_fraction=%g: %d of %d training samples keep their labels", cfg.label_fraction,
                 int((~hidden).sum()), len(train))  # fmt: skip
    if cfg.fine_label_fraction < 1:  # cheap coarse labels on every sample, fine ones on a share of each class
        hidden = fine_labels_to_hide(head_labels(train, "fine"), cfg.fine_label_fraction, seed + 2)
        train = hide_labels(train, hidden, keep_coarse=True)
        log.info("data.fine_label_fraction=%g: %d of %d training samples keep their fine label, every one its "
                 "coarse label", cfg.fine_label_fraction, int((head_labels(train, "fine") >= 0).sum()),
                 len(train))  # fmt: skip
    if cfg.drop_suspects:  # after cropping: an audit names crops (photo.jpg#top@0), not photos
        suspects = read_suspects(cfg.drop_suspects)
        before = len(train)
        train = drop_sources(train, suspects)
        log.info("data.drop_suspects: %d of %d training samples left out", before - len(train), before)
    return train, None if val is None else crop(val, cfg, taxonomy, detect, device)


def build_unlabeled(location: str, image_size: int) -> ImageFiles:
    """Images without labels (``train.unlabeled``: folders, files or .txt lists), used whole."""
    items = collect([location])
    if not items:
        raise UserError(f"train.unlabeled={location}: no images found there")
    files = [item.file for item in items]
    return ImageFiles(files, [-1] * len(files), [-1] * len(files), image_size)


def build_test(cfg: DataConfig, taxonomy: Taxonomy, detect: DetectConfig | None = None, device: str = "cpu") -> Dataset:
    return crop(load_split(cfg, "test", taxonomy), cfg, taxonomy, detect, device)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    shuffle_seed: int | None = None,
    sampler: torch.utils.data.Sampler | None = None,
) -> DataLoader:
    """A DataLoader over Batch objects; ``shuffle_seed`` fixes the order (seed + epoch) for exact resume."""
    if workers < 0:
        workers = 0 if getattr(dataset, "in_memory", False) else decode_workers()
    generator = None if shuffle_seed is None else torch.Generator().manual_seed(shuffle_seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle_seed is not None and sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )


def weighted_sampler(
    dataset: Any, balance: tuple[str, int] | None, fine_share: float, num_samples: int, generator: torch.Generator
) -> torch.utils.data.WeightedRandomSampler:
    """Draw ``num_samples`` with replacement, weighted for class balance, for the fine-labelled share, or both.

    Args:
        balance: ``(head, n_classes)``: each sample weighs 1 / (count of its class), so every class is drawn
            equally often; samples without a label for that head keep the mean weight, so they are still seen.
        fine_share: when above 0 and some samples lack the fine label, the fine-labelled samples together get
            this share of the draws and the coarse-only ones the rest (each group keeping its own weights).
    """
    weights = torch.ones(len(dataset))
    if balance is not None:
        ids = head_labels(dataset, balance[0])
        known = ids >= 0
        counts = torch.bincount(ids[known], minlength=balance[1]).float()
        weights[known] = 1.0 / counts[ids[known]]
        weights[~known] = weights[known].mean() if known.any() else 1.0
    fine_known = head_labels(dataset, "fine") >= 0 if fine_share > 0 else None
    if fine_known is not None and fine_known.any() and not fine_known.all():
        weights[fine_known] *= fine_share / weights[fine_known].sum()
        weights[~fine_known] *= (1 - fine_share) / weights[~fine_known].sum()
    return torch.utils.data.WeightedRandomSampler(weights, num_samples, replacement=True, generator=generator)
