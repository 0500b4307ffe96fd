"""The label row: the one schema of what ``hierarchy label`` writes and what ``hierarchy serve``, a resumed run and
the corrections read. Every writer and reader of labels files goes through this module.

One row per crop, in this order:

- ``root``, ``path``: the folder (or ``.txt`` list, or "" for a file named directly) given to ``hierarchy label``
  and the photo's path under it;
- ``sha256``: the photo file's content hash; ``kind``: ``image`` (the whole photo) or the stage-one region
  (``person``, ``hat``, ``top`` …); ``person``: the person a region belongs to (-1 for people and whole photos);
- ``x1``, ``y1``, ``x2``, ``y2``: the crop's box in the photo's full-size pixels;
- per head ``h`` (``coarse``, ``fine``, attribute heads): ``h`` the label ("" where it abstained), ``h_prob`` its
  probability, ``h_top5`` the five likeliest classes, likeliest first;
- ``fine_labels`` (multi-label models: every fine class at or above its threshold, ``|``-separated) and
  ``abstained`` (with ``label.min_prob``: the heads whose label was withheld), when they apply.

A top-k value is, in memory and in JSONL, a list of ``{"label": name, "prob": p}``; in Parquet a typed column
``list<struct<label: string, prob: float>>``; in CSV the readable ``name:0.973|name:0.027``. Files written when
JSONL and Parquet held that string too still read (``top_list`` takes every form).

Keys: an *image key* (``root``, ``path``) says which photos a run has finished; a *crop key* (``root``, ``path``
and the box at 0.1 px, empty for a whole photo) names a crop across files, so a reviewer's correction follows
the crop into a re-labelled file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from hierarchy.errors import UserError
from hierarchy.taxonomy import Taxonomy

TOP_K = 5
FORMATS = (".csv", ".jsonl", ".parquet")
BOX = ("x1", "y1", "x2", "y2")
PHOTO_COLUMNS = ("root", "path", "sha256", "kind", "person", *BOX)
ERROR_COLUMNS = ("root", "path", "error")
TOP_SUFFIX = f"_top{TOP_K}"


def top_column(head: str) -> str:
    return f"{head}{TOP_SUFFIX}"


def image_key(record: dict) -> str:
    """Which photo a row or an error belongs to: root and path."""
    return f"{record['root']}\t{record['path']}"


def crop_keys(frame: pd.DataFrame, roots: pd.Series) -> list[str]:
    """Every row's crop key, ``root\\tpath\\tx1,y1,x2,y2`` (box to 0.1 px; "" for a whole photo), built column-wise:
    row by row, a 100,000-row file would take seconds to open."""
    box = frame["x1"].astype(float).map("{:.1f}".format)
    for c in BOX[1:]:
        box = box + "," + frame[c].astype(float).map("{:.1f}".format)
    box = box.where(frame["kind"] != "image", "")
    return (roots + "\t" + frame["path"].astype(str) + "\t" + box).tolist()


# --- building rows -------------------------------------------------------------------------------------------


def top_entries(probs: dict[str, torch.Tensor], i: int, taxonomy: Taxonomy, k: int = TOP_K) -> dict[str, list[dict]]:
    """Row ``i``'s k likeliest classes per head, likeliest first: ``{head: [{"label", "prob"}, …]}``."""
    out = {}
    for head, p in probs.items():
        names = taxonomy.names(head)
        top = p[i].topk(min(k, len(names)))
        out[head] = [{"label": names[int(c)], "prob": float(v)} for v, c in zip(*top)]
    return out


def head_columns(probs: dict[str, torch.Tensor], i: int, taxonomy: Taxonomy, thresholds=None) -> dict[str, Any]:
    """Row ``i``'s columns of every head: ``h``, ``h_prob`` and ``h_top5``; multi-label models (``thresholds``
    given) add ``fine_labels``."""
    row: dict[str, Any] = {}
    if thresholds is not None:
        row["fine_labels"] = "|".join(
            n for n, p, t in zip(taxonomy.fine, probs["fine"][i].tolist(), thresholds) if p >= t
        )
    for head, top in top_entries(probs, i, taxonomy).items():
        row[head] = top[0]["label"]
        row[f"{head}_prob"] = round(top[0]["prob"], 4)
        row[top_column(head)] = top
    return row


