"""The ledger: an append-only, hash-chained log of events shared by many runs.

Invariants:
- ``position`` is global, gap-free and in commit order; ``(run_id, seq)`` is unique
  and ``seq`` counts 1, 2, 3... within a run.
- Each row's ``hash`` is SHA-256 over the previous row's hash and the row itself, so a
  changed, removed or reordered row breaks the chain from that row on.
- ``append`` returns only after the transaction is durable; callers act on an event
  only after appending it.
- One writer connection per ``Ledger``, used under a lock, so the events of one
  process are ordered; other processes are kept apart by the database's write lock.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from sqlalchemy import (
    bindparam,
    create_engine,
    exists,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from herbx import events as ev
from herbx import sqlite
from herbx.errors import LedgerError, NotALedger, TamperedLedger, UsageError
from herbx.schema import events as events_table
from herbx.schema import ledger_info

DEFAULT_LEDGER = "herbx.db"
GENESIS_HASH = "0" * 64
APPLICATION = "herbx"

_head_encoder = msgspec.json.Encoder()


class Record(msgspec.Struct, frozen=True):
    """One stored event with its place in the ledger."""

    position: int
    run_id: str
    seq: int
    type: str
    version: int
    ts: str
    specimen_id: str | None
    key_fp: str | None
    cost: float | None
    payload: bytes
    hash: str
    event: ev.Event


class ConcurrentWriter(LedgerError):
    """Another process appended to the same run; this one must stop."""


def utc_now() -> str:
    """Return the current UTC time in the ledger's fixed-width timestamp form."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(prev_hash: str, row: dict) -> str:
    """Hash a row together with the hash of the row before it."""
    head = _head_encoder.encode(
        [
            row["position"],
            row["run_id"],
            row["seq"],
            row["type"],
            row["version"],
            row["ts"],
            row["specimen_id"],
            row["key_fp"],
            row["cost"],
        ]
    )
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(head)
    digest.update(b"\n")
    digest.update(row["payload"])
    return digest.hexdigest()


def resolve_url(target: str | Path | None, env: dict[str, str] | None = None) -> URL:
    """Turn ``--ledger``, ``HERBX_LEDGER`` or the default into a SQLAlchemy URL."""
    import os

    env = os.environ if env is None else env
    value = str(target) if target else env.get("HERBX_LEDGER") or DEFAULT_LEDGER
    if "://" in value:
        try:
            return make_url(value)
        except Exception as exc:
            raise UsageError(
                f"--ledger {value!r} is not a database URL: {exc}"
            ) from exc
    path = Path(value).expanduser().resolve()
    return URL.create("sqlite", database=str(path))


