"""Apply the Alembic migrations in ``migrations/`` whenever a ledger is opened.

Users never run a migration step: opening an old ledger with a newer herbx upgrades it,
and a ledger written by a newer herbx is refused rather than misread.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

import herbx.migrations
from herbx.errors import LedgerError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# The newest revision in migrations/ (a test keeps the two equal). A ledger already
# there is opened without importing Alembic, which costs every command 0.1 s.
HEAD = "0003"


@cache
def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(Path(herbx.migrations.__file__).parent)
    )
    return config


@cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """Return the schema revision this herbx writes, as Alembic finds it."""
    return _script().get_current_head()


def current_revision(conn: Connection) -> str | None:
    """Return the schema revision of the ledger behind ``conn``."""
    try:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        rows = []  # a new, empty database
    if conn.in_transaction():
        conn.rollback()
    return rows[0][0] if len(rows) == 1 else None


def upgrade(conn: Connection, name: str, *, fresh: bool = True) -> None:
    """Bring the ledger to the head revision; refuse one from a newer herbx.

    A new, empty SQLite ledger is created at the head revision directly: importing
    Alembic to replay every migration costs 0.1-0.4 s, which each first command on a
    new ledger (and every test) would pay. ``fresh=False`` replays the migrations.
    """
    current = current_revision(conn)
    if current == HEAD:
        return
    if fresh and current is None and _empty_sqlite(conn):
        _create_at_head(conn)
        return

    known = {script.revision for script in _script().walk_revisions()}
    if current is not None and current not in known:
        raise LedgerError(
            f"{name} was written by a newer herbx (schema {current}); "
            "upgrade herbx with `pip install -U herbx`"
        )

    from alembic import command

    config = _config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    if conn.in_transaction():
        conn.commit()


def _empty_sqlite(conn: Connection) -> bool:
    if conn.dialect.name != "sqlite":
        return False
    count = conn.execute(text("SELECT count(*) FROM sqlite_master")).scalar_one()
    if conn.in_transaction():
        conn.rollback()
    return count == 0


def _create_at_head(conn: Connection) -> None:
    """Create the schema the migrations build, with Alembic's version table."""
    from herbx import schema, sqlite

    with conn.begin():
        schema.metadata.create_all(conn)
        for ddl in sqlite.APPEND_ONLY_TRIGGERS_V1:
            conn.execute(text(ddl))
        # The table exactly as Alembic makes it, so that a later migration finds it.
        conn.execute(
            text(
                "CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, "
                "\n\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)"
            )
        )
        conn.execute(
            text("INSERT INTO alembic_version (version_num) VALUES (:head)"),
            {"head": HEAD},
        )
