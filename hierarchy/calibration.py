"""Temperature scaling (Guo et al., 2017), one temperature per head, and the figures that say whether the
probabilities mean what they say: expected calibration error, negative log-likelihood, Brier score and a
reliability diagram.

Which logits a temperature divides: every head's own. The coarse head's logits are divided by ``T_coarse``
and the fine head's by ``T_fine`` before the hierarchy is decoded, so under the ``product`` rule
p(fine) = softmax(coarse / T_coarse)[parent] · softmax_within_group(fine / T_fine): the coarse marginal of the
calibrated fine distribution is exactly the calibrated coarse distribution (they agree by construction).
``T_coarse`` is fitted on the coarse labels; then ``T_fine`` on the fine labels through the decoded fine
distribution, ``T_coarse`` fixed. Attribute heads get one each. A multi-label fine head (independent sigmoids
with tuned thresholds) keeps its logits as they are.

A temperature never changes its head's top-1, with one exception: under ``product`` the fine top-1 weighs
p(fine | coarse) against p(coarse), and two temperatures can tip a close call either way; the report after
calibration is the one to quote.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from hierarchy.infer.decode import decode_hierarchy, scaled
from hierarchy.taxonomy import Taxonomy

log = logging.getLogger(__name__)
BINS = 15  # equal-width confidence bins of the expected calibration error
LOG_T_RANGE = (-3.0, 3.0)  # temperatures between 0.05 and 20


def fit_temperatures(
    logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], taxonomy: Taxonomy, rule: str,
    multilabel: bool = False,
) -> dict[str, float]:  # fmt: skip
    """The temperature per head that minimises the negative log-likelihood of ``targets`` (-1 = unknown)."""
    temperatures: dict[str, float] = {}
    order = [h for h in logits if h != "fine"] + (["fine"] if "fine" in logits and not multilabel else [])
    for head in order:
        known = targets[head] >= 0
        if not known.any():
            continue
        target = targets[head][known]

        def nll(log_t: float, head: str = head, known=known, target=target) -> float:
            trial = {**temperatures, head: float(np.exp(log_t))}
            part = {h: v[known] for h, v in logits.items()}
            probs = decode_hierarchy(scaled(part, trial), taxonomy, rule, multilabel)[head]
            return float(-probs[torch.arange(len(target)), target].clamp_min(1e-12).log().mean())

        best = minimize_scalar(nll, bounds=LOG_T_RANGE, method="bounded", options={"xatol": 1e-4})
        temperatures[head] = round(float(np.exp(best.x)), 5)
        log.info("temperature of %s: %.4f (NLL %.4f → %.4f)", head, temperatures[head], nll(0.0), best.fun)
    return temperatures


def confidence_bins(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the top-1 probability, whether top-1 is right, and its bin of ``BINS`` equal-width bins."""
    confidence = probs.max(1)
    return confidence, probs.argmax(1) == targets, np.minimum((confidence * BINS).astype(int), BINS - 1)


def calibration_metrics(probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """ECE (``BINS`` equal-width bins of the top-1 probability), NLL and Brier score over the labelled rows."""
    keep = targets >= 0
    probs, targets = probs[keep], targets[keep]
    if not len(targets):
        return {}
    confidence, correct, bins = confidence_bins(probs, targets)
    ece = sum(
        abs(correct[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).mean()
        for b in range(BINS)
        if (bins == b).any()
    )
    hot = np.eye(probs.shape[1])[targets]
    return {
        "ece": round(float(ece), 5),
        "nll": round(float(-np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-12, None)).mean()), 5),
        "brier": round(float(((probs - hot) ** 2).sum(1).mean()), 5),
    }


def reliability_diagram(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> None:
    """Accuracy against confidence per bin, one line per ``{name: (probs, targets)}``, and the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, (probs, targets) in curves.items():
        keep = targets >= 0
        confidence, correct, bins = confidence_bins(probs[keep], targets[keep])
        used = [b for b in range(BINS) if (bins == b).any()]
        ece = calibration_metrics(probs, targets)["ece"]
        ax.plot([confidence[bins == b].mean() for b in used], [correct[bins == b].mean() for b in used],
                marker="o", markersize=4, label=f"{name} (ECE {ece:.3f})")  # fmt: skip
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
