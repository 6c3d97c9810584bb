"""stats_hourly, stats_latency, stats_failures: hourly rollups of the attempts

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 21:50:00

New tables only, filled by a background pass from the attempts table (the first pass starts at
the oldest attempt); nothing is rewritten (docs/decisions/0033-stats.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _keyed(name: str, last: tuple[str, sa.types.TypeEngine[object]], value: str) -> None:
    op.create_table(
        name,
        sa.Column("app_id", _ID, primary_key=True),
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("endpoint_id", _ID, primary_key=True),
        sa.Column(last[0], last[1], primary_key=True),
        *(
            [sa.Column("succeeded", sa.BigInteger(), nullable=False)]
            if value == "counts"
            else []
        ),
        sa.Column("failed" if value == "counts" else "attempts", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index(f"ix_{name}_endpoint", name, ["endpoint_id", "hour"])


def upgrade() -> None:
    _keyed("stats_hourly", ("event_type", _ID), "counts")
    _keyed("stats_latency", ("bucket", sa.SmallInteger()), "attempts")
    _keyed("stats_failures", ("reason", sa.Text()), "attempts")
    op.create_table(
        "stats_rollup_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("rolled_until", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stats_rollup_state")
    for name in ("stats_failures", "stats_latency", "stats_hourly"):
        op.drop_index(f"ix_{name}_endpoint", table_name=name)
        op.drop_table(name)
