"""Quarantine: a file that failed a gate copied aside with `_reason.json` saying why."""

from __future__ import annotations

import datetime as dt
import json
import logging

from databourse.errors import GateFailed, ObjectExists
from databourse.ingest.records import IngestResult
from databourse.storage import zones
from databourse.storage.store import ObjectStore

log = logging.getLogger(__name__)


def quarantine(
    store: ObjectStore,
    provider: str,
    dataset_id: str,
    ingest_id: str,
    original_key: str,
    error: GateFailed,
    sha256: str,
    stage: str = "ingest",
) -> GateFailed:
    """Copy the original to quarantine with `_reason.json`; return the error to raise."""
    prefix = zones.quarantine_prefix(provider, dataset_id, ingest_id)
    name = original_key.rsplit("/", 1)[-1]
    try:
        store.copy(original_key, f"{prefix}/{name}", if_absent=True)
    except ObjectExists:
        pass
    ctx = getattr(error, "context", {})
    reason = {
        "file": name,
        "provider": provider,
        "dataset": dataset_id,
        "ingest_id": ingest_id,
        "sha256": sha256,
        "stage": stage,
        "error": str(error),
        "error_type": type(error).__name__,
        "column": ctx.get("column"),
        "row": ctx.get("row"),
        **{k: ctx[k] for k in _REASON_EXTRAS if ctx.get(k) is not None},
        "original": store.uri(original_key),
        "quarantined_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    store.put_bytes(f"{prefix}/_reason.json", json.dumps(reason, indent=2, default=str).encode())
    log.warning(
        "quarantined %s/%s %s at stage %s: %s",
        provider,
        dataset_id,
        ingest_id,
        stage,
        type(error).__name__,
    )
    return type(error)(
        f"{_named(str(error), name)} (quarantined at {store.uri(prefix)}/)",
        **{
            **ctx,
            "quarantine_uri": store.uri(prefix),
            "file": name,
            "column": reason["column"],
            "row": reason["row"],
            "stage": stage,
        },
    )


_REASON_EXTRAS = (
    *("first_row", "byte_offset", "line", "member", "drift", "expected", "found"),
    *("sheet", "cell"),
)


def _named(message: str, name: str) -> str:
    return message if message.startswith(f"{name}:") else f"{name}: {message}"


def quarantine_ingest(
    store: ObjectStore, record: IngestResult, error: GateFailed, stage: str
) -> GateFailed:
    """Quarantine an ingested file that failed a later gate (quality, personal data)."""
    return quarantine(
        store,
        record.provider,
        record.dataset,
        record.ingest_id,
        record.raw_key,
        error,
        record.sha256,
        stage,
    )
