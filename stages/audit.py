"""Label audit: a short training run of a stage that ranks every training sample by Area Under the Margin.

``hierarchy audit --stage fine [--config FILE] key=value…`` trains the stage's model for ``audit.epochs``
(CutMix off: a mixed image's margin means nothing), then writes into the run folder ``aum.csv`` (every
sample and head, lowest AUM first) and ``suspect_labels.csv`` (AUM below ``audit.threshold``). The next
run leaves the suspects out with ``data.drop_suspects=<run folder>``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hierarchy.aum import MarginTracker, save_margins
from hierarchy.config import Config
from hierarchy.data.suspects import SUSPECTS_FILE
from hierarchy.errors import UserError
from hierarchy.paths import ARTIFACTS
from hierarchy.runner import distributed
from hierarchy.taxonomy import load_taxonomy
from stages import coarse, fine

log = logging.getLogger(__name__)
RECIPES = {"coarse": coarse.run, "fine": fine.run}  # the stages whose labels an audit ranks


def run(cfg: Config) -> Path:
    """Audit the labels ``cfg`` trains on; returns the audit run folder."""
    if cfg.stage not in RECIPES:
        raise UserError(f"hierarchy audit audits a coarse or fine stage's labels, not {cfg.stage!r}")
    if distributed()[1] > 1:
        raise UserError("run hierarchy audit in one process (without torchrun): it is a short run")
    if cfg.resume:
        raise UserError("an audit averages margins over every epoch of one run: start a new one, without resume")
    cfg.train.epochs, cfg.train.cutmix = cfg.audit.epochs, 0.0
    cfg.run_dir = cfg.run_dir or str(ARTIFACTS / "audit" / (cfg.name or time.strftime("%Y%m%d-%H%M%S")))
    tracker = MarginTracker()
    run_dir = RECIPES[cfg.stage](cfg, hooks=(tracker,))
    rows = tracker.rows(load_taxonomy(run_dir / "taxonomy.yaml"))  # the run's names, attribute heads included
    save_margins(rows, run_dir / "aum.csv")
    suspects = [r for r in rows if r["aum"] < cfg.audit.threshold]
    save_margins(suspects, run_dir / SUSPECTS_FILE)
    samples = len({r["source"] for r in rows})
    log.info(
        "audit: %d of %d training samples have a label with AUM < %g → %s (leave them out of the next run with "
        "data.drop_suspects=%s)",
        len({r["source"] for r in suspects}),
        samples,
        cfg.audit.threshold,
        run_dir / SUSPECTS_FILE,
        run_dir,
    )
    return run_dir
