"""The review table: a labels file (the output of ``hierarchy label``) in memory, with every reviewer's latest
correction laid over it, filtered, sorted and paged on the server.

Each head's model label, probability, current label and review status are numpy columns, so a page of a
100,000-row file costs a few vectorised comparisons and one sort of the matching rows; the top-k values are
decoded only for the rows of the page. Photos are served only if the labels file lists them (see ``photo_file``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd

from hierarchy.errors import UserError
from hierarchy.image_files import open_image
from hierarchy.infer.rows import crop_keys, read_frame, top_column, top_list
from hierarchy.serve.corrections import Correction, CorrectionStore, Crop
from hierarchy.taxonomy import Taxonomy

log = logging.getLogger(__name__)
STATUSES = ("model", "corrected", "accepted")  # a head's review status, by its code in ``status``
SORTS = ("prob_asc", "prob_desc", "path")
THUMB_SIDE = 256
THUMB_MARGIN = 0.08  # context around the box, as a share of its size


class ReviewTable:
    """Rows of a labels file for the heads a model shares with it, and the reviewers' corrections."""

    def __init__(self, path: str | Path, taxonomy: Taxonomy, heads: list[str], store: CorrectionStore) -> None:
        self.path, self.taxonomy, self.store = Path(path), taxonomy, store
        frame = read_frame(self.path)
        if "kind" not in frame.columns or "path" not in frame.columns:
            raise UserError(f"{self.path} is not a labels file of `hierarchy label` (no path and kind columns)")
        self.errors = int(frame["kind"].isna().sum())  # photos that could not be read when labelling
        frame = frame[frame["kind"].notna()].reset_index(drop=True)
        self.heads = [h for h in heads if f"{h}_prob" in frame.columns]
        if not self.heads:
            raise UserError(f"{self.path} has none of the model's heads {heads}: was it labelled by another model?")
        self.names = {h: taxonomy.names(h) for h in self.heads}
        index = {h: {n: i for i, n in enumerate(self.names[h])} for h in self.heads}
        self.frame = frame
        self.prob = {h: pd.to_numeric(frame[f"{h}_prob"], errors="coerce").fillna(0).to_numpy(np.float32)
                     for h in self.heads}  # fmt: skip
        self.model_label = {h: codes(frame[h], index[h]) for h in self.heads}
        self.current = {h: v.copy() for h, v in self.model_label.items()}
        self.status = {h: np.zeros(len(frame), np.int8) for h in self.heads}
        self.roots = sorted(set(frame["root"].fillna("").astype(str))) if "root" in frame.columns else [""]
        root_col = frame["root"].fillna("").astype(str) if "root" in frame.columns else pd.Series([""] * len(frame))
        self.root_index = root_col.map({r: i for i, r in enumerate(self.roots)}).to_numpy()
        self.listed = [set(frame["path"][root_col == r].astype(str)) for r in self.roots]
        self.path_order = np.argsort(np.lexsort((np.arange(len(frame)), frame["path"].astype(str).to_numpy())))
        self.keys = crop_keys(frame, root_col)
        self.rows_of: dict[str, list[int]] = {}
        for i, key in enumerate(self.keys):
            self.rows_of.setdefault(key, []).append(i)
        self.lock = threading.Lock()
        self.overlay(store.latest())
        log.info("%s: %d rows, heads %s, %d photos unreadable when labelled", self.path, len(frame), self.heads,
                 self.errors)  # fmt: skip

    def __len__(self) -> int:
        return len(self.frame)

    # --- photos -------------------------------------------------------------------------------------------------

    def root_folder(self, root: str) -> Path:
        """Where a root recorded in the labels file is now: as written (relative to the working folder), else
        relative to the labels file's folder."""
        here = Path(root).expanduser()
        if here.is_absolute() or here.exists():
            return here
        beside = self.path.parent / here
        return beside if beside.exists() else here

    def photo_file(self, root_index: int, path: str) -> Path | None:
        """The photo ``path`` under root number ``root_index``, or None unless the labels file lists it there and
        it resolves (symlinks followed) inside that root. ``../``, absolute and encoded paths are not listed."""
        if not 0 <= root_index < len(self.roots) or path not in self.listed[root_index]:
            return None
        root = self.roots[root_index]
        if not root:  # a photo given directly on the command line: its path is the file
            file = Path(path).expanduser()
            return file if file.is_file() else None
        base = self.root_folder(root)
        if base.is_file():  # a .txt list of photos: paths relative to the list
            file = Path(path).expanduser()
            file = file if file.is_absolute() else base.parent / file
            return file if file.is_file() else None
        file = base / path
        try:
            inside = file.resolve(strict=True).is_relative_to(base.resolve(strict=True))
        except OSError:
            return None
        return file if inside and file.is_file() else None

    def crop(self, i: int) -> Crop:
        """Row ``i``'s photo and box (the photo's file resolved now: it is looked up only when needed)."""
        row, root_index = self.frame.iloc[i], int(self.root_index[i])
        file = self.photo_file(root_index, str(row["path"]))
        box = None if row["kind"] == "image" else tuple(float(row[c]) for c in ("x1", "y1", "x2", "y2"))
        return Crop(
            self.keys[i], self.roots[root_index], str(row["path"]), str((file or Path(row["path"])).resolve()), box
        )

    def thumbnail(self, i: int, cache: Path) -> bytes:
        """A JPEG of row ``i``'s crop with some context, at most ``THUMB_SIDE`` pixels, cached by crop."""
        crop = self.crop(i)
        name = hashlib.sha256(f"{crop.key}\t{THUMB_SIDE}".encode()).hexdigest()[:32] + ".jpg"
        cached = cache / name
        if cached.is_file():
            return cached.read_bytes()
        file = self.photo_file(int(self.root_index[i]), crop.path)
        if file is None:
            raise FileNotFoundError(f"{crop.path} is no longer where the labels file says")
        data = crop_jpeg(str(file), crop.box, THUMB_SIDE)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(cached)
        return data

    # --- the grid -----------------------------------------------------------------------------------------------

    def page(
        self, head: str, label: str = "", min_prob: float = 0.0, max_prob: float = 1.0, status: str = "all",
        sort: str = "prob_asc", offset: int = 0, limit: int = 60,
    ) -> dict:  # fmt: skip
        """The rows matching the filters, sorted, from ``offset``: ``{"total", "offset", "limit", "rows"}``."""
        self.check_head(head)
        if sort not in SORTS:
            raise UserError(f"sort={sort!r}: choose one of {list(SORTS)}")
        if status not in ("all", "todo", "done"):
            raise UserError(f"status={status!r}: choose all, todo or done")
        with self.lock:
            prob = self.prob[head]
            keep = (prob >= min_prob) & (prob <= max_prob)
            if label:
                keep &= self.current[head] == self.code(head, label)
            if status != "all":
                keep &= (self.status[head] == 0) if status == "todo" else (self.status[head] > 0)
            found = np.flatnonzero(keep)
            if sort == "path":
                order = np.argsort(self.path_order[found], kind="stable")
            else:
                order = np.argsort(prob[found] if sort == "prob_asc" else -prob[found], kind="stable")
            chosen = found[order][offset : offset + limit]
            rows = [self.row(int(i)) for i in chosen]
        return {"total": len(found), "offset": offset, "limit": limit, "rows": rows}

    def row(self, i: int) -> dict:
        """Row ``i`` as the page shows it."""
        record = self.frame.iloc[i]
        box = None if record["kind"] == "image" else [float(record[c]) for c in ("x1", "y1", "x2", "y2")]
        heads = {}
        for h in self.heads:
            names, current = self.names[h], int(self.current[h][i])
            heads[h] = {
                "label": names[current] if current >= 0 else "",
                "model_label": str(record[h]),
                "prob": round(float(self.prob[h][i]), 4),
                "top": top_list(record.get(top_column(h))),
                "status": STATUSES[int(self.status[h][i])],
            }
        root_index = int(self.root_index[i])
        return {
            "id": i, "path": str(record["path"]), "kind": str(record["kind"]), "box": box,
            "thumb": f"/thumb/{i}", "image": f"/files/{root_index}/{urllib.parse.quote(str(record['path']))}",
            "heads": heads,
        }  # fmt: skip

    # --- corrections --------------------------------------------------------------------------------------------

    def correct(self, i: int, head: str, action: str, label: str = "") -> dict:
        """Set (``action="set"``) or confirm (``"accept"``) row ``i``'s label for ``head``; a fine label also sets
        its coarse parent, and a coarse label clears a fine one outside its group. Stored before returning."""
        if not 0 <= i < len(self):
            raise KeyError(i)
        self.check_head(head)
        if action not in ("set", "accept"):
            raise UserError(f"action={action!r}: choose set or accept")
        with self.lock:
            current = self.name(head, i)
            if action == "accept":
                if not current:
                    raise UserError(f"row {i} has no {head} label to accept: set one")
                label = current
            self.code(head, label)  # an unknown name fails here, before anything is written
            changes = [(head, label, "set" if action == "set" and label != current else "accept")]
            parents = self.taxonomy.parents
            if head == "fine" and "coarse" in self.heads and parents:
                parent = self.taxonomy.coarse[parents[self.code("fine", label)]]
                changes.append(("coarse", parent, "accept" if parent == self.name("coarse", i) else "set"))
            if head == "coarse" and "fine" in self.heads and parents and self.name("fine", i):
                if self.taxonomy.coarse[parents[self.code("fine", self.name("fine", i))]] != label:
                    changes.append(("fine", None, "clear"))
            crop = self.crop(i)
            self.store.add([Correction(crop, h, new, self.name(h, i) or None, act) for h, new, act in changes])
            self.overlay({(crop.key, h): (new, act) for h, new, act in changes})
            return self.row(i)

    def overlay(self, latest: dict[tuple[str, str], tuple[str | None, str]]) -> None:
        """Lay the latest corrections (``{(crop key, head): (label, action)}``) over the model's labels."""
        for (key, head), (label, action) in latest.items():
            if head not in self.heads:
                continue
            code = self.names[head].index(label) if label in self.names[head] else -1
            for i in self.rows_of.get(key, []):
                self.current[head][i] = code
                self.status[head][i] = 2 if action == "accept" else 1

    def name(self, head: str, i: int) -> str:
        code = int(self.current[head][i])
        return self.names[head][code] if code >= 0 else ""

    def code(self, head: str, label: str) -> int:
        try:
            return self.names[head].index(label)
        except ValueError:
            raise UserError(f"{label!r} is not a {head} label; the {head} labels are {self.names[head]}") from None

    def check_head(self, head: str) -> None:
        if head not in self.heads:
            raise UserError(f"head {head!r} is not in this labels file; its heads are {self.heads}")


def codes(column: pd.Series, index: dict[str, int]) -> np.ndarray:
    """Class ids of a column of names (-1 for a name the taxonomy does not have)."""
    return column.astype(str).map(index).fillna(-1).to_numpy(np.int32)


def crop_jpeg(file: str, box: tuple[float, float, float, float] | None, side: int) -> bytes:
    """A JPEG of a photo's box (full-size pixels; None = all of it) with some context, at most ``side`` pixels."""
    image, scale = open_image(file, max_side=4 * side)
    if box is not None:
        x1, y1, x2, y2 = (v / scale for v in box)
        mx, my = (x2 - x1) * THUMB_MARGIN, (y2 - y1) * THUMB_MARGIN
        image = image.crop((max(0, x1 - mx), max(0, y1 - my), min(image.width, x2 + mx),
                            min(image.height, y2 + my)))  # fmt: skip
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
