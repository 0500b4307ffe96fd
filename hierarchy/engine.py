"""Training as plain functions: train_one_epoch, validate, fit.

``fit`` takes a short list of hooks: plain objects with any of ``after_step(done: StepDone)``,
``after_epoch(epoch, row)`` and, to be saved in ``last.pt`` and restored on resume, ``state_key`` with
``state_dict()`` / ``load_state_dict()``. The time budget (time_budget.py), the running average of the weights
(ema.py) and an audit's margin tracker (aum.py) are such hooks; a recipe adds one without touching a signature.

Every epoch reseeds shuffling, augmentation and dropout from (seed, epoch), so a run resumed from
``last.pt`` draws exactly what the uninterrupted run would have drawn and ends with the same result
(a run under ``train.time_budget`` fits its length to the clock, so only its schedule is reproducible).
"""

from __future__ import annotations

import csv
import functools
import logging
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from hierarchy.checkpoint import save_checkpoint
from hierarchy.config import Config, to_dict
from hierarchy.data import build_loader, weighted_sampler
from hierarchy.data.images import Batch, SkipLog, head_labels
from hierarchy.data.transforms import augment_batch, cutmix, to_model_input
from hierarchy.ema import WeightAverage
from hierarchy.errors import UserError
from hierarchy.infer.classifier import predict
from hierarchy.infer.decode import decode_hierarchy, group_matrix
from hierarchy.losses import class_weights, compute_loss, consistency_loss, group_pseudo_loss
from hierarchy.metrics import hierarchical_metrics, mean_class_accuracy
from hierarchy.optim import Schedule, build_optimizer, build_scheduler
from hierarchy.paths import atomic_write
from hierarchy.precision import Precision, choose_precision, log_choice, restored
from hierarchy.runner import autocast
from hierarchy.semi import STRONG_VIEWS, hierarchy_fixmatch_loss, strong_views
from hierarchy.taxonomy import Taxonomy
from hierarchy.time_budget import TimeBudget
from hierarchy.uda import STRONG_AUGMENT, endless_batches, split_unlabelled, uda_views

log = logging.getLogger(__name__)


@dataclass
class Run:
    """A training run: its settings, label space, folder, device, process rank, and the state it resumes."""

    cfg: Config
    taxonomy: Taxonomy
    folder: Path
    device: torch.device
    rank: int = 0
    world: int = 1
    resume: dict[str, Any] | None = None
    precision: Precision | None = None  # chosen by ``fit`` at start-up (precision.py)

    @property
    def bf16(self) -> bool:
        return self.precision is not None and self.precision.bf16


@dataclass
class Step:
    """What every training step needs besides the batch."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    schedule: Schedule  # its epochs may shrink under a time budget
    weights: dict[str, torch.Tensor] | None = None  # per-head class weights (train.class_weights)
    hooks: tuple = ()  # see the module's docstring


@dataclass
class StepDone:
    """What a hook sees after each optimizer step: the network (unwrapped), the batch's samples, the labelled
    images' logits per head and their targets."""

    model: nn.Module
    sources: list[str]
    logits: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]


def call_hooks(hooks, method: str, *args) -> None:
    for hook in hooks:
        if hasattr(hook, method):
            getattr(hook, method)(*args)


def epoch_seed(seed: int, epoch: int, rank: int = 0, stream: int = 0) -> int:
    """The one seed formula: a distinct, reproducible stream per (seed, rank, stream, epoch)."""
    return (seed + 7919 * rank + stream) * 100_003 + epoch


def uda_round_seed(seed: int, epoch: int, rank: int, round_: int) -> int:
    return epoch_seed(seed, epoch, rank, stream=2 + round_)


