"""stats_cancellations, stats_canceled, stats_dirty: cancellations rolled up like attempts,
and late attempts rolled up again

Revision ID: 0022
Revises: 0019
Create Date: 2026-12-08 00:30:00

New tables. The deliveries already canceled are logged at their last update (the time of their
cancel), and those of hours already rolled up are rolled up here; nothing else is rewritten
(docs/decisions/0033-stats.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0023"
branch_labels = None
depends_on = None

_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_HOUR = 3_600_000


def upgrade() -> None:
    op.create_table(
        "stats_cancellations",
        sa.Column("canceled_at", sa.BigInteger(), nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("endpoint_id", _ID, nullable=False),
        sa.Column("event_type", _ID, nullable=False),
    )
    op.create_index("ix_stats_cancellations_time", "stats_cancellations", ["canceled_at"])
    op.create_table(
        "stats_canceled",
        sa.Column("app_id", _ID, primary_key=True),
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("endpoint_id", _ID, primary_key=True),
        sa.Column("event_type", _ID, primary_key=True),
        sa.Column("deliveries", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "stats_dirty",
        sa.Column("app_id", _ID, primary_key=True),
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("gen", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO stats_cancellations (canceled_at, app_id, endpoint_id, event_type)"
        " SELECT d.updated_at, d.app_id, d.endpoint_id, m.event_type"
        " FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.status = 4"
    )
    op.execute(
        "INSERT INTO stats_canceled (app_id, hour, endpoint_id, event_type, deliveries)"
        f" SELECT app_id, (canceled_at / {_HOUR}) * {_HOUR}, endpoint_id, event_type, count(*)"
        " FROM stats_cancellations WHERE canceled_at <"
        " (SELECT max(rolled_until) FROM stats_rollup_state) GROUP BY 1, 2, 3, 4"
    )


def downgrade() -> None:
    op.drop_table("stats_dirty")
    op.drop_table("stats_canceled")
    op.drop_index("ix_stats_cancellations_time", table_name="stats_cancellations")
    op.drop_table("stats_cancellations")
