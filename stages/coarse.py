"""Stage one classifier: learn the coarse level of the taxonomy (garment group or super-style)."""

from __future__ import annotations

from pathlib import Path

from hierarchy.config import Config
from hierarchy.engine import fit
from hierarchy.taxonomy import Taxonomy
from hierarchy.training import build_data, build_network, open_run, report

MAIN_METRIC = "val/coarse_top1"  # decides best.pt


def heads(taxonomy: Taxonomy) -> dict[str, int]:
    return {"coarse": taxonomy.num_classes("coarse")}


def run(cfg: Config, hooks: tuple = ()) -> Path:
    """Train the coarse head on the backbone; returns the run folder. ``hooks`` go to ``engine.fit`` (an audit's
    margin tracker)."""
    with open_run(cfg) as run:
        model = build_network(run, heads(run.taxonomy))
        train_set, val_set = build_data(run)
        final = fit(model, train_set, val_set, run, MAIN_METRIC, hooks)
        return report(run, final, train_set, val_set)
