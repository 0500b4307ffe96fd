"""Labeling throughput and memory: our labeler vs the naive loop vs the detector alone, one run, same inputs.

Table 1 (photos, YOLO11n-pose at 640 px + a garment classifier on pose regions, all on the same folder):
(a) ``hierarchy label`` (decoding in workers, batched detection and classification, chunked writing);
(b) the naive loop seed projects write: for each image ultralytics predict, for each crop one forward
    (ultralytics leaves torch min(8, cores - 1) threads: one on 2 cores); (b') the same loop with torch's threads
    given back after ultralytics' device pick, to show what (a) gains beyond that; (b'') a competent batched
    loop: ultralytics predict on 16 images at once, then one classifier forward per image's crops;
(c) the detector alone at its best setting here: our Detector (OpenVINO, photos in flight, all threads) over
    the folder, photos decoded ahead in threads as the labeler decodes them, no classification and no writing;
(a') and (c'): (a) and (c) with the torch backend (bf16 where native) instead of OpenVINO.
Table 2: peak RSS of ``hierarchy label`` on 1,000 vs 10,000 small images (whole-image crops).
Every arm runs in its own process; peak RSS is that process's own (wait4), not the machine's.

With ``--emulate-fp32`` every arm runs with benchmarks/fp32_site on its path: a CPU with native bf16 then behaves
like one without (torch, oneDNN and OpenVINO at fp32), and the results get a section of their own.

Usage: python benchmarks/label_throughput.py [--images 192] [--rounds 3] [--emulate-fp32]
Writes benchmarks/results/label_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fashion_mnist import hierarchy_cmd, run_child, save_kind_results  # noqa: E402
from benchmarks.label_efficiency import cpu_kind  # noqa: E402
from benchmarks.photos import PHOTOS, small_people_frames  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402

SINGLE_PASS = "detect.max_imgsz=0"  # one 640 px pass, the same detection work as (b) and (c)

NAIVE = """
import json, sys, time, torch
from pathlib import Path
from PIL import Image
from ultralytics import YOLO
from hierarchy.checkpoint import load_checkpoint
from hierarchy.config import DetectConfig, from_dict
from hierarchy.data.transforms import letterbox, to_model_input
from hierarchy.detect import Detector, offline_ultralytics, resolve_detector_weights
from hierarchy.detect.pose_regions import garment_regions
from hierarchy.infer.classifier import model_from_checkpoint
offline_ultralytics()
folder, model_dir, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
paths, rows = sorted(folder.glob("*.jpg")), 0
if mode.startswith("detector"):  # the detector alone at its best: photos decoded ahead in threads as the labeler does
    from hierarchy.image_files import collect, decoded_batches
    from hierarchy.runner import cores_per_process
    detector = Detector(DetectConfig(max_imgsz=0, backend="torch" if mode == "detector-torch" else "auto"), "cpu")
    start = time.perf_counter()
    for batch in decoded_batches(collect([str(folder)]), 640, 16, cores_per_process()):
        rows += sum(len(r) for r in detector([b[1] for b in batch], [b[2] for b in batch]))
    print(json.dumps({"loop_s": time.perf_counter() - start, "crops": rows}))
    sys.exit()
threads = torch.get_num_threads()
yolo = YOLO(str(resolve_detector_weights("")))
state = load_checkpoint(model_dir); size = from_dict(state["config"]).data.image_size
model = model_from_checkpoint(state, torch.device("cpu")).eval()
start = time.perf_counter()
if mode == "naive-batched":  # a competent loop: predict on 16 images at once, one forward per image's crops
    for s in range(0, len(paths), 16):
        images = [Image.open(p).convert("RGB") for p in paths[s : s + 16]]
        results = yolo.predict(images, imgsz=640, conf=0.25, verbose=False)
        torch.set_num_threads(threads)
        for image, result in zip(images, results):
            boxes, points = result.boxes.xyxy.numpy(), result.keypoints.data.numpy()
            regions = [r for box, kp in zip(boxes, points) for r in garment_regions(box, kp, 0.5).values()]
            if regions:
                with torch.no_grad():
                    model(to_model_input(torch.stack([letterbox(image, size, r) for r in regions])))
            rows += len(regions)
    print(json.dumps({"loop_s": time.perf_counter() - start, "crops": rows}))
    sys.exit()
