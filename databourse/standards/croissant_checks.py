"""A Croissant card's file objects checked: against a version's folder, and against its manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any


def file_problems(doc: dict[str, Any], folder: Path) -> list[str]:
    """Each file object of a card whose file under `folder` (the version's) is missing or not
    the sha256 the card names: mlcroissant checks only the files a record set reads directly,
    not the members of a file set."""
    problems = []
    for item in doc.get("distribution", []):
        if item.get("@type") != "cr:FileObject":
            continue
        rel = PurePosixPath(str(item.get("@id")))
        path = folder.joinpath(*rel.parts)
        if rel.is_absolute() or ".." in rel.parts:
            problems.append(f"{rel}: outside the version's folder")
            continue
        if not path.is_file():
            problems.append(f"{item['@id']}: missing")
            continue
        with path.open("rb") as fh:
            found = hashlib.file_digest(fh, "sha256").hexdigest()
        if found != item.get("sha256"):
            named = str(item.get("sha256"))[:16]
            problems.append(f"{rel}: sha256 {found[:16]} is not the card's {named}")
    return problems


def manifest_problems(doc: dict[str, Any], files: list[dict[str, Any]]) -> list[str]:
    """How a card's file objects disagree with its version's manifest (`bourse verify --all`):
    each names a file of the version, with the manifest's sha256, and none is left out."""
    listed = {str(f["path"]): str(f["sha256"]) for f in files}
    carried: dict[str, str] = {}
    for item in doc.get("distribution", []):
        if item.get("@type") == "cr:FileObject":
            carried[str(item.get("@id"))] = str(item.get("sha256"))
    problems = [f"{p}: not a file of the version" for p in sorted(set(carried) - set(listed))]
    problems += [f"{p}: missing from the card" for p in sorted(set(listed) - set(carried))]
    problems += [
        f"{p}: sha256 {carried[p][:16]} is not the manifest's {listed[p][:16]}"
        for p in sorted(set(carried) & set(listed))
        if carried[p] != listed[p]
    ]
    return problems
