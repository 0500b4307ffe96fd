"""Training as plain functions: train_one_epoch, validate, fit.

Every epoch reseeds shuffling, augmentation and dropout from (seed, epoch), so a run resumed from
``last.pt`` draws exactly what the uninterrupted run would have drawn and ends with the same result.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from hierarchy.aum import MarginTracker
from hierarchy.checkpoint import save_checkpoint
from hierarchy.config import Config, TrainConfig, to_dict
from hierarchy.data import balanced_sampler, build_loader
from hierarchy.data.images import Batch, SkipLog
from hierarchy.data.transforms import augment_batch, cutmix, to_model_input
from hierarchy.decode import decode
from hierarchy.ema import WeightAverage
from hierarchy.errors import UserError
from hierarchy.losses import class_weights, compute_loss, consistency_loss
from hierarchy.metrics import hierarchical_metrics
from hierarchy.optim import build_optimizer, build_scheduler
from hierarchy.predict import predict
from hierarchy.runner import autocast, distributed
from hierarchy.taxonomy import Taxonomy
from hierarchy.uda import endless_batches, split_unlabelled, uda_views

log = logging.getLogger(__name__)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def train_one_epoch(
    model: nn.Module,
    loader,
    optimizer,
    scheduler,
    cfg: TrainConfig,
    device: torch.device,
    epoch: int,
    skips: SkipLog,
    weights: dict[str, torch.Tensor] | None = None,
    channels_last: bool = True,
    tracker: MarginTracker | None = None,
    unlabeled: Iterator[Batch] | None = None,
    average: WeightAverage | None = None,
) -> dict[str, float]:
    """One pass over the loader.

    Args:
        tracker: An audit: records every sample's margins from the training forward passes.
        unlabeled: Batches of unlabelled images for the UDA consistency loss (``train.uda``), one per step.
        average: The running average of the weights (``train.ema``), updated after every step.
    """
    model.train()
    core = getattr(model, "module", model)  # the network inside a DistributedDataParallel wrapper
    if not any(p.requires_grad for p in core.backbone.parameters()):
        core.backbone.eval()  # a frozen backbone keeps its batch-norm statistics too
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    generator = epoch_generator(cfg.seed + 7919 * rank, epoch)  # each rank augments its share differently
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout
    seen, loss_sum, start = 0, 0.0, time.perf_counter()
    bar = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        leave=False,
        file=sys.stderr,
        unit="batch",
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
        disable=None,
    )
    for batch in bar:
        skips.add(batch.skipped)
        if not batch.sources:
            continue
        images = batch.images.to(device, non_blocking=True)
        images = augment_batch(images, generator, cfg.flip, cfg.rotate, cfg.translate, cfg.scale, cfg.jitter, cfg.erase)
        mix = None
        if cfg.cutmix > 0 and float(torch.rand(1, generator=generator)) < cfg.cutmix:
            images, perm, lam = cutmix(images, generator, cfg.cutmix_alpha)
            mix = (perm, lam)
        targets = {k: v.to(device, non_blocking=True) for k, v in batch.targets.items()}
        x, n = to_model_input(images, channels_last), len(images)
        if unlabeled is not None:  # one forward for labelled + strongly augmented unlabelled images (as UDA does)
            weak_logits, strong = uda_views(model, next(unlabeled).images.to(device), generator, cfg, device)
            x = torch.cat([x, to_model_input(strong, channels_last)])
        with autocast(device, cfg.amp):
            out = model(x)
        logits = {head: value[:n] for head, value in out.items()}
        loss = compute_loss(logits, targets, cfg, weights, mix)
        if unlabeled is not None:
            loss = loss + cfg.uda * consistency_loss({h: v[n:] for h, v in out.items()}, weak_logits, cfg)
        if tracker is not None:
            tracker.update(batch.sources, logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update(core)
        seen += len(batch.sources)
        loss_sum += loss.item() * len(batch.sources)
        bar.set_postfix(
            loss=f"{loss_sum / seen:.3f}", img_s=f"{seen / (time.perf_counter() - start):.0f}", refresh=False
        )
    bar.close()
    elapsed = time.perf_counter() - start
    return {"train/loss": loss_sum / max(1, seen), "train/images_per_s": seen / max(elapsed, 1e-9)}


def validate(
    model: nn.Module, loader, taxonomy: Taxonomy, cfg: Config, device: torch.device, skips: SkipLog
) -> dict[str, float]:
    """Top-1 per head on the validation split, with the configured hierarchy rule; for attribute heads also
    the mean per-class accuracy (ACSA) and its mean over the heads. The shifted test-time views are left out
    here (5x the cost every epoch); the final evaluation of the best checkpoint uses them."""
    logits, targets, _ = predict(
        model, loader, device, cfg.train.amp, cfg.model.channels_last, skips, cfg.model.tta_flip
    )
    probs = decode(logits, taxonomy, cfg.hierarchy.rule, cfg.train.multilabel)
    out = {}
    for head in logits:
        keep = targets[head] >= 0
        pred, true = probs[head].argmax(1)[keep], targets[head][keep]
        out[f"val/{head}_top1"] = float((pred == true).float().mean())
        if head in taxonomy.attributes:
            classes = true.unique()
            out[f"val/{head}_acsa"] = float(sum((pred[true == c] == c).float().mean() for c in classes) / len(classes))
    if taxonomy.attributes:
        out["val/mean_acsa"] = sum(out[f"val/{h}_acsa"] for h in taxonomy.attributes) / len(taxonomy.attributes)
    if "fine" in probs:
        h = hierarchical_metrics(
            probs["fine"].numpy(), probs["coarse"].numpy(), targets["fine"].numpy(), taxonomy, targets["coarse"].numpy()
        )
        out["val/implied_coarse_top1"], out["val/consistency"] = h["implied_coarse_top1"], h["consistency"]
    return out


def write_metrics_csv(history: list[dict[str, float]], path: Path) -> None:
    """Rewrite metrics.csv from the full history (atomic), so a resumed run never holds duplicate epochs."""
    columns = list(dict.fromkeys(k for row in history for k in row))
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    for p in model.backbone.parameters():
        p.requires_grad_(trainable)


def fit(
    model: nn.Module,
    train_set,
    val_set,
    cfg: Config,
    taxonomy: Taxonomy,
    run_dir: Path,
    device: torch.device,
    main_metric: str,
    resume_state: dict[str, Any] | None = None,
    tracker: MarginTracker | None = None,
) -> dict[str, Any]:
    """Train for ``cfg.train.epochs``, saving ``last.pt`` every epoch and ``best.pt`` on a better ``main_metric``
    (every epoch when ``val_set`` is None: with no validation the last epoch is the one kept).

    Returns:
        The last epoch's checkpoint state plus ``skipped``: {path: reason} of the unreadable files met.
    """
    tc = cfg.train
    rank, world = distributed()
    lead = rank == 0  # one process writes checkpoints, metrics and logs
    heads = {name: head.out_features for name, head in model.heads.items()}
    val_loader = None if val_set is None else build_loader(val_set, tc.batch_size * 2, cfg.data.workers)
    batch_size = max(1, tc.batch_size // world)  # the global batch stays train.batch_size under torchrun
    train_set, pool = split_unlabelled(train_set, list(heads), tc, cfg.data.image_size)
    share = math.ceil(len(train_set) / world)
    steps_per_epoch = math.ceil(share / batch_size)  # the loader keeps the last partial batch
    optimizer = build_optimizer(model, tc)
    scheduler = build_scheduler(optimizer, tc, steps_per_epoch)
    weights = class_weights(train_set, heads) if tc.class_weights else None
    if tc.balance and tc.balance not in heads:
        raise UserError(f"train.balance={tc.balance!r} is not a head of this model; heads: {sorted(heads)}")
    history: list[dict[str, float]] = []
    start_epoch, best = 0, -1.0
    average = WeightAverage(model, tc.ema) if tc.ema else None
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        if average is not None:
            average.load_state_dict(resume_state["ema"])
        start_epoch, best = resume_state["epoch"] + 1, resume_state["best_metric"]
        history = [row for row in resume_state.get("history", []) if row["epoch"] < start_epoch]
        so_far = f"best {main_metric} so far {best:.4f}" if val_loader is not None else "no validation"
        log.info("resuming at epoch %d of %d (%s)", start_epoch + 1, tc.epochs, so_far)
    skips = SkipLog()
    state: dict[str, Any] = resume_state or {}
    for epoch in range(start_epoch, tc.epochs):
        frozen = epoch < tc.freeze_backbone_epochs
        set_backbone_trainable(model, not frozen)
        started = time.time()
        sampler = None
        if tc.balance:  # each rank draws its own share, from its own stream
            draw = epoch_generator(tc.seed + 7919 * rank + 1, epoch)
            sampler = balanced_sampler(train_set, tc.balance, heads[tc.balance], share, draw)
        elif world > 1:  # disjoint shares of the shuffled training set, reshuffled each epoch
            sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=tc.seed)
            sampler.set_epoch(epoch)
        loader = build_loader(
            train_set, batch_size, cfg.data.workers, shuffle_seed=tc.seed * 100_003 + epoch, sampler=sampler
        )
        # DDP only syncs parameters that need gradients when it is built: rebuild it when freezing changes.
        net = DistributedDataParallel(model) if world > 1 else model
        row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "backbone_frozen": int(frozen)}
        # UDA: each rank its own order of the unlabelled pool, fixed by (epoch, rank) for an exact resume
        order = 100_000 * (epoch + 1) + 1000 * rank
        unlabeled = None if pool is None else endless_batches(pool, batch_size, cfg.data.workers, order)
        row.update(
            train_one_epoch(
                net,
                loader,
                optimizer,
                scheduler,
                tc,
                device,
                epoch,
                skips,
                weights,
                cfg.model.channels_last,
                tracker,
                unlabeled,
                average,
            )  # fmt: skip
        )
        served = model if average is None else average.model  # the weights that are validated and saved as best
        if val_loader is not None:
            row.update(validate(served, val_loader, taxonomy, cfg, device, skips))
        row["time"] = round(time.time() - started, 2)
        history.append(row)
        improved = val_loader is None or row[main_metric] > best
        best = max(best, row.get(main_metric, best))
        state = {
            "stage": cfg.stage,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "best_metric": best,
            "history": history,
            "config": to_dict(cfg),
            "taxonomy": taxonomy.to_dict(),
            "heads": heads,
        }
        if average is not None:
            state["ema"] = average.state_dict()
        if not lead:
            continue
        save_checkpoint(run_dir / "checkpoints" / "last.pt", state)
        if improved:
            best_state = {**state, "model": served.state_dict(), "optimizer": {}, "scheduler": {}}
            best_state.pop("ema", None)
            save_checkpoint(run_dir / "checkpoints" / "best.pt", best_state)
        write_metrics_csv(history, run_dir / "metrics.csv")
        log.info(
            "epoch %d/%d  loss %.4f  %s  %.0f img/s  %.0fs%s",
            epoch + 1,
            tc.epochs,
            row["train/loss"],
            f"{main_metric} {row[main_metric]:.4f}" if main_metric in row else "no validation",
            row["train/images_per_s"],
            row["time"],
            "  (best)" if improved and val_loader is not None else "",
        )
    set_backbone_trainable(model, True)
    if len(skips):
        log.warning("%d unreadable image(s) were skipped; see the warnings above", len(skips))
    return {**state, "skipped": dict(skips.reasons)}


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)
