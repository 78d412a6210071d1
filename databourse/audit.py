"""The audit trail: an append-only, hash-chained log of every decision, kept in the catalog.

Each event's hash covers its sequence number, time, kind, subject, actor, detail and the previous
event's hash, so editing, removing or reordering any event breaks the chain at that point. A hash
alone proves nothing to someone who can write the database (they recompute it), so each event also
carries `mac` = HMAC-SHA256(audit key, hash) and the key's id: the audit key lives outside the
database (`databourse.keys`), and an event inserted or resealed without it does not verify. Events
written before MACs existed (NULL mac) are accepted only as the chain's leading run, and reported
as unauthenticated. Anchors (`anchor`) copy the head (seq, hash, mac) into the object store as
write-once objects, `audit/anchors/<seq>.json`: a rewrite or truncation of the chain, even by
someone holding the audit key but not the store, no longer matches them.
Details carry names, counts, hashes and references only, never personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from databourse.catalog_models import AuditEvent, iso, to_utc, utcnow
from databourse.errors import DataBourseError, ObjectExists, SecretMissing
from databourse.keys import AUDIT_ENV, Key
from databourse.storage import ObjectStore

GENESIS = "0" * 64
ANCHORS = "audit/anchors/"
_NO_KEY = (
    f"no audit key (export {AUDIT_ENV} or restore the key file); hashes alone prove nothing "
    "against someone who can write the database"
)
KINDS = (
    "ingest",
    "quarantine",
    "version",
    "decision",
    "approval",
    "carry_over",
    "rejection",
    "expiry",
    "count",
    "publication",
    "withdrawal",
    "grant",
    "refusal",  # an answer to an approval form refused (wrong form, version, nonce or content)
)


def event_hash(
    seq: int,
    at: datetime,
    kind: str,
    product: str | None,
    version: str | None,
    market: str | None,
    actor: str | None,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    """sha256 of the canonical JSON of an event and the hash before it."""
    canonical = json.dumps(
        [seq, iso(to_utc(at)), kind, product, version, market, actor, detail, prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_mac(key: bytes, digest: str) -> str:
    """HMAC-SHA256 of an event's hash under the audit key, hex."""
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def session_keys(session: Session) -> list[Key]:
    """The audit keys the catalog was given (the signing key first); [] when none is set."""
    resolve = session.info.get("audit_keys")
    return list(resolve()) if resolve is not None else []


def signing_key(session: Session) -> Key:
    """The key new events are authenticated with; SecretMissing (saying how to set it) if none."""
    found = session_keys(session)
    if not found:
        raise SecretMissing(
            f"the audit key is not set: export {AUDIT_ENV} or run `bourse secrets init`; "
            "no audit event is written without it (the database must not be able to forge one)",
            env=AUDIT_ENV,
        )
    return found[0]


