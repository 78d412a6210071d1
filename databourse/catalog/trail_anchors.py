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
of that seq is written beside it (`planted_key`) so that it blocks nothing. Only names of the
anchor pattern are read, at most `MAX_ANCHOR_BYTES` of each, and a grant's check reads at most
`NEWEST_READS` of them on each side of the head: planted objects cost it neither time nor memory.
An anchor above the head a transaction sees may be of an event committed after its snapshot: the
committed chain is read afresh before it is called a truncation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from databourse.catalog.models import AuditEvent, iso, to_utc
from databourse.errors import AuditError, ObjectExists
from databourse.keys import Key
from databourse.storage.store import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)
ANCHORS = "audit/anchors/"
ANCHOR_GRACE = timedelta(minutes=10)  # a head younger than this may not be anchored yet
MAX_ANCHOR_BYTES = 4096  # an anchor is about 450 bytes: anything larger was planted
NEWEST_READS = 32  # a grant's check reads at most this many objects above, and at/below, the head
# `<seq>.json` or `<seq>.<16 hex of its hash>.json` (`planted_key`): nothing else is an anchor
_NAME = re.compile(r"^audit/anchors/(\d{12})(?:\.[0-9a-f]{16})?\.json$")
# Session.info key: a factory of sessions that see the chain as committed now (CatalogEngine)
FRESH_READS = "fresh_reads"


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
        return bool(_parsed(_small_bytes(store, name)) == body)
    except ValueError:
        return False


def _small_bytes(store: ObjectStore, name: str, size: int = 0) -> bytes | None:
    """The object's bytes if it is no larger than an anchor can be (None: it is larger).

    `size` is the listed size (skips the read); the read itself stops past the bound too, in
    case the object was replaced by a larger one since.
    """
    if size > MAX_ANCHOR_BYTES:
        return None
    with store.open(name) as reader:
        data = reader.read(MAX_ANCHOR_BYTES + 1)
    return data if len(data) <= MAX_ANCHOR_BYTES else None


def _parsed(data: bytes | None) -> Any:
    """The JSON of an object's bytes; ValueError if there is none (too large) or it is not."""
    if data is None:
        raise ValueError("larger than an anchor")
    return json.loads(data)


def _authentic_body(store: ObjectStore, name: str, key: bytes) -> dict[str, Any] | None:
    """The anchor stored at `name` if `key` authenticates it and its name is its seq's."""
    try:
        body = _parsed(_small_bytes(store, name))
    except ValueError:
        return None
    return _authentic(body, name, key)


