"""Detection runs once per image content and detector setting: an append-only JSONL cache of regions.

Epochs, reruns and interrupted runs never detect the same image twice, and a changed image or detector
setting misses only its own entries. ``detect_files`` is the one loop that turns files into regions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from hierarchy.config import DetectConfig
from hierarchy.detect.detector import Detector, Region
from hierarchy.detect.openvino_backend import detector_backend
from hierarchy.detect.yolo import resolve_detector_weights
from hierarchy.image_files import file_hash, open_image

log = logging.getLogger(__name__)
# Settings that change how detection runs, never what it finds: the weights enter the key by their content, the
# backend as the one that actually ran.
NOT_IN_KEY = ("weights", "batch", "cache_dir", "backend")


@functools.lru_cache(maxsize=8)
def file_digest(path: Path, size: int, mtime_ns: int) -> str:
    """sha256 of a weights file; size and mtime in the cache key so that a rewritten file is hashed again."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_key(cfg: DetectConfig, weights: Path, device: str, backend: str = "") -> str:
    """A short hash of everything that changes what the detector finds (weights content, settings, backend).

    ``backend`` is the one that actually ran, when it differs from the one the settings choose (a failed
    OpenVINO export falls back to torch).
    """
    stat = weights.stat()
    digest = file_digest(weights.resolve(), stat.st_size, stat.st_mtime_ns)
    settings = {k: v for k, v in asdict(cfg).items() if k not in NOT_IN_KEY}  # a new setting is in by default
    settings["backend"] = backend or detector_backend(cfg.backend, device)
    return hashlib.sha256(json.dumps([digest, settings], sort_keys=True).encode()).hexdigest()[:16]


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

    def get(self, sha: str) -> list[Region] | None:
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
