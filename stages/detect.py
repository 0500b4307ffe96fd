"""Garment detector: fine-tune a YOLO detector, from the pose checkpoint's backbone, on garment boxes.

Boxes come from K-Fashion JSON (``data.format=kfashion``), a CSV with ``x1,y1,x2,y2`` columns
(``data.format=csv``), or an existing YOLO ``data.yaml`` (``data.root=…/data.yaml``). Classes are the
coarse garment types of the taxonomy (default ``garment``). The ultralytics run lives in
``<run>/yolo``; its weights are copied to ``<run>/checkpoints/{best,last}.pt``, which
``data.crop=detector`` and ``detect.weights=<run>`` use.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hierarchy.config import Config, save_config
from hierarchy.data import build_splits
from hierarchy.detect.train import copy_weights, resume_detector, resume_point, train_detector, yolo_device
from hierarchy.detect.yolo_data import write_data_yaml, write_yolo_split
from hierarchy.errors import UserError
from hierarchy.runner import decode_workers
from hierarchy.taxonomy import Taxonomy, load_taxonomy
from hierarchy.training import run_folder

log = logging.getLogger(__name__)


def build_dataset(cfg: Config, taxonomy: Taxonomy, folder: Path) -> Path:
    """A YOLO data.yaml (absolute paths) for the configured boxes; an existing data.yaml is used as it is."""
    if cfg.data.root.endswith((".yaml", ".yml")):
        path = Path(cfg.data.root).expanduser()
        if not path.is_file():
            raise UserError(f"data.root={cfg.data.root} not found")
        return path
    train, val = build_splits(cfg.data, taxonomy, cfg.train.seed)  # data.crop=auto: the annotated boxes
    if val is None:
        raise UserError("the detector stage needs validation images: set data.val_fraction above 0 (e.g. 0.1)")
    counts = {split: write_yolo_split(files, folder / split) for split, files in (("train", train), ("val", val))}
    if not counts["train"] or not counts["val"]:
        raise UserError(f"no boxes to train a detector on in data.root={cfg.data.root} (images with boxes: {counts})")
    log.info("YOLO data in %s: %d training and %d validation images", folder, counts["train"], counts["val"])
    return write_data_yaml(folder, taxonomy.coarse)


def run(cfg: Config) -> Path:
    """Train the garment detector; returns the run folder."""
    run_dir = run_folder(cfg)
    last = resume_point(run_dir, cfg.resume)  # <run>/yolo/weights/last.pt with resume=auto
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    taxonomy = load_taxonomy(cfg.data.taxonomy)
    device = yolo_device(cfg.train.device)
    if last:  # ultralytics continues at the saved epoch with its optimizer state
        resume_detector(last, device)
    else:
        data_yaml = build_dataset(cfg, taxonomy, run_dir / "yolo_data")
        workers = cfg.data.workers if cfg.data.workers >= 0 else decode_workers()  # -1: as training's loader
        train_detector(
            run_dir, data_yaml, device, epochs=cfg.train.epochs, imgsz=cfg.data.image_size,
            batch=cfg.train.batch_size, lr0=cfg.train.lr, seed=cfg.train.seed, workers=workers,
        )  # fmt: skip
    copy_weights(run_dir)
    log.info("garment detector in %s; use it with data.crop=detector detect.weights=%s", run_dir, run_dir)
    return run_dir
