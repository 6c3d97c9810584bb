"""background_tasks: durable tasks (recover, replays, usage stats) a worker runs once

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 18:40:00

A new table: nothing else is rewritten (docs/decisions/0034-background-tasks.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "background_tasks",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("data", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("lease", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_background_tasks_running",
        "background_tasks",
        ["id"],
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("ix_background_tasks_running", table_name="background_tasks")
    op.drop_table("background_tasks")
