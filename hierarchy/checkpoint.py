"""Checkpoints: atomic save (hierarchy.paths.atomic_write), safe load (weights_only=True), stage-to-stage transfer."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hierarchy.errors import UserError
from hierarchy.paths import atomic_write

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to ``path.tmp`` and rename: a crash mid-write never leaves a truncated checkpoint behind."""
    with atomic_write(path, "wb", fsync=True) as f:
        torch.save({"format_version": FORMAT_VERSION, **state}, f)


def find_checkpoint(path: str | Path, prefer: str = "best.pt") -> Path:
    """A checkpoint file, or the ``best.pt`` (else ``last.pt``) inside a run folder."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    for name in (prefer, "best.pt", "last.pt"):
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name
    raise UserError(f"no checkpoint at {path}: give a .pt file or a run folder that holds checkpoints/best.pt")


def load_checkpoint(path: str | Path, prefer: str = "best.pt") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and check it is one of ours."""
    path = find_checkpoint(path, prefer)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # pickle, zip or torch errors: all mean "not a checkpoint we can read safely"
        reason = (
            "it holds objects other than tensors and plain values, which are never unpickled"
            if zipfile.is_zipfile(path)
            else "it is not a file written by torch.save"
        )
        raise UserError(f"cannot load checkpoint {path}: {reason}. Give a hierarchy run folder or .pt file") from None
    if not isinstance(state, dict) or "model" not in state or "taxonomy" not in state:
        raise UserError(f"{path} is not a hierarchy checkpoint (no model/taxonomy entries)")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(
            f"{path} has format {state['format_version']}; this version reads up to {FORMAT_VERSION}: upgrade"
        )
    state["path"] = str(path)
    return state


def transfer_weights(model: nn.Module, source: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Copy every tensor whose name and shape match; report what was transferred, skipped and new.

    Returns:
        ``{"transferred": [...], "shape_mismatch": [...], "unused": [...], "new": [...]}``.
    """
    target = model.state_dict()
    report: dict[str, list[str]] = {"transferred": [], "shape_mismatch": [], "unused": [], "new": []}
    update = {}
    for key, value in source.items():
        if key not in target:
            report["unused"].append(key)
        elif target[key].shape != value.shape:
            report["shape_mismatch"].append(f"{key} {tuple(value.shape)} -> {tuple(target[key].shape)}")
        else:
            update[key] = value
            report["transferred"].append(key)
    report["new"] = [k for k in target if k not in update]
    model.load_state_dict(update, strict=False)
    return report