def train_one_epoch(
    model: nn.Module, loader, run: Run, step: Step, epoch: int, skips: SkipLog, unlabeled: Iterator[Batch] | None
) -> dict[str, float]:
    """One pass over the loader; ``unlabeled`` gives one batch per step for UDA (``train.uda``)."""
    cfg, device, channels_last = run.cfg.train, run.device, run.cfg.model.channels_last
    model.train()
    core = getattr(model, "module", model)  # the network inside a DistributedDataParallel wrapper
    if not any(p.requires_grad for p in core.backbone.parameters()):
        core.backbone.eval()  # a frozen backbone keeps its batch-norm statistics too
    generator = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, run.rank))  # each rank its own draws
    torch.manual_seed(epoch_seed(cfg.seed, epoch))  # dropout
    hierarchical = not cfg.multilabel and bool(run.taxonomy.parents)
    pseudo_labels, fixmatch = hierarchical and cfg.group_pseudo > 0, uses_fixmatch(cfg, run.taxonomy, core.heads)
    groups = group_matrix(run.taxonomy, device) if pseudo_labels or fixmatch else None  # (F, C)
    threshold = cfg.fixmatch_threshold
    seen, loss_sum, start = 0, 0.0, time.perf_counter()
    interval = 1.0 if sys.stderr.isatty() else 30.0
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{step.schedule.epochs}", leave=False, file=sys.stderr, unit="batch",
               mininterval=interval, disable=None)  # fmt: skip
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
        # One forward for the batch, then the strong views of the unlabelled pool's images (UDA or FixMatch).
        x, n, pool_n = to_model_input(images, channels_last), len(images), 0
        rows = fixmatch_rows(targets, groups) if fixmatch and mix is None else None
        if rows is not None and len(rows):  # FixMatch: these images' strong views too, after the pool's
            strong = strong_views(batch.images[rows.cpu()].to(device), generator, cfg.strong_view)
            x = torch.cat([x, to_model_input(strong, channels_last)])
        if unlabeled is not None:
            view = STRONG_AUGMENT if cfg.uda > 0 else STRONG_VIEWS[cfg.strong_view]
            pool = next(unlabeled).images.to(device)
            weak_logits, strong = uda_views(model, pool, generator, cfg, device, run.bf16, view)
            x, pool_n = torch.cat([x, to_model_input(strong, channels_last)]), len(strong)
        with autocast(device, run.bf16):
            out = model(x)
        logits = {head: value[:n] for head, value in out.items()}
        loss = compute_loss(logits, targets, cfg, step.weights, mix)
        if pseudo_labels and "fine" in logits and mix is None:  # coarse-only samples teach the fine head too
            pseudo = group_pseudo_loss(logits["fine"], targets, groups, cfg.group_pseudo_threshold)
            loss = loss + cfg.group_pseudo * pseudo
        if pool_n:
            pool_out = {h: v[n : n + pool_n] for h, v in out.items()}
            if cfg.uda > 0:
                loss = loss + cfg.uda * consistency_loss(pool_out, weak_logits, cfg)
            else:
                unknown = torch.full((pool_n,), -1, dtype=torch.long, device=device)
                semi = hierarchy_fixmatch_loss(pool_out, weak_logits, unknown, groups, threshold)
                loss = loss + cfg.fixmatch * semi
        if rows is not None and len(rows):
            strong_out = {h: v[n + pool_n :] for h, v in out.items()}
            weak_out = {h: v[rows].detach().float() for h, v in logits.items()}
            semi = hierarchy_fixmatch_loss(strong_out, weak_out, targets["coarse"][rows], groups, threshold)
            loss = loss + cfg.fixmatch * semi
        step.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        step.optimizer.step()
        step.scheduler.step()
        call_hooks(step.hooks, "after_step", StepDone(core, batch.sources, logits, targets))
        seen += len(batch.sources)
        loss_sum += loss.item() * len(batch.sources)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", img_s=f"{seen / (time.perf_counter() - start):.0f}",
                        refresh=False)  # fmt: skip
    bar.close()
    elapsed = time.perf_counter() - start
    return {"train/loss": loss_sum / max(1, seen), "train/images_per_s": seen / max(elapsed, 1e-9)}


def uses_fixmatch(cfg, taxonomy: Taxonomy, heads) -> bool:
    """``train.fixmatch`` applies to single-label models that learn both levels of a hierarchy (the fine stage),
    unless ``train.uda`` asks for UDA on the unlabelled images instead."""
    both_levels = bool(taxonomy.parents) and {"coarse", "fine"} <= set(heads)
    return cfg.fixmatch > 0 and cfg.uda == 0 and not cfg.multilabel and both_levels


def fixmatch_rows(targets: dict[str, torch.Tensor], groups: torch.Tensor) -> torch.Tensor:
    """The batch's images FixMatch has something to teach: no fine label, and a group with more than one child
    (or none known); a one-child group's fine label is its group's, which the plain losses teach already."""
    unknown_fine, coarse = targets["fine"] < 0, targets["coarse"]
    children = groups.sum(0)[coarse.clamp_min(0)]  # fine classes under each image's group
    return (unknown_fine & ((coarse < 0) | (children > 1))).nonzero().flatten()


