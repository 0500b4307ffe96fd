"""Run folders and the shared training recipe that every training stage calls.

A run folder: ``config.yaml, taxonomy.yaml, train.log, checkpoints/{last,best}.pt, metrics.csv`` and,
from the best checkpoint on the validation split, ``metrics.json, confusion_<head>.{png,csv},
predictions_val.csv`` (with ``data.val_fraction=0``, no validation: a training summary in ``metrics.json``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hierarchy.aum import MarginTracker
from hierarchy.checkpoint import load_checkpoint, save_checkpoint
from hierarchy.config import Config, from_dict, save_config
from hierarchy.data import build_splits, with_data_attributes
from hierarchy.engine import fit, seed_everything
from hierarchy.errors import UserError
from hierarchy.evaluate import evaluate_checkpoint, format_report
from hierarchy.models import build_model
from hierarchy.runner import configure_threads, distributed, select_device
from hierarchy.taxonomy import Taxonomy, build_taxonomy, load_taxonomy, save_taxonomy

log = logging.getLogger(__name__)
ARTIFACTS = Path("artifacts")


def newest_run(stage: str, root: Path = ARTIFACTS) -> Path | None:
    """The most recently written run of a stage that holds a checkpoint."""
    runs = [p.parent.parent for p in (root / stage).glob("*/checkpoints/last.pt")]
    return max(runs, key=lambda p: (p / "checkpoints" / "last.pt").stat().st_mtime) if runs else None


def resolve_run_dir(cfg: Config) -> Path:
    if cfg.run_dir:
        return Path(cfg.run_dir).expanduser()
    if cfg.resume == "auto" and not cfg.name:
        latest = newest_run(cfg.stage)
        if latest is not None:
            return latest
    return ARTIFACTS / cfg.stage / (cfg.name or time.strftime("%Y%m%d-%H%M%S"))


def attach_log_file(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def resume_state_for(cfg: Config, run_dir: Path) -> dict[str, Any] | None:
    """The checkpoint to continue from (``resume=auto``: this run's last.pt if any; ``resume=PATH``)."""
    if not cfg.resume:
        if (run_dir / "checkpoints" / "last.pt").exists():
            raise UserError(f"{run_dir} already holds a run. Continue it with resume=auto, or choose another --run-dir")
        return None
    if cfg.resume == "auto":
        last = run_dir / "checkpoints" / "last.pt"
        return load_checkpoint(last) if last.exists() else None
    state = load_checkpoint(cfg.resume, prefer="last.pt")
    if not state.get("optimizer"):
        raise UserError(f"{state['path']} holds no optimizer state (best.pt never does): resume from last.pt")
    return state


def train_stage(
    cfg: Config,
    heads_for: Callable[[Taxonomy], dict[str, int]],
    initialise: Callable[[nn.Module, Config, Taxonomy], None] | None,
    main_metric: str | Callable[[dict[str, int]], str],
    tracker: MarginTracker | None = None,
) -> Path:
    """The training recipe shared by the stages: run folder, data, model, init, fit, report.

    Args:
        heads_for: Head sizes for a taxonomy, e.g. ``{"coarse": 6}``.
        initialise: Called on a fresh (not resumed) model, e.g. to transfer from a coarse checkpoint.
        main_metric: Validation metric that decides ``best.pt``, or a function of the head sizes giving it.
        tracker: Records every training sample's margins (``hierarchy audit``).

    Returns:
        The run folder.
    """
    configure_threads()
    rank, world = distributed()
    run_dir = resolve_run_dir(cfg)
    if world > 1:  # one folder for all ranks: rank 0's choice (a timestamp may differ between processes)
        chosen = [str(run_dir)]
        torch.distributed.broadcast_object_list(chosen, src=0)
        run_dir = Path(chosen[0])
        if rank:
            logging.getLogger().setLevel(logging.WARNING)  # one process tells the story
    run_dir.mkdir(parents=True, exist_ok=True)
    resume = resume_state_for(cfg, run_dir)
    if world > 1:
        torch.distributed.barrier()  # every rank has looked for last.pt before rank 0 writes one
    if resume is not None:
        if resume.get("stage") != cfg.stage:
            raise UserError(
                f"cannot resume the {cfg.stage} stage from a {resume.get('stage')} checkpoint ({resume['path']})"
            )
        saved = from_dict(resume["config"])
        saved.resume, saved.run_dir = cfg.resume, str(run_dir)
        cfg = saved  # a resumed run keeps its own settings, so it ends exactly as the uninterrupted one would
    handler = attach_log_file(run_dir) if rank == 0 else logging.NullHandler()
    try:
        taxonomy = (
            with_data_attributes(cfg.data, load_taxonomy(cfg.data.taxonomy))
            if resume is None
            else build_taxonomy(resume["taxonomy"], source=f"checkpoint {resume['path']}")
        )
        if rank == 0:
            save_config(cfg, run_dir / "config.yaml")
            save_taxonomy(taxonomy, run_dir / "taxonomy.yaml")
        seed_everything(cfg.train.seed)
        device = select_device(cfg.train.device)
        if device.type == "cuda" and world > 1:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        heads = heads_for(taxonomy)
        model = build_model(cfg.model, heads)
        metric = main_metric(heads) if callable(main_metric) else main_metric
        if resume is not None:
            model.load_state_dict(resume["model"])
        elif initialise is not None:
            initialise(model, cfg, taxonomy)  # before the data: a wrong checkpoint fails in a second
        train_set, val_set = build_splits(cfg.data, taxonomy, cfg.train.seed, cfg.detect, str(device))
        if val_set is None and cfg.train.multilabel:
            raise UserError("a multi-label model tunes its thresholds on validation: set data.val_fraction above 0")
        log.info(
            "%s stage: %d training samples, %s, device %s, run folder %s",
            cfg.stage,
            len(train_set),
            "no validation (data.val_fraction=0)" if val_set is None else f"{len(val_set)} validation samples",
            device,
            run_dir,
        )
        model = model.to(device)
        if cfg.model.channels_last:
            model = model.to(memory_format=torch.channels_last)
        final = fit(model, train_set, val_set, cfg, taxonomy, run_dir, device, metric, resume, tracker)
        if world > 1:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
            if rank:
                return run_dir  # rank 0 writes the report
        if val_set is None:
            write_training_summary(run_dir, final, len(train_set))
            return run_dir
        best = load_checkpoint(run_dir, prefer="best.pt")
        report = evaluate_checkpoint(
            best,
            val_set,
            run_dir,
            "val",
            cfg.train.device,
            cfg.train.batch_size * 2,
            cfg.data.workers,
            already_skipped=final.get("skipped", {}),
            fit_thresholds=cfg.train.multilabel,
        )
        if cfg.train.multilabel:  # thresholds belong to the model: tuned on validation, stored in best.pt
            save_checkpoint(Path(best.pop("path")), best)
            log.info("per-class thresholds tuned on validation: %s", best["thresholds"])
        log.info("best checkpoint on validation:\n%s", format_report(report))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    return run_dir


def write_training_summary(run_dir: Path, final: dict[str, Any], n_train: int) -> None:
    """``metrics.json`` of a run with no validation split: what it trained on, and where its figures come from."""
    summary = {
        "split": None,
        "note": "trained on every training image (data.val_fraction=0); best.pt is the last epoch. "
        f"Measure it on held-out data: hierarchy eval --model {run_dir} --split test",
        "n_train": n_train,
        "epochs": final["epoch"] + 1,
        "skipped_images": len(final.get("skipped", {})),
        "skipped_files": final.get("skipped", {}),
    }
    with open(run_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    log.info("no validation split: %s", summary["note"])
