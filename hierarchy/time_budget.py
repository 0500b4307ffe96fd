"""``train.time_budget``: fit a run's number of epochs to a wall-clock budget, as Ultralytics' ``time=`` does.

After the first timed steps, the seconds per step give the epochs that fit; after every epoch, the measured
epoch times (validation included) refine it. The schedule's length follows (see optim.Schedule), so the
cosine decay still ends when the budget does. A run never gets more than ``train.epochs``, nor fewer than the
epochs already done plus one; a budget longer than the configured epochs changes nothing.
"""

from __future__ import annotations

import logging
import math
import time

import torch

from hierarchy.optim import Schedule

log = logging.getLogger(__name__)
WARM_STEPS = 5  # start-up steps (first allocations, thread pools) that are not timed
TIMED_STEPS = 20  # steps timed before the first fit


class TimeBudget:
    """Shortens ``schedule.epochs`` to what ``seconds`` of training allow."""

    state_key = "budget"  # its entry in last.pt

    def __init__(self, seconds: float, schedule: Schedule, world: int = 1) -> None:
        self.seconds, self.schedule, self.world = seconds, schedule, world
        self.configured = schedule.epochs
        self.epoch_times: list[float] = []  # seconds of each finished epoch, kept across a resume
        self.steps, self.clock = 0, 0.0

    def after_step(self, done=None) -> None:
        """Count a step; after the timed ones of a fresh run, fit the epochs to the seconds per step."""
        self.steps += 1
        if self.epoch_times:
            return  # a resumed run refits from whole epochs
        if self.steps == WARM_STEPS:
            self.clock = time.perf_counter()
        elif self.steps == WARM_STEPS + TIMED_STEPS:
            per_epoch = (time.perf_counter() - self.clock) / TIMED_STEPS * self.schedule.steps_per_epoch
            self.refit(math.floor(self.seconds / per_epoch), per_epoch, at_least=1)  # the epoch under way

    def after_epoch(self, epoch: int, row: dict) -> None:
        """Record an epoch's time (``row["time"]``, seconds) and refit: the epochs done plus those the remaining
        seconds allow."""
        self.epoch_times.append(row["time"])
        per_epoch = sum(self.epoch_times) / len(self.epoch_times)
        more = math.floor((self.seconds - sum(self.epoch_times)) / per_epoch)
        self.refit(epoch + 1 + max(0, more), per_epoch, at_least=epoch + 1)

    def refit(self, epochs: int, per_epoch: float, at_least: int) -> None:
        epochs = min(self.configured, max(at_least, epochs))
        if self.world > 1:  # every process must stop at the same epoch: rank 0 decides
            chosen = [epochs]
            torch.distributed.broadcast_object_list(chosen, src=0)
            epochs = chosen[0]
        if epochs != self.schedule.epochs:
            log.info(
                "train.time_budget=%.1f min at about %.0f s per epoch: %d of %d epochs (the schedule ends with them)",
                self.seconds / 60, per_epoch, epochs, self.configured,
            )  # fmt: skip
            self.schedule.epochs = epochs

    def state_dict(self) -> dict:
        return {"epoch_times": list(self.epoch_times), "epochs": self.schedule.epochs}

    def load_state_dict(self, state: dict) -> None:
        self.epoch_times = list(state.get("epoch_times", []))
        self.schedule.epochs = int(state.get("epochs", self.schedule.epochs))
