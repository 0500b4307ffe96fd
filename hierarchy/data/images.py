"""Labelled image datasets: in-memory tensors, or files decoded in loader workers.

Every sample is ``(image uint8 (C, S, S), fine id, coarse id, source, {attribute head: id})``. A label
given only at the coarse level has fine id -1, which the loss ignores; so has data without any tree labels
(Fashion-How labels attributes only). A file that cannot be decoded yields ``None``;
``collate`` drops it and passes its path on, so the run warns once and counts it, and never crashes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from hierarchy.data.transforms import letterbox, mask_outside
from hierarchy.errors import UserError
from hierarchy.image_files import open_image
from hierarchy.taxonomy import Taxonomy

log = logging.getLogger(__name__)
Box = tuple[float, float, float, float]
ALL_FINE = "fine_all"  # per-sample tuple of every fine class it is tagged with (multi-label styles)
MAX_LABELS = 4  # tuples are padded with -1 to this length in a batch: (B, MAX_LABELS)


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


def head_labels(dataset, head: str) -> torch.Tensor:
    """(N,) class ids of one head for every sample (-1 = unknown), without decoding any image."""
    values = dataset.attributes[head] if head in dataset.attributes else getattr(dataset, head)
    return torch.as_tensor(values, dtype=torch.long)


def multi_hot(targets: dict[str, torch.Tensor], n_classes: int) -> torch.Tensor:
    """(B, n_classes) 0/1 from every fine label of each sample (``fine_all``), or from the one fine label."""
    ids = targets.get(ALL_FINE, targets["fine"][:, None])  # (B, K), -1 padded
    hot = torch.zeros(len(ids), n_classes + 1, device=ids.device)
    hot.scatter_(1, torch.where(ids >= 0, ids, n_classes), 1.0)  # -1 lands in a spare column, then dropped
    return hot[:, :n_classes]


class TensorImages(Dataset):
    """Images already decoded into one uint8 tensor (N, C, S, S), e.g. Fashion-MNIST.

    ``ids`` are the positions in the original split, so a sample keeps its name (``fashion_mnist/train[123]``)
    through subsets: an audit's suspect list and a later run's ``data.drop_suspects`` mean the same images.
    """

    in_memory = True

    def __init__(
        self,
        images: torch.Tensor,
        fine: torch.Tensor,
        coarse: torch.Tensor,
        name: str,
        ids: torch.Tensor | None = None,
    ) -> None:
        self.images, self.fine, self.coarse, self.name = images, fine.long(), coarse.long(), name
        self.ids = torch.arange(len(images)) if ids is None else ids
        self.attributes: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.images)

    def source(self, i: int) -> str:
        return f"{self.name}[{int(self.ids[i])}]"

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, str, dict[str, int]]:
        return self.images[i], int(self.fine[i]), int(self.coarse[i]), self.source(i), {}

    def __getitems__(self, indices: list[int]) -> Batch:
        """A whole batch by one index per tensor (the DataLoader calls this when present): what ``collate`` makes of
        ``__getitem__``'s samples, without a Python step per image."""
        index = torch.as_tensor(indices, dtype=torch.long)
        targets = {"fine": self.fine[index], "coarse": self.coarse[index]}
        return Batch(self.images[index], targets, [self.source(i) for i in indices], [])

    def subset(self, indices: torch.Tensor) -> TensorImages:
        indices = torch.as_tensor(indices, dtype=torch.long)
        return TensorImages(
            self.images[indices], self.fine[indices], self.coarse[indices], self.name, self.ids[indices]
        )


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
    attributes: dict[str, Sequence[int]] = field(default_factory=dict)  # attribute head -> id per sample
    in_memory = False

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, str, dict[str, int]] | tuple[None, str, str]:
        path = str(self.paths[i])
        try:
            image, _ = open_image(path)
            if self.polygons and self.polygons[i]:
                image = mask_outside(image, self.polygons[i])
            tensor = letterbox(image, self.image_size, self.boxes[i] if self.boxes else None)
        except Exception as exc:  # any decode failure: a corrupt, truncated, huge or non-image file
            return None, path, f"{type(exc).__name__}: {exc}"
        attributes = {h: v[i] if isinstance(v[i], tuple) else int(v[i]) for h, v in self.attributes.items()}
        return tensor, int(self.fine[i]), int(self.coarse[i]), self.source(i), attributes

    def source(self, i: int) -> str:
        """The sample's name in reports: the path, and for a crop its kind (``photo.jpg#top@0``)."""
        path = str(self.paths[i])
        return f"{path}#{self.tags[i]}" if self.tags else path

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
            {h: [v[i] for i in pick] for h, v in self.attributes.items()},
        )

    def with_crops(self, index, boxes, fine, coarse, tags) -> ImageFiles:
        """New samples that crop image ``index[k]`` to ``boxes[k]`` (None = whole image) with new labels."""
        polygons = (
            [self.polygons[i] if b is not None else None for i, b in zip(index, boxes)] if self.polygons else None
        )
        attributes = {h: [v[i] for i in index] for h, v in self.attributes.items()}
        return ImageFiles(
            [self.paths[i] for i in index],
            list(fine),
            list(coarse),
            self.image_size,
            list(boxes),
            tags,
            polygons,
            attributes,
        )


