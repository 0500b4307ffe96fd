"""Reading and checking the settings: defaults < a stage's YAML file < ``key=value`` overrides.

``apply`` is the one place where values are checked against the schema (type, choices, range). Unknown keys
fail with the closest valid names. The shipped YAML files are package data (``config_dir``). ``COMMANDS`` says
which settings each command reads, and ``refuse_ignored`` refuses the others; a stage's run stores only its own
(``to_dict``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hierarchy.config.help import show, unknown_key, value_range
from hierarchy.config.overrides import parse_overrides
from hierarchy.config.schema import RETIRED, STAGES, Config, DetectConfig, LabelConfig, QueueConfig, config_keys, walk
from hierarchy.errors import UserError

KEYS = frozenset(config_keys())  # every dotted key: "stage", "data.format", …
SECTIONS = frozenset(key.partition(".")[0] for key in KEYS if "." in key)  # "data", "model", …
VIEWS = ("model.tta_flip", "model.tta_shift")  # the test-time views: inference only, never the network
EVALUATION = ("data", "detect", "hierarchy", *VIEWS)  # where the data is, how it is cropped, views and decoding
AUDITED = ("coarse", "fine")  # the stages whose labels `hierarchy audit` ranks
# The key=value settings each command reads: whole sections ("data") or single keys ("train.epochs"). A setting
# outside its entry would be ignored, so ``refuse_ignored`` refuses it; a command not listed reads none.
COMMANDS: dict[str, tuple[str, ...]] = {
    **{f"run --stage {name}": stage.settings for name, stage in STAGES.items()},
    "run --stage all": (*STAGES["coarse"].settings, "label"),  # the fine stage starts from the job's coarse run
    **{f"audit --stage {name}": (*STAGES[name].settings, "audit") for name in AUDITED},
    "eval": EVALUATION,
    "calibrate": EVALUATION,
    "detect": ("detect",),
    "label": ("detect",),  # the label.* settings are its flags
    "serve": ("queue",),
    "suggest": ("queue",),
    "retrain": ("queue",),
}


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
        raise UserError(f"{key}={value!r} is not one of {', '.join(show(c) for c in choices)}")
    limits = (
        (meta.get("low"), lambda bound: value >= bound),
        (meta.get("above"), lambda bound: value > bound),
        (meta.get("high"), lambda bound: value <= bound),
        (meta.get("below"), lambda bound: value < bound),
    )
    if not all(bound is None or inside(bound) for bound, inside in limits):  # NaN fails every comparison
        raise UserError(f"{key}={value!r} is out of range: use a value {value_range(meta)} — {meta['help']}")


def apply(cfg: Any, values: dict[str, Any], prefix: str = "") -> None:
    """Apply a nested dict of values to a config dataclass in place: the one place where settings are checked.

    Unknown keys, values of the wrong type and values outside a key's choices or range raise one
    ``UserError`` that names the key and says what to use.
    """
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for name in [name for name in values if name in fields and fields[name].metadata.get("presets")]:
        if values[name]:  # the preset first, so keys set beside it override it (an unknown name fails below)
            values = {**fields[name].metadata["presets"].get(str(values[name]), {}), **values}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            raise unknown_key(dotted)
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserError(f"config key {dotted!r} is a section; set its keys, e.g. {dotted}.<key>=…")
            apply(current, value, dotted + ".")
        else:
            value = _coerce(dotted, value, current)
            _check(dotted, value, fields[key].metadata)
            setattr(cfg, key, value)


def load_config(
    stage: str,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> Config:
    """Resolve the config for a stage: defaults < ``base`` < ``configs/detector.yaml`` < ``configs/<stage>.yaml``
    (or ``config_file``) < overrides. The detector file holds the detection settings every stage shares; ``base``
    holds values that come from elsewhere (the fine stage's network, from the coarse checkpoint it starts from)."""
    cfg = Config()
    apply(cfg, {"stage": stage, **(base or {})})
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


def queue_options(overrides: list[str]) -> QueueConfig:
    """``queue.*`` settings from ``key=value`` words, checked like any key."""
    options = QueueConfig()
    apply(options, parse_overrides(overrides).get("queue", {}), "queue.")
    return options


def load_detect_config(overrides: list[str] | None = None) -> DetectConfig:
    """Detection settings alone (``hierarchy detect``): defaults < ``configs/detector.yaml`` < ``detect.*`` pairs."""
    values = parse_overrides(overrides or [])
    refuse_ignored("detect", values)
    cfg = load_config("detect")
    apply(cfg, values)
    return cfg.detect


def _flat(values: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys of a nested dict of settings: ``{"train": {"lr": 1}}`` → ``["train.lr"]`` (a key whose
    value is a mapping, such as train.loss_weights, is one key)."""
    keys = []
    for key, value in values.items():
        nested = isinstance(value, dict) and f"{prefix}{key}" not in KEYS
        keys += _flat(value, f"{prefix}{key}.") if nested else [f"{prefix}{key}"]
    return keys


def _covers(entries: tuple[str, ...], key: str) -> bool:
    """Whether a list of sections and keys (``COMMANDS``, ``Stage.settings``) names ``key``."""
    return key in entries or key.partition(".")[0] in entries


def refuse_ignored(command: str, values: dict[str, Any]) -> None:
    """Raise one UserError for settings ``command`` would ignore (not in its ``COMMANDS`` entry), naming what it
    reads; a key that is no setting at all gets the unknown-key message with the closest names."""
    keys, accepted = _flat(values), COMMANDS.get(command, ())
    if keys and not accepted:
        raise UserError(f"{command} takes no key=value settings (got {', '.join(keys)})")
    for key in keys:
        if key not in KEYS and key not in SECTIONS:
            raise unknown_key(key)
    ignored = [key for key in keys if not _covers(accepted, key)]
    if ignored:
        listed = ", ".join(f"{entry}.*" if entry in SECTIONS else entry for entry in accepted)
        raise UserError(f"{command} would ignore {', '.join(ignored)}: it reads {listed}")


def _stage_part(values: dict[str, Any], stage: str) -> dict[str, Any]:
    """The part of a nested dict of settings that ``stage`` reads (and ``stage``); keys that are no setting stay,
    so that ``apply`` still refuses them."""
    entries = ("stage", *STAGES[stage].settings)
    part: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECTIONS and key not in entries and isinstance(value, dict):
            value = {k: v for k, v in value.items() if _covers(entries, f"{key}.{k}") or f"{key}.{k}" not in KEYS}
            if not value:
                continue
        elif key in KEYS and key not in entries:
            continue
        part[key] = value
    return part


def to_dict(cfg: Config) -> dict[str, Any]:
    """The settings of ``cfg.stage`` as plain YAML types: what a run folder and a checkpoint store (the sections
    and keys ``STAGES`` names for the stage, so no labelling or audit settings a run never read)."""
    return _stage_part(dataclasses.asdict(cfg), cfg.stage)


def _without_retired(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    return {
        key: _without_retired(value, f"{prefix}{key}.") if isinstance(value, dict) else value
        for key, value in values.items()
        if f"{prefix}{key}" not in RETIRED
    }


def from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a config saved in a checkpoint or run folder; keys it lacks keep their defaults.

    Keys earlier versions had (``RETIRED``) are dropped, and so are settings the stage does not read (the label
    and audit sections that earlier versions stored in every run); other unknown keys are rejected.
    """
    cfg = Config()
    values = _without_retired(values)
    stage = values.get("stage", cfg.stage)
    apply(cfg, _stage_part(values, stage) if stage in STAGES else values)
    return cfg


def run_identity(values: dict[str, Any]) -> dict[str, Any]:
    """What a stored config says about what its run trains: read as ``from_dict`` reads it, less the keys marked
    ``per_run`` (where the run goes, whether it continues, its time budget, its model's labelling defaults).
    Two runs with the same identity train the same model, so ``run --stage all`` may continue one as the other."""
    cfg = from_dict(values)
    per_run = {key for key, f, _ in walk(cfg) if f.metadata.get("per_run")}
    stored = to_dict(cfg)
    identity = {k: v for k, v in stored.items() if k not in per_run and not isinstance(v, dict)}
    for section in [k for k, v in stored.items() if isinstance(v, dict)]:
        kept = {k: v for k, v in stored[section].items() if f"{section}.{k}" not in per_run}
        if kept:
            identity[section] = kept
    return identity


def save_config(cfg: Config, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(cfg), f, allow_unicode=True, sort_keys=False)