def describe(url: URL) -> str:
    """Name a ledger for messages: its path, or its URL with any password hidden."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


class Ledger:
    """An open ledger. Use ``Ledger.open``; close it, or use it as a context manager."""

    def __init__(self, engine: Engine, url: URL, clock: Callable[[], str] = utc_now):
        self.engine = engine
        self.url = url
        self.name = describe(url)
        self._clock = clock
        self._lock = threading.Lock()
        self._writer: Connection | None = None
        self._compiled: _Statements | None = None

    @classmethod
    def open(
        cls,
        target: str | Path | None = None,
        *,
        create: bool = True,
        clock: Callable[[], str] = utc_now,
    ) -> Ledger:
        """Open (and if allowed create) a ledger, upgrading its schema to this herbx."""
        url = resolve_url(target)
        name = describe(url)
        is_sqlite = url.get_backend_name() == "sqlite"
        if is_sqlite and url.database in (None, "", ":memory:"):
            raise UsageError(
                "an in-memory ledger would be lost when herbx exits; give --ledger "
                "a file path"
            )

        if is_sqlite:
            path = Path(url.database or "")
            reason = sqlite.check_file(path)
            if reason:
                raise NotALedger(
                    f"{name} is not a herbx ledger ({reason}); "
                    "pass --ledger with another path"
                )
            if not path.exists() and not create:
                raise LedgerError(
                    f"no ledger at {name}; run `herbx run` first or pass --ledger PATH"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"cannot create {path.parent}: {exc.strerror}"
                ) from exc

        try:
            # Two pooled readers, more opened and closed again only when needed:
            # each open connection keeps its own page cache, and with sixteen
            # workers a pool of fifteen would grow memory with the ledger.
            engine = create_engine(url, pool_size=2, max_overflow=-1)
        except (ImportError, ArgumentError, NoSuchModuleError) as exc:
            raise UsageError(
                f"cannot use the ledger URL {name}: {exc}; install its database "
                "driver or give a file path"
            ) from None
        if is_sqlite:
            sqlite.configure_engine(engine)
        ledger = cls(engine, url, clock)
        try:
            ledger._prepare()
        except BaseException:
            engine.dispose()
            raise
        return ledger

    def _prepare(self) -> None:
        try:
            tables = set(inspect(self.engine).get_table_names())
        except DBAPIError as exc:
            if "not a database" in str(exc.orig):
                raise NotALedger(
                    f"{self.name} is not a herbx ledger ({exc.orig}); "
                    "pass --ledger with another path"
                ) from exc
            raise LedgerError(f"cannot open ledger {self.name}: {exc.orig}") from exc

        if tables and not {"events", "ledger_info", "alembic_version"} <= tables:
            raise NotALedger(
                f"{self.name} is a database but not a herbx ledger; "
                "pass --ledger with another path"
            )
        from herbx import migration

        try:
            if self.url.get_backend_name() == "sqlite":
                sqlite.use_wal(self.engine)
            with self.engine.connect().execution_options(herbx_write=True) as conn:
                migration.upgrade(conn, self.name)
                with conn.begin():
                    self._claim(conn)
        except OperationalError as exc:
            raise LedgerError(f"cannot open ledger {self.name}: {exc.orig}") from exc

    def _claim(self, conn: Connection) -> None:
        rows = dict(conn.execute(select(ledger_info.c.name, ledger_info.c.value)).all())
        if not rows:
            conn.execute(
                insert(ledger_info),
                [
                    {"name": "application", "value": APPLICATION},
                    {"name": "ledger_id", "value": uuid.uuid4().hex},
                    {"name": "created_at", "value": self._clock()},
                ],
            )
        elif rows.get("application") != APPLICATION:
            raise NotALedger(
                f"{self.name} is a database but not a herbx ledger; "
                "pass --ledger with another path"
            )

    def close(self) -> None:
        """Release the writer connection and the engine."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextmanager
    def run_lock(self, run_id: str) -> Iterator[None]:
        """Hold the right to write ``run_id`` for the duration of the block."""
        if self.url.get_backend_name() != "sqlite":
            yield  # other backends: the expected-seq check is the only guard
            return
        with sqlite.run_lock(Path(self.url.database or ""), run_id) as acquired:
            if not acquired:
                raise ConcurrentWriter(
                    f"run {run_id} is being written by another herbx process; wait "
                    "for it to finish or stop it, then run the command again"
                )
            yield

    def info(self) -> dict[str, str]:
        """Return the ledger's identity rows (application, ledger_id, created_at)."""
        with self.engine.connect() as conn:
            return dict(
                conn.execute(select(ledger_info.c.name, ledger_info.c.value)).all()
            )

    def append(
        self,
        run_id: str,
        new_events: Sequence[ev.Event],
        *,
        expected_seq: int | None = None,
    ) -> list[Record]:
        """Append events to a run in one durable transaction and return them stored.

        With ``expected_seq``, refuse if the run's last sequence number is not that
        value: another process is writing the same run.
        """
        if not new_events:
            return []
        with self._lock:
            try:
                return self._append_locked(run_id, new_events, expected_seq)
            except SQLAlchemyError as exc:
                self._drop_writer()
                detail = getattr(exc, "orig", None) or exc
                raise LedgerError(
                    f"cannot write to ledger {self.name}: {detail}"
                ) from exc

    def _append_locked(
        self, run_id: str, new_events: Sequence[ev.Event], expected_seq: int | None
    ) -> list[Record]:
        conn = self._writer_connection()
        statements = self._statements()
        with conn.begin():
            last = statements.run(conn, "last").first()
            position, prev_hash = last if last else (0, GENESIS_HASH)
            seq = statements.run(conn, "last_seq", run_id=run_id).scalar() or 0
            if expected_seq is not None and seq != expected_seq:
                raise ConcurrentWriter(
                    f"another herbx process is writing run {run_id}; "
                    "stop it before resuming this run"
                )

            ts = self._clock()
            rows = []
            for event in new_events:
                position += 1
                seq += 1
                row = {
                    "position": position,
                    "run_id": run_id,
                    "seq": seq,
                    "type": ev.type_of(event),
                    "version": event.version,
                    "ts": ts,
                    "specimen_id": getattr(event, "specimen_id", None),
                    "key_fp": getattr(event, "key_fingerprint", None),
                    "cost": getattr(event, "cost", None),
                    "payload": ev.encode(event),
                }
                row["hash"] = prev_hash = chain_hash(prev_hash, row)
                rows.append(row)
            statements.insert(conn, rows)

        return [
            Record(**row, event=event)
            for row, event in zip(rows, new_events, strict=True)
        ]

    def _statements(self) -> _Statements:
        if self._compiled is None:
            self._compiled = _Statements(self.engine)
        return self._compiled

    def _writer_connection(self) -> Connection:
        if self._writer is None:
            self._writer = self.engine.connect().execution_options(herbx_write=True)
        return self._writer

    def _drop_writer(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None

    def last_seq(self, run_id: str) -> int:
        """Return the run's last sequence number, 0 for a run with no events."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(events_table.c.seq)).where(
                    events_table.c.run_id == run_id
                )
            ).scalar_one_or_none()
        return value or 0

    def read(
        self,
        *,
        run_id: str | None = None,
        after: int = 0,
        upto: int | None = None,
        types: Iterable[str] | None = None,
        specimens: Iterable[str] | None = None,
        unless_followed_by: Iterable[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        batch: int = 2000,
    ) -> Iterator[Record]:
        """Yield stored events in position order, optionally for one run or type.

        ``specimens`` narrows to the events of those specimen ids (give a run too:
        the index that serves it starts with the run). ``unless_followed_by`` leaves
        out an event when a later event of the same run and specimen has one of
        those types: a specimen's standing outcome, found by the index, not by
        holding every specimen in memory.

        Rows are fetched in batches of short transactions so that a long fold never
        holds a read snapshot open while a run is writing.
        """
        type_list = list(types) if types is not None else None
        specimen_list = list(specimens) if specimens is not None else None
        later_types = list(unless_followed_by) if unless_followed_by else None
        position = after
        while True:
            query = (
                select(events_table)
                .where(events_table.c.position > position)
                .order_by(events_table.c.position)
                .limit(batch)
            )
            if run_id is not None:
                query = query.where(events_table.c.run_id == run_id)
            if upto is not None:
                query = query.where(events_table.c.position <= upto)
            if type_list is not None:
                query = query.where(events_table.c.type.in_(type_list))
            if specimen_list is not None:
                query = query.where(events_table.c.specimen_id.in_(specimen_list))
            if later_types is not None:
                later = events_table.alias("later")
                query = query.where(
                    ~exists().where(
                        later.c.run_id == events_table.c.run_id,
                        later.c.specimen_id == events_table.c.specimen_id,
                        later.c.type.in_(later_types),
                        later.c.position > events_table.c.position,
                    )
                )
            if since is not None:
                query = query.where(events_table.c.ts >= since)
            if until is not None:
                query = query.where(events_table.c.ts <= until)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield _record(row)
            if len(rows) < batch:
                return
            position = rows[-1].position

    def index(
        self, *, run_id: str, types: Iterable[str], batch: int = 20_000
    ) -> Iterator[tuple[int, str, str | None]]:
        """Yield (position, type, specimen_id) from the real columns, no payloads."""
        type_list = list(types)
        position = 0
        while True:
            query = (
                select(
                    events_table.c.position,
                    events_table.c.type,
                    events_table.c.specimen_id,
                )
                .where(events_table.c.run_id == run_id)
                .where(events_table.c.type.in_(type_list))
                .where(events_table.c.position > position)
                .order_by(events_table.c.position)
                .limit(batch)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            yield from (tuple(row) for row in rows)
            if len(rows) < batch:
                return
            position = rows[-1][0]

    def position_at(self, ts: str) -> int:
        """Return the last position written at or before UTC time ``ts`` (0: none)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(events_table.c.position)).where(events_table.c.ts <= ts)
            ).scalar()
        return value or 0

    def hash_at(self, position: int) -> str | None:
        """Return the chain hash of the event at ``position`` (None when absent)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(events_table.c.hash).where(events_table.c.position == position)
            ).scalar()

    def beside(self, suffix: str) -> Path:
        """A path for files derived from this ledger: next to a SQLite file, else
        under ~/.cache/herbx, named after the database URL."""
        if self.url.get_backend_name() == "sqlite" and self.url.database:
            path = Path(self.url.database)
            return path.with_name(path.name + suffix)
        digest = hashlib.sha256(str(self.url).encode()).hexdigest()[:16]
        return Path("~/.cache/herbx").expanduser() / (digest + suffix)

    def head(self) -> int:
        """Return the last position in the ledger (0 when empty)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(events_table.c.position))).scalar()
        return value or 0

    def latest_run(self) -> str | None:
        """Return the run with the most recent event."""
        started = set(self.run_ids())
        query = (
            select(events_table.c.run_id)
            .order_by(events_table.c.position.desc())
            .limit(500)
        )
        with self.engine.connect() as conn:
            for (run_id,) in conn.execute(query):
                if run_id in started:
                    return run_id
        return None

    def run_ids(self) -> list[str]:
        """Return the ids of all runs, oldest first (not streams such as key events)."""
        query = (
            select(events_table.c.run_id, func.min(events_table.c.position))
            .where(events_table.c.type == "run_started")
            .group_by(events_table.c.run_id)
            .order_by(func.min(events_table.c.position))
        )
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]


