"""stats_hourly, stats_latency(_app), stats_failures: hourly rollups of the attempts

Revision ID: 0019
Revises: 0020
Create Date: 2026-12-07 21:50:00

New tables only, filled by a background pass from the attempts table (the first pass starts at
the oldest attempt); nothing is rewritten (docs/decisions/0033-stats.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0020"
branch_labels = None
depends_on = None

_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _by_endpoint(name: str, *columns: sa.Column[object]) -> None:
    """A rollup keyed by application, hour, endpoint and ``columns[0]``, with an index for
    the endpoint's reports."""
    op.create_table(
        name,
        sa.Column("app_id", _ID, primary_key=True),
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("endpoint_id", _ID, primary_key=True),
        *columns,
        sqlite_with_rowid=False,
    )
    op.create_index(f"ix_{name}_endpoint", name, ["endpoint_id", "hour"])


def upgrade() -> None:
    _by_endpoint(
        "stats_hourly",
        sa.Column("event_type", _ID, primary_key=True),
        sa.Column("succeeded", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
    )
    _by_endpoint(
        "stats_latency",
        sa.Column("bucket", sa.SmallInteger(), primary_key=True),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "stats_latency_app",
        sa.Column("app_id", _ID, primary_key=True),
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("bucket", sa.SmallInteger(), primary_key=True),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    _by_endpoint(
        "stats_failures",
        sa.Column("reason", sa.Text(), primary_key=True),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "stats_rollup_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("rolled_until", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stats_rollup_state")
    op.drop_table("stats_latency_app")
    for name in ("stats_failures", "stats_latency", "stats_hourly"):
        op.drop_index(f"ix_{name}_endpoint", table_name=name)
        op.drop_table(name)
