"""Transfer gate: the exporters' running yearly counts, the facts per version, richer approvals.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "exporter_transfers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("exporter", sa.String(200), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("individuals", sa.Integer, nullable=False),
        sa.Column("sensitive", sa.Boolean, nullable=False),
        sa.Column("market", sa.String(2), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "exporter", "year", "version_id", name="uq_exporter_transfers_exporter_year"
        ),
    )
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("transfer_facts", _JSON, nullable=True))
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("basis", sa.String(100), nullable=True))
        batch.add_column(sa.Column("rule_id", sa.String(200), nullable=True))
        batch.add_column(
            sa.Column("carry_over", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("carried_over_from", _JSON, nullable=True))
        batch.add_column(sa.Column("identity_note", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        for column in ("identity_note", "carried_over_from", "carry_over", "rule_id", "basis"):
            batch.drop_column(column)
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("transfer_facts")
    op.drop_table("exporter_transfers")
