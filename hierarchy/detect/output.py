"""``hierarchy detect``: what was found in each image, as CSV or JSONL rows and optional preview images."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from PIL import ImageDraw, ImageFont

from hierarchy.config import DetectConfig
from hierarchy.detect.cache import detect_files
from hierarchy.detect.detector import Region
from hierarchy.errors import UserError
from hierarchy.image_files import collect, open_image
from hierarchy.paths import atomic_write

log = logging.getLogger(__name__)
COLUMNS = ["image", "kind", "person", "x1", "y1", "x2", "y2", "conf", "error"]
COLOURS = {"person": "#ffcc00", "hat": "#ff4d4d", "top": "#33cc33", "bottom": "#3399ff", "shoe": "#cc66ff"}
PREVIEW_SIDE = 1280  # previews are for eyes, not pixels: long side capped
MIN_PREVIEW_SIDE = 960  # and small frames enlarged, so that names and skeletons stay legible
# COCO keypoint pairs joined in the preview's skeletons (0 nose, 5/6 shoulders, 11/12 hips, 15/16 ankles)
SKELETON = [(5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14),
            (14, 16), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)]  # fmt: skip


def rows_for(image: str, regions: list[Region] | None, error: str | None) -> list[dict]:
    if error is not None:
        return [{"image": image, "kind": "unreadable", "person": -1, "error": error}]
    return [
        {"image": image, "kind": r.kind, "person": r.person, **dict(zip(("x1", "y1", "x2", "y2"), r.to_dict()["box"])),
         "conf": round(r.conf, 4), "error": ""}
        for r in regions
    ]  # fmt: skip


def save_detections(rows: list[dict], out: Path) -> None:
    """CSV for ``.csv``, one JSON object per line for ``.jsonl``; written whole or not at all."""
    with atomic_write(out) as f:
        if out.suffix.lower() == ".jsonl":
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        else:
            writer = csv.DictWriter(f, COLUMNS, restval="")
            writer.writeheader()
            writer.writerows(rows)


def draw_preview(image_path: str, regions: list[Region], folder: Path, kpt_conf: float = 0.5) -> Path:
    """The image with every region's box and name drawn on it, and each person's visible keypoints (at least
    ``kpt_conf``) joined as a skeleton; long side between MIN_PREVIEW_SIDE and PREVIEW_SIDE."""
    image, scale = open_image(image_path, max_side=PREVIEW_SIDE)
    side = max(image.size)
    factor = PREVIEW_SIDE / side if side > PREVIEW_SIDE else max(1.0, MIN_PREVIEW_SIDE / side)
    image = image.resize((round(image.width * factor), round(image.height * factor))) if factor != 1 else image
    to_preview = factor / scale
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 400))
    font = ImageFont.load_default(size=6 * width + 1)
    for r in regions:
        box = [v * to_preview for v in r.box]
        colour = COLOURS.get(r.kind, "#ffffff")
        draw.rectangle(box, outline=colour, width=width)
        name = r.kind if r.kind in ("person", "image") or r.person < 0 else f"{r.kind} {r.person}"
        draw.text((box[0] + width + 1, box[1] + width), f"{name} {r.conf:.2f}", fill=colour, font=font)
        if r.keypoints:
            points = [(x * to_preview, y * to_preview, c) for x, y, c in r.keypoints]
            for a, b in SKELETON:
                if points[a][2] >= kpt_conf and points[b][2] >= kpt_conf:
                    draw.line([points[a][:2], points[b][:2]], fill="#00e5ff", width=max(1, width // 2))
            for x, y, c in points:
                if c >= kpt_conf:
                    draw.ellipse([x - width, y - width, x + width, y + width], fill="#ff2d95")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{Path(image_path).stem}.jpg"
    image.save(target, quality=90)
    return target


def detect_to_file(paths: list[str], out: str, cfg: DetectConfig, device: str, preview: str | None) -> dict:
    """Detect on every image, write the rows, draw previews; returns counts for a summary line."""
    target = Path(out).expanduser()
    if target.suffix.lower() not in (".csv", ".jsonl"):
        raise UserError(f"--out {out}: use a .csv or .jsonl file name")
    images = [item.file for item in collect(paths)]
    regions, errors = detect_files(images, cfg, device)
    rows = []
    for image in images:
        rows += rows_for(image, regions.get(image), errors.get(image))
        if preview and image in regions:
            draw_preview(image, regions[image], Path(preview).expanduser(), cfg.kpt_conf)
    save_detections(rows, target)
    people = sum(r["kind"] == "person" for r in rows)
    fallback = sum(r["kind"] == "image" for r in rows)
    return {"images": len(images), "people": people, "no_person": fallback, "unreadable": len(errors)}
