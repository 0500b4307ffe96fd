"""The default job: coarse stage → fine stage (from that coarse run) → evaluation on the held-out test split."""

from __future__ import annotations

import logging
from pathlib import Path

from hierarchy.config import load_config
from hierarchy.evaluate import evaluate_run, format_report
from stages import coarse, fine

log = logging.getLogger(__name__)


def run(overrides: list[str], run_dir: str | None = None) -> Path:
    """Run both stages with the same ``key=value`` overrides; returns the fine run folder.

    With ``run_dir`` the stages go to ``run_dir/coarse`` and ``run_dir/fine``; otherwise both get one timestamp.
    """
    coarse_cfg = load_config("coarse", overrides=overrides)
    if run_dir:
        coarse_cfg.run_dir = str(Path(run_dir) / "coarse")
    coarse_dir = coarse.run(coarse_cfg)
    fine_cfg = load_config("fine", overrides=overrides)
    fine_cfg.init_from = str(coarse_dir)
    fine_cfg.name = coarse_dir.name
    if run_dir:
        fine_cfg.run_dir = str(Path(run_dir) / "fine")
    fine_dir = fine.run(fine_cfg)
    report, _ = evaluate_run(fine_dir, "test", device=fine_cfg.train.device)
    log.info("fine model on the held-out test split (%s):\n%s", fine_dir / "test", format_report(report))
    return fine_dir
