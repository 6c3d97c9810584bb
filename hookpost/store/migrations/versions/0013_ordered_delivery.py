"""endpoints.ordered; the index of parked deliveries

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 19:00:00

An ordered endpoint keeps one live delivery (due or leased); the others of it wait *parked*:
status pending with no due time (docs/decisions/0031-ordered-delivery.md). The partial index
holds only parked rows, so finding the next one costs one probe and every other delivery write
is untouched. A column with a constant default rewrites no table on PostgreSQL 11+ or SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
# Chained after 0011 for now: the lead's 0012 (throttling) re-chains it on merge.
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "endpoints",
        sa.Column("ordered", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    parked = sa.text("status = 0 AND due_at IS NULL")
    op.create_index(
        "ix_deliveries_parked",
        "deliveries",
        ["endpoint_id", "id"],
        postgresql_where=parked,
        sqlite_where=parked,
    )


def downgrade() -> None:
    # Parked rows become due again: without the column, nothing would ever promote them.
    op.execute(
        sa.text("UPDATE deliveries SET due_at = updated_at WHERE status = 0 AND due_at IS NULL")
    )
    op.drop_index("ix_deliveries_parked", table_name="deliveries")
    with op.batch_alter_table("endpoints") as batch_op:
        batch_op.drop_column("ordered")
