"""Spend and request tallies, folded from the ledger.

Every attempt is attributed to the day, run, model and key fingerprint of its
``request_sent`` event; the cost its response reported is added there, and a result
saved from it counts as a success there. A request with no priced response (it timed
out, the process died, the provider sent no cost) is counted as unknown cost, never as
zero. Totals are sums of the costs the API reported, nothing estimated. A sheet the
local engine read (``ocr_read``) counts as an attempt of known cost zero, under the
key "local".
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from herbx import events as ev
from herbx.ledger import Record

GROUPINGS = ("run", "key", "model", "day")
COLUMNS = (
    "spend_usd",
    "requests",
    "successes",
    "known_cost_attempts",
    "unknown_cost_attempts",
    "cost_per_success_usd",
)
TYPES = (
    "run_started",
    "request_sent",
    "response_received",
    "request_failed",
    "ocr_read",
    "result_saved",
)

Group = tuple[str, str, str, str]  # day, run, model, key


@dataclass
class Tally:
    spend: float = 0.0
    requests: int = 0
    successes: int = 0
    known: int = 0
    unreached: int = 0

    @property
    def unknown(self) -> int:
        return self.requests - self.known - self.unreached

    def add(self, other: Tally) -> None:
        self.spend += other.spend
        self.requests += other.requests
        self.successes += other.successes
        self.known += other.known
        self.unreached += other.unreached

    def row(self) -> dict[str, object]:
        per = self.spend / self.successes if self.successes else None
        return {
            "spend_usd": round(self.spend, 10),
            "requests": self.requests,
            "successes": self.successes,
            "known_cost_attempts": self.known,
            "unknown_cost_attempts": self.unknown,
            "cost_per_success_usd": None if per is None else round(per, 10),
        }


class CostTallies:
    """The stored fold: a tally per (day, run, model, key), kept beside the ledger.

    It also remembers each run's model and each request's group, because a response
    or a result names only its request.
    """

    name = "costs"
    version = 2  # 2: the local engine's readings count as free attempts
    types = TYPES
    tables = ("cost_runs", "cost_requests", "cost_tallies")
    schema = (
        "CREATE TABLE cost_runs (run_id TEXT PRIMARY KEY, model TEXT NOT NULL)",
        "CREATE TABLE cost_requests (request_id TEXT PRIMARY KEY, day TEXT, "
        "run_id TEXT, model TEXT, key TEXT) WITHOUT ROWID",
        "CREATE TABLE cost_tallies (day TEXT, run_id TEXT, model TEXT, key TEXT, "
        "spend REAL NOT NULL DEFAULT 0, requests INTEGER NOT NULL DEFAULT 0, "
        "successes INTEGER NOT NULL DEFAULT 0, known INTEGER NOT NULL DEFAULT 0, "
        "unreached INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (day, run_id, model, key)) WITHOUT ROWID",
    )

    def apply(self, db: sqlite3.Connection, record: Record) -> None:
        event = record.event
        match event:
            case ev.RunStarted():
                db.execute(
                    "INSERT OR REPLACE INTO cost_runs VALUES (?, ?)",
                    (record.run_id, event.model),
                )
            case ev.RequestSent():
                model = event.model or self._model(db, record.run_id)
                key = event.key_fingerprint or ""
                self._attempt(
                    db, event.request_id, (record.ts[:10], record.run_id, model, key)
                )
            case ev.OcrRead():
                group = (record.ts[:10], record.run_id, self._model(db, record.run_id))
                self._attempt(db, event.request_id, (*group, "local"), known=1)
            case ev.ResponseReceived(cost=cost) if cost is not None:
                self._add(
                    db,
                    event.request_id,
                    "spend = spend + ?, known = known + 1",
                    (cost,),
                )
            case ev.RequestFailed(
                reason="connection_error" | "connect_timeout" | "invalid_request"
            ):
                # Never reached the endpoint: known to cost nothing.
                self._add(db, event.request_id, "unreached = unreached + 1")
            case ev.ResultSaved():
                self._add(db, event.request_id, "successes = successes + 1")

    def _model(self, db: sqlite3.Connection, run_id: str) -> str:
        found = db.execute(
            "SELECT model FROM cost_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return found[0] if found else ""

    def _attempt(
        self,
        db: sqlite3.Connection,
        request_id: str,
        group: tuple[str, str, str, str],
        known: int = 0,
    ) -> None:
        db.execute(
            "INSERT OR REPLACE INTO cost_requests VALUES (?, ?, ?, ?, ?)",
            (request_id, *group),
        )
        db.execute(
            "INSERT INTO cost_tallies (day, run_id, model, key, requests, known) "
            "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT DO UPDATE "
            "SET requests = requests + 1, known = known + excluded.known",
            (*group, known),
        )

    def _add(
        self,
        db: sqlite3.Connection,
        request_id: str,
        change: str,
        values: tuple[object, ...] = (),
    ) -> None:
        db.execute(
            f"UPDATE cost_tallies SET {change} WHERE (day, run_id, model, key) = "
            "(SELECT day, run_id, model, key FROM cost_requests WHERE request_id = ?)",
            (*values, request_id),
        )


class Costs:
    """Tallies by (day, run, model, key), read by any grouping."""

    def __init__(self, tallies: dict[Group, Tally]) -> None:
        self.tallies = tallies

    @classmethod
    def load(cls, db: sqlite3.Connection, run_id: str | None = None) -> Costs:
        """Read the stored fold's tallies, of one run or of all."""
        query = (
            "SELECT day, run_id, model, key, spend, requests, successes, known, "
            "unreached FROM cost_tallies"
        )
        rows = (
            db.execute(query + " WHERE run_id = ?", (run_id,))
            if run_id is not None
            else db.execute(query)
        )
        return cls({tuple(row[:4]): Tally(*row[4:]) for row in rows})

    def by(self, grouping: str, run_id: str | None = None) -> list[dict[str, object]]:
        """Rows of totals by ``run``, ``key``, ``model`` or ``day``, plus a total."""
        index = {"day": 0, "run": 1, "model": 2, "key": 3}[grouping]
        merged: dict[str, Tally] = {}
        total = Tally()
        for group, tally in self.tallies.items():
            if run_id is not None and group[1] != run_id:
                continue
            merged.setdefault(group[index], Tally()).add(tally)
            total.add(tally)
        rows = [{grouping: name, **merged[name].row()} for name in sorted(merged)]
        rows.append({grouping: "total", **total.row()})
        return rows


def detail(costs: Costs, run_id: str) -> list[dict[str, object]]:
    """One run's tallies at the finest grain: day, model and key."""
    rows = []
    for (day, run, model, key), tally in sorted(costs.tallies.items()):
        if run == run_id:
            rows.append(
                {"day": day, "run": run, "model": model, "key": key, **tally.row()}
            )
    return rows
