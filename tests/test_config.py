import pytest
import yaml

from hierarchy.config import Config, from_dict, load_config, parse_overrides, save_config, to_dict
from hierarchy.errors import UserError


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
    from hierarchy.config import CONFIG_DIR
    from hierarchy.taxonomy import load_taxonomy

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
