"""People check set: person recall by height, false people per photo and CPU cost, for four detector settings.

Settings compared in one run, on the check set of benchmarks/people_check.py (its tuning and held-out halves
reported apart): a single 640 px pass (ultralytics' default size), a single 1280 px pass, the old default (640
px, plus a 1280 px pass adding small people on frames over 960 px, conf 0.25), and the new default (the
second pass decided by what the first pass saw: configs/detector.yaml).

``--tune`` chooses the second pass's settings instead: it runs the passes once per photo of the tuning half
only, then scores a grid of settings from them (keypoint tests on the second pass's people and on everyone
included) and prints the best that keep within 2.3x the cost of a single 640 px pass (a margin under the goal's
2.5x) and 0.1 false people per photo. The held-out half is never looked at by ``--tune``.

Usage: python benchmarks/detect_recall.py [--tune]   (needs Debian's opencv-doc: apt-get install opencv-doc)
Writes benchmarks/results/detect_recall.{json,md}; --tune writes every scored setting to detect_tuning.csv.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import people_check  # noqa: E402
from benchmarks.fashion_mnist import save_results  # noqa: E402
from benchmarks.label_efficiency import cpu_kind  # noqa: E402
from hierarchy.config import DetectConfig, load_detect_config  # noqa: E402
from hierarchy.detect import Detector  # noqa: E402
from hierarchy.detect.detector import add_small  # noqa: E402
from hierarchy.image_files import open_image  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402

OLD_DEFAULT = ["detect.second_pass=large-frames", "detect.conf=0.25", "detect.small=0.3", "detect.small_conf=0.25",
               "detect.small_keypoints=0"]  # fmt: skip
SETTINGS = {
    "single pass 640": ["detect.imgsz=640", "detect.max_imgsz=0"],
    "single pass 1280": ["detect.imgsz=1280", "detect.max_imgsz=0"],
    "old default (1280 on frames over 960 px)": OLD_DEFAULT,
    "new default (1280 when the first pass saw small people)": [],
    "new default, detect.min_keypoints=5": ["detect.min_keypoints=5"],
}
FINDINGS = "## Findings"
# --tune keeps settings under 2.3x, not the goal's 2.5x: a setting's measured cost moves by up to a tenth between
# runs and between the halves, and the held-out half must stay within 2.5x
TUNE_COST = 2.3


def measure(photos: list, overrides: list[str]) -> dict[str, dict]:
    """Per photo: people found (a bool per true person), false people and seconds, one photo per call."""
    detector = Detector(load_detect_config(overrides))
    detector([Image.new("RGB", (640, 480))])  # first-call set-up is not the setting's cost
    out = {}
    for photo in photos:
        image, scale = open_image(str(photo.path), max_side=1920)
        detector([image], [scale])  # warm this shape: OpenVINO compiles each new input shape once
        start = time.perf_counter()
        regions = detector([image], [scale])[0]
        seconds = time.perf_counter() - start
        found, false = people_check.score([r.box for r in regions if r.kind == "person"], photo.people)
        out[photo.name] = {"found": found, "false": false, "seconds": seconds}
    return out


def summarise(photos: list, measured: dict, baseline: dict) -> dict:
    """Recall overall and by height bucket, false people per photo, split close-ups, cost against ``baseline``."""
    row: dict = {}
    hits = {name: [0, 0] for *_, name in people_check.BUCKETS}
    for photo in photos:
        for ok, box in zip(measured[photo.name]["found"], photo.people):
            hits[people_check.bucket(box)][0] += ok
            hits[people_check.bucket(box)][1] += 1
    row["recall"] = round(sum(h for h, _ in hits.values()) / sum(n for _, n in hits.values()), 3)
    for name, (h, n) in hits.items():
        row[f"recall {name}"] = f"{h}/{n}"
    row["false_per_photo"] = round(sum(measured[p.name]["false"] for p in photos) / len(photos), 3)
    close = [p for p in photos if p.kind == "close-up" or (p.kind == "real" and not p.name.startswith("vtest"))]
    row["false_on_close_ups"] = sum(measured[p.name]["false"] for p in close)
    seconds = sum(measured[p.name]["seconds"] for p in photos)
    row["ms_per_photo"] = round(1000 * seconds / len(photos), 1)
    row["cost_vs_640"] = round(seconds / sum(baseline[p.name]["seconds"] for p in photos), 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true", help="choose the second pass's settings on the tuning half")
    args = parser.parse_args()
    if people_check.missing():
        raise SystemExit(f"the people check set needs {', '.join(people_check.missing())}")
    photos = people_check.build(Path(tempfile.mkdtemp(prefix="people-check-")))
    if args.tune:
        tune([p for p in photos if p.split == "tune"])
        return
    measured = {name: measure(photos, overrides) for name, overrides in SETTINGS.items()}
    baseline = measured["single pass 640"]
    rows, results = [], {"cpu": cpu_kind(), "settings": SETTINGS, "halves": {}}
    for split in ("tune", "held-out"):
        part = [p for p in photos if p.split == split]
        for name in SETTINGS:
            rows.append({"half": split, "setting": name, **summarise(part, measured[name], baseline)})
        results["halves"][split] = {
            "photos": len(part),
            "people": sum(len(p.people) for p in part),
            "nobody_photos": sum(not p.people for p in part),
        }
    results["rows"] = rows
    table = format_table(rows, list(rows[0]))
    halves = results["halves"]
    note = (
        f"\n\nCPU: {results['cpu']}; one photo per call, each photo's shape warmed first. Tuning half: "
        f"{halves['tune']['photos']} photos, {halves['tune']['people']} people, {halves['tune']['nobody_photos']} "
        f"photos with nobody; held-out half: {halves['held-out']['photos']} photos, {halves['held-out']['people']} "
        f"people, {halves['held-out']['nobody_photos']} with nobody (benchmarks/people_check.py). A found box "
        "counts for the true person whose box holds its centre; every other box is a false person, a second box "
        "on one person included. false_on_close_ups: false people on the close-ups and the real photos other "
        "than the surveillance frames (split people). cost_vs_640: detection time against the single 640 px pass "
        "on the same photos."
    )
    print(table + note)
    save_results("detect_recall", "People check set: recall, false people and cost", results, table + note, FINDINGS)


def tune(photos: list) -> None:
    """Run each pass once per photo, then score a grid of second-pass settings from the stored detections."""
    detector = Detector(DetectConfig(conf=0.05, max_imgsz=0))
    passes: dict[tuple[str, int], tuple] = {}
    for side in (640, 960, 1280):
        for photo in photos:
            image, scale = open_image(str(photo.path), max_side=1920)
            detector.predict([image], [scale], side, 0.05)
            start = time.perf_counter()
            found = detector.predict([image], [scale], side, 0.05)[0]
            passes[photo.name, side] = found, time.perf_counter() - start, image.height * scale
    grid = itertools.product((0.25, 0.35, 0.45), (0.1, 0.15, 0.25, 0.35), (960, 1280), (0.3, 0.4, 0.5),
                             (None, 0.02, 0.05, 0.1), (0, 5, 8), (0, 3, 5))  # fmt: skip
    baseline = {p.name: {"seconds": passes[p.name, 640][1]} for p in photos}
    rows = []
    for conf, small_conf, side, small, hint, keypoints, everyone in grid:
        measured = {}
        for photo in photos:
            first, seconds, height = passes[photo.name, 640]
            kept = first.take(first.conf >= conf)
            tall = (kept.boxes[:, 3] - kept.boxes[:, 1] >= small * height).any()
            short = (first.boxes[:, 3] - first.boxes[:, 1] < small * height) & (first.conf >= (hint or 1.0))
            if not tall and (hint is None or short.any()):
                closer, more, _ = passes[photo.name, side]
                closer = closer.take(closer.conf >= small_conf)
                if keypoints:  # people the closer look invents: too few visible keypoints
                    closer = closer.take(closer.visible(0.5) >= keypoints)
                kept, seconds = add_small(kept, closer, height, small), seconds + more
            kept = kept.take(kept.visible(0.5) >= everyone)  # anyone invented: too few visible keypoints
            found, false = people_check.score([tuple(b) for b in kept.boxes], photo.people)
            measured[photo.name] = {"found": found, "false": false, "seconds": seconds}
        setting = {"conf": conf, "small_conf": small_conf, "max_imgsz": side, "small": small, "hint_conf": hint,
                   "second_pass_keypoints": keypoints, "keypoints": everyone}  # fmt: skip
        rows.append({**setting, **summarise(photos, measured, baseline)})
    with open(ROOT / "benchmarks" / "results" / "detect_tuning.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    allowed = [r for r in rows if r["cost_vs_640"] <= TUNE_COST and r["false_per_photo"] <= 0.1]
    allowed.sort(key=lambda r: (-r["recall"], r["cost_vs_640"]))
    print(f"{len(rows)} settings scored on the tuning half, {len(allowed)} within {TUNE_COST}x the cost of a single "
          "640 px pass and 0.1 false people per photo:")  # fmt: skip
    print(format_table(allowed[:15], list(allowed[0])) if allowed else "none")


if __name__ == "__main__":
    main()
