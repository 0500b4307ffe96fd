"""Optimizer and per-step learning-rate schedule of a training run (``train.optimizer``, ``train.schedule``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from hierarchy.config import TrainConfig


@dataclass
class Schedule:
    """The run's length. Mutable: ``train.time_budget`` shortens ``epochs`` mid-run, and the schedule follows."""

    epochs: int
    steps_per_epoch: int


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum; biases and norm weights (1-d tensors) get no weight decay."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, schedule: Schedule):
    """Per-step schedule: linear warm-up, then cosine to zero at the end of ``schedule.epochs`` (or step decay).

    The length is read at every step, so a run whose epochs are refitted to a time budget still decays to zero
    when the budget ends.
    """
    per_epoch = schedule.steps_per_epoch

    def factor(step: int) -> float:
        total = max(1, schedule.epochs * per_epoch)
        warmup = min(total - 1, round(cfg.warmup_epochs * per_epoch))
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "step":
            return cfg.step_gamma ** ((step // per_epoch) // max(1, cfg.step_epochs))
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
