"""DuckDB over the ledger, offline: Parquet parts exported incrementally.

DuckDB's sqlite extension is downloaded at run time, which these machines cannot do,
so the ledger is exported instead: each new range of events becomes one Parquet part
(written by DuckDB itself from newline-delimited JSON), and the views below read all
parts. Keeping current costs time in proportion to the new events only; a part is
written under a temporary name and renamed, and the exported position is saved only
after that, so a crash at any point leaves a consistent warehouse. Rows are read from
the ledger in short transactions, so a run can write while a report runs.

Views (all times UTC):
- ``events``: every event, with its real columns and the payload as JSON text
  (response bodies left out: reports never need them, and they are most of the size).
- ``runs``: one row per run: model, endpoint, started time, specimen count.
- ``requests``: one row per attempt: when, which key, the status, latency, reported
  cost (NULL when unknown), and the failure reason if it failed. A local engine's
  OCR read is an answered attempt with no key or status and a cost of 0.
- ``results``: one row per specimen outcome: saved or failed, reason, fields (JSON).
- ``keys``: key events: loaded, rejected, rotated, provisioned, retired.
- ``costs``: one row per priced response: run, model, key, day, cost (local OCR
  reads are priced at 0).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import select

from herbx.errors import UsageError
from herbx.ledger import Ledger, stored_row
from herbx.locks import exclusive
from herbx.schema import events as events_table

if TYPE_CHECKING:
    import duckdb

FORMAT = 1  # bump when the exported columns change: the warehouse is rebuilt
BATCH = 50_000
COLUMNS = {
    "position": "BIGINT",
    "run_id": "VARCHAR",
    "seq": "BIGINT",
    "type": "VARCHAR",
    "version": "INTEGER",
    "ts": "VARCHAR",
    "specimen_id": "VARCHAR",
    "key_fp": "VARCHAR",
    "cost": "DOUBLE",
    "payload": "VARCHAR",
}

VIEWS = """
CREATE OR REPLACE VIEW events AS
SELECT position, run_id, seq, type, version,
       strptime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS ts,
       specimen_id, key_fp, cost, payload
FROM read_parquet({parts});

CREATE OR REPLACE VIEW runs AS
SELECT started.run_id,
       payload->>'model' AS model,
       payload->>'endpoint' AS endpoint,
       ts AS started_at,
       coalesce(found.specimens, 0) AS specimens
FROM events AS started
LEFT JOIN (
    SELECT run_id, count(*) AS specimens FROM events
    WHERE type = 'specimen_discovered' GROUP BY run_id
) AS found USING (run_id)
WHERE type = 'run_started';

CREATE OR REPLACE VIEW requests AS
WITH sent AS (
    SELECT run_id, specimen_id, ts AS sent_at, key_fp,
           payload->>'request_id' AS request_id,
           CAST(payload->>'attempt' AS INTEGER) AS attempt,
           payload->>'model' AS model
    FROM events WHERE type = 'request_sent'
), answered AS (
    SELECT payload->>'request_id' AS request_id,
           CAST(payload->>'status' AS INTEGER) AS status,
           CAST(payload->>'latency_ms' AS DOUBLE) AS latency_ms,
           cost
    FROM events WHERE type = 'response_received'
), failed AS (
    SELECT payload->>'request_id' AS request_id,
           payload->>'reason' AS failure,
           CAST(payload->>'retryable' AS BOOLEAN) AS retryable
    FROM events WHERE type = 'request_failed'
)
SELECT sent.*, answered.status, answered.latency_ms, answered.cost,
       failed.failure, failed.retryable,
       answered.request_id IS NOT NULL AS answered,
       failed.request_id IS NULL AND answered.request_id IS NOT NULL AS succeeded
FROM sent
LEFT JOIN answered USING (request_id)
LEFT JOIN failed USING (request_id)
UNION ALL BY NAME
-- A local OCR read is an attempt too: answered here, free, its latency the read's.
-- Its outcome is the run's next event; a draft the rules could not make fails it,
-- as an answer that cannot be parsed fails a request.
SELECT e.run_id, e.specimen_id,
       e.ts - to_milliseconds(CAST(e.payload->>'duration_ms' AS BIGINT)) AS sent_at,
       NULL AS key_fp,
       e.payload->>'request_id' AS request_id,
       CAST(e.payload->>'attempt' AS INTEGER) AS attempt,
       r.model, NULL AS status,
       CAST(e.payload->>'duration_ms' AS DOUBLE) AS latency_ms,
       0.0 AS cost,
       outcome.payload->>'reason' AS failure,
       CASE WHEN outcome.seq IS NULL THEN NULL ELSE false END AS retryable,
       true AS answered, outcome.seq IS NULL AS succeeded
FROM events e
LEFT JOIN runs r USING (run_id)
LEFT JOIN events outcome
       ON outcome.run_id = e.run_id AND outcome.seq = e.seq + 1
      AND outcome.type = 'specimen_failed'
WHERE e.type = 'ocr_read';

CREATE OR REPLACE VIEW results AS
SELECT run_id, specimen_id, ts AS finished_at,
       payload->>'path' AS path,
       CASE type WHEN 'result_saved' THEN 'saved' ELSE 'failed' END AS outcome,
       payload->>'reason' AS reason,
       payload->>'model' AS model,
       payload->'fields' AS fields
FROM events WHERE type IN ('result_saved', 'specimen_failed');

