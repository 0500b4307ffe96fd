import pytest
import torch

from hierarchy.config import TrainConfig
from hierarchy.data.images import TensorImages
from hierarchy.ema import WeightAverage
from hierarchy.losses import class_weights, compute_loss
from hierarchy.optim import build_optimizer, build_scheduler


def lrs(cfg: TrainConfig, steps_per_epoch: int = 10) -> list[float]:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    out = []
    for _ in range(cfg.epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine():
    values = lrs(TrainConfig(epochs=4, lr=1.0, warmup_epochs=1))
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)  # 10 warm-up steps
    assert values[10] == pytest.approx(1.0) and values[-1] < 0.01
    assert all(a >= b for a, b in zip(values[10:], values[11:]))


def test_step_schedule():
    values = lrs(TrainConfig(epochs=6, lr=1.0, warmup_epochs=0, schedule="step", step_epochs=2, step_gamma=0.1))
    assert values[5] == pytest.approx(1.0) and values[25] == pytest.approx(0.1) and values[45] == pytest.approx(0.01)


def test_optimizer_choice_and_no_decay_on_biases():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    sgd = build_optimizer(model, TrainConfig(optimizer="sgd", lr=0.1, weight_decay=5e-4))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9
    adamw = build_optimizer(model, TrainConfig())
    assert isinstance(adamw, torch.optim.AdamW)
    for opt, decay in ((sgd, 5e-4), (adamw, 0.05)):
        decayed, plain = opt.param_groups
        assert decayed["weight_decay"] == decay and [p.ndim for p in decayed["params"]] == [4]  # the conv kernel
        assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 3  # conv bias, norm weight and bias


def test_class_weights_inverse_frequency():
    fine = torch.tensor([0, 0, 0, 1])
    data = TensorImages(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), fine, torch.tensor([0, 0, 0, 1]), "t")
    w = class_weights(data, {"fine": 3, "coarse": 2})
    assert w["fine"].tolist() == pytest.approx([0.5, 1.5, 0.0])  # 4/3 and 4/1, mean 1 over present classes


def test_loss_ignores_unknown_labels_and_weights_heads():
    logits = {"coarse": torch.tensor([[2.0, 0.0]]), "fine": torch.tensor([[0.0, 1.0, 0.0]])}
    cfg = TrainConfig(label_smoothing=0.0, loss_weights={"coarse": 0.0, "fine": 1.0})
    only_fine = compute_loss(logits, {"coarse": torch.tensor([0]), "fine": torch.tensor([1])}, cfg)
    assert float(only_fine) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits["fine"], torch.tensor([1])))
    )
    cfg.loss_weights = {"coarse": 1.0, "fine": 1.0}
    coarse_only = compute_loss(logits, {"coarse": torch.tensor([0]), "fine": torch.tensor([-1])}, cfg)
    assert float(coarse_only) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits["coarse"], torch.tensor([0])))
    )


def test_weight_average_follows_the_weights_with_warm_up():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.5)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].num_batches_tracked += 3
    average.update(model)  # first update: warm-up decay (1 + 1) / (10 + 1) = 2/11, under 0.5
    expected = start + (1 - 2 / 11) * 1.0
    assert torch.allclose(average.model[0].weight, expected)
    assert int(average.model[1].num_batches_tracked) == 3  # counters are copied, not averaged
    assert not any(p.requires_grad for p in average.model.parameters())
    restored = WeightAverage(model, decay=0.5)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 1 and torch.equal(restored.model[0].weight, average.model[0].weight)
