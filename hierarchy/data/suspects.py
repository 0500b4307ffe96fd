"""Labels an audit suspects (``hierarchy audit`` → ``suspect_labels.csv``), left out with ``data.drop_suspects``."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from hierarchy.errors import UserError

SUSPECTS_FILE = "suspect_labels.csv"


def read_suspects(location: str) -> set[str]:
    """Sources listed in a ``suspect_labels.csv`` (or an audit run folder holding one)."""
    path = Path(location).expanduser()
    path = path / SUSPECTS_FILE if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"data.drop_suspects={location}: no {SUSPECTS_FILE} there. Run `hierarchy audit` first")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "source" not in (reader.fieldnames or []):
            raise UserError(f"{path} has no 'source' column: give the suspect_labels.csv that hierarchy audit wrote")
        return {row["source"] for row in reader}


def drop_sources(dataset, sources: set[str]):
    """The dataset without the samples named in ``sources``."""
    keep = [i for i in range(len(dataset)) if dataset.source(i) not in sources]
    return dataset.subset(torch.tensor(keep, dtype=torch.long))
