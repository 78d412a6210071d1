"""Anchors of the audit trail: write-once objects in the store outside the catalog database.

`audit/anchors/<seq>.json` holds an event's seq, hash, prev_hash and MAC, and an HMAC of all of
them under the audit key (`anchor_mac`): a store writer without the key cannot make one, and as
the event hash chains every event before it, each anchor pins the whole trail up to it. Every
write transaction that appends anchors its new head once it commits (see `CatalogEngine`).
Verification requires the head's anchor once the head is older than `ANCHOR_GRACE`; an anchor whose
event is gone or different names a truncation or rewrite. Deleting anchors AND cutting the trail
back to an earlier anchored head needs the store to allow deletes: production keeps anchors in
write-once storage (S3 Object Lock, or a bucket the pipeline can only create objects in).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from databourse.catalog_models import AuditEvent, iso, to_utc
from databourse.errors import AuditError, ObjectExists
from databourse.keys import Key
from databourse.storage import ObjectStore

ANCHORS = "audit/anchors/"
ANCHOR_GRACE = timedelta(minutes=10)  # a head younger than this may not be anchored yet


def anchor_key(seq: int) -> str:
    """The store key of the anchor of event `seq` (zero-padded: listed in order)."""
    return f"{ANCHORS}{seq:012d}.json"


def _anchor_mac(key: bytes, body: dict[str, Any]) -> str:
    fields = {k: v for k, v in body.items() if k != "anchor_mac"}
    canonical = json.dumps(["anchor", fields], sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def anchor_body(event: AuditEvent, key: Key) -> dict[str, Any]:
    """The anchor of `event`: its seq, hash, prev_hash and MAC, MAC'd itself under `key`."""
    body = {
        "seq": event.seq,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
        "mac": event.mac,
        "key_id": key.key_id,
        "event_at": iso(to_utc(event.at)),
    }
    body["anchor_mac"] = _anchor_mac(key.material, body)
    return body


def write_anchor(store: ObjectStore, body: dict[str, Any]) -> None:
    """Write an anchor once; an existing object that differs is an error naming it."""
    key = anchor_key(int(body["seq"]))
    data = json.dumps(body, sort_keys=True).encode()
    try:
        store.put_bytes(key, data, if_absent=True)
        return
    except ObjectExists:
        pass
    try:
        existing = json.loads(store.get_bytes(key))
    except ValueError:
        existing = None
    if existing != body:
        raise AuditError(
            f"the anchor {key} already exists and differs from event {body['seq']} of the "
            "chain: planted in the store, or the chain was rewritten; `bourse audit verify`",
            key=key,
            seq=body["seq"],
        )


def check_anchors(
    session: Session, store: ObjectStore, keys: dict[str, bytes]
) -> tuple[int, set[int], list[str]]:
    """Every anchor must be MAC'd and its event still in the chain with the same hash and MAC."""
    problems: list[str] = []
    anchored: set[int] = set()
    count = 0
    for info in store.list(ANCHORS):
        count += 1
        try:
            body = json.loads(store.get_bytes(info.key))
            seq, digest, mac = int(body["seq"]), str(body["hash"]), body.get("mac")
            key = keys.get(str(body["key_id"]))
            sealed = key is None or hmac.compare_digest(
                _anchor_mac(key, body), str(body["anchor_mac"])
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            problems.append(f"anchor {info.key}: not a readable, authenticated anchor")
            continue
        if not sealed or (keys and key is None) or info.key != anchor_key(seq):
            problems.append(f"anchor {info.key}: its MAC or name does not match (forged)")
            continue
        anchored.add(seq)
        ev = session.get(AuditEvent, seq)
        if ev is None:
            problems.append(f"anchor {info.key}: event {seq} is missing from the chain (truncated)")
        elif ev.hash != digest or ev.mac != mac:
            problems.append(
                f"anchor {info.key}: event {seq} differs from its anchor "
                "(the chain was rewritten after it was anchored)"
            )
    return count, anchored, problems


def unanchored(
    first: AuditEvent | None, head: AuditEvent | None, anchored: set[int], now: datetime
) -> list[str]:
    """A head older than the grace must have its anchor; a chain must have at least one."""
    if head is None or first is None:
        return []
    minutes = int(ANCHOR_GRACE.total_seconds() // 60)
    if not anchored and now - to_utc(first.at) > ANCHOR_GRACE:
        return [
            f"no anchor of the audit trail in the store ({ANCHORS}), events {first.seq}-"
            f"{head.seq} older than {minutes} min (anchors deleted?)"
        ]
    if head.seq not in anchored and now - to_utc(head.at) > ANCHOR_GRACE:
        return [
            f"event {head.seq} (the head) has no anchor {anchor_key(head.seq)} after {minutes} min "
            "(anchor deleted, or the trail cut back after its last anchor); check, then "
            "`bourse audit anchor`"
        ]
    return []
