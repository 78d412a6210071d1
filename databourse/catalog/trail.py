"""The audit trail: an append-only, hash-chained log of every decision, kept in the catalog.

Each event's hash covers its sequence number, time, kind, subject, actor, detail and the previous
event's hash, so editing, removing or reordering any event breaks the chain at that point. A hash
alone proves nothing to someone who can write the database (they recompute it), so each event also
carries `mac` = HMAC-SHA256(audit key, hash) and the key's id: the audit key lives outside the
database (`databourse.keys`), and an event inserted or resealed without it does not verify. Events
written before MACs existed (NULL mac) are accepted only as the chain's leading run AND only when
the first MAC'd event is a `keyed` marker naming the last of them and its hash: stripping every
MAC leaves no such marker, so it does not verify. Every write transaction that appends anchors its
new head after it commits (`CatalogEngine` with an anchor store): a write-once object
`audit/anchors/<seq>.json` holding the head's seq, hash, MAC and prev_hash, itself MAC'd. A
truncation or rewrite leaves an anchor the chain no longer matches; a head older than
`ANCHOR_GRACE` without its anchor (anchors deleted) is an error too.
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

from databourse.catalog.models import AuditEvent, iso, to_utc, utcnow
from databourse.catalog.trail_anchors import ANCHOR_GRACE as ANCHOR_GRACE
from databourse.catalog.trail_anchors import ANCHORS as ANCHORS
from databourse.catalog.trail_anchors import FRESH_READS as FRESH_READS
from databourse.catalog.trail_anchors import anchor_body, unanchored
from databourse.catalog.trail_anchors import anchor_key as anchor_key
from databourse.catalog.trail_anchors import check_anchors as check_anchors
from databourse.catalog.trail_anchors import write_anchor as write_anchor
from databourse.errors import AuditError, DataBourseError, SecretMissing
from databourse.keys import AUDIT_ENV, Key
from databourse.storage.store import ObjectStore

GENESIS = "0" * 64
_ANCHOR_INFO = "audit_anchor"  # session.info: the anchor of the head this transaction appended
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
    "question_closed",  # a waiting approval form closed: its run was cancelled or deleted
    "asked",  # an approval form opened: its pending row (run, form, content hash, nonce's hash)
    "keyed",  # the first MAC'd event after a pre-MAC (legacy) run: names its last seq and hash
    "recipient",  # a grant made a Delta Sharing recipient: its bearer token's sha256
    "revocation",  # a grant revoked: the exchange refuses its token from then on
    "access",  # a buyer's read through the exchange, in trails before the access log (0009)
    "access_seal",  # the access log's rows up to an id: their count, bytes, the last row's MAC
    "opt_out",  # a corpus opt-out request: document ids, domains, authors' keyed digests
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
    last = _head(session)
    if last is not None and last.mac is None:  # a pre-MAC trail: vouch for it once, with the key
        marker = {"legacy_through": last.seq, "legacy_hash": last.hash}
        last = _add(session, key, last, "keyed", None, None, None, None, marker)
    event = _add(session, key, last, kind, product, version, market, actor, detail or {})
    session.info[_ANCHOR_INFO] = anchor_body(event, key)
    return event


def _head(session: Session) -> AuditEvent | None:
    return session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()


def _add(
    session: Session,
    key: Key,
    last: AuditEvent | None,
    kind: str,
    product: str | None,
    version: str | None,
    market: str | None,
    actor: str | None,
    detail: dict[str, Any],
) -> AuditEvent:
    seq = last.seq + 1 if last else 1
    prev = last.hash if last else GENESIS
    at = utcnow().replace(microsecond=0)
    body = json.loads(json.dumps(detail, default=str))
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


def appended_anchor(session: Session) -> dict[str, Any] | None:
    """The anchor of the head this (committed) transaction appended, if it appended any."""
    return session.info.pop(_ANCHOR_INFO, None)


@dataclass(frozen=True)
class ChainReport:
    """The result of walking the chain (and its anchors, when a store was given)."""

    events: int
    ok: bool
    problems: list[str]
    unauthenticated: int = 0  # leading events written before MACs (migration 0007)
    anchors: int = 0
    notes: list[str] = field(default_factory=list)
    planted: list[str] = field(default_factory=list)  # unauthenticated anchors: not a break

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "ok": self.ok,
            "problems": self.problems,
            "unauthenticated": self.unauthenticated,
            "anchors": self.anchors,
            "notes": self.notes,
            "planted": self.planted,
        }


def verify(
    session: Session, store: ObjectStore | None = None, now: datetime | None = None
) -> ChainReport:
    """Recompute every hash and MAC in order, then check the anchors; report each break."""
    try:
        keys = {k.key_id: k.material for k in session_keys(session)}
        problems = [] if keys else [f"cannot authenticate the audit trail: {_NO_KEY}"]
    except DataBourseError as exc:  # a weak or refused key: say so, do not pass
        keys, problems = {}, [f"cannot authenticate the audit trail: {exc}"]
    prev, expected_seq, count, legacy, authenticated = GENESIS, 1, 0, 0, False
    first = head = None
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        count, first, head = count + 1, first or ev, ev
        problems += _chain_problems(ev, prev, expected_seq)
        if ev.mac is None and not authenticated:
            legacy += 1
        else:
            if legacy and not authenticated:
                problems += _marker_problems(ev, legacy, prev)
            authenticated = True
            problems += _mac_problems(ev, keys)
        prev, expected_seq = ev.hash, ev.seq + 1
    if legacy and not authenticated:
        problems.append(_unvouched(legacy))
    notes = (
        [f"events 1-{legacy} predate audit MACs: hash-chained, vouched for by the keyed marker"]
        if legacy and authenticated
        else []
    )
    anchors, planted = 0, []
    if store is not None:
        found = check_anchors(session, store, keys)
        anchors, planted = found.count, found.planted
        problems += found.problems
        problems += unanchored(first, head, found.anchored, now or utcnow())
    return ChainReport(count, not problems, problems, legacy, anchors, notes, planted)


def _unvouched(legacy: int) -> str:
    return (
        f"events 1-{legacy} have no MAC and no authenticated `keyed` marker vouches for them "
        "(MACs stripped, or a pre-MAC trail never vouched for: check it, then "
        "`bourse audit anchor` with the audit key)"
    )


def _marker_problems(ev: AuditEvent, legacy: int, prev: str) -> list[str]:
    """The first MAC'd event after a legacy run must be the marker naming that run's end."""
    detail = dict(ev.detail or {})
    if (
        ev.kind == "keyed"
        and detail.get("legacy_through") == legacy
        and detail.get("legacy_hash") == prev
    ):
        return []
    return [_unvouched(legacy)]


def link_problems(
    ev: AuditEvent, prev: str, expected_seq: int, keys: dict[str, bytes]
) -> list[str]:
    """What `verify` finds wrong with one event after the authenticated ones: its sequence, its
    link to `prev` (the hash before it), its hash and its MAC."""
    return _chain_problems(ev, prev, expected_seq) + _mac_problems(ev, keys)


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


def anchor(session: Session, store: ObjectStore) -> dict[str, Any] | None:
    """Anchor the chain's head in the store (vouching for a pre-MAC run first); None if empty."""
    head = _head(session)
    if head is None:
        return None
    key = signing_key(session)
    if head.mac is None:
        head = _vouch(session, key, head)
    body = anchor_body(head, key) if head.key_id == key.key_id else _foreign(session, head)
    write_anchor(store, body, key.material if body["key_id"] == key.key_id else None)
    return body


def _vouch(session: Session, key: Key, head: AuditEvent) -> AuditEvent:
    marker = {"legacy_through": head.seq, "legacy_hash": head.hash}
    event = _add(session, key, head, "keyed", None, None, None, None, marker)
    session.info.pop(_ANCHOR_INFO, None)
    return event


def _foreign(session: Session, head: AuditEvent) -> dict[str, Any]:
    """The anchor of a head MAC'd under an older key still in the key list."""
    for k in session_keys(session):
        if k.key_id == head.key_id:
            return anchor_body(head, k)
    raise AuditError(
        f"event {head.seq} is MAC'd under audit key {head.key_id}, which is not configured",
        seq=head.seq,
    )


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
