"""Batch labeler: folders of photos → one row per crop with every head's label, probability and top-k.

Images stream through a DataLoader (workers decode and hash them), stage one detects on whole batches,
and all crops of a batch go through the classifiers together. Several models vote softly (their
probabilities are averaged). Finished images are written in crash-safe chunks (see label_store), so a
killed run continues where it stopped; under torchrun every rank labels its own disjoint share.
"""

from __future__ import annotations

import logging
import time

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hierarchy.checkpoint import load_checkpoint
from hierarchy.config import DetectConfig, apply, from_dict
from hierarchy.data.crops import DETECTING_MODES, file_hash, usable
from hierarchy.data.image_folder import Item, collect
from hierarchy.data.transforms import letterbox, open_image, to_model_input
from hierarchy.decode import decode
from hierarchy.detect import Detector, Region
from hierarchy.errors import UserError
from hierarchy.evaluate import model_from_checkpoint
from hierarchy.label_store import LabelStore, image_key
from hierarchy.predict import forward
from hierarchy.runner import autocast, configure_threads, decode_workers, distributed, select_device
from hierarchy.taxonomy import build_taxonomy

log = logging.getLogger(__name__)
TOP_K = 5
CHUNK_SECONDS = 10.0  # finished images reach disk at least this often (and every ``chunk`` images)


class Decoded(Dataset):
    """Decode and hash in loader workers; a file that cannot be read comes back with its reason."""

    def __init__(self, items: list[Item], max_side: int) -> None:
        self.items, self.max_side = items, max_side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Item, object, float, str]:
        item = self.items[i]
        try:
            sha = file_hash(item.file)
            image, scale = open_image(item.file, self.max_side)
            return item, image, scale, sha
        except Exception as exc:  # missing, zero-byte, corrupt, not an image, a decompression bomb
            return item, None, 0.0, f"{type(exc).__name__}: {exc}"


class Classifiers:
    """One or more checkpoints of the same taxonomy; probabilities averaged across them (soft voting)."""

    def __init__(self, model_paths: list[str], device: torch.device, tta_shift: int | None = None) -> None:
        self.states = [load_checkpoint(p) for p in model_paths]
        self.taxonomy = build_taxonomy(self.states[0]["taxonomy"], source=self.states[0]["path"])
        self.heads = list(self.states[0]["heads"])
        for state in self.states[1:]:
            if state["taxonomy"] != self.states[0]["taxonomy"] or list(state["heads"]) != self.heads:
                raise UserError(
                    f"{state['path']} and {self.states[0]['path']} differ in taxonomy or heads: an ensemble "
                    "needs models of one taxonomy and stage"
                )
        self.configs = [from_dict(s["config"]) for s in self.states]
        for cfg in self.configs:  # the shifted views cost 5x: labelling may trade them for speed
            if tta_shift is not None:
                apply(cfg.model, {"tta_shift": tta_shift}, "model.")
        if len({c.train.multilabel for c in self.configs}) > 1:
            raise UserError("an ensemble needs all multi-label or all single-label models, not a mix")
        # Multi-label styles: a style is given when its averaged probability reaches the averaged threshold.
        self.thresholds = (
            torch.tensor([s["thresholds"] for s in self.states]).mean(0) if self.configs[0].train.multilabel else None
        )
        self.models = [model_from_checkpoint(s, device).eval() for s in self.states]
        self.device = device

    @torch.no_grad()
    def __call__(self, images: list, boxes: list) -> dict[str, torch.Tensor]:
        """Probabilities per level for crops ``(image, box in that image's pixels)``."""
        total: dict[str, torch.Tensor] = {}
        for model, cfg in zip(self.models, self.configs):
            batch = torch.stack([letterbox(im, cfg.data.image_size, box) for im, box in zip(images, boxes)])
            x = to_model_input(batch.to(self.device, non_blocking=True), cfg.model.channels_last)
            with autocast(self.device, cfg.train.amp):
                logits = forward(model, x, cfg.model.tta_flip, cfg.model.tta_shift)
            probs = decode(
                {h: v.float() for h, v in logits.items()}, self.taxonomy, cfg.hierarchy.rule, cfg.train.multilabel
            )
            for level in self.heads:
                total[level] = total.get(level, 0) + probs[level].cpu() / len(self.models)
        return total


