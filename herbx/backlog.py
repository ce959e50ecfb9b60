"""A run's backlog: its specimens without an outcome, read from the ledger.

Nothing per specimen is kept in memory. Specimens are read in discovery order a batch
at a time, and each batch's own events (found through the run-and-specimen index) say
which of them are finished, so a run over a million sheets needs no more memory than
one over a thousand.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from herbx import events as ev
from herbx.ledger import Ledger, Record
from herbx.specimens import Specimen

BATCH = 256
T = TypeVar("T")
STANDING_TYPES = (
    "specimen_discovered",
    "duplicate_found",
    "request_sent",
    "result_saved",
    "specimen_failed",
    "specimen_requeued",
)


@dataclass(slots=True)
class Standing:
    """Where one specimen of a run stands."""

    names: list[str]
    attempts: int = 0  # requests already sent: a resumed specimen counts on
    saved: bool = False
    failed: bool = False  # failed and not requeued since

    @property
    def finished(self) -> bool:
        return self.saved or self.failed


def standings(
    ledger: Ledger, run_id: str, specimen_ids: Iterable[str]
) -> dict[str, Standing]:
    """Fold the events of the given specimens of a run, by specimen id."""
    found: dict[str, Standing] = {}
    ids = list(specimen_ids)
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        records = ledger.read(run_id=run_id, specimens=chunk, types=STANDING_TYPES)
        for record in records:
            _apply(found, record)
    return found


def _apply(found: dict[str, Standing], record: Record) -> None:
    event = record.event
    standing = found.get(record.specimen_id or "")
    match event:
        case ev.SpecimenDiscovered():
            found[event.specimen_id] = Standing([event.path, *event.duplicates])
        case _ if standing is None:
            return  # no event of a specimen comes before its discovery
        case ev.DuplicateFound():
            standing.names.append(event.path)
        case ev.RequestSent():
            standing.attempts = max(standing.attempts, event.attempt)
        case ev.ResultSaved():
            standing.saved = True
        case ev.SpecimenFailed():
            standing.failed = True
        case ev.SpecimenRequeued():
            standing.failed = False


def batches(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """Tuples of up to ``size`` items, in order (itertools.batched from 3.12 on)."""
    iterator = iter(items)
    while batch := tuple(itertools.islice(iterator, size)):
        yield batch


def _discovered(ledger: Ledger, run_id: str) -> Iterator[list[str]]:
    """The run's specimen ids in discovery order, a batch at a time."""
    batch: list[str] = []
    # Fetched a batch at a time too: the index of a whole run would grow with it.
    rows = ledger.index(run_id=run_id, types=("specimen_discovered",), batch=BATCH)
    for _position, _type, specimen_id in rows:
        batch.append(specimen_id)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _specimen(specimen_id: str, standing: Standing) -> Specimen:
    first, *others = standing.names
    return Specimen(specimen_id, first, 0, tuple(others))


def pending(ledger: Ledger, run_id: str) -> Iterator[tuple[Specimen, int]]:
    """Specimens without an outcome, in discovery order, with attempts made so far.

    A batch is judged when it is reached, so the iterator can be consumed while the
    run it reads is being written.
    """
    for ids in _discovered(ledger, run_id):
        found = standings(ledger, run_id, ids)
        for specimen_id in ids:
            standing = found[specimen_id]
            if not standing.finished:
                yield _specimen(specimen_id, standing), standing.attempts


def failed(ledger: Ledger, run_id: str) -> Iterator[Specimen]:
    """Specimens whose last outcome is a failure, in discovery order."""
    for ids in _discovered(ledger, run_id):
        found = standings(ledger, run_id, ids)
        for specimen_id in ids:
            if found[specimen_id].failed:
                yield _specimen(specimen_id, found[specimen_id])


def inputs_of(ledger: Ledger, run_id: str) -> Iterator[Specimen]:
    """A run's files as it recorded them: every specimen, then each duplicate name,
    in the order they were found."""
    records = ledger.read(
        run_id=run_id, types=("specimen_discovered", "duplicate_found")
    )
    for record in records:
        event = record.event
        if isinstance(event, ev.SpecimenDiscovered):
            yield Specimen(event.specimen_id, event.path, event.size)
            for name in event.duplicates:
                yield Specimen(event.specimen_id, name, event.size)
        elif isinstance(event, ev.DuplicateFound):
            yield Specimen(event.specimen_id, event.path, 0)
