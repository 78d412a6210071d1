"""Grants as Delta Sharing recipients: token hashes, revocations and the standing of a grant.

A recipient row holds the sha256 of the grant's bearer token (never the token) and is written
with a MAC'd `recipient` audit event naming that hash; a revocation is a `revocation` event
(and the row's `revoked_at`). `share_standing` is what every request of the exchange asks: the
grant checked again as `record_grant` checks a new one (version published, market available
as the authenticated trail backs it, the approval in force, the grant's row as audited), plus
expiry and revocation. Buyers are told about their own grant only; operators see the cause in
the log. Each query and batch of file reads is a row of the access log (`access_log`).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from databourse.catalog import trail as audit
from databourse.catalog import trail_state
from databourse.catalog.engine import CatalogEngine
from databourse.catalog.grants import offer_in_force
from databourse.catalog.models import (
    Base,
    Grant,
    Version,
    aware,
    iso,
    to_utc,
    utcnow,
)
from databourse.catalog.trail_state import authenticated_events
from databourse.errors import AccessRefused, CatalogError

__all__ = ["GrantStanding", "ShareDesk", "ShareRecipient"]

log = logging.getLogger("databourse.catalog")
NOT_DELIVERABLE = (
    "the version this grant is for cannot be delivered now (withdrawn, no longer offered in "
    "the grant's market, or its records do not check out); ask the exchange"
)


class ShareRecipient(Base):
    """A grant's Delta Sharing recipient: its bearer token's sha256, and its revocation."""

    __tablename__ = "share_recipients"
    __table_args__ = (
        UniqueConstraint("grant_id", name="uq_share_recipients_grant_id"),
        UniqueConstraint("token_sha256", name="uq_share_recipients_token_sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"))
    token_sha256: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True)
class GrantStanding:
    """A grant that checks out now: what the exchange may deliver, to whom, until when."""

    grant_id: int
    product: str
    version: str
    market: str
    buyer: str
    content_hash: str
    expires_at: datetime


class ShareDesk(CatalogEngine):
    """Catalog methods for recipients, revocations and buyers' access (mixed into Catalog)."""

    def add_recipient(self, grant_id: int, token_sha256: str, endpoint: str) -> dict[str, Any]:
        """Make a grant a recipient: store its token's sha256, audited (one recipient a grant)."""

        def work(session: Session) -> dict[str, Any]:
            grant, row = _grant_and_version(session, grant_id)
            if session.scalars(
                select(ShareRecipient).where(ShareRecipient.grant_id == grant_id)
            ).first():
                raise CatalogError(f"grant {grant_id} already has a profile", grant_id=grant_id)
            session.add(
                ShareRecipient(grant_id=grant_id, token_sha256=token_sha256, endpoint=endpoint)
            )
            audit.append(
                session,
                "recipient",
                product=row.product_id,
                version=row.version,
                market=grant.market,
                actor=grant.buyer,
                detail={"grant_id": grant_id, "token_sha256": token_sha256},
            )
            return {"grant_id": grant_id, "product": row.product_id, "version": row.version}

        return self._write("add_recipient", work)

    def revoke_grant(self, grant_id: int, reason: str) -> dict[str, Any]:
        """Revoke a grant (idempotent): every later request with its token is refused."""

        def work(session: Session) -> dict[str, Any]:
            grant, row = _grant_and_version(session, grant_id)
            recipient = _recipient(session, grant_id)
            if recipient is not None and recipient.revoked_at is None:
                recipient.revoked_at, recipient.revoked_reason = utcnow(), reason
            if grant_id not in _revoked(session):
                audit.append(
                    session,
                    "revocation",
                    product=row.product_id,
                    version=row.version,
                    market=grant.market,
                    actor=grant.buyer,
                    detail={"grant_id": grant_id, "reason": reason},
                )
            log.info("revoked grant %s", grant_id)
            return {"grant_id": grant_id, "product": row.product_id, "version": row.version}

        return self._write("revoke_grant", work)

    def grant_list(self) -> list[dict[str, Any]]:
        """Every grant, oldest first: product, version, buyer, market, expiry, profile, revoked."""

        def work(session: Session) -> list[dict[str, Any]]:
            revoked = _revoked(session)
            recipients = {r.grant_id: r for r in session.scalars(select(ShareRecipient))}
            rows = session.execute(
                select(Grant, Version).join(Version, Grant.version_id == Version.id)
            )
            out = []
            for g, v in sorted(rows, key=lambda pair: pair[0].id):
                r = recipients.get(g.id)
                out.append({
                    "id": g.id,
                    "product": v.product_id,
                    "version": v.version,
                    "buyer": g.buyer,
                    "market": g.market,
                    "expires_at": iso(g.expires_at),
                    "granted_at": iso(g.granted_at),
                    "profile": r is not None,
                    "revoked": g.id in revoked or (r is not None and r.revoked_at is not None),
                })  # fmt: skip
            return out

        return self._read(work)

    def recipient_of(self, token_sha256: str) -> int:
        """The grant a bearer token's sha256 belongs to (AccessRefused 401 for any other)."""

        def work(session: Session) -> int:
            found = session.scalars(
                select(ShareRecipient).where(ShareRecipient.token_sha256 == token_sha256)
            ).first()
            stored = found.token_sha256 if found is not None else "0" * 64
            if found is None or not hmac.compare_digest(stored, token_sha256):
                raise AccessRefused(401, "the bearer token is not valid")
            return found.grant_id

        return self._read(work)

    def share_standing(self, grant_id: int) -> GrantStanding:
        """The grant if it may be delivered now; AccessRefused (403, its own reason) otherwise."""
        return self._read(lambda session: _standing(session, grant_id, self._now()))


