"""Hierarchical abstention: where the fine label is unsure, keep the coarse one; where that is unsure too, keep
neither. Nothing is dropped: a row that abstains keeps its probabilities and top-k, only the label is empty.

``hierarchy label --min-prob P`` (``label.min_prob``) applies it to labelled rows; ``hierarchy eval`` reports
the accuracy–coverage curve it trades along, and the figures at the threshold that keeps 95 % of fine labels.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

TREE = ("coarse", "fine")
KEPT_SHARE = 0.95  # the fine coverage the report singles out


def abstain(row: dict, min_prob: float) -> dict:
    """A labelled row with the labels under ``min_prob`` emptied and an ``abstained`` column: "" (none), "fine"
    (the coarse label kept) or "coarse,fine" (both empty); attribute heads are emptied on their own
    probability and named there too."""
    if min_prob <= 0:
        return row
    out, emptied = dict(row), []
    heads = [k.removesuffix("_prob") for k in row if k.endswith("_prob")]
    for head in heads:
        if head in TREE and "fine" in heads:
            unsure = row[f"{head}_prob"] < min_prob or (head == "fine" and row["coarse_prob"] < min_prob)
        else:
            unsure = row[f"{head}_prob"] < min_prob
        if unsure:
            out[head] = ""
            emptied.append(head)
    out["abstained"] = ",".join(sorted(emptied))
    return out


def at_threshold(fine: np.ndarray, coarse: np.ndarray, fine_t: np.ndarray, coarse_t: np.ndarray, p: float) -> dict:
    """What ``min_prob = p`` keeps and how right it is.

    Args:
        fine, coarse: (N, F), (N, C) probabilities; fine_t, coarse_t: (N,) true ids (-1 unknown).
    """
    keep = (fine.max(1) >= p) & (coarse.max(1) >= p)
    back = ~keep & (coarse.max(1) >= p)  # fine withheld, coarse kept
    fine_right, coarse_right = fine.argmax(1) == fine_t, coarse.argmax(1) == coarse_t
    return {
        "min_prob": round(float(p), 5),
        "fine_coverage": round(float(keep.mean()), 5),
        "fine_accuracy_kept": round(float(fine_right[keep].mean()), 5) if keep.any() else None,
        "fell_back": int(back.sum()),
        "coarse_accuracy_fell_back": round(float(coarse_right[back].mean()), 5) if back.any() else None,
        "neither": int((~keep & ~back).sum()),
        "coarse_accuracy_all_kept": round(float(coarse_right[coarse.max(1) >= p].mean()), 5),
    }


def coverage_curve(
    fine: np.ndarray, coarse: np.ndarray, fine_t: np.ndarray, coarse_t: np.ndarray, min_prob: float = 0.0
) -> tuple[list[dict], dict]:
    """The accuracy–coverage curve over the rows with both labels, and the figures at the threshold that keeps
    ``KEPT_SHARE`` of the fine labels (and at ``min_prob``, if given); ``([], {})`` when no row has both."""
    rows = (fine_t >= 0) & (coarse_t >= 0)
    if not rows.any():
        return [], {}
    fine, coarse, fine_t, coarse_t = fine[rows], coarse[rows], fine_t[rows], coarse_t[rows]
    confidence = np.minimum(fine.max(1), coarse.max(1))  # a fine label is kept when both levels are sure enough
    thresholds = np.quantile(confidence, np.linspace(0, 0.5, 51))  # coverage 100 % down to 50 %
    curve = [at_threshold(fine, coarse, fine_t, coarse_t, p) for p in thresholds]
    report = {"at_95_coverage": at_threshold(fine, coarse, fine_t, coarse_t, np.quantile(confidence, 1 - KEPT_SHARE))}
    if min_prob > 0:
        report["at_min_prob"] = at_threshold(fine, coarse, fine_t, coarse_t, min_prob)
    return curve, report


def save_coverage(curve: list[dict], out_dir: Path) -> None:
    """``coverage.csv`` and ``coverage.png`` of a curve from ``coverage_curve``."""
    with open(out_dir / "coverage.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(curve[0]))
        writer.writeheader()
        writer.writerows(curve)
    plot_coverage(curve, out_dir / "coverage.png")


def plot_coverage(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    coverage = [c["fine_coverage"] for c in curve]
    ax.plot(coverage, [c["fine_accuracy_kept"] for c in curve], marker=".", label="fine accuracy of the kept labels")
    fell = [(c["fine_coverage"], c["coarse_accuracy_fell_back"]) for c in curve if c["coarse_accuracy_fell_back"]]
    if fell:
        ax.plot(*zip(*fell), marker=".", label="coarse accuracy where the fine label was withheld")
    ax.axvline(KEPT_SHARE, color="0.6", linestyle="--", linewidth=1)
    ax.set_xlabel("fine coverage (share of rows that keep a fine label)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(max(0.0, min(coverage) - 0.02), 1.005)
    ax.set_title("Accuracy against coverage (label --min-prob)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
