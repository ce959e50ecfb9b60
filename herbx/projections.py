"""Files derived from the ledger alone, built by ``herbx project`` and by a run.

Each file is rendered from the state of a stored fold (see ``store``), brought up to
date first: the cost of keeping a file current is the new events, not the ledger.
The live files a run writes come from the same folds, so a rebuild matches them byte
for byte, and so does a rebuild from position 0.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from herbx import audit, costs, darwincore, rawjsonl, tables
from herbx import events as ev
from herbx.errors import UsageError
from herbx.ledger import Ledger, Record
from herbx.store import Fold, Store


def environment_document(run_id: str, taken_at: str, snapshot: dict[str, Any]) -> bytes:
    """Render environment.json from a snapshot event."""
    document = {"run_id": run_id, "taken_at": taken_at, **snapshot}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


class EnvironmentDocuments:
    """The fold behind environment.json: each run's latest snapshot, rendered."""

    name = "environment.json"
    version = 1
    types = ("environment_snapshot_taken",)
    tables = ("environment_documents",)
    schema = (
        "CREATE TABLE environment_documents (run_id TEXT PRIMARY KEY, "
        "document BLOB NOT NULL)",
    )

    def apply(self, db: sqlite3.Connection, record: Record) -> None:
        event = record.event
        assert isinstance(event, ev.EnvironmentSnapshotTaken)
        document = environment_document(record.run_id, record.ts, event.snapshot)
        db.execute(
            "INSERT OR REPLACE INTO environment_documents VALUES (?, ?)",
            (record.run_id, document),
        )


def environment_json(db: sqlite3.Connection, run_id: str, out: IO[bytes]) -> None:
    """Write a run's environment.json from its latest snapshot."""
    row = db.execute(
        "SELECT document FROM environment_documents WHERE run_id = ?", (run_id,)
    ).fetchone()
    if row is None:
        raise UsageError(f"run {run_id} has no environment snapshot")
    out.write(row[0])


def costs_csv(db: sqlite3.Connection, run_id: str, out: IO[bytes]) -> None:
    """Write a run's spend and request tallies by day, model and key."""
    rows = costs.detail(costs.Costs.load(db, run_id), run_id)
    names = ["day", "run", "model", "key", *costs.COLUMNS]
    values = [[row[name] for name in names] for row in rows]
    out.write(tables.render(names, values, "csv").encode())


@dataclass(frozen=True)
class Projection:
    """A derived file: the fold it is rendered from and how it is rendered."""

    fold: Fold
    render: Callable[..., None]  # (db, run_id, out, **options)
    thresholded: bool = False  # takes min_confidence


OCCURRENCE = darwincore.OccurrenceRows()
PROJECTIONS: dict[str, Projection] = {
    "raw.jsonl": Projection(rawjsonl.RawLines(), rawjsonl.write),
    "environment.json": Projection(EnvironmentDocuments(), environment_json),
    "costs.csv": Projection(costs.CostTallies(), costs_csv),
    "audit.log": Projection(audit.AuditLines(), audit.write_log),
    "occurrence.csv": Projection(OCCURRENCE, darwincore.occurrence_csv, True),
    "dwca.zip": Projection(OCCURRENCE, darwincore.dwca_zip, True),
}
# Projections that can leave out values below a confidence threshold.
THRESHOLDED = frozenset(name for name, p in PROJECTIONS.items() if p.thresholded)


def projection(name: str) -> Projection:
    """Return the projection called ``name``."""
    if name not in PROJECTIONS:
        known = ", ".join(PROJECTIONS)
        raise UsageError(f"unknown projection {name!r}; choose one of: {known}")
    return PROJECTIONS[name]


def write(
    store: Store,
    name: str,
    run_id: str,
    out: IO[bytes],
    *,
    upto: int | None = None,
    **options: Any,
) -> None:
    """Bring the projection's fold up to date, then write the file for a run."""
    chosen = projection(name)
    store.catch_up(chosen.fold, upto=upto)
    with store.reading() as db:
        chosen.render(db, run_id, out, **options)


def raw_jsonl(ledger: Ledger, run_id: str, out: IO[bytes]) -> None:
    """Write a run's raw.jsonl as the ledger holds it now."""
    with Store(ledger) as store:
        write(store, "raw.jsonl", run_id, out)


def choose_run(ledger: Ledger, run_id: str | None) -> str:
    """Return ``run_id`` if the ledger has it, else the most recent run when None."""
    runs = ledger.run_ids()
    if run_id is None:
        if not runs:
            raise UsageError(f"the ledger {ledger.name} holds no runs yet")
        return ledger.latest_run() or runs[-1]
    if run_id not in runs:
        raise UsageError(
            f"no run {run_id!r} in {ledger.name}; `herbx runs` lists the runs there"
        )
    return run_id