def head_answers(row: dict[str, Any], heads: list[str]) -> dict[str, dict]:
    """The heads of a row as the web pages show them: ``{head: {"label", "prob", "top": [{"label", "prob"}]}}``."""
    return {
        h: {"label": row[h], "prob": round(float(row[f"{h}_prob"]), 4), "top": top_list(row.get(top_column(h)))}
        for h in heads
    }


# --- the top-k codec -----------------------------------------------------------------------------------------


def top_list(value: Any) -> list[dict]:
    """A stored top-k value in any form (list of dicts, an Arrow/NumPy array of them, or the ``name:p|…`` string)
    as ``[{"label", "prob"}, …]`` with probabilities to 4 places."""
    if isinstance(value, str):
        if not value:
            return []
        pairs = (item.rsplit(":", 1) for item in value.split("|"))
        return [{"label": name, "prob": float(p)} for name, p in pairs]
    if value is None or (isinstance(value, float) and value != value):  # missing, or NaN from pandas
        return []
    return [{"label": str(e["label"]), "prob": round(float(e["prob"]), 4)} for e in value]


def top_text(value: Any) -> str:
    """A top-k value as CSV holds it: ``name:0.973|name:0.027``."""
    if isinstance(value, str):
        return value
    return "|".join(f"{e['label']}:{float(e['prob']):.3f}" for e in value or [])


def for_csv(row: dict[str, Any]) -> dict[str, Any]:
    return {k: top_text(v) if k.endswith(TOP_SUFFIX) else v for k, v in row.items()}


def for_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: top_list(v) if k.endswith(TOP_SUFFIX) else v for k, v in row.items()}


def arrow_schema(columns: list[str]):
    """Typed Parquet columns: counts as integers, boxes and probabilities as floats, top-k as lists of structs."""
    import pyarrow as pa

    top = pa.list_(pa.struct([("label", pa.string()), ("prob", pa.float32())]))

    def kind(name: str):
        if name.endswith(TOP_SUFFIX):
            return top
        if name == "person":
            return pa.int64()
        if name in BOX or name.endswith("_prob"):
            return pa.float64()
        return pa.string()

    return pa.schema([(c, kind(c)) for c in columns])


# --- files ---------------------------------------------------------------------------------------------------


def check_format(path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"{path}: a labels file is .csv, .jsonl or .parquet")


def read_rows(path: Path) -> Iterator[dict]:
    """The rows of a labels file, streamed, top-k values as lists (CSV cells stay text otherwise)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from (for_json(row) for row in batch.to_pylist())
    elif suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            yield from (for_json(json.loads(line)) for line in f if line.strip())
    else:
        for chunk in pd.read_csv(path, chunksize=4096, dtype=str, keep_default_na=False):
            yield from (for_json(row) for row in chunk.to_dict("records"))


def read_frame(path: Path) -> pd.DataFrame:
    """A whole labels file as a table for the review (top-k cells are decoded row by row with ``top_list``)."""
    if not path.is_file():
        raise UserError(f"labels file {path} not found: give the --out file of `hierarchy label`")
    check_format(path)
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # a truncated parquet, a CSV that is not one …
        raise UserError(f"cannot read labels file {path}: {exc}") from None


def write_rows(rows: Iterator[dict], f, suffix: str) -> int:
    """Stream rows into the open file ``f`` (binary for Parquet) in the format of ``suffix``; returns the count."""
    count = 0
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        for batch in batched(rows, 4096):
            schema = writer.schema if writer else arrow_schema(list(batch[0]))
            table = pa.Table.from_pylist([for_json(r) for r in batch], schema=schema)
            writer = writer or pq.ParquetWriter(f, schema)
            writer.write_table(table)
            count += len(batch)
        writer = writer or pq.ParquetWriter(f, pa.schema([]))  # no rows: an empty file that still opens
        writer.close()
        return count
    writer = None
    for row in rows:
        count += 1
        if suffix == ".jsonl":
            f.write(json.dumps(for_json(row), ensure_ascii=False) + "\n")
            continue
        if writer is None:
            writer = csv.DictWriter(f, list(row))
            writer.writeheader()
        writer.writerow(for_csv(row))
    return count


def batched(rows: Iterator[dict], size: int) -> Iterator[list[dict]]:
    """Lists of up to ``size`` rows (itertools.batched arrives in Python 3.12)."""
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
