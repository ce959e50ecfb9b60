"""The state of one run, folded from its events.

This is what a resuming process trusts: the ledger, not its memory. A specimen is
finished once it has a saved result or a failure that was not later requeued. Only
counts are kept here, never one entry per specimen: which specimens are still to do
is read from the ledger a batch at a time (see ``backlog``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from herbx import events as ev
from herbx.answers import covered
from herbx.ledger import Ledger, Record


@dataclass
class RunState:
    """Everything a run needs to know about its own past."""

    run_id: str
    started: ev.RunStarted | None = None
    last_seq: int = 0
    specimens: int = 0
    saved: int = 0
    failed: int = 0  # failed and not requeued since
    coverage: Counter[str] = field(default_factory=Counter)
    spend: float = 0.0
    costliest: float = 0.0
    unknown_cost: int = 0
    early_check_passed: bool = False
    finished: bool = False
    last_snapshot: ev.EnvironmentSnapshotTaken | None = None
    last_snapshot_ts: str = ""
    started_at: str = ""
    updated_at: str = ""
    stopped: ev.RunAborted | None = None

    def apply(self, record: Record) -> None:
        """Fold one stored event of this run into the state."""
        self.last_seq = record.seq
        self.started_at = self.started_at or record.ts
        self.updated_at = record.ts
        event = record.event
        match event:
            case ev.RunStarted():
                self.started = event
            case ev.SpecimenDiscovered():
                self.specimens += 1  # once per id: duplicates are other events
            case ev.RequestSent():
                # Unknown until a response says what it cost; a request that timed
                # out or died with the process may still have been billed.
                self.unknown_cost += 1
            case ev.ResponseReceived():
                if event.cost is not None:
                    self.unknown_cost -= 1
                    self.spend += event.cost
                    self.costliest = max(self.costliest, event.cost)
            case ev.RequestFailed(
                reason="connection_error" | "connect_timeout" | "invalid_request"
            ):
                self.unknown_cost -= 1  # never reached the endpoint: nothing billed
            # A specimen gets one outcome, and is requeued only after a failure,
            # so counting events counts specimens.
            case ev.ResultSaved():
                self.saved += 1
                self.coverage.update(covered(event.fields))
                self.finished = False
            case ev.SpecimenFailed():
                self.failed += 1
                self.finished = False
            case ev.SpecimenRequeued():
                self.failed -= 1
            case ev.ValidationCheckpoint(kind="early", passed=True):
                self.early_check_passed = True
            case ev.RunFinished():
                self.finished = True
            case ev.RunAborted():
                self.stopped = event
            case ev.RunResumed():
                self.stopped = None
            case ev.EnvironmentSnapshotTaken():
                self.last_snapshot = event
                self.last_snapshot_ts = record.ts

    @property
    def done(self) -> int:
        """Specimens with an outcome."""
        return self.saved + self.failed

    @property
    def pending(self) -> int:
        """Specimens without an outcome."""
        return self.specimens - self.done

    @property
    def status(self) -> str:
        """``finished``, ``stopped: REASON``, or ``unfinished`` (running or crashed)."""
        if self.finished and not self.pending:
            return "finished"
        if self.stopped is not None:
            return f"stopped: {self.stopped.reason}"
        return "unfinished"


def fold(run_id: str, records: Iterable[Record]) -> RunState:
    """Build a run's state from its stored events."""
    state = RunState(run_id)
    for record in records:
        state.apply(record)
    return state


def summaries(ledger: Ledger) -> list[RunState]:
    """Fold every run of the ledger, oldest first; key-only streams are left out."""
    states: dict[str, RunState] = {}
    for record in ledger.read():
        state = states.get(record.run_id)
        if state is None:
            if record.type != "run_started":
                continue
            state = states[record.run_id] = RunState(record.run_id)
        state.apply(record)
    return list(states.values())


def find_unfinished(
    ledger: Ledger, images_dir: Path, model: str, prompt: str
) -> str | None:
    """Return the latest unfinished run over the same folder, model and prompt."""
    folder = str(images_dir.resolve())
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    candidates = [
        record.run_id
        for record in ledger.read(types=("run_started",))
        if isinstance(record.event, ev.RunStarted)
        and record.event.images_dir == folder
        and record.event.model == model
        and record.event.prompt_sha256 == digest
    ]
    for run_id in reversed(candidates):
        state = fold(run_id, ledger.read(run_id=run_id))
        if not state.finished or state.pending:
            return run_id
    return None
