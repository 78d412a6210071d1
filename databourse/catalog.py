"""The product catalog: versions, availability per market and transfer approvals, in SQL.

SQLite file by default, PostgreSQL (`postgresql+psycopg://`) in production. Each public method is
one short transaction and returns plain records, never ORM objects.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from databourse import audit
from databourse.catalog_models import (
    APPROVAL_DECISIONS,
    AVAILABILITY_STATUSES,
    Approval,
    ApprovalRecord,
    Availability,
    Grant,
    Product,
    Version,
    VersionRecord,
    approval_refusal,
    availability_json,
    iso,
    product_json,
    utcnow,
    version_json,
)
from databourse.errors import CatalogError, TransferNotApproved, VersionNotFound
from databourse.versioning import Schema, next_version, parse_version, schema_diff

__all__ = ["ApprovalRecord", "Catalog", "VersionRecord", "make_engine"]

log = logging.getLogger(__name__)
T = TypeVar("T")

NEEDS_APPROVAL = ("pending_approval", "rejected", "expired")
_DECISION_STATUS = {"approved": "available", "rejected": "rejected", "expired": "expired"}
_MARKET = re.compile(r"^[A-Z]{2}$")
_WRITE_OPTION = "databourse_write"
MIGRATIONS = Path(__file__).parent / "migrations"
_ATTEMPTS = 8
SQLITE_TIMEOUT_S = 30.0


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own BEGIN handling is disabled so that `_sqlite_begin` decides the lock mode.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Writers take the write lock up front (waiting up to the timeout), so two of them can never
    # read the same "latest version" and then both try to insert the next one.
    write = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for a catalog URL: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL."""
    try:
        sa_url = make_url(url)
    except ArgumentError as exc:
        raise CatalogError("the catalog URL cannot be parsed", reason=str(exc)) from exc
    if sa_url.drivername in ("postgresql", "postgres"):
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        database = sa_url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, connect_args={"timeout": SQLITE_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_engine(sa_url, pool_pre_ping=True)
    raise CatalogError(f"unsupported catalog database {backend!r}", backend=backend)


def _check_market(market: str) -> None:
    if not isinstance(market, str) or not _MARKET.match(market):
        raise CatalogError(
            f"market must be a 2-letter upper-case code, got {market!r}", market=market
        )


def _newest_first(product_id: str) -> Select[tuple[Version]]:
    return (
        select(Version)
        .where(Version.product_id == product_id)
        .order_by(Version.major.desc(), Version.minor.desc(), Version.patch.desc())
    )


class Catalog:
    """The catalog database behind one URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._reads = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._writes = sessionmaker(
            bind=self.engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
        )

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def create_schema(self) -> None:
        """Migrate the catalog to the newest schema (Alembic), creating it on an empty database.

        Serialized against other processes starting at the same time: BEGIN IMMEDIATE on SQLite,
        an advisory lock on PostgreSQL. A database made by the pre-migration `create_all` is
        stamped as the baseline first.
        """
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.execution_options(**{_WRITE_OPTION: True}).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7263519)"))
            cfg.attributes["connection"] = conn
            tables = set(inspect(conn).get_table_names())
            if "versions" in tables and "alembic_version" not in tables:
                command.stamp(cfg, "0001")
            command.upgrade(cfg, "head")

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None before any migration)."""
        with self.engine.connect() as conn:
            if "alembic_version" not in inspect(conn).get_table_names():
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    # --- transactions -------------------------------------------------------------------------

    def _write(self, what: str, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction, retrying when a concurrent writer won a race."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._writes.begin() as session:
                    return work(session)
            except IntegrityError as exc:
                if attempt == _ATTEMPTS:
                    raise CatalogError(
                        f"{what}: conflicting concurrent writes, gave up after {attempt} attempts",
                        operation=what,
                    ) from exc
                log.info("%s: concurrent write conflict, retry %d", what, attempt)
                time.sleep(random.uniform(0.0, 0.02 * attempt))
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[Session], T]) -> T:
        with self._reads.begin() as session:
            return work(session)

    @staticmethod
    def _version_row(session: Session, product_id: str, version: str | None) -> Version:
        query = _newest_first(product_id)
        if version is not None:
            query = query.where(Version.version == version)
        row = session.scalars(query.limit(1)).first()
        if row is None:
            raise VersionNotFound(
                f"no version {version or '(latest)'} of product {product_id!r} in the catalog",
                product=product_id,
                version=version,
            )
        return row

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

    def record_grant(
        self, product_id: str, version: str, buyer: str, market: str, expires_at: datetime
    ) -> dict[str, Any]:
        """Record a buyer's access to a published version available in their market.

        Refused (TransferNotApproved) unless the version is published and its availability in
        `market` is "available", which for gated markets means an approval bound to its hash.
        """
        _check_market(market)

        def work(session: Session) -> dict[str, Any]:
            row = self._version_row(session, product_id, version)
            where = self._availability_row(session, row.id, market)
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

    def set_manifest(self, product_id: str, version: str, manifest_uri: str) -> None:
        """Record where the version's manifest was written."""

        def work(session: Session) -> None:
            self._version_row(session, product_id, version).manifest_uri = manifest_uri

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

    # --- markets and approvals ----------------------------------------------------------------

    @staticmethod
    def _availability_row(session: Session, version_id: int, market: str) -> Availability | None:
        return session.scalars(
            select(Availability).where(
                Availability.version_id == version_id, Availability.market == market
            )
        ).first()

    @staticmethod
    def _approved(session: Session, version: Version, market: str) -> bool:
        """Whether the latest decision for this content hash and market is a valid approval."""
        latest = session.scalars(
            select(Approval)
            .where(
                Approval.version_id == version.id,
                Approval.market == market,
                Approval.content_hash == version.content_hash,
            )
            .order_by(Approval.decided_at.desc(), Approval.id.desc())
            .limit(1)
        ).first()
        if latest is None or latest.decision != "approved":
            return False
        return latest.valid_until is None or latest.valid_until >= date.today()

    def set_availability(
        self,
        product_id: str,
        version: str,
        market: str,
        status: str,
        rule_id: str | None,
        route: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> str:
        """Record the policy's decision for a market; returns the status stored.

        "available" is refused (TransferNotApproved) while the market awaits or lacks an approval
        for this content hash. "pending_approval" for content already approved stays "available",
        so a re-run does not ask the approver twice.
        """
        _check_market(market)
        if status not in AVAILABILITY_STATUSES:
            raise CatalogError(f"unknown availability status {status!r}", status=status)

        def work(session: Session) -> str:
            row = self._version_row(session, product_id, version)
            if row.status == "withdrawn" and status == "available":
                raise CatalogError(
                    f"{product_id} {version} was withdrawn: it is offered nowhere",
                    product=product_id,
                    version=version,
                    market=market,
                )
            current = self._availability_row(session, row.id, market)
            approved = self._approved(session, row, market)
            stored = status
            if status == "available" and current is not None and current.status in NEEDS_APPROVAL:
                if not approved:
                    raise TransferNotApproved(
                        f"{product_id} {version} needs an approval for market {market} "
                        f"(content {row.content_hash[:16]}) before it can be made available",
                        product=product_id,
                        version=version,
                        market=market,
                    )
            elif status == "pending_approval" and approved:
                stored = "available"
            changed = current is None or (current.status, current.rule_id) != (stored, rule_id)
            if current is None:
                current = Availability(version_id=row.id, market=market)
                session.add(current)
            current.status, current.rule_id, current.route = stored, rule_id, route
            current.detail, current.updated_at = detail, utcnow()
            if changed:
                audit.append(
                    session,
                    "decision",
                    product=product_id,
                    version=version,
                    market=market,
                    detail={
                        "status": stored,
                        "rule": rule_id,
                        "route": route,
                        "content_hash": row.content_hash,
                    },
                )
            log.info("%s %s market %s: %s (rule %s)", product_id, version, market, stored, rule_id)
            return stored

        return self._write("set_availability", work)

    def record_approval(
        self,
        product_id: str,
        version: str,
        market: str,
        decision: str,
        approver: str,
        route: str | None,
        reference: str | None,
        conditions: str | None = None,
        evidence_url: str | None = None,
        valid_until: date | None = None,
        flow_run_id: str | None = None,
        prefect_identity: str | None = None,
        content_hash: str | None = None,
    ) -> ApprovalRecord:
        """Store a transfer decision bound to the version's content hash and apply it to the market.

        Idempotent per (version, market, flow_run_id). `content_hash`, when given, is the hash the
        approver reviewed: a different one than the version's is refused (TransferNotApproved).
        """
        _check_market(market)
        if decision not in APPROVAL_DECISIONS:
            raise CatalogError(f"unknown approval decision {decision!r}", decision=decision)

        def work(session: Session) -> ApprovalRecord:
            row = self._version_row(session, product_id, version)
            if flow_run_id is not None:
                existing = session.scalars(
                    select(Approval).where(
                        Approval.version_id == row.id,
                        Approval.market == market,
                        Approval.flow_run_id == flow_run_id,
                    )
                ).first()
                if existing is not None:
                    return ApprovalRecord.of(existing, row, new=False)
            current = self._availability_row(session, row.id, market)
            refusal = approval_refusal(row, current, decision, content_hash, valid_until)
            if refusal is not None:
                raise TransferNotApproved(
                    f"{product_id} {version} market {market}: {refusal}",
                    product=product_id,
                    version=version,
                    market=market,
                )
            approval = Approval(
                version_id=row.id,
                market=market,
                content_hash=row.content_hash,
                decision=decision,
                approver=approver,
                route=route,
                reference=reference,
                conditions=conditions,
                evidence_url=evidence_url,
                valid_until=valid_until,
                flow_run_id=flow_run_id,
                prefect_identity=prefect_identity,
            )
            session.add(approval)
            session.flush()
            if current is None:
                current = Availability(version_id=row.id, market=market, rule_id=None)
                session.add(current)
            current.status, current.route = _DECISION_STATUS[decision], route or current.route
            current.detail = {**(current.detail or {}), "approval_id": approval.id}
            current.updated_at = utcnow()
            log.info("%s %s market %s: %s by approval", product_id, version, market, decision)
            kind = {"approved": "approval", "rejected": "rejection", "expired": "expiry"}[decision]
            audit.append(
                session,
                kind,
                product=product_id,
                version=version,
                market=market,
                actor=approver,
                detail={
                    "route": route,
                    "reference": reference,
                    "content_hash": row.content_hash,
                    "flow_run_id": flow_run_id,
                    "prefect_identity": prefect_identity,
                },
            )
            return ApprovalRecord.of(approval, row, new=True)

        return self._write("record_approval", work)

    # --- browsing -----------------------------------------------------------------------------

    def list_products(self) -> list[dict[str, Any]]:
        """Every product with its latest version, number of versions and markets available."""

        def work(session: Session) -> list[dict[str, Any]]:
            out = []
            for product in session.scalars(select(Product).order_by(Product.id)):
                count = session.scalar(
                    select(func.count(Version.id)).where(Version.product_id == product.id)
                )
                latest = session.scalars(_newest_first(product.id).limit(1)).first()
                markets = []
                if latest is not None and latest.status == "published":
                    markets = list(
                        session.scalars(
                            select(Availability.market)
                            .where(
                                Availability.version_id == latest.id,
                                Availability.status == "available",
                            )
                            .order_by(Availability.market)
                        )
                    )
                out.append(
                    {
                        **product_json(product),
                        "latest_version": latest.version if latest else None,
                        "latest_status": latest.status if latest else None,
                        "version_count": int(count or 0),
                        "markets": markets,
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
                rows = list(session.scalars(_newest_first(product_id)))
            return {
                "product": product_json(product),
                "versions": [version_json(session, row) for row in rows],
            }

        return self._read(work)

    def pending_approvals(self) -> list[dict[str, Any]]:
        """Markets awaiting a human decision, oldest first."""

        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.execute(
                select(Availability, Version)
                .join(Version, Availability.version_id == Version.id)
                .where(Availability.status == "pending_approval")
                .order_by(Availability.updated_at, Availability.id)
            ).all()
            return [
                {
                    "product_id": version.product_id,
                    "version": version.version,
                    "content_hash": version.content_hash,
                    "version_status": version.status,
                    **availability_json(availability),
                }
                for availability, version in rows
            ]

        return self._read(work)