def validate(model: nn.Module, loader, run: Run, skips: SkipLog) -> dict[str, float]:
    """Top-1 per head on the validation split, with the configured hierarchy rule; for attribute heads also
    the mean per-class accuracy (ACSA) and its mean over the heads. The shifted test-time views are left out
    here (5x the cost every epoch); the final evaluation of the best checkpoint uses them."""
    cfg, taxonomy = run.cfg, run.taxonomy
    logits, targets, _ = predict(
        model, loader, run.device, run.bf16, cfg.model.channels_last, skips, cfg.model.tta_flip
    )
    probs = decode_hierarchy(logits, taxonomy, cfg.hierarchy.rule, cfg.train.multilabel)
    out = {}
    for head in logits:
        keep = targets[head] >= 0
        pred, true = probs[head].argmax(1)[keep], targets[head][keep]
        out[f"val/{head}_top1"] = float((pred == true).float().mean())
        if head in taxonomy.attributes:
            out[f"val/{head}_acsa"] = mean_class_accuracy(pred.numpy(), true.numpy())
    if taxonomy.attributes:
        out["val/mean_acsa"] = sum(out[f"val/{h}_acsa"] for h in taxonomy.attributes) / len(taxonomy.attributes)
    if "fine" in probs:
        h = hierarchical_metrics(
            probs["fine"].numpy(), probs["coarse"].numpy(), targets["fine"].numpy(), taxonomy, targets["coarse"].numpy()
        )
        out["val/implied_coarse_top1"], out["val/consistency"] = h["implied_coarse_top1"], h["consistency"]
    return out


def save_history(history: list[dict[str, float]], path: Path) -> None:
    """Rewrite metrics.csv from the full history (atomic), so a resumed run never holds duplicate epochs."""
    columns = list(dict.fromkeys(k for row in history for k in row))
    with atomic_write(path) as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    for p in model.backbone.parameters():
        p.requires_grad_(trainable)


