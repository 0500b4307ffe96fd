"""Labelled image datasets: in-memory tensors, or files decoded in loader workers.

Every sample is ``(image uint8 (C, S, S), fine id, coarse id, source)``. A label given only at the
coarse level has fine id -1, which the loss ignores. A file that cannot be decoded yields ``None``;
``collate`` drops it and passes its path on, so the run warns once and counts it, and never crashes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from hierarchy.data.transforms import letterbox, mask_outside, open_image
from hierarchy.errors import UserError
from hierarchy.taxonomy import Taxonomy

log = logging.getLogger(__name__)
Box = tuple[float, float, float, float]


def label_ids(taxonomy: Taxonomy, label: str) -> tuple[int, int]:
    """(fine id, coarse id) for a label string; fine names win, a coarse-only label gives fine id -1."""
    try:
        fine = taxonomy.lookup(label, "fine")
        return fine, taxonomy.parents[fine]
    except UserError as fine_error:
        try:
            return -1, taxonomy.lookup(label, "coarse")
        except UserError:
            raise fine_error from None


class TensorImages(Dataset):
    """Images already decoded into one uint8 tensor (N, C, S, S), e.g. Fashion-MNIST."""

    in_memory = True

    def __init__(self, images: torch.Tensor, fine: torch.Tensor, coarse: torch.Tensor, name: str) -> None:
        self.images, self.fine, self.coarse, self.name = images, fine.long(), coarse.long(), name

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, str]:
        return self.images[i], int(self.fine[i]), int(self.coarse[i]), f"{self.name}[{i}]"

    def subset(self, indices: torch.Tensor) -> TensorImages:
        return TensorImages(self.images[indices], self.fine[indices], self.coarse[indices], self.name)


@dataclass
class ImageFiles(Dataset):
    """Image files (with optional boxes) decoded and letterboxed on access."""

    paths: Sequence[str]
    fine: Sequence[int]
    coarse: Sequence[int]
    image_size: int
    boxes: Sequence[Box | None] | None = None
    tags: Sequence[str] | None = None  # what each crop is (person, top@0, annotation …), shown after the path
    polygons: Sequence | None = None  # per sample [(x, y), …] or None: pixels outside are blanked (data.mask)
    in_memory = False

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, str] | tuple[None, str, str]:
        path = str(self.paths[i])
        try:
            image, _ = open_image(path)
            if self.polygons and self.polygons[i]:
                image = mask_outside(image, self.polygons[i])
            tensor = letterbox(image, self.image_size, self.boxes[i] if self.boxes else None)
        except Exception as exc:  # any decode failure: a corrupt, truncated, huge or non-image file
            return None, path, f"{type(exc).__name__}: {exc}"
        source = f"{path}#{self.tags[i]}" if self.tags else path
        return tensor, int(self.fine[i]), int(self.coarse[i]), source

    def subset(self, indices: torch.Tensor) -> ImageFiles:
        pick = [int(i) for i in indices]
        return ImageFiles(
            [self.paths[i] for i in pick],
            [self.fine[i] for i in pick],
            [self.coarse[i] for i in pick],
            self.image_size,
            [self.boxes[i] for i in pick] if self.boxes else None,
            [self.tags[i] for i in pick] if self.tags else None,
            [self.polygons[i] for i in pick] if self.polygons else None,
        )

    def with_crops(self, index, boxes, fine, coarse, tags) -> ImageFiles:
        """New samples that crop image ``index[k]`` to ``boxes[k]`` (None = whole image) with new labels."""
        polygons = (
            [self.polygons[i] if b is not None else None for i, b in zip(index, boxes)] if self.polygons else None
        )
        return ImageFiles(
            [self.paths[i] for i in index], list(fine), list(coarse), self.image_size, list(boxes), tags, polygons
        )


@dataclass
class Batch:
    images: torch.Tensor  # (B, C, S, S) uint8
    targets: dict[str, torch.Tensor]  # {"coarse": (B,), "fine": (B,)} class ids, -1 = unknown
    sources: list[str]  # path or dataset[index] per image
    skipped: list[tuple[str, str]]  # (path, reason) of images that could not be read


def collate(samples: list) -> Batch:
    good = [s for s in samples if s[0] is not None]
    skipped = [(s[1], s[2]) for s in samples if s[0] is None]
    if not good:
        empty = torch.empty(0, dtype=torch.long)
        return Batch(torch.empty(0, 3, 1, 1, dtype=torch.uint8), {"coarse": empty, "fine": empty}, [], skipped)
    return Batch(
        images=torch.stack([s[0] for s in good]),
        targets={
            "fine": torch.tensor([s[1] for s in good], dtype=torch.long),
            "coarse": torch.tensor([s[2] for s in good], dtype=torch.long),
        },
        sources=[s[3] for s in good],
        skipped=skipped,
    )


class SkipLog:
    """Count unreadable files for a summary; warn once per file per process (not once per epoch or pass)."""

    warned: set[str] = set()

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def add(self, skipped: list[tuple[str, str]]) -> None:
        for path, reason in skipped:
            if path not in SkipLog.warned:
                log.warning("skipping unreadable image %s (%s)", path, reason)
                SkipLog.warned.add(path)
            self.reasons[path] = reason

    def __len__(self) -> int:
        return len(self.reasons)
