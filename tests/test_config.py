import dataclasses

import pytest
import yaml

from hierarchy.cli import main
from hierarchy.config import (
    Config,
    apply,
    config_dir,
    config_keys,
    from_dict,
    load_config,
    parse_overrides,
    save_config,
    to_dict,
)
from hierarchy.errors import UserError


def every_setting(obj: object = None, prefix: str = "") -> dict[str, dataclasses.Field]:
    """Dotted key -> dataclass field, walked here rather than through config.py's own helpers."""
    obj = Config() if obj is None else obj
    found = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        found |= every_setting(value, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else {prefix + f.name: f}
    return found


def test_precedence_defaults_yaml_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7  # from the file\n  lr: 1.0e-3\nmodel:\n  backbone: resnet18\n")
    cfg = load_config("coarse", path, ["train.epochs=2", "data.limit=100", "model.pretrained=true"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.backbone) == (2, 1e-3, "resnet18")
    assert cfg.data.limit == 100 and cfg.model.pretrained is True
    assert cfg.train.batch_size == Config().train.batch_size  # untouched default


def test_shipped_stage_configs_load():
    assert load_config("coarse").data.format == "fashion_mnist"
    fine = load_config("fine")
    assert fine.model.backbone == load_config("coarse").model.backbone


def test_unknown_key_suggests_closest():
    with pytest.raises(UserError, match="Did you mean: train.epochs"):
        load_config("coarse", overrides=["train.epoch=3"])
    with pytest.raises(UserError, match="data.image_size"):
        load_config("coarse", overrides=["data.imagesize=3"])


def test_wrong_type_is_rejected():
    with pytest.raises(UserError, match="expects a int"):
        load_config("coarse", overrides=["train.epochs=many"])
    with pytest.raises(UserError, match="a space after each colon"):
        load_config("fine", overrides=["train.loss_weights={coarse:0.5,fine:1}"])
    with pytest.raises(UserError, match="hierarchy.rule='sum' is not one of product, mask, flat"):
        load_config("fine", overrides=["hierarchy.rule=sum"])
    with pytest.raises(UserError, match="not key=value"):
        parse_overrides(["train.epochs"])
    with pytest.raises(UserError, match="train.optimizer='adam' is not one of adamw, sgd"):
        load_config("coarse", overrides=["train.optimizer=adam"])


def test_float_without_decimal_point():
    """YAML reads 5e-4 as a string; a float key still takes it."""
    assert load_config("coarse", overrides=["train.weight_decay=5e-4"]).train.weight_decay == 5e-4
    with pytest.raises(UserError, match="expects a float"):
        load_config("coarse", overrides=["train.weight_decay=small"])


def test_unknown_key_in_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr_peak: 0.1\n")
    with pytest.raises(UserError, match="Did you mean: train.lr"):
        load_config("coarse", path)


def test_saved_config_round_trips(tmp_path):
    cfg = load_config("fine", overrides=["train.loss_weights={coarse: 0.5, fine: 1.0}"])
    save_config(cfg, tmp_path / "config.yaml")
    again = from_dict(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert to_dict(again) == to_dict(cfg) and again.train.loss_weights == {"coarse": 0.5, "fine": 1.0}


@pytest.mark.parametrize("name", ["kfashion_style", "kfashion_garment", "fashionhow"])
def test_stage_two_configs_load_and_fit_their_taxonomy(name):
    """Every shipped stage config resolves; a fine config's taxonomy and model match its coarse partner."""
    from hierarchy.taxonomy import load_taxonomy

    CONFIG_DIR = config_dir()
    fine = load_config("fine", CONFIG_DIR / f"{name}_fine.yaml")
    load_taxonomy(fine.data.taxonomy)
    assert fine.train.balance and fine.train.cutmix > 0  # the stage-two recipe: balanced sampling, CutMix
    coarse_file = CONFIG_DIR / f"{name}_coarse.yaml"
    partner = (
        load_config("coarse", coarse_file)
        if coarse_file.exists()
        else load_config("coarse", CONFIG_DIR / "kfashion_garment_coarse.yaml")
    )  # Fashion-How transfers from the K-Fashion garment run
    assert (partner.data.taxonomy, partner.model.backbone, partner.data.image_size) == (
        fine.data.taxonomy, fine.model.backbone, fine.data.image_size,
    )  # fmt: skip


def test_help_config_shows_each_key_with_its_own_full_help(capsys):
    """Keys that share a name (train.epochs / audit.epochs, train.amp / detect.amp, model.weights / detect.weights)
    each show their own text, in full, with their choices or range."""
    assert main(["run", "--help-config"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    settings = every_setting()
    assert sorted(lines) == sorted(settings) == sorted(config_keys())
    for key, f in settings.items():
        text = f.metadata["help"]
        assert text and "\n" not in text, key
        assert text in lines[key], key
    for a, b in [("train.epochs", "audit.epochs"), ("train.amp", "detect.amp"), ("model.weights", "detect.weights")]:
        assert settings[a].metadata["help"] != settings[b].metadata["help"]
    assert "0 = train on all of it, with no validation: best.pt is then the last epoch" in lines["data.val_fraction"]
    assert "[one of: product | mask | flat]" in lines["hierarchy.rule"]
    assert '[one of: "" | none | light | standard | fashion | strong]' in lines["train.augment"]
    assert "[>= 0 and < 1]" in lines["data.val_fraction"] and "[> 0 and <= 1]" in lines["data.label_fraction"]
    assert lines["train.epochs"].split()[1] == "8" and "[>= 1]" in lines["train.epochs"]


@pytest.mark.parametrize(
    "pair",
    [
        "stage=audit",
        "data.format=imagenet",
        "data.val_fraction=1",
        "data.val_fraction=-0.1",
        "data.label_fraction=0",
        "data.label_fraction=1.5",
        "model.tta_shift=-1",
        "train.epochs=0",
        "train.batch_size=0",
        "train.flip=1.5",
        "train.erase=-0.5",
        "train.cutmix=2",
        "train.lr=.nan",
        "train.augment=heavy",
        "detect.conf=1.5",
        "detect.iou=-0.1",
        "detect.backend=onnx",
    ],
)
def test_value_outside_its_range_or_choices_fails_naming_the_key(pair, tmp_path):
    key, raw = pair.split("=")
    with pytest.raises(UserError) as exc:
        load_config("coarse", overrides=[pair])
    message = str(exc.value)
    assert message.startswith(f"{key}=") and "\n" not in message
    assert "one of" in message or "out of range: use a value" in message
    section, _, name = key.rpartition(".")
    path = tmp_path / "c.yaml"  # a YAML file goes through the same check
    path.write_text(yaml.safe_dump({section: {name: yaml.safe_load(raw)}} if section else {name: raw}))
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        load_config("coarse", path)


def test_values_on_the_edge_of_a_range_are_accepted():
    pairs = ["data.val_fraction=0", "data.label_fraction=1", "model.tta_shift=0", "train.flip=1", "train.cutmix=0"]
    cfg = load_config("fine", overrides=[*pairs, "detect.conf=0", "detect.iou=1", "train.epochs=1", "train.augment="])
    assert (cfg.data.val_fraction, cfg.data.label_fraction, cfg.train.flip, cfg.detect.iou) == (0.0, 1.0, 1.0, 1.0)
    with pytest.raises(UserError, match="stage='bogus' is not one of coarse, fine, detect"):
        load_config("bogus")


def test_defaults_and_every_shipped_config_pass_the_checks():
    apply(Config(), to_dict(Config()))  # every default is inside its own range
    files = sorted(p for p in config_dir().glob("*.yaml") if p.name != "detector.yaml")
    assert {"coarse.yaml", "fine.yaml", "detect.yaml"} <= {p.name for p in files}
    for path in files:
        stage = "fine" if path.stem.endswith("fine") else "detect" if path.stem == "detect" else "coarse"
        assert load_config(stage, path).stage == stage
    assert sorted(p.stem for p in (config_dir() / "taxonomy").glob("*.yaml"))


def test_retired_key_is_dropped_from_saved_configs_and_refused_when_set():
    saved = to_dict(Config())
    saved["train"]["log_every"] = 50  # what run folders of earlier versions hold
    assert to_dict(from_dict(saved)) == to_dict(Config())
    with pytest.raises(UserError, match="train.log_every is no longer a setting"):
        load_config("coarse", overrides=["train.log_every=10"])


def test_choices_match_the_code_that_dispatches_on_them():
    """config.py cannot import the higher modules, so its choice lists are copies: keep them in step."""
    from hierarchy.data import FORMATS
    from hierarchy.data.crops import DETECTING_MODES
    from stages import STAGES

    settings = every_setting()
    assert set(settings["data.format"].metadata["choices"]) == set(FORMATS)
    assert set(settings["data.crop"].metadata["choices"]) == {"auto", "image", "annotation", *DETECTING_MODES}
    assert set(settings["stage"].metadata["choices"]) == set(STAGES)
