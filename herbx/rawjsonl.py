"""The ``raw.jsonl`` projection: one line per finished specimen.

The same function renders a line live during a run and during a rebuild from the
ledger, so the two files are identical byte for byte. A line appears when a specimen
finishes (saved or failed) and disappears if the specimen is requeued; lines keep the
order in which specimens finished.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import msgspec

from herbx import events as ev
from herbx import failpoints
from herbx.ledger import Ledger, Record

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
    elif isinstance(event, ev.SpecimenFailed):
        body = {
            "image": event.path,
            "model": event.model,
            "provider": event.provider,
            "error": f"{event.reason}: {event.message}",
        }
    else:
        return None
    body["timestamp"] = record.ts
    body["usage"] = event.usage
    body["specimen_id"] = event.specimen_id
    body["run_id"] = record.run_id
    return _encoder.encode(body) + b"\n"


OUTCOMES = ("result_saved", "specimen_failed")


def write(ledger: Ledger, run_id: str, out: IO[bytes]) -> None:
    """Write a run's raw.jsonl: each specimen's latest outcome, in outcome order.

    An outcome stands unless a later outcome or a requeue of the same specimen
    follows it; the ledger answers that through its run-and-specimen index, so the
    rebuild holds one batch of events at a time however large the run.
    """
    standing = ledger.read(
        run_id=run_id,
        types=OUTCOMES,
        unless_followed_by=(*OUTCOMES, "specimen_requeued"),
    )
    for record in standing:
        out.write(render(record) or b"")


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


class LiveFile:
    """raw.jsonl as a run writes it: rebuilt from the ledger, then appended to.

    If someone replaces the file while the run writes (``herbx project -o`` onto it),
    the next line notices and rebuilds it from the ledger instead of writing into a
    file that no longer has a name.
    """

    def __init__(self, path: Path, rebuild: Callable[[IO[bytes]], None]):
        self.path = path
        self._rebuild = rebuild
        self._open()

    def _open(self) -> None:
        write_atomically(self.path, self._rebuild)
        self._handle: IO[bytes] = self.path.open("ab")
        stat = os.fstat(self._handle.fileno())
        self._identity = (stat.st_dev, stat.st_ino)

    def _replaced(self) -> bool:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self._identity

    def append(self, line: bytes) -> None:
        """Add one committed outcome's line (the ledger already holds it)."""
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

    def close(self) -> None:
        self._handle.close()
