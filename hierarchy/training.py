"""A training run from start to end, in the steps a stage recipe calls in order:

    with open_run(cfg) as run:                      # folder, resume, log file, settings, seed, device
        model = build_network(run, heads, init)     # the network, resumed or initialised, on its device
        train_set, val_set = build_data(run)        # the splits, cropped
        final = fit(model, train_set, val_set, run, main_metric)   # hierarchy.engine
        return report(run, final, train_set, val_set)              # metrics.json and friends

A run folder: ``config.yaml, taxonomy.yaml, train.log, checkpoints/{last,best}.pt, metrics.csv`` and,
from the best checkpoint on the validation split, ``metrics.json, confusion_<head>.{png,csv},
predictions_val.csv`` (with ``data.val_fraction=0``, no validation: a training summary in ``metrics.json``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hierarchy.checkpoint import load_checkpoint, save_checkpoint
from hierarchy.config import Config, from_dict, save_config
from hierarchy.data import build_splits, with_data_attributes
from hierarchy.engine import Run, seed_everything
from hierarchy.errors import UserError
from hierarchy.evaluate import evaluate, fit_calibration, predict_split
from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.models import build_model
from hierarchy.paths import ARTIFACTS, newest_run
from hierarchy.report import format_report, write_report
from hierarchy.runner import configure_threads, distributed, rank_device, select_device
from hierarchy.taxonomy import build_taxonomy, load_taxonomy, save_taxonomy

log = logging.getLogger(__name__)


def run_folder(cfg: Config) -> Path:
    """``run_dir`` as given; with ``resume=auto`` and no name, the stage's newest run; else a new timestamp."""
    if cfg.run_dir:
        return Path(cfg.run_dir).expanduser()
    if cfg.resume == "auto" and not cfg.name:
        latest = newest_run(cfg.stage)
        if latest is not None:
            return latest
    return ARTIFACTS / cfg.stage / (cfg.name or time.strftime("%Y%m%d-%H%M%S"))


def resume_state_for(cfg: Config, folder: Path) -> dict[str, Any] | None:
    """The checkpoint to continue from (``resume=auto``: this run's last.pt if any; ``resume=PATH``)."""
    last = folder / "checkpoints" / "last.pt"
    if not cfg.resume:
        if last.exists():
            raise UserError(f"{folder} already holds a run. Continue it with resume=auto, or choose another --run-dir")
        return None
    if cfg.resume == "auto":
        return load_checkpoint(last) if last.exists() else None
    state = load_checkpoint(cfg.resume, prefer="last.pt")
    if not state.get("optimizer"):
        raise UserError(f"{state['path']} holds no optimizer state (best.pt never does): resume from last.pt")
    return state


