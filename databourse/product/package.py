"""Package a product version: Parquet files, a content hash, and `manifest.json` written last.

The content hash covers the files' sha256, the schema, the product config's fingerprint and
(manifest version 2) the transfer facts the cross-border gate decides on (origin, personal data
remaining by category, sensitive categories, distinct individuals, declared important data), so
the same input and config give the same hash, nothing new is published, and a manifest edited
after packaging no longer matches the hash approvals are bound to. A version is visible only once
its manifest exists; files are written with if-absent, so a version is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databourse.errors import (
    CatalogError,
    DataBourseError,
    ManifestMismatch,
    ObjectExists,
    StorageError,
)
from databourse.product.manifest_once import write_manifest_once
from databourse.storage import zones
from databourse.storage.store import ObjectStore
from databourse.transfer.policy import facts_for

log = logging.getLogger(__name__)
ROW_GROUP_ROWS = 128_000
MANIFEST = "manifest.json"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
MANIFEST_SCHEMA = Path(__file__).parents[1] / "schemas" / "manifest.schema.json"
MANIFEST_VERSION = 2  # 2: the transfer facts are inside the content hash (1: they were not)


@dataclass(frozen=True)
class FileEntry:
    """One file of a version, relative to the version folder."""

    path: str
    bytes: int
    sha256: str


def schema_of(table: pa.Table) -> list[dict[str, str]]:
    """Column names and Arrow type names, in order."""
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def write_parquet(
    table: pa.Table,
    out_dir: Path,
    partition_by: str | None = None,
    max_rows_per_file: int = 1_000_000,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> list[FileEntry]:
    """zstd Parquet with statistics, deterministic bytes and names for the same table.

    With `partition_by`, hive-style folders `column=value/` (the column then lives in the path,
    as hive readers expect); every file holds at most `max_rows_per_file` rows.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for folder, part in _partitions(table, partition_by):
        for n, start in enumerate(range(0, max(part.num_rows, 1), max_rows_per_file)):
            rel = f"{folder}part-{n:05d}.parquet"
            path = out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                part.slice(start, max_rows_per_file),
                path,
                compression="zstd",
                row_group_size=row_group_rows,
                write_statistics=True,
            )
            data = path.read_bytes()
            entries.append(
                FileEntry(path=rel, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
            )
    return entries


def _partitions(table: pa.Table, column: str | None) -> list[tuple[str, pa.Table]]:
    if column is None:
        return [("", table)]
    values = table[column]
    keys = sorted({v for v in values.to_pylist()}, key=lambda v: (v is None, str(v)))
    rest = table.drop_columns([column])
    parts = []
    for value in keys:
        mask = (
            pc.is_null(values) if value is None else pc.equal(values, pa.scalar(value, values.type))
        )
        label = HIVE_NULL if value is None else quote(str(value), safe="-_.")
        parts.append((f"{column}={label}/", rest.filter(pc.fill_null(mask, False))))
    return parts


def content_hash(
    files: list[FileEntry],
    schema: list[dict[str, str]],
    config_sha256: str,
    facts: dict[str, Any] | None = None,
) -> str:
    """The identity of a version: its files, its schema, the config that made it and the facts
    its transfers are decided on (`transfer_facts`; None only for manifest-1 versions)."""
    identity: dict[str, Any] = {
        "files": [asdict(f) for f in files],
        "schema": schema,
        "config": config_sha256,
    }
    if facts is not None:
        identity["transfer_facts"] = facts
    canonical = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def transfer_facts(
    origin: str, remaining: dict[str, str], individuals: int, important_data: bool
) -> dict[str, Any]:
    """The facts the transfer gate decides on, as the content hash covers them."""
    facts = facts_for(origin, dict(remaining), int(individuals), bool(important_data))
    return {
        "origin": facts.origin,
        "remaining": dict(sorted(remaining.items())),
        "individuals": facts.individuals,
        "sensitive_categories": list(facts.sensitive_categories),
        "important_data": facts.important_data,
    }


def manifest_facts(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The transfer facts exactly as a manifest states them (None for a manifest-1 version)."""
    if manifest.get("manifest_version", 1) < 2:
        return None
    personal = manifest.get("personal_data") or {}
    return {
        "origin": (manifest.get("lineage") or {}).get("origin"),
        "remaining": dict(sorted((personal.get("remaining") or {}).items())),
        "individuals": personal.get("individuals"),
        "sensitive_categories": list(personal.get("sensitive_categories") or []),
        "important_data": personal.get("important_data"),
    }


def manifest_hash(manifest: dict[str, Any]) -> str:
    """The content hash recomputed from what the manifest lists (files, schema, config, facts)."""
    files = [FileEntry(**f) for f in manifest["files"]]
    config = str((manifest.get("lineage") or {}).get("product_config_sha256"))
    return content_hash(files, manifest["schema"], config, manifest_facts(manifest))


def code_version() -> str:
    try:
        return metadata.version("databourse")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_manifest(
    *,
    product: str,
    version: str,
    content_hash: str,
    schema: list[dict[str, str]],
    rows: int,
    files: list[FileEntry],
    lineage: dict[str, Any],
    quality: dict[str, Any],
    privacy: dict[str, Any],
    personal_data: dict[str, Any],
    usage_terms: dict[str, Any],
    usage_policy: dict[str, Any],
    markets: list[str],
    schema_diff: dict[str, Any] | None,
    corpus: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a version (everything a buyer or regulator needs to trust it); a corpus
    version's adds what its build measured (`corpus`: counts and rates)."""
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "product": product,
        "version": version,
        "content_hash": content_hash,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "schema": schema,
        "schema_diff": schema_diff,
        "row_count": rows,
        "files": [asdict(f) for f in files],
        "lineage": {**lineage, "code_version": code_version()},
        "quality": quality,
        "privacy": privacy,
        "personal_data": personal_data,
        "usage_terms": usage_terms,
        "usage_policy": usage_policy,
        "markets": markets,
    }
    if corpus is not None:
        manifest["corpus"] = corpus
    validate_manifest(manifest)
    if manifest_hash(manifest) != content_hash:
        raise CatalogError(
            f"content hash {content_hash[:16]} of {product}@{version} does not cover this "
            "manifest's files, schema, config and transfer facts: build the version again",
            product=product,
            version=version,
        )
    return manifest


@functools.cache
def _manifest_validator() -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads(MANIFEST_SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Check a manifest against the published JSON Schema; CatalogError lists every problem."""
    errors = sorted(_manifest_validator().iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        problems = [
            f"{'/'.join(map(str, e.path)) or '(top)'}: {e.validator} failed" for e in errors
        ]
        raise CatalogError(
            f"manifest of {manifest.get('product')}@{manifest.get('version')} "
            f"does not match {MANIFEST_SCHEMA.name}: {problems}",
            problems=problems,
        )


def publish_files(
    store: ObjectStore,
    product: str,
    version: str,
    local_dir: Path,
    files: list[FileEntry],
    manifest: dict[str, Any],
) -> str:
    """Upload the files, then the manifest last; idempotent; returns the manifest's URI."""
    return publish_version(store, product, version, local_dir, files, manifest)[0]


def publish_version(
    store: ObjectStore,
    product: str,
    version: str,
    local_dir: Path,
    files: list[FileEntry],
    manifest: dict[str, Any],
) -> tuple[str, str]:
    """Upload the files, then the manifest last, if absent; the manifest's URI and the sha256
    of the bytes this run built. A manifest found in place is kept only if it is this build's
    (manifest_once; ObjectChanged otherwise)."""
    prefix = zones.product_prefix(product, version)
    manifest_key = f"{prefix}/{MANIFEST}"
    if not store.exists(manifest_key):
        for entry in files:
            key = f"{prefix}/{entry.path}"
            try:
                store.put_file(key, local_dir / entry.path, if_absent=True)
            except ObjectExists:
                # left by a run that died before its manifest: it must be the same bytes
                _verify(store, key, entry)
    sha256 = write_manifest_once(store, manifest_key, manifest)
    log.info("packaged %s@%s: %d file(s)", product, version, len(files))
    return store.uri(manifest_key), sha256


def _verify(store: ObjectStore, key: str, entry: FileEntry) -> None:
    data = store.get_bytes(key)
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise StorageError(f"{key} exists with different content than this version's file", key=key)


def manifest_sha256(store: ObjectStore, product: str, version: str) -> str | None:
    """sha256 of the version's manifest bytes as stored, or None while it has none."""
    key = f"{zones.product_prefix(product, version)}/{MANIFEST}"
    if not store.exists(key):
        return None
    return hashlib.sha256(store.get_bytes(key)).hexdigest()


def read_manifest(store: ObjectStore, product: str, version: str) -> dict[str, Any] | None:
    """The version's manifest, or None while it has none (not visible)."""
    key = f"{zones.product_prefix(product, version)}/{MANIFEST}"
    if not store.exists(key):
        return None
    result: dict[str, Any] = json.loads(store.get_bytes(key))
    return result


def fetch_files(
    store: ObjectStore, manifest: dict[str, Any], folder: Path, consequence: str
) -> None:
    """Copy the version's files into `folder`, each hashed as it is copied: what is then read is
    what was checked. ManifestMismatch names the first file that differs from its manifest's
    sha256 (or is missing); `consequence` ends the message ("no grant")."""
    product, version = manifest["product"], manifest["version"]
    prefix = zones.product_prefix(product, version)
    for entry in manifest["files"]:
        key = f"{prefix}/{entry['path']}"
        rel = PurePosixPath(entry["path"])
        if rel.is_absolute() or ".." in rel.parts:
            found = "outside the version"
        else:
            path = folder.joinpath(*rel.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            try:
                with store.open(key) as src, path.open("wb") as out:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
                found = digest.hexdigest()
            except (DataBourseError, OSError):
                found = "missing"
        if found != entry["sha256"]:
            raise ManifestMismatch(
                f"{key} is {found[:16]}, its manifest says {entry['sha256'][:16]}: the file was "
                f"changed or removed after packaging; {consequence}. Run `bourse verify "
                f"{product}@{version}`",
                product=product,
                version=version,
                key=key,
            )
