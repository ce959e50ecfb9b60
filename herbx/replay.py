"""Replay: a run as it stood at an earlier moment, and its answers parsed again.

Time travel folds the run's events up to a ledger position into a fresh projection
store, so every file shows what was known then: which lines raw.jsonl held, what had
been spent, which key was in use.

Offline re-execution sends nothing anywhere. Each specimen's recorded attempts are
handed, in order, to today's interpretation, retry and parsing code, exactly as the
HTTP answers reached the run; today's code decides the outcome, and the outcome keeps
the position and time of the original one. So when the code has not changed the
rebuilt raw.jsonl is the original byte for byte, and when it has, the differences
are the code's. What the answers cannot replay is kept as recorded: a sheet that
failed before any request (missing or unreadable image), and the failure reasons of
requests that got no HTTP answer at all.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from herbx import answers, diffs, drafting, projections, rawjsonl
from herbx import events as ev
from herbx.diffs import Comparison
from herbx.errors import UsageError
from herbx.ledger import Ledger, Record
from herbx.openrouter import Failure, Reply, Success, interpret
from herbx.rawjsonl import RawLines, write_atomically
from herbx.retry import RetryPolicy
from herbx.state import RunState, fold
from herbx.store import Store

# What time travel writes, when the run had it by then.
MOMENT_FILES = ("raw.jsonl", "costs.csv", "audit.log", "environment.json")
KEYS = ("run_resumed", "key_loaded", "key_rotated", "key_retired")


@dataclass
class Moment:
    """What was known about a run at one ledger position."""

    run_id: str
    position: int
    at: str  # the UTC time of the event at that position
    state: RunState
    current_key: str | None
    retired_keys: list[str]
    files: list[str]  # written to the output folder

    def summary(self) -> dict[str, Any]:
        state = self.state
        return {
            "run_id": self.run_id,
            "position": self.position,
            "at": self.at,
            "status": state.status,
            "specimens": state.specimens,
            "saved": state.saved,
            "failed": state.failed,
            "pending": state.pending,
            "spend_usd": round(state.spend, 10),
            "unknown_cost_attempts": state.unknown_cost,
            "current_key": self.current_key,
            "retired_keys": self.retired_keys,
        }


def _keys(records: Iterable[Record]) -> tuple[str | None, list[str]]:
    """The key a run was using, and the keys it had retired, after these events.

    An invocation's first loaded key is its key; a later one becomes the key only
    when the rotation to it is recorded, and a retired key stays the run's key until
    then, since it is the one the last requests went out with.
    """
    current: str | None = None
    retired: list[str] = []
    for record in records:
        event = record.event
        match event:
            case ev.RunResumed():
                current = None
            case ev.KeyLoaded() if current is None:
                current = event.key_fingerprint
            case ev.KeyRotated():
                current = event.key_fingerprint
            case ev.KeyRetired():
                retired.append(event.key_fingerprint)
    return current, retired


def moment(ledger: Ledger, run_id: str, position: int, out_dir: Path) -> Moment:
    """Fold a run's events up to ``position``; write its files as they were then."""
    head = ledger.head()
    if position < 1 or position > head:
        raise UsageError(
            f"position {position} is not in the ledger (1 to {head}); "
            "`herbx audit --json` shows each event's position"
        )
    records = list(ledger.read(after=position - 1, upto=position))
    at = records[0].ts if records else ""
    state = fold(run_id, ledger.read(run_id=run_id, upto=position))
    if state.started is None:
        raise UsageError(
            f"run {run_id} had not started by position {position}; "
            "choose a later --at or --until"
        )
    current, retired = _keys(ledger.read(run_id=run_id, upto=position, types=KEYS))

    files = []
    scratch = tempfile.TemporaryDirectory(prefix="herbx-replay-")
    with scratch, Store(ledger, Path(scratch.name) / "store.db") as store:
        for name in MOMENT_FILES:
            try:
                write_atomically(
                    out_dir / name,
                    lambda out, name=name: projections.write(
                        store, name, run_id, out, upto=position
                    ),
                )
            except UsageError:
                continue  # e.g. no environment snapshot yet
            files.append(name)
    return Moment(run_id, position, at, state, current, retired, files)


