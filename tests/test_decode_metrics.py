import numpy as np
import torch

from hierarchy.decode import decode
from hierarchy.metrics import classification_metrics, hierarchical_metrics
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
