"""`hierarchy export`: the ONNX model gives what the torch model gives (probabilities within 1e-4, the same
labels), `hierarchy label --model model.onnx` labels like the run folder, and the pretrained lite0 recipe exports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import class_pattern, hierarchy_here, in_process, make_image_folder, refused
from PIL import Image

from hierarchy.data.transforms import letterbox
from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.infer.onnx import OnnxClassifier

pytestmark = pytest.mark.slow  # exports the shared trained runs and trains a pretrained lite0 model


def pattern_batch(n: int, size: int) -> torch.Tensor:
    """``n`` letterboxed images of the fixture's learnable patterns, all ten classes."""
    rng = np.random.default_rng(3)
    return torch.stack([letterbox(Image.fromarray(class_pattern(k % 10, rng)).convert("RGB"), size) for k in range(n)])


@pytest.fixture(scope="module")
def exported(coarse_and_fine, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    hierarchy_here("export", "--model", str(coarse_and_fine / "fine"), "--out", str(out), "--views", "model")
    return coarse_and_fine / "fine", out / "fine.onnx"


def test_onnx_probabilities_match_torch_on_256_images(exported):
    run, onnx_path = exported
    meta = json.loads(onnx_path.with_suffix(".json").read_text())
    assert sorted(p.name for p in onnx_path.parent.iterdir()) == ["fine.json", "fine.onnx"]  # weights inside
    assert meta["heads"] == ["coarse", "fine"] and meta["input"]["shape"] == ["batch", 3, 32, 32]
    assert set(meta["temperatures"]) == {"coarse", "fine"} and meta["views"] == {
        "tta_flip": True, "tta_shift": 1, "applied": "inside the graph"}  # fmt: skip
    torch_model = TorchClassifiers.load([str(run)], torch.device("cpu"), views="model")
    x = pattern_batch(256, 32)
    want = torch_model.probabilities([x])
    got = OnnxClassifier(onnx_path).probabilities([x])
    for head in ("coarse", "fine"):
        assert got[head].shape == want[head].shape
        assert float((got[head] - want[head]).abs().max()) < 1e-4
        assert torch.equal(got[head].argmax(1), want[head].argmax(1))
    one = OnnxClassifier(onnx_path).probabilities([x[:1]])  # any batch size
    assert float((one["fine"] - want["fine"][:1]).abs().max()) < 1e-4


def test_label_with_the_onnx_model(exported, tmp_path, capsys, monkeypatch):
    run, onnx_path = exported
    photos = make_image_folder(tmp_path / "photos", ["a", "b"], 6)
    code, out, _ = in_process(capsys, monkeypatch, "label", str(photos), "--model", str(onnx_path), "--out",
                              str(tmp_path / "onnx.csv"))  # fmt: skip
    assert code == 0 and "12 images labelled" in out
    rows = pd.read_csv(tmp_path / "onnx.csv")
    torch_model = TorchClassifiers.load([str(run)], torch.device("cpu"), views="model")  # as exported
    images = [Image.open(photos / p).convert("RGB") for p in rows["path"]]
    want = torch_model.crops(images, [None] * len(images))["fine"]
    assert list(rows["fine"]) == [torch_model.taxonomy.fine[int(k)] for k in want.argmax(1)]
    assert np.abs(rows["fine_prob"].to_numpy() - want.max(1).values.numpy()).max() < 1e-4 + 5e-5  # 4 decimals
    err = refused(capsys, monkeypatch, "label", str(photos), "--model", str(onnx_path), "--model", str(run),
                  "--out", str(tmp_path / "x.csv"))  # fmt: skip
    assert "labels alone" in err
    (tmp_path / "lonely.onnx").write_bytes(onnx_path.read_bytes())
    err = refused(capsys, monkeypatch, "label", str(photos), "--model", str(tmp_path / "lonely.onnx"), "--out",
                  str(tmp_path / "y.csv"))  # fmt: skip
    assert "needs its lonely.json" in err


def test_pretrained_lite0_recipe_exports(fmnist_root, tmp_path, capsys, monkeypatch):
    lite0 = ["model.backbone=tf_efficientnet_lite0", "model.pretrained=true", "model.channels=[]",
             "model.stem_pool=true", "model.tta_shift=0", "data.image_size=64", "train.epochs=1",
             "train.batch_size=32", f"data.root={fmnist_root}", "data.val_fraction=0.2"]  # fmt: skip
    coarse = tmp_path / "coarse"
    assert in_process(capsys, monkeypatch, "run", "--stage", "coarse", "--run-dir", str(coarse), *lite0)[0] == 0
    assert in_process(capsys, monkeypatch, "export", "--model", str(coarse), "--out", str(tmp_path / "out"))[0] == 0
    x = pattern_batch(16, 64)
    torch_model = TorchClassifiers.load([str(tmp_path / "coarse")], torch.device("cpu"), views="")  # as exported
    want = torch_model.probabilities([x])["coarse"]
    got = OnnxClassifier(tmp_path / "out" / "coarse.onnx").probabilities([x])["coarse"]
    assert float((got - want).abs().max()) < 1e-4 and torch.equal(got.argmax(1), want.argmax(1))
