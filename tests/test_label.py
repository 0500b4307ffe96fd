"""The batch labeler in real processes: outputs, bad files, resume after SIGKILL, ensembles, torchrun shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from conftest import ROOT, hierarchy, in_process, make_image_folder
from PIL import Image

from hierarchy.errors import UserError
from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.infer.rows import top_list
from hierarchy.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def labeller(tmp_path_factory, folder_runs):
    """A tiny fine model trained on an image folder, and a folder of images to label (with bad files)."""
    base = tmp_path_factory.mktemp("label")
    photos = make_image_folder(base / "photos" / "a", ["x", "y"], 20)  # 40 images in nested folders
    (photos / "x" / "empty.png").write_bytes(b"")
    (photos / "y" / "notes.png").write_text("not an image")
    (photos / "y" / "cut.png").write_bytes((photos / "y" / "0.png").read_bytes()[:60])
    return folder_runs["fine"], base / "photos"


@pytest.mark.slow
def test_label_rows_errors_and_formats(labeller, tmp_path, capsys, monkeypatch):
    model, photos = labeller
    out = tmp_path / "labels.csv"
    proc = hierarchy("label", str(photos), "--model", str(model), "--out", str(out), check=False)
    assert proc.returncode == 3, proc.stderr  # finished, but some files had no labels
    rows = pd.read_csv(out)
    assert len(rows) == 40 and rows["path"].nunique() == 40 and (rows["kind"] == "image").all()
    assert {"root", "path", "sha256", "x1", "y2", "coarse", "coarse_prob", "fine", "fine_prob", "fine_top5"} <= set(
        rows.columns
    )
    assert rows["path"].str.startswith("a/").all()  # relative to the folder given
    assert set(rows["fine"]) <= set(load_taxonomy("fashion_mnist").fine)  # class names, not ids
    assert ((rows["fine_prob"] > 0) & (rows["fine_prob"] <= 1)).all()
    errors = pd.read_csv(tmp_path / "labels.errors.csv")
    assert sorted(errors["path"].str.rsplit("/", n=1).str[-1]) == ["cut.png", "empty.png", "notes.png"]
    assert not (tmp_path / "labels.csv.parts").exists()
    code, again, _ = in_process(capsys, monkeypatch, "label", str(photos), "--model", str(model), "--out", str(out))
    assert code == 3 and "0 images labelled (43 already done)" in again
    assert len(pd.read_csv(out)) == 40
    for suffix in ("jsonl", "parquet"):
        other = tmp_path / f"labels.{suffix}"
        in_process(capsys, monkeypatch, "label", str(photos), "--model", str(model), "--out", str(other))
        table = pd.read_json(other, lines=True) if suffix == "jsonl" else pd.read_parquet(other)
        assert len(table) == 40 and list(table["fine"]) == list(rows["fine"])  # every format: the same labels
    p = float(rows["fine_prob"].median())
    unsure = tmp_path / "unsure.csv"
    in_process(capsys, monkeypatch, "label", str(photos), "--model", str(model), "--out", str(unsure), "--min-prob",
               str(p))  # fmt: skip
    kept = pd.read_csv(unsure, keep_default_na=False).set_index("path").loc[rows["path"]]  # every row is still there
    low_fine, low_coarse = rows["fine_prob"].to_numpy() < p, rows["coarse_prob"].to_numpy() < p
    assert (kept["fine"].to_numpy()[low_fine | low_coarse] == "").all() and low_fine.any()
    assert list(kept["fine"].to_numpy()[~(low_fine | low_coarse)]) == list(rows["fine"][~(low_fine | low_coarse)])
    assert (kept["coarse"].to_numpy()[low_fine & ~low_coarse] != "").all()  # fine withheld, coarse kept
    assert set(kept["abstained"]) <= {"", "fine", "coarse,fine"} and (kept["abstained"] != "").sum() >= low_fine.sum()

    def views(**kwargs) -> tuple[bool, int]:
        return TorchClassifiers.load([str(model)], torch.device("cpu"), **kwargs).views[0]

    assert views() == views(views="model") == (True, 1)  # evaluation: the model's own views
    assert views(views="") == views(views="one") == (False, 0)  # labelling: one view, unless label.views=model
    assert views(views="model", tta_shift=0) == (True, 0)  # --views model --tta-shift 0
    with pytest.raises(UserError, match="tta_shift=-1: a shift is 0 or more pixels"):  # before any image is read
        TorchClassifiers.load([str(model)], torch.device("cpu"), tta_shift=-1)


@pytest.mark.slow
def test_ensemble_probabilities_are_the_mean_of_each_models(labeller, other_fine, tmp_path, capsys, monkeypatch):
    """Two models trained on other seeds, labelled alone and together: every probability the ensemble reports is
    the mean of the two models' (soft voting), to the 4 places the file keeps."""
    model, photos = labeller
    tables = {}
    for name, models in (("a", [model]), ("b", [other_fine]), ("ab", [model, other_fine])):
        out = tmp_path / f"{name}.jsonl"
        chosen = [arg for m in models for arg in ("--model", str(m))]
        assert in_process(capsys, monkeypatch, "label", str(photos), *chosen, "--out", str(out))[0] == 3  # bad files
        tables[name] = {row["path"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert len(tables["ab"]) == 40 and tables["ab"].keys() == tables["a"].keys() == tables["b"].keys()
    compared, apart = 0, 0.0
    for path, row in tables["ab"].items():
        for head in ("coarse", "fine"):
            a, b, ab = ({e["label"]: e["prob"] for e in top_list(t[path][f"{head}_top5"])} for t in tables.values())
            assert row[head] == next(iter(ab))  # the label is the likeliest of the averaged distribution
            for label in ab.keys() & a.keys() & b.keys():
                assert ab[label] == pytest.approx((a[label] + b[label]) / 2, abs=1.5e-4), (path, head, label)
                compared += 1
            apart = max(apart, *(abs(a[k] - b[k]) for k in a.keys() & b.keys()))
    assert compared >= 80 and apart > 0.01  # each row's likeliest labels compared; the two models do differ


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates_or_gaps(labeller, tmp_path, capsys, monkeypatch):
    model, _ = labeller
    photos = make_image_folder(tmp_path / "many", ["x", "y"], 150)
    reference = tmp_path / "reference.jsonl"
    label = ("label", str(photos), "--model", str(model), "--workers", "0")
    in_process(capsys, monkeypatch, *label, "--out", str(reference))
    out = tmp_path / "killed.jsonl"
    cmd = [sys.executable, "-m", "hierarchy", "label", str(photos), "--model", str(model), "--out", str(out)]
    cmd += ["--chunk", "4", "--workers", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stderr=subprocess.DEVNULL)
    parts = tmp_path / "killed.jsonl.parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("part-*.jsonl"))) < 2:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() and len(list(parts.glob("part-*.jsonl"))) >= 2  # killed mid-run, chunks on disk
    in_process(capsys, monkeypatch, "label", str(photos), "--model", str(model), "--out", str(out))  # resumes
    got = [json.loads(line) for line in out.read_text().splitlines()]
    want = [json.loads(line) for line in reference.read_text().splitlines()]
    key = lambda r: r["path"]  # noqa: E731
    assert sorted(r["path"] for r in got) == sorted(r["path"] for r in want)  # each image once, none missing
    assert {key(r): r["fine"] for r in got} == {key(r): r["fine"] for r in want}


@pytest.mark.slow
def test_torchrun_two_ranks_label_disjoint_shares(labeller, tmp_path):
    model, photos = labeller
    out = tmp_path / "ranks.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "hierarchy", "label",
         str(photos), "--model", str(model), "--out", str(out), "--device", "cpu", "--workers", "0"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0, proc.stderr[-3000:]  # rank 0 exits 3 (unreadable files); torchrun reports it
    assert "files could not be read" in proc.stderr
    rows = pd.read_csv(out)
    assert len(rows) == 40 and rows["path"].nunique() == 40
    assert len(pd.read_csv(tmp_path / "ranks.errors.csv")) == 3


@pytest.mark.slow
def test_label_real_photos_by_garment_region(photo_folder, tmp_path, capsys, monkeypatch):
    common = ["data.format=folder", f"data.root={photo_folder}", "train.epochs=1", "train.batch_size=8"]
    common += ["data.image_size=32", "data.taxonomy=garment", "data.crop=pose-garments"]
    common += [f"detect.cache_dir={tmp_path / 'cache'}"]
    common += ["--run-dir", str(tmp_path / "m")]
    assert in_process(capsys, monkeypatch, "run", "--stage", "coarse", *common)[0] == 0
    out = tmp_path / "garments.csv"
    assert in_process(capsys, monkeypatch, "label", str(photo_folder), "--model", str(tmp_path / "m"), "--out",
                      str(out))[0] == 0  # fmt: skip
    rows = pd.read_csv(out)
    bus = rows[rows["path"] == "street/0.jpg"]
    assert set(bus["kind"]) == {"hat", "top", "bottom", "shoe"} and (bus["person"] >= 0).all()
    assert list(rows[rows["path"] == "street/nobody.jpg"]["kind"]) == ["image"]
    assert set(rows["coarse"]) <= {"hat", "outer", "top", "bottom", "onepiece", "shoe", "bag"}
    Image.open(photo_folder / "street" / "0.jpg")  # inputs untouched


def test_label_flags_are_the_label_settings(capsys, tmp_path):
    """Each flag of `hierarchy label` sets one label.* key: same default, same help, same check; the flag wins over
    what the model was trained with (data.crop, model.tta_shift), which only fill in when the flag is left out."""
    from hierarchy.cli import LABEL_FLAGS, build_parser, main
    from hierarchy.config import LabelConfig, label_options, setting_help

    with pytest.raises(SystemExit):
        build_parser().parse_args(["label", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for flag, key, _ in LABEL_FLAGS:
        assert f"{flag} " in shown and " ".join(setting_help(f"label.{key}").split()) in shown, flag
    assert label_options({}) == LabelConfig()  # no flag given: the settings' own defaults
    assert label_options({"tta_shift": 0, "crop": "image"}).tta_shift == 0
    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(photo)
    code = main(["label", str(photo), "--model", str(tmp_path), "--out", str(tmp_path / "o.csv"), "--batch-size", "0"])
    assert code == 2 and "label.batch_size=0 is out of range" in capsys.readouterr().err
    code = main(["label", str(photo), "--model", str(tmp_path), "--out", str(tmp_path / "o.csv"), "--crop", "face"])
    assert code == 2 and "label.crop='face' is not one of" in capsys.readouterr().err
    for where in ([str(photo), "detect.cnf=0.3", "--model"], [str(photo), "--model"]):  # a setting before or after
        args = ["label", *where, str(tmp_path), "--out", str(tmp_path / "o.csv")]
        code = main(args if "detect.cnf=0.3" in where else [*args, "detect.cnf=0.3"])
        assert code == 2 and "unknown config key 'detect.cnf'" in capsys.readouterr().err
