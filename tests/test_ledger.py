"""The ledger on a real SQLite file: order, chaining, append-only, migrations."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine

from herbx import events as ev
from herbx import migration
from herbx.errors import LedgerError, NotALedger
from herbx.ledger import ConcurrentWriter, Ledger
from herbx.verify import verify


def aborted(n: int) -> ev.RunAborted:
    return ev.RunAborted(reason="test", message=f"event {n}")


@pytest.fixture
def ledger(tmp_path: Path):
    with Ledger.open(tmp_path / "ledger.db") as opened:
        yield opened


def sql(path: Path, statement: str, *params) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
        return rows


def test_positions_are_gap_free_and_sequences_count_per_run(ledger):
    ledger.append("a", [aborted(1), aborted(2)])
    ledger.append("b", [aborted(3)])
    ledger.append("a", [aborted(4)])

    stored = [(r.position, r.run_id, r.seq) for r in ledger.read()]

    assert stored == [(1, "a", 1), (2, "a", 2), (3, "b", 1), (4, "a", 3)]


def test_events_read_back_as_the_typed_structs_that_were_written(ledger):
    event = ev.ResponseReceived(
        specimen_id="s" * 64,
        attempt=2,
        request_id="r",
        status=200,
        latency_ms=12.5,
        body='{"ok": true}',
        cost=0.00123,
        key_fingerprint="sk-or-v1-...abcd#12345678",
    )
    ledger.append("run", [event])

    (record,) = ledger.read()

    assert record.event == event
    assert (record.specimen_id, record.key_fp, record.cost) == (
        "s" * 64,
        "sk-or-v1-...abcd#12345678",
        0.00123,
    )
    assert record.ts.endswith("Z") and record.type == "response_received"


def test_update_delete_and_insert_or_replace_on_events_fail(ledger):
    ledger.append("run", [aborted(1), aborted(2)])
    path = Path(ledger.name)

    for statement in (
        "UPDATE events SET run_id = 'other'",
        "DELETE FROM events WHERE position = 1",
        "INSERT OR REPLACE INTO events SELECT * FROM events WHERE position = 1",
        "REPLACE INTO events SELECT * FROM events WHERE position = 2",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            sql(path, statement)

    assert [r.event for r in ledger.read()] == [aborted(1), aborted(2)]


def test_each_row_hash_chains_to_the_previous_row(ledger):
    ledger.append("run", [aborted(n) for n in range(5)])

    assert verify(ledger).ok


@pytest.mark.parametrize(
    ("tamper", "position"),
    [
        (
            "UPDATE events SET payload = replace(payload, 'event 2', 'event 9') "
            "WHERE position = 3",
            3,
        ),
        ("DELETE FROM events WHERE position = 2", 2),
        (
            "UPDATE events SET position = position + 100 WHERE position IN (2, 3);"
            "UPDATE events SET position = 3 WHERE position = 102;"
            "UPDATE events SET position = 2 WHERE position = 103",
            2,
        ),
    ],
    ids=["edited payload", "deleted row", "swapped rows"],
)
def test_verify_names_the_first_tampered_position(ledger, tamper, position):
    ledger.append("run", [aborted(n) for n in range(5)])
    path = Path(ledger.name)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;" + tamper
        )

    verdict = verify(ledger)

    assert not verdict.ok
    assert verdict.position == position


def test_concurrent_appends_from_threads_stay_gap_free(ledger):
    def writer(run_id: str) -> None:
        for n in range(50):
            ledger.append(run_id, [aborted(n)])

    threads = [threading.Thread(target=writer, args=(f"run{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    positions = [r.position for r in ledger.read()]
    assert positions == list(range(1, 201))
    assert verify(ledger).ok


def test_two_processes_writing_one_ledger_keep_one_chain(tmp_path):
    path = tmp_path / "shared.db"
    first = Ledger.open(path)
    second = Ledger.open(path)
    try:
        for n in range(20):
            (first if n % 2 else second).append("run" + str(n % 3), [aborted(n)])
        assert verify(first).ok
        assert first.head() == 20
    finally:
        first.close()
        second.close()


def test_an_append_that_expects_another_sequence_is_refused(ledger):
    ledger.append("run", [aborted(1)])

    with pytest.raises(ConcurrentWriter, match="another herbx process"):
        ledger.append("run", [aborted(2)], expected_seq=0)


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("shopping list\n")

    with pytest.raises(NotALedger, match="not a herbx ledger"):
        Ledger.open(path)

    assert path.read_text() == "shopping list\n"


def test_another_applications_sqlite_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "other.db"
    sql(path, "CREATE TABLE customers (name TEXT)")

    with pytest.raises(NotALedger, match="not a herbx ledger"):
        Ledger.open(path)

    tables = sql(path, "SELECT name FROM sqlite_master WHERE type='table'")
    assert tables == [("customers",)]
    assert sql(path, "PRAGMA journal_mode") == [("delete",)]


def test_opening_a_missing_ledger_for_reading_does_not_create_it(tmp_path):
    path = tmp_path / "missing.db"

    with pytest.raises(LedgerError, match="no ledger at"):
        Ledger.open(path, create=False)

    assert not path.exists()


def test_a_ledger_at_an_old_schema_is_upgraded_when_opened(tmp_path):
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config = migration._config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    engine.dispose()
    sql(path, "INSERT INTO ledger_info VALUES ('application', 'herbx')")

    with Ledger.open(path) as ledger:
        ledger.append("run", [aborted(1)])
        assert [r.event for r in ledger.read()] == [aborted(1)]

    assert sql(path, "SELECT version_num FROM alembic_version") == [
        (migration.head_revision(),)
    ]
    indexes = sql(path, "SELECT name FROM sqlite_master WHERE type='index'")
    assert ("ix_events_run_type",) in indexes


def test_a_ledger_from_a_newer_herbx_is_refused(tmp_path):
    path = tmp_path / "future.db"
    Ledger.open(path).close()
    sql(path, "UPDATE alembic_version SET version_num = '9999'")

    with pytest.raises(LedgerError, match="newer herbx"):
        Ledger.open(path)


def test_the_ledger_is_durable_wal_with_full_sync(ledger):
    path = Path(ledger.name)
    assert sql(path, "PRAGMA journal_mode") == [("wal",)]
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_old_payload_versions_are_upgraded_on_read(monkeypatch):
    class Renamed(ev.Event, tag="test_renamed", kw_only=True):
        version = 2
        label: str

    monkeypatch.setitem(ev.BY_TAG, "test_renamed", Renamed)
    monkeypatch.setitem(
        ev.UPGRADES,
        ("test_renamed", 1),
        lambda data: {"type": data["type"], "label": data.pop("name")},
    )

    event = ev.decode("test_renamed", 1, b'{"type":"test_renamed","name":"x"}')

    assert event == Renamed(label="x")


def test_the_schema_head_herbx_checks_first_is_the_newest_migration():
    assert migration.head_revision() == migration.HEAD


def test_a_new_ledger_has_exactly_the_schema_the_migrations_build(tmp_path):
    def schema_of(path: Path, fresh: bool) -> list[tuple]:
        engine = create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            migration.upgrade(conn, str(path), fresh=fresh)
        with contextlib.closing(sqlite3.connect(path)) as db:
            rows = db.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
            ).fetchall()
            version = db.execute("SELECT version_num FROM alembic_version").fetchall()
        engine.dispose()
        return [*rows, *version]

    created = schema_of(tmp_path / "created.db", fresh=True)
    migrated = schema_of(tmp_path / "migrated.db", fresh=False)

    assert created == migrated
    assert ("0003",) in created
