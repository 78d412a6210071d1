"""The product catalog: versions, availability per market and transfer approvals, in SQL.

SQLite file by default, PostgreSQL (`postgresql+psycopg://`) in production. Each public method is
one short transaction and returns plain records, never ORM objects. `Catalog` is the facade: the
products and versions live here, the rest in mixins (`catalog_gate` decides markets,
`catalog_approvals` records a person's decisions, `catalog_grants` holds grants and the audit
trail, `catalog_listing` lists what the audit trail backs, `catalog_shares` holds grants' Delta
Sharing recipients, `access_log` buyers' reads) on top of `catalog_engine` (engine,
migrations, transactions).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.access_log import AccessLog
from databourse.catalog.approvals import ApprovalDesk
from databourse.catalog.engine import MIGRATIONS as MIGRATIONS
from databourse.catalog.engine import SQLITE_TIMEOUT_S as SQLITE_TIMEOUT_S
from databourse.catalog.engine import make_engine, newest_first
from databourse.catalog.gate import TransferGate
from databourse.catalog.grants import GrantsAndAudit
from databourse.catalog.listing import PublicListing, listed_availability
from databourse.catalog.markets import GATED as GATED
from databourse.catalog.models import Product, Version, utcnow
from databourse.catalog.opt_outs import OptOutDesk
from databourse.catalog.records import (
    ApprovalRecord,
    VersionRecord,
    product_json,
    version_json,
)
from databourse.catalog.shares import ShareDesk
from databourse.catalog.trail_state import TrailState
from databourse.catalog.versioning import Schema, next_version, parse_version, schema_diff
from databourse.errors import CatalogError, VersionNotFound

__all__ = ["ApprovalRecord", "Catalog", "VersionRecord", "make_engine"]

log = logging.getLogger(__name__)


class Catalog(
    TransferGate, ApprovalDesk, GrantsAndAudit, PublicListing, ShareDesk, AccessLog, OptOutDesk
):
    """The catalog database behind one URL."""

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _now(self) -> datetime:
        # Looked up in this module on every call: `databourse.catalog.database.utcnow` stays the one
        # clock that callers and tests set, whichever mixin asks for the time.
        return utcnow()

    # --- products and versions ----------------------------------------------------------------

    def ensure_product(self, product_id: str, name: str, provider: str, dataset: str) -> None:
        """Create the product, or update its name, provider and dataset."""

        def work(session: Session) -> None:
            row = session.get(Product, product_id)
            if row is None:
                session.add(Product(id=product_id, name=name, provider=provider, dataset=dataset))
                session.flush()
            else:
                row.name, row.provider, row.dataset = name, provider, dataset

        self._write("ensure_product", work)

    def reserve_version(
        self, product_id: str, content_hash: str, schema: Schema, row_count: int
    ) -> VersionRecord:
        """The version for this content: the existing one (`new=False`) or the next, staged."""
        schema_diff([], schema)  # validates names and types before anything is written

        def work(session: Session) -> VersionRecord:
            # Locks the product row on PostgreSQL so that reservations of one product serialize.
            if session.get(Product, product_id, with_for_update=True) is None:
                raise CatalogError(
                    f"unknown product {product_id!r}: call ensure_product first",
                    product=product_id,
                )
            existing = session.scalars(
                select(Version).where(
                    Version.product_id == product_id, Version.content_hash == content_hash
                )
            ).first()
            if existing is not None:
                return VersionRecord.of(existing, new=False)
            try:
                latest: Version | None = self._version_row(session, product_id, None)
            except VersionNotFound:
                latest = None
            diff = schema_diff(latest.schema, schema) if latest is not None else None
            number = next_version(latest.version if latest is not None else None, diff)
            major, minor, patch = parse_version(number)
            row = Version(
                product_id=product_id,
                version=number,
                major=major,
                minor=minor,
                patch=patch,
                content_hash=content_hash,
                schema=[dict(column) for column in schema],
                schema_diff=diff.to_json() if diff is not None else None,
                row_count=row_count,
                status="staged",
            )
            session.add(row)
            session.flush()
            log.info("reserved %s %s for content %s", product_id, number, content_hash[:16])
            audit.append(
                session,
                "version",
                product=product_id,
                version=number,
                detail={
                    "content_hash": content_hash,
                    "rows": row_count,
                    "bump": diff.bump if diff is not None else "first",
                },
            )
            return VersionRecord.of(row, new=True)

        return self._write("reserve_version", work)

    def set_privacy(self, product_id: str, version: str, figures: dict[str, Any]) -> None:
        """Record the version's privacy model figures and re-identification risk."""

        def work(session: Session) -> None:
            self._version_row(session, product_id, version).privacy = dict(figures)

        self._write("set_privacy", work)

    def set_quality_scores(self, product_id: str, version: str, scores: dict[str, Any]) -> None:
        """Record the version's quality scores (per dimension), kept with its history."""

        def work(session: Session) -> None:
            self._version_row(session, product_id, version).quality_scores = dict(scores)

        self._write("set_quality_scores", work)

    def set_manifest(
        self, product_id: str, version: str, manifest_uri: str, sha256: str | None = None
    ) -> None:
        """Record where the version's manifest was written and, once, the sha256 of its bytes.

        The sha256 is also written to a `version` audit event: grants, `verify --all` and the
        DCAT export refuse a manifest whose bytes no longer hash to it (trail_state).
        """

        def work(session: Session) -> None:
            row = self._version_row(session, product_id, version)
            row.manifest_uri = manifest_uri
            if sha256 is None or row.manifest_sha256 == sha256:
                return
            if row.manifest_sha256 is not None:
                raise CatalogError(
                    f"{product_id} {version}: its manifest was recorded as "
                    f"{row.manifest_sha256[:16]}, not {sha256[:16]}; a manifest is written once",
                    product=product_id,
                    version=version,
                )
            row.manifest_sha256 = sha256
            audit.append(
                session,
                "version",
                product=product_id,
                version=version,
                detail={"content_hash": row.content_hash, "manifest_sha256": sha256},
            )

        self._write("set_manifest", work)

    def publish_version(self, product_id: str, version: str) -> None:
        """Mark a staged version published (no-op if it already is; withdrawn ones cannot be)."""

        def work(session: Session) -> None:
            row = self._version_row(session, product_id, version)
            if row.status == "withdrawn":
                raise CatalogError(
                    f"{product_id} {version} was withdrawn and cannot be published",
                    product=product_id,
                    version=version,
                )
            if row.status == "staged":
                row.status, row.published_at = "published", utcnow()
                log.info("published %s %s", product_id, version)
                audit.append(
                    session,
                    "publication",
                    product=product_id,
                    version=version,
                    detail={"content_hash": row.content_hash},
                )

        self._write("publish_version", work)

    def withdraw_version(self, product_id: str, version: str, reason: str | None = None) -> None:
        """Withdraw a version: it stays in the catalog (and keeps its number) but is not offered."""

        def work(session: Session) -> None:
            row = self._version_row(session, product_id, version)
            if row.status != "withdrawn":
                row.status = "withdrawn"
                row.withdrawn_at = utcnow()
                row.withdrawn_reason = reason
                audit.append(
                    session,
                    "withdrawal",
                    product=product_id,
                    version=version,
                    detail={"reason": reason, "content_hash": row.content_hash},
                )
            log.info("withdrew %s %s", product_id, version)

        self._write("withdraw_version", work)

    def get_version(self, product_id: str, version: str | None = None) -> VersionRecord:
        """One version (None: the highest number, whatever its status); VersionNotFound if none."""
        return self._read(
            lambda session: VersionRecord.of(self._version_row(session, product_id, version))
        )

    # --- browsing -----------------------------------------------------------------------------

    def list_products(self) -> list[dict[str, Any]]:
        """Every product with its latest version, number of versions and markets available.

        `markets`: where the latest version is available as the audit trail backs it
        (catalog_listing); a stored "available" the trail does not back is left out.
        """

        def work(session: Session) -> list[dict[str, Any]]:
            out = []
            state = TrailState.of(session)
            for product in session.scalars(select(Product).order_by(Product.id)):
                count = session.scalar(
                    select(func.count(Version.id)).where(Version.product_id == product.id)
                )
                latest = session.scalars(newest_first(product.id).limit(1)).first()
                listed = []
                if latest is not None and latest.status == "published":
                    listed = listed_availability(session, state, latest)
                out.append(
                    {
                        **product_json(product),
                        "latest_version": latest.version if latest else None,
                        "latest_status": latest.status if latest else None,
                        "version_count": int(count or 0),
                        "markets": [a["market"] for a in listed if a["status"] == "available"],
                    }
                )
            return out

        return self._read(work)

    def show(self, product_id: str, version: str | None = None) -> dict[str, Any]:
        """JSON-ready: the product and its versions (or one), each with markets and approvals."""

        def work(session: Session) -> dict[str, Any]:
            product = session.get(Product, product_id)
            if product is None:
                raise VersionNotFound(
                    f"no product {product_id!r} in the catalog", product=product_id, version=version
                )
            if version is not None:
                rows = [self._version_row(session, product_id, version)]
            else:
                rows = list(session.scalars(newest_first(product_id)))
            return {
                "product": product_json(product),
                "versions": [version_json(session, row) for row in rows],
            }

        return self._read(work)