CREATE OR REPLACE VIEW keys AS
SELECT run_id, ts, type AS kind, key_fp,
       payload->>'reason' AS reason,
       payload->>'source' AS source,
       payload->>'name' AS name,
       CAST(payload->>'limit' AS DOUBLE) AS "limit"
FROM events
WHERE type IN ('key_loaded', 'auth_rejected', 'rotation_started', 'key_provisioned',
               'provisioning_failed', 'key_rotated', 'key_retired');

CREATE OR REPLACE VIEW costs AS
SELECT e.run_id, r.model, e.key_fp, CAST(e.ts AS DATE) AS day, e.ts, e.cost
FROM events e LEFT JOIN runs r USING (run_id)
WHERE e.type = 'response_received' AND e.cost IS NOT NULL
UNION ALL
SELECT e.run_id, r.model, NULL, CAST(e.ts AS DATE), e.ts, 0.0
FROM events e LEFT JOIN runs r USING (run_id)
WHERE e.type = 'ocr_read';
"""

EMPTY_PART = (
    "SELECT "
    + ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in COLUMNS.items())
    + " WHERE false"
)


class Warehouse:
    """The Parquet parts of one ledger and a DuckDB connection over them."""

    def __init__(self, ledger: Ledger, folder: Path | None = None):
        self.ledger = ledger
        self.folder = folder or default_folder(ledger)
        self.parts = self.folder / "parts"
        self.state_file = self.folder / "state.json"

    def refresh(self) -> int:
        """Export events committed since the last refresh; return how many."""
        self.parts.mkdir(parents=True, exist_ok=True)
        with exclusive(self.folder / ".lock"):
            state = self._state()
            if state.get("format") != FORMAT:
                for part in self.parts.glob("*.parquet"):
                    part.unlink()
                state = {"format": FORMAT, "position": 0}
            exported = 0
            position = state["position"]
            while True:
                rows = self._rows_after(position)
                if not rows:
                    break
                self._write_part(rows)
                position = rows[-1]["position"]
                exported += len(rows)
                self._save_state({"format": FORMAT, "position": position})
                if len(rows) < BATCH:
                    break
            return exported

    def behind(self) -> int:
        """How many ledger events the parts do not hold yet (read without DuckDB)."""
        state = self._state()
        position = state.get("position", 0) if state.get("format") == FORMAT else 0
        return max(self.ledger.head() - position, 0)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the views defined over the current parts."""
        import duckdb  # imported here: it costs every other command 15 MB and 0.2 s

        conn = duckdb.connect()
        parts = sorted(self.parts.glob("*.parquet"))
        if parts:
            source = "[" + ", ".join(_quote(str(p)) for p in parts) + "]"
            conn.execute(
                VIEWS.replace("read_parquet({parts})", f"read_parquet({source})")
            )
        else:
            conn.execute(VIEWS.replace("read_parquet({parts})", f"({EMPTY_PART})"))
        return conn

    def _rows_after(self, position: int) -> list[dict]:
        query = (
            select(events_table)
            .where(events_table.c.position > position)
            .order_by(events_table.c.position)
            .limit(BATCH)
        )
        with self.ledger.engine.connect() as conn:
            fetched = conn.execute(query).all()
        rows = []
        for row in fetched:
            exported = stored_row(row)
            payload = exported["payload"]
            if row.type == "response_received":
                payload = _without_body(payload)
            exported["payload"] = payload.decode("utf-8")
            rows.append(exported)
        return rows

    def _write_part(self, rows: list[dict]) -> None:
        first, last = rows[0]["position"], rows[-1]["position"]
        final = self.parts / f"events-{first:012d}-{last:012d}.parquet"
        staging = self.folder / f".part-{os.getpid()}.jsonl"
        temporary = self.folder / f".part-{os.getpid()}.parquet"
        encoder = msgspec.json.Encoder()
        with staging.open("wb") as handle:
            for row in rows:
                handle.write(encoder.encode(row) + b"\n")
        columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
        import duckdb

        try:
            with duckdb.connect() as conn:
                conn.execute(
                    f"COPY (SELECT * FROM read_json({_quote(str(staging))}, "
                    f"format = 'newline_delimited', columns = {columns})) "
                    f"TO {_quote(str(temporary))} (FORMAT parquet)"
                )
            os.replace(temporary, final)
        finally:
            staging.unlink(missing_ok=True)
            temporary.unlink(missing_ok=True)

    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _save_state(self, state: dict) -> None:
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.state_file)


def default_folder(ledger: Ledger) -> Path:
    """Beside a SQLite ledger; under ~/.cache/herbx for a database server."""
    return ledger.beside(".reports")


def _without_body(payload: bytes) -> bytes:
    data = msgspec.json.decode(payload)
    data.pop("body", None)
    return msgspec.json.encode(data)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run_sql(conn: duckdb.DuckDBPyConnection, sql: str, run_id: str | None):
    """Run SQL with ``getvariable('run_id')`` set; return (columns, rows)."""
    import duckdb

    conn.execute("SET VARIABLE run_id = ?", [run_id])
    try:
        result = conn.execute(sql)
    except duckdb.Error as exc:
        raise UsageError(f"the query failed: {str(exc).splitlines()[0]}") from None
    if result.description is None:
        return [], []
    names = [column[0] for column in result.description]
    return names, result.fetchall()
