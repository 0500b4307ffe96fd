"""Which images to ask about, within a budget: gain per cost, no predicted class flooding a batch.

Ranking by gain per cost alone can fill a batch with the look-alikes of one confusing pair (thirty shirts the model
takes for T-shirts). So while the ranking is read, no predicted fine class may hold more than ``MAX_SHARE`` of the
questions taken so far (plus one): its next question waits at the end of the order until the others have caught
up. A class is never forced in: an easy class with nothing worth asking stays out (taking turns between classes
did force them in, and the benchmark's batches filled with confirmations the model did not need). The batch ends
when the next question's expected cost would pass the budget.
"""

from __future__ import annotations

from collections import deque

import torch

from hierarchy.active.questions import Questions

MAX_SHARE = 0.3


def ranked(questions: Questions, allowed: torch.Tensor | None = None) -> list[int]:
    """Image indices in the order to ask them: best gain per cost first, no predicted class over its share of
    the questions so far; a question held back by the cap comes as soon as the others make room for it."""
    usable = torch.isfinite(questions.cost) & (questions.gain > 0)
    if allowed is not None:
        usable &= allowed
    index = usable.nonzero().flatten()
    value = questions.value
    pending = deque(index[value[index].argsort(descending=True)].tolist())
    waiting: dict[int, deque[int]] = {}  # per class, in value order
    counts: dict[int, int] = {}
    taken: list[int] = []

    def fits(c: int) -> bool:
        return counts.get(c, 0) < MAX_SHARE * (len(taken) + 1) + 1

    while pending or any(waiting.values()):
        ready = [q[0] for c, q in waiting.items() if q and fits(c)]
        best_waiting = max(ready, key=lambda i: float(value[i]), default=None)
        if pending and (best_waiting is None or float(value[pending[0]]) > float(value[best_waiting])):
            i = pending.popleft()
            c = int(questions.guess[i])
            if not fits(c):
                waiting.setdefault(c, deque()).append(i)
                continue
        elif best_waiting is not None:
            i = best_waiting
            waiting[int(questions.guess[i])].popleft()
        else:  # only held-back classes are left: the cap cannot be kept, take them in value order
            i = max((q[0] for q in waiting.values() if q), key=lambda j: float(value[j]))
            waiting[int(questions.guess[i])].popleft()
        taken.append(i)
        counts[int(questions.guess[i])] = counts.get(int(questions.guess[i]), 0) + 1
    return taken


def within_budget(questions: Questions, order: list[int], budget: float) -> list[int]:
    """The longest prefix of ``order`` whose expected costs add up to at most ``budget``."""
    chosen, spent = [], 0.0
    for i in order:
        cost = float(questions.cost[i])
        if spent + cost > budget + 1e-9:
            break
        chosen.append(i)
        spent += cost
    return chosen