for path in paths:
    image = Image.open(path).convert("RGB")
    result = yolo.predict(image, imgsz=640, conf=0.25, verbose=False)[0]
    if mode == "naive-threads":  # undo ultralytics' thread cut, which it makes on its first predict
        torch.set_num_threads(threads)
    boxes, points = result.boxes.xyxy.numpy(), result.keypoints.data.numpy()
    for box, kp in zip(boxes, points):
        for kind, region in garment_regions(box, kp, 0.5).items():
            with torch.no_grad():
                model(to_model_input(letterbox(image, size, region)[None]))
            rows += 1
print(json.dumps({"loop_s": time.perf_counter() - start, "crops": rows}))
"""


def make_photos(folder: Path, n: int) -> None:
    """``n`` real photos of mixed sizes: the packaged photos and 1920x1080 street frames, mirrored in turn."""
    sources = [Image.open(p).convert("RGB") for p in PHOTOS] + [
        Image.open(p).convert("RGB") for p, _ in small_people_frames(folder.parent / "frames", n=6)
    ]
    for k in range(n):
        image = sources[k % len(sources)]
        (ImageOps.mirror(image) if (k // len(sources)) % 2 else image).save(folder / f"{k:04d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=192, help="photos in the throughput folder")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every arm; the table shows the median")
    parser.add_argument("--emulate-fp32", action="store_true", help="run every arm as on a CPU without native bf16")
    args = parser.parse_args()
    if args.emulate_fp32:  # the children inherit it; this process's own torch is not timed
        site = str(ROOT / "benchmarks" / "fp32_site")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")]))
        os.environ["HIERARCHY_FP32_EMULATED"] = "1"  # names this run's section
    work = Path(tempfile.mkdtemp(prefix="label-bench-"))
    photos = work / "photos"
    photos.mkdir()
    make_photos(photos, args.images)
    # A garment classifier trained on pose regions of these photos (not timed: only its speed matters here).
    model = work / "model"
    run_child(
        hierarchy_cmd(
            "run", "--stage", "coarse", "--run-dir", str(model), "data.format=folder", f"data.root={photos}",
            "data.taxonomy=garment", "data.crop=pose-garments", "train.epochs=1", "data.image_size=64",
            f"detect.cache_dir={work / 'cache'}", SINGLE_PASS, "data.val_fraction=0.2",
        ),
        work / "train.log",
    )  # fmt: skip
    arms = {
        "(a) hierarchy label": hierarchy_cmd("label", str(photos), "--model", str(model), SINGLE_PASS),
        "(b) naive loop: predict per image, forward per crop": [sys.executable, "-c", NAIVE, str(photos), str(model),
                                                                "naive"],
        "(b') naive loop, torch threads given back": [sys.executable, "-c", NAIVE, str(photos), str(model),
                                                      "naive-threads"],
        "(b'') batched loop: predict on 16 images, one forward per image": [sys.executable, "-c", NAIVE,
                                                                             str(photos), str(model), "naive-batched"],
        "(c) detector alone (ours: OpenVINO, decoded ahead)": [sys.executable, "-c", NAIVE, str(photos), str(model),
                                                         "detector"],
        "(a') hierarchy label, detect.backend=torch": hierarchy_cmd("label", str(photos), "--model", str(model),
                                                                    SINGLE_PASS, "detect.backend=torch"),
        "(c') detector alone, torch": [sys.executable, "-c", NAIVE, str(photos), str(model), "detector-torch"],
    }  # fmt: skip
    runs: dict[str, list[dict]] = {name: [] for name in arms}
    for r in range(args.rounds):  # arms take turns, so a slow spell of this machine hits every arm alike
        for k, (name, cmd) in enumerate(arms.items()):
            labeler = name.startswith("(a")
            log_file = work / f"arm{k}-{r}.log"
            measured = run_child(cmd + ["--out", str(work / f"arm{k}-{r}.csv")] if labeler else cmd, log_file)
            text = log_file.read_text()
            if labeler:  # the labeler's own summary: seconds from its first image to the last
                loop_s = float(re.search(r"in ([0-9.]+) s \(", text).group(1))
            else:
                loop_s = json.loads(text.strip().splitlines()[-1])["loop_s"]
            runs[name].append({**measured, "loop_s": round(loop_s, 2), "img_per_s": round(args.images / loop_s, 2)})
            print(name, runs[name][-1], flush=True)
    rows = []
    for name, measured in runs.items():
        median = sorted(measured, key=lambda m: m["img_per_s"])[len(measured) // 2]
        rows.append({"arm": name, "images": args.images, **median, "rounds": [m["img_per_s"] for m in measured]})
    a, b, b_threads, b_batched, c, a_torch, c_torch = (r["img_per_s"] for r in rows)
    best_naive = max(b_threads, b_batched)
    # Memory: label 1,000 and 10,000 small images with a whole-image model.
    memory = []
    tiny = work / "tiny"
    make_tiny(tiny, 10_000)
    small_model = work / "small-model"
    run_child(
        hierarchy_cmd(
            "run", "--stage", "coarse", "--run-dir", str(small_model), "data.format=folder",
            f"data.root={tiny / 'train'}", "data.taxonomy=garment", "train.epochs=1", "data.image_size=32",
        ),
        work / "train-small.log",
    )  # fmt: skip
    for n in (1_000, 10_000):
        listing = work / f"list{n}.txt"
        listing.write_text("\n".join(str(p) for p in sorted((tiny / "all").glob("*.png"))[:n]) + "\n")
        cmd = hierarchy_cmd("label", str(listing), "--model", str(small_model), "--out", str(work / f"m{n}.csv"))
        measured = run_child(cmd, work / f"m{n}.log")
        memory.append({"images": n, **measured, "img_per_s": round(n / measured["wall_s"], 1)})
        print(memory[-1], flush=True)
    growth = memory[1]["peak_rss_mb"] - memory[0]["peak_rss_mb"]
    device = "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    kind = torch.cuda.get_device_name(0) if torch.cuda.is_available() else cpu_kind()
    results = {"device": device, "kind": kind, "date": time.strftime("%Y-%m-%d"), "throughput": rows,
               "memory": memory, "rss_growth_mb": growth}  # fmt: skip
    text = (
        format_table(rows, ["arm", "images", "img_per_s", "loop_s", "wall_s", "peak_rss_mb", "rounds"])
        + f"\n\n(a)/(b) = {a / b:.2f}x, (a)/(b') = {a / b_threads:.2f}x, (a)/(b'') = {a / b_batched:.2f}x, "
        f"(a)/best naive = {a / best_naive:.2f}x (target 1.5), (a)/(c) = {a / c:.2f}x (target 0.85); "
        f"with the torch detector: (a')/(b) = {a_torch / b:.2f}x, (a')/(c') = {a_torch / c_torch:.2f}x. "
        f"img_per_s counts from the first image to the last (loop_s); each arm's median of {args.rounds} rounds "
        "(rounds: every round's img_per_s). wall_s adds each process's start-up (imports, model and detector "
        "loading).\n\n"
        + format_table(memory, ["images", "img_per_s", "wall_s", "peak_rss_mb"])
        + f"\n\nPeak RSS growth from 1,000 to 10,000 images: {growth:+.1f} MB."
    )
    print(text)
    save_kind_results(
        "label_throughput", "Batch labeler: throughput and memory",
        "`python benchmarks/label_throughput.py`: one section per CPU kind (`lscpu` model name, and whether bf16 is "
        "native); each section is that machine's latest run.", results, text, "## Findings",
    )  # fmt: skip


def make_tiny(folder: Path, n: int) -> None:
    """``n`` small generated garment images, plus a labelled copy of a few for training the small model."""
    import numpy as np

    from tests.conftest import class_pattern  # the generated learnable patterns of the test suite

    rng = np.random.default_rng(0)
    (folder / "all").mkdir(parents=True)
    for k in range(n):
        Image.fromarray(class_pattern(k % 10, rng)).save(folder / "all" / f"{k:05d}.png")
    for label in ("top", "bottom", "shoe"):
        (folder / "train" / label).mkdir(parents=True)
        for k in range(200):
            Image.fromarray(class_pattern(len(label) + k % 2, rng)).save(folder / "train" / label / f"{k}.png")


if __name__ == "__main__":
    main()
