"""The ``raw.jsonl`` projection: one line per finished specimen.

The same function renders a line live during a run and during a rebuild from the
ledger, so the two files are identical byte for byte. A line appears when a specimen
finishes (saved or failed) and disappears if the specimen is requeued; lines keep the
order in which specimens finished.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import IO

import msgspec

from herbx import events as ev
from herbx import failpoints, locks
from herbx.ledger import Record

_encoder = msgspec.json.Encoder()


def render(record: Record) -> bytes | None:
    """Return the raw.jsonl line for an outcome event, or None for other events."""
    event = record.event
    if isinstance(event, ev.ResultSaved):
        body = {
            "image": event.path,
            "model": event.model,
            "provider": event.provider,
            "dwc": event.fields,
        }
        if event.rules_version:
            # Made by the local engine's label rules: a draft to be checked.
            body["draft"] = True
            body["rules"] = event.rules_version
    elif isinstance(event, ev.SpecimenFailed):
        body = {
            "image": event.path,
            "model": event.model,
            "provider": event.provider,
            "error": f"{event.reason}: {event.message}",
        }
    else:
        return None
    # An imported line keeps the time the tool that wrote it gave.
    body["timestamp"] = event.recorded_at or record.ts
    body["usage"] = event.usage
    body["specimen_id"] = event.specimen_id
    body["run_id"] = record.run_id
    return _encoder.encode(body) + b"\n"


OUTCOMES = ("result_saved", "specimen_failed")


class RawLines:
    """The fold behind raw.jsonl: each specimen's standing outcome line.

    An outcome replaces the specimen's earlier one and a requeue withdraws it; lines
    are kept with the position of their outcome, which is the order they are
    written in.
    """

    name = "raw.jsonl"
    version = 1
    types = (*OUTCOMES, "specimen_requeued")
    tables = ("raw_lines",)
    schema = (
        "CREATE TABLE raw_lines (run_id TEXT NOT NULL, specimen_id TEXT NOT NULL, "
        "position INTEGER NOT NULL, line BLOB NOT NULL, "
        "PRIMARY KEY (run_id, specimen_id)) WITHOUT ROWID",
        "CREATE INDEX raw_lines_order ON raw_lines (run_id, position)",
    )

    def apply(self, db: sqlite3.Connection, record: Record) -> None:
        line = render(record)
        if line is None:
            db.execute(
                "DELETE FROM raw_lines WHERE run_id = ? AND specimen_id = ?",
                (record.run_id, record.specimen_id),
            )
            return
        db.execute(
            "INSERT OR REPLACE INTO raw_lines VALUES (?, ?, ?, ?)",
            (record.run_id, record.specimen_id, record.position, line),
        )


def write(db: sqlite3.Connection, run_id: str, out: IO[bytes]) -> None:
    """Write a run's raw.jsonl from the fold's state, in outcome order."""
    rows = db.execute(
        "SELECT line FROM raw_lines WHERE run_id = ? ORDER BY position", (run_id,)
    )
    for (line,) in rows:
        out.write(line)


def write_atomically(path: Path, data: bytes | Callable[[IO[bytes]], None]) -> None:
    """Replace ``path`` with new content so that readers see the old or the new file.

    ``data`` is the bytes, or a function that writes them to the handle it is given.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def replace_projected(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Replace ``path`` with a file ``write`` makes from the ledger.

    ``write`` reads the ledger under the lock a live run takes for each line it
    adds: an outcome is either in the ledger before the read or appended after
    the new file is in place, where the run sees the swap and rebuilds. A run
    writing into the same folder waits with its next line until the file is in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with locks.folder(path.parent):
        write_atomically(path, write)


class LiveFile:
    """raw.jsonl as a run writes it: rebuilt from the ledger, then appended to.

    If someone replaces the file while the run writes (``herbx project -o`` onto it),
    the next line, or the run's end, notices and rebuilds it from the ledger instead
    of writing into a file that no longer has a name. Each check and write holds the
    folder's lock, which ``replace_projected`` holds from its read to its rename.
    """

    def __init__(self, path: Path, rebuild: Callable[[IO[bytes]], None]):
        self.path = path
        self._rebuild = rebuild
        path.parent.mkdir(parents=True, exist_ok=True)
        with locks.folder(path.parent):
            self._open()

    def _open(self) -> None:
        write_atomically(self.path, self._rebuild)
        self._handle: IO[bytes] = self.path.open("ab")
        stat = os.fstat(self._handle.fileno())
        self._identity = (stat.st_dev, stat.st_ino)

    def _replaced(self) -> bool:
        try:
            stat = os.stat(self.path)
        except OSError:
            return True  # gone, or its folder is: write it again
        return (stat.st_dev, stat.st_ino) != self._identity

    def append(self, line: bytes) -> None:
        """Add one committed outcome's line (the ledger already holds it)."""
        with locks.folder(self.path.parent):
            if self._replaced():
                self._handle.close()
                self._open()  # the rebuild already includes this line
                return
            # Flushed per line so that `wc -l` and `jq` see a running extraction.
            if failpoints.due("raw_write_torn"):
                self._handle.write(line[: len(line) // 2])
                self._handle.flush()
                failpoints.crash()
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> str | None:
        """Let go of the file; return a warning if it could not be put right.

        A file replaced after the last line (by a projection that read the ledger
        before the run's last outcomes) is rebuilt. The run may be ending on an
        error of its own, so a failure here is told, not raised: the ledger has
        every line.
        """
        try:
            with locks.folder(self.path.parent):
                replaced = self._replaced()
                self._handle.close()
                if replaced:
                    write_atomically(self.path, self._rebuild)
        except OSError as exc:
            return (
                f"could not rewrite {self.path} ({exc.strerror}); the ledger has "
                "every line: herbx project raw.jsonl --run RUN -o PATH"
            )
        return None
