"""Baseline: products, versions, availability, approvals.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "product_id",
            sa.String(200),
            sa.ForeignKey("products.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("major", sa.Integer, nullable=False),
        sa.Column("minor", sa.Integer, nullable=False),
        sa.Column("patch", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("schema", JSON, nullable=False),
        sa.Column("schema_diff", JSON, nullable=True),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("manifest_uri", sa.Text, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("published_at", TZ, nullable=True),
        sa.UniqueConstraint("product_id", "version"),
        sa.UniqueConstraint("product_id", "content_hash"),
        sa.CheckConstraint("status IN ('staged', 'published', 'withdrawn')", name="status"),
    )
    op.create_table(
        "availability",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("market", sa.String(2), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=True),
        sa.Column("route", sa.String(200), nullable=True),
        sa.Column("detail", JSON, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("version_id", "market"),
        sa.CheckConstraint(
            "status IN ('available', 'pending_approval', 'rejected', 'expired', 'denied')",
            name="status",
        ),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("market", sa.String(2), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("route", sa.String(200), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("conditions", sa.Text, nullable=True),
        sa.Column("evidence_url", sa.Text, nullable=True),
        sa.Column("valid_until", sa.Date, nullable=True),
        sa.Column("flow_run_id", sa.String(100), nullable=True),
        sa.Column("prefect_identity", sa.String(200), nullable=True),
        sa.Column("decided_at", TZ, nullable=False),
        sa.UniqueConstraint("version_id", "market", "flow_run_id"),
        sa.CheckConstraint("decision IN ('approved', 'rejected', 'expired')", name="decision"),
    )


def downgrade() -> None:
    for table in ("approvals", "availability", "versions", "products"):
        op.drop_table(table)
