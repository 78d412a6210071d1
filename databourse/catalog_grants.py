"""The catalog's grants of access to buyers, and its audit trail."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from databourse import audit
from databourse.catalog_engine import CatalogEngine, check_market
from databourse.catalog_markets import availability_row, count_abroad
from databourse.catalog_models import Grant, Version, iso
from databourse.errors import TransferNotApproved

__all__ = ["GrantsAndAudit"]

log = logging.getLogger("databourse.catalog")


class GrantsAndAudit(CatalogEngine):
    """Catalog methods for buyers' grants and the audit trail (mixed into Catalog)."""

    def record_grant(
        self, product_id: str, version: str, buyer: str, market: str, expires_at: datetime
    ) -> dict[str, Any]:
        """Record a buyer's access to a published version available in their market.

        Refused (TransferNotApproved) unless the version is published and its availability in
        `market` is "available", which for gated markets means an approval bound to its hash.
        A grant abroad in a new calendar year counts the version in that year too.
        """
        check_market(market)

        def work(session: Session) -> dict[str, Any]:
            row = self._version_row(session, product_id, version)
            where = availability_row(session, row.id, market)
            if row.status != "published" or where is None or where.status != "available":
                raise TransferNotApproved(
                    f"{product_id} {version} is not offered in {market} "
                    f"(version {row.status}, market {where.status if where else 'undecided'})",
                    product=product_id,
                    version=version,
                    market=market,
                )
            grant = Grant(
                version_id=row.id,
                content_hash=row.content_hash,
                buyer=buyer,
                market=market,
                expires_at=expires_at,
            )
            session.add(grant)
            session.flush()
            count_abroad(session, row, market, self._now())
            audit.append(
                session,
                "grant",
                product=product_id,
                version=version,
                market=market,
                actor=buyer,
                detail={
                    "grant_id": grant.id,
                    "expires_at": iso(expires_at),
                    "content_hash": row.content_hash,
                },
            )
            log.info("granted %s %s in %s until %s", product_id, version, market, expires_at)
            return {
                "id": grant.id,
                "product": product_id,
                "version": version,
                "content_hash": row.content_hash,
                "buyer": buyer,
                "market": market,
                "expires_at": iso(expires_at),
                "granted_at": iso(grant.granted_at),
            }

        return self._write("record_grant", work)

    def audit_append(
        self,
        kind: str,
        *,
        product: str | None = None,
        version: str | None = None,
        market: str | None = None,
        actor: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append an event that happened outside the catalog (an ingest, a quarantine)."""

        def work(session: Session) -> dict[str, Any]:
            return audit.event_json(
                audit.append(
                    session,
                    kind,
                    product=product,
                    version=version,
                    market=market,
                    actor=actor,
                    detail=detail,
                )
            )

        return self._write("audit_append", work)

    def audit_verify(self) -> audit.ChainReport:
        """Walk the hash chain of the audit trail."""
        return self._read(audit.verify)

    def audit_history(self, product: str | None = None) -> list[dict[str, Any]]:
        """The audit events, all or one product's, in order."""
        return self._read(lambda session: audit.history(session, product))

    def grants(self, product_id: str) -> list[dict[str, Any]]:
        """Every grant of every version of a product, oldest first."""

        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.execute(
                select(Grant, Version.version)
                .join(Version, Grant.version_id == Version.id)
                .where(Version.product_id == product_id)
                .order_by(Grant.id)
            )
            return [
                {
                    "id": g.id,
                    "version": v,
                    "buyer": g.buyer,
                    "market": g.market,
                    "content_hash": g.content_hash,
                    "expires_at": iso(g.expires_at),
                    "granted_at": iso(g.granted_at),
                }
                for g, v in rows
            ]

        return self._read(work)
