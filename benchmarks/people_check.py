"""The people check set: real photos and composites from 320x240 to 1920x1080, split into fixed halves.

Every photo comes from a package that installs offline (ultralytics, matplotlib, scikit-learn, and Debian's
``opencv-doc``: ``apt-get install opencv-doc``), or is composited from them at run time with a fixed seed:

- real photos with their people counted and boxed by eye: bus and zidane (ultralytics), Grace Hopper
  (matplotlib), two indoor basketball shots (greyscale, 640x480), and eight frames of OpenCV's ``vtest.avi``
  (a 768x576 surveillance camera, walkers 55-145 px tall); six of them also shrunk to 240-384 px wide, which
  keeps them real and makes their people smaller (vtest's 30-70 px tall);
- photos with nobody in them: street, buildings, aerial views, animals, food, objects, paintings;
- composites: real people cut from the photos above, pasted at 8-30 % of the frame height as street and
  surveillance cameras see them (vtest's walkers are 10-25 %), never under 30 px, or at 80-98 % for close-ups,
  onto the person-free photos, at 320x240, 640x480, 768x576, 1280x720 and 1920x1080; street scenes,
  crowds of small people, single close-ups, a third of them greyscale and low-contrast.

``split`` is fixed: ``tune`` photos are the only ones any setting is chosen on; ``held-out`` photos are only
reported. Boxes are (x1, y1, x2, y2) in the photo's own pixels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageOps
from torchvision.ops import box_iou

from benchmarks.photos import BUS, GRACE, PERSON_CUTS, cctv_look, package_dir, paste_person

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")  # Debian package opencv-doc
ZIDANE = package_dir("ultralytics") / "assets" / "zidane.jpg"
SKLEARN = package_dir("sklearn") / "datasets" / "images"
SIZES = [(320, 240), (640, 480), (768, 576), (1280, 720), (1920, 1080)]
MIN_HEIGHT = 30  # pasted people are 8-30 % of the frame height (street and surveillance cameras), never under this
BUCKETS = ((0, 60, "< 60 px"), (60, 120, "60-120 px"), (120, 1e9, "> 120 px"))

# Real photos: people boxed by eye (every person a viewer would count, however small or cut by the border).
REAL = {
    "bus": (BUS, [(225, 407, 344, 861), (54, 403, 238, 900), (669, 402, 810, 885), (0, 535, 77, 886)]),
    "zidane": (ZIDANE, [(120, 195, 728, 716), (749, 60, 1140, 712)]),
    "grace_hopper": (GRACE, [(10, 60, 505, 600)]),
    "basketball1": (OPENCV_DATA / "basketball1.png", [(33, 83, 177, 475), (430, 20, 640, 480)]),
    "basketball2": (OPENCV_DATA / "basketball2.png", [(33, 82, 185, 477), (428, 19, 640, 480)]),
}
VTEST = {  # frame number: people (the first detector candidates checked by eye, plus the ones it missed)
    0: [(641, 241, 684, 322), (254, 220, 284, 308), (499, 158, 530, 233)],
    100: [(375, 178, 412, 257), (590, 154, 617, 235), (348, 200, 382, 275), (515, 151, 542, 222),
          (492, 148, 519, 222), (420, 178, 452, 258), (222, 63, 238, 93)],
    200: [(704, 254, 745, 355), (617, 265, 650, 370), (487, 144, 518, 224), (220, 191, 250, 267),
          (83, 154, 112, 216), (676, 97, 699, 155), (702, 103, 720, 154)],
    300: [(314, 210, 345, 296), (581, 160, 611, 236), (186, 160, 220, 235), (619, 161, 643, 233),
          (298, 159, 323, 231), (243, 159, 268, 223)],
    400: [(687, 301, 744, 411), (274, 200, 303, 286), (590, 140, 618, 204)],
    500: [(570, 280, 613, 391), (614, 274, 640, 373), (306, 188, 332, 265), (556, 239, 592, 341)],
    600: [(455, 303, 507, 419), (640, 305, 670, 413), (669, 209, 706, 296), (283, 433, 333, 576),
          (568, 200, 597, 288), (189, 144, 216, 215)],
    700: [(681, 218, 729, 308), (280, 210, 309, 294), (102, 287, 144, 396), (366, 172, 397, 256),
          (184, 166, 212, 239), (519, 166, 544, 234), (474, 136, 496, 202), (405, 153, 424, 211)],
}  # fmt: skip
SHRUNK = {"vtest0100": 384, "vtest0300": 384, "vtest0500": 384, "vtest0700": 384, "bus": 240, "basketball1": 320}
NOBODY = [OPENCV_DATA / name for name in (
    "leuvenA.jpg", "leuvenB.jpg", "building.jpg", "aero1.jpg", "aero3.jpg", "baboon.jpg", "chicky_512.png",
    "squirrel_cls.jpg", "apple.jpg", "fruits.jpg", "orange.jpg", "smarties.png", "butterfly.jpg", "starry_night.jpg",
    "graf1.png", "box_in_scene.png", "stuff.jpg", "ela_original.jpg", "licenseplate_motion.jpg", "board.jpg",
)] + [SKLEARN / "china.jpg", SKLEARN / "flower.jpg",
      package_dir("matplotlib") / "mpl-data" / "sample_data" / "Minduka_Present_Blue_Pack.png"]  # fmt: skip
BACKGROUNDS = ["leuvenA.jpg", "building.jpg", "aero1.jpg", "graf1.png", "starry_night.jpg"]


@dataclass
class Photo:
    name: str
    path: Path
    people: list[tuple] = field(default_factory=list)
    split: str = "tune"
    kind: str = "real"  # real | nobody | street | crowd | close-up


def missing() -> list[str]:
    """What is not installed for the check set (the opencv-doc photos and video)."""
    return [] if (OPENCV_DATA / "vtest.avi").is_file() else ["opencv-doc (apt-get install opencv-doc)"]


def build(folder: Path, composites: int = 40, seed: int = 0) -> list[Photo]:
    """Write the check set's photos under ``folder``; the same photos and halves every time."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    photos: list[Photo] = []
    real: dict[str, tuple[Image.Image, list]] = {}
    for name, (path, boxes) in REAL.items():
        real[name] = (Image.open(path).convert("RGB"), boxes)
    video = cv2.VideoCapture(str(OPENCV_DATA / "vtest.avi"))
    for frame_no, boxes in VTEST.items():
        video.set(cv2.CAP_PROP_POS_FRAMES, frame_no)
        ok, frame = video.read()
        if not ok:
            raise SystemExit(f"could not read frame {frame_no} of {OPENCV_DATA / 'vtest.avi'}")
        real[f"vtest{frame_no:04d}"] = (Image.fromarray(frame[..., ::-1]), boxes)
    for k, (name, (image, boxes)) in enumerate(real.items()):
        photos.append(save(folder, name, image, boxes, "tune" if k % 2 == 0 else "held-out", "real"))
    for k, (name, width) in enumerate(SHRUNK.items()):
        image, boxes = real[name]
        f = width / image.width
        small = image.resize((width, round(image.height * f)), Image.LANCZOS)
        scaled = [tuple(round(v * f, 1) for v in b) for b in boxes]
        photos.append(save(folder, f"{name}_{width}", small, scaled, "held-out" if k % 2 == 0 else "tune", "real"))
    for k, path in enumerate(NOBODY):
        image = Image.open(path).convert("RGB")
        photos.append(save(folder, f"nobody_{path.stem}", image, [], "tune" if k % 2 == 0 else "held-out", "nobody"))
    cuts = person_cuts(real)
    rng = random.Random(seed)
    for k in range(composites):
        image, boxes, kind = composite(k, cuts, rng)
        split = "tune" if (k // 4) % 2 == 0 else "held-out"  # every kind in both halves
        photos.append(save(folder, f"{kind}{k:02d}", image, boxes, split, kind))
    return photos


def save(folder: Path, name: str, image: Image.Image, boxes: list, split: str, kind: str) -> Photo:
    path = folder / f"{name}.jpg"
    image.save(path, quality=90)
    return Photo(name, path, list(boxes), split, kind)


def person_cuts(real: dict) -> dict[str, list[Image.Image]]:
    """Real people to paste: whole bodies (the bus's walkers, vtest's largest walkers) and close-up people."""
    bus = Image.open(BUS).convert("RGB")
    whole = [bus.crop(box) for _, box in PERSON_CUTS]
    for name, index in (("vtest0600", 3), ("vtest0700", 2), ("vtest0400", 0)):
        image, boxes = real[name]
        whole.append(image.crop(boxes[index]))
    close = [real["zidane"][0].crop(real["zidane"][1][1]), real["basketball1"][0].crop(real["basketball1"][1][0])]
    return {"whole": whole, "close": close + whole[:3]}


def composite(k: int, cuts: dict, rng: random.Random) -> tuple[Image.Image, list[tuple], str]:
    """Photo ``k``: a person-free background at one of SIZES with real people pasted on it."""
    width, height = SIZES[k % len(SIZES)]
    kind = ("street", "crowd", "street", "close-up")[k % 4]
    background = Image.open(OPENCV_DATA / BACKGROUNDS[k % len(BACKGROUNDS)]).convert("RGB")
    frame = ImageOps.fit(background, (width, height), Image.BICUBIC)
    boxes: list[tuple] = []
    if kind == "close-up":
        cut = rng.choice(cuts["close"])
        h = int(height * rng.uniform(0.80, 0.98))
        w = min(width, max(1, round(cut.width * h / cut.height)))
        x, y = rng.randint(0, width - w), height - h
        frame.paste(cut.resize((w, h), Image.BICUBIC), (x, y))
        boxes.append((x, y, x + w, y + h))
    else:
        count, shares = (rng.randint(2, 6), (0.08, 0.30)) if kind == "street" else (rng.randint(8, 14), (0.08, 0.15))
        for _ in range(count):
            cut = rng.choice(cuts["whole"])
            if rng.random() < 0.5:
                cut = ImageOps.mirror(cut)
            h = max(MIN_HEIGHT, int(height * rng.uniform(*shares)))
            paste_person(frame, cut, h, boxes, rng, top=int(0.2 * height), gap=4)
    if k % 3 == 2:
        frame = cctv_look(frame)
    return frame, boxes, kind


def bucket(box: tuple) -> str:
    height = box[3] - box[1]
    return next(name for low, high, name in BUCKETS if low <= height < high)


def score(found: list[tuple], truth: list[tuple]) -> tuple[list[bool], int]:
    """(whether each true person was found, false people): a found box counts for the unmatched true person whose
    box holds its centre (the one best overlapping it when several do); every other found box is a false person,
    a second box on one person included (a split person)."""
    matched = [False] * len(truth)
    false = 0
    for box in found:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        inside = [i for i, t in enumerate(truth) if not matched[i] and t[0] <= cx <= t[2] and t[1] <= cy <= t[3]]
        if not inside:
            false += 1
            continue
        candidates = torch.tensor([truth[i] for i in inside], dtype=torch.float)
        ious = box_iou(torch.tensor([box], dtype=torch.float), candidates)
        matched[inside[int(ious.argmax())]] = True
    return matched, false
