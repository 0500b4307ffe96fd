"""Classification and hierarchical metrics, and the files that report them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
    top_k_accuracy_score,
)

from hierarchy.taxonomy import Taxonomy


def mean_class_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean per-class accuracy (balanced accuracy, Fashion-How's ACSA) over the classes present in ``true``.

    Args:
        pred: (N,) predicted class ids.
        true: (N,) true class ids; rows with a negative id (unknown) are ignored.

    Returns:
        The mean over the classes in ``true`` of the share of that class predicted right; 0.0 without labels.
    """
    keep = true >= 0
    pred, true = pred[keep], true[keep]
    if not len(true):
        return 0.0
    # balanced_accuracy_score is this same mean of per-class recalls, but it warns "y_pred contains classes not
    # in y_true" whenever a class absent from the split is predicted (routine on a validation split) and has no
    # labels= to say which classes count; macro recall over the present labels is the same number, silently.
    return float(recall_score(true, pred, labels=np.unique(true), average="macro", zero_division=0))


def classification_metrics(probs: np.ndarray, targets: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """Top-1, top-3 and top-5 (when there are more classes), macro P/R/F1, mean per-class accuracy, per class.

    Macro figures average over the classes present in the targets; with no labelled row every figure is 0.0.

    Args:
        probs: (N, K) class probabilities.
        targets: (N,) class ids; rows with -1 (unknown at this level) are ignored.
        names: the K class names, in class-id order.

    Returns:
        ``n, top1, top3, top5, macro_precision, macro_recall, macro_f1, mean_class_accuracy`` (floats; top-k only
        when K > k), ``per_class`` (name → precision, recall, f1, support) and ``confusion`` (K x K counts,
        rows: true class, columns: predicted).
    """
    keep = targets >= 0
    probs, targets = probs[keep], targets[keep]
    labels = np.arange(len(names))
    ks = [k for k in (3, 5) if len(names) > k]
    if not len(targets):  # sklearn refuses empty inputs
        zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        return {
            "n": 0,
            "top1": 0.0,
            **{f"top{k}": 0.0 for k in ks},
            **dict.fromkeys(["macro_precision", "macro_recall", "macro_f1", "mean_class_accuracy"], 0.0),
            "per_class": {name: dict(zero) for name in names},
            "confusion": np.zeros((len(names), len(names)), dtype=int).tolist(),
        }
    pred = probs.argmax(1)
    p, r, f1, support = precision_recall_fscore_support(targets, pred, labels=labels, zero_division=0)
    macro_p, macro_r, macro_f1, _ = precision_recall_fscore_support(
        targets, pred, labels=np.unique(targets), average="macro", zero_division=0
    )
    return {
        "n": len(targets),
        "top1": float(accuracy_score(targets, pred)),
        # labels= keeps the K columns of probs even when some classes are missing from the targets; exactly tied
        # scores (the mask rule's zeros) rank the higher class id first (a stable sort, the same on every CPU)
        **{f"top{k}": float(top_k_accuracy_score(targets, probs, k=k, labels=labels)) for k in ks},
        "macro_precision": float(macro_p),
        "macro_recall": float(macro_r),
        "macro_f1": float(macro_f1),
        "mean_class_accuracy": mean_class_accuracy(pred, targets),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(names)
        },
        "confusion": confusion_matrix(targets, pred, labels=labels).tolist(),
    }


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
    """Save a confusion matrix as ``<stem>.csv`` and ``<stem>.png`` (rows: true class, columns: predicted).

    In the picture a cell's colour is its share of the true class's row and its number is the count
    (empty for 0), so rare and common classes read alike.

    Args:
        confusion: (K, K) counts, as ``classification_metrics`` returns them.
        names: the K class names.
        stem: the path of both files without suffix.
        title: the picture's title.
    """
    with open(stem.with_suffix(".csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["true\\pred", *names])
        for name, row in zip(names, confusion):
            writer.writerow([name, *row])
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, dtype=int)
    norm = counts / counts.sum(1, keepdims=True).clip(min=1)  # (K, K) share of each true row
    side = max(5.0, 0.45 * len(names) + 3)  # 23 classes: 13.4 in, a 0.45 in cell per class
    fig, ax = plt.subplots(figsize=(side, side))
    display = ConfusionMatrixDisplay(norm, display_labels=list(names))
    display.plot(
        ax=ax,
        cmap="Blues",
        colorbar=False,
        xticks_rotation=60,
        im_kw={"vmin": 0, "vmax": 1},
        text_kw={"fontsize": 8 if len(names) > 12 else 10},
    )
    # The display writes the values it colours; the counts are written instead, dark on light cells
    # (its own text colour switches at the middle of the data's range, not of the fixed 0..1 colour scale).
    for (i, j), text in np.ndenumerate(display.text_):
        text.set_text(str(counts[i, j]) if counts[i, j] else "")
        text.set_color("white" if norm[i, j] > 0.5 else "black")
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(display.im_, ax=ax, fraction=0.04, pad=0.02, label="share of the true class")
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

    Returns:
        (K,) thresholds; on equal F1 the lowest threshold of the grid.
    """
    # Hand-written: sklearn's TunedThresholdClassifierCV tunes one binary estimator by cross-validation, and
    # precision_recall_curve gives every distinct score (a threshold fitted to the samples), not a fixed grid.
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
    """Micro/macro F1 at the thresholds, mean average precision, exact-match share, per class.

    Samples without any label are left out; macro F1 and mAP average over the classes with a positive.

    Args:
        probs: (N, K) independent class probabilities (sigmoids), K >= 2.
        hot: (N, K) 0/1 true labels.
        thresholds: (K,) per-class thresholds, e.g. from ``tune_thresholds``.
        names: the K class names.

    Returns:
        ``n, micro_f1, macro_f1, mean_average_precision, exact_match, labels_per_sample`` and ``per_class``
        (name → threshold, f1, ap, support).
    """
    keep = hot.sum(1) > 0  # samples with at least one label
    probs, hot = probs[keep], hot[keep].astype(bool)
    predicted = probs >= thresholds  # (N, K)
    present = np.flatnonzero(hot.sum(0) > 0)
    f1 = np.zeros(len(names))
    ap = np.zeros(len(names))
    out = dict.fromkeys(["micro_f1", "macro_f1", "mean_average_precision", "exact_match", "labels_per_sample"], 0.0)
    if len(present):  # sklearn refuses empty inputs; a kept sample has a label, so no class present means n = 0
        f1 = f1_score(hot, predicted, average=None, zero_division=0)  # 0 for a class without positives
        # a single present class is sklearn's binary case, which returns a float instead of a (1,) array
        ap[present] = np.atleast_1d(average_precision_score(hot[:, present], probs[:, present], average=None))
        out = {
            "micro_f1": float(f1_score(hot, predicted, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(hot, predicted, labels=present, average="macro", zero_division=0)),
            "mean_average_precision": float(ap[present].mean()),
            "exact_match": float(accuracy_score(hot, predicted)),  # subset accuracy: every label right
            "labels_per_sample": float(hot.sum(1).mean()),
        }
    return {
        "n": int(keep.sum()),
        **out,
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
