"""Stage two on real-schema data: Fashion-How attribute heads, CutMix, presets, heads, balanced sampling."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import in_process, tiny_overrides
from PIL import Image

from hierarchy.config import AUGMENT_PRESETS, load_config
from hierarchy.data import build_splits, build_test, fashionhow, weighted_sampler, with_data_attributes
from hierarchy.data.fashionhow import class_counts
from hierarchy.data.images import TensorImages
from hierarchy.data.transforms import cutmix
from hierarchy.errors import UserError
from hierarchy.losses import compute_loss
from hierarchy.models import ResidualMLPHead, build_model
from hierarchy.taxonomy import load_taxonomy

COLUMNS = ["image_name", "BBox_xmin", "BBox_ymin", "BBox_xmax", "BBox_ymax", "Daily", "Gender", "Embellishment"]


def make_fashionhow(root, counts=(7, 6, 3), n_train=48, n_val=12, seed=0):
    """The challenge layout: *_train.csv and *_validation.csv beside train/ and val/ image folders.

    Each garment is a coloured block inside a larger photo; its colour follows the daily label, its
    stripes the embellishment, so a model can learn something. Dirt: a row whose image is missing, a
    zero-area box, a missing label.
    """
    rng = np.random.default_rng(seed)
    for split, n, folder in (("train", n_train, "train"), ("validation", n_val, "val")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n):
            labels = [i % counts[0], (i // 2) % counts[1], (i // 3) % counts[2]]
            photo = rng.integers(0, 60, (80, 64, 3)).astype(np.uint8)
            colour = np.array([40 + 30 * labels[0], 255 - 30 * labels[0], 120], dtype=np.uint8)
            x1, y1 = int(rng.integers(2, 16)), int(rng.integers(2, 20))
            photo[y1 : y1 + 48, x1 : x1 + 40] = colour
            photo[y1 : y1 + 48 : 4 + 4 * labels[2], x1 : x1 + 40] = 255
            Image.fromarray(photo).save(root / folder / f"{i}.jpg")
            rows.append([f"{i}.jpg", x1, y1, x1 + 40, y1 + 48, *labels])
        if split == "train":
            rows.append(["missing.jpg", 0, 0, 10, 10, 0, 0, 0])  # dirt: no such image
            rows.append(["0.jpg", 5, 5, 5, 30, 1, 1, 1])  # dirt: zero-width box (the whole image is used)
            rows.append(["1.jpg", 0, 0, 30, 30, "", 1, 1])  # dirt: one label missing (trains the other heads)
            rows.append(["2.jpg", 0, 0, 30, 30, "", -1, "x"])  # dirt: no usable label at all
        with open(root / f"info_etri20_emotion_{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([COLUMNS, *rows])
    return root


@pytest.fixture(scope="module")
def fashionhow_root(tmp_path_factory):
    return make_fashionhow(tmp_path_factory.mktemp("fashionhow"))


def test_fashionhow_reads_class_counts_dirt_and_boxes(fashionhow_root, tmp_path, caplog):
    other_season = make_fashionhow(tmp_path / "season2", counts=(6, 5, 3))
    assert class_counts(str(fashionhow_root)) == {"daily": 7, "gender": 6, "embellishment": 3}
    assert class_counts(str(other_season)) == {"daily": 6, "gender": 5, "embellishment": 3}  # never hard-coded

    cfg = load_config(
        "fine", overrides=[f"data.root={fashionhow_root}", "data.format=fashionhow", "data.image_size=32"]
    )
    cfg.data.taxonomy = "garment"
    tax = with_data_attributes(cfg.data, load_taxonomy("garment"))
    assert tax.names("daily") == tuple("0123456") and tax.names("embellishment") == ("0", "1", "2")
    train, val = build_splits(cfg.data, tax, seed=0)
    assert len(train) + len(val) == 48 + 2  # + the zero-width box and the row missing one label
    assert "1 × image file missing" in caplog.text and "1 × every label missing or out of range" in caplog.text
    assert "1 × some labels missing (the row trains the others)" in caplog.text
    rows = fashionhow.load(str(fashionhow_root), "train", tax, 32).attributes
    assert (rows["daily"][-1], rows["gender"][-1], rows["embellishment"][-1]) == (-1, 1, 1)
    test = build_test(cfg.data, tax)
    assert len(test) == 12 and test.tags == ["annotation"] * 12
    image, fine, coarse, source, attributes = test[5]
    assert image.shape == (3, 32, 32) and (fine, coarse) == (-1, -1)
    assert attributes == {"daily": 5, "gender": 2, "embellishment": 1} and source.endswith("val/5.jpg#annotation")

    named = load_taxonomy("garment").with_attributes({"embellishment": ("none", "point", "heavy")})
    assert with_data_attributes(cfg.data, named).names("embellishment") == ("none", "point", "heavy")
    with pytest.raises(UserError, match="no Fashion-How training CSV"):
        class_counts(str(tmp_path))


def test_cutmix_mixes_pixels_and_labels_by_area():
    images = torch.stack([torch.full((3, 20, 20), float(i)) for i in range(8)])
    mixed, perm, lam = cutmix(images, torch.Generator().manual_seed(3), alpha=1.0)
    own = (mixed == images).all(1).float().mean((1, 2))  # share of each image that is still its own
    moved = perm != torch.arange(8)
    assert torch.allclose(own[moved], torch.full_like(own[moved], lam))  # lam is the exact kept area
    again = cutmix(images, torch.Generator().manual_seed(3), alpha=1.0)
    assert torch.equal(again[0], mixed) and again[2] == lam  # a resumed run draws the same boxes

    logits = {"fine": torch.tensor([[4.0, 0.0], [0.0, 4.0]]), "daily": torch.zeros(2, 3)}
    targets = {"fine": torch.tensor([0, 1]), "daily": torch.tensor([-1, -1])}  # daily unlabelled here
    cfg = load_config("fine").train
    cfg.label_smoothing = 0.0
    plain = compute_loss(logits, targets, cfg)
    swapped = compute_loss(logits, targets, cfg, mix=(torch.tensor([1, 0]), 0.0))  # all area from the partner
    half = compute_loss(logits, targets, cfg, mix=(torch.tensor([1, 0]), 0.5))
    assert swapped > plain and torch.isclose(half, (plain + swapped) / 2)


def test_augment_presets_and_precedence(tmp_path):
    cfg = load_config("coarse", overrides=["train.augment=fashion"])
    assert cfg.train.cutmix == 0.5 and cfg.train.rotate == 10.0  # the preset overrides coarse.yaml's keys
    cfg = load_config("coarse", overrides=["train.augment=fashion", "train.cutmix=0.2"])
    assert cfg.train.cutmix == 0.2 and cfg.train.rotate == 10.0  # a key beside the preset wins
    (tmp_path / "c.yaml").write_text("train: {rotate: 3, augment: strong}\n")
    cfg = load_config("coarse", tmp_path / "c.yaml")
    assert cfg.train.rotate == 3 and cfg.train.erase == AUGMENT_PRESETS["strong"]["erase"]
    with pytest.raises(UserError, match="not one of"):
        load_config("coarse", overrides=["train.augment=heavy"])


def test_mlp_heads_and_balanced_sampler():
    model = build_model(load_config("fine", overrides=["model.head=mlp"]).model, {"daily": 7, "gender": 6})
    assert isinstance(model.heads["daily"], ResidualMLPHead) and model.heads["gender"].out_features == 6
    out = model(torch.zeros(2, 3, 32, 32))
    assert out["daily"].shape == (2, 7) and out["gender"].shape == (2, 6)

    fine = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)  # 90 : 9 : 1
    data = TensorImages(torch.zeros(100, 1, 2, 2, dtype=torch.uint8), fine, torch.zeros(100), "t")
    sampler = weighted_sampler(data, ("fine", 3), 0.0, 3000, torch.Generator().manual_seed(0))
    drawn = torch.bincount(fine[list(sampler)], minlength=3).float() / 3000
    assert (drawn - 1 / 3).abs().max() < 0.05


def same_network_as_coarse() -> list[str]:
    """Overrides giving another stage config the network of configs/coarse.yaml (a transfer needs the same one)."""
    model = load_config("coarse").model
    return [f"model.stem_pool={str(model.stem_pool).lower()}", f"model.channels={model.channels}".replace(" ", "")]


@pytest.mark.slow
def test_fashionhow_fine_stage_from_a_garment_coarse_run(fashionhow_root, tmp_path, capsys, monkeypatch, caplog):
    # Stage one: garment types on crops from a CSV manifest (the same photos, labelled top / bottom).
    manifest = tmp_path / "garments.csv"
    rows = [[f"{fashionhow_root}/train/{i}.jpg", "top" if i % 2 else "bottom"] for i in range(48)]
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["path", "label"], *rows])
    tiny = ["data.image_size=32", "train.epochs=1", "train.batch_size=16", "data.workers=0"]
    coarse = tmp_path / "coarse"
    assert in_process(capsys, monkeypatch, "run", "--stage", "coarse", "--run-dir", str(coarse), "data.format=csv",
                      f"data.root={manifest}", "data.taxonomy=garment", *tiny)[0] == 0  # fmt: skip
    fine = tmp_path / "fine"
    caplog.set_level("INFO")
    assert in_process(
        capsys, monkeypatch, "run", "--stage", "fine", "--config", "configs/fashionhow_fine.yaml", "--run-dir",
        str(fine), f"data.root={fashionhow_root}", f"init_from={coarse}", "model.backbone=resnet10t",
        "model.pretrained=false", *same_network_as_coarse(), *tiny,
    )[0] == 0  # fmt: skip
    assert "transferred" in caplog.text and "heads.coarse.weight" in caplog.text  # backbone moved, coarse head unused
    report = json.loads((fine / "metrics.json").read_text())
    assert set(report["heads"]) == {"daily", "gender", "embellishment"}
    assert report["heads"]["daily"]["n"] == 5  # validation: 10 % of the 49 usable training rows
    assert 0 < report["model"]["size_mb"] < 25 and "cpu_latency_ms" not in report["model"]  # timed only if asked
    assert (fine / "confusion_gender.png").is_file()
    metrics = (fine / "metrics.csv").read_text().splitlines()[0]
    assert "val/mean_acsa" in metrics and "val/daily_acsa" in metrics

    code, out, _ = in_process(capsys, monkeypatch, "eval", "--model", str(fine), "--latency")
    assert code == 0 and "ms/image" in out
    test = json.loads((fine / "test" / "metrics.json").read_text())
    assert test["heads"]["embellishment"]["n"] == 12 and "top3" in test["heads"]["daily"]
    out = tmp_path / "labels.csv"
    label = ("label", str(fashionhow_root / "val"), "--model", str(fine), "--out", str(out), "--crop", "image")
    assert in_process(capsys, monkeypatch, *label)[0] == 0
    header = out.read_text().splitlines()[0].split(",")
    assert {"daily", "daily_prob", "gender", "embellishment_top5"} <= set(header)


@pytest.mark.slow
def test_audit_finds_injected_label_noise_and_drop_suspects_leaves_them_out(tmp_path, capsys, monkeypatch, caplog):
    from conftest import make_fashion_mnist, write_idx

    root = make_fashion_mnist(tmp_path / "fm", 400, 50)
    labels = np.frombuffer(gzip.open(root / "train-labels-idx1-ubyte.gz").read()[8:], dtype=np.uint8).copy()
    flipped = np.random.default_rng(0).choice(400, 20, replace=False)  # 5 % label noise
    labels[flipped] = (labels[flipped] + 5) % 10
    write_idx(root / "train-labels-idx1-ubyte.gz", labels)
    audit = tmp_path / "audit"
    common = [f"data.root={root}", "data.image_size=32", "train.batch_size=32", "data.val_fraction=0.05"]
    audit_cmd = ("audit", "--stage", "fine", "--run-dir", str(audit), "init_from=none", "audit.epochs=6", *common)
    assert in_process(capsys, monkeypatch, *audit_cmd)[0] == 0
    rows = list(csv.DictReader(open(audit / "suspect_labels.csv")))
    found = {int(r["source"].split("[")[1].rstrip("]")) for r in rows if r["head"] == "fine"}
    assert len(found & set(flipped.tolist())) >= 10 and len(found - set(flipped.tolist())) <= 10
    every = list(csv.DictReader(open(audit / "aum.csv")))
    assert float(every[0]["aum"]) <= float(every[-1]["aum"]) and {r["head"] for r in every} == {"coarse", "fine"}

    clean = ("run", "--stage", "coarse", "--run-dir", str(tmp_path / "clean"), f"data.drop_suspects={audit}",
             "train.epochs=1", *common)  # fmt: skip
    caplog.set_level("INFO")
    assert in_process(capsys, monkeypatch, *clean)[0] == 0
    suspects = len({r["source"] for r in rows})
    assert f"data.drop_suspects: {suspects} of 380 training samples left out" in caplog.text


def test_uda_consistency_loss_counts_confident_predictions_only():
    from hierarchy.losses import consistency_loss

    cfg = load_config("fine").train
    strong = {"fine": torch.tensor([[0.0, 0.0], [0.0, 0.0]])}
    unsure = {"fine": torch.tensor([[0.1, 0.0], [0.0, 0.1]])}  # top probability about 0.52 < 0.8
    sure = {"fine": torch.tensor([[5.0, 0.0], [0.0, 0.1]])}  # only the first image is confident
    assert consistency_loss(strong, unsure, cfg) == 0
    expected = -torch.log_softmax(torch.zeros(2), 0)[0] / 2  # first image: sharpened target ≈ one-hot; / batch
    assert torch.isclose(consistency_loss(strong, sure, cfg), expected, atol=1e-3)


@pytest.mark.slow
def test_uda_trains_on_hidden_labels_and_an_unlabelled_folder(fmnist_root, tmp_path, capsys, monkeypatch, caplog):
    from conftest import make_image_folder

    folder = make_image_folder(tmp_path / "unlabelled", ["a"], 8)  # colour images beside grey Fashion-MNIST
    run = tmp_path / "uda"
    caplog.set_level("INFO")
    assert in_process(
        capsys, monkeypatch, "run", "--stage", "coarse", "--run-dir", str(run), f"data.root={fmnist_root}",
        "data.image_size=32", "train.epochs=1", "train.batch_size=32", "data.label_fraction=0.25", "train.uda=1.0",
        f"train.unlabeled={folder}",
    )[0] == 0  # fmt: skip
    assert "data.label_fraction=0.25: " in caplog.text
    kept = int(caplog.text.split("data.label_fraction=0.25: ")[1].split()[0])
    assert 60 < kept < 120  # about a quarter of the 360 training images
    assert f"UDA: {360 - kept + 8} unlabelled images" in caplog.text
    assert (run / "checkpoints" / "best.pt").is_file()
    with pytest.raises(UserError, match="train.uda needs unlabelled images"):
        from hierarchy.uda import split_unlabelled

        split_unlabelled(TensorImages(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2), torch.zeros(2), "t"),
                         ["coarse"], load_config("coarse", overrides=["train.uda=1"]).train, 32)  # fmt: skip


def make_kfashion_styles(root, per_style: int = 6):
    """K-Fashion JSON (Korean keys) tagging each photo with a style and a sub-style, and the known dirt:
    an empty style object, a spelling variant, a sub-style outside the 23."""
    pairs = [("스트리트", "힙합"), ("클래식", "프레피"), ("페미닌", "로맨틱"), ("스포티", None)]
    rng = np.random.default_rng(2)
    for split, n in (("Training", per_style), ("Validation", 2)):
        folder = root / split / "일부"
        folder.mkdir(parents=True, exist_ok=True)
        for k, (style, sub) in enumerate(pairs):
            for i in range(n):
                photo = rng.integers(0, 50, (48, 40, 3)).astype(np.uint8)
                photo[8:40, 8:32] = (60 * k, 200 - 40 * k, 90)
                stem = f"{k}_{i}"
                Image.fromarray(photo).save(folder / f"{stem}.jpg")
                tags = [{"스타일": style, **({"서브스타일": sub} if sub else {})}]
                if i == 0:
                    tags.append({})  # dirt: an empty style object
                if i == 1 and sub:
                    tags[0]["서브스타일"] = "키치/키덜트"  # a spelling variant of kitsch
                if i == 2:
                    tags[0]["서브스타일"] = "퓨전"  # a sub-style outside the 23: left out
                detail = {"렉트좌표": {}, "폴리곤좌표": {}, "라벨링": {"스타일": tags}}
                doc = {"이미지 정보": {"이미지 식별자": i}, "데이터셋 정보": {"데이터셋 상세설명": detail}}
                (folder / f"{stem}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return root


def test_multilabel_thresholds_and_metrics():
    from hierarchy.data.images import multi_hot
    from hierarchy.metrics import multilabel_metrics, tune_thresholds

    hot = multi_hot({"fine": torch.tensor([0, 1]), "fine_all": torch.tensor([[0, 2, -1], [1, -1, -1]])}, 3)
    assert hot.tolist() == [[1, 0, 1], [0, 1, 0]]
    probs = np.array([[0.9, 0.1, 0.35], [0.2, 0.8, 0.3], [0.6, 0.2, 0.1]])
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0]])
    thresholds = tune_thresholds(probs, truth)
    assert 0.3 < thresholds[2] <= 0.35  # the one positive (0.35) above the one negative (0.3)
    m = multilabel_metrics(probs, truth, thresholds, ("a", "b", "c"))
    assert m["micro_f1"] == 1.0 and m["exact_match"] == 1.0 and m["labels_per_sample"] == 4 / 3
    m = multilabel_metrics(probs, truth, np.full(3, 0.5), ("a", "b", "c"))
    assert m["micro_f1"] == 2 * 3 / (2 * 3 + 0 + 1) and m["per_class"]["c"]["f1"] == 0.0


@pytest.mark.slow
def test_multilabel_styles_from_kfashion_substyles(tmp_path, capsys, monkeypatch):
    from hierarchy.data.kfashion import load

    root = make_kfashion_styles(tmp_path / "kf")
    tax = load_taxonomy("kfashion_style")
    styles = load(str(root), "train", tax, 32)
    every = dict(zip(styles.paths, styles.attributes["fine_all"]))
    names = {Path(p).stem: tuple(tax.fine[f] for f in ids) for p, ids in every.items()}
    assert names["0_3"] == ("street", "hiphop") and names["0_1"] == ("street", "kitsch")  # variant resolved
    assert names["0_2"] == ("street",) and names["3_4"] == ("sporty",)  # unknown sub-style left out

    run = tmp_path / "ml"
    train = ("run", "--stage", "fine", "--run-dir", str(run), "init_from=none", "data.format=kfashion",
             f"data.root={root}", "data.taxonomy=kfashion_style", "data.crop=image", "data.image_size=32",
             "train.multilabel=true", "train.epochs=2", "train.batch_size=8", "data.workers=0",
             "data.val_fraction=0.25")  # fmt: skip
    assert in_process(capsys, monkeypatch, *train)[0] == 0
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert len(state["thresholds"]) == 23 and all(0.05 <= t <= 0.95 for t in state["thresholds"])
    report = json.loads((run / "metrics.json").read_text())
    assert {"micro_f1", "mean_average_precision", "per_class"} <= set(report["multilabel"])
    out = tmp_path / "labels.csv"
    label = ("label", str(root / "Validation"), "--model", str(run), "--out", str(out), "--crop", "image")
    assert in_process(capsys, monkeypatch, *label)[0] == 0
    header = out.read_text().splitlines()[0].split(",")
    assert "fine_labels" in header and "coarse" in header


def test_class_weights_weight_samples_not_the_smoothing_target():
    from hierarchy.losses import cross_entropy

    logits, target = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 3, -1, 2])
    w = torch.tensor([0.5, 1.0, 2.0, 4.0])
    torch_weighted = torch.nn.functional.cross_entropy(logits, target, weight=w, ignore_index=-1)
    assert torch.isclose(cross_entropy(logits, target, w, 0.0), torch_weighted)  # the same without smoothing
    keep = target >= 0
    smoothed = torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="none", label_smoothing=0.1)
    expected = (smoothed * w[target[keep]]).sum() / w[target[keep]].sum()  # each sample weighted by its class
    assert torch.isclose(cross_entropy(logits, target, w, 0.1), expected)


@pytest.mark.slow
def test_fixmatch_trains_the_fine_stage_on_images_without_a_fine_label(
    coarse_and_fine, fmnist_root, tmp_path, capsys, monkeypatch, caplog
):
    """FixMatch changes what a fine stage learns from coarse-only and unlabelled images (the pool is logged); on a
    coarse stage, which has no fine head, it changes nothing."""
    caplog.set_level("INFO")
    hidden = ["data.fine_label_fraction=0.25", "data.label_fraction=0.8", "train.fixmatch_threshold=0.3"]

    def fine(name: str, *settings: str) -> dict:
        args = ["--run-dir", str(tmp_path / name), f"init_from={coarse_and_fine / 'coarse'}", *hidden, *settings]
        assert in_process(capsys, monkeypatch, "run", "--stage", "fine", *args, *tiny_overrides(fmnist_root))[0] == 0
        return torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=True)["model"]

    with_fixmatch, without = fine("fixmatch", "train.fixmatch=1"), fine("plain", "train.fixmatch=0")
    assert "FixMatch: " in caplog.text and "unlabelled images, consistency weight 1" in caplog.text
    assert not torch.equal(with_fixmatch["heads.fine.weight"], without["heads.fine.weight"])

    def coarse(name: str, weight: str) -> dict:
        args = ["--run-dir", str(tmp_path / name), "data.label_fraction=0.8", f"train.fixmatch={weight}"]
        assert in_process(capsys, monkeypatch, "run", "--stage", "coarse", *args, *tiny_overrides(fmnist_root))[0] == 0
        return torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=True)["model"]

    first, second = coarse("coarse-fixmatch", "1"), coarse("coarse-plain", "0")
    assert all(torch.equal(first[k], second[k]) for k in first)
