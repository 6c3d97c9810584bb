"""endpoints.payload_filter: an endpoint's filter on message payloads (issue 19)

Revision ID: 0007
Revises: 0009
Create Date: 2026-12-07 16:00:00

JSON text (domain.filters), NULL for no filter. Adding a nullable column rewrites no table on
either backend.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("payload_filter", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch_op:
        batch_op.drop_column("payload_filter")
