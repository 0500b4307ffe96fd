"""Stage one classifier: learn the coarse level of the taxonomy (garment group or super-style)."""

from __future__ import annotations

from pathlib import Path

from hierarchy.config import Config
from hierarchy.runs import train_stage
from hierarchy.taxonomy import Taxonomy


def heads(taxonomy: Taxonomy) -> dict[str, int]:
    return {"coarse": taxonomy.num_classes("coarse")}


def run(cfg: Config) -> Path:
    """Train the coarse head on the backbone; returns the run folder."""
    return train_stage(cfg, heads, initialise=None, main_metric="val/coarse_top1")
