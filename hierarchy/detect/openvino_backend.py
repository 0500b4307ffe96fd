"""The OpenVINO backend of stage one: a YOLO checkpoint exported once to OpenVINO IR, cached by its content.

On CPUs, OpenVINO runs YOLO11n-pose faster than torch and finds the same people (figures in
benchmarks/results/detect_throughput.md). ``detect.backend=auto`` uses it on CPU when the
``openvino`` package is installed (``pip install -e .[openvino]``) and torch otherwise; CUDA always runs torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

from hierarchy.errors import UserError

log = logging.getLogger(__name__)
CACHE = Path.home() / ".cache" / "hierarchy" / "openvino"


def detector_backend(choice: str, device: str) -> str:
    """The backend that ``detect.backend=choice`` means on ``device``: ``torch`` or ``openvino``."""
    on_cpu = str(device) == "cpu"
    installed = importlib.util.find_spec("openvino") is not None
    if choice == "openvino":
        if not on_cpu:
            raise UserError(f"detect.backend=openvino runs on the CPU only; use detect.backend=torch on {device}")
        if not installed:
            raise UserError("detect.backend=openvino needs the openvino package: pip install -e .[openvino]")
    return "openvino" if choice == "openvino" or (choice == "auto" and on_cpu and installed) else "torch"


def openvino_model(weights: Path, cache: Path = CACHE) -> Path:
    """The OpenVINO IR folder of a YOLO ``.pt`` (exported on first use, with dynamic batch and image size).

    The export works on a copy in a scratch folder and is renamed into place, so an interrupted export leaves
    nothing half-written, and processes exporting at once (torchrun ranks) all end up with one folder.
    """
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    # ultralytics recognises an OpenVINO model by the folder name's ending
    target = cache / f"{weights.stem}-{digest}_openvino_model"
    if (target / "metadata.yaml").is_file():
        return target
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    cache.mkdir(parents=True, exist_ok=True)
    log.info("exporting %s to OpenVINO once (cached in %s)", weights.name, target)
    level = LOGGER.level
    with tempfile.TemporaryDirectory(dir=cache) as scratch, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation, inside the export
        LOGGER.setLevel(logging.WARNING)  # ultralytics' export report (usage hints for its own CLI) is noise here
        copy = Path(scratch) / weights.name  # ultralytics writes the export next to the weights it is given
        shutil.copyfile(weights, copy)
        try:
            exported = Path(YOLO(str(copy)).export(format="openvino", dynamic=True, batch=1))
        finally:
            LOGGER.setLevel(level)
        try:
            exported.rename(target)
        except OSError:  # another process finished the same export first
            if not (target / "metadata.yaml").is_file():
                raise
    return target
