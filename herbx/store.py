"""The projection store: folds over the ledger, kept current in a file beside it.

A fold's state lives in tables of this SQLite file, next to the ledger position it has
read up to, the hash of the event at that position and the version of the code that
wrote it. Catching up reads only the events after that position, and each batch of
state changes is committed together with its new position, so a crash leaves the state
exactly as of some position and the next catch-up goes on from there. Two processes
catching up at once cannot apply an event twice: the position is read again inside
the write transaction.

A fold is rebuilt from position 0 when its version differs from the stored one (its
code changed) or when the ledger no longer holds the stored event at the stored
position (the ledger was replaced). The store is a cache of what the events already
say: deleting the file costs one rebuild and loses nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from herbx.errors import UsageError
from herbx.ledger import Ledger, Record

FORMAT = 1  # of the bookkeeping table below; a change rebuilds every fold
CHUNK = 20_000  # events applied per committed transaction


class Fold(Protocol):
    """A projection's state: tables, the events it reads and how each changes it."""

    name: str
    version: int  # bump whenever the rows it stores or renders would change
    types: tuple[str, ...] | None  # None: every event
    tables: tuple[str, ...]  # the tables it owns, dropped on a rebuild
    schema: tuple[str, ...]  # statements that create them

    def apply(self, db: sqlite3.Connection, record: Record) -> None:
        """Change the state for one event; events come in position order."""
        ...


class Store:
    """One ledger's projection store."""

    def __init__(self, ledger: Ledger, path: Path | None = None):
        self.ledger = ledger
        self.path = path or ledger.beside(".projections")
        self._db: sqlite3.Connection | None = None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def catch_up(self, fold: Fold, upto: int | None = None) -> int:
        """Apply the events after the fold's position, up to ``upto`` or the head.

        Returns the number of events applied. A store already past ``upto`` is left
        as it is; to see an earlier moment, catch a fresh store up to it.
        """
        db = self._connect()
        target = self.ledger.head() if upto is None else upto
        applied = 0
        while True:
            db.execute("BEGIN IMMEDIATE")
            try:
                position = self._prepare(db, fold)
                if position >= target:
                    db.commit()
                    return applied
                count, last = 0, None
                records = self.ledger.read(
                    after=position, upto=target, types=fold.types
                )
                for record in records:
                    fold.apply(db, record)
                    count += 1
                    last = record
                    if count == CHUNK:
                        break
                records.close()
                if count < CHUNK or last is None:
                    position, digest = target, self._hash_at(target)
                else:
                    position, digest = last.position, last.hash
                db.execute(
                    "UPDATE folds SET position = ?, hash = ? WHERE name = ?",
                    (position, digest, fold.name),
                )
                db.commit()
            except BaseException:
                db.rollback()
                raise
            applied += count
            if position >= target:
                return applied

    def rebuild(self, fold: Fold) -> int:
        """Drop the fold's state and fold every event again."""
        db = self._connect()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM folds WHERE name = ?", (fold.name,))
        return self.catch_up(fold)

    def load(self, fold: Fold, records: Iterable[Record]) -> None:
        """Fold events that are not the ledger's own (a replay's), from nothing.

        The fold is left at position 0, so a later catch-up starts it again from
        the ledger.
        """
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM folds WHERE name = ?", (fold.name,))
            self._prepare(db, fold)
            for record in records:
                fold.apply(db, record)
            db.commit()
        except BaseException:
            db.rollback()
            raise

    @contextlib.contextmanager
    def reading(
        self, attach: dict[str, Path] | None = None
    ) -> Iterator[sqlite3.Connection]:
        """A connection inside one read transaction: every query sees one moment.

        ``attach`` names other store files to read alongside, as ``alias.table``.
        """
        db = self._connect()
        for alias, path in (attach or {}).items():
            db.execute("ATTACH DATABASE ? AS " + alias, (str(path),))
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.rollback()
            for alias in attach or {}:
                db.execute("DETACH DATABASE " + alias)

    def position(self, fold: Fold) -> int:
        """The ledger position the fold's state stands at (0 when never built)."""
        row = (
            self._connect()
            .execute(
                "SELECT position FROM folds WHERE name = ? AND version = ?",
                (fold.name, fold.version),
            )
            .fetchone()
        )
        return row[0] if row else 0

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Transactions are opened explicitly: BEGIN IMMEDIATE for writers.
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # A lost commit on power loss costs a catch-up from the ledger, no data.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS folds (name TEXT PRIMARY KEY, "
                "version INTEGER NOT NULL, format INTEGER NOT NULL, "
                "position INTEGER NOT NULL, hash TEXT)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(
                f"cannot open the projection store {self.path}: {exc}; "
                "it is a cache beside the ledger, so it can be deleted"
            ) from None
        self._db = db
        return db

    def _prepare(self, db: sqlite3.Connection, fold: Fold) -> int:
        """Return the fold's position, (re)creating its tables when they are stale."""
        row = db.execute(
            "SELECT version, format, position, hash FROM folds WHERE name = ?",
            (fold.name,),
        ).fetchone()
        if row is not None:
            version, fmt, position, digest = row
            fresh = version == fold.version and fmt == FORMAT
            if fresh and (position == 0 or self._hash_at(position) == digest):
                return position
        for table in fold.tables:
            db.execute(f'DROP TABLE IF EXISTS "{table}"')
        for statement in fold.schema:
            db.execute(statement)
        db.execute(
            "INSERT OR REPLACE INTO folds (name, version, format, position, hash) "
            "VALUES (?, ?, ?, 0, NULL)",
            (fold.name, fold.version, FORMAT),
        )
        return 0

    def _hash_at(self, position: int) -> str | None:
        return self.ledger.hash_at(position) if position else None
