"""Where `hierarchy label`'s time goes per photo: decoding (with EXIF), detection, letterboxing the crops,
the classifier's forward passes, the hierarchy decoding, building rows and writing them.

The phases are run one after another over the same photos, in the order and with the batch sizes the labeler
uses (16 photos per detector call, ``label.batch_size`` crops per classifier call), each timed on its own; the
labeler's own run over the same folder is timed too, so the sum of the phases can be checked against it (the
labeler decodes ahead in threads and keeps several photos in flight in the detector, so it can beat the sum).
Inside detection, the OpenVINO detector's steps are also timed one photo at a time on one thread: letterbox to
the network's input, the network, NMS; the in-flight threads share this work out.

Usage: python benchmarks/label_profile.py [--model RUN] [--images 96] [--crop person] [--views one]
Writes benchmarks/results/label_profile.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fashion_mnist import hierarchy_cmd, run_child, save_kind_results  # noqa: E402
from benchmarks.gpu_check import photo_folder  # noqa: E402
from benchmarks.label_efficiency import cpu_kind  # noqa: E402
from hierarchy.detect.detector import network_input  # noqa: E402
from hierarchy.image_files import collect, decode_photo, open_image  # noqa: E402
from hierarchy.infer.abstention import abstain  # noqa: E402
from hierarchy.infer.classifier import letterboxed  # noqa: E402
from hierarchy.infer.labeler import Labeler  # noqa: E402
from hierarchy.infer.load import load_classifier  # noqa: E402
from hierarchy.infer.rows import head_columns  # noqa: E402
from hierarchy.infer.store import LabelStore  # noqa: E402
from hierarchy.metrics import format_table  # noqa: E402
from hierarchy.paths import newest_run  # noqa: E402
from hierarchy.runner import configure_threads  # noqa: E402

FINDINGS = "## Findings"


def profile(model: str, photos: Path, crop: str, views: str, out: Path) -> tuple[dict[str, float], int, dict | None]:
    """Seconds per phase over every photo, the number of crops, and detection's steps (detection_steps)."""
    configure_threads()
    labeler = Labeler(load_classifier([model], torch.device("cpu"), views), crop)
    classifiers, size = labeler.classifiers, labeler.classifiers.input_size
    seconds = dict.fromkeys(["decode (EXIF, hash)", "detect", "letterbox crops", "classify (forward)",
                             "hierarchy decoding", "rows", "write"], 0.0)  # fmt: skip
    items, crops_total = collect([str(photos)]), 0
    store = LabelStore(out)

    @contextlib.contextmanager
    def phase(name: str):
        start = time.perf_counter()
        yield
        seconds[name] += time.perf_counter() - start

    for s in range(0, len(items), 16):
        part = items[s : s + 16]
        with phase("decode (EXIF, hash)"):
            decoded = [decode_photo(i, labeler.max_side) for i in part]  # as the labeler's threads do
        images, scales = [d[1] for d in decoded], [d[2] for d in decoded]
        with phase("detect"):
            regions = labeler.regions(images, scales)
        crops = [(n, r) for n, found in enumerate(regions) for r in found]
        crops_total += len(crops)
        with phase("letterbox crops"):
            boxes = [None if r.kind == "image" else tuple(v / scales[n] for v in r.box) for n, r in crops]
            batch = letterboxed([images[n] for n, _ in crops], boxes, size)
        with phase("classify (forward)"):
            logits = classifiers.logits(0, batch)
        with phase("hierarchy decoding"):
            probs = {h: v.cpu() for h, v in classifiers.decode(0, logits).items() if h in classifiers.heads}
        with phase("rows"):
            rows: list[list[dict]] = [[] for _ in part]
            for j, (n, region) in enumerate(crops):
                rows[n].append({"kind": region.kind, **abstain(head_columns(probs, j, classifiers.taxonomy), 0.0)})
        with phase("write"):
            for item, image_rows in zip(part, rows):
                store.add({"root": item.root, "path": item.path, "rows": image_rows})
            store.flush()
    with phase("write"):
        store.merge()
    return seconds, crops_total, detection_steps(labeler, [Path(i.file) for i in items])


