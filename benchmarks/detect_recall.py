"""People check set: person recall and false people per image for three detector settings.

Settings compared in one run: a single 640 px pass (ultralytics' default size), a single 1280 px pass,
and hierarchy's default (640 px for every image, plus a 1280 px pass that only adds small people on
frames larger than 960 px). The check set is described in benchmarks/photos.py.

Usage: python benchmarks/detect_recall.py      Writes benchmarks/results/detect_recall.{json,md}.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.photos import PHOTOS, small_people_frames  # noqa: E402
from hierarchy.config import load_detect_config  # noqa: E402
from hierarchy.detect import Detector  # noqa: E402
from hierarchy.image_files import open_image  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402

SETTINGS = {
    "single pass 640": ["detect.imgsz=640", "detect.max_imgsz=0"],
    "single pass 1280": ["detect.imgsz=1280", "detect.max_imgsz=0"],
    "hierarchy default (640 + small people at 1280)": [],
}


def score_frame(found: list, truth: list[tuple]) -> tuple[int, int]:
    """(true people found, false people): a detection counts when its centre lies in an unmatched true box."""
    matched, false = set(), 0
    for r in found:
        cx, cy = (r.box[0] + r.box[2]) / 2, (r.box[1] + r.box[3]) / 2
        inside = [i for i, b in enumerate(truth) if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]]
        hit = next((i for i in inside if i not in matched), None)
        if hit is None:
            false += 1
        else:
            matched.add(hit)
    return len(matched), false


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="people-check-"))
    frames = small_people_frames(work)
    rows, results = [], {"photos": {str(p.name): n for p, n in PHOTOS.items()}, "frames": len(frames), "settings": {}}
    for name, overrides in SETTINGS.items():
        detector = Detector(load_detect_config(overrides))
        start = time.perf_counter()
        photo_found = photo_false = 0
        for path, count in PHOTOS.items():
            image, scale = open_image(str(path), max_side=1280)
            people = [r for r in detector([image], [scale])[0] if r.kind == "person"]
            photo_found += min(len(people), count)
            photo_false += max(0, len(people) - count)
        frame_found = frame_false = 0
        for path, truth in frames:
            image, scale = open_image(str(path), max_side=1280)
            hits, false = score_frame([r for r in detector([image], [scale])[0] if r.kind == "person"], truth)
            frame_found, frame_false = frame_found + hits, frame_false + false
        seconds = time.perf_counter() - start
        photo_people, frame_people = sum(PHOTOS.values()), sum(len(t) for _, t in frames)
        row = {
            "setting": name,
            "photos_recall": round(photo_found / photo_people, 3),
            "photos_false_per_image": round(photo_false / len(PHOTOS), 3),
            "small_recall": round(frame_found / frame_people, 3),
            "small_false_per_image": round(frame_false / len(frames), 3),
            "s_per_image": round(seconds / (len(PHOTOS) + len(frames)), 3),
        }
        rows.append(row)
        results["settings"][name] = row
        print(row, flush=True)
    columns = list(rows[0])
    table = format_table(rows, columns)
    note = (
        f"\n\n{len(PHOTOS)} packaged photos ({sum(PHOTOS.values())} people counted by eye, 3 photos with nobody) and "
        f"{len(frames)} 1920x1080 frames with {sum(len(t) for _, t in frames)} real people pasted at 10-20 % of the "
        "frame height (benchmarks/photos.py). CPU, batch 1, conf 0.25."
    )
    print(table + note)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "detect_recall.json").write_text(json.dumps(results, indent=2))
    (out / "detect_recall.md").write_text(
        f"# People check set: recall and false people\n\n`python benchmarks/detect_recall.py` on "
        f"{time.strftime('%Y-%m-%d')}\n\n{table}{note}\n"
    )


if __name__ == "__main__":
    main()
