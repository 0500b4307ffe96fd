"""A prepared check for a GPU machine, in one call of under 8 minutes (``--quick``: on a CPU in about a minute,
run by the test suite so that it cannot rot).

1. The default Fashion-MNIST job on the device (``hierarchy run --stage all data.val_fraction=0``, every epoch
   of the recipe: 6 + 22): its time, test figures and the GPU's peak memory while training.
2. Training images/s of the coarse stage with bf16 autocast and channels-last on and off (one epoch each).
3. Labelling photos: ``hierarchy label --crop person`` against a naive per-image loop (ultralytics predict,
   one classifier forward per person) and against the detector alone (batched), in images/s, plus the peak
   GPU memory of each (polled with nvidia-smi).

Usage: python benchmarks/gpu_check.py [--quick] [--out DIR]   (DIR default benchmarks/results)
Writes DIR/gpu_check.json and .md (gpu_check_quick.* with --quick).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fashion_mnist import hierarchy_cmd, run_child, test_metrics  # noqa: E402
from benchmarks.photos import PHOTOS  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402

NAIVE = """
import json, sys, time, torch
from pathlib import Path
from PIL import Image
from ultralytics import YOLO
from hierarchy.checkpoint import load_checkpoint
from hierarchy.config import DetectConfig, from_dict
from hierarchy.data.transforms import letterbox, to_model_input
from hierarchy.detect import Detector, offline_ultralytics, resolve_detector_weights
from hierarchy.infer.classifier import model_from_checkpoint
offline_ultralytics()
folder, model_dir, mode, device = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
paths, crops = sorted(folder.glob("*.jpg")), 0
if mode == "detector":  # the detector alone, batched as the labeler batches it
    detector = Detector(DetectConfig(max_imgsz=0, backend="torch"), device)
    start = time.perf_counter()
    for s in range(0, len(paths), 16):
        crops += sum(len(r) for r in detector([Image.open(p).convert("RGB") for p in paths[s : s + 16]]))
else:  # what a user writes: predict per image, one forward per person
    yolo = YOLO(str(resolve_detector_weights("")))
    state = load_checkpoint(model_dir)
    size = from_dict(state["config"]).data.image_size
    model = model_from_checkpoint(state, torch.device(device)).eval()
    start = time.perf_counter()
    for path in paths:
        image = Image.open(path).convert("RGB")
        result = yolo.predict(image, imgsz=640, conf=0.25, verbose=False, device=device)[0]
        for box in result.boxes.xyxy.cpu().numpy():
            with torch.no_grad():
                model(to_model_input(letterbox(image, size, tuple(box))[None].to(device)))
            crops += 1
