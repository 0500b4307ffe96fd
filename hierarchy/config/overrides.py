"""``key=value`` words: the one parser of the settings given on a command line."""

from __future__ import annotations

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
