"""messages.payload_sha256: the hex SHA-256 of each message's payload, kept after expunge

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:00:00

Recorded at creation from the exact stored bytes (domain.provenance). Messages stored before
keep NULL: computing it here would rewrite the whole messages table (and an expunged payload
can no longer be hashed). Adding a nullable column rewrites no table on either backend.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("payload_sha256", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("payload_sha256")
