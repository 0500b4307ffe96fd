"""Fashion-How (ETRI) sub-task 1: emotional attributes of one garment per row.

A folder (``data.root``) with a training CSV (its name holds ``train``) and a held-out one (``val``,
``validation`` or ``test``), columns ``image_name, BBox_xmin, BBox_ymin, BBox_xmax, BBox_ymax`` and one
integer column per attribute head (``Daily, Gender, Embellishment``). Images are found by ``image_name``
in the root or in a sub-folder named like the split. Class counts are read from the data (they changed
between seasons); class names come from the taxonomy's ``attributes`` when its counts match, else 0..n-1.

Dirt is counted and reported once: a row whose image is missing, or with no usable label at all, is skipped;
an empty box uses the whole image; a missing or negative label leaves that head unknown (-1) for the row,
which still trains the heads it has.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pandas as pd

from hierarchy.data.images import ImageFiles
from hierarchy.errors import NoTestSplit, UserError
from hierarchy.taxonomy import Taxonomy

log = logging.getLogger(__name__)
BOX_COLUMNS = ["BBox_xmin", "BBox_ymin", "BBox_xmax", "BBox_ymax"]
HEAD_COLUMNS = {"daily": "Daily", "gender": "Gender", "embellishment": "Embellishment"}
SPLIT_WORDS = {"train": ("train",), "test": ("validation", "valid", "val", "test")}
HOW_TO_GET = "Fashion-How data comes from ETRI (https://fashion-how.org) after registration; set data.root=FOLDER"


def find_csv(root: Path, split: str) -> Path | None:
    """The CSV of a split: the one file in ``root`` whose name holds one of the split's words."""
    if not root.is_dir():
        raise UserError(f"Fashion-How folder {root} not found. {HOW_TO_GET}")
    words = SPLIT_WORDS[split]
    found = sorted(p for p in root.glob("*.csv") if any(w in p.stem.lower() for w in words))
    if split == "test":
        found = [p for p in found if "train" not in p.stem.lower()]
    if len(found) > 1:
        raise UserError(f"{root} holds several {split} CSVs {[p.name for p in found]}: keep one per split")
    return found[0] if found else None


def read_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = {"image_name", *HEAD_COLUMNS.values()} - set(frame.columns)
    if missing:
        raise UserError(
            f"{path} lacks column(s) {sorted(missing)}; a Fashion-How CSV has image_name, "
            f"{', '.join(BOX_COLUMNS)}, {', '.join(HEAD_COLUMNS.values())}. It has {list(frame.columns)}"
        )
    return frame


def class_counts(root: str) -> dict[str, int]:
    """Classes per head = the largest label in any split's CSV + 1 (never hard-coded: seasons differ)."""
    base = Path(root).expanduser()
    frames = [read_csv(p) for p in (find_csv(base, "train"), find_csv(base, "test")) if p is not None]
    if not frames:
        raise UserError(f"no Fashion-How training CSV (a *train*.csv) in {base}. {HOW_TO_GET}")
    counts = {}
    for head, column in HEAD_COLUMNS.items():
        values = pd.concat([pd.to_numeric(f[column], errors="coerce") for f in frames]).dropna()
        if values.empty or values.max() < 1:
            raise UserError(f"{base}: column {column} holds no usable labels (integers 0..n-1)")
        counts[head] = int(values.max()) + 1
    return counts


def attribute_names(root: str, taxonomy: Taxonomy) -> dict[str, tuple[str, ...]]:
    """Class names per head: the taxonomy's when it has that many, else ``"0" … "n-1"``."""
    names = {}
    for head, n in class_counts(root).items():
        given = taxonomy.attributes.get(head, ())
        if given and len(given) != n:
            log.warning(
                "%s: the data has %d %s classes, the taxonomy names %d: numbers used", root, n, head, len(given)
            )
        names[head] = given if len(given) == n else tuple(str(i) for i in range(n))
    return names


def image_folders(root: Path, split: str) -> list[Path]:
    """Where images are looked up: the root, then sub-folders named like the split (``train/``, ``val/`` …)."""
    words = SPLIT_WORDS[split]
    return [root] + [d for d in sorted(root.iterdir()) if d.is_dir() and any(w in d.name.lower() for w in words)]


def load(root: str, split: str, taxonomy: Taxonomy, image_size: int) -> ImageFiles | None:
    """Garment crops of one split with their attribute labels; None for ``val`` (carved from train)."""
    if split == "val":
        return None
    base = Path(root).expanduser()
    path = find_csv(base, split)
    if path is None and split == "test":
        raise NoTestSplit(f"no Fashion-How held-out CSV (*val*.csv or *test*.csv) in {base}: add one")
    if path is None:
        raise UserError(f"no Fashion-How training (*train*.csv) CSV in {base}. {HOW_TO_GET}")
    if not taxonomy.attributes:
        raise UserError("data.format=fashionhow needs attribute heads: run it through the fine stage")
    frame = read_csv(path)
    dirt: Counter = Counter()
    folders = image_folders(base, split)
    paths, boxes, labels = [], [], {head: [] for head in HEAD_COLUMNS}
    for row in frame.itertuples(index=False):
        row = row._asdict()
        name = str(row["image_name"]).strip()
        image = next((f / name for f in folders if (f / name).is_file()), None)
        if image is None:
            dirt["image file missing"] += 1
            continue
        ids = {h: pd.to_numeric(row[c], errors="coerce") for h, c in HEAD_COLUMNS.items()}
        ids = {h: int(v) if 0 <= v < len(taxonomy.names(h)) and v == int(v) else -1 for h, v in ids.items()}
        if all(v < 0 for v in ids.values()):  # NaN fails every comparison, so it lands here as -1 too
            dirt["every label missing or out of range"] += 1
            continue
        if any(v < 0 for v in ids.values()):  # the known heads still train; -1 is ignored by the loss and metrics
            dirt["some labels missing (the row trains the others)"] += 1
        box = None
        try:
            x1, y1, x2, y2 = (float(row[c]) for c in BOX_COLUMNS)
            box = (x1, y1, x2, y2) if x2 - x1 > 1 and y2 - y1 > 1 else None
        except (KeyError, TypeError, ValueError):
            pass
        if box is None:
            dirt["box missing or empty (whole image used)"] += 1
        paths.append(str(image))
        boxes.append(box)
        for h, v in ids.items():
            labels[h].append(v)
    if dirt:
        log.warning("%s: %s", path.name, ", ".join(f"{n} × {what}" for what, n in dirt.items()))
    if not paths:
        raise UserError(f"{path}: no usable rows (images are looked up in {base} and its {split} sub-folder)")
    unknown = [-1] * len(paths)
    return ImageFiles(paths, unknown, list(unknown), image_size, boxes, attributes=labels)
