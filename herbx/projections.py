"""Files derived from the ledger alone, rebuilt on demand by ``herbx project``.

Each projection is a pure fold over one run's events; the live files a run writes are
produced by the same code, so a rebuild matches them byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any

from herbx import audit, costs, darwincore, rawjsonl, tables
from herbx import events as ev
from herbx.errors import UsageError
from herbx.ledger import Ledger


def raw_jsonl(ledger: Ledger, run_id: str, out: IO[bytes]) -> None:
    """Rebuild a run's raw.jsonl."""
    rawjsonl.write(ledger, run_id, out)


def environment_document(run_id: str, taken_at: str, snapshot: dict[str, Any]) -> bytes:
    """Render environment.json from a snapshot event."""
    document = {"run_id": run_id, "taken_at": taken_at, **snapshot}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def environment_json(ledger: Ledger, run_id: str, out: IO[bytes]) -> None:
    """Rebuild a run's environment.json from its latest snapshot."""
    latest = None
    for record in ledger.read(run_id=run_id, types=("environment_snapshot_taken",)):
        latest = record
    if latest is None:
        raise UsageError(f"run {run_id} has no environment snapshot")
    assert isinstance(latest.event, ev.EnvironmentSnapshotTaken)
    out.write(environment_document(run_id, latest.ts, latest.event.snapshot))


def costs_csv(ledger: Ledger, run_id: str, out: IO[bytes]) -> None:
    """Write a run's spend and request tallies by day, model and key."""
    rows = costs.detail(costs.fold(ledger.read(types=costs.TYPES)), run_id)
    names = ["day", "run", "model", "key", *costs.COLUMNS]
    values = [[row[name] for name in names] for row in rows]
    out.write(tables.render(names, values, "csv").encode())


def audit_log(ledger: Ledger, run_id: str, out: IO[bytes]) -> None:
    """Write a run's audit trail as the operator's log lines, oldest first."""
    for record, level, text in audit.entries(ledger, run_id=run_id):
        out.write((audit.line(record, level, text, with_run=False) + "\n").encode())


PROJECTIONS: dict[str, Callable[[Ledger, str, IO[bytes]], None]] = {
    "raw.jsonl": raw_jsonl,
    "environment.json": environment_json,
    "costs.csv": costs_csv,
    "audit.log": audit_log,
    "occurrence.csv": darwincore.occurrence_csv,
    "dwca.zip": darwincore.dwca_zip,
}
# Projections that can leave out values below a confidence threshold.
THRESHOLDED = frozenset({"occurrence.csv", "dwca.zip"})


def builder(name: str) -> Callable[[Ledger, str, IO[bytes]], None]:
    """Return the function that writes the projection called ``name``."""
    if name not in PROJECTIONS:
        known = ", ".join(PROJECTIONS)
        raise UsageError(f"unknown projection {name!r}; choose one of: {known}")
    return PROJECTIONS[name]


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
