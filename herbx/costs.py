"""Spend and request tallies, folded from the ledger.

Every attempt is attributed to the day, run, model and key fingerprint of its
``request_sent`` event; the cost its response reported is added there, and a result
saved from it counts as a success there. A request with no priced response (it timed
out, the process died, the provider sent no cost) is counted as unknown cost, never as
zero. Totals are sums of the costs the API reported, nothing estimated.
"""

from __future__ import annotations

from collections.abc import Iterable
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


class Costs:
    """The fold: feed it events in position order, read tallies by any grouping."""

    def __init__(self) -> None:
        self.tallies: dict[Group, Tally] = {}
        self._models: dict[str, str] = {}
        self._requests: dict[str, Group] = {}

    def apply(self, record: Record) -> None:
        event = record.event
        match event:
            case ev.RunStarted():
                self._models[record.run_id] = event.model
            case ev.RequestSent():
                group = (
                    record.ts[:10],
                    record.run_id,
                    event.model or self._models.get(record.run_id, ""),
                    event.key_fingerprint or "",
                )
                self._requests[event.request_id] = group
                self._tally(group).requests += 1
            case ev.ResponseReceived(cost=cost) if cost is not None:
                group = self._requests.get(event.request_id)
                if group is not None:
                    tally = self._tally(group)
                    tally.spend += cost
                    tally.known += 1
            case ev.RequestFailed(
                reason="connection_error" | "connect_timeout" | "invalid_request"
            ):
                # Never reached the endpoint: known to cost nothing.
                group = self._requests.get(event.request_id)
                if group is not None:
                    self._tally(group).unreached += 1
            case ev.ResultSaved():
                group = self._requests.get(event.request_id)
                if group is not None:
                    self._tally(group).successes += 1

    def _tally(self, group: Group) -> Tally:
        tally = self.tallies.get(group)
        if tally is None:
            tally = self.tallies[group] = Tally()
        return tally

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


def fold(records: Iterable[Record]) -> Costs:
    """Tally a stream of events (any order of runs, position order overall)."""
    costs = Costs()
    for record in records:
        costs.apply(record)
    return costs