def fit(model: nn.Module, train_set, val_set, run: Run, main_metric: str, hooks: tuple = ()):
    """Train for ``train.epochs`` (or what ``train.time_budget`` allows), saving ``last.pt`` every epoch and
    ``best.pt`` on a better ``main_metric`` (every epoch when ``val_set`` is None: the last epoch is kept).
    ``hooks``: the recipe's own (see the module's docstring), besides the time budget and EMA the settings ask for.

    Returns:
        The last epoch's checkpoint state plus ``skipped``: {path: reason} of the unreadable files met.
    """
    cfg, tc, rank, world = run.cfg, run.cfg.train, run.rank, run.world
    heads = {name: head.out_features for name, head in model.heads.items()}
    val_loader = None if val_set is None else build_loader(val_set, tc.batch_size * 2, cfg.data.workers)
    batch_size = max(1, tc.batch_size // world)  # the global batch stays train.batch_size under torchrun
    trained = [h for h in heads if tc.loss_weights.get(h, 1.0) > 0]  # a head with loss weight 0 learns nothing
    fixmatch = uses_fixmatch(tc, run.taxonomy, trained)
    train_set, pool = split_unlabelled(train_set, trained, tc, cfg.data.image_size, fixmatch)
    share = math.ceil(len(train_set) / world)
    fine_known = head_labels(train_set, "fine") >= 0 if "fine" in heads and tc.fine_share > 0 else None
    mixed = fine_known is not None and bool(fine_known.any()) and not bool(fine_known.all())
    schedule = Schedule(tc.epochs, math.ceil(share / batch_size))  # the loader keeps the last partial batch
    optimizer = build_optimizer(model, tc)
    average = WeightAverage(model, tc.ema) if tc.ema else None
    budget = TimeBudget(tc.time_budget * 60, schedule, world) if tc.time_budget > 0 else None
    hooks = (*hooks, *(h for h in (average, budget) if h is not None))
    weights = class_weights(train_set, heads) if tc.class_weights else None
    step = Step(optimizer, build_scheduler(optimizer, tc, schedule), schedule, weights, hooks)
    if tc.balance and tc.balance not in heads:
        raise UserError(f"train.balance={tc.balance!r} is not a head of this model; heads: {sorted(heads)}")
    run.precision = training_precision(model, run, batch_size)
    history: list[dict[str, float]] = []
    start_epoch, best = 0, -1.0
    if run.resume is not None:
        state = run.resume
        optimizer.load_state_dict(state["optimizer"])
        step.scheduler.load_state_dict(state["scheduler"])
        for hook in hooks:
            if hasattr(hook, "state_key"):
                hook.load_state_dict(state.get(hook.state_key, {}))
        start_epoch, best = state["epoch"] + 1, state["best_metric"]
        history = [row for row in state.get("history", []) if row["epoch"] < start_epoch]
        so_far = f"best {main_metric} so far {best:.4f}" if val_loader is not None else "no validation"
        log.info("resuming at epoch %d of %d (%s)", start_epoch + 1, schedule.epochs, so_far)
    skips = SkipLog()
    state: dict[str, Any] = run.resume or {}
    epoch = start_epoch
    while epoch < schedule.epochs:
        frozen = epoch < tc.freeze_backbone_epochs
        set_backbone_trainable(model, not frozen)
        started = time.time()
        sampler = None
        if tc.balance or mixed:  # each rank draws its own share, from its own stream
            draw = torch.Generator().manual_seed(epoch_seed(tc.seed, epoch, rank, stream=1))
            balance = (tc.balance, heads[tc.balance]) if tc.balance else None
            sampler = weighted_sampler(train_set, balance, tc.fine_share if mixed else 0.0, share, draw)
        elif world > 1:  # disjoint shares of the shuffled training set, reshuffled each epoch
            sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=tc.seed)
            sampler.set_epoch(epoch)
        loader = build_loader(
            train_set, batch_size, cfg.data.workers, shuffle_seed=epoch_seed(tc.seed, epoch), sampler=sampler
        )
        # DDP only syncs parameters that need gradients when it is built: rebuild it when freezing changes.
        net = DistributedDataParallel(model) if world > 1 else model
        row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "backbone_frozen": int(frozen)}
        # UDA: each rank its own order of the unlabelled pool, one stream per round (streams 0 and 1 are the
        # labelled images' draws), fixed by (epoch, rank) for an exact resume
        rounds = functools.partial(uda_round_seed, tc.seed, epoch, rank)
        unlabeled = None if pool is None else endless_batches(pool, batch_size, cfg.data.workers, rounds)
        row.update(train_one_epoch(net, loader, run, step, epoch, skips, unlabeled))
        served = model if average is None else average.model  # the weights validated and saved as best
        if val_loader is not None:
            row.update(validate(served, val_loader, run, skips))
        row["time"] = round(time.time() - started, 2)
        if run.device.type == "cuda":  # what the GPU needed at its fullest so far
            row["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated(run.device) / 1e6)
        call_hooks(hooks, "after_epoch", epoch, row)
        history.append(row)
        improved = val_loader is None or row[main_metric] > best
        best = max(best, row.get(main_metric, best))
        state = checkpoint_state(run, model, step, epoch, best, history, heads)
        if rank == 0:  # one process writes checkpoints, metrics and logs
            save_epoch(run.folder, state, served if improved else None, history)
            log.info(
                "epoch %d/%d  loss %.4f  %s  %.0f img/s  %.0fs%s", epoch + 1, schedule.epochs, row["train/loss"],
                f"{main_metric} {row[main_metric]:.4f}" if main_metric in row else "no validation",
                row["train/images_per_s"], row["time"], "  (best)" if improved and val_loader is not None else "",
            )  # fmt: skip
        epoch += 1
    set_backbone_trainable(model, True)
    if len(skips):
        log.warning("%d unreadable image(s) were skipped; see the warnings above", len(skips))
    return {**state, "skipped": dict(skips.reasons)}


def training_precision(model: nn.Module, run: Run, batch_size: int) -> Precision:
    """The precision this run trains in: what its checkpoint recorded when it resumes, else a start-up measurement
    (precision.py); under torchrun every process takes rank 0's choice, so all compute alike."""
    precision = restored((run.resume or {}).get("precision"))
    if precision is None:
        cfg = run.cfg
        if run.rank == 0:
            precision = choose_precision(
                model, run.device, batch_size, cfg.data.image_size, cfg.model.channels_last, cfg.train.amp
            )
        if run.world > 1:
            chosen = [precision]
            torch.distributed.broadcast_object_list(chosen, src=0)
            precision = chosen[0]
    if run.rank == 0:
        log_choice(precision)
    return precision


def checkpoint_state(
    run: Run, model: nn.Module, step: Step, epoch: int, best: float, history: list[dict], heads: dict[str, int]
) -> dict[str, Any]:
    """What ``last.pt`` holds after ``epoch``: enough to resume exactly (optimizer, scheduler, every hook's state)
    and to rebuild and use the network (its settings, taxonomy and heads)."""
    state = {
        "stage": run.cfg.stage, "model": model.state_dict(), "optimizer": step.optimizer.state_dict(),
        "scheduler": step.scheduler.state_dict(), "epoch": epoch, "epochs": step.schedule.epochs,
        "best_metric": best, "history": history, "config": to_dict(run.cfg), "taxonomy": run.taxonomy.to_dict(),
        "heads": heads, "precision": run.precision.to_dict() if run.precision else None,
    }  # fmt: skip
    for hook in step.hooks:
        if hasattr(hook, "state_key"):
            state[hook.state_key] = hook.state_dict()
    return state


def save_epoch(folder: Path, state: dict[str, Any], best: nn.Module | None, history: list[dict]) -> None:
    """``last.pt`` (with the optimizer, to resume), ``best.pt`` when ``best`` is given (the served weights, no
    optimizer), and ``metrics.csv``."""
    save_checkpoint(folder / "checkpoints" / "last.pt", state)
    if best is not None:
        best_state = {**state, "model": best.state_dict(), "optimizer": {}, "scheduler": {}}
        best_state.pop(WeightAverage.state_key, None)
        save_checkpoint(folder / "checkpoints" / "best.pt", best_state)
    save_history(history, folder / "metrics.csv")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)
