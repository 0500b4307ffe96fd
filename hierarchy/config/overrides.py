"""``key=value`` words: the one parser of the settings given on a command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hierarchy.errors import UserError


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``['train.epochs=5', 'model.backbone=resnet18']`` into a nested dict with YAML-typed values."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"override {pair!r} is not key=value (for example train.epochs=5)")
        key, raw = pair.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def split_words(words: list[str], takes_paths: bool) -> tuple[list[str], list[str]]:
    """A command's positional words as ``(paths, settings)``, wherever they stand among its options.

    A word with ``=`` is a ``key=value`` setting, unless the command takes paths and a file or folder of that name
    exists; any other word is a path where the command takes paths, and an error where it does not.
    """
    paths, settings = [], []
    for word in words:
        if "=" in word and not (takes_paths and Path(word).exists()):
            settings.append(word)
        elif takes_paths:
            paths.append(word)
        else:
            raise UserError(f"{word!r} is not a key=value setting (for example train.epochs=5)")
    return paths, settings
