"""Gate integrity: pending approvals bound to a suspension (nonce), authenticated audit events.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "pending_approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("market", sa.String(2), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("flow_run_id", sa.String(100), nullable=False),
        sa.Column("suspend_key", sa.String(200), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("route", sa.String(200), nullable=True),
        sa.Column("rule_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", _JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "flow_run_id", "suspend_key", name="uq_pending_approvals_flow_run_id_suspend_key"
        ),
        sa.UniqueConstraint("nonce", name="uq_pending_approvals_nonce"),
        sa.CheckConstraint(
            "status IN ('waiting', 'recorded', 'refused', 'failed', 'cancelled', 'expired')",
            name="ck_pending_approvals_status",
        ),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("mac", sa.String(128), nullable=True))
        batch.add_column(sa.Column("key_id", sa.String(64), nullable=True))
    with op.batch_alter_table("approvals") as batch:  # the suspension an answer was given on
        batch.add_column(sa.Column("pending_id", sa.Integer, nullable=True))
    with op.batch_alter_table("versions") as batch:  # the whole manifest's sha256 (trail_state)
        batch.add_column(sa.Column("manifest_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("manifest_sha256")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("pending_id")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("key_id")
        batch.drop_column("mac")
    op.drop_table("pending_approvals")
