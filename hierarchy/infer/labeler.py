"""Photos → regions → every head's probabilities: what ``hierarchy label`` and ``hierarchy serve`` both do to a
photo, in one place.

Stage one runs when the models were trained on people, pose-garment or detector crops (``data.crop``); a photo
where it finds nothing usable is classified whole. All crops of a batch of photos go through the classifiers
together, ``batch_size`` at a time.
"""

from __future__ import annotations

import torch
from PIL import Image

from hierarchy.config import DetectConfig
from hierarchy.data.crops import DETECTING_MODES, usable
from hierarchy.detect import Detector, Region
from hierarchy.errors import UserError
from hierarchy.infer.classifier import Classifier


def whole(image: Image.Image, scale: float) -> Region:
    """The whole photo as one region, in full-size pixels."""
    return Region("image", (0.0, 0.0, image.width * scale, image.height * scale), 1.0)


class Labeler:
    """The classifiers of one or more runs (soft voting) and, when their crop mode needs it, stage one's detector."""

    def __init__(
        self, classifiers: Classifier, crop: str = "", detect: DetectConfig | None = None, batch_size: int = 64
    ) -> None:
        if classifiers.multilabel and classifiers.thresholds is None:
            raise UserError(f"{classifiers.source} is a multi-label model without tuned thresholds: retrain it")
        self.classifiers, self.batch_size = classifiers, batch_size
        mode = crop or classifiers.config.data.crop
        self.mode = "image" if mode in ("auto", "annotation") else mode  # photos to label carry no boxes
        self.detect = detect or classifiers.config.detect
        self.detector = Detector(self.detect, str(classifiers.device)) if self.mode in DETECTING_MODES else None

    @property
    def max_side(self) -> int:
        """The long side photos are decoded at: what the detector looks at, or a few times the classifier's input."""
        if self.detector:
            return max(self.detect.imgsz, self.detect.max_imgsz)
        return 4 * self.classifiers.input_size

    def regions(self, images: list[Image.Image], scales: list[float]) -> list[list[Region]]:
        """The regions to classify in each photo (boxes in full-size pixels); never empty."""
        found = self.detector(images, list(scales)) if self.detector else [[] for _ in images]
        return [
            [r for r in regions if usable(r, self.mode)] or [whole(image, scale)]
            for image, scale, regions in zip(images, scales, found)
        ]

    def classify(
        self, images: list[Image.Image], scales: list[float], regions: list[list[Region]]
    ) -> tuple[list[tuple[int, Region]], dict[str, torch.Tensor]]:
        """Every region's probabilities: ``([(photo index, region)], {head: (n_regions, K)})`` in that order."""
        crops = [(n, r) for n, found in enumerate(regions) for r in found]
        parts: list[dict[str, torch.Tensor]] = []
        for s in range(0, len(crops), self.batch_size):
            part = crops[s : s + self.batch_size]
            boxes = [None if r.kind == "image" else tuple(v / scales[n] for v in r.box) for n, r in part]
            parts.append(self.classifiers.crops([images[n] for n, _ in part], boxes))
        heads = self.classifiers.heads
        probs = {h: torch.cat([p[h] for p in parts]) if parts else torch.zeros(0) for h in heads}
        return crops, probs

    def __call__(
        self, images: list[Image.Image], scales: list[float]
    ) -> tuple[list[tuple[int, Region]], dict[str, torch.Tensor]]:
        """Detect (when the crop mode needs it) and classify: see ``classify``."""
        return self.classify(images, scales, self.regions(images, scales))
