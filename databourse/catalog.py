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
    ExporterTransfer,
    Grant,
    Product,
    Version,
    VersionRecord,
    approval_refusal,
    availability_json,
    counted,
    iso,
    prior_approval,
    product_json,
    sent_this_year,
    utcnow,
    version_json,
)
from databourse.config import CrossBorderPolicy
from databourse.errors import CatalogError, TransferNotApproved, VersionNotFound
from databourse.transfer import (
    TransferDecision,
    TransferFacts,
    calendar_year,
    carry_over_problems,
    decide,
    with_running_count,
)
from databourse.versioning import Schema, next_version, parse_version, schema_diff

__all__ = ["ApprovalRecord", "Catalog", "VersionRecord", "make_engine"]

log = logging.getLogger(__name__)
T = TypeVar("T")

GATED = ("pending_approval", "rejected", "expired", "denied")  # only a person reopens these
_DECISION_STATUS = {"approved": "available", "rejected": "rejected", "expired": "expired"}
# What an approval carried over to a later version keeps from the one it copies.
_CARRIED_FIELDS = (
    "approver",
    "route",
    "basis",
    "reference",
    "conditions",
    "evidence_url",
    "valid_until",
    "prefect_identity",
    "identity_note",
)
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


def _lock_exporter(session: Session, exporter: str) -> None:
    # One gate per exporter at a time on PostgreSQL (SQLite writers are serialized anyway), so
    # two versions decided together cannot both stay under a threshold they cross together.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(7263521, hashtext(:e))"), {"e": exporter}
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
        A grant abroad in a new calendar year counts the version in that year too.
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
            self._count(session, row, market)
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

    @staticmethod
    def _store_availability(
        session: Session,
        row: Version,
        market: str,
        status: str,
        rule_id: str | None,
        route: str | None,
        detail: dict[str, Any] | None,
    ) -> None:
        """Write a market's status; a change of status or rule is an audit event."""
        current = Catalog._availability_row(session, row.id, market)
        changed = current is None or (current.status, current.rule_id) != (status, rule_id)
        if current is None:
            current = Availability(version_id=row.id, market=market)
            session.add(current)
        current.status, current.rule_id, current.route = status, rule_id, route
        current.detail, current.updated_at = detail, utcnow()
        if changed:
            audit.append(
                session,
                "decision",
                product=row.product_id,
                version=row.version,
                market=market,
                detail={
                    "status": status,
                    "rule": rule_id,
                    "route": route,
                    "content_hash": row.content_hash,
                },
            )
        log.info(
            "%s %s market %s: %s (rule %s)", row.product_id, row.version, market, status, rule_id
        )

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
        """Record a market's status by hand; returns the status stored.

        "available" needs a valid approval bound to this content hash, except for the version's
        own jurisdiction (rule "domestic", which is not a transfer). Allowed cross-border markets
        are opened only by `apply_transfer_policy`. "pending_approval" for content already
        approved stays "available", so a re-run does not ask the approver twice.
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
            if status == "available" and not approved:
                origin = (row.transfer_facts or {}).get("origin", market)
                gated = current is not None and current.status in GATED
                if rule_id != "domestic" or origin != market or gated:
                    raise TransferNotApproved(
                        f"{product_id} {version} cannot be made available in {market} without "
                        f"an approval bound to its content {row.content_hash[:16]} (market "
                        f"{current.status if current else 'undecided'}); only the transfer gate "
                        "opens a market its policy allows",
                        product=product_id,
                        version=version,
                        market=market,
                    )
                if row.transfer_facts is None:
                    # A version the gate has not seen: this claim fixes its home market, so no
                    # other market can be called domestic, and the gate re-decides it later.
                    row.transfer_facts = {"origin": market, "claimed_domestic": True}
            elif status == "pending_approval" and approved:
                stored = "available"
            self._store_availability(session, row, market, stored, rule_id, route, detail)
            return stored

        return self._write("set_availability", work)

    def apply_transfer_policy(
        self,
        product_id: str,
        version: str,
        policy: CrossBorderPolicy,
        facts: TransferFacts,
        markets: list[str],
        exporter: str,
        carry_over: bool = True,
    ) -> list[dict[str, Any]]:
        """The transfer gate: decide every market and store the outcome, in one transaction.

        The rules see `facts` plus the exporter's running count for the current calendar year
        (in the origin's time zone; other versions only). Per market the status becomes
        "available" (allowed, approved for this content, or an earlier version's approval carried
        over when `carry_over_problems` finds nothing), "pending_approval", "rejected" (final for
        this content) or "denied". A market once gated stays so until a person decides. Every
        market that becomes available abroad counts the version once in the exporter's year.
        """
        for market in markets:
            _check_market(market)
        timezone = policy.origin(facts.origin).timezone

        def work(session: Session) -> list[dict[str, Any]]:
            row = self._version_row(session, product_id, version)
            _lock_exporter(session, exporter)
            year = calendar_year(timezone, utcnow())
            full = with_running_count(facts, year, *sent_this_year(session, exporter, year, row.id))
            row.transfer_facts = {**full.to_json(), "exporter": exporter, "timezone": timezone}
            out = []
            for market in markets:
                decision = decide(policy, full, market)
                status, carried, problems = self._gate_market(
                    session, row, decision, full, carry_over
                )
                out.append(
                    {
                        **decision.to_json(),
                        "facts": full.to_json(),
                        "status": status,
                        "carried_over_from": carried,
                        "carry_over_problems": problems,
                    }
                )
            return out

        return self._write("apply_transfer_policy", work)

    def _gate_market(
        self,
        session: Session,
        row: Version,
        decision: TransferDecision,
        facts: TransferFacts,
        carry_over: bool,
    ) -> tuple[str, dict[str, Any] | None, list[str]]:
        """One market's status under the policy's decision: (status, carried from, why not)."""
        market = decision.market
        current = self._availability_row(session, row.id, market)
        was = current.status if current is not None else None
        carried: dict[str, Any] | None = None
        problems: list[str] = []
        if decision.decision == "denied":
            status = "denied"
        elif was == "rejected":
            status = "rejected"
        elif self._approved(session, row, market) or (
            decision.decision == "allowed" and was not in ("pending_approval", "expired")
        ):
            status = "available"
        elif decision.decision == "allowed":
            status = "pending_approval"  # gated before for this content: a person decides
        else:
            carried, problems = self._carry_over(session, row, decision, facts, carry_over)
            status = "available" if carried else "pending_approval"
        detail = {**decision.to_json(), "year_individuals": facts.year_individuals}
        self._store_availability(
            session, row, market, status, decision.rule_id, decision.route, detail
        )
        if status == "available":
            self._count(session, row, market)
        return status, carried, problems

    def _carry_over(
        self,
        session: Session,
        row: Version,
        decision: TransferDecision,
        facts: TransferFacts,
        allowed: bool,
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """Copy an earlier version's approval to this one when the rules allow it."""
        market = decision.market
        prior = prior_approval(session, row, market)
        if prior is None or not allowed:
            return None, []
        problems = carry_over_problems(prior, row.schema, facts, decision, date.today())
        if problems:
            why = "; ".join(problems)
            log.info("%s %s %s: no carry-over: %s", row.product_id, row.version, market, why)
            return None, problems
        source = session.get(Approval, prior.approval_id)
        assert source is not None
        origin = {
            "version": prior.version,
            "approval_id": prior.approval_id,
            "content_hash": prior.content_hash,
        }
        copy = Approval(
            version_id=row.id,
            market=decision.market,
            content_hash=row.content_hash,
            decision="approved",
            **{f: getattr(source, f) for f in _CARRIED_FIELDS},
            rule_id=decision.rule_id,
            carry_over=True,
            carried_over_from=origin,
        )
        session.add(copy)
        session.flush()
        audit.append(
            session,
            "carry_over",
            product=row.product_id,
            version=row.version,
            market=decision.market,
            actor=source.approver,
            detail={
                "carried_over_from": origin,
                "approval_id": copy.id,
                "route": copy.route,
                "reference": copy.reference,
                "rule": decision.rule_id,
                "content_hash": row.content_hash,
            },
        )
        return origin, []

    @staticmethod
    def _count(session: Session, row: Version, market: str) -> None:
        """Count the version's individuals once in its exporter's year when it first goes abroad."""
        facts = row.transfer_facts
        if not facts or not facts.get("individuals") or market == facts.get("origin"):
            return
        exporter, year = facts["exporter"], calendar_year(facts["timezone"], utcnow())
        if counted(session, exporter, year, row.id):
            return
        entry = ExporterTransfer(
            exporter=exporter,
            year=year,
            version_id=row.id,
            content_hash=row.content_hash,
            individuals=int(facts["individuals"]),
            sensitive=bool(facts.get("sensitive_categories")),
            market=market,
        )
        session.add(entry)
        session.flush()
        audit.append(
            session,
            "count",
            product=row.product_id,
            version=row.version,
            market=market,
            detail={
                "exporter": exporter,
                "year": year,
                "individuals": entry.individuals,
                "sensitive": entry.sensitive,
                "content_hash": row.content_hash,
            },
        )

    def running_count(self, exporter: str, year: int) -> dict[str, Any]:
        """The exporter's individuals sent abroad in a calendar year, and the versions counted."""

        def work(session: Session) -> dict[str, Any]:
            rows = session.execute(
                select(ExporterTransfer, Version)
                .join(Version, ExporterTransfer.version_id == Version.id)
                .where(ExporterTransfer.exporter == exporter, ExporterTransfer.year == year)
                .order_by(ExporterTransfer.id)
            ).all()
            sent, sensitive = sent_this_year(session, exporter, year)
            return {
                "exporter": exporter,
                "year": year,
                "individuals": sent,
                "sensitive_individuals": sensitive,
                "versions": [
                    {
                        "product": v.product_id,
                        "version": v.version,
                        "individuals": t.individuals,
                        "sensitive": t.sensitive,
                        "market": t.market,
                        "counted_at": iso(t.counted_at),
                    }
                    for t, v in rows
                ],
            }

        return self._read(work)

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
        basis: str | None = None,
        carry_over: bool = False,
        identity_note: str | None = None,
    ) -> ApprovalRecord:
        """Store a person's transfer decision bound to the version's content hash and the market.

        Only a market awaiting a decision (pending_approval) can be approved or rejected; an
        expiry applies to a pending or approved one. Idempotent per (version, market,
        flow_run_id). `content_hash`, when given, is the hash the approver reviewed: a different
        one than the version's is refused (TransferNotApproved). An approval counts the version
        in its exporter's year.
        """
        _check_market(market)
        if decision not in APPROVAL_DECISIONS:
            raise CatalogError(f"unknown approval decision {decision!r}", decision=decision)

        def work(session: Session) -> ApprovalRecord:
            row = self._version_row(session, product_id, version)
            existing = self._decision_of_run(session, row, market, flow_run_id)
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
                basis=basis,
                rule_id=current.rule_id if current is not None else None,
                carry_over=carry_over and decision == "approved",
                identity_note=identity_note,
            )
            self._apply_answer(session, row, current, approval)
            return ApprovalRecord.of(approval, row, new=True)

        return self._write("record_approval", work)

    def record_expiry(
        self, product_id: str, version: str, market: str, flow_run_id: str, waited: str
    ) -> ApprovalRecord | None:
        """Record that nobody answered a run's approval form in time (None: nothing to expire).

        Idempotent per run; a market answered meanwhile (by another run) is left as it is.
        """
        _check_market(market)

        def work(session: Session) -> ApprovalRecord | None:
            row = self._version_row(session, product_id, version)
            current = self._availability_row(session, row.id, market)
            done = self._decision_of_run(session, row, market, flow_run_id)
            if done is not None or current is None or current.status != "pending_approval":
                return None
            approval = Approval(
                version_id=row.id,
                market=market,
                content_hash=row.content_hash,
                decision="expired",
                approver="(nobody: approval timeout)",
                route=current.route,
                reference=None,
                conditions=f"no answer on the approval form: {waited}",
                flow_run_id=flow_run_id,
                rule_id=current.rule_id,
                identity_note="recorded by the approval sweep; no person answered",
            )
            self._apply_answer(session, row, current, approval)
            return ApprovalRecord.of(approval, row, new=True)

        return self._write("record_expiry", work)

    @staticmethod
    def _decision_of_run(
        session: Session, row: Version, market: str, flow_run_id: str | None
    ) -> Approval | None:
        if flow_run_id is None:
            return None
        return session.scalars(
            select(Approval).where(
                Approval.version_id == row.id,
                Approval.market == market,
                Approval.flow_run_id == flow_run_id,
            )
        ).first()

    def _apply_answer(
        self, session: Session, row: Version, current: Availability | None, approval: Approval
    ) -> None:
        """Store a decision, set the market's status from it, audit it, count an approval."""
        session.add(approval)
        session.flush()
        if current is None:
            current = Availability(version_id=row.id, market=approval.market, rule_id=None)
            session.add(current)
        current.status = _DECISION_STATUS[approval.decision]
        current.route = approval.route or current.route
        current.detail = {**(current.detail or {}), "approval_id": approval.id}
        current.updated_at = utcnow()
        what = f"{approval.market}: {approval.decision}"
        log.info("%s %s market %s by approval", row.product_id, row.version, what)
        audit.append(
            session,
            {"approved": "approval", "rejected": "rejection", "expired": "expiry"}[
                approval.decision
            ],
            product=row.product_id,
            version=row.version,
            market=approval.market,
            actor=approval.approver,
            detail={
                "approval_id": approval.id,
                "route": approval.route,
                "basis": approval.basis,
                "reference": approval.reference,
                "valid_until": iso(approval.valid_until),
                "carry_over": approval.carry_over,
                "content_hash": row.content_hash,
                "flow_run_id": approval.flow_run_id,
                "prefect_identity": approval.prefect_identity,
                "identity_note": approval.identity_note,
            },
        )
        if approval.decision == "approved":
            self._count(session, row, approval.market)

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

    def transfer_decisions(self, product_id: str | None = None) -> list[dict[str, Any]]:
        """Every recorded decision (approved, rejected, expired, carried over), newest first."""

        def work(session: Session) -> list[dict[str, Any]]:
            query = select(Approval, Version).join(Version, Approval.version_id == Version.id)
            if product_id is not None:
                query = query.where(Version.product_id == product_id)
            rows = session.execute(query.order_by(Approval.decided_at.desc(), Approval.id.desc()))
            return [ApprovalRecord.of(a, v).to_json() for a, v in rows]

        return self._read(work)

    def expired_runs(self) -> set[tuple[str, str]]:
        """(flow run id, market) of every expiry already recorded, for the sweep to skip."""

        def work(session: Session) -> set[tuple[str, str]]:
            rows = session.execute(
                select(Approval.flow_run_id, Approval.market).where(
                    Approval.decision == "expired", Approval.flow_run_id.is_not(None)
                )
            )
            return {(str(run), market) for run, market in rows}

        return self._read(work)