def label_columns(probs: dict[str, torch.Tensor], i: int, taxonomy, thresholds: torch.Tensor | None = None) -> dict:
    """Per head: the label, its probability and the top k; multi-label models add ``fine_labels`` (every fine
    class at or above its threshold, ``|``-separated)."""
    row = {}
    if thresholds is not None:
        row["fine_labels"] = "|".join(
            n for n, p, t in zip(taxonomy.fine, probs["fine"][i].tolist(), thresholds) if p >= t
        )
    for level, p in probs.items():
        names = taxonomy.names(level)
        top = p[i].topk(min(TOP_K, len(names)))
        row[level] = names[int(top.indices[0])]
        row[f"{level}_prob"] = round(float(top.values[0]), 4)
        row[f"{level}_top{TOP_K}"] = "|".join(f"{names[int(k)]}:{float(v):.3f}" for v, k in zip(*top))
    return row


def run(
    paths: list[str],
    models: list[str],
    out: str,
    device: str = "auto",
    batch_size: int = 64,
    workers: int = -1,
    crop: str = "",
    detect: DetectConfig | None = None,
    chunk: int = 256,
    tta_shift: int | None = None,
) -> dict:
    """Label every image not yet in ``out``; returns the summary (images, crops, errors, seconds)."""
    configure_threads()
    rank, world = distributed()
    dev = select_device(device)
    if dev.type == "cuda" and world > 1:  # one GPU per process
        dev = torch.device("cuda", rank % torch.cuda.device_count())
    store = LabelStore(out, rank)
    items = collect(paths)
    done = store.finished()
    todo = [it for it in items if image_key({"root": it.root, "path": it.path}) not in done]
    mine = todo[rank::world]  # disjoint shares; every rank writes its own chunks
    classifiers = Classifiers(models, dev, tta_shift)
    mode = crop or classifiers.configs[0].data.crop
    mode = "image" if mode in ("auto", "annotation") else mode  # photos to label carry no boxes
    detect = detect or classifiers.configs[0].detect
    detector = Detector(detect, str(dev)) if mode in DETECTING_MODES else None
    if len(todo) < len(items):
        log.info("%d of %d images are already labelled in %s: continuing", len(items) - len(todo), len(items), out)
    max_side = (
        max(detect.imgsz, detect.max_imgsz) if detector else 4 * max(c.data.image_size for c in classifiers.configs)
    )
    loader = DataLoader(
        Decoded(mine, max_side),
        batch_size=max(1, min(16, chunk)),  # a chunk holds whole loader batches
        num_workers=decode_workers() if workers < 0 else workers,
        collate_fn=list,
    )
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
            found = detector(images, list(scales)) if detector else [[whole(im, s)] for im, s in zip(images, scales)]
            crops = []  # (image index, region) of every crop to classify
            for n, regions in enumerate(found):
                keep = [r for r in regions if usable(r, mode)] or [whole(images[n], scales[n])]
                crops += [(n, r) for r in keep]
            rows: list[list[dict]] = [[] for _ in good]
            for s in range(0, len(crops), batch_size):
                part = crops[s : s + batch_size]
                boxes = [None if r.kind == "image" else tuple(v / scales[n] for v in r.box) for n, r in part]
                probs = classifiers([images[n] for n, _ in part], boxes)
                for j, (n, region) in enumerate(part):
                    item, sha = good[n][0], good[n][3]
                    x1, y1, x2, y2 = region.to_dict()["box"]
                    rows[n].append(
                        {"root": item.root, "path": item.path, "sha256": sha, "kind": region.kind,
                         "person": region.person, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                         **label_columns(probs, j, classifiers.taxonomy, classifiers.thresholds)}
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


def whole(image, scale: float) -> Region:
    return Region("image", (0.0, 0.0, image.width * scale, image.height * scale), 1.0)
