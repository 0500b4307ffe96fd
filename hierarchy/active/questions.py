"""Which question to ask about an image, and what it is worth per unit of its cost: the one rule behind
``hierarchy suggest``, the Label page of ``hierarchy serve --pool`` and ``benchmarks/active_labeling.py``.

Three kinds of question, each about the image's fine label:

- *confirm*: "is it <the model's guess>?", at ``cost_confirm``; a "no" is followed at once by a *choose* among the
  next likeliest labels (the guess left out), so a confirm always ends with the fine label;
- *choose*: the smallest set of fine labels holding ``1 - alpha`` of the probability (at most
  ``max_candidates``); "none of these" opens the type-ahead, so the fine label is always settled. A set of k
  costs k confirms (reading each), at most a fine label, plus a fine label times the chance of "none";
- *coarse*: the group alone, at ``cost_coarse``; never when the group is known or coarse labels are free.

Gain is how much the model can learn from the image's fine label: its uncertainty, one minus the margin between
its two likeliest fine labels (calibrated, narrowed by what is known), the signal of margin sampling. A confirm
and a choose both settle the fine label, at different expected costs: a confirm is cheap when the guess is likely,
a choose when it is not. A group settles it where the group has one fine label; elsewhere it counts for the share of
the fine entropy that lies between groups, times ``queue.coarse_worth`` (a group teaches the fine head only through
the group-constrained pseudo-labels). The rule asks, per image, the kind with the most gain per expected cost, and
ranks images by that ratio, so an uncertain image is asked in the cheapest way that settles it. What is already
known narrows the probabilities first: a known group keeps its own fine labels, a "no" removes its guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hierarchy.config import QueueConfig
from hierarchy.errors import UserError
from hierarchy.infer.decode import group_matrix
from hierarchy.taxonomy import Taxonomy

KINDS = ("confirm", "choose", "coarse")


def asked_kinds(text: str) -> tuple[str, ...]:
    """``queue.kinds`` as a tuple, checked."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    wrong = [k for k in kinds if k not in KINDS]
    if wrong or not kinds:
        raise UserError(f"queue.kinds={text!r}: name one or more of {', '.join(KINDS)} (comma-separated)")
    return kinds


@dataclass
class Known:
    """What answers so far say about each image: its group (-1 unknown) and the fine labels ruled out."""

    coarse: torch.Tensor  # (N,) long
    excluded: torch.Tensor  # (N, F) bool

    @classmethod
    def nothing(cls, n: int, n_fine: int) -> Known:
        return cls(torch.full((n,), -1, dtype=torch.long), torch.zeros(n, n_fine, dtype=torch.bool))


@dataclass
class Questions:
    """The best question for each of N images: ``kind`` index into KINDS, its expected ``gain`` and ``cost``,
    the ``guess`` (fine id) a confirm shows, the ``candidates`` a choose shows (fine ids, likeliest first)."""

    kind: torch.Tensor  # (N,) long
    gain: torch.Tensor  # (N,)
    cost: torch.Tensor  # (N,)
    guess: torch.Tensor  # (N,) long
    candidates: list[list[int]]
    fine: torch.Tensor  # (N, F) the probabilities the questions were chosen from (known answers applied)

    @property
    def value(self) -> torch.Tensor:
        """Gain per unit of cost."""
        return self.gain / self.cost

    def kind_name(self, i: int) -> str:
        return KINDS[int(self.kind[i])]


def narrowed(fine: torch.Tensor, taxonomy: Taxonomy, known: Known) -> torch.Tensor:
    """Fine probabilities with what is known applied: outside a known group and ruled-out labels at 0, the rest
    renormalised (left as they were where nothing would remain)."""
    groups = group_matrix(taxonomy)  # (F, C)
    keep = ~known.excluded
    has_group = known.coarse >= 0
    if has_group.any():
        inside = groups[:, known.coarse.clamp_min(0)].T.bool()  # (N, F): the fine labels of each image's group
        keep = keep & (inside | ~has_group[:, None])
    p = fine * keep
    total = p.sum(-1, keepdim=True)
    return torch.where(total > 0, p / total.clamp_min(1e-12), fine)


def entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def ask(fine: torch.Tensor, taxonomy: Taxonomy, options: QueueConfig, known: Known | None = None) -> Questions:
    """The best question per image from its fine probabilities (N, F) (calibrated, hierarchy rule applied)."""
    n, n_fine = fine.shape
    known = known or Known.nothing(n, n_fine)
    kinds = asked_kinds(options.kinds)
    p = narrowed(fine.float(), taxonomy, known)
    order = p.argsort(-1, descending=True)
    sorted_p = p.gather(-1, order)
    guess, top = order[:, 0], sorted_p[:, 0]
    size, held = choice_sets(sorted_p, options, n_fine)
    # after a "no": the same rule over the labels left, renormalised
    rest = sorted_p[:, 1:] / (1 - top[:, None]).clamp_min(1e-12)
    rest_size, rest_held = choice_sets(rest, options, n_fine - 1, smallest=1)
    uncertainty = 1 - (sorted_p[:, 0] - sorted_p[:, 1]) if n_fine > 1 else torch.zeros(n)
    h_fine = entropy(p)
    coarse_p = p @ group_matrix(taxonomy)
    between_groups = (entropy(coarse_p) / h_fine.clamp_min(1e-6)).clamp(0, 1)

    gain = torch.full((n, len(KINDS)), 0.0)
    cost = torch.full((n, len(KINDS)), float("inf"))
    if "confirm" in kinds:
        follow_up = choice_cost(rest_size, rest_held, options)
        gain[:, 0], cost[:, 0] = uncertainty, options.cost_confirm + (1 - top) * follow_up
    if "choose" in kinds:
        gain[:, 1], cost[:, 1] = uncertainty, choice_cost(size, held, options)
    if "coarse" in kinds and not options.free_coarse:
        unknown = known.coarse < 0
        only_child = group_matrix(taxonomy).sum(0) == 1  # (C,) groups of one fine label
        settles = (coarse_p * only_child).sum(-1)  # the chance the group answer is the fine label too
        worth = uncertainty * (settles + (1 - settles) * between_groups * options.coarse_worth)
        gain[:, 2] = torch.where(unknown, worth, torch.zeros_like(worth))
        cost[:, 2] = torch.where(
            unknown, torch.full_like(worth, options.cost_coarse), torch.full_like(worth, float("inf"))
        )
    value = gain / cost
    best = value.argmax(-1)
    rows = torch.arange(n)
    candidates = [order[i, : int(size[i])].tolist() for i in range(n)]
    return Questions(best, gain[rows, best], cost[rows, best], guess, candidates, p)


def choice_sets(sorted_p: torch.Tensor, options: QueueConfig, n_labels: int, smallest: int = 2):
    """Per row of likeliest-first probabilities: the size of the smallest prefix holding ``1 - alpha`` (between
    ``smallest`` and ``max_candidates``) and the probability it holds."""
    if n_labels < 1 or sorted_p.shape[1] == 0:
        return torch.zeros(len(sorted_p), dtype=torch.long), torch.ones(len(sorted_p))
    cumulative = sorted_p.cumsum(-1)
    size = ((cumulative < 1 - options.alpha).sum(-1) + 1).clamp(
        min(smallest, n_labels), min(options.max_candidates, n_labels)
    )
    held = cumulative.gather(-1, (size - 1).clamp_min(0)[:, None]).squeeze(-1).clamp_max(1.0)
    return size, held


def choice_cost(size: torch.Tensor, held: torch.Tensor, options: QueueConfig) -> torch.Tensor:
    """Expected cost of a choose: reading the k candidates (k confirms, at most a fine label), then a typed fine
    label when the answer is none of them."""
    reading = (size.float() * options.cost_confirm).clamp_max(options.cost_fine)
    return reading + (1 - held).clamp_min(0) * options.cost_fine


def follow_up_candidates(questions: Questions, i: int, options: QueueConfig, excluded: bool = True) -> list[int]:
    """The labels a choose shows after a "no" to image ``i``'s guess: the likeliest others, same rule
    (``excluded=False``: the questions were asked with the "no" known already, so nothing is left to remove)."""
    p = questions.fine[i].clone()
    if excluded:
        p[questions.guess[i]] = 0
    p[p < 1e-9] = 0  # outside a known group: never a candidate
    order = p.argsort(descending=True)
    sorted_p = (p[order] / p.sum().clamp_min(1e-12))[None]
    size, _ = choice_sets(sorted_p, options, int((p > 0).sum()), smallest=1)
    return order[: int(size[0])].tolist()
