"""What `bourse ingest` was pointed at: a file, a folder, a glob, or an s3:// key or prefix.

Each source becomes one ingest. Folders are walked recursively in name order; names a provider
would not mean as data (hidden, `.tmp`/`.part`, sidecar manifests) are skipped. A sidecar
manifest (`x.csv.manifest.json`, or any `*.manifest.json` of the folder) is verified before
anything is ingested: sha256 and size must match, and its row count is checked after parsing.

Symbolic links are never followed: a link (given, matched by a glob, or met in a folder, to a file
or a folder) becomes a source of its own, which the ingest refuses and audits without reading the
file it points at; a manifest that is, or lists, a link refuses its folder. Paths are made absolute
without resolving links, so a source is always named as it was found.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from databourse.errors import IngestRejected
from databourse.ingest.files import sha256_file
from databourse.ingest.landing_manifest import Manifest, parse_drop_manifest
from databourse.storage.store import parse_s3_uri, s3_client

_SKIPPED_SUFFIXES = (".tmp", ".part", ".crdownload", ".manifest.json")


@dataclass(frozen=True)
class Source:
    """One file to ingest: where it is, its name, and the rows its manifest promises."""

    location: str  # a local path or an s3:// URI
    name: str
    expected_rows: int | None = None


def expand(source: str, endpoint_url: str | None = None, region: str = "us-east-1") -> list[Source]:
    """Every file `source` designates, in order (IngestRejected when it designates none)."""
    if source.startswith("s3://"):
        found = _s3_sources(source, endpoint_url, region)
    elif glob.has_magic(source):
        matches = [_absolute(p) for p in sorted(glob.glob(source))]
        found = [Source(str(p), p.name) for p in matches if _listed(p) and _wanted(p.name)]
    elif (path := _absolute(source)).is_symlink():
        found = [Source(str(path), path.name)]  # refused by the ingest, which audits it
    elif path.is_dir():
        found = _folder_sources(path)
    elif path.is_file():
        found = _with_manifests([path], path.parent)
    else:
        raise IngestRejected(f"{source}: no such file or folder", file=source)
    if not found:
        raise IngestRejected(f"{source}: no data files there", file=source)
    return found


def _wanted(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(_SKIPPED_SUFFIXES)


def _absolute(path: str | Path) -> Path:
    """The path made absolute without resolving symbolic links (a link stays a link)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def _listed(path: Path) -> bool:
    """A regular file, or a link of any kind (the ingest refuses it, naming it)."""
    return path.is_symlink() or path.is_file()


def _folder_sources(folder: Path) -> list[Source]:
    """The folder's files, walked without following links; the links met are sources too."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):  # followlinks=False
        here = Path(dirpath)
        links = [d for d in dirnames if (here / d).is_symlink()]
        files += [here / n for n in (*filenames, *links) if _wanted(n) and _listed(here / n)]
    files.sort()
    found: list[Source] = []
    for parent in sorted({p.parent for p in files}):
        found += _with_manifests([p for p in files if p.parent == parent], parent)
    return found


def _with_manifests(files: list[Path], folder: Path) -> list[Source]:
    """Attach and verify the sidecar manifests of a folder's files."""
    promised: dict[str, tuple[Path, int | None]] = {}
    for path in sorted(folder.glob("*.manifest.json")):
        if path.is_symlink():
            raise IngestRejected(
                f"{path.name}: the manifest is a symbolic link; links are never followed",
                file=path.name,
            )
        manifest = parse_drop_manifest(path.read_bytes())
        if isinstance(manifest, str):
            raise IngestRejected(f"{path.name}: invalid manifest: {manifest}", file=path.name)
        promised |= _check(manifest, path, folder)
    return [
        Source(str(p), p.name, promised[p.name][1] if p.name in promised else None) for p in files
    ]


def _check(manifest: Manifest, path: Path, folder: Path) -> dict[str, tuple[Path, int | None]]:
    out: dict[str, tuple[Path, int | None]] = {}
    for entry in manifest.files:
        target = folder / entry.name
        if target.is_symlink():
            raise IngestRejected(
                f"{path.name}: lists {entry.name!r}, a symbolic link; links are never followed",
                file=entry.name,
            )
        if not target.is_file():
            raise IngestRejected(
                f"{path.name}: lists {entry.name!r}, which is not there (incomplete drop)",
                file=entry.name,
            )
        if entry.size is not None and entry.size != target.stat().st_size:
            raise IngestRejected(
                f"{entry.name}: {target.stat().st_size} bytes, its manifest says {entry.size}",
                file=entry.name,
            )
        if sha256_file(target) != entry.sha256.lower():
            raise IngestRejected(
                f"{entry.name}: sha256 differs from its manifest {path.name}", file=entry.name
            )
        out[entry.name] = (target, entry.rows)
    return out


def _s3_sources(uri: str, endpoint_url: str | None, region: str) -> list[Source]:
    bucket, key = parse_s3_uri(uri)
    client = s3_client(endpoint_url, region)
    if key and not uri.endswith("/"):
        return [Source(uri, key.rsplit("/", 1)[-1])]
    prefix = f"{key}/" if key else ""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"].rsplit("/", 1)[-1]
            if name and _wanted(name):
                found.append(Source(f"s3://{bucket}/{obj['Key']}", name))
    return found
