"""``hierarchy detect``: what was found in each image, as CSV or JSONL rows and optional preview images."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from PIL import ImageDraw

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


def draw_preview(image_path: str, regions: list[Region], folder: Path) -> Path:
    """The image with every region's box and name drawn on it, long side at most PREVIEW_SIDE."""
    image, scale = open_image(image_path, max_side=PREVIEW_SIDE)
    factor = min(1.0, PREVIEW_SIDE / max(image.size))
    image = image.resize((round(image.width * factor), round(image.height * factor))) if factor < 1 else image
    to_preview = factor / scale
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 400))
    for r in regions:
        box = [v * to_preview for v in r.box]
        colour = COLOURS.get(r.kind, "#ffffff")
        draw.rectangle(box, outline=colour, width=width)
        name = r.kind if r.kind in ("person", "image") or r.person < 0 else f"{r.kind} {r.person}"
        draw.text((box[0] + width + 1, box[1] + width), f"{name} {r.conf:.2f}", fill=colour)
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
            draw_preview(image, regions[image], Path(preview).expanduser())
    save_detections(rows, target)
    people = sum(r["kind"] == "person" for r in rows)
    fallback = sum(r["kind"] == "image" for r in rows)
    return {"images": len(images), "people": people, "no_person": fallback, "unreadable": len(errors)}