# -- offline re-execution ------------------------------------------------------------


@dataclass
class _Attempt:
    number: int
    request_id: str
    reply: Reply | None = None
    transport: ev.RequestFailed | None = None  # failed with no HTTP answer


@dataclass
class _Specimen:
    # None marks a new invocation of the run: its retry count starts again.
    attempts: list[_Attempt | None] = field(default_factory=list)
    by_request: dict[str, _Attempt] = field(default_factory=dict)
    read: ev.OcrRead | None = None  # the local engine's reading of the sheet


def reexecute(ledger: Ledger, run_id: str) -> Iterator[Record]:
    """Yield the run's outcome and requeue events as today's code decides them.

    Memory holds the attempts of specimens without an outcome only.
    """
    started: ev.RunStarted | None = None
    policy = RetryPolicy()
    open_specimens: dict[str, _Specimen] = {}
    for record in ledger.read(run_id=run_id):
        event = record.event
        match event:
            case ev.RunStarted():
                started = event
                options = event.options
                policy = RetryPolicy(max_attempts=options.get("max_attempts", 4))
            case ev.RunResumed():
                for specimen in open_specimens.values():
                    specimen.attempts.append(None)
            case ev.RequestSent():
                attempt = _Attempt(event.attempt, event.request_id)
                specimen = open_specimens.setdefault(event.specimen_id, _Specimen())
                specimen.attempts.append(attempt)
                specimen.by_request[event.request_id] = attempt
            case ev.ResponseReceived():
                attempt = _lookup(open_specimens, event.specimen_id, event.request_id)
                if attempt is not None:
                    attempt.reply = Reply(
                        event.status, event.body, event.latency_ms, event.headers
                    )
            case ev.RequestFailed():
                attempt = _lookup(open_specimens, event.specimen_id, event.request_id)
                if attempt is not None and attempt.reply is None:
                    attempt.transport = event
            case ev.OcrRead():
                specimen = open_specimens.setdefault(event.specimen_id, _Specimen())
                specimen.read = event
            case ev.ResultSaved() | ev.SpecimenFailed():
                specimen = open_specimens.pop(event.specimen_id, _Specimen())
                model = started.model if started else ""
                if specimen.read is not None:
                    # Today's label rules over the stored text: no OCR again.
                    replayed = drafting.outcome(specimen.read, event.path)
                else:
                    replayed = _decide(event, specimen.attempts, policy, model)
                yield msgspec.structs.replace(
                    record, event=replayed, payload=ev.encode(replayed)
                )
            case ev.SpecimenRequeued():
                open_specimens.pop(event.specimen_id, None)
                yield record


def _lookup(
    specimens: dict[str, _Specimen], specimen_id: str, request_id: str
) -> _Attempt | None:
    specimen = specimens.get(specimen_id)
    return specimen.by_request.get(request_id) if specimen else None


