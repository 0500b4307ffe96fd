import argparse
import dataclasses
from pathlib import Path

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
    setting,
    to_dict,
)
from hierarchy.errors import UserError


def every_setting(obj: object = None, prefix: str = "") -> dict[str, dataclasses.Field]:
    """Dotted key -> dataclass field, walked here rather than through hierarchy.config's own helpers."""
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


def test_each_choice_list_is_written_once_and_read_everywhere():
    """The schema's lists of formats, crop modes and stages are the ones the keys' choices and help, the crop
    code, the stage recipes and the command-line flags use: nothing to keep in step by hand."""
    from hierarchy import config
    from hierarchy.data import FORMATS
    from hierarchy.data.crops import DETECTING_MODES
    from stages import STAGES

    settings = every_setting()
    assert settings["data.format"].metadata["choices"] == tuple(config.DATA_FORMATS)
    assert set(FORMATS) == set(config.DATA_FORMATS)  # the adapters: code per name, keyed by the schema's names
    assert settings["data.crop"].metadata["choices"] == ("auto", *config.CROP_MODES)
    assert settings["label.crop"].metadata["choices"] == ("", *config.PHOTO_MODES)
    assert DETECTING_MODES is config.DETECTING_MODES and set(DETECTING_MODES) < set(config.PHOTO_MODES)
    assert settings["stage"].metadata["choices"] == tuple(config.STAGES) == tuple(STAGES)
    assert all(STAGES[name].__module__ == f"stages.{name}" for name in config.STAGES)  # a stage is its module
    listed = {"data.format": config.DATA_FORMATS, "data.crop": config.CROP_MODES, "stage": config.STAGES}
    for key, names in listed.items():
        assert all(f"{name} (" in settings[key].metadata["help"] for name in names), key  # the help lists each

    flags = {(command, a.option_strings[0]): a for command, a in parser_actions() if a.option_strings and a.choices}
    assert flags["run", "--stage"].choices == [*config.STAGES, "all"]
    assert flags["audit", "--stage"].choices == config.AUDITED and set(config.AUDITED) <= set(config.STAGES)
    for command, flag, key in [
        ("serve", "--crop", "label.crop"),
        ("serve", "--precision", "label.precision"),
        ("eval", "--precision", "label.precision"),
        ("export", "--views", "label.views"),
    ]:
        assert flags[command, flag].choices == settings[key].metadata["choices"], (command, flag)  # fmt: skip


def parser_actions() -> list[tuple[str, argparse.Action]]:
    """(sub-command, argparse action) of every option of the command line."""
    from hierarchy.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return [(name, action) for name, parser in commands.choices.items() for action in parser._actions]


REFUSED = [  # a command line, the setting it would ignore, one key it reads
    (["run", "--stage", "detect", "model.backbone=resnet18"], "model.backbone", "train.epochs"),
    (["run", "--stage", "detect", "train.epochs=3", "--run-dir", "d", "train.optimizer=sgd"], "train.optimizer",
     "data.*"),
    (["run", "--stage", "coarse", "init_from=none"], "init_from", "model.*"),
    (["run", "--stage", "fine", "label.input=photos"], "label.input", "label.views"),
    (["run", "--stage", "all", "audit.epochs=2"], "audit.epochs", "label.*"),
    (["audit", "--stage", "coarse", "label.out=x.csv"], "label.out", "audit.*"),
    (["eval", "--model", "RUN", "model.backbone=resnet18"], "model.backbone", "model.tta_shift"),
    (["calibrate", "--model", "RUN", "train.lr=0.1"], "train.lr", "data.*"),
    (["label", "photos", "--model", "RUN", "--out", "o.csv", "data.root=x"], "data.root", "detect.*"),
    (["detect", "photos", "train.lr=0.1", "--out", "o.csv"], "train.lr", "detect.*"),
    (["serve", "--model", "RUN", "detect.conf=0.3"], "detect.conf", "queue.*"),
    (["suggest", "--model", "RUN", "--budget", "5", "--out", "q.csv", "train.lr=1"], "train.lr", "queue.*"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "ignored", "reads"), REFUSED)
