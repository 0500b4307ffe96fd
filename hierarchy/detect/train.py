"""Training a YOLO garment detector with ultralytics, offline: a fresh run from the pose checkpoint's backbone or
the continuation of a stopped one, in ``<run>/yolo``, its weights then copied to ``<run>/checkpoints``."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from hierarchy.detect.yolo import POSE_WEIGHTS, offline_ultralytics
from hierarchy.errors import UserError
from hierarchy.runner import select_device
from hierarchy.weights import resolve_offline_weights

log = logging.getLogger(__name__)


def yolo_device(spec: str) -> str:
    """``train.device`` as ultralytics names it: ``select_device``'s choice, a CUDA GPU by its index (``cuda`` → ``0``,
    ``cuda:1`` → ``1``), else ``cpu``."""
    device = select_device(spec)
    return str(device.index or 0) if device.type == "cuda" else device.type


def resume_point(run_dir: Path, resume: str) -> Path | None:
    """The detector run to continue (``resume=auto`` and ``<run>/yolo/weights/last.pt`` exists), else None.

    Raises:
        UserError: the folder holds a detector run and ``resume`` is not ``auto``.
    """
    last = run_dir / "yolo" / "weights" / "last.pt"
    if last.exists() and resume != "auto":
        raise UserError(
            f"{run_dir} already holds a detector run. Continue it with resume=auto, or choose another --run-dir"
        )
    return last if last.exists() else None


def train_detector(
    run_dir: Path, data_yaml: Path, device: str, epochs: int, imgsz: int, batch: int, lr0: float, seed: int,
    workers: int,
) -> None:  # fmt: skip
    """A new YOLO11n detector, its backbone and neck from the pose model, trained on ``data_yaml``."""
    pose = resolve_offline_weights(POSE_WEIGHTS)
    model = load_yolo("yolo11n.yaml", task="detect").load(str(pose))
    model.train(
        data=str(data_yaml),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        lr0=lr0,
        seed=seed,
        device=device,
        workers=workers,
        project=str(run_dir),
        name="yolo",
        exist_ok=True,
        amp=False,  # the AMP check would download a model
        plots=False,
        verbose=False,
    )


def resume_detector(last: Path, device: str) -> None:
    """Continue a stopped run at its saved epoch, with its optimizer state and its own settings."""
    log.info("resuming the detector from %s", last)
    load_yolo(str(last)).train(resume=True, device=device)


def load_yolo(weights: str, task: str | None = None):
    """An ultralytics ``YOLO`` that gives torch its thread count back when training starts (ultralytics drops to
    cores - 1 threads when it picks the device)."""
    offline_ultralytics()
    from ultralytics import YOLO

    threads = torch.get_num_threads()
    model = YOLO(weights, task=task)
    model.add_callback("on_pretrain_routine_start", lambda trainer: torch.set_num_threads(threads))
    return model


def copy_weights(run_dir: Path) -> None:
    """``<run>/yolo/weights/{best,last}.pt`` → ``<run>/checkpoints/``, where ``detect.weights=<run>`` finds them."""
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    for name in ("best.pt", "last.pt"):
        if (run_dir / "yolo" / "weights" / name).exists():
            shutil.copyfile(run_dir / "yolo" / "weights" / name, run_dir / "checkpoints" / name)
