"""The unlabelled pool the queue asks about: folders, image files, ``.txt`` lists, or a labels file of
``hierarchy label`` (one item per labelled crop, so a person's crop is asked about, not the whole photo).

An item is named by its crop key (``infer/rows.py``), the key the answers and the review's corrections use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hierarchy.data.images import ImageFiles
from hierarchy.errors import UserError
from hierarchy.image_files import collect
from hierarchy.infer.rows import FORMATS, crop_keys, read_frame


@dataclass(frozen=True)
class PoolItem:
    key: str  # crop key: root \t path \t box ("" for a whole photo)
    file: str  # the file to open
    box: tuple[float, float, float, float] | None
    name: str  # what the page shows: the path, and the box for a crop


def load_pool(sources: list[str]) -> list[PoolItem]:
    """Every item of the pool, in the order given (duplicates dropped)."""
    items: dict[str, PoolItem] = {}
    for source in sources:
        path = Path(source).expanduser()
        found = labels_file_items(path) if path.suffix.lower() in FORMATS and path.is_file() else photo_items(source)
        for item in found:
            items.setdefault(item.key, item)
    if not items:
        raise UserError(f"the pool {sources} holds no images")
    return list(items.values())


def photo_items(source: str) -> list[PoolItem]:
    return [PoolItem(f"{item.root}\t{item.path}\t", item.file, None, item.path) for item in collect([source])]


def labels_file_items(path: Path) -> list[PoolItem]:
    """One item per row of a labels file; its photos are found as the review finds them (root, then beside)."""
    frame = read_frame(path)
    if frame.empty:
        raise UserError(f"{path} has no rows: label some photos first (hierarchy label PHOTOS/ --out {path.name})")
    roots = frame["root"].fillna("").astype(str)
    keys = crop_keys(frame, roots)
    items = []
    for key, root, row in zip(keys, roots, frame.itertuples(index=False)):
        base = Path(root) if root and Path(root).is_dir() else path.parent / root if root else path.parent
        file = Path(row.path) if Path(row.path).is_absolute() else base / row.path
        whole = row.kind == "image"
        box = None if whole else (float(row.x1), float(row.y1), float(row.x2), float(row.y2))
        items.append(PoolItem(key, str(file), box, row.path if whole else f"{row.path} ({row.kind})"))
    return items


def as_dataset(items: list[PoolItem], image_size: int) -> ImageFiles:
    """The items as a dataset for scoring; each sample's name is its position, so duplicates stay apart."""
    n = len(items)
    return ImageFiles([i.file for i in items], [-1] * n, [-1] * n, image_size, [i.box for i in items],
                      [str(k) for k in range(n)])  # fmt: skip