class _Statements:
    """The append path's statements, compiled once for the engine's dialect.

    An append runs three statements per transaction; building and compiling them
    each time cost about a millisecond, three times the commit itself. Compiled
    here by SQLAlchemy, they stay dialect-neutral.
    """

    def __init__(self, engine: Engine):
        dialect = engine.dialect
        self._sql = {
            "last": select(events_table.c.position, events_table.c.hash)
            .order_by(events_table.c.position.desc())
            .limit(1)
            .compile(dialect=dialect),
            "last_seq": select(func.max(events_table.c.seq))
            .where(events_table.c.run_id == bindparam("run_id"))
            .compile(dialect=dialect),
            "insert": insert(events_table).compile(
                dialect=dialect, column_keys=[c.name for c in events_table.columns]
            ),
        }

    def _params(self, name: str, values: dict):
        compiled = self._sql[name]
        if compiled.positional:
            return tuple(values[key] for key in compiled.positiontup)
        return values

    def run(self, conn: Connection, name: str, **values):
        compiled = self._sql[name]
        params = self._params(name, {**compiled.params, **values})
        return conn.exec_driver_sql(str(compiled), params)

    def insert(self, conn: Connection, rows: list[dict]) -> None:
        conn.exec_driver_sql(
            str(self._sql["insert"]), [self._params("insert", row) for row in rows]
        )


def stored_row(row) -> dict:
    """A fetched events row as the dict that ``chain_hash`` hashes."""
    return {
        "position": row.position,
        "run_id": row.run_id,
        "seq": row.seq,
        "type": row.type,
        "version": row.version,
        "ts": row.ts,
        "specimen_id": row.specimen_id,
        "key_fp": row.key_fp,
        "cost": row.cost,
        "payload": as_bytes(row.payload),
    }


def as_bytes(value: bytes | str) -> bytes:
    """Return a payload as bytes; an edit made with SQL can leave text behind."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _record(row) -> Record:
    payload = as_bytes(row.payload)
    try:
        event = ev.decode(row.type, row.version, payload)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError) as exc:
        raise TamperedLedger(
            f"the event at position {row.position} cannot be read ({exc}); "
            "run `herbx verify` to see whether the ledger was altered"
        ) from None
    return Record(
        position=row.position,
        run_id=row.run_id,
        seq=row.seq,
        type=row.type,
        version=row.version,
        ts=row.ts,
        specimen_id=row.specimen_id,
        key_fp=row.key_fp,
        cost=row.cost,
        payload=payload,
        hash=row.hash,
        event=event,
    )