def detection_steps(labeler: Labeler, photos: list[Path]) -> tuple[dict[str, float], int] | None:
    """Seconds over all photos for each step of the first detection pass, one photo at a time on this thread,
    and the photos the detector keeps in flight (None without the OpenVINO detector)."""
    detector = labeler.detector
    if detector is None or detector.openvino is None:
        return None
    cfg, network = detector.cfg, detector.openvino
    seconds = dict.fromkeys(["letterbox to the network input", "network (OpenVINO)", "NMS"], 0.0)

    def one_stream() -> None:  # in one of the detector's stream threads, as the labeler runs each photo
        for path in photos:
            image, _ = open_image(str(path), labeler.max_side)
            start = time.perf_counter()
            pixels = np.asarray(network_input(image, cfg.imgsz)[0])
            letterboxed_at = time.perf_counter()
            raw = network.network(pixels)
            network_at = time.perf_counter()
            network.suppress(raw, pixels.shape[:2], cfg.conf, cfg.iou, cfg.max_det)
            for step, took in zip(seconds, (letterboxed_at - start, network_at - letterboxed_at,
                                            time.perf_counter() - network_at)):  # fmt: skip
                seconds[step] += took

    network.pool.submit(one_stream).result()
    return seconds, network.streams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="run folder (default: the newest artifacts/fine run)")
    parser.add_argument("--images", type=int, default=96, help="photos (the packaged photos with people, in turn)")
    parser.add_argument("--crop", default="person", help="crop mode to label with (person: stage one runs)")
    parser.add_argument("--views", default="one", help="test-time views per crop: one or model")
    args = parser.parse_args()
    model = args.model or str(newest_run("fine") or "")
    if not model:
        raise SystemExit("no fine run under artifacts/fine: run the README's first command, or pass --model RUN")
    work = Path(tempfile.mkdtemp(prefix="label-profile-"))
    photos = photo_folder(work / "photos", args.images)
    seconds, crops, steps = profile(model, photos, args.crop, args.views, work / "profiled.csv")
    log = work / "label.log"
    run_child(hierarchy_cmd("label", str(photos), "--model", model, "--crop", args.crop, "--views", args.views,
                            "--out", str(work / "labels.csv")), log)  # fmt: skip
    labeler_s = float(re.search(r"in ([0-9.]+) s \(", log.read_text()).group(1))
    total = sum(seconds.values())
    rows = [{"phase": k, "ms_per_photo": round(1000 * v / args.images, 2), "share": f"{v / total:.1%}"}
            for k, v in seconds.items()]  # fmt: skip
    results = {"kind": cpu_kind(), "date": time.strftime("%Y-%m-%d"), "threads": torch.get_num_threads(),
               "model": model, "images": args.images,
               "crops": crops, "crop": args.crop, "views": args.views, "phases": rows,
               "sum_ms_per_photo": round(1000 * total / args.images, 2),
               "labeler_ms_per_photo": round(1000 * labeler_s / args.images, 2)}  # fmt: skip
    if steps:
        results["in_flight"] = steps[1]
        results["detection_steps"] = [{"step": k, "ms_per_photo": round(1000 * v / args.images, 2)}
                                      for k, v in steps[0].items()]  # fmt: skip
    text = (
        f"{results['threads']} threads. {args.images} photos (the packaged photos with "
        f"people, in turn), {crops} crops, `--crop {args.crop} --views {args.views}`, model `{model}`.\n\n"
        + format_table(rows, ["phase", "ms_per_photo", "share"])
        + f"\n\nSum of the phases: {results['sum_ms_per_photo']} ms per photo; `hierarchy label` itself over the "
        f"same photos (its loop, from first photo to last): {results['labeler_ms_per_photo']} ms per photo.\n"
    )
    if steps:
        text += (
            "\nInside detection, the first pass one photo at a time on one thread (the labeler keeps "
            f"{steps[1]} photos in flight, one per OpenVINO stream, and shares this work out):\n\n"
            + format_table(results["detection_steps"], ["step", "ms_per_photo"])
            + "\n"
        )
    print(text)
    save_kind_results(
        "label_profile", "Where hierarchy label's time goes",
        "`python benchmarks/label_profile.py --model RUN`: one section per CPU kind (`lscpu` model name, and whether "
        "bf16 is native); each section is that machine's latest run.", results, text, FINDINGS,
    )  # fmt: skip


if __name__ == "__main__":
    main()
