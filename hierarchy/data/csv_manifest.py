"""CSV manifests: one row per image (or per box) with ``path``, a label column, optional boxes and split.

Columns: ``path`` (absolute, or relative to the CSV's folder); ``data.label_column`` (default ``label``:
a fine or coarse class name or alias); optional ``x1,y1,x2,y2`` box in pixels; optional
``data.split_column`` (default ``split``) with train / val / test. Without a split column every row is
training data and validation is carved out of it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hierarchy.data.images import ImageFiles, label_ids
from hierarchy.errors import NoTestSplit, UserError
from hierarchy.taxonomy import Taxonomy

BOX_COLUMNS = ["x1", "y1", "x2", "y2"]


def read_manifest(path: Path, label_column: str) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"CSV manifest {path} not found. Set data.root=FILE.csv")
    frame = pd.read_csv(path, dtype={label_column: str})
    missing = {"path", label_column} - set(frame.columns)
    if missing:
        raise UserError(f"{path} lacks column(s) {sorted(missing)}; it has {list(frame.columns)}")
    return frame


def load(
    root: str, split: str, taxonomy: Taxonomy, image_size: int, label_column: str = "label", split_column: str = "split"
) -> ImageFiles | None:
    """Rows of one split; None for val/test when the manifest has no split column."""
    path = Path(root).expanduser()
    frame = read_manifest(path, label_column)
    if split_column in frame.columns:
        frame = frame[frame[split_column].astype(str).str.lower() == split]
        if split == "train" and frame.empty:
            raise UserError(f"{path}: no rows with {split_column}=train")
    elif split != "train":
        if split == "test":
            raise NoTestSplit(f"{path} has no '{split_column}' column: mark held-out rows {split_column}=test")
        return None
    if frame.empty and split == "test":
        raise NoTestSplit(f"{path} has no rows with {split_column}=test: mark held-out rows so")
    if frame.empty:
        return None if split == "val" else ImageFiles([], [], [], image_size)
    ids = []
    for row_number, label in zip(frame.index, frame[label_column]):
        try:
            ids.append(label_ids(taxonomy, label))
        except UserError as exc:
            raise UserError(f"{path} row {row_number + 2}: {exc}") from None
    paths = [str(p if Path(p).is_absolute() else path.parent / p) for p in frame["path"]]
    boxes = None
    if set(BOX_COLUMNS) <= set(frame.columns):
        boxes = [None if any(pd.isna(v) for v in row) else tuple(map(float, row)) for row in frame[BOX_COLUMNS].values]
    return ImageFiles(paths, [f for f, _ in ids], [c for _, c in ids], image_size, boxes)
