import csv
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from hierarchy.infer.decode import decode_hierarchy as decode
from hierarchy.metrics import (
    classification_metrics,
    hierarchical_metrics,
    mean_class_accuracy,
    multilabel_metrics,
    tune_thresholds,
    write_confusion,
)
from hierarchy.taxonomy import load_taxonomy

TAX = load_taxonomy("fashion_mnist")


def logits(b: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"coarse": torch.randn(b, 6, generator=g) * 3, "fine": torch.randn(b, 10, generator=g) * 3}


def test_product_rule_is_a_distribution_that_implies_the_coarse_head():
    out = decode(logits(), TAX, "product")
    assert torch.allclose(out["fine"].sum(1), torch.ones(16), atol=1e-5)
    assert torch.allclose(out["implied_coarse"], out["coarse"], atol=1e-5)


def test_mask_rule_never_contradicts_the_coarse_head():
    out = decode(logits(64), TAX, "mask")
    parents = torch.tensor(TAX.parents)
    assert torch.equal(parents[out["fine"].argmax(1)], out["coarse"].argmax(1))


def test_flat_rule_is_the_fine_softmax():
    lg = logits()
    assert torch.allclose(decode(lg, TAX, "flat")["fine"], lg["fine"].softmax(1))


def test_classification_metrics_values():
    probs = np.eye(10)[[0, 1, 2, 2]] * 0.6 + 0.01  # predictions 0, 1, 2, 2
    probs[3, 6] = 0.3  # the true class of the wrong prediction is second, inside the top 5
    m = classification_metrics(probs, np.array([0, 1, 2, 6]), TAX.fine)
    assert m["top1"] == 0.75 and m["n"] == 4 and m["top5"] == 1.0
    assert m["per_class"]["Pullover"]["precision"] == 0.5 and m["per_class"]["Shirt"]["recall"] == 0.0
    assert m["confusion"][6][2] == 1
    assert abs(m["mean_class_accuracy"] - 0.75) < 1e-9  # classes 0, 1, 2 right, 6 wrong


def test_hierarchical_metrics_values():
    fine_pred = np.eye(10)[[0, 6, 7, 4]]  # T-shirt, Shirt, Sneaker, Coat
    coarse_pred = np.eye(6)[[0, 0, 4, 0]]  # top, top, shoe, top
    h = hierarchical_metrics(fine_pred, coarse_pred, np.array([0, 0, 5, 2]), TAX)
    # errors: Shirt for T-shirt (sibling, 2), Sneaker for Sandal (sibling, 2), Coat for Pullover (other group, 4)
    assert h["mistake_severity"] == (2 + 2 + 4) / 3
    assert h["implied_coarse_top1"] == 0.75 and h["consistency"] == 0.75


