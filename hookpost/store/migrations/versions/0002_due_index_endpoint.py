"""ix_deliveries_due also holds endpoint_id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:00:00

A claim skips the due rows of endpoints at their in-flight limit (``endpoint_id NOT IN``). With the
endpoint in the index entry, SQLite tests it there instead of reading each skipped row from the
table (see docs/decisions/0013-due-index-holds-endpoint-id.md). PostgreSQL still tests it on the
table row (a plain index scan has no index filter); there the index is only larger. The upgrade
rebuilds the index, which takes a write lock on ``deliveries`` for as long as the build (seconds per
million queued rows).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PARTIAL = {
    "postgresql_where": sa.text("due_at IS NOT NULL"),
    "sqlite_where": sa.text("due_at IS NOT NULL"),
}


def _replace_due_index(columns: list[str]) -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_due", **_PARTIAL)
        batch_op.create_index("ix_deliveries_due", columns, unique=False, **_PARTIAL)


def upgrade() -> None:
    _replace_due_index(["due_at", "endpoint_id"])


def downgrade() -> None:
    _replace_due_index(["due_at"])
