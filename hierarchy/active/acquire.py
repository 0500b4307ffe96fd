"""Which images to ask about, within a budget: gain per cost, spread over the predicted classes.

Ranking by gain per cost alone fills a batch with the look-alikes of one confusing pair (thirty shirts the model
takes for T-shirts). So the ranking takes turns between the predicted fine classes: each class's best question,
then each class's second best, and so on; a class with few worthwhile questions simply runs out. The batch ends
when the next question's expected cost would pass the budget.
"""

from __future__ import annotations

import torch

from hierarchy.active.questions import Questions


def ranked(questions: Questions, allowed: torch.Tensor | None = None) -> list[int]:
    """Image indices in the order to ask them: turns between predicted classes, best gain per cost first."""
    value = questions.value.clone()
    usable = torch.isfinite(questions.cost) & (questions.gain > 0)
    if allowed is not None:
        usable &= allowed
    index = usable.nonzero().flatten()
    if not len(index):
        return []
    by_value = index[value[index].argsort(descending=True)]
    classes = questions.guess[by_value]
    turn = torch.zeros(len(by_value), dtype=torch.long)
    seen: dict[int, int] = {}
    for k, c in enumerate(classes.tolist()):
        turn[k] = seen.get(c, 0)
        seen[c] = turn[k].item() + 1
    # stable sort by turn keeps the gain-per-cost order inside each turn
    order = torch.sort(turn, stable=True).indices
    return by_value[order].tolist()


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
