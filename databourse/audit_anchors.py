"""Anchors of the audit trail: write-once objects in the store outside the catalog database.

`audit/anchors/<seq>.json` holds an event's seq, hash, prev_hash and MAC, and an HMAC of all of
them under the audit key (`anchor_mac`): a store writer without the key cannot make one, and as
the event hash chains every event before it, each anchor pins the whole trail up to it. Every
write transaction that appends anchors its new head once it commits (see `CatalogEngine`).
Verification requires the head's anchor once the head is older than `ANCHOR_GRACE`; an anchor whose
event is gone or different names a truncation or rewrite. Deleting anchors AND cutting the trail
back to an earlier anchored head needs the store to allow deletes: production keeps anchors in
write-once storage (S3 Object Lock, or a bucket the pipeline can only create objects in).
An object under `audit/anchors/` that the audit key does not authenticate (planted by a store
writer, e.g. at a future seq) proves nothing: it is reported, never a break, and the real anchor
of that seq is written beside it (`planted_key`) so that it blocks nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
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


def planted_key(seq: int, digest: str) -> str:
    """Where an anchor goes when a store writer planted an unauthenticated object at its key."""
    return f"{ANCHORS}{seq:012d}.{digest[:16]}.json"


def write_anchor(store: ObjectStore, body: dict[str, Any], key: bytes | None = None) -> None:
    """Write an anchor once; an existing object that differs is an error naming it.

    With the audit `key`, an object at the anchor's name that the key does not authenticate was
    planted by a store writer: the anchor is written beside it (`planted_key`) instead of being
    blocked by it, and verification names the planted object.
    """
    name = anchor_key(int(body["seq"]))
    if _write_once(store, name, body):
        return
    planted = key is not None and _authentic_body(store, name, key) is None
    if planted and _write_once(store, planted_key(int(body["seq"]), str(body["hash"])), body):
        return
    raise AuditError(
        f"the anchor {name} already exists and differs from event {body['seq']} of the "
        "chain: planted in the store, or the chain was rewritten; `bourse audit verify`",
        key=name,
        seq=body["seq"],
    )


def _write_once(store: ObjectStore, name: str, body: dict[str, Any]) -> bool:
    """Create `name` holding `body`; True if it now holds exactly that."""
    try:
        store.put_bytes(name, json.dumps(body, sort_keys=True).encode(), if_absent=True)
        return True
    except ObjectExists:
        pass
    try:
        return bool(json.loads(store.get_bytes(name)) == body)
    except ValueError:
        return False


def _authentic_body(store: ObjectStore, name: str, key: bytes) -> dict[str, Any] | None:
    """The anchor stored at `name` if `key` authenticates it and its name is its seq's."""
    try:
        body = json.loads(store.get_bytes(name))
        ok = hmac.compare_digest(_anchor_mac(key, body), str(body["anchor_mac"]))
        named = name in (anchor_key(int(body["seq"])), planted_key(int(body["seq"]), body["hash"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return body if ok and named else None


@dataclass
class AnchorCheck:
    """What the store's anchors say about the chain: breaks, and objects that prove nothing."""

    count: int = 0
    anchored: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # an authenticated anchor contradicts it
    planted: list[str] = field(default_factory=list)  # not authenticated: reported, not a break


def check_anchors(
    session: Session, store: ObjectStore, keys: dict[str, bytes], newest_only: bool = False
) -> AnchorCheck:
    """Every anchor must be MAC'd and its event still in the chain with the same hash and MAC.

    An object the audit key does not authenticate proves nothing and is only reported as
    planted (a store writer without the key must not be able to fail the chain). With
    `newest_only` (a grant's check) the anchors are read from the newest down to the first
    authenticated one at or below the chain's head: that one pins every event before it (the
    hash chain, whose links `audit.verify` checks), and every one above the head is a cut.
    """
    check = AnchorCheck()
    infos = list(store.list(ANCHORS))
    head = session.scalar(select(func.max(AuditEvent.seq))) or 0
    for info in reversed(infos) if newest_only else infos:
        check.count += 1
        body = _anchor_of(store, info.key, keys)
        if body is None:
            check.planted.append(
                f"anchor {info.key}: not authenticated by the audit key (planted in the store "
                "by someone without it): ignored, remove it once checked"
            )
            continue
        seq = int(body["seq"])
        check.anchored.add(seq)
        problem = _anchor_problem(session, info.key, seq, body)
        if problem:
            check.problems.append(problem)
        if newest_only and seq <= head:
            break
    return check


def _anchor_of(store: ObjectStore, name: str, keys: dict[str, bytes]) -> dict[str, Any] | None:
    """The anchor at `name` if authenticated (without any audit key: if well-formed)."""
    try:
        body = json.loads(store.get_bytes(name))
        key = keys.get(str(body["key_id"]))
        if key is not None:
            return _authentic_body(store, name, key)
        seq, digest = int(body["seq"]), str(body["hash"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    # no audit key at all: nothing is authenticated (verify says so); check what it says
    return body if not keys and name in (anchor_key(seq), planted_key(seq, digest)) else None


def _anchor_problem(session: Session, name: str, seq: int, body: dict[str, Any]) -> str | None:
    """Why the chain contradicts an authenticated anchor (None: the event is as anchored)."""
    ev = session.get(AuditEvent, seq)
    if ev is None:
        return f"anchor {name}: event {seq} is missing from the chain (truncated)"
    if ev.hash != body["hash"] or ev.mac != body.get("mac"):
        return (
            f"anchor {name}: event {seq} differs from its anchor "
            "(the chain was rewritten after it was anchored)"
        )
    return None


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
