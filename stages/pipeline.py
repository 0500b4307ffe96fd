"""The default job: coarse → fine → evaluation on the held-out test split → labeling (when asked).

Data without a test split ends the job with the fine run's own validation report and a note that says how to
add a test split (or, with ``data.val_fraction=0``, that nothing was held out): it is not an error.

With ``--run-dir DIR`` the job can be run again: a stage whose run is finished with the same settings is
skipped, an interrupted one continues (``resume=auto``), and the labeler skips what it labelled before.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from hierarchy.checkpoint import load_checkpoint
from hierarchy.config import Config, load_config, run_identity, to_dict
from hierarchy.errors import NoTestSplit, UserError
from hierarchy.report import evaluate_run, format_report, held_out_note
from stages import coarse, fine, label

log = logging.getLogger(__name__)


def progress(cfg: Config, folder: Path) -> str:
    """``done``, ``partial`` or ``new`` for a stage's run folder; refuses a folder trained with other settings."""
    last = folder / "checkpoints" / "last.pt"
    if not last.exists():
        return "new"
    state = load_checkpoint(last)
    # The stage's own settings on both sides, less those that may differ between invocations (per_run: the run's
    # folder, resume, its share of a time budget, labelling defaults); an old checkpoint's label and audit sections
    # are no part of them.
    mine, theirs = run_identity(to_dict(cfg)), run_identity(state["config"])
    changed = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    if changed:
        raise UserError(f"{folder} holds a run with other settings (in {changed}): choose another --run-dir")
    planned = state.get("epochs", cfg.train.epochs)  # fewer than train.epochs when a time budget cut the run
    finished = state["epoch"] + 1 >= planned and (folder / "metrics.json").exists()
    return "done" if finished else "partial"


def train(stage, cfg: Config) -> Path:
    if cfg.run_dir:
        state = progress(cfg, Path(cfg.run_dir))
        if state == "done":
            log.info("%s stage in %s is finished with these settings: skipped", cfg.stage, cfg.run_dir)
            return Path(cfg.run_dir)
        cfg.resume = "auto" if state == "partial" else cfg.resume
    return stage.run(cfg)


def report_without_test(fine_dir: Path, no_test: str) -> None:
    """The job's last report when the data has no test split: the fine run's validation report, written when it
    trained (no second pass), or, with ``data.val_fraction=0``, that nothing was held out; ``no_test`` is the
    data adapter's words on how to add a test split."""
    report = json.loads((fine_dir / "metrics.json").read_text(encoding="utf-8"))
    if report["split"] == "val":
        log.info("fine model on the validation split (%s):\n%s", fine_dir, format_report(report))
    log.warning(held_out_note(report["split"], no_test, str(fine_dir)))


def run(overrides: list[str], run_dir: str | None = None) -> Path:
    """Run the stages with the same ``key=value`` overrides; returns the fine run folder.

    With ``run_dir`` (``--run-dir``, or else the ``run_dir`` setting) the stages go to ``run_dir/coarse`` and
    ``run_dir/fine``; otherwise both get one timestamp.
    ``train.time_budget`` is the whole job's training time: the coarse stage gets its share by epochs, the fine
    stage what the coarse one left.
    """
    coarse_cfg = load_config("coarse", overrides=overrides)
    fine_cfg = load_config("fine", overrides=overrides)
    run_dir = run_dir or coarse_cfg.run_dir  # the run_dir setting names the job's folder, as --run-dir does
    budget, epochs = fine_cfg.train.time_budget, (coarse_cfg.train.epochs, fine_cfg.train.epochs)
    if budget > 0:
        coarse_cfg.train.time_budget = budget * epochs[0] / sum(epochs)
    if run_dir:
        coarse_cfg.run_dir = str(Path(run_dir) / "coarse")
    coarse_dir = train(coarse, coarse_cfg)
    fine_cfg = fine.settings(overrides=overrides, init_from=str(coarse_dir))  # the coarse run's network
    if budget > 0:
        spent = sum(load_checkpoint(coarse_dir, prefer="last.pt").get("budget", {}).get("epoch_times", [])) / 60
        fine_cfg.train.time_budget = max(budget - spent, budget / 100)
        log.info("train.time_budget: the coarse stage took %.1f of %g min; the fine stage gets %.1f", spent, budget,
                 fine_cfg.train.time_budget)  # fmt: skip
    fine_cfg.name = coarse_dir.name
    if run_dir:
        fine_cfg.run_dir = str(Path(run_dir) / "fine")
    fine_dir = train(fine, fine_cfg)
    report_file = fine_dir / "test" / "metrics.json"
    best = fine_dir / "checkpoints" / "best.pt"
    if report_file.exists() and report_file.stat().st_mtime > best.stat().st_mtime:
        log.info("test report %s is newer than the fine checkpoint: kept", report_file)
    else:
        device, precision = fine_cfg.train.device, fine_cfg.label.precision
        try:
            report, _ = evaluate_run(fine_dir, "test", device=device, precision=precision)
        except NoTestSplit as missing:
            report_without_test(fine_dir, str(missing))
        else:
            log.info("fine model on the held-out test split (%s):\n%s", fine_dir / "test", format_report(report))
    if fine_cfg.label.input:
        options = dataclasses.replace(fine_cfg.label, out=fine_cfg.label.out or str(fine_dir / "labels.csv"))
        summary = label.run(paths=[options.input], models=[str(fine_dir)], options=options)
        log.info("labelled %s → %s: %s", options.input, options.out, summary)
    return fine_dir