def numpy_classification(probs: np.ndarray, targets: np.ndarray, names: tuple[str, ...]) -> dict:
    """The figures of classification_metrics, counted by hand."""
    keep = targets >= 0
    probs, targets = probs[keep], targets[keep]
    n_classes = len(names)
    pred = probs.argmax(1)
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (targets, pred), 1)
    tp, support, predicted = np.diag(confusion), confusion.sum(1), confusion.sum(0)
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
    f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1), 0.0)
    present = support > 0
    ranked = np.argsort(-probs, axis=1)
    out = {"n": len(targets), "top1": float((pred == targets).mean())}
    for k in (3, 5):
        if n_classes > k:
            out[f"top{k}"] = float((ranked[:, :k] == targets[:, None]).any(1).mean())
    out.update(
        macro_precision=float(precision[present].mean()),
        macro_recall=float(recall[present].mean()),
        macro_f1=float(f1[present].mean()),
        mean_class_accuracy=float(np.mean([(pred[targets == c] == c).mean() for c in np.flatnonzero(present)])),
        per_class={
            name: {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": support[i]}
            for i, name in enumerate(names)
        },
        confusion=confusion.tolist(),
    )
    return out


@pytest.mark.filterwarnings("error")  # missing classes must not warn
@pytest.mark.parametrize("n_classes", [3, 4, 10, 23])
@pytest.mark.parametrize("seed", [0, 1])
def test_classification_metrics_match_a_numpy_count(n_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(n_classes), 300)  # continuous scores: no ties in the ranking
    targets = rng.integers(0, n_classes, 300)
    targets[targets == 1] = -1  # class 1 missing from the targets (still predicted), plus unknown rows
    targets[rng.random(300) < 0.1] = -1
    names = tuple(f"class{i}" for i in range(n_classes))
    got, want = classification_metrics(probs, targets, names), numpy_classification(probs, targets, names)
    assert list(got) == list(want)  # the same keys in the same order
    assert got == want  # and the same values, exactly
    assert got["mean_class_accuracy"] == got["macro_recall"]
    assert got["per_class"]["class1"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


@pytest.mark.filterwarnings("error")
def test_classification_metrics_without_labelled_rows():
    m = classification_metrics(np.full((3, 10), 0.1), np.array([-1, -1, -1]), TAX.fine)
    assert m["n"] == 0 and m["top1"] == m["top5"] == m["macro_f1"] == m["mean_class_accuracy"] == 0.0
    assert list(m) == list(classification_metrics(np.eye(10)[:1], np.array([0]), TAX.fine))
    assert m["confusion"] == [[0] * 10] * 10 and m["per_class"]["Bag"]["support"] == 0


@pytest.mark.filterwarnings("error")
def test_mean_class_accuracy():
    true = np.array([0, 0, 0, 0, 1, 1, 2, -1])
    pred = np.array([0, 0, 1, 1, 1, 1, 0, 2])  # class 0: 2/4, class 1: 2/2, class 2: 0/1; -1 row ignored
    assert mean_class_accuracy(pred, true) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert mean_class_accuracy(pred, true) == balanced_accuracy_score(true[:-1], pred[:-1])
    assert mean_class_accuracy(pred, np.full(8, -1)) == 0.0


@pytest.mark.filterwarnings("error")  # a predicted class that never occurs must not warn
def test_mean_class_accuracy_ignores_predicted_classes_that_never_occur():
    true = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 5, 1, 1, 7, 6])  # classes 5-7 predicted, never true: they add no class to the mean
    assert mean_class_accuracy(pred, true) == pytest.approx((1 / 2 + 2 / 3 + 0 / 1) / 3, abs=1e-15)
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 5, 200), rng.integers(0, 8, 200)
    recalls = [(pred[true == c] == c).mean() for c in range(5)]  # counted by hand, class by class
    assert mean_class_accuracy(pred, true) == pytest.approx(np.mean(recalls), abs=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns here; its value is the same
        assert mean_class_accuracy(pred, true) == pytest.approx(balanced_accuracy_score(true, pred), abs=1e-15)


def numpy_multilabel(probs: np.ndarray, hot: np.ndarray, thresholds: np.ndarray) -> dict:
    """Micro/macro F1 and exact match of multilabel_metrics, counted by hand."""
    keep = hot.sum(1) > 0
    probs, hot = probs[keep], hot[keep].astype(bool)
    predicted = probs >= thresholds
    tp, fp, fn = (predicted & hot).sum(0), (predicted & ~hot).sum(0), (~predicted & hot).sum(0)
    present = hot.sum(0) > 0
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    return {
        "n": int(keep.sum()),
        "micro_f1": float(2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "exact_match": float((predicted == hot).all(1).mean()) if len(hot) else 0.0,
        "labels_per_sample": float(hot.sum(1).mean()) if len(hot) else 0.0,
        "f1": f1.tolist(),
    }


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("n_classes", [2, 23])
def test_multilabel_metrics_match_a_numpy_count(n_classes: int):
    rng = np.random.default_rng(n_classes)
    probs, hot = rng.random((200, n_classes)), (rng.random((200, n_classes)) < 0.2).astype(int)
    hot[:, 1] = 0  # a class without positives
    hot[:, 0] |= rng.random(200) < 0.5
    names = tuple(f"c{i}" for i in range(n_classes))
    thresholds = tune_thresholds(probs, hot)
    m = multilabel_metrics(probs, hot, thresholds, names)
    want = numpy_multilabel(probs, hot, thresholds)
    assert list(m) == [
        "n",
        "micro_f1",
        "macro_f1",
        "mean_average_precision",
        "exact_match",
        "labels_per_sample",
        "per_class",
    ]
    assert {k: m[k] for k in want if k != "f1"} == {k: v for k, v in want.items() if k != "f1"}
    assert [m["per_class"][name]["f1"] for name in names] == want["f1"]
    assert m["per_class"]["c1"]["ap"] == 0.0 and m["per_class"]["c1"]["threshold"] == 0.5
    assert 0.0 < m["mean_average_precision"] <= 1.0


@pytest.mark.filterwarnings("error")
def test_multilabel_metrics_edge_cases():
    probs = np.array([[0.9, 0.2, 0.1], [0.4, 0.6, 0.3], [0.7, 0.1, 0.2]])
    one_class = multilabel_metrics(probs, np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0]]), np.full(3, 0.5), TAX.fine[:3])
    assert one_class["n"] == 2 and one_class["mean_average_precision"] == 1.0 and one_class["exact_match"] == 1.0
    empty = multilabel_metrics(probs, np.zeros((3, 3)), np.full(3, 0.5), TAX.fine[:3])
    assert empty["n"] == 0 and empty["micro_f1"] == empty["mean_average_precision"] == empty["exact_match"] == 0.0


def test_tune_thresholds_picks_the_best_f1_on_the_grid():
    probs = np.array([[0.92, 0.3], [0.81, 0.6], [0.33, 0.1], [0.12, 0.2]])
    hot = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    # class 0: any threshold in (0.33, 0.81] separates; the lowest such grid point is 0.35. Class 1: no positives.
    assert tune_thresholds(probs, hot).tolist() == [0.35, 0.5]


def test_write_confusion_files(tmp_path):
    confusion = [[5, 1, 0], [0, 0, 0], [2, 0, 7]]
    write_confusion(confusion, ("T-shirt/top", "Trouser", "Ankle boot"), tmp_path / "confusion_fine", "fine")
    with open(tmp_path / "confusion_fine.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["true\\pred", "T-shirt/top", "Trouser", "Ankle boot"],
        ["T-shirt/top", "5", "1", "0"],
        ["Trouser", "0", "0", "0"],
        ["Ankle boot", "2", "0", "7"],
    ]
    assert (tmp_path / "confusion_fine.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
