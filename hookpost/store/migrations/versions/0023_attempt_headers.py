"""attempts.headers: the request's headers as sent with each attempt (issue 23)

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-08 00:40:00

Nullable, no default: adding the column rewrites no row on either backend. The attempts
recorded before keep NULL, and the headers route answers them with what every hookpost
version sent (docs/decisions/0046-attempt-headers.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("attempts", sa.Column("headers", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch_op:
        batch_op.drop_column("headers")
