"""Create the append-only events table and the ledger identity table.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from herbx import sqlite

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("specimen_id", sa.String(64)),
        sa.Column("key_fp", sa.String(64)),
        sa.Column("cost", sa.Float),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("run_id", "seq", name="uq_events_run_seq"),
    )
    op.create_index("ix_events_type", "events", ["type"])
    op.create_index("ix_events_ts", "events", ["ts"])
    op.create_index("ix_events_specimen", "events", ["specimen_id"])
    op.create_index("ix_events_key_fp", "events", ["key_fp"])

    op.create_table(
        "ledger_info",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )

    if op.get_bind().dialect.name == "sqlite":
        for ddl in sqlite.APPEND_ONLY_TRIGGERS_V1:
            op.execute(ddl)
