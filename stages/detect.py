"""Garment detector: fine-tune a YOLO detector, from the pose checkpoint's backbone, on garment boxes.

Boxes come from K-Fashion JSON (``data.format=kfashion``), a CSV with ``x1,y1,x2,y2`` columns
(``data.format=csv``), or an existing YOLO ``data.yaml`` (``data.root=…/data.yaml``). Classes are the
coarse garment types of the taxonomy (default ``garment``). The ultralytics run lives in
``<run>/yolo``; its weights are copied to ``<run>/checkpoints/{best,last}.pt``, which
``data.crop=detector`` and ``detect.weights=<run>`` use.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch
import yaml

from hierarchy.config import Config, save_config
from hierarchy.data import build_splits
from hierarchy.detect import POSE_WEIGHTS, offline_ultralytics
from hierarchy.detect.yolo_data import write_yolo_split
from hierarchy.errors import UserError
from hierarchy.taxonomy import Taxonomy, load_taxonomy
from hierarchy.training import run_folder
from hierarchy.weights import resolve_offline_weights

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
    spec = {
        "path": str(folder.resolve()),
        "train": "train/images",
        "val": "val/images",
        "names": dict(enumerate(taxonomy.coarse)),
    }
    (folder / "data.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder / "data.yaml"


def run(cfg: Config) -> Path:
    """Train the garment detector; returns the run folder."""
    run_dir = run_folder(cfg)
    yolo_dir = run_dir / "yolo"
    last = yolo_dir / "weights" / "last.pt"
    if last.exists() and cfg.resume != "auto":
        raise UserError(
            f"{run_dir} already holds a detector run. Continue it with resume=auto, or choose another --run-dir"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    taxonomy = load_taxonomy(cfg.data.taxonomy)
    offline_ultralytics()
    from ultralytics import YOLO

    device = cfg.train.device if cfg.train.device != "auto" else ("0" if torch.cuda.is_available() else "cpu")
    device = device.replace("cuda:", "") if device.startswith("cuda:") else ("0" if device == "cuda" else device)
    threads = torch.get_num_threads()  # ultralytics drops to cores - 1 threads when it picks the device

    def restore_threads(trainer) -> None:
        torch.set_num_threads(threads)

    if last.exists():  # resume=auto: ultralytics continues at the saved epoch with its optimizer state
        log.info("resuming the detector from %s", last)
        model = YOLO(str(last))
        model.add_callback("on_pretrain_routine_start", restore_threads)
        model.train(resume=True, device=device)
    else:
        data_yaml = build_dataset(cfg, taxonomy, run_dir / "yolo_data")
        pose = resolve_offline_weights(POSE_WEIGHTS)
        model = YOLO("yolo11n.yaml", task="detect").load(str(pose))  # backbone and neck from the pose model
        model.add_callback("on_pretrain_routine_start", restore_threads)
        model.train(
            data=str(data_yaml),
            epochs=cfg.train.epochs,
            imgsz=cfg.data.image_size,
            batch=cfg.train.batch_size,
            lr0=cfg.train.lr,
            seed=cfg.train.seed,
            device=device,
            workers=max(0, cfg.data.workers),
            project=str(run_dir),
            name="yolo",
            exist_ok=True,
            amp=False,  # the AMP check would download a model
            plots=False,
            verbose=False,
        )
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    for name in ("best.pt", "last.pt"):
        if (yolo_dir / "weights" / name).exists():
            shutil.copyfile(yolo_dir / "weights" / name, run_dir / "checkpoints" / name)
    log.info("garment detector in %s; use it with data.crop=detector detect.weights=%s", run_dir, run_dir)
    return run_dir
