"""Local file access to objects, whichever store holds them; staged data checked before use."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from databourse.errors import ObjectChanged
from databourse.ingest.records import IngestResult
from databourse.ingest.staged_integrity import check_staged, expected_staged
from databourse.storage import zones
from databourse.storage.store import ObjectStore
from tasks import resources


@contextmanager
def local_copy(store: ObjectStore, key: str) -> Iterator[Path]:
    """The object as a local file: in place on the local store, downloaded from S3."""
    path = store.local_path(key)
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="databourse-") as tmp:
        target = Path(tmp) / key.rsplit("/", 1)[-1]
        store.download(key, target)
        yield target


def trusted_staged(store: ObjectStore, record: IngestResult) -> dict[str, Any]:
    """The staged file's sha256 and size, once `_ingest.json` agrees with the audit trail."""
    key = f"{zones.raw_prefix(record.provider, record.dataset, record.ingest_id)}/_ingest.json"
    events = resources.catalog().audit_authenticated("ingest")
    with audited_refusal(record.provider, record.dataset):
        return expected_staged(record, events, store.uri(key))


@contextmanager
def staged_copy(store: ObjectStore, key: str, expected: dict[str, Any]) -> Iterator[Path]:
    """A local copy of a staged file whose sha256 and size are `expected` (ObjectChanged if not)."""
    provider, dataset = key.split("/")[1:3]  # staging/<provider>/<dataset>/<ingest>/...
    with local_copy(store, key) as path:
        with audited_refusal(provider, dataset):
            check_staged(path, store.uri(key), expected.get("sha256"), expected.get("size"))
        yield path


@contextmanager
def audited_refusal(provider: str, dataset: str) -> Iterator[None]:
    """A refused staged or raw record is written to the audit trail, then raised."""
    try:
        yield
    except ObjectChanged as exc:
        resources.audit("quarantine", exc, provider=provider, dataset=dataset, stage="staged")
        raise


@contextmanager
def ingested_copy(store: ObjectStore, record: IngestResult) -> Iterator[Path]:
    """The staged Parquet of an ingest, checked against the audit trail and its hash."""
    with staged_copy(store, record.staged_key, trusted_staged(store, record)) as path:
        yield path
