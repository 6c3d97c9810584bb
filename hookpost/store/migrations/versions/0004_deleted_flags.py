"""applications.deleted and endpoints.deleted: deletions purge their rows in batches

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00

A deleted application or endpoint is flagged (and hidden) first, then its rows are deleted a
batch per transaction, so that a big one does not hold the write lock for its whole cascade.
Adding a column with a constant default rewrites no table on either backend.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = ("applications", "endpoints")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(
            table,
            sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        )
        op.create_index(
            f"ix_{table}_deleted",
            table,
            ["id"],
            unique=False,
            postgresql_where=sa.text("deleted"),
            sqlite_where=sa.text("deleted"),
        )


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(
            f"ix_{table}_deleted",
            table_name=table,
            postgresql_where=sa.text("deleted"),
            sqlite_where=sa.text("deleted"),
        )
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("deleted")
