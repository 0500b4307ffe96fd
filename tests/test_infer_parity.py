"""One model, one answer: `label` (torch), `label` (ONNX), `serve` and `eval` give the same labels and probabilities
(within 1e-4) when they use the same test-time views and precision, and each command's default is the same for
`label`, its export and `serve`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import hierarchy_here, make_image_folder
from fastapi.testclient import TestClient
from PIL import Image

from hierarchy.infer.classifier import TorchClassifiers
from hierarchy.infer.onnx import OnnxClassifier
from hierarchy.serve import build_app

pytestmark = pytest.mark.slow  # trains the shared folder runs, two exports and five labelling runs
HEADS = ("coarse", "fine")
TOLERANCE = 1e-4 + 1e-6  # files hold probabilities to 4 places


@pytest.fixture(scope="module")
def setup(tmp_path_factory, folder_runs) -> dict:
    """The tiny fine run (its evaluation views: mirror and 1-px shifts), held-out photos of its classes in a
    ``test/`` folder, and its exports with the default views and with ``--views model``."""
    base = tmp_path_factory.mktemp("parity")
    make_image_folder(base / "data" / "train", ["tshirt_top", "Trouser", "Bag"], 2)  # split folders: train/ test/
    photos = make_image_folder(base / "data" / "test", ["tshirt_top", "Trouser", "Bag"], 8)
    run = folder_runs["fine"]
    hierarchy_here("export", "--model", str(run), "--out", str(base / "default"))
    hierarchy_here("export", "--model", str(run), "--out", str(base / "model"), "--views", "model")
    return {"base": base, "run": run, "photos": photos,
            "onnx": base / "default" / "fine.onnx", "onnx_model_views": base / "model" / "fine.onnx"}  # fmt: skip


def labelled(photos: Path, model: Path, out: Path, *flags: str) -> pd.DataFrame:
    hierarchy_here("label", str(photos), "--model", str(model), "--out", str(out), *flags)
    return pd.read_csv(out).set_index("path").sort_index()


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.index) == list(b.index) and len(a) == 24
    for head in HEADS:
        assert list(a[head]) == list(b[head])
        assert (a[f"{head}_prob"] - b[f"{head}_prob"]).abs().max() <= TOLERANCE


def test_label_torch_and_onnx_agree_by_default(setup, tmp_path):
    photos, run = setup["photos"], setup["run"]
    torch_rows = labelled(photos, run, tmp_path / "torch.csv")
    onnx_rows = labelled(photos, setup["onnx"], tmp_path / "onnx.csv")
    assert_same(torch_rows, onnx_rows)
    # unrounded: the two implementations of one model differ by float noise only
    images = [Image.open(photos / p).convert("RGB") for p in torch_rows.index]
    want = TorchClassifiers.load([str(run)], torch.device("cpu"), views="").crops(images, [None] * len(images))
    got = OnnxClassifier(setup["onnx"]).crops(images, [None] * len(images))
    for head in HEADS:
        assert float((want[head] - got[head]).abs().max()) < 1e-4
        assert torch.equal(want[head].argmax(1), got[head].argmax(1))
    # the default views are one view: the model's evaluation views (mirror, shifts) answer differently
    views = TorchClassifiers.load([str(run)], torch.device("cpu"), views="model").crops(images, [None] * len(images))
    assert float((views["fine"] - want["fine"]).abs().max()) > 1e-3


def test_serve_answers_as_label_does(setup, tmp_path):
    photos, run = setup["photos"], setup["run"]
    rows = labelled(photos, run, tmp_path / "torch.csv")
    with TestClient(build_app([str(run)], db=str(tmp_path / "c.sqlite"))) as client:
        for path, row in rows.iterrows():
            answer = client.post("/api/predict", files={"file": (Path(path).name, (photos / path).read_bytes())})
            (region,) = answer.json()["regions"]
            for head in HEADS:
                assert region["heads"][head]["label"] == row[head]
                assert abs(region["heads"][head]["prob"] - row[f"{head}_prob"]) <= TOLERANCE


def test_eval_reports_what_label_gives_with_its_views(setup, tmp_path):
    photos, run = setup["photos"], setup["run"]
    report = tmp_path / "eval"
    hierarchy_here("eval", "--model", str(run), f"data.root={setup['base'] / 'data'}", "--out", str(report))
    evaluated = pd.read_csv(report / "predictions_test.csv")
    # a source is the file and what was cut from it: "…/Bag/0.png#image" (the whole photo)
    evaluated.index = [str(Path(s.rsplit("#", 1)[0]).relative_to(photos)) for s in evaluated["source"]]
    evaluated = evaluated.sort_index()
    model_views = labelled(photos, run, tmp_path / "model.csv", "--views", "model")
    assert_same(model_views, labelled(photos, setup["onnx_model_views"], tmp_path / "onnx_model.csv"))
    assert list(evaluated.index) == list(model_views.index)
    for head in HEADS:
        assert list(evaluated[f"{head}_pred"]) == list(model_views[head])
        assert (evaluated[f"{head}_prob"] - model_views[f"{head}_prob"]).abs().max() <= TOLERANCE