print(json.dumps({"loop_s": time.perf_counter() - start, "crops": crops}))
"""


class GpuMemory:
    """Peak memory used on GPU 0 while a block runs, polled with nvidia-smi (works for child processes); None
    without a GPU."""

    def __enter__(self) -> GpuMemory:
        self.peak_mb, self.running = None, shutil.which("nvidia-smi") is not None and torch.cuda.is_available()
        if self.running:
            self.thread = threading.Thread(target=self.poll, daemon=True)
            self.thread.start()
        return self

    def poll(self) -> None:
        while self.running:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i",
                                  "0"], capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
            if out:
                self.peak_mb = max(self.peak_mb or 0, int(out.splitlines()[0]))
            time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        if self.running:
            self.running = False
            self.thread.join()


def last_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def fake_data(folder: Path) -> str:
    """A tiny Fashion-MNIST-format data set (the test suite's generated patterns) for --quick."""
    from tests.conftest import make_fashion_mnist

    return str(make_fashion_mnist(folder, 600, 200))


def photo_folder(folder: Path, n: int) -> Path:
    """``n`` real photos with people (the packaged ones, in turn)."""
    from PIL import Image

    folder.mkdir(parents=True)
    sources = [Image.open(p).convert("RGB") for p, people in PHOTOS.items() if people]
    for k in range(n):
        sources[k % len(sources)].save(folder / f"{k:04d}.jpg", quality=90)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch: checks the script on a CPU")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the results")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    data = [f"data.root={fake_data(work / 'fmnist')}", "data.image_size=32"] if args.quick else []
    epochs = ["train.epochs=1"] if args.quick else []
    results: dict = {"device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({platform.processor()})",
                     "torch": torch.__version__, "quick": args.quick}  # fmt: skip

    # 1. the default job, every epoch of the recipe
    job = work / "job"
    cmd = hierarchy_cmd("run", "--stage", "all", "--run-dir", str(job), "data.val_fraction=0", "train.time_budget=0",
                        f"train.device={device}", *data, *epochs)  # fmt: skip
    with GpuMemory() as memory:
        measured = run_child(cmd, work / "job.log")
    fine_rows = last_rows(job / "fine")
    results["default_job"] = {**measured, **test_metrics(job / "fine"), "gpu_peak_mb": memory.peak_mb,
                              "fine_epochs": len(fine_rows), "coarse_epochs": len(last_rows(job / "coarse")),
                              "train_gpu_peak_mb": fine_rows[-1].get("gpu_peak_mb")}  # fmt: skip
    print(results["default_job"], flush=True)

    # 2. training speed: bf16 autocast and channels-last, on and off
    speed = []
    for amp in (True, False):
        for channels_last in (True, False):
            run_dir = work / f"speed-{amp}-{channels_last}"
            cmd = hierarchy_cmd("run", "--stage", "coarse", "--run-dir", str(run_dir), "train.epochs=1",
                                f"train.amp={str(amp).lower()}", f"model.channels_last={str(channels_last).lower()}",
                                f"train.device={device}", *data)  # fmt: skip
            run_child(cmd, work / f"speed-{amp}-{channels_last}.log")
            row = last_rows(run_dir)[-1]
            speed.append({"amp_bf16": amp, "channels_last": channels_last,
                          "train_img_s": round(float(row["train/images_per_s"])),
                          "gpu_peak_mb": row.get("gpu_peak_mb")})  # fmt: skip
            print(speed[-1], flush=True)
    results["training_speed"] = speed

    # 3. labelling photos: ours, the naive loop, the detector alone
    photos = photo_folder(work / "photos", 8 if args.quick else 96)
    model = str(job / "fine")
    arms = {
        "hierarchy label --crop person": hierarchy_cmd("label", str(photos), "--model", model, "--crop", "person",
                                                       "--device", device, "--out", str(work / "labels.csv")),
        "naive loop (predict per image, forward per person)": [sys.executable, "-c", NAIVE, str(photos), model,
                                                               "naive", device],
        "detector alone (batched)": [sys.executable, "-c", NAIVE, str(photos), model, "detector", device],
    }  # fmt: skip
    labelling = []
    for name, cmd in arms.items():
        log = work / f"{len(labelling)}.log"
        with GpuMemory() as memory:
            measured = run_child(cmd, log)
        text = log.read_text()
        if name.startswith("hierarchy"):
            loop_s = float(re.search(r"in ([0-9.]+) s \(", text).group(1))  # the labeler's own summary line
        else:
            loop_s = json.loads(text.strip().splitlines()[-1])["loop_s"]
        labelling.append({"arm": name, "images": len(list(photos.glob("*.jpg"))), "loop_s": round(loop_s, 2),
                          "img_per_s": round(len(list(photos.glob("*.jpg"))) / loop_s, 1),
                          "wall_s": measured["wall_s"], "gpu_peak_mb": memory.peak_mb})  # fmt: skip
        print(labelling[-1], flush=True)
    results["labelling"] = labelling
    write(results, Path(args.out), "gpu_check_quick" if args.quick else "gpu_check")
    shutil.rmtree(work, ignore_errors=True)


def write(results: dict, out: Path, name: str) -> None:
    job = results["default_job"]
    text = (
        f"Device: {results['device']}, torch {results['torch']}.\n\n### Default job (every epoch of the recipe)\n\n"
        + format_table(
            [job],
            [
                "coarse_epochs",
                "fine_epochs",
                "wall_s",
                "fine_top1",
                "coarse_top1",
                "consistency",
                "gpu_peak_mb",
                "train_gpu_peak_mb",
            ],
        )  # fmt: skip
        + "\n\n### Training speed (coarse stage, one epoch)\n\n"
        + format_table(results["training_speed"], ["amp_bf16", "channels_last", "train_img_s", "gpu_peak_mb"])
        + "\n\n### Labelling photos\n\n"
        + format_table(results["labelling"], ["arm", "images", "img_per_s", "loop_s", "wall_s", "gpu_peak_mb"])
        + "\n"
    )
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out / f"{name}.md").write_text(
        f"# GPU check\n\n`python benchmarks/gpu_check.py{' --quick' if results['quick'] else ''}` on "
        f"{time.strftime('%Y-%m-%d')}\n\n{text}"
    )


if __name__ == "__main__":
    main()
