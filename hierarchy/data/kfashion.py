"""K-Fashion (AI Hub): one JSON per image with Korean keys, beside the image of the same name.

With a style taxonomy (levels.fine = style) every image is one sample labelled with its style; with a
garment taxonomy every annotated part (아우터, 상의, 하의, 원피스) is one sample: its ``렉트좌표`` box,
its ``카테고리`` as label, and its ``폴리곤좌표`` for background masking. A part without a category, or with
one the taxonomy does not know, keeps the garment type of its slot: a coarse-only sample that trains the
coarse head in either stage. An image without a style has no label at all (super-styles come from styles).

The data is dirty: empty ``{}`` objects, zero-area boxes, missing keys, spelling variants, styles outside
the 23. Variants resolve through the taxonomy aliases; anything else is skipped, counted and reported
once, never fatal. Splits: ``Training/`` (validation carved from it) and ``Validation/`` as the test split.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from hierarchy.data.images import ALL_FINE, ImageFiles, label_ids
from hierarchy.errors import NoTestSplit, UserError
from hierarchy.image_files import IMAGE_SUFFIXES
from hierarchy.taxonomy import Taxonomy

log = logging.getLogger(__name__)
PARTS = {"아우터": "outer", "상의": "top", "하의": "bottom", "원피스": "onepiece"}
SPLIT_FOLDERS = {"train": ("Training", "training", "train"), "test": ("Validation", "validation", "test")}
Box = tuple[float, float, float, float]


@dataclass
class Part:
    kind: str  # outer | top | bottom | onepiece
    box: Box | None
    polygon: list[tuple[float, float]] | None
    category: str | None  # 카테고리, e.g. 재킷


@dataclass
class Record:
    json_path: Path
    image: Path | None
    styles: list[str]
    parts: list[Part] = field(default_factory=list)


def first(value) -> dict:
    """K-Fashion wraps most objects in a one-element list; an empty list or ``{}`` means absent."""
    if isinstance(value, list):
        value = value[0] if value else {}
    return value if isinstance(value, dict) else {}


def read_record(path: Path) -> Record:
    """Parse one annotation file; raises ValueError for a file that is not K-Fashion JSON."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or "데이터셋 정보" not in data:
        raise ValueError(f"{path} has no '데이터셋 정보': not a K-Fashion annotation")
    detail = first(first(data["데이터셋 정보"]).get("데이터셋 상세설명"))
    rects, polygons, labels = (
        first(detail.get(k)) or detail.get(k) or {} for k in ("렉트좌표", "폴리곤좌표", "라벨링")
    )
    tagged = [first([x]) for x in (labels.get("스타일") or [])]
    # The main style first, then sub-styles (서브스타일): a multi-label model learns them all.
    styles = list(dict.fromkeys(str(s[k]) for k in ("스타일", "서브스타일") for s in tagged if s.get(k)))
    parts = []
    for korean, kind in PARTS.items():
        rect, poly, label = first(rects.get(korean)), first(polygons.get(korean)), first(labels.get(korean))
        box = None
        try:
            x, y, w, h = (float(rect[k]) for k in ("X좌표", "Y좌표", "가로", "세로"))
            box = (x, y, x + w, y + h) if w > 1 and h > 1 else None
        except (KeyError, TypeError, ValueError):
            pass
        points = []
        for n in range(1, 10_000):
            if f"X좌표{n}" not in poly:
                break
            try:
                points.append((float(poly[f"X좌표{n}"]), float(poly[f"Y좌표{n}"])))
            except (KeyError, TypeError, ValueError):
                break
        if box or label:
            parts.append(Part(kind, box, points if len(points) >= 3 else None, label.get("카테고리")))
    return Record(path, image_beside(path), styles, parts)


def image_beside(json_path: Path) -> Path | None:
    """The image of the same identifier next to the JSON (any image suffix, any case)."""
    for candidate in json_path.parent.glob(json_path.stem + ".*"):
        if candidate.suffix.lower() in IMAGE_SUFFIXES:
            return candidate
    return None


