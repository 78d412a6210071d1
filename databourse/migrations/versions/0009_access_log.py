"""The access log: buyers' reads through the exchange, chained and keyed, apart from the trail.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grant_id", sa.Integer, nullable=False),
        sa.Column("product", sa.String(200), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("market", sa.String(2), nullable=False),
        sa.Column("buyer", sa.String(200), nullable=False),
        sa.Column("what", sa.String(20), nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("query", sa.Integer, nullable=True),
        sa.Column("batch", sa.String(100), nullable=True),
        sa.Column("prev_mac", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_access_events_grant_id", "access_events", ["grant_id"])
    op.create_index("ix_access_events_batch", "access_events", ["batch"])


def downgrade() -> None:
    op.drop_index("ix_access_events_batch", table_name="access_events")
    op.drop_index("ix_access_events_grant_id", table_name="access_events")
    op.drop_table("access_events")