def _decide(
    original: ev.ResultSaved | ev.SpecimenFailed,
    attempts: list[_Attempt | None],
    policy: RetryPolicy,
    model: str,
) -> ev.Event:
    """The outcome today's code gives the recorded attempts of one specimen."""
    sent = [attempt for attempt in attempts if attempt is not None]
    if not sent:
        return original  # failed before any request: nothing to parse again
    path = original.path
    specimen_id = original.specimen_id
    tries = 0
    for attempt in attempts:
        if attempt is None:
            tries = 0
            continue
        if attempt.reply is None:
            if attempt.transport is None:
                continue  # the process died with this request in flight
            sent = attempt.transport
            failure = Failure(
                reason=sent.reason,
                message=sent.message,
                scope="attempt" if sent.retryable else "run",
                retryable=sent.retryable,
                status=sent.status,
            )
        else:
            outcome = interpret(attempt.reply)
            if isinstance(outcome, Success):
                return _parsed(outcome, original, attempt, model)
            failure = outcome
        if failure.scope in ("key", "run", "account"):
            continue  # the run rotated a key or stopped; the next attempt is later
        tries += 1
        if not policy.again(failure, tries):
            if failure.reason in ("connection_error", "connect_timeout"):
                continue  # the run stopped as unreachable; resumed later
            return _failed(specimen_id, path, failure, attempt.number, model)
    last = sent[-1].number
    return ev.SpecimenFailed(
        specimen_id=specimen_id,
        path=path,
        reason="not_recorded",
        message=(
            "today's code would try this sheet again, and the ledger holds no later "
            "answer to replay"
        ),
        attempts=last,
        model=model,
    )


def _parsed(
    outcome: Success,
    original: ev.ResultSaved | ev.SpecimenFailed,
    attempt: _Attempt,
    model: str,
) -> ev.Event:
    try:
        fields, note = answers.parse(outcome.content)
    except answers.Unparseable as exc:
        failure = Failure(
            reason=exc.reason,
            message=exc.message,
            scope="specimen",
            retryable=False,
            usage=outcome.usage,
            provider=outcome.provider,
            model=outcome.model,
        )
        return _failed(
            original.specimen_id, original.path, failure, attempt.number, model
        )
    return ev.ResultSaved(
        specimen_id=original.specimen_id,
        path=original.path,
        attempt=attempt.number,
        request_id=attempt.request_id,
        fields=fields,
        model=outcome.model or model,
        provider=outcome.provider,
        usage=outcome.usage,
        parse_note=note,
    )


def _failed(
    specimen_id: str, path: str, failure: Failure, number: int, model: str
) -> ev.SpecimenFailed:
    return ev.SpecimenFailed(
        specimen_id=specimen_id,
        path=path,
        reason=failure.reason,
        message=failure.message,
        attempts=number,
        model=failure.model or model,
        provider=failure.provider,
        usage=failure.usage,
    )


@dataclass
class OfflineReplay:
    """What an offline re-execution wrote and how it compares with the original."""

    raw: Path
    lines: int
    identical: bool  # byte for byte
    comparison: Comparison


def offline(ledger: Ledger, run_id: str, out_dir: Path) -> OfflineReplay:
    """Write raw.jsonl as today's code makes it from the recorded answers, and
    compare it with the run's own, specimen by specimen."""
    lines = RawLines()
    scratch = tempfile.TemporaryDirectory(prefix="herbx-offline-")
    with (
        scratch,
        Store(ledger, Path(scratch.name) / "offline.db") as replayed,
        Store(ledger) as kept,
    ):
        replayed.load(lines, reexecute(ledger, run_id))
        kept.catch_up(lines)
        raw = out_dir / "raw.jsonl"
        with replayed.reading() as db:
            write_atomically(raw, lambda out: rawjsonl.write(db, run_id, out))
        with replayed.reading(attach={"kept": kept.path}) as db:
            comparison = diffs.compare(
                diffs.paired_lines(db, run_id, run_id, "kept.raw_lines")
            )
            identical = _digest(db, "kept.raw_lines", run_id) == _digest(
                db, "raw_lines", run_id
            )
            count = db.execute(
                "SELECT count(*) FROM raw_lines WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
    return OfflineReplay(raw, count, identical, comparison)


def _digest(db: sqlite3.Connection, table: str, run_id: str) -> str:
    """SHA-256 of the raw.jsonl a raw.jsonl fold table renders for a run."""
    digest = hashlib.sha256()
    rows = db.execute(
        f"SELECT line FROM {table} WHERE run_id = ? ORDER BY position", (run_id,)
    )
    for (line,) in rows:
        digest.update(line)
    return digest.hexdigest()
