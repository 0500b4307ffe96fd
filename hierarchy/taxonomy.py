"""Two-level label spaces: coarse classes (garment type, super-style) above fine classes, plus optional
attribute heads beside the tree (Fashion-How's daily / gender / embellishment).

One YAML per label space is the single source of names and ids. Class ids are list positions, so
a taxonomy only ever grows at the end. Folder names, CSV strings and Korean label strings reach a
class through ``aliases``, never through sort order.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hierarchy.config import config_dir
from hierarchy.errors import UserError

LEVELS = ("coarse", "fine")


def normalize_label(text: str) -> str:
    """Case- and separator-insensitive form of a label, so 'Ankle boot' == 'ankle_boot' == 'ANKLE-BOOT'."""
    return re.sub(r"[\s_\-]+", "", str(text).strip().lower())


@dataclass(frozen=True)
class Taxonomy:
    """A validated two-level label tree.

    Attributes:
        name: Taxonomy name, e.g. ``fashion_mnist``.
        titles: What each level means, e.g. ``{"coarse": "group", "fine": "class"}``.
        coarse: Coarse class names; the id is the position.
        fine: Fine class names; the id is the position.
        parents: For each fine id, the id of its coarse parent.
        aliases: Per level, the extra strings that name each class (not normalized).
        attributes: Heads outside the tree, ``{head: class names}``; class ids are positions. Usually read
            from the data (``with_attributes``), then stored with the taxonomy in every checkpoint.
    """

    name: str
    titles: dict[str, str]
    coarse: tuple[str, ...]
    fine: tuple[str, ...]
    parents: tuple[int, ...]
    aliases: dict[str, tuple[tuple[str, ...], ...]]
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _lookup: dict[str, dict[str, int]] = field(default_factory=dict, compare=False, repr=False)

    def names(self, head: str) -> tuple[str, ...]:
        """Class names of a head: 'coarse', 'fine' or an attribute head."""
        if head in self.attributes:
            return self.attributes[head]
        return self.coarse if head == "coarse" else self.fine

    def title(self, head: str) -> str:
        return self.titles.get(head, head)

    def with_attributes(self, attributes: dict[str, tuple[str, ...]]) -> Taxonomy:
        """The same tree with these attribute heads (replacing any it had)."""
        check_attributes(attributes, self.name)
        return dataclasses.replace(self, attributes={k: tuple(v) for k, v in attributes.items()})

    def num_classes(self, level: str) -> int:
        return len(self.names(level))

    def lookup(self, label: str, level: str = "fine") -> int:
        """Map a class name or alias to its id; an unknown label names the valid ones.

        Raises:
            UserError: when the label names no class of that level.
        """
        key = normalize_label(label)
        if key in self._lookup[level]:
            return self._lookup[level][key]
        close = difflib.get_close_matches(str(label), self.names(level), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UserError(
            f"label {label!r} is not a {self.titles[level]} of taxonomy '{self.name}'.{hint} "
            f"Valid {level} names: {', '.join(self.names(level))}. "
            "Add an alias to the taxonomy YAML if it is a variant."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-YAML form, the same shape as the taxonomy files (stored in checkpoints and run folders)."""
        spec = {
            "name": self.name,
            "levels": dict(self.titles),
            "coarse": [{"name": n, "aliases": list(a)} for n, a in zip(self.coarse, self.aliases["coarse"])],
            "fine": [
                {"name": n, "parent": self.coarse[p], "aliases": list(a)}
                for n, p, a in zip(self.fine, self.parents, self.aliases["fine"])
            ],
        }
        if self.attributes:
            spec["attributes"] = {head: list(names) for head, names in self.attributes.items()}
        return spec


def check_attributes(attributes: dict[str, Any], source: str) -> None:
    """Attribute heads need their own names (not coarse/fine) and distinct, non-empty class names."""
    if not isinstance(attributes, dict):
        raise UserError(f"taxonomy {source}: 'attributes' must map head names to lists of class names")
    for head, names in attributes.items():
        if head in LEVELS or not str(head).isidentifier():
            raise UserError(f"taxonomy {source}: attribute head {head!r} must be a plain name other than coarse/fine")
        if not isinstance(names, (list, tuple)) or not names or len(set(map(str, names))) != len(names):
            raise UserError(f"taxonomy {source}: attribute head {head!r} needs a list of distinct class names")