def append(
    session: Session,
    kind: str,
    *,
    product: str | None = None,
    version: str | None = None,
    market: str | None = None,
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event at the end of the chain, inside the caller's write transaction."""
    if kind not in KINDS:
        raise ValueError(f"unknown audit event kind {kind!r}")
    key = signing_key(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7263520)"))  # one appender at a time
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq = last.seq + 1 if last else 1
    prev = last.hash if last else GENESIS
    at = utcnow().replace(microsecond=0)
    body = json.loads(json.dumps(detail or {}, default=str))
    digest = event_hash(seq, at, kind, product, version, market, actor, body, prev)
    event = AuditEvent(
        seq=seq,
        at=at,
        kind=kind,
        product=product,
        version=version,
        market=market,
        actor=actor,
        detail=body,
        prev_hash=prev,
        hash=digest,
        mac=event_mac(key.material, digest),
        key_id=key.key_id,
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    """The result of walking the chain (and its anchors, when a store was given)."""

    events: int
    ok: bool
    problems: list[str]
    unauthenticated: int = 0  # leading events written before MACs (migration 0007)
    anchors: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "ok": self.ok,
            "problems": self.problems,
            "unauthenticated": self.unauthenticated,
            "anchors": self.anchors,
            "notes": self.notes,
        }


def verify(session: Session, store: ObjectStore | None = None) -> ChainReport:
    """Recompute every hash and MAC in order, then check the anchors; report each break."""
    try:
        keys = {k.key_id: k.material for k in session_keys(session)}
        problems = [] if keys else [f"cannot authenticate the audit trail: {_NO_KEY}"]
    except DataBourseError as exc:  # a weak or refused key: say so, do not pass
        keys, problems = {}, [f"cannot authenticate the audit trail: {exc}"]
    prev, expected_seq, count, legacy, authenticated = GENESIS, 1, 0, 0, False
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        count += 1
        problems += _chain_problems(ev, prev, expected_seq)
        if ev.mac is None and not authenticated:
            legacy += 1
        else:
            authenticated = True
            problems += _mac_problems(ev, keys)
        prev, expected_seq = ev.hash, ev.seq + 1
    notes = (
        [f"events 1-{legacy} predate audit MACs: hash-chained, not authenticated"] if legacy else []
    )
    anchors = 0
    if store is not None:
        anchors, anchor_problems = check_anchors(session, store)
        problems += anchor_problems
    return ChainReport(count, not problems, problems, legacy, anchors, notes)


def _chain_problems(ev: AuditEvent, prev: str, expected_seq: int) -> list[str]:
    problems = []
    if ev.seq != expected_seq:
        problems.append(f"event {ev.seq}: expected sequence {expected_seq} (removed event?)")
    if ev.prev_hash != prev:
        problems.append(
            f"event {ev.seq}: does not follow the event before it (removed or reordered)"
        )
    recomputed = event_hash(
        ev.seq,
        ev.at,
        ev.kind,
        ev.product,
        ev.version,
        ev.market,
        ev.actor,
        dict(ev.detail or {}),
        ev.prev_hash,
    )
    if recomputed != ev.hash:
        problems.append(f"event {ev.seq}: content does not match its hash (edited)")
    return problems


def _mac_problems(ev: AuditEvent, keys: dict[str, bytes]) -> list[str]:
    if ev.mac is None:
        return [
            f"event {ev.seq} ({ev.kind}): no MAC after authenticated events "
            "(inserted or rewritten without the audit key)"
        ]
    if not keys:
        return []  # reported once by the caller
    key = keys.get(ev.key_id or "")
    if key is None:
        return [f"event {ev.seq} ({ev.kind}): authenticated by an unknown audit key {ev.key_id}"]
    if not hmac.compare_digest(event_mac(key, ev.hash), ev.mac):
        return [
            f"event {ev.seq} ({ev.kind}): MAC does not match "
            "(forged, or edited and resealed without the audit key)"
        ]
    return []


def anchor_key(seq: int) -> str:
    """The store key of the anchor of event `seq` (zero-padded: listed in order)."""
    return f"{ANCHORS}{seq:012d}.json"


def anchor(session: Session, store: ObjectStore) -> dict[str, Any] | None:
    """Copy the chain's head into the store as a write-once object; the anchor, None if empty."""
    head = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()
    if head is None:
        return None
    body = {
        "seq": head.seq,
        "hash": head.hash,
        "mac": head.mac,
        "key_id": head.key_id,
        "event_at": iso(head.at),
    }
    try:
        data = json.dumps(body, sort_keys=True).encode()
        store.put_bytes(anchor_key(head.seq), data, if_absent=True)
    except ObjectExists:
        pass  # anchored before; check_anchors compares it with the chain
    return body


def check_anchors(session: Session, store: ObjectStore) -> tuple[int, list[str]]:
    """Every anchor's event must still be in the chain with the same hash and MAC."""
    problems, count = [], 0
    for info in store.list(ANCHORS):
        count += 1
        try:
            body = json.loads(store.get_bytes(info.key))
            seq, digest, mac = int(body["seq"]), str(body["hash"]), body.get("mac")
        except (ValueError, KeyError, TypeError):
            problems.append(f"anchor {info.key}: not a readable anchor")
            continue
        ev = session.get(AuditEvent, seq)
        if ev is None:
            problems.append(f"anchor {info.key}: event {seq} is missing from the chain (truncated)")
        elif ev.hash != digest or ev.mac != mac:
            problems.append(
                f"anchor {info.key}: event {seq} differs from its anchor "
                "(the chain was rewritten after it was anchored)"
            )
    return count, problems


def event_json(ev: AuditEvent) -> dict[str, Any]:
    return {
        "seq": ev.seq,
        "at": iso(ev.at),
        "kind": ev.kind,
        "product": ev.product,
        "version": ev.version,
        "market": ev.market,
        "actor": ev.actor,
        "detail": dict(ev.detail or {}),
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
        "mac": ev.mac,
        "key_id": ev.key_id,
    }


def history(session: Session, product: str | None = None) -> list[dict[str, Any]]:
    """Events in order, all or one product's."""
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if product is not None:
        query = query.where(AuditEvent.product == product)
    return [event_json(ev) for ev in session.scalars(query)]
