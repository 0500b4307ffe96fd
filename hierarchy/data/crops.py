"""Crop modes: turn labelled images into the crops a stage trains and predicts on (``data.crop``).

- ``image``: the whole image (Fashion-MNIST, product shots).
- ``annotation``: the boxes that come with the data (CSV box columns, K-Fashion ``렉트좌표``).
- ``person``: one crop per detected person, labelled with the image's label (styles, super-styles).
- ``pose-garments``: hat / top / bottom / shoe regions from each person's keypoints, labelled by region kind.
- ``detector``: boxes of a trained garment detector, labelled by the detector's class.
- ``auto``: ``annotation`` when the data has boxes, else ``image``.

Detection runs once per image content and detector config: results go to an append-only JSONL cache,
so epochs, reruns and interrupted runs never detect the same image twice, and a changed image or
detector setting misses only its own entries.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from hierarchy.config import DetectConfig
from hierarchy.data.images import ImageFiles
from hierarchy.data.transforms import open_image
from hierarchy.errors import UserError
from hierarchy.taxonomy import Taxonomy

log = logging.getLogger(__name__)
DETECTING_MODES = ("person", "pose-garments", "detector")
LABELLED_BY_REGION = ("pose-garments", "detector")  # the crop's label is its region kind, not the image's


def file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DetectionCache:
    """``<cache_dir>/<detector key>.jsonl``: one line ``{"sha256": …, "regions": […]}`` per image.

    Lines are appended and flushed as images finish; a line cut short by a crash is ignored on reading.
    """

    def __init__(self, folder: str | Path, key: str) -> None:
        self.path = Path(folder).expanduser() / f"{key}.jsonl"
        self.entries: dict[str, list] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["sha256"]] = entry["regions"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a partial last line from an interrupted run

    def get(self, sha: str):
        from hierarchy.detect import Region

        found = self.entries.get(sha)
        return None if found is None else [Region.from_dict(r) for r in found]

    def add(self, sha: str, regions) -> list:
        """Store one image's regions; returns them as stored (rounded), so fresh and cached results agree."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = [r.to_dict() for r in regions]
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"sha256": sha, "regions": record}) + "\n")
        self.entries[sha] = record
        return self.get(sha)


def detect_files(paths: Iterable[str], cfg: DetectConfig, device: str = "cpu") -> tuple[dict, dict[str, str]]:
    """Regions for every readable file, from the cache where possible; ``(regions by path, errors by path)``."""
    from hierarchy.detect import Detector, config_key, resolve_detector_weights
    from hierarchy.openvino_export import detector_backend

    weights = resolve_detector_weights(cfg.weights)
    cache = DetectionCache(cfg.cache_dir, config_key(cfg, weights, device))
    found, errors, hashed = {}, {}, []
    for path in dict.fromkeys(paths):
        try:
            hashed.append((path, file_hash(path)))
        except OSError as exc:
            errors[path] = f"{type(exc).__name__}: {exc}"
    pending = from_cache(cache, hashed, found)
    if not pending:
        return found, errors  # all cached: YOLO is not even loaded
    detector = Detector(cfg, device)
    if detector.backend != detector_backend(cfg.backend, device):  # the OpenVINO export failed: torch detects,
        cache = DetectionCache(cfg.cache_dir, config_key(cfg, weights, device, detector.backend))  # under its key
        pending = from_cache(cache, pending, found)
    log.info("detecting on %d images (%d cached) with %s", len(pending), len(found), weights.name)
    for start in range(0, len(pending), 32):  # decode a few images ahead, never a whole folder
        images, scales, ready = [], [], []
        for path, sha in pending[start : start + 32]:
            try:
                image, scale = open_image(path, max_side=max(cfg.imgsz, cfg.max_imgsz))
            except Exception as exc:  # corrupt, truncated, not an image, or a decompression bomb
                errors[path] = f"{type(exc).__name__}: {exc}"
                log.warning("skipping unreadable image %s (%s)", path, errors[path])
                continue
            images.append(image)
            scales.append(scale)
            ready.append((path, sha))
        for (path, sha), regions in zip(ready, detector(images, scales) if images else []):
            found[path] = cache.add(sha, regions)
    return found, errors


