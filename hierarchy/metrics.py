"""Classification and hierarchical metrics, and the files that report them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_fscore_support

from hierarchy.taxonomy import Taxonomy


def classification_metrics(probs: np.ndarray, targets: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """Top-1, top-3 and top-5 (when there are more classes), macro P/R/F1, mean per-class accuracy, per class.

    Args:
        probs: (N, K) class probabilities.
        targets: (N,) class ids; rows with -1 (unknown at this level) are ignored.
    """
    keep = targets >= 0
    probs, targets = probs[keep], targets[keep]
    labels = np.arange(len(names))
    pred = probs.argmax(1)
    p, r, f1, support = precision_recall_fscore_support(targets, pred, labels=labels, zero_division=0)
    present = support > 0
    out: dict[str, Any] = {"n": len(targets), "top1": float((pred == targets).mean()) if len(targets) else 0.0}
    ranked = np.argsort(-probs, axis=1)
    for k in (3, 5):
        if len(names) > k:
            out[f"top{k}"] = float((ranked[:, :k] == targets[:, None]).any(1).mean()) if len(targets) else 0.0
    out.update(
        macro_precision=float(p[present].mean()),
        macro_recall=float(r[present].mean()),
        macro_f1=float(f1[present].mean()),
        mean_class_accuracy=float(r[present].mean()),  # recall per class = accuracy on that class
        per_class={
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(names)
        },
        confusion=confusion_matrix(targets, pred, labels=labels).tolist(),
    )
    return out


def hierarchical_metrics(
    fine_probs: np.ndarray,
    coarse_probs: np.ndarray,
    fine_targets: np.ndarray,
    taxonomy: Taxonomy,
    coarse_targets: np.ndarray | None = None,
) -> dict[str, float]:
    """Coarse accuracy implied by the fine predictions, coarse/fine consistency and mistake severity.

    With ``coarse_targets`` the implied coarse accuracy also counts images labelled only at the coarse level.

    Mistake severity is the mean tree distance between the predicted and the true fine class over
    the errors: 2 for a sibling (same coarse parent), 4 for a class under another parent.
    """
    parents = np.asarray(taxonomy.parents)
    fine_pred = fine_probs.argmax(1)
    coarse_pred = coarse_probs.argmax(1)
    keep = fine_targets >= 0
    implied = parents[fine_pred]
    errors = keep & (fine_pred != fine_targets)
    true_parent = parents[np.where(keep, fine_targets, 0)]
    distance = np.where(implied == true_parent, 2, 4)
    if coarse_targets is not None:
        keep, true_parent = coarse_targets >= 0, coarse_targets
    return {
        "implied_coarse_top1": float((implied[keep] == true_parent[keep]).mean()) if keep.any() else 0.0,
        "consistency": float((implied == coarse_pred).mean()),
        "mistake_severity": float(distance[errors].mean()) if errors.any() else 0.0,
        "sibling_error_share": float((distance[errors] == 2).mean()) if errors.any() else 0.0,
    }


def write_confusion(confusion: list[list[int]], names: tuple[str, ...], stem: Path, title: str) -> None:
    """Save a confusion matrix as ``<stem>.csv`` and ``<stem>.png`` (rows: true class, columns: predicted)."""
    with open(stem.with_suffix(".csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["true\\pred", *names])
        for name, row in zip(names, confusion):
            writer.writerow([name, *row])
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion, dtype=float)
    norm = matrix / matrix.sum(1, keepdims=True).clip(min=1)
    side = max(4.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    int(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    plt.close(fig)


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table; floats with 4 decimals."""

    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


def tune_thresholds(probs: np.ndarray, hot: np.ndarray) -> np.ndarray:
    """Per class, the probability threshold (on a 0.05 grid) with the best F1 on these samples; 0.5 for a
    class without positives. Tune on validation, never on the test split.

    Args:
        probs: (N, K) independent class probabilities (sigmoids).
        hot: (N, K) 0/1 true labels.
    """
    thresholds = np.full(probs.shape[1], 0.5)
    for k in np.flatnonzero(hot.sum(0) > 0):
        predicted = probs[:, k, None] >= THRESHOLD_GRID  # (N, grid)
        tp = (predicted & (hot[:, k, None] > 0)).sum(0)
        f1 = 2 * tp / (predicted.sum(0) + hot[:, k].sum())
        thresholds[k] = THRESHOLD_GRID[int(np.argmax(f1))]
    return thresholds


def multilabel_metrics(
    probs: np.ndarray, hot: np.ndarray, thresholds: np.ndarray, names: tuple[str, ...]
) -> dict[str, Any]:
    """Micro/macro F1 at the thresholds, mean average precision, exact-match share, per class."""
    keep = hot.sum(1) > 0  # samples with at least one label
    probs, hot = probs[keep], hot[keep].astype(bool)
    predicted = probs >= thresholds
    tp, fp, fn = (predicted & hot).sum(0), (predicted & ~hot).sum(0), (~predicted & hot).sum(0)
    present = hot.sum(0) > 0
    f1 = np.where(present, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    ap = np.array([average_precision_score(hot[:, k], probs[:, k]) if present[k] else 0.0 for k in range(len(names))])
    return {
        "n": int(keep.sum()),
        "micro_f1": float(2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "mean_average_precision": float(ap[present].mean()) if present.any() else 0.0,
        "exact_match": float((predicted == hot).all(1).mean()) if len(hot) else 0.0,
        "labels_per_sample": float(hot.sum(1).mean()) if len(hot) else 0.0,
        "per_class": {
            name: {
                "threshold": float(thresholds[k]),
                "f1": float(f1[k]),
                "ap": float(ap[k]),
                "support": int(hot[:, k].sum()),
            }
            for k, name in enumerate(names)
        },
    }
