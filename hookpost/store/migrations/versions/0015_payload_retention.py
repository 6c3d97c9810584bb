"""messages.payload_expires_at: when each message's payload is erased (domain.retention)

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-07 19:00:00

Set at creation from the message's own period or the default; NULL once the payload is erased,
so the partial index holds only the payloads still to erase. Messages stored before get the
default period (90 days) from their creation: a one-time rewrite of the messages not yet
expunged, instead of keeping their payloads forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

_DEFAULT_MS = 90 * 24 * 3_600_000  # domain.retention.DEFAULT_PAYLOAD_RETENTION_DAYS


def upgrade() -> None:
    op.add_column("messages", sa.Column("payload_expires_at", sa.BigInteger(), nullable=True))
    op.execute(
        sa.text(
            "UPDATE messages SET payload_expires_at = created_at + :ms WHERE NOT expunged"
        ).bindparams(ms=_DEFAULT_MS)
    )
    op.create_index(
        "ix_messages_payload_expires_at",
        "messages",
        ["payload_expires_at"],
        postgresql_where=sa.text("payload_expires_at IS NOT NULL"),
        sqlite_where=sa.text("payload_expires_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_payload_expires_at", table_name="messages")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("payload_expires_at")
