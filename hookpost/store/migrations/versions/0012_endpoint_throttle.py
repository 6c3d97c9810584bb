"""endpoints.throttle_at: the next time a throttled endpoint may be sent to

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 18:40:00

The theoretical arrival time of domain.throttle (ms, fractional: a rate that does not divide a
second keeps its exact pace), on the clock of the deliveries' due times. NULL until a claim
first sends to a throttled endpoint; nullable, so adding it rewrites no table
(docs/decisions/0030-enforced-throttling.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("throttle_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch_op:
        batch_op.drop_column("throttle_at")
