"""endpoints.last_success_at, last_failure_at, last_status_code; disabled_reason as a code

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:30:00

The three columns feed the API's endpoint ``health`` (domain.health); nullable, so adding them
rewrites no table. The reasons stored so far were sentences; they become the codes of
domain.health.DISABLED_REASONS (a few disabled rows at most).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_CODES = (
    ("endpoint answered HTTP 410 Gone", "gone_410"),
    ("failing for too long", "failing_too_long"),
    ("disabled by the API", "manual"),
)


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("last_success_at", sa.BigInteger(), nullable=True))
    op.add_column("endpoints", sa.Column("last_failure_at", sa.BigInteger(), nullable=True))
    op.add_column("endpoints", sa.Column("last_status_code", sa.Integer(), nullable=True))
    for sentence, code in _CODES:
        op.execute(
            sa.text(
                "UPDATE endpoints SET disabled_reason = :code WHERE disabled_reason = :s"
            ).bindparams(code=code, s=sentence)
        )


def downgrade() -> None:
    for sentence, code in _CODES:
        op.execute(
            sa.text(
                "UPDATE endpoints SET disabled_reason = :s WHERE disabled_reason = :code"
            ).bindparams(code=code, s=sentence)
        )
    with op.batch_alter_table("endpoints") as batch_op:
        batch_op.drop_column("last_status_code")
        batch_op.drop_column("last_failure_at")
        batch_op.drop_column("last_success_at")
