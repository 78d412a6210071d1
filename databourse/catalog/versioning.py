"""Semantic versions of data products, derived from how their schema changed (pure functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

# [{"name": "order_id", "type": "string"}, ...] in column order; a column still holding personal
# data after anonymization also carries "personal_data": <category>.
Schema = list[dict[str, str]]
Bump = Literal["major", "minor", "patch"]

_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
FIRST_VERSION = "1.0.0"


@dataclass(frozen=True)
class SchemaDiff:
    """Column names added, removed and retyped between two schemas (each in column order)."""

    added: list[str]
    removed: list[str]
    retyped: list[str]
    exposed: list[str] = field(default_factory=list)  # "column:CATEGORY" newly personal

    @property
    def bump(self) -> Bump:
        """Removed/retyped columns break readers, newly exposed personal data changes what a
        buyer receives and what the law asks of them: major. Added columns: minor."""
        if self.removed or self.retyped or self.exposed:
            return "major"
        if self.added:
            return "minor"
        return "patch"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the three lists and the bump kind."""
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "retyped": list(self.retyped),
            "exposed": list(self.exposed),
            "bump": self.bump,
        }


def _types(schema: Schema) -> dict[str, str]:
    """Name -> type, refusing malformed entries and duplicate names."""
    types: dict[str, str] = {}
    for position, column in enumerate(schema):
        name, type_ = column.get("name"), column.get("type")
        if not isinstance(name, str) or not name or not isinstance(type_, str) or not type_:
            raise ValueError(f"schema column at position {position} needs a 'name' and a 'type'")
        if name in types:
            raise ValueError(f"schema has column {name!r} twice")
        types[name] = type_
    return types


def _exposed(old: Schema, new: Schema) -> list[str]:
    """'column:CATEGORY' for personal data in `new` that `old` did not expose."""
    before = {(c["name"], c.get("personal_data")) for c in old}
    return [
        f"{c['name']}:{c['personal_data']}"
        for c in new
        if c.get("personal_data") and (c["name"], c["personal_data"]) not in before
    ]


def schema_diff(old: Schema, new: Schema) -> SchemaDiff:
    """What changed from `old` to `new`: added (new order), removed and retyped (old order)."""
    old_types, new_types = _types(old), _types(new)
    return SchemaDiff(
        exposed=_exposed(old, new),
        added=[name for name in new_types if name not in old_types],
        removed=[name for name in old_types if name not in new_types],
        retyped=[
            name for name, t in old_types.items() if name in new_types and new_types[name] != t
        ],
    )


def parse_version(v: str) -> tuple[int, int, int]:
    """'1.2.3' -> (1, 2, 3); ValueError on anything that is not MAJOR.MINOR.PATCH."""
    match = _VERSION.match(v) if isinstance(v, str) else None
    if match is None:
        raise ValueError(f"not a semantic version (MAJOR.MINOR.PATCH): {v!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def format_version(parts: tuple[int, int, int]) -> str:
    """(1, 2, 3) -> '1.2.3'."""
    return "{}.{}.{}".format(*parts)


def next_version(previous: str | None, diff: SchemaDiff | None) -> str:
    """The version after `previous` for `diff` ('1.0.0' first; no diff means a patch)."""
    if previous is None:
        return FIRST_VERSION
    major, minor, patch = parse_version(previous)
    bump = diff.bump if diff is not None else "patch"
    if bump == "major":
        return format_version((major + 1, 0, 0))
    if bump == "minor":
        return format_version((major, minor + 1, 0))
    return format_version((major, minor, patch + 1))
