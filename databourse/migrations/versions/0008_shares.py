"""Delta Sharing recipients: a grant's bearer token (as its sha256) and its revocation.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "share_recipients",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "grant_id",
            sa.Integer,
            sa.ForeignKey("grants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.Text, nullable=True),
        sa.UniqueConstraint("grant_id", name="uq_share_recipients_grant_id"),
        sa.UniqueConstraint("token_sha256", name="uq_share_recipients_token_sha256"),
    )


def downgrade() -> None:
    op.drop_table("share_recipients")