def from_cache(cache: DetectionCache, hashed: list[tuple[str, str]], found: dict) -> list[tuple[str, str]]:
    """Fill ``found`` from the cache; returns the ``(path, sha)`` pairs it does not hold."""
    pending = []
    for path, sha in hashed:
        cached = cache.get(sha)
        if cached is None:
            pending.append((path, sha))
        else:
            found[path] = cached
    return pending


def usable(region, mode: str) -> bool:
    """Whether a region is a crop of this mode: people for ``person``, garments for the garment modes."""
    if region.kind == "image":
        return True  # nothing was found: the whole image stands in
    if mode == "person":
        return region.kind == "person"
    return region.kind != "person"


def resolve_mode(files: ImageFiles, mode: str) -> str:
    if mode == "auto":
        return "annotation" if files.boxes and any(b is not None for b in files.boxes) else "image"
    return mode


def apply_crop_mode(files: ImageFiles, mode: str, cfg: DetectConfig, taxonomy: Taxonomy, device: str) -> ImageFiles:
    """Expand labelled images into labelled crops for ``mode`` (see the module docstring)."""
    mode = resolve_mode(files, mode)
    if mode == "image":
        return files.with_crops(
            range(len(files)), [None] * len(files), files.fine, files.coarse, ["image"] * len(files)
        )
    if mode == "annotation":
        if not files.boxes or all(b is None for b in files.boxes):
            raise UserError(
                "data.crop=annotation needs boxes in the data (CSV x1,y1,x2,y2 columns, K-Fashion 렉트좌표)"
            )
        tags = ["annotation" if b is not None else "image" for b in files.boxes]
        return files.with_crops(range(len(files)), files.boxes, files.fine, files.coarse, tags)
    if mode not in DETECTING_MODES:
        raise UserError(f"unknown data.crop={mode!r}")
    if mode == "detector" and not cfg.weights:
        from hierarchy.runs import newest_run

        newest = newest_run("detect")
        if newest is None:
            raise UserError(
                "data.crop=detector needs a garment detector: run `hierarchy run --stage detect` first, "
                "or set detect.weights=RUN_DIR_OR_PT"
            )
        cfg = DetectConfig(**{**cfg.__dict__, "weights": str(newest)})
    regions, _ = detect_files(files.paths, cfg, device)  # unreadable files are left out and warned about
    return expand(files, regions, mode, taxonomy)


def expand(files: ImageFiles, regions: dict, mode: str, taxonomy: Taxonomy) -> ImageFiles:
    """One sample per usable region; labels from the image (person) or the region's kind (garments)."""
    garment_ids = {}
    if mode != "person":
        kinds = {r.kind for found in regions.values() for r in found} - {"person", "image"}
        for kind in kinds:
            try:
                garment_ids[kind] = taxonomy.lookup(kind, "coarse")
            except UserError:
                log.info(
                    "crop kind %r is not a coarse class of taxonomy %s: those crops are not used", kind, taxonomy.name
                )
        if kinds and not garment_ids:
            raise UserError(
                f"data.crop={mode} labels crops by garment kind ({sorted(kinds)}), but taxonomy '{taxonomy.name}' "
                f"has coarse classes {list(taxonomy.coarse)}: use data.taxonomy=garment"
            )
    index, boxes, fine, coarse, tags = [], [], [], [], []
    for i, path in enumerate(files.paths):
        for region in (r for r in regions.get(path, []) if usable(r, mode)):
            if region.kind == "image" or mode == "person":  # a person, or the whole image: the image's label
                label = (files.fine[i], files.coarse[i])
            elif region.kind in garment_ids:
                kind_id = garment_ids[region.kind]
                keep_fine = files.fine[i] >= 0 and taxonomy.parents[files.fine[i]] == kind_id
                label = (files.fine[i] if keep_fine else -1, kind_id)
            else:
                continue
            if label[1] < 0:  # an unlabelled photo where no garment was found: nothing to learn from
                continue
            index.append(i)
            boxes.append(None if region.kind == "image" else region.box)
            fine.append(label[0])
            coarse.append(label[1])
            tags.append(region.kind if region.person < 0 else f"{region.kind}@{region.person}")
    log.info("data.crop=%s: %d crops from %d images", mode, len(index), len(files))
    return files.with_crops(index, boxes, fine, coarse, tags)
