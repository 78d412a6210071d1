"""Buyers' reads through the exchange: a log of its own, chained and keyed, sealed into the trail.

Every query and batch of file reads of a grant is a row of `access_events` (grant, product,
version, market, buyer, what, files, bytes, query, the exchange's spool batch), not an event of
the audit trail: buyer traffic would grow the trail without bound, and everything that reads the
trail (the gate's state, a grant's checks, `verify`) would walk it. The log is authenticated as
the trail is: each row's MAC is HMAC-SHA256 over the canonical JSON of its fields and the
previous row's MAC, under a key derived from the audit key for this log alone (`LOG_PURPOSE`:
a MAC of one can never pass for the other's), which the database never holds; ids run 1, 2, 3
with no gap. A row edited, inserted, removed or reordered by someone who can write the database
breaks the chain there. The trail vouches for the log: `seal` appends an `access_seal` event
(first and last id, rows, bytes, the last row's MAC) once the oldest unsealed row is SEAL_AGE old
or SEAL_ROWS rows wait (the exchange tries after each flush of its reads, and seals what is left
when it stops), so a tail cut off the log is caught against the last seal, and the trail's
anchors in the store keep the seals. What is not sealed yet (at most SEAL_AGE of traffic, or
SEAL_ROWS rows) is chained, and its newest row anchored in the store at most every minute
(`access_anchors`): a tail cut off past an anchor is named too; `verify` says how many rows no
seal covers.
The trail grows by one event per seal, not per read.

Trails written before this log (migration 0009) hold `access` events: they stay, and verify there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import BigInteger, DateTime, Integer, String, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from databourse.catalog import trail as audit
from databourse.catalog.engine import CatalogEngine
from databourse.catalog.models import AuditEvent, Base, iso, to_utc
from databourse.catalog.trail_state import authenticated_events
from databourse.errors import DataBourseError

__all__ = ["AccessEvent", "AccessLog", "LogReport"]

LOG_PURPOSE = b"databourse/access-log/v1"
GENESIS = "0" * 64
SEAL_AGE = timedelta(hours=1)
SEAL_ROWS = 10_000
_LOCK = 7263521  # PostgreSQL advisory lock: one appender (or sealer) of the log at a time


class AccessEvent(Base):
    """One query or batch of file reads of a grant (append-only: nothing updates or deletes)."""

    __tablename__ = "access_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    grant_id: Mapped[int] = mapped_column(Integer, index=True)
    product: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(50))
    market: Mapped[str] = mapped_column(String(2))
    buyer: Mapped[str] = mapped_column(String(200))
    what: Mapped[str] = mapped_column(String(20))
    files: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    query: Mapped[int | None] = mapped_column(Integer, nullable=True)
    batch: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    prev_mac: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))


class Accessor(Protocol):
    """What a row records of a grant: its id, version, market and buyer (a GrantStanding, or
    the reads the exchange spooled of one)."""

    @property
    def grant_id(self) -> int: ...
    @property
    def product(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def market(self) -> str: ...
    @property
    def buyer(self) -> str: ...


def log_key(audit_key: bytes) -> bytes:
    """The log's MAC key, derived from the audit key."""
    return hmac.new(audit_key, LOG_PURPOSE, hashlib.sha256).digest()


def row_mac(key: bytes, row: AccessEvent) -> str:
    """HMAC-SHA256 (the log's key) of a row's canonical JSON, its previous row's MAC in it."""
    canonical = json.dumps(
        [row.id, iso(to_utc(row.at)), row.grant_id, row.product, row.version, row.market,
         row.buyer, row.what, row.files, row.bytes, row.query, row.batch, row.prev_mac],
        separators=(",", ":"), ensure_ascii=False,
    )  # fmt: skip
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def append(
    session: Session,
    who: Accessor,
    what: str,
    files: int,
    size: int,
    query: int | None,
    batch: str | None,
    now: datetime,
) -> AccessEvent:
    """Add a row at the end of the log, inside the caller's write transaction."""
    key = audit.signing_key(session)
    _lock(session)
    last = session.scalars(select(AccessEvent).order_by(AccessEvent.id.desc()).limit(1)).first()
    row = AccessEvent(
        id=last.id + 1 if last else 1,
        at=to_utc(now).replace(microsecond=0),
        grant_id=who.grant_id, product=who.product, version=who.version, market=who.market,
        buyer=who.buyer, what=what, files=files, bytes=size, query=query, batch=batch,
        prev_mac=last.mac if last else GENESIS, key_id=key.key_id,
    )  # fmt: skip
    row.mac = row_mac(log_key(key.material), row)
    session.add(row)
    session.flush()  # a concurrent appender's same id fails here: the write is retried
    return row


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK})"))


