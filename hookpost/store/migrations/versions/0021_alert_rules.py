"""alert rules: rules, the evaluator's per-application cursor and lease, bucketed aggregates,
pushed-metric samples

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-07 22:00:00

New tables only (docs/decisions/0038-alert-rules.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0018"
branch_labels = None
depends_on = None

_ID = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _app_id() -> sa.Column[str]:
    return sa.Column(
        "app_id", _ID, sa.ForeignKey("applications.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", _ID, primary_key=True),
        _app_id(),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alert_rules_app", "alert_rules", ["app_id", "id"])
    op.create_table(
        "alert_cursors",
        sa.Column(
            "app_id",
            _ID,
            sa.ForeignKey("applications.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("cursor", _ID, nullable=False),
        sa.Column("next_run_at", sa.BigInteger(), nullable=False),
        sa.Column("lease", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_alert_cursors_next_run", "alert_cursors", ["next_run_at"])
    op.create_table(
        "alert_buckets",
        _app_id(),
        sa.Column("series", sa.Text(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("cells", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("app_id", "series", "start"),
    )
    op.create_table(
        "alert_samples",
        _app_id(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
    )
    op.create_index("ix_alert_samples", "alert_samples", ["app_id", "name", "at"])


def downgrade() -> None:
    op.drop_index("ix_alert_samples", table_name="alert_samples")
    op.drop_table("alert_samples")
    op.drop_table("alert_buckets")
    op.drop_index("ix_alert_cursors_next_run", table_name="alert_cursors")
    op.drop_table("alert_cursors")
    op.drop_index("ix_alert_rules_app", table_name="alert_rules")
    op.drop_table("alert_rules")
