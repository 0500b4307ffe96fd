"""A running average of the weights during training (``train.ema``): the model that is validated and saved.

Averaging the last few thousand steps smooths out the noise of the final mini-batches, as timm's training
script does. Batch-norm statistics are averaged too, so the averaged model is complete on its own.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """Exponential moving average of every parameter and buffer of ``model``."""

    state_key = "ema"  # its entry in last.pt

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.updates = decay, 0

    def after_step(self, done) -> None:
        """A training hook (engine.py): average in the weights of the step just taken."""
        self.update(done.model)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        # warm-up: the first steps' weights are forgotten fast, so a short run is not stuck near its start
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.model.state_dict().values(), model.state_dict().values()):
            if average.dtype.is_floating_point:
                average.lerp_(current, 1 - decay)
            else:  # counters such as batch norm's num_batches_tracked
                average.copy_(current)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]