def _sealed_through(session: Session) -> int:
    """The last id an `access_seal` event of the trail covers (0 when none does)."""
    query = (
        select(AuditEvent.detail)
        .where(AuditEvent.kind == "access_seal")
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    detail = session.scalars(query).first()
    return int((detail or {}).get("last", 0))


def seal(session: Session, now: datetime, *, force: bool = False) -> dict[str, Any] | None:
    """An `access_seal` event for the rows no seal covers yet, when the oldest is SEAL_AGE old,
    SEAL_ROWS wait, or `force`; None when nothing is due."""
    _lock(session)
    after = _sealed_through(session)
    first, last, rows, size, oldest = session.execute(
        select(
            func.min(AccessEvent.id), func.max(AccessEvent.id), func.count(),
            func.coalesce(func.sum(AccessEvent.bytes), 0), func.min(AccessEvent.at),
        ).where(AccessEvent.id > after)
    ).one()  # fmt: skip
    if not rows:
        return None
    due = force or rows >= SEAL_ROWS or to_utc(oldest) <= to_utc(now) - SEAL_AGE
    if not due:
        return None
    head = session.get(AccessEvent, last)
    assert head is not None
    detail = {"first": first, "last": last, "rows": rows, "bytes": int(size), "head_mac": head.mac}
    return audit.event_json(audit.append(session, "access_seal", detail=detail))


@dataclass
class LogReport:
    """The access log walked: its rows, how many the trail's seals cover, what does not check."""

    rows: int = 0
    sealed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def unsealed(self) -> int:
        return self.rows - self.sealed

    def note(self) -> str:
        return (
            f"access log: {self.rows} rows, {self.sealed} sealed by the trail, "
            f"{self.unsealed} not yet"
        )


def verify(session: Session) -> LogReport:
    """Every row's MAC and place in the chain; each authenticated seal against the rows.
    Without the audit key nothing is authenticated: one problem says so (the trail's walk
    says how to set the key)."""
    try:
        keys = {k.key_id: log_key(k.material) for k in audit.session_keys(session)}
        found = authenticated_events(session, "access_seal") if keys else []
    except DataBourseError:
        keys, found = {}, []
    seals = {int(s["detail"]["last"]): s for s in found}
    report, prev, expected = LogReport(), GENESIS, 1
    if not keys:
        report.problems.append("access log: not authenticated without the audit key")
    query = select(AccessEvent).order_by(AccessEvent.id).execution_options(yield_per=1000)
    for row in session.scalars(query):
        report.rows += 1
        if row.id != expected:
            report.problems.append(f"access log: rows {expected}-{row.id - 1} are missing")
        elif row.prev_mac != prev:
            report.problems.append(f"access log: row {row.id} does not follow row {row.id - 1}")
        key = keys.get(row.key_id)
        if not keys:
            pass
        elif key is None:
            report.problems.append(f"access log: row {row.id} was made with key {row.key_id}, "
                                   "which is not given")  # fmt: skip
        elif not hmac.compare_digest(row_mac(key, row), row.mac):
            report.problems.append(
                f"access log: row {row.id} does not verify (edited, or written without the "
                "audit key)"
            )
        if row.id in seals and seals[row.id]["detail"]["head_mac"] != row.mac:
            report.problems.append(
                f"access log: row {row.id} is not the row event {seals[row.id]['seq']} sealed"
            )
        prev, expected = row.mac, row.id + 1
    report.problems += _seal_problems(seals, expected - 1)
    report.sealed = min(max(seals, default=0), expected - 1)
    return report


def _seal_problems(seals: dict[int, dict[str, Any]], end: int) -> list[str]:
    """Seals that do not follow each other, or cover rows the log no longer has."""
    problems, after = [], 0
    for last in sorted(seals):
        detail, seq = seals[last]["detail"], seals[last]["seq"]
        if detail["first"] != after + 1 or detail["rows"] != last - after:
            problems.append(f"access log: the seal of event {seq} does not follow the one before")
        if last > end:
            problems.append(
                f"access log: rows {max(after, end) + 1}-{last} that event {seq} sealed are gone"
            )
        after = last
    return problems


def row_json(row: AccessEvent) -> dict[str, Any]:
    """A row as `audit show` and the tests read it (shaped as an audit event)."""
    return {
        "id": row.id, "at": iso(to_utc(row.at)), "kind": "access", "product": row.product,
        "version": row.version, "market": row.market, "actor": row.buyer,
        "detail": {"grant_id": row.grant_id, "what": row.what, "files": row.files,
                   "bytes": row.bytes, "query": row.query, "batch": row.batch},
    }  # fmt: skip


class AccessLog(CatalogEngine):
    """Catalog methods of the access log (mixed into Catalog)."""

    def record_access(
        self,
        who: Accessor,
        what: str,
        files: int,
        size: int,
        query: int | None = None,
        batch: str | None = None,
    ) -> int:
        """Log a query or a batch of file reads of a grant; the row's id. `batch` names the
        exchange's spooled batch the reads came from (bourse/exchange_spool.py)."""
        now = self._now()
        work = lambda session: append(session, who, what, files, size, query, batch, now).id  # noqa: E731
        return self._write("record_access", work)

    def seal_access(self, *, force: bool = False) -> dict[str, Any] | None:
        """Seal the unsealed rows into the trail when due (`seal`); the event, or None."""
        now = self._now()
        return self._write("seal_access", lambda session: seal(session, now, force=force))

    def audited_batches(self, batches: set[str]) -> set[tuple[str, int, int]]:
        """(batch, grant id, query) of every row naming one of `batches`."""

        def work(session: Session) -> set[tuple[str, int, int]]:
            query = select(AccessEvent.batch, AccessEvent.grant_id, AccessEvent.query).where(
                AccessEvent.batch.in_(sorted(batches))
            )
            return {(str(b), int(g), int(q or 0)) for b, g, q in session.execute(query)}

        return self._read(work) if batches else set()

    def access_history(self, grant_id: int | None = None) -> list[dict[str, Any]]:
        """The log's rows, all or one grant's, in order."""
        query = select(AccessEvent).order_by(AccessEvent.id)
        if grant_id is not None:
            query = query.where(AccessEvent.grant_id == grant_id)
        return self._read(lambda session: [row_json(r) for r in session.scalars(query)])

    def access_verify(self) -> LogReport:
        """Walk the log's chain and check it against the trail's seals."""
        return self._read(verify)
