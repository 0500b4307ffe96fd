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
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

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


class OpenVinoYolo:
    """A YOLO IR run by OpenVINO with several photos in flight: one infer request per stream, each in a thread.

    ultralytics runs OpenVINO models with the latency hint, one photo after another, so one photo's convolutions
    are spread over every core. OpenVINO's throughput hint instead runs as many streams as suit the machine,
    each on its own share of the cores, and keeps that many photos in flight: more photos per second on the
    same cores (benchmarks/results/label_throughput.md). Post-processing is ultralytics' own NMS, so boxes,
    scores and keypoints are those ultralytics' predictor would give for the same input.
    """

    def __init__(self, folder: Path, names: dict, kpt_shape: tuple | None, end2end: bool, threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(next(folder.glob("*.xml")))
        # torchrun ranks share the cores: each compiles for its own share
        self.compiled = core.compile_model(
            model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": threads}
        )
        # fewer photos than streams (one upload to the web app, the few photos of a second pass) would leave
        # cores idle: those run one after another, each over every core, as ultralytics runs them
        self.one_by_one = core.compile_model(
            model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        )
        self.streams = self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self.requests = threading.local()  # an infer request belongs to one thread, and to one of the two models
        self.pool = ThreadPoolExecutor(
            self.streams, "openvino", initializer=lambda: setattr(self.requests, "stream", 1)
        )
        # pybind11 sets up its numpy bindings on first use, and two threads doing that at once deadlock: do it here
        self.one_by_one.create_infer_request().infer({0: np.zeros((1, 3, 32, 32), np.float32)})
        self.classes, self.kpt_shape, self.end2end = len(names), kpt_shape, end2end

    def in_flight(self, work, items) -> list:
        """``[work(item) for item in items]``: as many at once as OpenVINO runs streams, or, with fewer items
        than streams, one after another in this thread, each over every core."""
        items = list(items)
        if len(items) < self.streams:
            return [work(item) for item in items]
        return list(self.pool.map(work, items))

    def detect(self, image: np.ndarray, conf: float, iou: float, max_det: int) -> np.ndarray:
        """Detections in one (H, W, 3) uint8 RGB image sized for the network (sides multiples of 32):
        ``(N, 6 + keypoint values)`` rows of x1, y1, x2, y2, score, class, then keypoints as (x, y, confidence).
        Call it from ``in_flight``'s threads: each holds its own infer request."""
        return self.suppress(self.network(image), image.shape[:2], conf, iou, max_det)

    def network(self, image: np.ndarray) -> torch.Tensor:
        """The network's raw output for one image (scaled to 0..1 and laid out as ultralytics does)."""
        request = getattr(self.requests, "request", None)
        if request is None:
            model = self.compiled if getattr(self.requests, "stream", 0) else self.one_by_one
            request = self.requests.request = model.create_infer_request()
        pixels = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32) / 255
        return torch.from_numpy(request.infer({0: pixels})[0])

    def suppress(self, raw: torch.Tensor, shape: tuple[int, int], conf: float, iou: float, max_det: int) -> np.ndarray:
        """ultralytics' NMS on a raw output, boxes and keypoints clipped to the input image as ultralytics does."""
        from ultralytics.utils.nms import non_max_suppression

        found = non_max_suppression(
            raw, conf, iou, max_det=max_det, nc=self.classes, end2end=self.end2end
        )[0].numpy()  # fmt: skip
        height, width = shape
        found[:, [0, 2]] = found[:, [0, 2]].clip(0, width)
        found[:, [1, 3]] = found[:, [1, 3]].clip(0, height)
        if self.kpt_shape is not None:
            points = found[:, 6:].reshape(len(found), *self.kpt_shape)
            points[..., 0] = points[..., 0].clip(0, width)
            points[..., 1] = points[..., 1].clip(0, height)
        return found
