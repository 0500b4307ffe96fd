"""Configuration: nested dataclasses < a stage's YAML file < ``key=value`` overrides.

- ``schema``: the settings themselves; every field carries its help text and allowed values (``setting``).
- ``settings``: reading (YAML, checkpoints) and checking: ``apply`` is the one place where values are checked.
- ``overrides``: the one parser of ``key=value`` words.
- ``help``: ``hierarchy run --help-config``, a flag's help, the message for an unknown key.
"""

from hierarchy.config.help import help_text, setting_choices, setting_help
from hierarchy.config.overrides import parse_overrides, split_words
from hierarchy.config.schema import (
    AUGMENT_KEYS,
    AUGMENT_PRESETS,
    CROP_MODES,
    DATA_FORMATS,
    DETECTING_MODES,
    PHOTO_MODES,
    RETIRED,
    RULES,
    STAGES,
    AuditConfig,
    Config,
    DataConfig,
    DetectConfig,
    HierarchyConfig,
    LabelConfig,
    ModelConfig,
    QueueConfig,
    TrainConfig,
    config_keys,
    setting,
)
from hierarchy.config.settings import (
    AUDITED,
    COMMANDS,
    apply,
    config_dir,
    from_dict,
    label_options,
    load_config,
    load_detect_config,
    queue_options,
    refuse_ignored,
    run_identity,
    save_config,
    to_dict,
)

__all__ = [
    "AUDITED", "AUGMENT_KEYS", "AUGMENT_PRESETS", "COMMANDS", "CROP_MODES", "DATA_FORMATS", "DETECTING_MODES",
    "PHOTO_MODES", "RETIRED", "RULES", "STAGES", "AuditConfig", "Config", "DataConfig", "DetectConfig",
    "HierarchyConfig", "LabelConfig", "ModelConfig", "TrainConfig", "apply", "config_dir", "config_keys",
    "from_dict", "help_text", "label_options", "queue_options", "QueueConfig", "load_config", "load_detect_config",
    "parse_overrides", "refuse_ignored", "run_identity", "save_config", "setting", "setting_choices", "setting_help",
    "split_words", "to_dict",
]  # fmt: skip
