"""The label row (hierarchy/infer/rows.py): the top-k codec, typed Parquet, JSONL arrays, CSV text; and labels
files written before the typed top-k (a ``name:p|…`` string in every format) still open in `serve` and resume
`label`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import hierarchy_here, in_process, make_image_folder
from fastapi.testclient import TestClient

from hierarchy.infer.rows import read_rows, top_list, top_text, write_rows
from hierarchy.serve import build_app

TOP = [{"label": "t-shirt", "prob": 0.88123}, {"label": "a:b", "prob": 0.11877}]
ROW = {"root": "photos/", "path": "a/1.jpg", "sha256": "9f2c", "kind": "image", "person": -1, "x1": 0.0, "y1": 0.0,
       "x2": 80.0, "y2": 120.0, "fine": "t-shirt", "fine_prob": 0.8812, "fine_top5": TOP}  # fmt: skip


def test_top_k_codec():
    assert top_text(TOP) == "t-shirt:0.881|a:b:0.119"  # CSV: readable, 3 places
    assert top_list("t-shirt:0.881|a:b:0.119") == [{"label": "t-shirt", "prob": 0.881}, {"label": "a:b", "prob": 0.119}]
    as_arrow_gives = np.array(TOP, dtype=object)  # pandas' cell of a Parquet list<struct> column
    assert top_list(as_arrow_gives) == [{"label": "t-shirt", "prob": 0.8812}, {"label": "a:b", "prob": 0.1188}]
    assert top_list("") == top_list(None) == top_list(float("nan")) == []
    assert top_text(top_list(top_text(TOP))) == top_text(TOP)  # a resumed CSV writes its old rows unchanged


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_each_format_writes_its_own_top_k_and_reads_back_lists(tmp_path, suffix):
    path = tmp_path / f"labels{suffix}"
    with open(path, "wb" if suffix == ".parquet" else "w", encoding=None if suffix == ".parquet" else "utf-8") as f:
        assert write_rows(iter([ROW, {**ROW, "path": "a/2.jpg"}]), f, suffix) == 2
    if suffix == ".parquet":
        schema = pq.read_schema(path)
        assert schema.field("fine_top5").type == pa.list_(pa.struct([("label", pa.string()), ("prob", pa.float32())]))
        assert schema.field("person").type == pa.int64() and schema.field("fine_prob").type == pa.float64()
    elif suffix == ".jsonl":
        assert json.loads(path.read_text().splitlines()[0])["fine_top5"] == [
            {"label": "t-shirt", "prob": 0.8812}, {"label": "a:b", "prob": 0.1188}]  # fmt: skip
    else:
        assert pd.read_csv(path)["fine_top5"][0] == "t-shirt:0.881|a:b:0.119"
    rows = list(read_rows(path))
    assert [r["path"] for r in rows] == ["a/1.jpg", "a/2.jpg"]
    assert [e["label"] for e in rows[0]["fine_top5"]] == ["t-shirt", "a:b"]


def old_format(frame: pd.DataFrame, path, suffix: str) -> None:
    """Write ``frame`` as labels files were written before the typed top-k: the string in every format."""
    frame = frame.copy()
    for column in [c for c in frame.columns if c.endswith("_top5")]:
        frame[column] = frame[column].map(lambda v: v if isinstance(v, str) else top_text(list(v)))
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(path, index=False)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_old_labels_files_open_in_serve_and_resume(tmp_path, folder_runs, suffix, capsys, monkeypatch):
    photos = make_image_folder(tmp_path / "photos", ["x", "y"], 4)
    model = folder_runs["fine"]
    new = tmp_path / "new.parquet"
    hierarchy_here("label", str(photos), "--model", str(model), "--out", str(new))
    full = pd.read_parquet(new).sort_values("path").reset_index(drop=True)
    old = tmp_path / f"old{suffix}"
    old_format(full.iloc[:5], old, suffix)  # a run that finished 5 of the 8 photos with the old code

    with TestClient(build_app([str(model)], labels=str(old))) as client:
        page = client.get("/api/rows", params={"head": "fine", "sort": "path"}).json()
    assert page["total"] == 5
    for shown, want in zip(page["rows"], full.iloc[:5].itertuples()):
        top = shown["heads"]["fine"]["top"]
        assert shown["path"] == want.path and top[0]["label"] == want.fine and len(top) == len(want.fine_top5)

    code, out, _ = in_process(capsys, monkeypatch, "label", str(photos), "--model", str(model), "--out", str(old))
    assert code == 0 and "3 images labelled (5 already done)" in out
    rows = list(read_rows(old))
    assert sorted(r["path"] for r in rows) == list(full["path"])  # no gap, no duplicate
    for row in rows:
        want = full.set_index("path").loc[row["path"]]
        assert row["fine"] == want["fine"]
        assert [e["label"] for e in row["fine_top5"]] == [e["label"] for e in want["fine_top5"]]
    if suffix == ".parquet":  # the merged file is typed, old rows included
        assert pa.types.is_list(pq.read_schema(old).field("fine_top5").type)
