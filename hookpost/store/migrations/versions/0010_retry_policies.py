"""endpoints.retry_policy and timeout_s, event_types.retry_schedule

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-07 16:40:00

An endpoint's ``retryPolicy`` is kept as given (``retry_policy``) and as the schedule it
expands to in ``retry_schedule``, the column the claim already reads: a row with a schedule
alone (stored before) reads as a schedule policy (docs/decisions/0027). Nullable columns: no
table is rewritten on either backend.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("retry_policy", sa.Text(), nullable=True))
    op.add_column("endpoints", sa.Column("timeout_s", sa.Integer(), nullable=True))
    op.add_column("event_types", sa.Column("retry_schedule", sa.Text(), nullable=True))
    where = sa.text("timeout_s IS NOT NULL")
    op.create_index(
        "ix_endpoints_timeout", "endpoints", ["id"], postgresql_where=where, sqlite_where=where
    )


def downgrade() -> None:
    with op.batch_alter_table("event_types") as batch_op:
        batch_op.drop_column("retry_schedule")
    op.drop_index("ix_endpoints_timeout", table_name="endpoints")
    with op.batch_alter_table("endpoints") as batch_op:
        batch_op.drop_column("timeout_s")
        batch_op.drop_column("retry_policy")