@contextlib.contextmanager
def open_run(cfg: Config) -> Iterator[Run]:
    """Open (or continue) the run folder and set the process up: threads, ranks, log file, saved settings and
    taxonomy, seed and device. A resumed run keeps its own settings, so it ends as the uninterrupted one would."""
    configure_threads()
    rank, world = distributed()
    folder = run_folder(cfg)
    if world > 1:  # one folder for all ranks: rank 0's choice (a timestamp may differ between processes)
        chosen = [str(folder)]
        torch.distributed.broadcast_object_list(chosen, src=0)
        folder = Path(chosen[0])
        if rank:
            logging.getLogger().setLevel(logging.WARNING)  # one process tells the story
    folder.mkdir(parents=True, exist_ok=True)
    resume = resume_state_for(cfg, folder)
    if world > 1:
        torch.distributed.barrier()  # every rank has looked for last.pt before rank 0 writes one
    if resume is not None:
        if resume.get("stage") != cfg.stage:
            raise UserError(
                f"cannot resume the {cfg.stage} stage from a {resume.get('stage')} checkpoint ({resume['path']})"
            )
        saved = from_dict(resume["config"])
        saved.resume, saved.run_dir = cfg.resume, str(folder)
        cfg = saved
    handler = attach_log_file(folder) if rank == 0 else logging.NullHandler()
    try:
        taxonomy = (
            with_data_attributes(cfg.data, load_taxonomy(cfg.data.taxonomy))
            if resume is None
            else build_taxonomy(resume["taxonomy"], source=f"checkpoint {resume['path']}")
        )
        if rank == 0:
            save_config(cfg, folder / "config.yaml")
            save_taxonomy(taxonomy, folder / "taxonomy.yaml")
        seed_everything(cfg.train.seed)
        yield Run(cfg, taxonomy, folder, rank_device(cfg.train.device, rank, world), rank, world, resume)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def attach_log_file(folder: Path) -> logging.Handler:
    handler = logging.FileHandler(folder / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def build_network(
    run: Run, heads: dict[str, int], initialise: Callable[[nn.Module, Config, Any], None] | None = None
) -> nn.Module:
    """The stage's network on the run's device: resumed weights, or ``initialise`` (e.g. a transfer from the
    coarse checkpoint), which runs before any data is read, so a wrong checkpoint fails in a second."""
    model = build_model(run.cfg.model, heads)
    if run.resume is not None:
        model.load_state_dict(run.resume["model"])
    elif initialise is not None:
        initialise(model, run.cfg, run.taxonomy)
    model = model.to(run.device)
    return model.to(memory_format=torch.channels_last) if run.cfg.model.channels_last else model


def build_data(run: Run) -> tuple[Any, Any]:
    """(train, val or None) crops of the run's data (see hierarchy.data.build_splits)."""
    cfg = run.cfg
    train_set, val_set = build_splits(cfg.data, run.taxonomy, cfg.train.seed, cfg.detect, str(run.device))
    if val_set is None and cfg.train.multilabel:
        raise UserError("a multi-label model tunes its thresholds on validation: set data.val_fraction above 0")
    validation = "no validation (data.val_fraction=0)" if val_set is None else f"{len(val_set)} validation samples"
    log.info("%s stage: %d training samples, %s, device %s, run folder %s", cfg.stage, len(train_set), validation,
             run.device, run.folder)  # fmt: skip
    return train_set, val_set


def report(run: Run, final: dict[str, Any], train_set, val_set) -> Path:
    """Close the process group and, on rank 0, write the run's report: the best checkpoint on validation
    (its temperatures, and a multi-label model's thresholds, fitted there and stored in best.pt), or a training
    summary without validation."""
    cfg, folder = run.cfg, run.folder
    if run.world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        if run.rank:
            return folder
    if val_set is None:
        save_training_summary(folder, final, len(train_set))
        return folder
    best = load_checkpoint(folder, prefer="best.pt")
    classifier = TorchClassifiers([best], select_device(cfg.train.device), views="model", precision=cfg.label.precision)
    predictions = predict_split(classifier, val_set, cfg.train.batch_size * 2, cfg.data.workers, final.get("skipped"))
    fit_calibration(best, predictions, thresholds=True)
    evaluation = evaluate(best, predictions, "val")
    write_report(evaluation, run.taxonomy, folder)
    metrics = evaluation.report
    save_checkpoint(Path(best.pop("path")), best)  # temperatures and thresholds belong to the model
    log.info("temperatures fitted on validation: %s", best["temperatures"])
    if cfg.train.multilabel:
        log.info("per-class thresholds tuned on validation: %s", best["thresholds"])
    log.info("best checkpoint on validation:\n%s", format_report(metrics))
    return folder


def save_training_summary(folder: Path, final: dict[str, Any], n_train: int) -> None:
    """``metrics.json`` of a run with no validation split: what it trained on, and where its figures come from."""
    summary = {
        "split": None,
        "note": "trained on every training image (data.val_fraction=0); best.pt is the last epoch. "
        f"Measure it on held-out data: hierarchy eval --model {folder} --split test",
        "n_train": n_train,
        "epochs": final["epoch"] + 1,
        "skipped_images": len(final.get("skipped", {})),
        "skipped_files": final.get("skipped", {}),
    }
    with open(folder / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    log.info("no validation split: %s", summary["note"])
