"""Withdrawal reason and time; quality scores per version.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("withdrawn_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column(
                "quality_scores", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        for column in ("quality_scores", "withdrawn_at", "withdrawn_reason"):
            batch.drop_column(column)
