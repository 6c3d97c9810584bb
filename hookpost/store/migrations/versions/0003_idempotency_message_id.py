"""idempotency_keys.message_id: a send's key names the message it created

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 13:00:00

A key whose send created a message holds that message's id, and a repeat is answered with the
message as it is now; its status and body are then NULL. Any other answer is still stored as
its status and body. Rows written before keep theirs, and are replayed as before until they
expire. SQLite rebuilds the table (it cannot drop NOT NULL in place): it holds a day of keys.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.add_column(sa.Column("message_id", _ID, nullable=True))


def downgrade() -> None:
    # A send's key has no stored answer to go back to: it is dropped (a repeat runs again).
    op.execute("DELETE FROM idempotency_keys WHERE message_id IS NOT NULL")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("message_id")
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column("status", existing_type=sa.Integer(), nullable=False)
