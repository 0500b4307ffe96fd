"""The labelling loop of ``hierarchy label``: folders of photos → one row per crop (rows.py) with every head's label,
probability and top-k.

Images stream in batches (threads decode and hash them ahead), stage one detects on whole batches,
and all crops of a batch go through the classifiers together. Several models vote softly (their
probabilities are averaged). Finished images are written in crash-safe chunks (see store.py), so a
killed run continues where it stopped; under torchrun every rank labels its own disjoint share.
"""

from __future__ import annotations

import logging
import time

import torch
from tqdm import tqdm

from hierarchy.config import DetectConfig, LabelConfig
from hierarchy.image_files import collect, decoded_batches
from hierarchy.infer.abstention import abstain
from hierarchy.infer.labeler import Labeler
from hierarchy.infer.load import load_classifier
from hierarchy.infer.rows import head_columns, image_key
from hierarchy.infer.store import LabelStore
from hierarchy.runner import configure_threads, cores_per_process, distributed, rank_device

log = logging.getLogger(__name__)
CHUNK_SECONDS = 10.0  # finished images reach disk at least this often (and every ``chunk`` images)


def label_photos(paths: list[str], models: list[str], options: LabelConfig, detect: DetectConfig | None = None) -> dict:
    """Label every image under ``paths`` not yet in ``options.out`` with the ``models`` (soft voting).

    ``options`` are the ``label.*`` settings; ``detect`` replaces the first model's saved detection settings.
    Returns the summary (images, crops, errors, seconds, rows and errors in the output).
    """
    configure_threads()
    rank, world = distributed()
    dev = rank_device(options.device, rank, world)
    out, batch_size, chunk = options.out, options.batch_size, options.chunk
    store = LabelStore(out, rank)
    items = collect(paths)
    done = store.finished()
    todo = [it for it in items if image_key({"root": it.root, "path": it.path}) not in done]
    mine = todo[rank::world]  # disjoint shares; every rank writes its own chunks
    tta_shift = None if options.tta_shift < 0 else options.tta_shift
    classifiers = load_classifier(models, dev, options.views, tta_shift, options.precision)
    labeler = Labeler(classifiers, options.crop, detect, batch_size)
    if len(todo) < len(items):
        log.info("%d of %d images are already labelled in %s: continuing", len(items) - len(todo), len(items), out)
    threads = cores_per_process() if options.workers < 0 else options.workers
    loader = decoded_batches(mine, labeler.max_side, max(1, min(16, chunk)), threads)  # a chunk holds whole batches
    counts = {"images": 0, "crops": 0, "errors": 0}
    start = last_flush = time.perf_counter()
    bar = tqdm(total=len(mine), unit="img", desc=f"label r{rank}" if world > 1 else "label", disable=None)
    for batch in loader:
        good = [(item, image, scale, sha) for item, image, scale, sha in batch if image is not None]
        for item, _, _, reason in (b for b in batch if b[1] is None):
            store.add({"root": item.root, "path": item.path, "error": reason})
            counts["errors"] += 1
        if good:
            images, scales = [g[1] for g in good], [g[2] for g in good]
            crops, probs = labeler(images, scales)
            rows: list[list[dict]] = [[] for _ in good]
            for j, (n, region) in enumerate(crops):
                item, sha = good[n][0], good[n][3]
                x1, y1, x2, y2 = region.to_dict()["box"]
                rows[n].append(
                    {"root": item.root, "path": item.path, "sha256": sha, "kind": region.kind,
                     "person": region.person, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                     **abstain(head_columns(probs, j, classifiers.taxonomy, classifiers.thresholds),
                               options.min_prob)}
                )  # fmt: skip
            for (item, *_), image_rows in zip(good, rows):
                store.add({"root": item.root, "path": item.path, "rows": image_rows})
            counts["crops"] += len(crops)
        counts["images"] += len(batch)
        bar.update(len(batch))
        if len(store.pending) >= chunk or time.perf_counter() - last_flush > CHUNK_SECONDS:
            store.flush()
            last_flush = time.perf_counter()
    store.flush()
    bar.close()
    seconds = time.perf_counter() - start
    if world > 1:
        torch.distributed.barrier()  # every rank's chunks are on disk before rank 0 merges them
    merged = store.merge() if rank == 0 else {}
    if world > 1:
        torch.distributed.barrier()  # no rank exits (and tears down the group) before the merge is written
        torch.distributed.destroy_process_group()
    summary = {
        **counts,
        "skipped_done": len(items) - len(todo),
        "seconds": round(seconds, 2),
        "images_per_s": round(counts["images"] / max(seconds, 1e-9), 2),
        "rows_in_output": merged.get("rows", 0),
        "errors_in_output": merged.get("errors", 0),
    }
    return summary
