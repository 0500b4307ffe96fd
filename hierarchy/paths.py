"""Where things go on disk: the artifacts root, run folders, and writes that never leave half a file.

Imports nothing of ours, so every module (data, detection, training, evaluation) may use it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

ARTIFACTS = Path("artifacts")  # relative: run outputs go under the folder the command runs in


def newest_run(stage: str, root: Path = ARTIFACTS) -> Path | None:
    """The most recently written run folder of a stage that holds a checkpoint (``<root>/<stage>/<name>``)."""
    runs = [p.parent.parent for p in (root / stage).glob("*/checkpoints/last.pt")]
    return max(runs, key=lambda p: (p / "checkpoints" / "last.pt").stat().st_mtime) if runs else None


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w", fsync: bool = False) -> Iterator[IO]:
    """Open ``<path>.tmp`` for writing and rename it to ``path`` when the block ends without an error.

    A crash mid-write leaves the old file (or none), never a truncated one. ``fsync`` also forces the bytes to
    disk before the rename, for files whose loss would cost work (checkpoints, label chunks).

    Example::

        with atomic_write(run_dir / "metrics.csv") as f:
            csv.writer(f).writerows(rows)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
