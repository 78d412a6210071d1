"""SQLAlchemy tables of the catalog: products, versions, availability per market, approvals."""

from __future__ import annotations

from datetime import date, datetime
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
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from databourse.clock import aware as aware
from databourse.clock import iso as iso
from databourse.clock import to_utc as to_utc
from databourse.clock import utcnow as utcnow

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
