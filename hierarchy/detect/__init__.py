"""Stage one's eyes: people and garment regions in photos, with ultralytics YOLO, offline.

- ``detector``: batched, two-scale inference turning photos into named ``Region`` s (person, hat, top …).
- ``pose_regions``: garment boxes placed by a person's pose keypoints.
- ``cache``: detection once per image content and detector setting (``detect_files``).
- ``openvino_backend``: the YOLO checkpoint exported to OpenVINO for faster CPU inference.
- ``output``: ``hierarchy detect`` rows (CSV / JSONL) and preview images.
- ``yolo``: keeping ultralytics off the network; the default pose weights; torch's thread count.
- ``yolo_data``, ``train``: training a garment detector (``hierarchy run --stage detect``).

Nothing in this package imports the data package or the training code.
"""

from hierarchy.detect.cache import DetectionCache, config_key, detect_files
from hierarchy.detect.detector import Detector, Region
from hierarchy.detect.yolo import POSE_WEIGHTS, offline_ultralytics, resolve_detector_weights

__all__ = [
    "POSE_WEIGHTS",
    "DetectionCache",
    "Detector",
    "Region",
    "config_key",
    "detect_files",
    "offline_ultralytics",
    "resolve_detector_weights",
]
