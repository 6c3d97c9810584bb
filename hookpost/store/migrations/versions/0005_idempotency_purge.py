"""idempotency_keys.app_id and the indexes that purge keys: expired ones, and an app's

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 14:00:00

Stored answers are deleted once expired (in the background) and when their application is
deleted, so each records the application its route resolved. Adding a nullable column
rewrites no table on either backend.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_APP_WHERE = "app_id IS NOT NULL"


def upgrade() -> None:
    op.add_column(
        "idempotency_keys",
        sa.Column("app_id", sa.Text().with_variant(sa.Text(collation="C"), "postgresql")),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_index(
        "ix_idempotency_keys_app_id",
        "idempotency_keys",
        ["app_id"],
        postgresql_where=sa.text(_APP_WHERE),
        sqlite_where=sa.text(_APP_WHERE),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_idempotency_keys_app_id",
        table_name="idempotency_keys",
        postgresql_where=sa.text(_APP_WHERE),
        sqlite_where=sa.text(_APP_WHERE),
    )
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    with op.batch_alter_table("idempotency_keys") as batch_op:
        batch_op.drop_column("app_id")
