"""message_traces: the W3C trace context of the request that created a message;
endpoints.send_traceparent

Revision ID: 0020
Revises: 0021
Create Date: 2026-12-07 22:00:00

A table of its own, written only while tracing is on, so that no statement of the create, the
claim or the finish reads or writes one more column (docs/decisions/0035-tracing.md). No
foreign key: the row is written just before its message (a worker may claim the message the
moment it commits), and deleted with it by retention and by the application's purge.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0021"
branch_labels = None
depends_on = None

Id = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "message_traces",
        sa.Column("id", Id, primary_key=True),
        sa.Column("app_id", Id, nullable=False),
        sa.Column("traceparent", sa.Text(), nullable=False),
        sa.Column("tracestate", sa.Text(), nullable=True),
    )
    op.create_index("ix_message_traces_app_id", "message_traces", ["app_id"])
    op.add_column("endpoints", sa.Column("send_traceparent", sa.Boolean(), nullable=True))
    where = sa.text("send_traceparent IS NOT NULL")
    op.create_index(
        "ix_endpoints_traceparent",
        "endpoints",
        ["id"],
        postgresql_where=where,
        sqlite_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_endpoints_traceparent", table_name="endpoints")
    with op.batch_alter_table("endpoints") as batch_op:
        batch_op.drop_column("send_traceparent")
    op.drop_index("ix_message_traces_app_id", table_name="message_traces")
    op.drop_table("message_traces")
