"""Staged and raw data are what was ingested: each reuse checks them against the audit trail.

An ingest writes the raw bytes, a staged Parquet and `_ingest.json`, then an `ingest` audit event
authenticated by the audit key (sha256 and size of both). Whoever can write the store can rewrite
`_ingest.json` to match edited bytes; they cannot write a matching event. So a record is trusted
only when its ingest id is the start of its raw sha256 and it agrees with every authenticated
`ingest` event of that id, and a staged file is read only after its sha256 (streamed, ~1 GB/s)
matches. Ingests audited before staged hashes were recorded are checked against `_ingest.json`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from databourse.errors import ObjectChanged
from databourse.storage.store import ObjectStore

if TYPE_CHECKING:
    from databourse.ingest.records import IngestResult

ID_DIGITS = 16  # the ingest id is the first 16 hex digits of the raw file's sha256
_FIELDS = ("sha256", "size", "staged_sha256", "staged_size")
_BLOCK = 1 << 20


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size of a local file, read in 1 MiB blocks."""
    with path.open("rb") as fh:
        return stream_digest(fh)


def stream_digest(fh: BinaryIO) -> tuple[str, int]:
    """sha256 (hex) and size of what is left in an open binary file, read in 1 MiB blocks."""
    digest, size = hashlib.sha256(), 0
    while block := fh.read(_BLOCK):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def record_problems(record: IngestResult, events: list[dict[str, Any]]) -> list[str]:
    """How `_ingest.json` disagrees with its id rule and its authenticated ingest events."""
    problems = []
    if record.sha256[:ID_DIGITS] != record.ingest_id:
        problems.append(
            f"ingest id {record.ingest_id} is not the start of the recorded sha256"
            f" {record.sha256[:ID_DIGITS]}... (the raw record was rewritten)"
        )
    for event in matching(record, events)[-1:]:  # a re-ingest after a repair records anew
        for name in _FIELDS:
            trail, stored = event["detail"].get(name), getattr(record, name)
            if trail is not None and trail != stored:
                problems.append(
                    f"{name} {str(stored)[:16]} differs from {str(trail)[:16]} in the"
                    f" authenticated audit event {event['seq']} (recorded at ingest)"
                )
    return problems


def matching(record: IngestResult, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of this record's provider, dataset and ingest id."""
    ident = (record.provider, record.dataset, record.ingest_id)
    found = [
        e
        for e in events
        if tuple(e["detail"].get(k) for k in ("provider", "dataset", "ingest_id")) == ident
    ]
    return sorted(found, key=lambda e: int(e["seq"]))


def expected_staged(record: IngestResult, events: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The staged file's sha256 and size to check (ObjectChanged if the record is untrusted)."""
    problems = record_problems(record, events)
    if not matching(record, events):
        problems.append(
            f"ingest {record.ingest_id} has no authenticated 'ingest' event in the audit trail"
            " (run the drop again to record it, with the audit key set)"
        )
    if problems:
        raise ObjectChanged(
            f"{key}: {'; '.join(problems)}; investigate before using this ingest",
            key=key,
            problems=problems,
        )
    return {"sha256": record.staged_sha256, "size": record.staged_size}


def check_staged(path: Path, uri: str, sha256: str | None, size: int | None) -> None:
    """ObjectChanged naming the staged object when a local copy is not what ingest wrote."""
    if sha256 is not None:  # None: ingested before staged hashes were recorded (verify warns)
        with path.open("rb") as fh:
            _compare(stream_digest(fh), uri, sha256, size)


def check_staged_object(store: ObjectStore, key: str, sha256: str | None, size: int | None) -> None:
    """ObjectChanged naming the staged object when its stored bytes are not what ingest wrote."""
    if sha256 is not None:
        with store.open(key) as fh:
            _compare(stream_digest(fh), store.uri(key), sha256, size)


def check_digest(found: tuple[str, int], uri: str, sha256: str | None, size: int | None) -> None:
    """ObjectChanged naming the staged object when the digest and size read of it (`found`)
    are not what ingest wrote."""
    if sha256 is not None:
        _compare(found, uri, sha256, size)


def _compare(found: tuple[str, int], uri: str, sha256: str, size: int | None) -> None:
    digest, found_size = found
    if digest != sha256 or (size is not None and found_size != size):
        raise ObjectChanged(
            f"{uri}: staged Parquet changed after ingest: sha256 {digest[:16]}... ({found_size}"
            f" bytes) differs from {sha256[:16]}... ({size} bytes) recorded at ingest; not used:"
            " investigate, then delete it and its ingest's _ingest.json (raw stays) and run the"
            " drop again",
            key=uri,
            expected=sha256,
            found=digest,
        )
