"""Area Under the Margin (Pleiss et al., 2020): find training samples whose label the model keeps disputing.

While a model trains, each sample's margin is its assigned class's logit minus the largest other logit.
A correctly labelled sample's margin soon turns positive; a mislabelled one stays negative, because the
rest of its class pulls the model towards the image's true class. AUM = the margin averaged over all
epochs. ``hierarchy audit`` writes every sample's AUM and the suspects (AUM below ``audit.threshold``);
``data.drop_suspects=`` leaves the suspects out of the next run's training split.

Why the default threshold is -2, not 0: a short audit (4 epochs) leaves many correctly labelled but hard
samples (shirt vs T-shirt) with small negative margins. On Fashion-MNIST with 5 % of labels flipped
(benchmarks/stage_two.py), threshold 0 flagged 22 % of the training set (recall 0.99, precision 0.22) and
dropping them cost 3.6 points of test accuracy; -2 flagged 5.6 % (recall 0.89, precision 0.79). Label
smoothing bounds logit margins (about ±4.4 for 10 classes at 0.1), so -2 means "clearly the other class".
Look at ``aum.csv`` and set ``audit.threshold`` for your data.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import torch

from hierarchy.paths import atomic_write
from hierarchy.taxonomy import Taxonomy

COLUMNS = ["rank", "source", "head", "label", "aum", "epochs", "model_prefers"]


class MarginTracker:
    """Running margin sums per (sample, head), fed with the training forward passes."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str], list] = {}  # (source, head) -> [margin sum, passes, label, Counter]

    @torch.no_grad()
    def after_step(self, done) -> None:
        """A training hook (engine.py): the margins of the step's labelled samples (``done``: ``StepDone``)."""
        sources, logits, targets = done.sources, done.logits, done.targets
        for head, out in logits.items():
            target = targets[head].to(out.device)
            labelled = (target >= 0).nonzero().flatten()
            if not len(labelled):
                continue
            out, t = out[labelled].float(), target[labelled]
            assigned = out.gather(1, t[:, None]).squeeze(1)
            others = out.scatter(1, t[:, None], float("-inf")).max(1)  # the strongest other class
            margins, rivals = (assigned - others.values).tolist(), others.indices.tolist()
            for k, i in enumerate(labelled.tolist()):
                entry = self.sums.setdefault((sources[i], head), [0.0, 0, int(t[k]), Counter()])
                entry[0] += margins[k]
                entry[1] += 1
                entry[3][rivals[k]] += 1

    def rows(self, taxonomy: Taxonomy) -> list[dict]:
        """Every (sample, head) with its AUM, lowest first."""
        rows = []
        for (source, head), (total, passes, label, rivals) in self.sums.items():
            names = taxonomy.names(head)
            rows.append(
                {
                    "source": source,
                    "head": head,
                    "label": names[label],
                    "aum": round(total / passes, 4),
                    "epochs": passes,
                    "model_prefers": names[rivals.most_common(1)[0][0]],
                }
            )
        rows.sort(key=lambda r: r["aum"])
        for rank, row in enumerate(rows, 1):
            row["rank"] = rank
        return rows


def save_margins(rows: list[dict], path: Path) -> None:
    """``aum.csv`` / ``suspect_labels.csv``: one row per sample and head, lowest AUM first."""
    with atomic_write(path) as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
