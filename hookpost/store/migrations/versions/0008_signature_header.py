"""endpoints.signature_header, and the default signature scheme under its API name

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07 16:00:00

``signatureHeader`` renames the hex/stripe schemes' signature header (null: the scheme's
own). Stored scheme names become the API's (``standard-v1`` -> ``standard-webhooks``); the
column's server default keeps the old name, which the domain reads as the new one, because
changing a default rebuilds the table on SQLite. See docs/decisions/0025-signature-schemes.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("signature_header", sa.Text(), nullable=True))
    op.execute(
        "UPDATE endpoints SET signature_scheme = 'standard-webhooks'"
        " WHERE signature_scheme = 'standard-v1'"
    )


def downgrade() -> None:
    # Endpoints on the newer schemes keep their names: code before 0008 cannot sign for them.
    op.execute(
        "UPDATE endpoints SET signature_scheme = 'standard-v1'"
        " WHERE signature_scheme = 'standard-webhooks'"
    )
    with op.batch_alter_table("endpoints") as batch_op:
        batch_op.drop_column("signature_header")
