"""The record of one ingest (`_ingest.json`), and the checks that raw and staged still match it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from databourse.errors import ObjectChanged, StorageError
from databourse.ingest.staged_integrity import check_staged_object
from databourse.storage import zones
from databourse.storage.store import ObjectStore


@dataclass(frozen=True)
class IngestResult:
    """What `_ingest.json` records about one ingested file."""

    provider: str
    dataset: str
    ingest_id: str
    sha256: str
    size: int
    source_name: str
    format: str
    encoding: str
    rows: int
    raw_key: str
    staged_key: str
    schema: list[dict[str, str]]
    ingested_at: str
    compression: str = "none"
    bom: bool = False
    delimiter: str | None = None
    header: bool = True
    members: list[str] = field(default_factory=list)
    member_encodings: list[str | None] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)
    expected_rows: int | None = None  # from the provider's sidecar manifest, when there is one
    original_name: str | None = None  # the name as dropped, when the key needed a safer one
    sheet: str | None = None  # the xlsx sheet read
    staged_sha256: str | None = None  # of the staged Parquet as written (None: older ingests)
    staged_size: int | None = None
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("duplicate")
        return data


def verify_raw(store: ObjectStore, record: IngestResult) -> None:
    """Re-read a raw object and compare its sha256 with `_ingest.json` (StorageError if not)."""
    digest = hashlib.sha256()
    with store.open(record.raw_key) as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != record.sha256:
        raise StorageError(
            f"{store.uri(record.raw_key)}: raw object corrupted: sha256"
            f" {digest.hexdigest()[:16]}... differs from {record.sha256[:16]}... (at ingest)",
            key=record.raw_key,
            expected=record.sha256,
            found=digest.hexdigest(),
        )


def verify_staged(store: ObjectStore, record: IngestResult, sha256: str) -> None:
    """A duplicate's record and staged Parquet are those of these bytes (ObjectChanged if not)."""
    key = f"{zones.raw_prefix(record.provider, record.dataset, record.ingest_id)}/_ingest.json"
    if record.sha256 != sha256:
        raise ObjectChanged(
            f"{store.uri(key)}: records sha256 {record.sha256[:16]}..., the file's is"
            f" {sha256[:16]}...: the raw record was rewritten; investigate before ingesting",
            key=key,
            expected=sha256,
            found=record.sha256,
        )
    check_staged_object(store, record.staged_key, record.staged_sha256, record.staged_size)


def load_ingest(store: ObjectStore, provider: str, dataset_id: str, ingest_id: str) -> IngestResult:
    """The record of a completed ingest (its `_ingest.json`)."""
    key = f"{zones.raw_prefix(provider, dataset_id, ingest_id)}/_ingest.json"
    return IngestResult(**json.loads(store.get_bytes(key)))
