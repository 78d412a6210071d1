"""SQLAlchemy tables of the catalog: products, versions, availability per market, approvals."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from databourse.transfer import PriorApproval

VERSION_STATUSES = ("staged", "published", "withdrawn")
AVAILABILITY_STATUSES = ("available", "pending_approval", "rejected", "expired", "denied")
APPROVAL_DECISIONS = ("approved", "rejected", "expired")
PENDING_STATUSES = ("waiting", "recorded", "refused", "failed", "cancelled", "expired")

# Deterministic constraint names, so Alembic autogenerate and later migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base of the catalog tables (its `metadata` is what Alembic targets)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Product(Base):
    """A data product offered on the exchange."""

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(400))
    provider: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Version(Base):
    """One immutable, content-addressed version of a product."""

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("product_id", "version"),
        UniqueConstraint("product_id", "content_hash"),
        CheckConstraint(_in("status", VERSION_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(50))
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    patch: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(128))
    schema: Mapped[list[dict[str, str]]] = mapped_column(JsonType)
    schema_diff: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    row_count: Mapped[int] = mapped_column(Integer)
    manifest_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    # sha256 of the whole manifest as packaged (also in the MAC'd `version` audit event).
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="staged")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    quality_scores: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    privacy: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    # What the transfer gate measured (origin, exporter, time zone, categories, individuals).
    transfer_facts: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)


class Availability(Base):
    """Whether a version may be offered in a market (destination jurisdiction), and why."""

    __tablename__ = "availability"
    __table_args__ = (
        UniqueConstraint("version_id", "market"),
        CheckConstraint(_in("status", AVAILABILITY_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    market: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(20))
    rule_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    route: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Approval(Base):
    """A human transfer decision, bound to the content hash of the version it was made for."""

    __tablename__ = "approvals"
    __table_args__ = (
        # NULL flow_run_ids never collide, so decisions recorded outside a flow run all stay.
        UniqueConstraint("version_id", "market", "flow_run_id"),
        CheckConstraint(_in("decision", APPROVAL_DECISIONS), name="decision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    market: Mapped[str] = mapped_column(String(2))
    content_hash: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(20))
    approver: Mapped[str] = mapped_column(String(200))
    route: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    conditions: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    prefect_identity: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    basis: Mapped[str | None] = mapped_column(String(100), nullable=True)  # basis within route
    rule_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # rule that asked
    carry_over: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    carried_over_from: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    identity_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The pending_approvals row (suspension, nonce) the answer was given on; None: not a form.
    pending_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PendingApproval(Base):
    """One suspension of a publish run waiting for a person's answer on one market.

    Written when the run suspends; an answer is accepted only for exactly this row: the same
    run, suspend key, version content hash and market, and the form's nonce.
    """

    __tablename__ = "pending_approvals"
    __table_args__ = (
        UniqueConstraint("flow_run_id", "suspend_key"),
        UniqueConstraint("nonce", name="uq_pending_approvals_nonce"),
        CheckConstraint(_in("status", PENDING_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    market: Mapped[str] = mapped_column(String(2))
    content_hash: Mapped[str] = mapped_column(String(128))
    flow_run_id: Mapped[str] = mapped_column(String(100))
    suspend_key: Mapped[str] = mapped_column(String(200))
    nonce: Mapped[str] = mapped_column(String(64))
    route: Mapped[str | None] = mapped_column(String(200), nullable=True)
    rule_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExporterTransfer(Base):
    """One version counted in its exporter's running yearly count of individuals sent abroad."""

    __tablename__ = "exporter_transfers"
    __table_args__ = (UniqueConstraint("exporter", "year", "version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exporter: Mapped[str] = mapped_column(String(200))  # the provider
    year: Mapped[int] = mapped_column(Integer)  # calendar year in the origin's time zone
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    content_hash: Mapped[str] = mapped_column(String(128))
    individuals: Mapped[int] = mapped_column(Integer)
    sensitive: Mapped[bool] = mapped_column(Boolean)
    market: Mapped[str] = mapped_column(
        String(2)
    )  # the first foreign market it became available in
    counted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Grant(Base):
    """Access to one exact version given to a buyer in a market, until it expires."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    content_hash: Mapped[str] = mapped_column(String(128))
    buyer: Mapped[str] = mapped_column(String(200))
    market: Mapped[str] = mapped_column(String(2))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    """One event of the hash-chained audit trail (append-only: nothing updates or deletes)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(20))
    product: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    market: Mapped[str | None] = mapped_column(String(2), nullable=True)
    actor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # HMAC over the event's hash with the audit key (which the database never holds), and the
    # id of that key; NULL on events written before keys were introduced (0007).
    mac: Mapped[str | None] = mapped_column(String(128), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


def to_utc(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime (SQLite hands back naive ones, stored as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """`to_utc`, passing None through."""
    return None if moment is None else to_utc(moment)


def iso(moment: datetime | date | None) -> str | None:
    """ISO 8601 text of a datetime (UTC) or date, for JSON."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return to_utc(moment).isoformat()
    return moment.isoformat()


def json_copy(value: Any) -> Any:
    """A copy of a JSON value's lists and dicts (its leaves are immutable)."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


@dataclass(frozen=True)
class VersionRecord:
    """A product version as stored; `new` says whether this call created it."""

    product_id: str
    version: str
    content_hash: str
    status: str
    row_count: int
    manifest_uri: str | None
    schema: list[dict[str, str]]
    schema_diff: dict[str, Any] | None
    created_at: datetime
    published_at: datetime | None
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None
    quality_scores: dict[str, Any] | None = None
    privacy: dict[str, Any] | None = None
    new: bool = False
    manifest_sha256: str | None = None

    @classmethod
    def of(cls, row: Version, new: bool = False) -> VersionRecord:
        """Detach a `versions` row into a record."""
        return cls(
            product_id=row.product_id,
            version=row.version,
            content_hash=row.content_hash,
            status=row.status,
            row_count=row.row_count,
            manifest_uri=row.manifest_uri,
            schema=[dict(column) for column in row.schema],
            schema_diff=dict(row.schema_diff) if row.schema_diff is not None else None,
            created_at=to_utc(row.created_at),
            published_at=aware(row.published_at),
            withdrawn_at=aware(row.withdrawn_at),
            withdrawn_reason=row.withdrawn_reason,
            quality_scores=dict(row.quality_scores) if row.quality_scores is not None else None,
            privacy=dict(row.privacy) if row.privacy is not None else None,
            new=new,
            manifest_sha256=row.manifest_sha256,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (datetimes as ISO text, without `new`); its values are copies.

        Built field by field: `asdict` took 0.7 ms a version, most of a 10,000-version listing."""
        out = {f.name: json_copy(getattr(self, f.name)) for f in fields(self) if f.name != "new"}
        out["created_at"] = iso(self.created_at)
        out["published_at"] = iso(self.published_at)
        out["withdrawn_at"] = iso(self.withdrawn_at)
        return out


@dataclass(frozen=True)
class ApprovalRecord:
    """A stored transfer decision; `new` says whether this call created it."""

    id: int
    product_id: str
    version: str
    market: str
    content_hash: str
    decision: str
    approver: str
    route: str | None
    reference: str | None
    conditions: str | None
    evidence_url: str | None
    valid_until: date | None
    flow_run_id: str | None
    prefect_identity: str | None
    decided_at: datetime
    basis: str | None = None
    rule_id: str | None = None
    carry_over: bool = False
    carried_over_from: dict[str, Any] | None = None
    identity_note: str | None = None
    pending_id: int | None = None  # the suspension (pending_approvals row) it was answered on
    new: bool = False

    @classmethod
    def of(cls, row: Approval, version: Version, new: bool = False) -> ApprovalRecord:
        """Detach an `approvals` row (and its version's names) into a record."""
        return cls(
            id=row.id,
            product_id=version.product_id,
            version=version.version,
            market=row.market,
            content_hash=row.content_hash,
            decision=row.decision,
            approver=row.approver,
            route=row.route,
            reference=row.reference,
            conditions=row.conditions,
            evidence_url=row.evidence_url,
            valid_until=row.valid_until,
            flow_run_id=row.flow_run_id,
            prefect_identity=row.prefect_identity,
            decided_at=to_utc(row.decided_at),
            basis=row.basis,
            rule_id=row.rule_id,
            carry_over=bool(row.carry_over),
            carried_over_from=dict(row.carried_over_from) if row.carried_over_from else None,
            identity_note=row.identity_note,
            pending_id=row.pending_id,
            new=new,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (dates as ISO text, without `new`)."""
        out = asdict(self)
        out.pop("new")
        out["valid_until"] = iso(self.valid_until)
        out["decided_at"] = iso(self.decided_at)
        return out


def availability_json(row: Availability) -> dict[str, Any]:
    """JSON-ready dict of an `availability` row."""
    return {
        "market": row.market,
        "status": row.status,
        "rule_id": row.rule_id,
        "route": row.route,
        "detail": dict(row.detail) if row.detail is not None else None,
        "updated_at": iso(row.updated_at),
    }


def approval_refusal(
    version: Version,
    current: Availability | None,
    decision: str,
    content_hash: str | None,
    valid_until: date | None,
) -> str | None:
    """Why an approval cannot be recorded, or None."""
    if content_hash is not None and content_hash != version.content_hash:
        return (
            f"the approval was given for content {content_hash[:16]}, "
            f"not this version's {version.content_hash[:16]}"
        )
    status = current.status if current is not None else "undecided"
    if decision == "approved" and status == "denied":
        return "the transfer policy denies this market; an approval cannot override it"
    if decision == "approved" and valid_until is not None and valid_until < date.today():
        return f"the approval expired on {valid_until.isoformat()}"
    if decision in ("approved", "rejected") and status != "pending_approval":
        return (
            f"no decision is awaited for this market (it is {status}): the transfer gate opens one"
        )
    if decision == "expired" and status not in ("pending_approval", "available"):
        return f"nothing to expire: the market is {status}"
    return None


def product_json(product: Product) -> dict[str, Any]:
    """JSON-ready dict of a `products` row."""
    return {
        "id": product.id,
        "name": product.name,
        "provider": product.provider,
        "dataset": product.dataset,
        "created_at": iso(product.created_at),
    }


def version_json(session: Session, row: Version) -> dict[str, Any]:
    """JSON-ready dict of a version with its availability per market and its approvals."""
    availability = session.scalars(
        select(Availability).where(Availability.version_id == row.id).order_by(Availability.market)
    )
    approvals = session.scalars(
        select(Approval).where(Approval.version_id == row.id).order_by(Approval.id)
    )
    return {
        **VersionRecord.of(row).to_json(),
        "availability": [availability_json(a) for a in availability],
        "approvals": [ApprovalRecord.of(a, row).to_json() for a in approvals],
    }


# --- the transfer gate's queries ------------------------------------------------------------


def sent_this_year(
    session: Session, exporter: str, year: int, exclude_version_id: int | None = None
) -> tuple[int, int]:
    """Individuals the exporter sent abroad in `year`, and those in sensitive versions."""
    query = select(ExporterTransfer.individuals, ExporterTransfer.sensitive).where(
        ExporterTransfer.exporter == exporter, ExporterTransfer.year == year
    )
    if exclude_version_id is not None:
        query = query.where(ExporterTransfer.version_id != exclude_version_id)
    rows = session.execute(query).all()
    return sum(n for n, _ in rows), sum(n for n, sensitive in rows if sensitive)


def prior_approval(session: Session, approval_id: int) -> PriorApproval | None:
    """An earlier version's decision as the catalog's rows hold it (None: a row is gone).

    Which decision is the prior one is the audited trail's to say (`TrailState.prior_answer`);
    the gate then compares these rows with that decision's audit event.
    """
    approval = session.get(Approval, approval_id)
    earlier = session.get(Version, approval.version_id) if approval is not None else None
    if approval is None or earlier is None:
        return None
    facts = earlier.transfer_facts
    return PriorApproval(
        approval_id=approval.id,
        version=earlier.version,
        content_hash=earlier.content_hash,
        decision=approval.decision,
        carry_over=bool(approval.carry_over),
        rule_id=approval.rule_id,
        route=approval.route,
        valid_until=approval.valid_until,
        schema=[dict(column) for column in earlier.schema],
        categories=tuple(facts["categories"]) if facts and "categories" in facts else None,
    )


def counted(session: Session, exporter: str, year: int, version_id: int) -> bool:
    """Whether the version is already in the exporter's count for that year."""
    query = select(ExporterTransfer.id).where(
        ExporterTransfer.exporter == exporter,
        ExporterTransfer.year == year,
        ExporterTransfer.version_id == version_id,
    )
    return session.scalars(query.limit(1)).first() is not None
