"""What the settings say about themselves: ``hierarchy run --help-config``, a flag's help, and the message for a
key that does not exist (with the closest valid names)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml

from hierarchy.config.schema import RETIRED, Config, config_keys, walk
from hierarchy.errors import UserError


def show(value: Any) -> str:
    """A value as it is written in YAML or after ``key=`` (``""``, ``true``, ``[32, 64]``, ``{coarse: 1.0}``)."""
    if value == "":
        return '""'
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    return text.removesuffix("...").strip()


def value_range(meta: Mapping[str, Any]) -> str:
    """A key's allowed range in words, e.g. ``>= 0 and < 1``; "" when any number goes."""
    bounds = (("low", ">="), ("above", ">"), ("high", "<="), ("below", "<"))
    return " and ".join(f"{sign} {meta[name]}" for name, sign in bounds if meta.get(name) is not None)


def allowed(meta: Mapping[str, Any]) -> str:
    """A key's allowed values for the help listing: ``one of: a | b``, ``>= 1`` or ""."""
    if meta.get("choices") is not None:
        return "one of: " + " | ".join(show(c) for c in meta["choices"])
    return value_range(meta)


def setting_help(key: str) -> str:
    """One key's help, allowed values and default, e.g. for an argparse flag that sets that key."""
    for dotted, f, value in walk(Config()):
        if dotted == key:
            listed = allowed(f.metadata)
            return f"{f.metadata['help']}" + (f" [{listed}]" if listed else "") + f" (default: {show(value)})"
    raise unknown_key(key)


def setting_choices(key: str) -> tuple:
    """One key's allowed values (e.g. for an argparse flag that sets that key), as the schema writes them."""
    for dotted, f, _ in walk(Config()):
        if dotted == key and f.metadata.get("choices") is not None:
            return tuple(f.metadata["choices"])
    raise unknown_key(key) if key not in config_keys() else KeyError(f"{key} has no list of choices")


def help_text() -> str:
    """Every config key with its default, its own help and its allowed values, one key a line."""
    lines = ["config keys (key, default, meaning [allowed values]); set them as key=value or in a --config YAML:"]
    section = ""
    for key, f, value in walk(Config()):
        if key.rpartition(".")[0] != section:
            section = key.rpartition(".")[0]
            lines.append("")
        listed = allowed(f.metadata)
        lines.append(f"  {key:28} {show(value):14} {f.metadata['help']}" + (f" [{listed}]" if listed else ""))
    return "\n".join(lines)


def unknown_key(key: str) -> UserError:
    """The error for a key that is not a setting: a retired one says why, any other names the closest keys."""
    if key in RETIRED:
        return UserError(f"{key} is no longer a setting ({RETIRED[key]}): delete it")
    close = difflib.get_close_matches(key, config_keys(), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UserError(f"unknown config key {key!r}.{hint} Run `hierarchy run --help-config` to list every key.")
