"""Where labels go: crash-safe chunks while a run works, one output file when it ends.

While labeling, finished images are written in chunks to ``OUT.parts/part-r<rank>-<n>.jsonl`` (temporary
file, fsync, rename: a chunk is there whole or not at all). Every chunk holds complete images only: all
rows of an image, or its error. At the end the chunks and any earlier output merge into ``OUT`` (.csv,
.jsonl or .parquet; written to a temporary file and renamed) and ``OUT.errors.csv``, then the chunks go.
Re-running with the same ``OUT`` reads what is finished from all of them and skips it; merging keeps the
first record of each image, so a kill between the rename and the clean-up cannot duplicate rows.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

from hierarchy.errors import UserError
from hierarchy.infer.rows import ERROR_COLUMNS, FORMATS, image_key, read_rows, write_rows
from hierarchy.paths import atomic_write


class LabelStore:
    def __init__(self, out: str | Path, rank: int = 0) -> None:
        self.out = Path(out).expanduser()
        if self.out.suffix.lower() not in FORMATS:
            raise UserError(f"--out {out}: use a .csv, .jsonl or .parquet file name")
        self.parts = self.out.with_name(self.out.name + ".parts")
        self.errors = self.out.with_name(self.out.stem + ".errors.csv")
        self.rank = rank
        self.pending: list[dict] = []
        self.sequence = 0

    # reading -------------------------------------------------------------------------------------------
    def part_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.jsonl")) if self.parts.is_dir() else []

    def part_records(self) -> Iterator[dict]:
        for part in self.part_files():
            with open(part, encoding="utf-8") as f:
                for line in f:
                    yield json.loads(line)

    def output_rows(self) -> Iterator[dict]:
        """Rows of an earlier merged output, streamed."""
        return read_rows(self.out) if self.out.is_file() else iter(())

    def finished(self) -> set[str]:
        """Keys of every image with rows or an error, in the output, the errors file or the chunks."""
        done = {image_key(row) for row in self.output_rows()}
        if self.errors.is_file():
            with open(self.errors, encoding="utf-8", newline="") as f:
                done |= {image_key(row) for row in csv.DictReader(f)}
        done |= {image_key(record) for record in self.part_records()}
        return done

    # writing -------------------------------------------------------------------------------------------
    def add(self, record: dict) -> None:
        """One image: ``{"root", "path", "rows": [...]}`` or ``{"root", "path", "error": "..."}``."""
        self.pending.append(record)

    def flush(self) -> None:
        if not self.pending:
            return
        self.parts.mkdir(parents=True, exist_ok=True)
        while True:  # a resumed run continues the numbering after its earlier chunks
            target = self.parts / f"part-r{self.rank}-{self.sequence:06d}.jsonl"
            self.sequence += 1
            if not target.exists():
                break
        with atomic_write(target, fsync=True) as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in self.pending)
        self.pending = []

    def merge(self) -> dict[str, int]:
        """Write OUT and OUT.errors.csv from the earlier output and every chunk; returns counts."""
        seen: set[str] = set()
        errors: list[dict] = []
        if self.errors.is_file():
            with open(self.errors, encoding="utf-8", newline="") as f:
                errors = list(csv.DictReader(f))
        seen |= {image_key(e) for e in errors}

        def rows() -> Iterator[dict]:
            earlier = set()
            for row in self.output_rows():
                earlier.add(image_key(row))
                yield row
            seen.update(earlier)
            for record in self.part_records():
                key = image_key(record)
                if key in seen:
                    continue  # already merged before a kill interrupted the clean-up
                seen.add(key)
                if "error" in record:
                    errors.append({"root": record["root"], "path": record["path"], "error": record["error"]})
                else:
                    yield from record["rows"]

        count = save_labels(rows(), self.out)
        if errors:
            with atomic_write(self.errors) as f:
                writer = csv.DictWriter(f, list(ERROR_COLUMNS))
                writer.writeheader()
                writer.writerows(errors)
        else:
            self.errors.unlink(missing_ok=True)
        shutil.rmtree(self.parts, ignore_errors=True)
        return {"rows": count, "errors": len(errors)}


def save_labels(rows: Iterator[dict], out: Path) -> int:
    """Stream rows into ``out`` by its suffix (see rows.py), written whole or not at all; returns the row count."""
    suffix = out.suffix.lower()
    with atomic_write(out, "wb" if suffix == ".parquet" else "w") as f:
        return write_rows(rows, f, suffix)
