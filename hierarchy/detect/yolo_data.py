"""Training data for a YOLO garment detector: image links, label files and ``data.yaml`` in the layout
ultralytics reads."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import yaml

from hierarchy.image_files import open_image

log = logging.getLogger(__name__)


def write_yolo_split(files, folder: Path) -> int:
    """Link the images and write one YOLO label file per image (class cx cy w h, normalised); returns images.

    ``files`` holds ``paths``, ``coarse`` class ids and ``boxes`` (x1, y1, x2, y2 pixels or None) per sample.
    """
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    by_image: dict[str, list[str]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for path, coarse, box in zip(files.paths, files.coarse, files.boxes or [None] * len(files)):
        if box is None:
            continue
        if path not in sizes:
            try:
                image, scale = open_image(path, max_side=64)  # only the upright size is needed: decode small
                sizes[path] = (round(image.width * scale), round(image.height * scale))
            except Exception as exc:
                log.warning("skipping unreadable image %s (%s)", path, exc)
                sizes[path] = (0, 0)
        w, h = sizes[path]
        x1, y1, x2, y2 = max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3])
        if w and x2 - x1 > 1 and y2 - y1 > 1:
            line = f"{coarse} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
            by_image.setdefault(path, []).append(line)
    for n, (path, lines) in enumerate(sorted(by_image.items())):
        name = f"{n:06d}_{Path(path).stem}"
        link = folder / "images" / f"{name}{Path(path).suffix.lower()}"
        if not link.exists():
            os.symlink(Path(path).resolve(), link)
        (folder / "labels" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return len(by_image)


def write_data_yaml(folder: Path, names: Sequence[str]) -> Path:
    """``folder/data.yaml`` over the ``train`` and ``val`` splits in it (absolute path; class id = list position)."""
    spec = {
        "path": str(folder.resolve()),
        "train": "train/images",
        "val": "val/images",
        "names": dict(enumerate(names)),
    }
    (folder / "data.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder / "data.yaml"
