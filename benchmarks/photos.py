"""Real photos that ship inside installed packages, and a people check set built from them.

The check set has the packaged photos with their people counted by eye (bus 4, zidane 2, Grace Hopper 1;
a temple, a flower and a gift box 0), plus street / CCTV-like frames: 1920x1080 scenes made from the
packaged photos as backgrounds with real people, cut from the photos, pasted at 10-20 % of the frame
height. Every pasted cut is one true person whose box is known exactly.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

from PIL import Image, ImageOps


def package_dir(name: str) -> Path:
    return Path(importlib.util.find_spec(name).submodule_search_locations[0])


PHOTOS = {  # file: people in it, counted by eye
    package_dir("ultralytics") / "assets" / "bus.jpg": 4,
    package_dir("ultralytics") / "assets" / "zidane.jpg": 2,
    package_dir("matplotlib") / "mpl-data" / "sample_data" / "grace_hopper.jpg": 1,
    package_dir("sklearn") / "datasets" / "images" / "china.jpg": 0,
    package_dir("sklearn") / "datasets" / "images" / "flower.jpg": 0,
    package_dir("matplotlib") / "mpl-data" / "sample_data" / "Minduka_Present_Blue_Pack.png": 0,
}
BUS = package_dir("ultralytics") / "assets" / "bus.jpg"
# Cuts of single people (x1, y1, x2, y2) in bus.jpg with a little margin and no second person inside;
# the third is cut by the photo's own right edge, as people at a frame border are.
PERSON_CUTS = [(BUS, (40, 385, 224, 912)), (BUS, (226, 398, 352, 866)), (BUS, (660, 380, 810, 886))]
GRACE = package_dir("matplotlib") / "mpl-data" / "sample_data" / "grace_hopper.jpg"


def backgrounds() -> list[Image.Image]:
    """Scenes without people: a temple, a flower, the street above the bus, all stretched to 1920x1080."""
    temple = Image.open(package_dir("sklearn") / "datasets" / "images" / "china.jpg")
    flower = Image.open(package_dir("sklearn") / "datasets" / "images" / "flower.jpg")
    street = Image.open(BUS).crop((0, 0, 810, 380))
    return [im.convert("RGB").resize((1920, 1080), Image.BICUBIC) for im in (temple, flower, street)]


def small_people_frames(folder: Path, n: int = 12, seed: int = 0) -> list[tuple[Path, list[tuple]]]:
    """Write ``n`` 1920x1080 frames with 2-5 pasted people each; returns (path, true boxes) per frame."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cuts = [Image.open(path).convert("RGB").crop(box) for path, box in PERSON_CUTS]
    scenes = backgrounds()
    frames = []
    for k in range(n):
        frame = scenes[k % len(scenes)].copy()
        boxes: list[tuple] = []
        for _ in range(rng.randint(2, 5)):
            cut = rng.choice(cuts)
            if rng.random() < 0.5:
                cut = ImageOps.mirror(cut)
            paste_person(frame, cut, int(1080 * rng.uniform(0.10, 0.20)), boxes, rng, top=200, gap=10)
        if k % 3 == 2:
            frame = cctv_look(frame)
        path = folder / f"frame{k:02d}.jpg"
        frame.save(path, quality=85)
        frames.append((path, boxes))
    return frames


def paste_person(frame: Image.Image, cut: Image.Image, height: int, boxes: list, rng: random.Random, top: int,
                 gap: int) -> None:  # fmt: skip
    """Paste ``cut`` ``height`` px tall below row ``top``, at least ``gap`` px beside every box in ``boxes``, and
    add its box there; a person with no free spot after 50 tries is left out."""
    width = max(1, round(cut.width * height / cut.height))
    for _ in range(50):
        x, y = rng.randint(0, frame.width - width), rng.randint(top, frame.height - height)
        box = (x, y, x + width, y + height)
        if all(box[2] < b[0] - gap or box[0] > b[2] + gap or box[3] < b[1] or box[1] > b[3] for b in boxes):
            frame.paste(cut.resize((width, height), Image.BICUBIC), (x, y))
            boxes.append(box)
            return


def cctv_look(frame: Image.Image) -> Image.Image:
    """A grey, low-contrast surveillance-camera look."""
    return ImageOps.autocontrast(frame.convert("L"), cutoff=0).point(lambda v: 40 + v * 0.6).convert("RGB")
