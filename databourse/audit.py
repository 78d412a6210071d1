"""The audit trail: an append-only, hash-chained log of every decision, kept in the catalog.

Each event's hash covers its sequence number, time, kind, subject, actor, detail and the previous
event's hash, so editing, removing or reordering any event breaks the chain at that point.
Details carry names, counts, hashes and references only, never personal data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from databourse.catalog_models import AuditEvent, iso, to_utc, utcnow

GENESIS = "0" * 64
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
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7263520)"))  # one appender at a time
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq = last.seq + 1 if last else 1
    prev = last.hash if last else GENESIS
    at = utcnow().replace(microsecond=0)
    body = json.loads(json.dumps(detail or {}, default=str))
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
        hash=event_hash(seq, at, kind, product, version, market, actor, body, prev),
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    """The result of walking the chain."""

    events: int
    ok: bool
    problems: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "ok": self.ok, "problems": self.problems}


def verify(session: Session) -> ChainReport:
    """Recompute every hash in order; report each event where the chain breaks."""
    problems: list[str] = []
    prev, expected_seq, count = GENESIS, 1, 0
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        count += 1
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
        prev, expected_seq = ev.hash, ev.seq + 1
    return ChainReport(events=count, ok=not problems, problems=problems)


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
    }


def history(session: Session, product: str | None = None) -> list[dict[str, Any]]:
    """Events in order, all or one product's."""
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if product is not None:
        query = query.where(AuditEvent.product == product)
    return [event_json(ev) for ev in session.scalars(query)]
