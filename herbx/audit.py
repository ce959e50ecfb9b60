"""The audit trail: ledger events as an operator's log, one line per event.

Timestamps are stored and shown in UTC. A time given without a zone means UTC, so the
same command selects the same events on any host, whatever its local time zone.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol

import msgspec

from herbx import events as ev
from herbx.errors import UsageError
from herbx.ledger import Ledger, Record

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

WHEN_HELP = "ISO 8601 (a time without a zone is UTC), or relative: 90m, 2h, 3d."


def parse_when(text: str, now: datetime | None = None, *, end: bool = False) -> str:
    """Turn ``--since``/``--until`` into the ledger's UTC timestamp form.

    With ``end`` (for ``--until``), a time given to the second, minute or day covers
    that whole second, minute or day, as a reader of the log lines expects.
    """
    now = now or datetime.now(UTC)
    try:
        match = _RELATIVE.match(text)
        if match:
            amount, unit = float(match.group(1)), match.group(2)
            moment = now - timedelta(**{_UNITS[unit]: amount})
        else:
            moment = datetime.fromisoformat(text.strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            if end:
                moment += _precision(text.strip()) - timedelta(microseconds=1)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (ValueError, OverflowError):
        raise UsageError(
            f"cannot read the time {text!r}; use ISO 8601 such as "
            "2025-10-10T11:51:31 (UTC when no zone is given) or 90m, 2h, 3d"
        ) from None


def _precision(text: str) -> timedelta:
    """The span an ISO time stands for: a day, a minute, a second or less."""
    clock = re.sub(r"(Z|[+-]\d\d(:?\d\d)?)$", "", text[10:].lstrip("T "))
    if len(text) <= 10:
        return timedelta(days=1)
    if "." in clock:
        return timedelta(microseconds=1)
    if clock.count(":") >= 2:
        return timedelta(seconds=1)
    if clock.count(":") == 1:
        return timedelta(minutes=1)
    return timedelta(hours=1)


def short_time(ts: str) -> str:
    """``2025-10-10T11:51:31.123456Z`` as ``2025-10-10 11:51:31Z``."""
    return f"{ts[:10]} {ts[11:19]}Z"


def _money(cost: float | None) -> str:
    return "unknown cost" if cost is None else f"${cost:.6f}"


def _limit(value: float | None) -> str:
    return "none" if value is None else f"${value:.2f}"


class Paths(Protocol):
    def get(self, specimen_id: str, default: str, /) -> str: ...


def describe(record: Record, paths: Paths) -> tuple[str, str]:
    """Return the level and the readable text of one event."""
    event = record.event

    def name(specimen_id: str) -> str:
        return paths.get(specimen_id, specimen_id[:12])

    match event:
        case ev.RunStarted():
            # Ledgers from before the streamed walk counted the input up front.
            count = event.specimen_count
            counted = f", {count} specimens" if count else ""
            if event.imported_from:
                return "INFO", (
                    f"run imported from {event.imported_from}: model {event.model}"
                )
            again = f", rerun of {event.rerun_of}" if event.rerun_of else ""
            if event.engine == "local":
                return "INFO", (
                    f"run started: local OCR engine and label rules (draft records), "
                    f"model {event.model}{counted}{again}"
                )
            return "INFO", (
                f"run started: model {event.model}{counted}, "
                f"endpoint {event.endpoint}, prompt {event.prompt_sha256[:12]}{again}"
            )
        case ev.RunResumed():
            where = f" at {event.endpoint}" if event.endpoint else ""
            return "INFO", f"run resumed: {event.pending} specimens pending{where}"
        case ev.EnvironmentSnapshotTaken():
            snap = event.snapshot
            git = snap.get("git") or {}
            commit = git.get("commit", "")[:10] or "no git"
            dirty = " (dirty)" if git.get("dirty") else ""
            python = (snap.get("python") or {}).get("version", "?")
            return "INFO", (
                f"environment snapshot taken: herbx {snap.get('herbx_version')}, "
                f"Python {python}, code {commit}{dirty}"
            )
        case ev.SpecimenDiscovered():
            extra = (
                f", also as {', '.join(event.duplicates)}" if event.duplicates else ""
            )
            return "INFO", f"specimen discovered: {event.path}{extra}"
        case ev.DuplicateFound():
            return "INFO", (
                f"duplicate found: {event.path} holds the same image as "
                f"{name(event.specimen_id)}; not sent again"
            )
        case ev.InputScanned():
            return "INFO", (
                f"input scanned: {event.files} files, {event.new} new specimens, "
                f"{event.duplicates} duplicates, digest {event.input_digest[:12]}"
            )
        case ev.RequestSent():
            key = f" with key {event.key_fingerprint}" if event.key_fingerprint else ""
            return "INFO", (
                f"request sent: {name(event.specimen_id)} attempt {event.attempt}{key}"
            )
        case ev.ResponseReceived():
            tokens = (event.usage or {}).get("total_tokens")
            tokens_text = f", {tokens} tokens" if tokens is not None else ""
            return "INFO", (
                f"response received: {name(event.specimen_id)} HTTP {event.status} "
                f"in {event.latency_ms:.0f} ms{tokens_text}, {_money(event.cost)}"
            )
        case ev.OcrRead():
            turned = f", turned {event.rotation} degrees" if event.rotation else ""
            engine = event.engine
            return "INFO", (
                f"text read: {name(event.specimen_id)} {len(event.lines)} lines"
                f"{turned} in {event.duration_ms / 1000:.1f} s by "
                f"{engine.get('name', '?')} {engine.get('version', '')}".rstrip()
            )
        case ev.RequestFailed():
            then = "will retry" if event.retryable else "not retried"
            return "WARNING", (
                f"request failed: {name(event.specimen_id)} attempt {event.attempt}: "
                f"{event.reason}: {event.message} ({then})"
            )
        case ev.RetryScheduled():
            return "INFO", (
                f"retry scheduled: {name(event.specimen_id)} after {event.delay:.1f} s "
                f"({event.reason})"
            )
        case ev.ResultSaved():
            filled = sum(1 for f in event.fields.values() if str(f.get("value", "")))
            return "INFO", (
                f"result saved: {event.path}, {filled} of {len(event.fields)} "
                "fields filled"
            )
        case ev.SpecimenFailed():
            return "ERROR", (
                f"specimen failed: {event.path}: {event.reason}: {event.message}"
            )
        case ev.SpecimenRequeued():
            return "INFO", f"specimen requeued: {event.path}"
        case ev.ValidationCheckpoint():
            text = (
                f"validation checkpoint ({event.kind}): {event.succeeded} of "
                f"{event.finished} succeeded ({event.rate:.0%}, threshold "
                f"{event.threshold:.0%})"
            )
            if event.passed:
                return "INFO", text + ": passed"
            level = "ERROR" if event.kind == "early" else "WARNING"
            return level, text + ": below threshold"
        case ev.RunFinished():
            return "INFO", (
                f"run finished: {event.specimens} specimens, {event.succeeded} saved, "
                f"{event.failed} failed, {_money(event.spend)}"
            )
        case ev.RunAborted():
            return "ERROR", f"run aborted: {event.reason}: {event.message}"
        case ev.KeyLoaded():
            limit = f", limit {_limit(event.limit)}" if event.limit is not None else ""
            return "INFO", (
                f"key loaded: {event.key_fingerprint} from {event.source}{limit}"
            )
        case ev.AuthRejected(confirmed=False):
            return "WARNING", (
                f"key {event.key_fingerprint} refused (HTTP {event.status}: "
                f"{event.message}); retrying once to confirm"
            )
        case ev.AuthRejected():
            return "ERROR", (
                f"key expired or invalid: {event.key_fingerprint} (HTTP "
                f"{event.status}: {event.message})"
            )
        case ev.RotationStarted():
            return "WARNING", (
                f"attempting rotation away from {event.key_fingerprint} "
                f"({event.reason})"
            )
        case ev.KeyProvisioned():
            return "INFO", (
                f"new key provisioned: {event.key_fingerprint} named {event.name!r}, "
                f"limit {_limit(event.limit)}, via {event.via}"
            )
        case ev.ProvisioningFailed():
            return "ERROR", f"provisioning failed: {event.reason}: {event.message}"
        case ev.KeyRotated():
            return "INFO", (
                f"fresh key loaded ({event.key_fingerprint}); retrying with the "
                "fresh key"
            )
        case ev.KeyRetired():
            return "INFO", f"key retired: {event.key_fingerprint} ({event.reason})"
    return "INFO", record.type.replace("_", " ")


def specimen_paths(ledger: Ledger, run_id: str | None) -> dict[str, str]:
    """Map specimen ids to their image paths, for readable lines."""
    return {
        record.event.specimen_id: record.event.path
        for record in ledger.read(run_id=run_id, types=("specimen_discovered",))
        if isinstance(record.event, ev.SpecimenDiscovered)
    }


def entries(
    ledger: Ledger,
    *,
    run_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    kinds: list[str] | None = None,
) -> Iterator[tuple[Record, str, str]]:
    """Yield (record, level, text) for the selected events, oldest first."""
    if kinds:
        unknown = [kind for kind in kinds if kind not in ev.BY_TAG]
        if unknown:
            raise UsageError(
                f"unknown event kind {unknown[0]!r}; "
                f"choose from: {', '.join(ev.BY_TAG)}"
            )
    paths = specimen_paths(ledger, run_id)
    for record in ledger.read(run_id=run_id, types=kinds, since=since, until=until):
        level, text = describe(record, paths)
        yield record, level, text


def line(record: Record, level: str, text: str, with_run: bool) -> str:
    """Format one audit line."""
    run = f"{record.run_id}  " if with_run else ""
    return f"{short_time(record.ts)} {level:<7} {run}{text}"


class AuditLines:
    """The fold behind audit.log: every event's log line, by run.

    It remembers each run's specimen paths so that lines name the sheet, as the
    live audit does.
    """

    name = "audit.log"
    version = 1
    types = None
    tables = ("audit_lines", "audit_paths")
    schema = (
        "CREATE TABLE audit_lines (position INTEGER PRIMARY KEY, "
        "run_id TEXT NOT NULL, line TEXT NOT NULL)",
        "CREATE INDEX audit_lines_run ON audit_lines (run_id, position)",
        "CREATE TABLE audit_paths (run_id TEXT, specimen_id TEXT, path TEXT, "
        "PRIMARY KEY (run_id, specimen_id)) WITHOUT ROWID",
    )

    def apply(self, db: sqlite3.Connection, record: Record) -> None:
        event = record.event
        if isinstance(event, ev.SpecimenDiscovered):
            db.execute(
                "INSERT OR REPLACE INTO audit_paths VALUES (?, ?, ?)",
                (record.run_id, event.specimen_id, event.path),
            )
        level, text = describe(record, _StoredPaths(db, record.run_id))
        db.execute(
            "INSERT INTO audit_lines VALUES (?, ?, ?)",
            (record.position, record.run_id, line(record, level, text, False)),
        )


class _StoredPaths:
    """The run's specimen paths, looked up in the fold's table as ``describe``
    asks for them."""

    def __init__(self, db: sqlite3.Connection, run_id: str):
        self._db = db
        self._run_id = run_id

    def get(self, specimen_id: str, default: str) -> str:
        row = self._db.execute(
            "SELECT path FROM audit_paths WHERE run_id = ? AND specimen_id = ?",
            (self._run_id, specimen_id),
        ).fetchone()
        return row[0] if row else default


def write_log(db: sqlite3.Connection, run_id: str, out: IO[bytes]) -> None:
    """Write a run's audit.log from the fold's state, oldest first."""
    rows = db.execute(
        "SELECT line FROM audit_lines WHERE run_id = ? ORDER BY position", (run_id,)
    )
    for (text,) in rows:
        out.write(text.encode() + b"\n")


def json_line(record: Record, level: str, text: str) -> bytes:
    """Format one audit entry as a JSON object for tools."""
    payload: dict[str, Any] = msgspec.to_builtins(record.event)
    return msgspec.json.encode(
        {
            "position": record.position,
            "time": record.ts,
            "run_id": record.run_id,
            "seq": record.seq,
            "kind": record.type,
            "level": level,
            "message": text,
            "specimen_id": record.specimen_id,
            "key_fingerprint": record.key_fp,
            "cost": record.cost,
            "event": payload,
        }
    )