def test_a_command_refuses_a_setting_it_would_ignore_naming_what_it_reads(argv, ignored, reads, capsys):
    assert main(argv) == 2  # before any work: RUN, photos and d need not exist
    err = capsys.readouterr().err
    command = " ".join(argv[:3]) if "--stage" in argv else argv[0]
    assert err.count("\n") == 1 and f"error: {command} would ignore {ignored}: it reads " in err
    assert reads in err.split("it reads ")[1].strip().split(", "), err


@pytest.mark.parametrize(
    "argv",
    [["export", "--model", "RUN", "model.tta_shift=1"],
     ["corrections", "export", "--db", "x.sqlite", "--out", "m.csv", "data.root=x"]],
)  # fmt: skip
def test_a_command_without_settings_refuses_every_one(argv, capsys):
    assert main(argv) == 2
    assert "takes no key=value settings (got " in capsys.readouterr().err


def test_every_key_a_command_lists_passes_and_every_other_is_refused():
    from hierarchy.config import COMMANDS, STAGES, refuse_ignored

    settings = every_setting()
    for command, entries in COMMANDS.items():
        for key in settings:
            section, _, name = key.rpartition(".")
            values = {section: {name: 1}} if section else {name: 1}
            if key in entries or section in entries:
                refuse_ignored(command, values)
            else:
                with pytest.raises(UserError, match=f"{command} would ignore {key}:"):
                    refuse_ignored(command, values)
    for entries in [*COMMANDS.values(), *(stage.settings for stage in STAGES.values())]:
        assert all(e in settings or any(k.startswith(f"{e}.") for k in settings) for e in entries), entries  # no typo
    sections = {entry.partition(".")[0] for entry in COMMANDS["run --stage detect"]}
    assert sections == {"name", "run_dir", "resume", "data", "train"}  # no model, detect, label … setting


def test_one_parser_reads_the_words_of_every_command_before_and_after_its_options(monkeypatch, tmp_path):
    """Settings before, between and after the options reach the command alike (settings after the options were
    once dropped by one command); a word with = that names an existing file stays a path."""
    from hierarchy import cli

    seen = {}
    for name in ("cmd_run", "cmd_audit", "cmd_eval", "cmd_calibrate", "cmd_detect", "cmd_label"):
        monkeypatch.setattr(cli, name, lambda args: seen.update({args.command: (args.paths, args.settings)}) or 0)
    odd = str(tmp_path / "a=b.jpg")
    Path(odd).touch()
    a, b, c, d = "data.limit=5", "train.epochs=2", "detect.conf=0.3", "detect.iou=0.5"
    runs = {  # command line, (paths, settings) the command gets
        "run": (["run", a, "--stage", "coarse", b, "--run-dir", "d", c], ([], [a, b, c])),
        "audit": (["audit", a, "--stage", "fine", b, "--run-dir", "d", c], ([], [a, b, c])),
        "eval": (["eval", a, "--model", "m", "--split", "val", c], ([], [a, c])),
        "calibrate": (["calibrate", a, "--model", "m", "--out", "o", c], ([], [a, c])),
        "detect": (["detect", "p1", c, "--out", "o.csv", "p2", odd, d], (["p1", "p2", odd], [c, d])),
        "label": (["label", "p1", c, "--model", "m", "--out", "o.csv", odd, d], (["p1", odd], [c, d])),
    }  # fmt: skip
    for command, (argv, expected) in runs.items():
        assert main(argv) == 0, argv
        assert seen[command] == expected, command
    assert main(["run", "--stage", "coarse", "--run-dir", "d", "epochs"]) == 2  # not key=value: refused, not dropped


