"""The ledger's tables as SQLAlchemy Core objects (the current schema).

Migrations in ``migrations/`` upgrade older ledgers to this shape; a new SQLite
ledger is created in it directly (``herbx.migration``), and a test keeps the two
identical.
"""

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# position is gap-free and in commit order: it is assigned as the last position + 1
# inside the write transaction, never by an autoincrement that can skip.
events = Table(
    "events",
    metadata,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("run_id", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("ts", String(32), nullable=False),
    Column("specimen_id", String(64)),
    Column("key_fp", String(64)),
    Column("cost", Float),
    Column("payload", LargeBinary, nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("run_id", "seq", name="uq_events_run_seq"),
)
# The indexes the migrations made, in their order (0001, 0002, 0003).
Index("ix_events_type", events.c.type)
Index("ix_events_ts", events.c.ts)
Index("ix_events_specimen", events.c.specimen_id)
Index("ix_events_key_fp", events.c.key_fp)
Index("ix_events_run_type", events.c.run_id, events.c.type)
Index("ix_events_run_specimen", events.c.run_id, events.c.specimen_id, events.c.type)

ledger_info = Table(
    "ledger_info",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
