"""Crop modes: turn labelled images into the crops a stage trains and predicts on (``data.crop``).

- ``image``: the whole image (Fashion-MNIST, product shots).
- ``annotation``: the boxes that come with the data (CSV box columns, K-Fashion ``렉트좌표``).
- ``person``: one crop per detected person, labelled with the image's label (styles, super-styles).
- ``pose-garments``: hat / top / bottom / shoe regions from each person's keypoints, labelled by region kind.
- ``detector``: boxes of a trained garment detector, labelled by the detector's class.
- ``auto``: ``annotation`` when the data has boxes, else ``image``.

Detection itself (and its cache, so epochs and reruns never detect an image twice) is hierarchy.detect's.
"""

from __future__ import annotations

import logging

from hierarchy.config import DETECTING_MODES, DetectConfig
from hierarchy.data.images import ImageFiles
from hierarchy.detect import Region, detect_files
from hierarchy.errors import UserError
from hierarchy.paths import newest_run
from hierarchy.taxonomy import Taxonomy

log = logging.getLogger(__name__)
LABELLED_BY_REGION = ("pose-garments", "detector")  # the crop's label is its region kind, not the image's


def usable(region: Region, mode: str) -> bool:
    """Whether a region is a crop of this mode: people for ``person``, garments for the garment modes."""
    if region.kind == "image":
        return True  # nothing was found: the whole image stands in
    if mode == "person":
        return region.kind == "person"
    return region.kind != "person"


def resolve_mode(files: ImageFiles, mode: str) -> str:
    if mode == "auto":
        return "annotation" if files.boxes and any(b is not None for b in files.boxes) else "image"
    return mode


def apply_crop_mode(files: ImageFiles, mode: str, cfg: DetectConfig, taxonomy: Taxonomy, device: str) -> ImageFiles:
    """Expand labelled images into labelled crops for ``mode`` (see the module docstring)."""
    mode = resolve_mode(files, mode)
    if mode == "image":
        return files.with_crops(
            range(len(files)), [None] * len(files), files.fine, files.coarse, ["image"] * len(files)
        )
    if mode == "annotation":
        if not files.boxes or all(b is None for b in files.boxes):
            raise UserError(
                "data.crop=annotation needs boxes in the data (CSV x1,y1,x2,y2 columns, K-Fashion 렉트좌표)"
            )
        tags = ["annotation" if b is not None else "image" for b in files.boxes]
        return files.with_crops(range(len(files)), files.boxes, files.fine, files.coarse, tags)
    if mode not in DETECTING_MODES:
        raise UserError(f"unknown data.crop={mode!r}")
    if mode == "detector" and not cfg.weights:
        newest = newest_run("detect")
        if newest is None:
            raise UserError(
                "data.crop=detector needs a garment detector: run `hierarchy run --stage detect` first, "
                "or set detect.weights=RUN_DIR_OR_PT"
            )
        cfg = DetectConfig(**{**cfg.__dict__, "weights": str(newest)})
    regions, _ = detect_files(files.paths, cfg, device)  # unreadable files are left out and warned about
    return expand(files, regions, mode, taxonomy)


def expand(files: ImageFiles, regions: dict, mode: str, taxonomy: Taxonomy) -> ImageFiles:
    """One sample per usable region; labels from the image (person) or the region's kind (garments)."""
    garment_ids = {}
    if mode != "person":
        kinds = {r.kind for found in regions.values() for r in found} - {"person", "image"}
        for kind in kinds:
            try:
                garment_ids[kind] = taxonomy.lookup(kind, "coarse")
            except UserError:
                log.info(
                    "crop kind %r is not a coarse class of taxonomy %s: those crops are not used", kind, taxonomy.name
                )
        if kinds and not garment_ids:
            raise UserError(
                f"data.crop={mode} labels crops by garment kind ({sorted(kinds)}), but taxonomy '{taxonomy.name}' "
                f"has coarse classes {list(taxonomy.coarse)}: use data.taxonomy=garment"
            )
    index, boxes, fine, coarse, tags = [], [], [], [], []
    for i, path in enumerate(files.paths):
        for region in (r for r in regions.get(path, []) if usable(r, mode)):
            if region.kind == "image" or mode == "person":  # a person, or the whole image: the image's label
                label = (files.fine[i], files.coarse[i])
            elif region.kind in garment_ids:
                kind_id = garment_ids[region.kind]
                keep_fine = files.fine[i] >= 0 and taxonomy.parents[files.fine[i]] == kind_id
                label = (files.fine[i] if keep_fine else -1, kind_id)
            else:
                continue
            if label[1] < 0:  # an unlabelled photo where no garment was found: nothing to learn from
                continue
            index.append(i)
            boxes.append(None if region.kind == "image" else region.box)
            fine.append(label[0])
            coarse.append(label[1])
            tags.append(region.kind if region.person < 0 else f"{region.kind}@{region.person}")
    log.info("data.crop=%s: %d crops from %d images", mode, len(index), len(files))
    return files.with_crops(index, boxes, fine, coarse, tags)