def split_root(root: Path, split: str) -> Path | None:
    for name in SPLIT_FOLDERS.get(split, ()):
        if (root / name).is_dir():
            return root / name
    has_splits = any((root / n).is_dir() for names in SPLIT_FOLDERS.values() for n in names)
    return root if split == "train" and not has_splits else None


def read_records(root: str, split: str) -> list[Record]:
    """Every readable annotation of a split that has its image; the rest is counted and reported once."""
    base = Path(root).expanduser()
    if not root or not base.is_dir():
        raise UserError(f"K-Fashion data.root={root!r} is not a folder: point it at the folder holding Training/")
    folder = split_root(base, split)
    if folder is None:
        if split == "test":
            raise NoTestSplit(f"{base} has no Validation/ (or test/) folder: put the held-out annotations there")
        return []
    records, problems = [], []
    for path in sorted(folder.rglob("*.json")):
        try:
            record = read_record(path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if record.image is None:
            problems.append(f"{path}: no image of the same name beside it")
            continue
        records.append(record)
    if problems:
        log.warning("K-Fashion %s: skipped %d annotation files, e.g. %s", split, len(problems), problems[0])
    if not records:
        raise UserError(f"no K-Fashion annotations with images under {folder}")
    return records


def load(root: str, split: str, taxonomy: Taxonomy, image_size: int, polygons: bool = False) -> ImageFiles | None:
    """Samples of one split: per image (style taxonomy) or per annotated part (garment taxonomy)."""
    records = read_records(root, split)
    if not records:
        return None
    by_style = taxonomy.titles.get("fine") == "style"
    paths, fine, coarse, boxes, shapes, every_style, unknown, typed_only = [], [], [], [], [], [], {}, {}
    for record in records:
        if by_style:
            samples = [(record.styles[0] if record.styles else None, None, None, None)]
            known = tuple(dict.fromkeys(f for f in (known_fine(taxonomy, s) for s in record.styles) if f >= 0))
        else:  # a part without a category is still a garment of its part's type: a coarse-only sample
            samples = [(p.category or p.kind, p.box, p.polygon, p.kind) for p in record.parts if p.box]
        for label, box, polygon, kind in samples:
            try:
                if label is None:
                    raise UserError("no style")
                f, c = label_ids(taxonomy, label)
            except UserError:
                f, c = -1, known_coarse(taxonomy, kind)  # a category outside the taxonomy: the part's type
                if c < 0:
                    what = "(no style)" if label is None else str(label)
                    unknown[what] = unknown.get(what, 0) + 1
                    continue
                typed_only[str(label)] = typed_only.get(str(label), 0) + 1
            paths.append(str(record.image))
            every_style.append(known if by_style else (f,))
            fine.append(f)
            coarse.append(c)
            boxes.append(box)
            shapes.append(polygon if polygons else None)
    if unknown:
        log.warning("K-Fashion %s: skipped samples with labels outside taxonomy %s: %s", split, taxonomy.name, unknown)
    if typed_only:
        log.warning("K-Fashion %s: categories outside taxonomy %s kept with their garment type only (they train "
                    "the coarse head): %s", split, taxonomy.name, typed_only)  # fmt: skip
    if not paths:
        raise UserError(f"no K-Fashion sample in {root} has a label of taxonomy '{taxonomy.name}'")
    return ImageFiles(
        paths,
        fine,
        coarse,
        image_size,
        None if by_style else boxes,
        polygons=shapes if polygons else None,
        attributes={ALL_FINE: every_style},
    )


def known_fine(taxonomy: Taxonomy, label: str) -> int:
    """Fine id of a label, -1 when the taxonomy does not know it (a sub-style outside the 23 is just left out)."""
    try:
        return label_ids(taxonomy, label)[0]
    except UserError:
        return -1


def known_coarse(taxonomy: Taxonomy, kind: str | None) -> int:
    """Coarse id of a part's type (outer, top …), -1 for a style sample or a taxonomy without that type."""
    try:
        return taxonomy.lookup(kind, "coarse") if kind else -1
    except UserError:
        return -1
