import pytest
import torch

from hierarchy.config import TrainConfig
from hierarchy.data.images import TensorImages
from hierarchy.ema import WeightAverage
from hierarchy.losses import class_weights, compute_loss
from hierarchy.optim import Schedule, build_optimizer, build_scheduler


def lrs(cfg: TrainConfig, steps_per_epoch: int = 10) -> list[float]:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, Schedule(cfg.epochs, steps_per_epoch))
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


def test_time_budget_fits_the_epochs_and_the_schedule_still_ends_at_zero(monkeypatch):
    import hierarchy.time_budget as tb

    clock = [0.0]
    monkeypatch.setattr(tb.time, "perf_counter", lambda: clock[0])
    cfg = TrainConfig(epochs=10, lr=1.0, warmup_epochs=0)
    schedule = Schedule(cfg.epochs, steps_per_epoch=100)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, schedule)
    budget = tb.TimeBudget(seconds=300.0, schedule=schedule)  # 1 s a step: 100 s an epoch, so 3 epochs fit
    lrs = []
    for epoch in range(10):
        if epoch >= schedule.epochs:
            break
        for _ in range(100):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            clock[0] += 1.0
            budget.after_step()
        budget.after_epoch(epoch, {"time": 100.0})
    assert schedule.epochs == 3 and len(lrs) == 300  # fitted after the first timed steps, kept at each epoch end
    assert lrs[0] == pytest.approx(1.0) and lrs[-1] < 0.001  # the cosine ends with the budget, not at epoch 10
    resumed = tb.TimeBudget(300.0, Schedule(10, 100))
    resumed.load_state_dict(budget.state_dict())
    assert resumed.schedule.epochs == 3 and resumed.epoch_times == [100.0] * 3


def test_time_budget_longer_than_the_epochs_changes_nothing():
    from hierarchy.time_budget import TimeBudget

    schedule = Schedule(4, 10)
    budget = TimeBudget(seconds=3600.0, schedule=schedule)
    for epoch in range(4):
        budget.after_epoch(epoch, {"time": 60.0})
    assert schedule.epochs == 4  # never more than train.epochs
    slow = TimeBudget(seconds=100.0, schedule=Schedule(4, 10))
    slow.after_epoch(0, {"time": 150.0})  # one epoch already took longer than the whole budget
    assert slow.schedule.epochs == 1  # stops after the epoch it finished


def test_group_pseudo_labels_stay_inside_the_known_group():
    from hierarchy.infer.decode import group_matrix
    from hierarchy.losses import group_pseudo_loss
    from hierarchy.taxonomy import load_taxonomy

    tax = load_taxonomy("fashion_mnist")  # top: T-shirt/top 0, Pullover 2, Shirt 6; bottom: Trouser 1 alone
    groups = group_matrix(tax)
    top, bottom = tax.lookup("top", "coarse"), tax.lookup("bottom", "coarse")
    logits = torch.full((3, 10), -5.0)
    logits[0, [0, 7]] = torch.tensor([2.0, 9.0])  # likeliest overall: Sneaker (7), outside its known group "top"
    logits[1, [0, 2, 6]] = 0.0  # unsure inside "top": a third each, below the threshold
    logits = logits.requires_grad_()
    targets = {"coarse": torch.tensor([top, top, bottom]), "fine": torch.tensor([-1, -1, -1])}
    loss = group_pseudo_loss(logits, targets, groups, threshold=0.9)
    loss.backward()
    grad = logits.grad
    assert grad[0, 0] < 0 and grad[0, 7] > 0  # row 0 learns T-shirt/top, its group's likeliest, not Sneaker
    assert torch.equal(grad[1], torch.zeros(10))  # below the threshold: no pseudo-label
    assert grad[2, 1] < 0  # "bottom" has one child: Trouser outright, however unsure the head
    labelled = {"coarse": torch.tensor([top]), "fine": torch.tensor([0])}
    assert group_pseudo_loss(torch.zeros(1, 10), labelled, groups, 0.9) == 0  # fine-labelled rows: the plain loss


def test_fixmatch_pseudo_labels_follow_the_group_known_or_confidently_guessed():
    from hierarchy.infer.decode import group_matrix
    from hierarchy.semi import hierarchy_fixmatch_loss
    from hierarchy.taxonomy import load_taxonomy

    tax = load_taxonomy("fashion_mnist")  # top: T-shirt/top 0, Pullover 2, Shirt 6; shoe: Sandal 5, Sneaker 7, boot 9
    groups = group_matrix(tax)
    top, shoe = tax.lookup("top", "coarse"), tax.lookup("shoe", "coarse")
    weak_fine = torch.full((4, 10), -5.0)
    weak_fine[0, [2, 7]] = torch.tensor([4.0, 9.0])  # known "top": Pullover, though Sneaker is likelier overall
    weak_fine[1, [5, 7]] = torch.tensor([0.0, 8.0])  # group unknown, confidently "shoe": Sneaker
    weak_fine[2, [5, 7]] = torch.tensor([0.0, 8.0])  # group unknown and the coarse head unsure: nothing learnt
    weak_fine[3, [0, 2, 6]] = 0.0  # known "top" but unsure inside it: only the group is learnt
    weak_coarse = torch.full((4, 6), -5.0)
    weak_coarse[1, shoe] = 8.0
    weak_coarse[2, [shoe, top]] = 0.0
    strong = {"fine": torch.zeros(4, 10, requires_grad=True), "coarse": torch.zeros(4, 6, requires_grad=True)}
    known = torch.tensor([top, -1, -1, top])
    loss = hierarchy_fixmatch_loss(strong, {"fine": weak_fine, "coarse": weak_coarse}, known, groups, 0.95)
    loss.backward()
    fine, coarse = strong["fine"].grad, strong["coarse"].grad
    assert fine[0].argmin() == 2 and coarse[0].argmin() == top  # learns Pullover and its known group
    assert fine[1].argmin() == 7 and coarse[1].argmin() == shoe  # the confident guess of the group, its child
    assert torch.equal(fine[2], torch.zeros(10)) and torch.equal(coarse[2], torch.zeros(6))
    assert torch.equal(fine[3], torch.zeros(10)) and coarse[3].argmin() == top  # unsure inside: the group only


def test_fixmatch_skips_images_whose_group_settles_the_fine_label():
    from hierarchy.engine import fixmatch_rows
    from hierarchy.infer.decode import group_matrix
    from hierarchy.taxonomy import load_taxonomy

    tax = load_taxonomy("fashion_mnist")
    top, bottom = tax.lookup("top", "coarse"), tax.lookup("bottom", "coarse")  # bottom: Trouser alone
    targets = {"fine": torch.tensor([-1, -1, 0, -1]), "coarse": torch.tensor([top, bottom, top, -1])}
    assert fixmatch_rows(targets, group_matrix(tax)).tolist() == [0, 3]
