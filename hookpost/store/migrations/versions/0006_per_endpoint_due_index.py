"""ix_deliveries_endpoint_due replaces ix_deliveries_due: each endpoint's queue, in due order

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 16:00:00

A claim reads the head of each endpoint's queue instead of walking the global due index past
the backlog of endpoints it cannot take (docs/decisions/0023-per-endpoint-claims.md). The
global due index goes: no statement needs it any more, a planner could still pick it for an
endpoint's queue (and walk the backlog again), and every write of a delivery maintained it.
The upgrade builds the new index and drops the old one, which takes a write lock on
``deliveries`` for as long as the build (seconds per million queued rows).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_PARTIAL = {
    "postgresql_where": sa.text("due_at IS NOT NULL"),
    "sqlite_where": sa.text("due_at IS NOT NULL"),
}


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_endpoint_due", ["endpoint_id", "due_at"], unique=False, **_PARTIAL
        )
        batch_op.drop_index("ix_deliveries_due", **_PARTIAL)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_due", ["due_at", "endpoint_id"], unique=False, **_PARTIAL
        )
        batch_op.drop_index("ix_deliveries_endpoint_due", **_PARTIAL)