def test_a_run_stores_only_the_settings_its_stage_reads(tmp_path):
    cfg = load_config("coarse", overrides=["label.views=model", "label.input=photos", "audit.epochs=9"])
    stored = to_dict(cfg)
    assert set(stored) == {"stage", "name", "run_dir", "resume", "data", "model", "train", "hierarchy", "detect",
                           "label"}  # fmt: skip
    assert stored["label"] == {"views": "model", "precision": "fp32"}  # the labelling defaults its model carries
    detect = to_dict(load_config("detect"))
    assert set(detect) == {"stage", "name", "run_dir", "resume", "data", "train"}
    assert set(detect["train"]) == {"epochs", "batch_size", "lr", "seed", "device"}
    assert "init_from" in to_dict(load_config("fine", overrides=["init_from=none"]))
    save_config(cfg, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == stored


def test_an_old_checkpoint_with_label_and_audit_sections_still_loads_and_compares():
    """Earlier versions stored every section; reading one ignores what the stage does not read, and a run
    continues it when only per-run keys (folder, resume, time budget, labelling defaults) differ."""
    from hierarchy.config import run_identity

    cfg = load_config("fine", overrides=["train.epochs=3", "label.views=model"])
    old = dataclasses.asdict(cfg) | {"init_from": "artifacts/coarse/a", "resume": ""}
    old["label"] |= {"input": "photos", "out": "x.csv", "workers": 3}
    old["audit"]["epochs"] = 9
    again = from_dict(old)
    assert again.label.views == "model" and again.label.input == "" and again.audit.epochs == 4
    assert to_dict(again) == to_dict(cfg) | {"init_from": "artifacts/coarse/a"}
    now = load_config("fine", overrides=["train.epochs=3", "resume=auto", "run_dir=job/fine", "train.time_budget=2"])
    assert run_identity(old) == run_identity(to_dict(now))  # only per-run keys differ
    assert "label" not in run_identity(old) and "audit" not in run_identity(old)
    lr = load_config("fine", overrides=["train.epochs=3", "train.lr=0.01"])
    differ = run_identity(to_dict(lr))
    assert [k for k in differ if differ[k] != run_identity(old).get(k)] == ["train"]


def test_pipeline_progress_reads_an_old_checkpoint(tmp_path):
    from hierarchy.checkpoint import save_checkpoint
    from stages.pipeline import progress

    cfg = load_config("coarse", overrides=["train.epochs=2", f"run_dir={tmp_path}"])
    old = dataclasses.asdict(cfg) | {"init_from": "", "resume": ""}
    old["label"]["input"], old["audit"]["epochs"] = "photos", 9  # what earlier versions stored
    (tmp_path / "checkpoints").mkdir()
    state = {"model": {}, "taxonomy": {}, "stage": "coarse", "epoch": 1, "config": old}
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", state)
    assert progress(cfg, tmp_path) == "partial"
    (tmp_path / "metrics.json").write_text("{}")
    assert progress(load_config("coarse", overrides=["train.epochs=2", "label.input=other"]), tmp_path) == "done"
    with pytest.raises(UserError, match=r"other settings \(in \['train'\]\)"):
        progress(load_config("coarse", overrides=["train.epochs=2", "train.lr=0.01"]), tmp_path)


def test_every_workers_key_means_the_same_by_n_0_and_minus_1():
    settings = every_setting()
    workers = {key: f for key, f in settings.items() if key.endswith(".workers")}
    assert set(workers) == {"data.workers", "label.workers"}
    for key, f in workers.items():
        assert f.default == -1 and f.metadata["low"] == -1, key
        assert "N = that many; 0 = none, images are decoded where the network runs; -1 = auto: " in f.metadata["help"]


def test_presets_are_a_property_of_a_setting_not_a_case_in_apply():
    @dataclasses.dataclass
    class Section:
        look: str = setting("", "a preset", choices=("", "bright"), presets={"bright": {"level": 9, "tint": 2}})
        level: int = setting(1, "a level")
        tint: int = setting(0, "a tint")

    section = Section()
    apply(section, {"look": "bright", "tint": 5}, "any.")
    assert (section.level, section.tint) == (9, 5)  # the preset, then the key set beside it
