"""Everything in herbx that assumes SQLite lives in this module.

The rest of the code speaks SQLAlchemy Core and would run on PostgreSQL; a second
backend adds a sibling module and a branch in ``configure_engine`` and ``lock_log``.

Facts this relies on (measured, see docs/ledger.md):
- WAL with ``synchronous=FULL`` never lost an acknowledged commit across SIGKILL.
- Two writers need ``BEGIN IMMEDIATE``; a plain ``BEGIN`` that reads then writes fails
  with "database is locked" under contention whatever the busy timeout.
- Triggers block UPDATE and DELETE, but ``INSERT OR REPLACE`` deletes silently unless
  a BEFORE INSERT trigger refuses an insert that would collide.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_MS = 30_000
# Appends touch only the last pages of the log: a small page cache per connection
# keeps memory flat however large the ledger grows (the default is 2 MB each).
CACHE_KIB = 512

# The append-only guard, version 1. Applied by migration 0001; never edited in place.
APPEND_ONLY_TRIGGERS_V1 = (
    """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'herbx events are append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'herbx events are append-only: DELETE refused'); END
    """,
    """
    CREATE TRIGGER events_no_replace BEFORE INSERT ON events
    WHEN EXISTS (SELECT 1 FROM events WHERE position = NEW.position)
      OR EXISTS (SELECT 1 FROM events WHERE run_id = NEW.run_id AND seq = NEW.seq)
    BEGIN SELECT RAISE(ABORT, 'herbx events are append-only: REPLACE refused'); END
    """,
)

SQLITE_HEADER = b"SQLite format 3\x00"


def configure_engine(engine: Engine) -> None:
    """Give every connection durable pragmas and let writers begin IMMEDIATE.

    pysqlite's own transaction handling is switched off so that the BEGIN we emit is
    the one that runs; a connection whose execution options carry ``herbx_write``
    takes the write lock at BEGIN instead of at its first write.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        cursor.execute("PRAGMA recursive_triggers = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        if connection.get_execution_options().get("herbx_write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def use_wal(engine: Engine) -> None:
    """Switch the file to WAL, once it is known to be ours (the mode is persistent)."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA journal_mode = WAL")
    finally:
        raw.close()


def check_file(path: Path) -> str | None:
    """Return why ``path`` cannot be a SQLite ledger, or None if it may be one."""
    if path.is_dir():
        return "it is a directory"
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        return "it is not a SQLite database"
    return None


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is not a usable database."""
    return isinstance(exc, sqlite3.DatabaseError)


@contextmanager
def run_lock(ledger_path: Path, run_id: str) -> Iterator[bool]:
    """Hold an exclusive lock on one run of a ledger; yield False if another has it.

    One byte of a lock file beside the ledger per run, chosen by a hash of the run
    id: POSIX record locks vanish with the process that held them, so a run killed
    with SIGKILL never leaves a stale lock behind.
    """
    path = ledger_path.with_name(ledger_path.name + ".runs.lock")
    offset = int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.lockf(descriptor, fcntl.LOCK_UN, 1, offset)
    finally:
        os.close(descriptor)
