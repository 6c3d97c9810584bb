"""api_tokens.hint: a token's last characters, so that listings tell tokens apart

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-07 18:50:00

Nullable: the tokens made before are listed without one (their plaintext was never stored).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("hint", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("hint")