def build_taxonomy(spec: dict[str, Any], source: str = "<dict>") -> Taxonomy:
    """Validate a taxonomy spec (as loaded from YAML) and build the frozen object.

    Raises:
        UserError: duplicate names, a fine class whose parent is not a coarse class (orphan), a coarse class
            with no fine class, or an alias that names two classes of one level.
    """

    def fail(msg: str) -> UserError:
        return UserError(f"taxonomy {source}: {msg}")

    for key in ("name", "coarse", "fine"):
        if key not in spec:
            raise fail(f"missing key '{key}'")
    unknown = set(spec) - {"name", "levels", "coarse", "fine", "attributes"}
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}; allowed: name, levels, coarse, fine, attributes")
    attributes = spec.get("attributes") or {}
    check_attributes(attributes, source)
    titles = {"coarse": "coarse class", "fine": "fine class", **(spec.get("levels") or {})}
    titles.update({head: head for head in attributes if head not in titles})

    entries: dict[str, list[dict]] = {}
    for level in LEVELS:
        items = spec[level]
        if not isinstance(items, list) or not items:
            raise fail(f"'{level}' must be a non-empty list of classes")
        entries[level] = [item if isinstance(item, dict) else {"name": item} for item in items]

    lookup: dict[str, dict[str, int]] = {}
    names: dict[str, tuple[str, ...]] = {}
    aliases: dict[str, tuple[tuple[str, ...], ...]] = {}
    for level in LEVELS:
        table: dict[str, int] = {}
        level_names = []
        for i, item in enumerate(entries[level]):
            name = str(item.get("name", "")).strip()
            if not name:
                raise fail(f"{level} class #{i} has no name")
            level_names.append(name)
            for alias in [name, *map(str, item.get("aliases") or [])]:
                key = normalize_label(alias)
                if key in table and table[key] != i:
                    other = level_names[table[key]]
                    what = "duplicate class name" if alias == name else "ambiguous alias"
                    raise fail(f"{what} {alias!r}: it names both {other!r} and {name!r} at the {level} level")
                table[key] = i
        lookup[level] = table
        names[level] = tuple(level_names)
        aliases[level] = tuple(tuple(map(str, item.get("aliases") or [])) for item in entries[level])

    parents = []
    for item in entries["fine"]:
        parent = item.get("parent")
        if parent is None or normalize_label(parent) not in lookup["coarse"]:
            raise fail(
                f"fine class {item['name']!r} is an orphan: parent {parent!r} is not a coarse class "
                f"({', '.join(names['coarse'])})"
            )
        parents.append(lookup["coarse"][normalize_label(parent)])
    childless = [c for i, c in enumerate(names["coarse"]) if i not in parents]
    if childless:
        raise fail(f"coarse classes without any fine class: {childless}; give each at least one fine child")

    return Taxonomy(
        name=str(spec["name"]),
        titles={k: str(v) for k, v in titles.items()},
        coarse=names["coarse"],
        fine=names["fine"],
        parents=tuple(parents),
        aliases=aliases,
        attributes={str(head): tuple(map(str, v)) for head, v in attributes.items()},
        _lookup=lookup,
    )


def load_taxonomy(name_or_path: str | Path) -> Taxonomy:
    """Load a taxonomy by name (a file in the shipped ``configs/taxonomy/``) or by path to a YAML file."""
    shipped = config_dir() / "taxonomy"
    path = Path(name_or_path)
    if not path.suffix:
        path = shipped / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in shipped.glob("*.yaml"))
        raise UserError(f"taxonomy {str(name_or_path)!r} not found (looked for {path}). Known taxonomies: {known}")
    with open(path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict):
        raise UserError(f"taxonomy {path}: expected a mapping with name, levels, coarse, fine")
    return build_taxonomy(spec, source=str(path))


def save_taxonomy(taxonomy: Taxonomy, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(taxonomy.to_dict(), f, allow_unicode=True, sort_keys=False)
