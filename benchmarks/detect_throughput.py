"""Detection throughput: images/s of YOLO11n-pose at 640 px, one image at a time vs batched.

Two image sets: mixed shapes (four packaged photos of different aspect ratios at four sizes, mirrored),
and one shape (a camera folder: 1280x720 frames). Arms, measured in one run on the same images:
- ultralytics, one image per predict call;
- ultralytics, a list of 8 images per call (each mixed batch is letterboxed to one square shape);
- hierarchy's Detector, batch 1;
- hierarchy's Detector, batch 8 grouped by padded shape (single pass, so it does the same work);
- the same with the OpenVINO backend (detect.backend=openvino) instead of torch.
The first four run torch (bf16 in our Detector), so the ultralytics arms and ours share one model.
Usage: python benchmarks/detect_throughput.py     Writes benchmarks/results/detect_throughput.{json,md}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.photos import PHOTOS  # noqa: E402
from hierarchy.config import load_detect_config  # noqa: E402
from hierarchy.detect import Detector  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402

DEVICE = "0" if torch.cuda.is_available() else "cpu"


def image_sets() -> dict[str, list[Image.Image]]:
    photos = [Image.open(p).convert("RGB") for p in list(PHOTOS)[:4]]
    mixed = []
    for photo in photos:
        for scale in (0.5, 0.75, 1.0, 1.5):
            resized = photo.resize((round(photo.width * scale), round(photo.height * scale)))
            mixed += [resized, ImageOps.mirror(resized)]
    frames = []
    for k, photo in enumerate(photos * 8):
        frame = ImageOps.fit(photo, (1280, 720))
        frames.append(ImageOps.mirror(frame) if k % 2 else frame)
    return {"mixed shapes": mixed, "one shape (1280x720)": frames}


def timed(fn, images: list, repeats: int = 2) -> float:
    """Images per second, best of ``repeats`` after one warm-up call."""
    fn(images[:2])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(images)
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def main() -> None:
    torch_pass = ["detect.max_imgsz=0", "detect.backend=torch"]
    single = Detector(load_detect_config([*torch_pass, "detect.batch=1"]), DEVICE)
    batched = Detector(load_detect_config([*torch_pass, "detect.batch=8"]), DEVICE)
    openvino = None if DEVICE != "cpu" else Detector(load_detect_config(["detect.max_imgsz=0", "detect.batch=8"]))
    model = single.model
    predict = dict(imgsz=640, conf=0.25, device=DEVICE, verbose=False)
    arms = {
        "ultralytics, batch 1": lambda ims: [model.predict(im, **predict) for im in ims],
        "ultralytics, batch 8": lambda ims: [model.predict(ims[i : i + 8], **predict) for i in range(0, len(ims), 8)],
        "hierarchy Detector, batch 1": lambda ims: single(ims),
        "hierarchy Detector, batch 8 by shape": lambda ims: batched(ims),
    }
    if openvino is not None and openvino.backend == "openvino":
        arms["hierarchy Detector, batch 8 by shape, OpenVINO"] = lambda ims: openvino(ims)
    rows = []
    for set_name, images in image_sets().items():
        for arm, fn in arms.items():
            rows.append({"images": set_name, "arm": arm, "n": len(images), "img_per_s": round(timed(fn, images), 2)})
            print(rows[-1], flush=True)
        base = rows[-len(arms)]["img_per_s"]
        for row in rows[-len(arms) :]:
            row["vs_ultralytics_batch1"] = round(row["img_per_s"] / base, 2)
    device = torch.cuda.get_device_name() if DEVICE != "cpu" else f"cpu ({os.cpu_count()} cores)"
    table = format_table(rows, ["images", "arm", "n", "img_per_s", "vs_ultralytics_batch1"])
    print(table)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "detect_throughput.json").write_text(json.dumps({"device": device, "rows": rows}, indent=2))
    (out / "detect_throughput.md").write_text(
        f"# Detection throughput (YOLO11n-pose, 640 px)\n\n`python benchmarks/detect_throughput.py` on "
        f"{time.strftime('%Y-%m-%d')}, device: {device}\n\n{table}\n"
    )


if __name__ == "__main__":
    main()
