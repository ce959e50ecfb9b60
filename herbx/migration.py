"""Apply the Alembic migrations in ``migrations/`` whenever a ledger is opened.

Users never run a migration step: opening an old ledger with a newer herbx upgrades it,
and a ledger written by a newer herbx is refused rather than misread.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

import herbx.migrations
from herbx.errors import LedgerError


@cache
def _config() -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(herbx.migrations.__file__).parent)
    )
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """Return the schema revision this herbx writes."""
    return _script().get_current_head()


def current_revision(conn: Connection) -> str | None:
    """Return the schema revision of the ledger behind ``conn``."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection, name: str) -> None:
    """Bring the ledger to the head revision; refuse one from a newer herbx."""
    current = current_revision(conn)
    if conn.in_transaction():
        conn.commit()
    head = head_revision()
    if current == head:
        return

    known = {script.revision for script in _script().walk_revisions()}
    if current is not None and current not in known:
        raise LedgerError(
            f"{name} was written by a newer herbx (schema {current}); "
            "upgrade herbx with `pip install -U herbx`"
        )

    config = _config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    if conn.in_transaction():
        conn.commit()