def _grant_and_version(session: Session, grant_id: int) -> tuple[Grant, Version]:
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise CatalogError(f"no grant {grant_id} in the catalog", grant_id=grant_id)
    row = session.get(Version, grant.version_id)
    assert row is not None  # a foreign key with ON DELETE CASCADE
    return grant, row


def _recipient(session: Session, grant_id: int) -> ShareRecipient | None:
    return session.scalars(
        select(ShareRecipient).where(ShareRecipient.grant_id == grant_id)
    ).first()


def _revoked(session: Session) -> set[int]:
    """Grants an authenticated `revocation` event revoked (what `TrailState.revoked` folds)."""
    return {int(e["detail"]["grant_id"]) for e in authenticated_events(session, "revocation")}


def _standing(session: Session, grant_id: int, now: datetime) -> GrantStanding:
    """Check a grant again the way `record_grant` checks a new one, plus expiry and revocation."""
    grant, row = _grant_and_version(session, grant_id)
    recipient = _recipient(session, grant_id)
    if recipient is None:
        raise AccessRefused(401, "the bearer token is not valid")
    trail = trail_state.TrailState.of(session)
    if recipient.revoked_at is not None or grant_id in trail.revoked:
        raise AccessRefused(403, f"grant {grant_id} was revoked", grant_id=grant_id)
    expires_at = to_utc(grant.expires_at)
    if expires_at <= now:
        raise AccessRefused(
            403, f"grant {grant_id} expired at {iso(expires_at)}", grant_id=grant_id
        )
    problems = _record_problems(trail, grant, row, recipient)
    try:
        offer_in_force(session, row, grant.market, expires_at, now, trail)
    except CatalogError as exc:  # TransferNotApproved too
        problems.append(str(exc))
    if problems:
        log.warning("grant %s not delivered: %s", grant_id, "; ".join(problems[:3]))
        raise AccessRefused(403, NOT_DELIVERABLE, grant_id=grant_id)
    return GrantStanding(
        grant_id=grant.id,
        product=row.product_id,
        version=row.version,
        market=grant.market,
        buyer=grant.buyer,
        content_hash=row.content_hash,
        expires_at=expires_at,
    )


def _record_problems(
    trail: trail_state.TrailState, grant: Grant, row: Version, recipient: ShareRecipient
) -> list[str]:
    """The grant and recipient rows as their authenticated events record them."""
    problems = []
    proved = trail.grants.get(grant.id)
    if (
        proved is None
        or proved["version"] != (row.product_id, row.version)
        or proved["market"] != grant.market
        or proved.get("content_hash") != grant.content_hash
        or proved.get("expires_at") != iso(aware(grant.expires_at))
        or grant.content_hash != row.content_hash
    ):
        problems.append(f"grant {grant.id}: its row differs from its audited grant event")
    if trail.recipients.get(grant.id, []) != [recipient.token_sha256]:
        problems.append(f"grant {grant.id}: its token hash is not the audited one")
    return problems
