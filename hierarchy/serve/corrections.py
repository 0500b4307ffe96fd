"""Corrections: what reviewers changed or confirmed, kept in SQLite, and the training manifest made from them.

One table, append-only: every change is a new row with its time and the value it replaced, so the history
stays and the latest row per (crop, head) wins. The database runs in WAL mode with ``synchronous=FULL``: a
correction is on disk when ``add`` returns, before the server answers, so killing the server loses nothing.

A crop is keyed by its photo and box (``root``, ``path``, ``x1…y2``), not by its row number, so corrections
follow the crop into a re-labelled file and one database can serve several labels files.
"""

from __future__ import annotations

import csv
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hierarchy.database import open_database
from hierarchy.paths import atomic_write

SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    crop TEXT NOT NULL,          -- root, path and box as one key (infer/rows.py: crop key)
    root TEXT NOT NULL, path TEXT NOT NULL, file TEXT NOT NULL,
    x1 REAL, y1 REAL, x2 REAL, y2 REAL,   -- NULL for a whole photo
    head TEXT NOT NULL,
    label TEXT,                  -- NULL: the head's label was cleared (its parent was changed under it)
    previous TEXT,
    action TEXT NOT NULL,        -- set | accept | clear
    at TEXT NOT NULL             -- UTC, ISO 8601
);
CREATE INDEX IF NOT EXISTS corrections_crop ON corrections (crop, head, id);
"""
MANIFEST_COLUMNS = ["path", "label", "x1", "y1", "x2", "y2", "split"]
VAL_SHARE = 10  # one photo in ten goes to the manifest's val split (by a hash of its path: stable, per photo)


@dataclass(frozen=True)
class Crop:
    """One reviewed crop: its key, its photo (``root``/``path`` as in the labels file, ``file`` to open), its box."""

    key: str
    root: str
    path: str
    file: str
    box: tuple[float, float, float, float] | None  # full-size pixels; None = the whole photo


@dataclass(frozen=True)
class Correction:
    crop: Crop
    head: str
    label: str | None
    previous: str | None
    action: str  # set | accept | clear


class CorrectionStore:
    """The SQLite file of corrections; one connection shared by the server's threads behind a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = open_database(self.path, SCHEMA, "a corrections")
        self.lock = threading.Lock()

    def add(self, corrections: list[Correction]) -> None:
        """Write corrections in one transaction, committed (and synced) before returning."""
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        rows = [
            (c.crop.key, c.crop.root, c.crop.path, c.crop.file, *(c.crop.box or (None,) * 4), c.head, c.label,
             c.previous, c.action, at)
            for c in corrections
        ]  # fmt: skip
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(
                    "INSERT INTO corrections (crop, root, path, file, x1, y1, x2, y2, head, label, previous, action, "
                    "at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def latest(self) -> dict[tuple[str, str], tuple[str | None, str]]:
        """``{(crop key, head): (label, action)}``: the latest correction of every crop and head."""
        with self.lock:
            found = self.db.execute(
                "SELECT crop, head, label, action FROM corrections WHERE id IN "
                "(SELECT MAX(id) FROM corrections GROUP BY crop, head)"
            ).fetchall()
        return {(crop, head): (label, action) for crop, head, label, action in found}

    def reviewed_crops(self) -> Iterator[tuple[dict, dict[str, str | None]]]:
        """Every crop with a correction or acceptance: ``(photo and box, {head: latest label})``."""
        with self.lock:
            found = self.db.execute(
                "SELECT crop, root, path, file, x1, y1, x2, y2, head, label FROM corrections WHERE id IN "
                "(SELECT MAX(id) FROM corrections GROUP BY crop, head) ORDER BY crop, head"
            ).fetchall()
        crops: dict[str, tuple[dict, dict[str, str | None]]] = {}
        for key, root, path, file, x1, y1, x2, y2, head, label in found:
            where = {"root": root, "path": path, "file": file, "box": None if x1 is None else (x1, y1, x2, y2)}
            crops.setdefault(key, (where, {}))[1][head] = label
        yield from crops.values()

    def heads(self) -> list[str]:
        with self.lock:
            return [h for (h,) in self.db.execute("SELECT DISTINCT head FROM corrections ORDER BY head")]

    def close(self) -> None:
        with self.lock:
            self.db.close()


def split_of(path: str) -> str:
    """``val`` for one photo in ``VAL_SHARE``, else ``train``: fixed per photo, so a photo's crops stay together."""
    return "val" if int(hashlib.sha256(path.encode()).hexdigest(), 16) % VAL_SHARE == 0 else "train"


def manifest_rows(store: CorrectionStore, attributes: list[str]) -> Iterator[dict]:
    """Training rows of every reviewed crop (``MANIFEST_COLUMNS`` plus one column per attribute head).

    ``label`` is the finest label a reviewer set or accepted: the fine one, else the coarse one (the crop then
    trains the coarse head only, as a coarse-only sample of the mixed-label data). Attribute heads (daily,
    gender, …) get their own columns. A crop with no tree label at all is left out.
    """
    for where, labels in store.reviewed_crops():
        label = labels.get("fine") or labels.get("coarse")
        if not label:
            continue
        box = where["box"] or ("",) * 4
        row = {"path": where["file"], "label": label, **dict(zip(["x1", "y1", "x2", "y2"], box))}
        row["split"] = split_of(where["file"])
        yield {**row, **{h: labels.get(h) or "" for h in attributes}}


def export_manifest(store: CorrectionStore, out: str | Path) -> int:
    """Write the manifest CSV (written beside, then moved into place); returns the number of rows."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    attributes = [h for h in store.heads() if h not in ("coarse", "fine")]
    n = 0
    with atomic_write(out, "w", fsync=True) as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS + attributes)
        writer.writeheader()
        for row in manifest_rows(store, attributes):
            writer.writerow(row)
            n += 1
    return n