def _authentic(body: Any, name: str, key: bytes) -> dict[str, Any] | None:
    """`body` if `key` authenticates it and `name` is its seq's anchor name."""
    try:
        ok = hmac.compare_digest(_anchor_mac(key, body), str(body["anchor_mac"]))
        named = name in (anchor_key(int(body["seq"])), planted_key(int(body["seq"]), body["hash"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return dict(body) if ok and named else None


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
    planted (a store writer without the key must not be able to fail the chain); neither is
    one not named like an anchor or larger than one (never read). With `newest_only` (a grant's
    check) the anchors above the chain's head are read from the nearest up (each is a cut
    unless its event was committed after this transaction's snapshot), and those at or below it
    from the newest down to the first authenticated one: that one pins every event before it
    (the hash chain, whose links `audit.verify` checks). At most `NEWEST_READS` on each side.
    """
    check = AnchorCheck()
    head = session.scalar(select(func.max(AuditEvent.seq))) or 0
    named, odd = _named(store.list(ANCHORS))
    if newest_only:
        return _check_newest(session, store, keys, head, named, check)
    for info in odd:
        check.count += 1
        check.planted.append(_planted_message(info.key, "not named like an anchor"))
    for _seq, info in named:
        check.count += 1
        _check_one(session, store, keys, info, head, check)
    return check


def _named(infos: Iterable[ObjectInfo]) -> tuple[list[tuple[int, ObjectInfo]], list[ObjectInfo]]:
    """The objects named like an anchor with their seq (in seq order), and the others."""
    named, odd = [], []
    for info in infos:
        match = _NAME.match(info.key)
        if match:
            named.append((int(match.group(1)), info))
        else:
            odd.append(info)
    named.sort(key=lambda pair: (pair[0], pair[1].key))
    return named, odd


def _check_newest(
    session: Session,
    store: ObjectStore,
    keys: dict[str, bytes],
    head: int,
    named: list[tuple[int, ObjectInfo]],
    check: AnchorCheck,
) -> AnchorCheck:
    """A grant's check: bounded reads next to the head (see `check_anchors`)."""
    above = [info for seq, info in named if seq > head]  # nearest the head first
    below = [info for seq, info in reversed(named) if seq <= head]  # newest first
    for info in above[:NEWEST_READS]:
        check.count += 1
        _check_one(session, store, keys, info, head, check)
        if check.problems:
            return check  # a cut: one is enough to refuse
    for info in below[:NEWEST_READS]:
        check.count += 1
        if _check_one(session, store, keys, info, head, check):
            break
    skipped = max(len(above) - NEWEST_READS, 0) + max(len(below) - NEWEST_READS, 0)
    if skipped:
        log.warning(
            "%d objects under %s not read by the grant's anchor check (at most %d each side of "
            "the head): `bourse audit verify` names planted ones", skipped, ANCHORS, NEWEST_READS,
        )  # fmt: skip
    return check


def _check_one(
    session: Session,
    store: ObjectStore,
    keys: dict[str, bytes],
    info: ObjectInfo,
    head: int,
    check: AnchorCheck,
) -> bool:
    """Check one object named like an anchor into `check`; True if it is authenticated."""
    body = _anchor_of(store, info, keys)
    if body is None:
        why = "larger than any anchor" if info.size > MAX_ANCHOR_BYTES else None
        check.planted.append(_planted_message(info.key, why))
        return False
    seq = int(body["seq"])
    check.anchored.add(seq)
    problem = _anchor_problem(session, info.key, seq, body, head)
    if problem:
        check.problems.append(problem)
    return True


def _planted_message(name: str, why: str | None) -> str:
    what = f"{why}, " if why else ""
    return (
        f"anchor {name}: {what}not authenticated by the audit key (planted in the store by "
        "someone without it): ignored, remove it once checked"
    )


def _anchor_of(
    store: ObjectStore, info: ObjectInfo, keys: dict[str, bytes]
) -> dict[str, Any] | None:
    """The anchor at `info.key` if authenticated (without any audit key: if well-formed)."""
    name = info.key
    try:
        body = _parsed(_small_bytes(store, name, info.size))
        key = keys.get(str(body["key_id"]))
        if key is not None:
            return _authentic(body, name, key)
        seq, digest = int(body["seq"]), str(body["hash"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    # no audit key at all: nothing is authenticated (verify says so); check what it says
    return dict(body) if not keys and name in (anchor_key(seq), planted_key(seq, digest)) else None


def _anchor_problem(
    session: Session, name: str, seq: int, body: dict[str, Any], head: int
) -> str | None:
    """Why the chain contradicts an authenticated anchor (None: the event is as anchored).

    An anchor above the `head` this session's snapshot sees is judged by the chain as committed
    now: its event may have been committed (and anchored) after the snapshot was taken.
    """
    ev = session.get(AuditEvent, seq) if seq <= head else _committed(session, seq)
    if ev is None:
        return f"anchor {name}: event {seq} is missing from the chain (truncated)"
    if ev.hash != body["hash"] or ev.mac != body.get("mac"):
        return (
            f"anchor {name}: event {seq} differs from its anchor "
            "(the chain was rewritten after it was anchored)"
        )
    return None


def _committed(session: Session, seq: int) -> AuditEvent | None:
    """Event `seq` as committed now, outside `session`'s snapshot (None: not in the chain).

    Without a fresh reader (a bare session) the snapshot decides, which fails closed.
    """
    fresh: Callable[[], AbstractContextManager[Session]] | None = session.info.get(FRESH_READS)
    if fresh is None:
        return session.get(AuditEvent, seq)
    with fresh() as committed:
        return committed.get(AuditEvent, seq)


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
