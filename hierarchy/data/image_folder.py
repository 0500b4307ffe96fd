"""Image folders: ``root/<label>/…/*.jpg``, or ``root/{train,val,test}/<label>/…`` when split folders exist.

Folder names are mapped through the taxonomy's aliases (a fine or a coarse class name), never by sort order.
"""

from __future__ import annotations

from pathlib import Path

from hierarchy.data.images import ImageFiles, label_ids
from hierarchy.errors import NoTestSplit, UserError
from hierarchy.image_files import IMAGE_SUFFIXES, list_images
from hierarchy.taxonomy import Taxonomy

SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation"), "test": ("test",)}


def split_folder(root: Path, split: str) -> Path | None:
    """The folder of a split, or None when the root has no split folders (then all of it is training data)."""
    for name in SPLIT_NAMES[split]:
        for candidate in (root / name, root / name.capitalize()):
            if candidate.is_dir():
                return candidate
    return None


def has_split_folders(root: Path) -> bool:
    return split_folder(root, "train") is not None


def load(root: str, split: str, taxonomy: Taxonomy, image_size: int, strict: bool = True) -> ImageFiles | None:
    """Labelled files of one split; None when the split has no folder of its own (val is then carved).

    ``strict=False`` (crop modes that label each crop by its region) accepts folder names outside the
    taxonomy and photos lying directly in the folder; their image label is unknown (-1).
    """
    base = Path(root).expanduser()
    if not root or not base.is_dir():
        raise UserError(
            f"image folder data.root={root!r} is not a folder. Set data.root=DIR with one sub-folder per label."
        )
    split_folders = has_split_folders(base)
    folder = split_folder(base, split) if split_folders else (base if split == "train" else None)
    if folder is None:
        if split == "test" and split_folders:
            raise NoTestSplit(f"{base} has no test/ folder: put held-out photos in {base}/test/<label>/")
        if split == "test":
            raise NoTestSplit(
                f"{base} has no test split: move the training photos into {base}/train/<label>/ and put held-out "
                f"ones in {base}/test/<label>/"
            )
        return None
    paths, fine, coarse = [], [], []
    if not strict:
        loose = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        paths, fine, coarse = [str(p) for p in loose], [-1] * len(loose), [-1] * len(loose)
    for class_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
        try:
            f, c = label_ids(taxonomy, class_dir.name)
        except UserError:
            if strict:
                raise
            f, c = -1, -1
        files = list_images(class_dir)
        paths += [str(p) for p in files]
        fine += [f] * len(files)
        coarse += [c] * len(files)
    if not paths:
        raise UserError(f"no images found under {folder}/<label>/ (suffixes: {sorted(IMAGE_SUFFIXES)})")
    return ImageFiles(paths, fine, coarse, image_size)
