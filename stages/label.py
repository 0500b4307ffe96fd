"""Batch labeler: folders of photos → one row per crop with every head's label, probability and top-k.

The loop (streaming, batching, resuming, torchrun shares) is the library's: ``hierarchy.infer.loop``.
"""

from __future__ import annotations

from hierarchy.config import DetectConfig, LabelConfig
from hierarchy.infer.loop import label_photos


def run(paths: list[str], models: list[str], options: LabelConfig, detect: DetectConfig | None = None) -> dict:
    """Label every image under ``paths`` not yet in ``options.out`` with the ``models`` (soft voting); ``detect``
    replaces the first model's saved detection settings. Returns the run's summary."""
    return label_photos(paths, models, options, detect)