def labelled(dataset, heads: list[str]) -> torch.Tensor:
    """(N,) bool: the samples with a label for at least one of ``heads``."""
    return torch.stack([head_labels(dataset, h) >= 0 for h in heads]).any(0)


def hide_labels(dataset, hidden: torch.Tensor, keep_coarse: bool = False):
    """A copy whose samples marked in ``hidden`` (N,) bool have no label for any head (-1): data-efficiency
    experiments, where those images serve only as unlabelled data. With ``keep_coarse`` only their fine labels
    go (and every fine label of a multi-label sample): images labelled at the coarse level only."""

    def masked(values) -> list:
        if len(values) and isinstance(values[0], tuple):  # every fine label of a sample (multi-label)
            return [() if hide else v for v, hide in zip(values, hidden.tolist())]
        ids = torch.as_tensor(values, dtype=torch.long).clone()
        ids[hidden] = -1
        return ids.tolist()

    coarse = dataset.coarse if keep_coarse else masked(dataset.coarse)
    if isinstance(dataset, TensorImages):
        return TensorImages(dataset.images, torch.tensor(masked(dataset.fine)), torch.as_tensor(coarse), dataset.name,
                            dataset.ids)  # fmt: skip
    attributes = {h: v if keep_coarse and h != ALL_FINE else masked(v) for h, v in dataset.attributes.items()}
    return dataclasses.replace(dataset, fine=masked(dataset.fine), coarse=coarse, attributes=attributes)


def fine_labels_to_hide(fine: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """(N,) bool: the fine labels to hide so that a seeded ``fraction`` of each fine class keeps its label (at
    least one sample of every class present, so no class is left without an example)."""
    generator = torch.Generator().manual_seed(seed)
    hidden = fine >= 0
    for c in fine[fine >= 0].unique().tolist():
        members = (fine == c).nonzero().flatten()
        keep = max(1, round(fraction * len(members)))
        hidden[members[torch.randperm(len(members), generator=generator)[:keep]]] = False
    return hidden


@dataclass
class Batch:
    images: torch.Tensor  # (B, C, S, S) uint8
    targets: dict[str, torch.Tensor]  # {"coarse": (B,), "fine": (B,), attribute heads …} class ids, -1 = unknown
    sources: list[str]  # path or dataset[index] per image
    skipped: list[tuple[str, str]]  # (path, reason) of images that could not be read


def collate(samples: list | Batch) -> Batch:
    if isinstance(samples, Batch):  # fetched whole (TensorImages.__getitems__)
        return samples
    good = [s for s in samples if s[0] is not None]
    skipped = [(s[1], s[2]) for s in samples if s[0] is None]
    if not good:
        empty = torch.empty(0, dtype=torch.long)
        return Batch(torch.empty(0, 3, 1, 1, dtype=torch.uint8), {"coarse": empty, "fine": empty}, [], skipped)
    targets = {
        "fine": torch.tensor([s[1] for s in good], dtype=torch.long),
        "coarse": torch.tensor([s[2] for s in good], dtype=torch.long),
    }
    for head in dict.fromkeys(h for s in good for h in s[4]):
        if head == ALL_FINE:
            padded = [(tuple(s[4].get(head, ())) + (-1,) * MAX_LABELS)[:MAX_LABELS] for s in good]
            targets[head] = torch.tensor(padded, dtype=torch.long)
        else:
            targets[head] = torch.tensor([s[4].get(head, -1) for s in good], dtype=torch.long)
    channels = max(s[0].shape[0] for s in good)  # grey and colour images may meet in an unlabelled pool
    return Batch(
        images=torch.stack([s[0].expand(channels, -1, -1) for s in good]),
        targets=targets,
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
